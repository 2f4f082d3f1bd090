//! One `/predict` request, end to end: admit it, route it to a model, then per task (in
//! parallel, answered in order) fetch, decode, prepare, infer, finish, check what the adapter
//! sent, and build Label Studio results. A task that fails gets an empty result in its own
//! slot; it never moves another task's.

mod admission;
mod error;
mod guard;
mod interactive;
mod plan;
mod select;
mod try_model;
mod video;

use std::{sync::Arc, time::Instant};

use futures::{StreamExt, stream};
use log::{info, warn};
use plugin_api::{Params, capability};
use serde_json::Value;

pub use crate::stages::{Stage, StageTimes};
pub use admission::Admission;
pub use error::{ApiError, TaskError};
pub use plan::Plan;
pub use try_model::{PromptTextError, TryRequest};

use labelstudio_protocol::{
    interactive::prompt as interactive_prompt,
    label_config::LabelConfig,
    protocol::{PredictRequest, Task, project_id},
    region::{Prediction, Region},
    results::{self, Found, ImageSize},
};

use crate::{imaging, metrics::Metrics, models::Registry, worker::off_executor as blocking};
use ls_labelstudio::media::MediaClient;

pub struct Outcome {
    pub results: Vec<Prediction>,
    pub model: String,
    pub failed: usize,
    /// Which tasks (by position) failed: their results are empty placeholders.
    pub failed_at: Vec<usize>,
    pub times: StageTimes,
}

pub struct Predictor {
    pub registry: Arc<Registry>,
    pub media: Arc<MediaClient>,
    pub metrics: Arc<Metrics>,
    pub defaults: Params,
    pub task_concurrency: usize,
    /// One permit per task being worked on, over all requests (ML_TASK_CONCURRENCY).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Douglas–Peucker tolerance of polygon outlines, in pixels.
    pub polygon_tolerance: f64,
    /// The threshold a model that knows no prompts runs at for an interactive request.
    pub interactive_conf: f32,
    /// Larger images are refused before they are decoded.
    pub max_image_pixels: u64,
    /// The same for a smart-tool prompt, whose masks are made at the image's own size.
    pub max_prompt_pixels: u64,
    pub admission: Admission,
    pub video: crate::video::VideoSettings,
}

impl Predictor {
    /// The pixel limit of a prompted image, and the setting that sets it.
    pub fn prompt_pixel_limit(&self) -> (u64, &'static str) {
        if self.max_prompt_pixels < self.max_image_pixels {
            (self.max_prompt_pixels, "ML_MAX_PROMPT_PIXELS")
        } else {
            (self.max_image_pixels, "ML_MAX_IMAGE_PIXELS")
        }
    }

