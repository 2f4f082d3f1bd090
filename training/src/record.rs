//! What a job is, as the API shows it and the state folder keeps it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The lines of a job's log kept for the API.
pub const LOG_TAIL: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Fine-tune the project's model on its annotations, and install it if it is not worse.
    Train,
    /// Predict every task of the project and store the predictions in Label Studio.
    Predict,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [JobKind::Train, JobKind::Predict];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Predict => "predict",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// What a job request may set besides its kind and project. Unknown keys are refused, so a
/// typo never silently trains with defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// Training: epochs (default: the model's `[train]` settings, else ML_TRAIN_EPOCHS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imgsz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<u32>,
    /// Training: install even if the new model scores worse than the serving one. Prediction:
    /// predict tasks again that already hold a prediction of the current model version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Training: start from the architecture's random weights, ignoring any checkpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_scratch: bool,
}

/// Seconds since the Unix epoch, with milliseconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub project: u64,
    pub state: JobState,
    #[serde(default)]
    pub options: JobOptions,
    /// Who asked: `label-studio` (Start Training), `api`, `auto` (annotation count), `cli`.
    pub origin: String,
    /// 0 to 1.
    pub progress: f64,
    /// What it is doing now, in words: "epoch 7/20", "1,200/5,000 tasks".
    #[serde(default)]
    pub step: String,
    /// The latest measurements: losses and mAP for training, rate and ETA for prediction.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Training: the metrics of each epoch, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<Map<String, Value>>,
    /// Things worth knowing that did not stop the job (skipped tasks, a start from scratch).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the job did when it finished: counts, the install decision and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    /// The trainer's process id while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default)]
    pub log: Vec<String>,
}

impl Job {
    pub fn new(id: u64, kind: JobKind, project: u64, options: JobOptions, origin: &str) -> Self {
        Self {
            id,
            kind,
            project,
            state: JobState::Queued,
            options,
            origin: origin.to_string(),
            progress: 0.0,
            step: "queued".into(),
            metrics: Map::new(),
            epochs: Vec::new(),
            warnings: Vec::new(),
            result: None,
            error: None,
            created_at: now(),
            started_at: None,
            finished_at: None,
            pid: None,
            log: Vec::new(),
        }
    }

    pub fn push_log(&mut self, line: &str) {
        if self.log.len() >= LOG_TAIL {
            self.log.remove(0);
        }
        self.log.push(line.to_string());
    }

    /// The job as the list shows it: everything but the log.
    pub fn summary(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.remove("log");
            object.remove("epochs");
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_options_are_refused() {
        let parsed: Result<JobOptions, _> = serde_json::from_value(serde_json::json!({"epoch": 3}));
        assert!(parsed.unwrap_err().to_string().contains("unknown field `epoch`"));
        let parsed: JobOptions = serde_json::from_value(serde_json::json!({"epochs": 3, "force": true})).unwrap();
        assert_eq!((parsed.epochs, parsed.force), (Some(3), true));
    }

    #[test]
    fn the_log_keeps_its_tail() {
        let mut job = Job::new(1, JobKind::Train, 3, JobOptions::default(), "api");
        for i in 0..(LOG_TAIL + 5) {
            job.push_log(&format!("line {i}"));
        }
        assert_eq!(job.log.len(), LOG_TAIL);
        assert_eq!(job.log[0], "line 5");
        assert_eq!(
            job.log.last().map(String::as_str),
            Some(format!("line {}", LOG_TAIL + 4).as_str())
        );
    }
}
