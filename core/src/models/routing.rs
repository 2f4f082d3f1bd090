//! Which model serves a request: the project's, a `model_path`'s, the default, or the only one.

use std::sync::Arc;

use super::{LoadedModel, files, table::Table};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no model is loaded yet: put an .onnx file in {dir}")]
    NoModels { dir: String },
    #[error("model `{name}` is still loading")]
    Loading { name: String },
    #[error("model `{name}` failed to load: {error}")]
    Failed { name: String, error: String },
    #[error(
        "no model for project {project}: name a model {project}.onnx, list the project in a model's .toml, set \
         ML_DEFAULT_MODEL, or keep a single model in {dir} (found: {found})"
    )]
    Ambiguous {
        project: String,
        dir: String,
        found: String,
    },
    #[error("ML_DEFAULT_MODEL is `{name}`, but {dir} has no such model (found: {found})")]
    MissingDefault { name: String, dir: String, found: String },
    #[error("model_path=\"{path}\" is refused: {reason}")]
    BadModelPath { path: String, reason: &'static str },
    #[error("model_path=\"{path}\" names no model in {dir} (found: {found})")]
    UnknownModel { path: String, dir: String, found: String },
    #[error("the label config does not fit model `{model}`: {reason}")]
    Mismatch { model: String, reason: String },
    /// A tag's own settings are wrong (a tracker setting, say), whatever model fills it.
    #[error("{0}")]
    BadTag(String),
}

fn found(table: &Table) -> String {
    table.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The model for a project: `<project id>.onnx`, else a model whose .toml lists the
/// project, else the default model, else the only model.
pub(super) fn route(
    table: &Table,
    dir: &str,
    default_model: Option<&str>,
    project: Option<&str>,
) -> Result<Arc<LoadedModel>, RouteError> {
    let dir = dir.to_string();
    if let Some(project) = project {
        if let Some(slot) = table.get(project) {
            return slot.pick(project);
        }
        if let Some(model) = table
            .values()
            .filter_map(|s| s.serving.as_ref())
            .find(|m| m.projects.iter().any(|p| p == project))
        {
            return Ok(Arc::clone(model));
        }
    }
    if let Some(default) = default_model {
        return match table.get(default) {
            Some(slot) => slot.pick(default),
            None => Err(RouteError::MissingDefault {
                name: default.to_string(),
                dir,
                found: found(table),
            }),
        };
    }
    let mut slots = table.iter();
    match (slots.next(), slots.next()) {
        (None, _) => Err(RouteError::NoModels { dir }),
        (Some((name, slot)), None) => slot.pick(name),
        (Some(_), Some(_)) => Err(RouteError::Ambiguous {
            project: project.unwrap_or("(none)").to_string(),
            dir,
            found: found(table),
        }),
    }
}

/// The model a control tag's `model_path` names: a file name in the models folder, with or
/// without `.onnx`. Paths are refused, so a label config can never reach outside it.
pub(super) fn by_path(table: &Table, dir: &str, path: &str) -> Result<Arc<LoadedModel>, RouteError> {
    let name = files::name_in_model_path(path).map_err(|reason| RouteError::BadModelPath {
        path: path.to_string(),
        reason,
    })?;
    match table.get(name) {
        Some(slot) => {
            let model = slot.pick(name)?;
            say_once(path, &model);
            Ok(model)
        }
        None => Err(RouteError::UnknownModel {
            path: path.to_string(),
            dir: dir.to_string(),
            found: found(table),
        }),
    }
}

/// Which file serves a `model_path` that does not name it exactly (`yolov8n.pt`), once per
/// path: every request of a project resolves it again.
fn say_once(path: &str, model: &LoadedModel) {
    static SAID: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let file = format!("{}.onnx", model.name);
    if path.trim() == file {
        return;
    }
    if SAID.get_or_init(Default::default).lock().insert(path.to_string()) {
        log::info!("model_path=\"{path}\" is served by {file}");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::models::table::{Load, Slot};

    /// Routing over placeholder slots: a failed slot names the model it picked.
    fn table(names: &[&str]) -> Table {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Slot {
                        load: Load::Failed(format!("picked {n}")),
                        ..Slot::new(PathBuf::from(format!("{n}.onnx")))
                    },
                )
            })
            .collect()
    }

    fn picked(result: Result<Arc<LoadedModel>, RouteError>) -> String {
        match result {
            Err(RouteError::Failed { name, .. }) => name,
            Err(other) => format!("error: {other}"),
            Ok(_) => unreachable!("placeholder slots are never ready"),
        }
    }

    #[test]
    fn project_model_first() {
        let t = table(&["3", "4", "shared"]);
        assert_eq!(picked(route(&t, "m", Some("shared"), Some("3"))), "3");
        assert_eq!(picked(route(&t, "m", Some("shared"), Some("9"))), "shared");
    }

    #[test]
    fn the_only_model_serves_everyone() {
        let t = table(&["any-name"]);
        assert_eq!(picked(route(&t, "m", None, Some("9"))), "any-name");
        assert_eq!(picked(route(&t, "m", None, None)), "any-name");
    }

    #[test]
    fn several_models_without_a_default_is_a_clear_error() {
        let t = table(&["a", "b"]);
        let err = route(&t, "./models", None, Some("9"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("9.onnx") && err.contains("ML_DEFAULT_MODEL") && err.contains("a, b"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_default_or_no_models_is_named() {
        assert!(matches!(
            route(&table(&["a"]), "m", Some("zz"), None),
            Err(RouteError::MissingDefault { .. })
        ));
        assert!(matches!(
            route(&table(&[]), "m", None, Some("1")),
            Err(RouteError::NoModels { .. })
        ));
    }

    #[test]
    fn a_loading_model_says_so() {
        let mut t = table(&["1"]);
        t.insert("1".into(), Slot::new(PathBuf::from("1.onnx")));
        assert!(matches!(
            route(&t, "m", None, Some("1")),
            Err(RouteError::Loading { .. })
        ));
    }

    #[test]
    fn model_paths_name_files_in_the_folder_only() {
        let t = table(&["det"]);
        assert_eq!(picked(by_path(&t, "m", "det.onnx")), "det");
        assert!(matches!(
            by_path(&t, "m", "../det"),
            Err(RouteError::BadModelPath { .. })
        ));
        assert!(matches!(by_path(&t, "m", "seg"), Err(RouteError::UnknownModel { .. })));
    }
}
