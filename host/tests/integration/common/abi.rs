//! Real builds for the ABI tests: plugins built outside the workspace against this
//! plugin-api, against the frozen 1.1 release, or against a copy of plugin-api changed the
//! way a later release could change it; and the host itself built against such a copy.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the ABI tests build, apart from the workspace's own artifacts.
fn abi_target() -> PathBuf {
    repo().join("target/abi-tests")
}

/// Runs cargo as a user would, outside the test's own cargo environment.
pub fn cargo(args: &[&str], dir: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Cargo gives a test the variables of its own package (CARGO_MANIFEST_DIR, ...). Build
    // scripts that watch them would see them change and rebuild for the workspace too.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "OUT_DIR" {
            command.env_remove(key.as_ref());
        }
    }
    let output = command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn library_name(crate_name: &str) -> String {
    format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds a frozen plugin project in place (it carries its own Cargo.lock, so nothing is
/// resolved or written in the source tree) and copies the library to `out`.
pub fn build_frozen(project: &Path, crate_name: &str, out: &Path) -> PathBuf {
    cargo(&["build", "--offline", "--locked", "--quiet"], project, &abi_target());
    let built = abi_target().join("debug").join(library_name(crate_name));
    std::fs::copy(&built, out).expect("copy the plugin");
    out.to_path_buf()
}

/// Copies plugin-api to a temporary folder as `version`, with `edit` applied to each source
/// file (by its path under `src/`), so that it builds on its own.
pub fn plugin_api_copy(version: &str, edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp");
    copy_tree(
        &repo().join("plugin-api/src"),
        &dir.path().join("src"),
        &|path, text| edit(path, text),
    );
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"plugin-api\"\nversion = \"{version}\"\nedition = \"2024\"\n\n\
             [dependencies]\nabi_stable = \"=0.11.3\"\nbytemuck = \"1\"\n"
        ),
    )
    .expect("manifest");
    dir
}

fn copy_tree(from: &Path, to: &Path, edit: &dyn Fn(&str, String) -> String) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &target, edit);
        } else {
            let text = std::fs::read_to_string(&path).expect("read");
            let relative = path.strip_prefix(repo().join("plugin-api/src")).unwrap_or(&path);
            std::fs::write(&target, edit(&relative.to_string_lossy(), text)).expect("write");
        }
    }
}

