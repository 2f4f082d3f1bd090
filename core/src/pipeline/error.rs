//! What can go wrong with a request as a whole (one API error type, mapped to an HTTP status
//! in `http::reply`), and with one task of it (that task gets an empty result).

use labelstudio_protocol::label_config::ConfigError;

use crate::{
    imaging,
    models::{RouteError, RunError},
    runtime::RuntimeError,
    worker::WorkerFailed,
};
use ls_labelstudio::media::MediaError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the request has no label_config")]
    NoConfig,
    #[error(
        "the backend is busy: {queued} tasks are queued or running and this request's {tasks} do not fit in \
         ML_QUEUE_TASKS ({limit}); retry later"
    )]
    Busy { tasks: usize, queued: usize, limit: usize },
    #[error("the request holds {tasks} tasks, more than ML_QUEUE_TASKS ({limit}) allows in all; send fewer at a time")]
    TooManyTasks { tasks: usize, limit: usize },
    #[error("the image could not be tried: {0}")]
    Try(#[from] TaskError),
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task data has no image under `{0}`")]
    NoImage(String),
    #[error("task data has no video under `{0}`")]
    NoVideo(String),
    #[error("the video cannot be tracked: {0}")]
    Video(#[from] crate::video::VideoError),
    #[error("{0}")]
    VideoConfig(String),
    #[error(transparent)]
    Fetch(#[from] MediaError),
    #[error(transparent)]
    Decode(#[from] imaging::DecodeError),
    #[error("{0}")]
    Plugin(#[from] plugin_api::PluginError),
    #[error(transparent)]
    Inference(#[from] RuntimeError),
    #[error(transparent)]
    Worker(#[from] WorkerFailed),
}

impl From<RunError> for TaskError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Plugin(e) => TaskError::Plugin(e),
            RunError::Inference(e) => TaskError::Inference(e),
            RunError::Worker(e) => TaskError::Worker(e),
            RunError::Batcher(e) => TaskError::Worker(WorkerFailed(e)),
        }
    }
}

impl TaskError {
    /// The cause, as the failure metric names it.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskError::NoImage(_) => "no_image",
            TaskError::NoVideo(_) => "no_video",
            TaskError::Video(_) => "video",
            TaskError::VideoConfig(_) => "video_config",
            TaskError::Fetch(_) => "fetch",
            TaskError::Decode(_) => "decode",
            TaskError::Plugin(_) => "adapter",
            TaskError::Inference(_) => "inference",
            TaskError::Worker(_) => "internal",
        }
    }
}
