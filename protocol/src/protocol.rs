//! What Label Studio sends. Parsing is lenient on purpose: Label Studio versions add fields,
//! send nulls, and send `project` as "<id>.<timestamp>" here and as an object in webhooks.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::Secret;

#[derive(Debug, Default, Deserialize)]
pub struct PredictRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub project: Option<Value>,
    #[serde(default)]
    pub label_config: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub params: PredictParams,
}

#[derive(Debug, Default, Deserialize)]
pub struct PredictParams {
    /// Set only by interactive (smart tool) requests.
    #[serde(default)]
    pub context: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Task {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Map<String, Value>,
}

impl Task {
    /// The id as Label Studio shows it, for log lines.
    pub fn label(&self) -> String {
        match &self.id {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => "(no id)".to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SetupRequest {
    #[serde(default)]
    pub project: Option<Value>,
    /// The project's label config.
    #[serde(default)]
    pub schema: Option<String>,
    /// Label Studio's own idea of its address (its HOST setting, else http://localhost:<port>).
    #[serde(default)]
    pub hostname: Option<String>,
    /// The project creator's legacy API token.
    #[serde(default)]
    pub access_token: Option<Secret>,
}

/// The project id from `project`: `"3.1746612998"` -> `3`, `3` -> `3`, `{"id": 3}` -> `3`.
pub fn project_id(project: Option<&Value>) -> Option<String> {
    match project? {
        Value::String(s) => {
            let id = s.split('.').next().unwrap_or("").trim();
            (!id.is_empty()).then(|| id.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => project_id(o.get("id")),
        _ => None,
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_ids() {
        assert_eq!(project_id(Some(&json!("3.1746612998"))).as_deref(), Some("3"));
        assert_eq!(project_id(Some(&json!(12))).as_deref(), Some("12"));
        assert_eq!(project_id(Some(&json!({"id": 7, "title": "x"}))).as_deref(), Some("7"));
        assert_eq!(project_id(Some(&json!(""))), None);
        assert_eq!(project_id(None), None);
    }

    #[test]
    fn a_captured_predict_body_parses() {
        let body = json!({
            "tasks": [{"id": 3, "data": {"image": "/data/upload/1/a.png"}, "meta": {}, "annotations": [],
                       "predictions": [], "last_comment_updated_at": null, "file_upload": 3}],
            "project": "1.1795800822",
            "label_config": "<View/>",
            "params": {"login": null, "password": null, "context": null}
        });
        let req: PredictRequest = serde_json::from_value(body).expect("parse");
        assert_eq!(req.tasks.len(), 1);
        assert_eq!(req.tasks[0].label(), "3");
        assert!(req.params.context.is_none());
    }

    #[test]
    fn nulls_and_missing_fields_are_tolerated() {
        let req: PredictRequest =
            serde_json::from_value(json!({"tasks": [{"id": 1, "data": null}], "params": null})).expect("parse");
        assert!(req.tasks[0].data.is_empty());
        let req: PredictRequest = serde_json::from_value(json!({"tasks": null})).expect("parse");
        assert!(req.tasks.is_empty());
    }
}
