//! The plugin ABI, tested with real builds outside the workspace:
//!
//! - the template as released now (plugin-api 2.0) loads and serves;
//! - plugins built for plugin-api 1.x (the frozen 1.1 API and template, also labelled 1.0)
//!   load through the host's shim, and the frozen 1.1 yolov8-cls reproduces Ultralytics'
//!   classes (`cls_parity.rs`);
//! - within major 2, a plugin built against 2.0 loads and serves in a host built against a
//!   later 2.x that added a capability, a prompt kind and an element type, and a plugin built
//!   against that later 2.x (declaring the new capability) loads and serves in this host;
//! - a plugin of another major is refused in one line.

use std::path::{Path, PathBuf};

use crate::common::{abi::*, *};
use serde_json::{Value, json};

const CLS: &str = "yolov8n-shapes-cls-96.onnx";
const CHOICES: &str = r#"<View><Image name="image" value="$image"/>
    <Choices name="shape" toName="image"><Choice value="circle"/><Choice value="square"/><Choice value="triangle"/></Choices>
    </View>"#;

/// What a later 2.x could add without changing a layout: a capability, a prompt kind, an
/// element type, and a helper.
fn later_minor(path: &str, text: String) -> String {
    match path {
        "info.rs" => text.replace(
            "pub mod capability {",
            "pub mod capability {\n    pub const PROMPT_SCRIBBLE: &str = \"prompt.scribble\";",
        ),
        "prompt.rs" => text.replace(
            "impl PromptKind {",
            "impl PromptKind {\n    pub const SCRIBBLE: PromptKind = PromptKind(5);",
        ),
        "model.rs" => text.replace(
            "impl ElementType {",
            "impl ElementType {\n    pub const BF16: ElementType = ElementType(9);",
        ),
        "lib.rs" => text + "\n/// Added in the later release.\npub fn later() -> u32 {\n    9\n}\n",
        _ => text,
    }
}

/// A models folder with the classifier fixture served by the template (its sidecar names
/// it), and the identity model, which no plugin serves.
fn models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("models");
    std::fs::copy(fixture_model(CLS), dir.path().join("t.onnx")).expect("model");
    std::fs::write(dir.path().join("t.toml"), "adapter = \"my-adapter\"\n").expect("sidecar");
    std::fs::copy(
        fixtures().join("models/faults/identity-image.onnx"),
        dir.path().join("identity.onnx"),
    )
    .expect("model");
    dir
}

fn plugins_with(library: impl FnOnce(&Path) -> PathBuf) -> tempfile::TempDir {
    let dir = plugins_dir(&["yolov8_detect"]);
    library(dir.path());
    dir
}

/// What a server with these plugins says: the my-adapter plugin it lists, the template
/// model's state and its answer for one image, and the identity model's error.
struct Seen {
    plugin: Option<Value>,
    log: String,
    served: Value,
    choice: Value,
    identity_error: String,
}