/// Builds a copy of a plugin project against the plugin-api in `plugin_api`, with `edit`
/// applied to its `src/lib.rs`, and copies the library to `out`.
pub fn build_copy(
    project: &Path,
    crate_name: &str,
    plugin_api: &Path,
    edit: impl Fn(String) -> String,
    out: &Path,
) -> PathBuf {
    let copy = tempfile::tempdir().expect("temp");
    std::fs::create_dir(copy.path().join("src")).expect("src");
    let source = std::fs::read_to_string(project.join("src/lib.rs")).expect("lib.rs");
    std::fs::write(copy.path().join("src/lib.rs"), edit(source)).expect("lib.rs");
    let manifest: Vec<String> = std::fs::read_to_string(project.join("Cargo.toml"))
        .expect("manifest")
        .lines()
        .map(|line| {
            if line.starts_with("plugin-api = ") {
                format!("plugin-api = {{ path = {:?} }}", plugin_api.display().to_string())
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(copy.path().join("Cargo.toml"), manifest.join("\n")).expect("manifest");
    // The workspace's lock file pins the same abi_stable, so nothing needs the network.
    std::fs::copy(repo().join("Cargo.lock"), copy.path().join("Cargo.lock")).expect("lock");
    cargo(&["build", "--offline", "--quiet"], copy.path(), &abi_target());
    let built = abi_target().join("debug").join(library_name(crate_name));
    std::fs::copy(&built, out).expect("copy the plugin");
    out.to_path_buf()
}

/// The plugin template (`templates/plugin`, as a plugin author copies it), built against
/// the plugin-api in `plugin_api`.
pub fn build_template(plugin_api: &Path, out: &Path) -> PathBuf {
    build_template_with(plugin_api, out, |source| source)
}

/// The same with its source edited first.
pub fn build_template_with(plugin_api: &Path, out: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    build_copy(&repo().join("templates/plugin"), "my_adapter", plugin_api, edit, out)
}

/// The frozen plugin-api 1.1, labelled with another 1.x version.
pub fn frozen_api_as(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp");
    let frozen = repo().join("compat/plugin-api-1.1");
    let status = Command::new("cp")
        .arg("-r")
        .arg(frozen.join("src"))
        .arg(dir.path())
        .status()
        .expect("cp");
    assert!(status.success());
    let manifest = std::fs::read_to_string(frozen.join("Cargo.toml"))
        .expect("manifest")
        .replace("version = \"1.1.0\"", &format!("version = \"{version}\""));
    std::fs::write(dir.path().join("Cargo.toml"), manifest).expect("manifest");
    dir
}

/// The frozen 1.1 template, built against another copy of the 1.x API.
pub fn build_frozen_template_against(plugin_api: &Path, out: &Path) -> PathBuf {
    build_copy(
        &repo().join("tests/abi/template-1.1"),
        "my_adapter",
        plugin_api,
        |source| source,
        out,
    )
}

/// Builds the host (and every crate of ours under it, all of which use plugin-api types)
/// against the plugin-api in `plugin_api` (a later release, say) and returns its executable. It
/// builds in the workspace's own target folder, the host under another package name, so that
/// it reuses every compiled dependency and replaces nothing.
pub fn build_host(plugin_api: &Path) -> PathBuf {
    const CRATES: [&str; 5] = ["host", "core", "labelstudio", "training", "protocol"];
    let workspace = tempfile::tempdir().expect("temp");
    let repo = repo().canonicalize().expect("repo");
    let copy = |from: &Path, to: &Path| {
        let status = Command::new("cp").arg("-r").arg(from).arg(to).status().expect("cp");
        assert!(status.success());
    };
    let compat = format!("path = {:?}", repo.join("compat/plugin-api-1.1").display().to_string());
    for crate_dir in CRATES {
        std::fs::create_dir_all(workspace.path().join(crate_dir)).expect("crate dir");
        copy(
            &repo.join(crate_dir).join("src"),
            &workspace.path().join(crate_dir).join("src"),
        );
        let manifest = std::fs::read_to_string(repo.join(crate_dir).join("Cargo.toml"))
            .expect("manifest")
            .replace("path = \"../compat/plugin-api-1.1\"", &compat);
        std::fs::write(workspace.path().join(crate_dir).join("Cargo.toml"), manifest).expect("manifest");
    }
    // The web page and the trainer program the host embeds.
    copy(&repo.join("host/ui"), &workspace.path().join("host/ui"));
    copy(
        &repo.join("training/trainer"),
        &workspace.path().join("training/trainer"),
    );
    let manifest = std::fs::read_to_string(repo.join("host/Cargo.toml"))
        .expect("manifest")
        .replace("name = \"ls-ml-backend\"", "name = \"ls-ml-backend-next\"")
        .replace("default-run = \"ls-ml-backend\"", "")
        // Its benches and tests stay with the real host.
        .split("[[bench]]")
        .next()
        .expect("manifest")
        .to_string()
        + "\n[lib]\nname = \"ls_ml_backend\"\n";
    std::fs::write(workspace.path().join("host/Cargo.toml"), manifest).expect("host manifest");
    let root = std::fs::read_to_string(repo.join("Cargo.toml")).expect("workspace manifest");
    let profiles = &root[root.find("[profile").expect("profiles")..];
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    std::fs::write(
        workspace.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = {members:?}\n\n\
             [workspace.package]\nedition = \"2024\"\nversion = \"0.1.0\"\nlicense = \"Apache-2.0\"\n\
             rust-version = \"1.88\"\n\n\
             [workspace.dependencies]\nabi_stable = \"=0.11.3\"\nplugin-api = {{ path = {} }}\n\
             mask-geometry = {{ path = {} }}\nls-tracking = {{ path = {} }}\n\
             labelstudio-protocol = {{ path = \"protocol\" }}\nls-core = {{ path = \"core\" }}\n\
             ls-labelstudio = {{ path = \"labelstudio\" }}\nls-training = {{ path = \"training\" }}\n\n{profiles}",
            path(plugin_api),
            path(&repo.join("geometry")),
            path(&repo.join("tracking")),
            members = CRATES,
        ),
    )
    .expect("workspace manifest");
    std::fs::copy(repo.join("Cargo.lock"), workspace.path().join("Cargo.lock")).expect("lock");
    let target = repo.join("target");
    cargo(
        &[
            "build",
            "--offline",
            "--quiet",
            "-p",
            "ls-ml-backend-next",
            "--bin",
            "ls-ml-backend-next",
        ],
        workspace.path(),
        &target,
    );
    target.join("debug/ls-ml-backend-next")
}
