//! The optional `NAME.toml` beside `NAME.onnx`: per-model settings that the model file itself
//! cannot carry.
//!
//! ```toml
//! adapter = "yolov8-detect"          # use this plugin, whatever the others' scores
//! labels = ["cat", "dog"]            # class names by class id (instead of the `names` metadata)
//! conf = 0.4                         # defaults for this model (a control tag's threshold still wins)
//! iou = 0.5
//! max_det = 100
//! projects = [3, 7]                  # serve these Label Studio projects
//!
//! [options]                          # handed to the adapter when it opens the model
//! tracker = "botsort"
//! ```

use std::{collections::BTreeMap, path::Path};

use plugin_api::Options;
use serde::Deserialize;

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub adapter: Option<String>,
    pub labels: Option<Vec<String>>,
    pub conf: Option<f32>,
    pub iou: Option<f32>,
    pub max_det: Option<u32>,
    #[serde(default, deserialize_with = "project_ids")]
    pub projects: Vec<String>,
    /// Settings for the adapter, as text: `tracker = "botsort"`, `imgsz = 640`.
    #[serde(default)]
    pub options: BTreeMap<String, toml::Value>,
}

impl Sidecar {
    /// Parses a sidecar; the error says which file and what is wrong.
    pub fn parse(path: &Path, text: &str) -> Result<Sidecar, String> {
        let sidecar: Sidecar = toml::from_str(text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        for (key, value) in [("conf", sidecar.conf), ("iou", sidecar.iou)] {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                return Err(format!("{}: `{key}` must be between 0 and 1, not {v}", path.display()));
            }
        }
        if sidecar.labels.as_ref().is_some_and(Vec::is_empty) {
            return Err(format!("{}: `labels` is empty", path.display()));
        }
        if let Some((key, _)) = sidecar.options.iter().find(|(_, v)| v.is_table() || v.is_array()) {
            return Err(format!(
                "{}: option `{key}` must be text, a number or true/false",
                path.display()
            ));
        }
        Ok(sidecar)
    }

    /// The `[options]` table as the adapter receives it.
    pub fn adapter_options(&self) -> Options {
        self.options
            .iter()
            .map(|(key, value)| match value {
                toml::Value::String(text) => (key.clone(), text.clone()),
                toml::Value::Integer(n) => (key.clone(), n.to_string()),
                toml::Value::Float(x) => (key.clone(), x.to_string()),
                toml::Value::Boolean(b) => (key.clone(), b.to_string()),
                toml::Value::Datetime(d) => (key.clone(), d.to_string()),
                toml::Value::Array(_) | toml::Value::Table(_) => (key.clone(), String::new()),
            })
            .collect()
    }
}

/// Project ids as Label Studio numbers them, written as numbers or strings.
fn project_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(Vec::<Id>::deserialize(d)?
        .into_iter()
        .map(|id| match id {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s.trim().to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sidecar, String> {
        Sidecar::parse(Path::new("m.toml"), text)
    }

    #[test]
    fn reads_every_setting() {
        let s = parse(
            r#"adapter = "yolov8-detect"
               labels = ["cat", "dog"]
               conf = 0.4
               iou = 0.5
               max_det = 10
               projects = [3, "7"]
               [options]
               tracker = "botsort"
               stride = 2"#,
        )
        .expect("parse");
        assert_eq!(s.adapter.as_deref(), Some("yolov8-detect"));
        assert_eq!(s.labels, Some(vec!["cat".to_string(), "dog".to_string()]));
        assert_eq!((s.conf, s.iou, s.max_det), (Some(0.4), Some(0.5), Some(10)));
        assert_eq!(s.projects, vec!["3", "7"]);
        let options = s.adapter_options();
        assert_eq!(
            (options.get("tracker"), options.get("stride")),
            (Some("botsort"), Some("2"))
        );
        assert_eq!(parse("").expect("empty"), Sidecar::default());
    }

    #[test]
    fn mistakes_are_named() {
        let err = parse("confidence = 0.4").expect_err("unknown key");
        assert!(err.contains("m.toml") && err.contains("confidence"), "{err}");
        assert!(parse("conf = 1.5").expect_err("range").contains("conf"));
        assert!(parse("labels = []").is_err());
        assert!(parse("conf = ").is_err());
        assert!(
            parse("[options]\nnested = { a = 1 }")
                .expect_err("table")
                .contains("nested")
        );
    }
}
