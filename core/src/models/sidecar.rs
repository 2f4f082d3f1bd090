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
//!
//! [train]                            # training jobs for this model (defaults: ML_TRAIN_*)
//! epochs = 30
//! imgsz = 640
//!
//! [trained]                          # written by a training job: where this model came from
//! job = 12
//! ```

use std::{collections::BTreeMap, path::Path};

use plugin_api::Options;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    // f64, so that `0.3` reads back as 0.3 in the file and the API (the model uses f32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_det: Option<u32>,
    #[serde(default, deserialize_with = "project_ids", skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// Settings for the adapter, as text: `tracker = "botsort"`, `imgsz = 640`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, toml::Value>,
    /// Training settings for this model, over the ML_TRAIN_* defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainTable>,
    /// The provenance a training job records: job, data, metrics. Not read by serving.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trained: BTreeMap<String, toml::Value>,
}

/// The `[train]` table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imgsz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("cannot write the settings as TOML: {0}")]
    Write(toml::ser::Error),
}

/// The settings a sidecar may hold, for messages about unknown ones.
const KEYS: [&str; 9] = [
    "adapter", "labels", "conf", "iou", "max_det", "projects", "options", "train", "trained",
];

impl Sidecar {
    /// Parses a sidecar; the error says which file and what is wrong.
    pub fn parse(path: &Path, text: &str) -> Result<Sidecar, String> {
        let sidecar: Sidecar = toml::from_str(text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        match sidecar.problems().into_iter().next() {
            Some((_, problem)) => Err(format!("{}: {problem}", path.display())),
            None => Ok(sidecar),
        }
    }

    /// What is wrong with the values, by setting; the rules of the file and of the API.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for (key, value) in [("conf", self.conf), ("iou", self.iou)] {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                problems.push((key, format!("`{key}` must be between 0 and 1, not {v}")));
            }
        }
        if self.labels.as_ref().is_some_and(Vec::is_empty) {
            problems.push(("labels", "`labels` is empty".to_string()));
        }
        if let Some((key, _)) = self.options.iter().find(|(_, v)| v.is_table() || v.is_array()) {
            problems.push((
                "options",
                format!("option `{key}` must be text, a number or true/false"),
            ));
        }
        if let Some(train) = &self.train {
            for problem in train_problems(train.epochs, train.imgsz, train.batch, train.patience) {
                problems.push(("train", format!("`train.{problem}")));
            }
        }
        problems
    }

    /// A sidecar from the JSON the management API receives, checked setting by setting:
    /// every problem is reported under the name of its setting.
    pub fn from_json(value: &Value) -> Result<Sidecar, BTreeMap<String, String>> {
        let Some(object) = value.as_object() else {
            return Err(BTreeMap::from([(
                "".to_string(),
                "the configuration must be a JSON object".to_string(),
            )]));
        };
        let mut errors = BTreeMap::new();
        for key in object.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            errors.insert(
                key.clone(),
                format!("unknown setting `{key}`; a model's settings are {}", KEYS.join(", ")),
            );
        }
        let mut checked = Map::new();
        for key in KEYS {
            let Some(value) = object.get(key) else { continue };
            // Each setting on its own, so that one mistake does not hide the others.
            let single = Value::Object(Map::from_iter([(key.to_string(), value.clone())]));
            match serde_json::from_value::<Sidecar>(single) {
                Ok(_) => {
                    checked.insert(key.to_string(), value.clone());
                }
                Err(e) => {
                    errors.insert(key.to_string(), format!("`{key}`: {e}"));
                }
            }
        }
        let sidecar: Sidecar = serde_json::from_value(Value::Object(checked)).unwrap_or_default();
        for (key, problem) in sidecar.problems() {
            errors.insert(key.to_string(), problem);
        }
        if errors.is_empty() { Ok(sidecar) } else { Err(errors) }
    }

    /// The sidecar as a `NAME.toml` file.
    pub fn to_toml(&self) -> Result<String, SidecarError> {
        toml::to_string(self).map_err(SidecarError::Write)
    }

    /// The adapter's options as a JSON value, for the API.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
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

/// What is wrong with training settings, each as "key` must ...": the same bounds for a
/// sidecar's `[train]` table and a job's options, so that neither can ask for a run that
/// never ends or an image size no GPU holds.
pub fn train_problems(
    epochs: Option<u32>,
    imgsz: Option<u32>,
    batch: Option<u32>,
    patience: Option<u32>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value, max) in [
        ("epochs", epochs, 10_000),
        ("imgsz", imgsz, 4096),
        ("batch", batch, 1024),
        ("patience", patience, 10_000),
    ] {
        if let Some(value) = value
            && !(1..=max).contains(&value)
        {
            problems.push(format!("{key}` must be from 1 to {max}, not {value}"));
        }
    }
    if imgsz.is_some_and(|s| s % 32 != 0) {
        problems.push("imgsz` must be a multiple of 32".to_string());
    }
    problems
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
               stride = 2
               [train]
               epochs = 30
               imgsz = 320"#,
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
        assert_eq!(
            s.train.map(|t| (t.epochs, t.imgsz, t.batch)),
            Some((Some(30), Some(320), None))
        );
        assert_eq!(parse("").expect("empty"), Sidecar::default());
        assert!(
            parse("[train]\nimgsz = 100")
                .expect_err("stride")
                .contains("multiple of 32")
        );
        assert!(parse("[train]\nepoch = 3").expect_err("typo").contains("epoch"));
        assert!(
            parse("[train]\nepochs = 4294967295")
                .expect_err("huge")
                .contains("from 1 to 10000")
        );
        assert!(parse("[train]\nbatch = 0").expect_err("zero").contains("batch"));
    }

    #[test]
    fn api_settings_are_checked_one_by_one_and_round_trip_through_toml() {
        let errors = Sidecar::from_json(&serde_json::json!({
            "conf": 1.5, "iou": "high", "confidence": 0.4, "labels": ["a", "b"]
        }))
        .expect_err("three mistakes");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors["conf"].contains("between 0 and 1"), "{errors:?}");
        assert!(errors["iou"].contains("iou"), "{errors:?}");
        assert!(errors["confidence"].contains("unknown setting"), "{errors:?}");
        let good = Sidecar::from_json(&serde_json::json!({"labels": ["a", "b"], "conf": 0.3, "projects": [3]}))
            .expect("valid");
        let again = parse(&good.to_toml().expect("toml")).expect("parses back");
        assert_eq!(again, good);
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
