//! How an adapter decides whether a model is its own, and says why not.

use crate::{Fit, ModelInfo, PluginError};

use super::model::task;

/// Score for a model whose `task` metadata names the adapter's task.
pub const EXPLICIT_MATCH: u32 = 100;
/// Score for a model without a `task` whose outputs look like the adapter's heads.
pub const SHAPE_MATCH: u32 = 10;

/// One model family: its Ultralytics task name, a guess from the outputs for models
/// without metadata, and how to describe those outputs to a person.
pub struct Family {
    pub task: &'static str,
    /// Whether the model's inputs suit the adapter at all (an `Err` says why not).
    pub input: fn(&ModelInfo) -> Result<(), PluginError>,
    pub looks_like: fn(&ModelInfo) -> bool,
    pub heads: &'static str,
}

impl Family {
    /// Explicit task, else a shape guess, else a refusal with its reason.
    pub fn fit(&self, model: &ModelInfo) -> Fit {
        if let Err(e) = (self.input)(model) {
            return Fit::no(e.message.to_string());
        }
        match task(model) {
            Some(t) if t == self.task => Fit::score(EXPLICIT_MATCH),
            Some(other) => Fit::no(format!(
                "the model's task is `{other}`; this adapter serves `{}`",
                self.task
            )),
            None if (self.looks_like)(model) => Fit::score(SHAPE_MATCH),
            None => Fit::no(format!(
                "the model has no `task` metadata, and its outputs do not look like {}",
                self.heads
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataEntry;

    const FAMILY: Family = Family {
        task: "detect",
        input: |_| Ok(()),
        looks_like: |m| m.outputs.len() == 1,
        heads: "one output",
    };

    fn with_task(task: Option<&str>) -> ModelInfo {
        ModelInfo {
            metadata: task
                .map(|t| MetadataEntry {
                    key: "task".into(),
                    value: t.into(),
                })
                .into_iter()
                .collect(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn explicit_task_beats_a_guess_and_others_are_refused_with_a_reason() {
        assert_eq!(FAMILY.fit(&with_task(Some("detect"))).score, EXPLICIT_MATCH);
        let other = FAMILY.fit(&with_task(Some("pose")));
        assert_eq!(other.score, 0);
        assert!(other.reason.contains("`pose`"), "{}", other.reason);
        let unknown = FAMILY.fit(&with_task(None));
        assert!(unknown.score == 0 && unknown.reason.contains("one output"));
    }
}
