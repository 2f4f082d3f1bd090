//! What a job is, as the API shows it and the state folder keeps it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Ultralytics' numbers by its names (`train/box_loss`, `metrics/mAP50(B)`, ...); a number
/// that was not finite is `None` (JSON null).
pub type Measured = BTreeMap<String, Option<f64>>;

/// A job's latest measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Metrics {
    Predict(PredictProgress),
    /// Training: the last epoch's numbers, as the trainer reported them.
    Train(Measured),
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::Train(Measured::new())
    }
}

/// How far a prediction job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictProgress {
    pub tasks_per_second: f64,
    /// `None` until a task has been predicted.
    pub eta_seconds: Option<f64>,
    pub predicted: u64,
    pub skipped_current: u64,
    pub failed: u64,
    pub model_version: String,
}

/// One training epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: u64,
    #[serde(flatten)]
    pub metrics: Measured,
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobResult {
    Train(Box<TrainResult>),
    Predict(PredictResult),
}

impl std::fmt::Display for JobResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// A training's outcome: the gate's scores and decision, and what was installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    pub installed: bool,
    /// The decision in words.
    pub reason: String,
    /// The model the training replaces or creates.
    pub model: String,
    /// The gate's metric (`mAP50-95`, `top-1 accuracy`).
    pub metric: String,
    pub new_score: Option<f64>,
    pub serving_score: Option<f64>,
    pub serving_version: Option<String>,
    /// The checkpoint (or architecture) it started from.
    pub start: String,
    pub epochs: u64,
    pub data: DatasetSummary,
    /// The installed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub seconds: Option<f64>,
}

/// What a training's dataset held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// Ultralytics' task name.
    pub task: String,
    /// The control tag it trains.
    pub control: String,
    pub classes: Vec<String>,
    /// Tasks, annotated ones, train and val images, skipped regions, ...
    pub counts: BTreeMap<String, u64>,
}

/// A prediction job's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictResult {
    pub model_version: String,
    pub tasks: u64,
    pub predicted: u64,
    pub written: u64,
    pub skipped_current: u64,
    pub failed: u64,
    pub seconds: Option<f64>,
}

/// `x` if it is finite: JSON has no NaN or infinities.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
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
    pub metrics: Metrics,
    /// Training: the metrics of each epoch, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<Epoch>,
    /// Things worth knowing that did not stop the job (skipped tasks, a start from scratch).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the job did when it finished: counts, the install decision and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
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
            metrics: Metrics::default(),
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
    fn results_and_metrics_read_back_as_the_kind_they_were() {
        let train = JobResult::Train(Box::new(TrainResult {
            installed: true,
            reason: "no model served project 3; installed as 3".into(),
            model: "3".into(),
            metric: "mAP50-95".into(),
            new_score: Some(0.5),
            serving_score: None,
            serving_version: None,
            start: "yolov8n.yaml".into(),
            epochs: 2,
            data: DatasetSummary {
                task: "detect".into(),
                control: "label".into(),
                classes: vec!["cat".into()],
                counts: BTreeMap::from([("train".into(), 4)]),
            },
            version: Some("3@abc".into()),
            seconds: finite(f64::NAN),
        }));
        let predict = JobResult::Predict(PredictResult {
            model_version: "3@abc".into(),
            tasks: 5,
            predicted: 4,
            written: 4,
            skipped_current: 0,
            failed: 1,
            seconds: Some(1.5),
        });
        for result in [train, predict] {
            let text = serde_json::to_string(&result).unwrap();
            assert_eq!(serde_json::from_str::<JobResult>(&text).unwrap(), result, "{text}");
        }
        let progress = Metrics::Predict(PredictProgress {
            tasks_per_second: 2.0,
            eta_seconds: None,
            predicted: 1,
            skipped_current: 0,
            failed: 0,
            model_version: "v".into(),
        });
        let trained = Metrics::Train(Measured::from([
            ("train/box_loss".into(), Some(1.25)),
            ("lr".into(), None),
        ]));
        for metrics in [progress, trained, Metrics::default()] {
            let text = serde_json::to_string(&metrics).unwrap();
            assert_eq!(serde_json::from_str::<Metrics>(&text).unwrap(), metrics, "{text}");
        }
        let epoch: Epoch = serde_json::from_str(r#"{"epoch": 3, "metrics/mAP50(B)": 0.25}"#).unwrap();
        assert_eq!((epoch.epoch, epoch.metrics["metrics/mAP50(B)"]), (3, Some(0.25)));
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