    pub async fn predict(&self, request: PredictRequest) -> Result<Outcome, ApiError> {
        let _admitted = self.admission.admit(request.tasks.len())?;
        let project = project_id(request.project.as_ref());
        let config = LabelConfig::parse(request.label_config.as_deref().ok_or(ApiError::NoConfig)?)?;
        let plan = Plan::build(&self.registry, project.as_deref(), Some(&config))?;

        let empty = || Prediction::empty(&plan.version);
        let mut outcome = Outcome {
            results: Vec::with_capacity(request.tasks.len()),
            model: plan.model_names(),
            failed: 0,
            failed_at: Vec::new(),
            times: StageTimes::default(),
        };
        // Smart tools send what the annotator clicked or drew in `context`.
        match interactive_prompt(request.params.context.as_ref()) {
            None => {}
            Some(Err(why)) => {
                info!("interactive request: {why}; answering an empty prediction");
                outcome.results = request.tasks.iter().map(|_| empty()).collect();
                return Ok(outcome);
            }
            Some(Ok(prompt)) => {
                for (i, task) in request.tasks.iter().enumerate() {
                    // Label Studio sends the one task the annotator works on.
                    if i > 0 {
                        warn!(
                            "interactive request: task {} is not the first of the request; left empty",
                            task.label()
                        );
                        outcome.results.push(empty());
                        continue;
                    }
                    self.metrics.task_done();
                    let label = task.label();
                    match self.answer_prompt(&plan, &config, task, &prompt).await {
                        Ok(answered) => {
                            interactive::log_answer(&label, &outcome.model, &prompt, &answered);
                            let regions = answered.result.unwrap_or_default();
                            outcome.results.push(Prediction::new(regions, &plan.version));
                        }
                        Err(e) => {
                            warn!("interactive request, task {label}: {e}; its result is left empty");
                            self.metrics.task_failed(e.kind());
                            outcome.failed += 1;
                            outcome.failed_at.push(i);
                            outcome.results.push(empty());
                        }
                    }
                }
                return Ok(outcome);
            }
        }
        if !plan.fills_anything() {
            warn!(
                "the label config has no control tag a model can fill (RectangleLabels, PolygonLabels, ... on an \
                 Image, without model_skip): answering empty results"
            );
            outcome.results = request.tasks.iter().map(|_| empty()).collect();
            return Ok(outcome);
        }

        let labels: Vec<String> = request.tasks.iter().map(Task::label).collect();
        let plan_ref = &plan;
        // Owned tasks keep the closure free of higher-ranked borrows, so the future stays Send.
        let runs = stream::iter(request.tasks)
            .map(|task| async move { self.run_task(plan_ref, &task).await })
            .buffered(self.task_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for (i, (label, run)) in labels.iter().zip(runs).enumerate() {
            self.metrics.task_done();
            outcome.times.add(&run.times);
            match run.result {
                Ok(result) => outcome.results.push(Prediction::new(result, &plan.version)),
                Err(e) => {
                    warn!("task {label}: {e}; its result is left empty");
                    self.metrics.task_failed(e.kind());
                    outcome.failed += 1;
                    outcome.failed_at.push(i);
                    outcome.results.push(empty());
                }
            }
        }
        Ok(outcome)
    }

    async fn run_task(&self, plan: &Plan, task: &Task) -> TaskRun {
        let mut times = StageTimes::default();
        // Over all requests, only this many tasks hold an image (downloaded, decoded, as a
        // tensor) at once: memory stays bounded however many requests arrive together.
        let _slot = self.in_flight.acquire().await;
        let started = Instant::now();
        let result = self.run_task_inner(plan, task, &mut times).await;
        for (stage, d) in times.by_stage().into_iter().chain([(Stage::Task, started.elapsed())]) {
            if !d.is_zero() {
                self.metrics.stage(stage, d);
            }
        }
        TaskRun { result, times }
    }

    /// The task's image results, then its video tracks.
    async fn run_task_inner(&self, plan: &Plan, task: &Task, times: &mut StageTimes) -> Result<Vec<Region>, TaskError> {
        let mut out = Vec::new();
        if plan.fills_images() {
            out = self.run_image(plan, task, times).await?;
        }
        for group in &plan.videos {
            out.extend(video::track_video(&self.media, &self.video, self.defaults, group, task, times).await?);
        }
        Ok(out)
    }

    /// Fetches and decodes each image a tag labels once, then runs each model of the plan on
    /// the image of its tags.
    async fn run_image(&self, plan: &Plan, task: &Task, times: &mut StageTimes) -> Result<Vec<Region>, TaskError> {
        // A class-agnostic segmenter answers prompts only: without one it gives nothing.
        let answers = |g: &&plan::Group| !g.controls.is_empty() && !g.model.plugin().has(capability::INTERACTIVE_ONLY);
        let mut keys: Vec<&str> = Vec::new();
        for group in plan.groups.iter().filter(answers) {
            if !keys.contains(&group.image_key.as_str()) {
                keys.push(&group.image_key);
            }
        }
        let mut out = Vec::new();
        for key in keys {
            let groups = plan.groups.iter().filter(answers).filter(|g| g.image_key == key);
            out.extend(self.run_one_image(key, groups, task, times).await?);
        }
        Ok(out)
    }

    async fn run_one_image(
        &self,
        key: &str,
        groups: impl Iterator<Item = &plan::Group>,
        task: &Task,
        times: &mut StageTimes,
    ) -> Result<Vec<Region>, TaskError> {
        let reference = task
            .data
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::NoImage(key.to_string()))?;

        let t = Instant::now();
        let bytes = self.media.fetch(reference, task.id.as_ref()).await?;
        times.fetch += t.elapsed();

        let t = Instant::now();
        let max_pixels = self.max_image_pixels;
        let image = blocking(move || imaging::decode(&bytes, max_pixels)).await??;
        times.decode += t.elapsed();
        let image = Arc::new(image);
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };

        let mut out = Vec::new();
        for group in groups {
            let base = group.model.params(self.defaults);
            // The adapter keeps everything above the lowest threshold of the tags it fills;
            // each tag then applies its own.
            let params = Params {
                conf: group
                    .controls
                    .iter()
                    .filter_map(|c| c.score_threshold)
                    .fold(base.conf, f32::min),
                ..base
            };
            let model = Arc::clone(&group.model);
            let (found, run) = model.predict(Arc::clone(&image), params).await?;
            times.prepare += run.prepare;
            times.infer += run.infer;
            times.finish += run.finish;
            // Outlines and RLE cost milliseconds on big images: not on the async executor.
            let (controls, tolerance) = (group.controls.clone(), self.polygon_tolerance);
            let t = Instant::now();
            let max_det = params.max_det as usize;
            let built =
                blocking(move || label_studio_results(&model, found, &controls, size, max_det, base.conf, tolerance))
                    .await?;
            times.finish += t.elapsed();
            out.extend(built);
        }
        Ok(out)
    }
}

/// What a model found, checked, as the Label Studio results of `controls`. Blocking
/// (outlines and RLE cost milliseconds on big images).
fn label_studio_results(
    model: &crate::models::LoadedModel,
    found: plugin_api::FrameOutput,
    controls: &[labelstudio_protocol::label_config::Control],
    size: ImageSize,
    max_det: usize,
    conf: f32,
    tolerance: f64,
) -> Vec<Region> {
    let frame = guard::sanitize(found, model.class_names.len(), max_det, size);
    let found = Found {
        frame: &frame,
        class_names: &model.class_names,
        keypoint_names: &model.described.keypoint_names,
        size,
    };
    results::build(&found, controls, conf, tolerance)
}

struct TaskRun {
    result: Result<Vec<Region>, TaskError>,
    times: StageTimes,
}