async fn serve(exe: Option<&Path>, plugins: tempfile::TempDir) -> Seen {
    let server = match exe {
        Some(exe) => Server::start_exe(exe, models(), plugins, &[]).await,
        None => Server::start_in(models(), plugins, &[]).await,
    };
    let (_, listed) = server.get("/plugins").await;
    let plugin = listed["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "my-adapter")
        .cloned();
    let (_, models) = server.get("/models").await;
    let model = |name: &str| {
        models["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let images = serve_dir(eval_images());
    let url = format!("http://{images}/eval-a_0000.png");
    let mut request = predict_body(&[url], "1", CHOICES);
    request["label_config"] = json!(CHOICES.replace("<Choices ", r#"<Choices model_path="t.onnx" "#));
    let (_, answer) = server.post("/predict", &request).await;
    Seen {
        plugin,
        log: server.log(),
        served: model("t"),
        choice: answer["results"][0]["result"][0].clone(),
        identity_error: model("identity")["error"].as_str().unwrap_or_default().to_string(),
    }
}

fn assert_serves(seen: &Seen, what: &str) {
    assert_eq!(seen.served["state"], "ready", "{what}: {:?}\n{}", seen.served, seen.log);
    assert_eq!(seen.choice["type"], "choices", "{what} answers: {:?}", seen.choice);
    assert!(
        seen.choice["score"].as_f64().is_some_and(|s| s > 0.0),
        "{what}: {:?}",
        seen.choice
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn this_release_and_1x_plugins_load_and_serve() {
    let api = repo().join("plugin-api");
    let current = plugins_with(|dir| build_template(&api, &dir.join("libtemplate_2_0.so")));
    let seen_2_0 = serve(None, current).await;
    assert_serves(&seen_2_0, "the 2.0 template");
    let plugin = seen_2_0.plugin.as_ref().expect("listed");
    assert_eq!(plugin["api_version"], "2.0.0", "{plugin}");
    assert!(
        seen_2_0
            .identity_error
            .contains("my-adapter: the model's metadata has no `adapter = my-adapter`"),
        "a plugin says why it does not take a model: {}",
        seen_2_0.identity_error
    );

    let frozen = repo().join("tests/abi/template-1.1");
    let v1_1 = plugins_with(|dir| build_frozen(&frozen, "my_adapter", &dir.join("libtemplate_1_1.so")));
    let seen_1_1 = serve(None, v1_1).await;
    assert_serves(&seen_1_1, "the frozen 1.1 template");
    assert_eq!(
        seen_1_1.plugin.as_ref().map(|p| p["api_version"].clone()),
        Some(json!("1.1.0"))
    );
    assert_eq!(
        (&seen_1_1.choice["value"], &seen_1_1.choice["score"]),
        (&seen_2_0.choice["value"], &seen_2_0.choice["score"]),
        "the same adapter through the 1.x shim answers the same"
    );
    assert!(
        seen_1_1
            .identity_error
            .contains("my-adapter: the model's metadata has no"),
        "1.1 reasons reach /models"
    );

    // plugin-api 1.0 had the same ABI; a library that says 1.0.0 loads too.
    let api_1_0 = frozen_api_as("1.0.0");
    let v1_0 = plugins_with(|dir| build_frozen_template_against(api_1_0.path(), &dir.join("libtemplate_1_0.so")));
    let seen_1_0 = serve(None, v1_0).await;
    assert_serves(&seen_1_0, "a 1.0 build");
    assert_eq!(
        seen_1_0.plugin.as_ref().map(|p| p["api_version"].clone()),
        Some(json!("1.0.0"))
    );
    report(&format!(
        "plugin ABI: template 2.0, 1.1 and 1.0 builds load and serve (choice {} score {})",
        seen_2_0.choice["value"]["choices"], seen_2_0.choice["score"]
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn within_major_2_older_and_newer_minors_load_both_ways() {
    let later = plugin_api_copy("2.9.0", later_minor);
    let (host, template_2_0) = tokio::task::spawn_blocking({
        let later = later.path().to_path_buf();
        move || {
            let host = build_host(&later);
            let out = tempfile::tempdir().expect("out");
            let lib = build_template(&repo().join("plugin-api"), &out.path().join("libtemplate_2_0.so"));
            (host, (out, lib))
        }
    })
    .await
    .expect("builds");

    // A 2.0 plugin in a host built against 2.9; a 3.0 build beside it makes the host say
    // which plugin-api it was built against.
    let next_major = plugin_api_copy("3.0.0", |_, text| text);
    let plugins = plugins_with(|dir| {
        build_template(next_major.path(), &dir.join("libtemplate_3_0.so"));
        let copy = dir.join("libtemplate_2_0.so");
        std::fs::copy(&template_2_0.1, &copy).expect("copy");
        copy
    });
    let seen = serve(Some(&host), plugins).await;
    assert!(
        seen.log.contains("incompatible with this host's plugin-api 2.9.0"),
        "the host was built against 2.9: {}",
        seen.log
    );
    assert_serves(&seen, "a 2.0 plugin in a 2.9 host");

    // A plugin built against 2.9, declaring a capability this host does not know.
    let newer = plugins_with(|dir| {
        build_template_with(later.path(), &dir.join("libtemplate_2_9.so"), |source| {
            source.replace(
                r#"PluginInfo::new(NAME, env!("CARGO_PKG_VERSION"), &["classify"])"#,
                r#"PluginInfo::new(NAME, env!("CARGO_PKG_VERSION"), &["classify"]).with_capabilities(&[plugin_api::capability::PROMPT_SCRIBBLE])"#,
            )
        })
    });
    let seen = serve(None, newer).await;
    assert_serves(&seen, "a 2.9 plugin in this host");
    let plugin = seen.plugin.expect("listed");
    assert_eq!(
        (&plugin["api_version"], &plugin["capabilities"]),
        (&json!("2.9.0"), &json!(["prompt.scribble"])),
        "an unknown capability is listed and otherwise ignored"
    );
    report("plugin ABI: a 2.0 plugin serves in a 2.9 host, a 2.9 plugin in this 2.0 host");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_major_is_refused_in_one_line() {
    let next = plugin_api_copy("3.0.0", |_, text| text);
    let plugins = plugins_with(|dir| build_template(next.path(), &dir.join("libtemplate_3_0.so")));
    let seen = serve(None, plugins).await;
    assert!(seen.plugin.is_none(), "{:?}", seen.plugin);
    let refused: Vec<&str> = seen.log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 1, "{}", seen.log);
    assert!(
        refused[0].contains("libtemplate_3_0.so")
            && refused[0]
                .contains("built against plugin-api 3.0.0, which is incompatible with this host's plugin-api 2.0.0"),
        "{}",
        refused[0]
    );
}
