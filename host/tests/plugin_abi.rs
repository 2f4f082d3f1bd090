//! The plugin ABI, tested both ways with real builds: the template in `templates/plugin` is
//! built outside the workspace (against this plugin-api, against plugin-api as 1.0 was,
//! i.e. without the parts marked `abi:1.1`, and against a plugin-api claiming 2.0.0), and
//! the server loads the first two and refuses the third with a clear message.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Source without the lines between `// abi:1.1 begin` and `// abi:1.1 end` markers: what
/// it was before plugin-api 1.1.
fn before_1_1(text: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim().starts_with("// abi:1.1 begin") {
            skipping = true;
        }
        if !skipping {
            kept.push(line);
        }
        if line.trim().starts_with("// abi:1.1 end") {
            skipping = false;
        }
    }
    kept.join("\n")
}

/// A copy of plugin-api that builds on its own, with another version, and as a 1.0 release
/// was (without the 1.1 parts) when `old`.
fn plugin_api_copy(version: &str, old: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp");
    let src = repo().join("plugin-api/src");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = if old { before_1_1(&text) } else { text };
        std::fs::write(dir.path().join("src").join(path.file_name().expect("name")), text).expect("write");
    }
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"plugin-api\"\nversion = \"{version}\"\nedition = \"2024\"\n\n\
             [dependencies]\nabi_stable = \"=0.11.3\"\n"
        ),
    )
    .expect("manifest");
    dir
}

/// Builds the plugin template against `plugin_api` (as written for 1.0 when `old`) and
/// returns the library, copied to `out`.
fn build_template(plugin_api: &Path, old: bool, out: &Path) -> PathBuf {
    let project = tempfile::tempdir().expect("temp");
    let template = repo().join("templates/plugin");
    std::fs::create_dir(project.path().join("src")).expect("src");
    let source = std::fs::read_to_string(template.join("src/lib.rs")).expect("lib.rs");
    let source = if old { before_1_1(&source) } else { source };
    std::fs::write(project.path().join("src/lib.rs"), source).expect("lib.rs");
    let manifest = std::fs::read_to_string(template.join("Cargo.toml"))
        .expect("manifest")
        .replace(
            "path = \"../../plugin-api\"",
            &format!("path = {:?}", plugin_api.display().to_string()),
        );
    std::fs::write(project.path().join("Cargo.toml"), manifest).expect("manifest");
    // The workspace's lock file pins the same abi_stable, so nothing needs the network.
    std::fs::copy(repo().join("Cargo.lock"), project.path().join("Cargo.lock")).expect("lock");
    let target = repo().join("target/abi-tests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building the template failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = target.join("debug").join(format!(
        "{}my_adapter{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    std::fs::copy(&built, out).expect("copy the plugin");
    out.to_path_buf()
}

/// Starts a server with these plugins and the identity model (which no plugin serves), and
/// returns the my-adapter plugins it loaded, its log, and the model's error.
async fn serve_with(plugins: tempfile::TempDir) -> (Vec<String>, String, String) {
    let models = tempfile::tempdir().expect("models");
    std::fs::copy(
        fixtures().join("models/faults/identity-image.onnx"),
        models.path().join("identity.onnx"),
    )
    .expect("model");
    let server = Server::start_in(models, plugins, &[]).await;
    let (_, listed) = server.get("/plugins").await;
    let files: Vec<String> = listed["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter(|p| p["name"] == "my-adapter")
        .filter_map(|p| p["file"].as_str().map(str::to_string))
        .collect();
    let (_, models): (u16, Value) = server.get("/models").await;
    let error = models["models"][0]["error"].as_str().unwrap_or_default().to_string();
    (files, server.log(), error)
}

#[tokio::test(flavor = "multi_thread")]
async fn older_minor_plugins_load_and_other_majors_are_refused() {
    let (current_and_next, old) = (plugins_dir(&["yolov8_detect"]), plugins_dir(&["yolov8_detect"]));
    let api = repo().join("plugin-api");
    let (old_minor, next_major) = (plugin_api_copy("1.0.0", true), plugin_api_copy("2.0.0", false));
    let (a, b) = (current_and_next.path().to_path_buf(), old.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        build_template(&api, false, &a.join("libtemplate_current.so"));
        build_template(next_major.path(), false, &a.join("libtemplate_2_0.so"));
        build_template(old_minor.path(), true, &b.join("libtemplate_1_0.so"));
    })
    .await
    .expect("builds");

    let (files, log, error) = serve_with(current_and_next).await;
    assert!(
        files.len() == 1 && files[0].ends_with("libtemplate_current.so"),
        "{files:?}"
    );
    assert!(
        log.contains("libtemplate_2_0.so")
            && log.contains("built against plugin-api 2.0.0, which is incompatible with this host's plugin-api 1.1.0"),
        "the 2.0 build is refused with a clear line:\n{log}"
    );
    // A 1.1 plugin says why it does not take a model.
    assert!(
        error.contains("my-adapter: the model's metadata has no `adapter = my-adapter`"),
        "{error}"
    );

    let (files, log, error) = serve_with(old).await;
    assert!(
        files.len() == 1 && files[0].ends_with("libtemplate_1_0.so"),
        "the 1.0 build loads: {files:?}\n{log}"
    );
    assert!(
        !error.contains("my-adapter:"),
        "a 1.0 plugin declines without a reason: {error}"
    );
    assert!(error.contains("no adapter plugin accepts"), "{error}");
}
