//! One `/predict` request, end to end: route to a model, then per task (in parallel, in
//! order) fetch, decode, prepare, infer, finish, and build Label Studio results.
//! A task that fails gets an empty result in its own slot; it never moves another task's.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use log::warn;
use plugin_api::{Geometry, ImageRef, Params, Region, TensorRef};
use serde_json::Value;

use crate::{
    imaging::{self, RgbImage},
    labelstudio::{
        label_config::{ConfigError, Control, ControlKind, LabelConfig},
        media::{MediaClient, MediaError},
        protocol::{PredictRequest, Task, project_id},
        results::{self, ImageSize},
    },
    metrics::Metrics,
    plan::Plan,
    registry::{LoadedModel, Registry, RouteError},
};

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
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
}

#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error("task data has no image under `{0}`")]
    NoImage(String),
    #[error(transparent)]
    Fetch(#[from] MediaError),
    #[error(transparent)]
    Decode(#[from] imaging::DecodeError),
    #[error("{0}")]
    Plugin(#[from] plugin_api::PluginError),
    #[error(transparent)]
    Inference(#[from] crate::runtime::RuntimeError),
    #[error("a worker thread failed: {0}")]
    Join(String),
}

impl TaskError {
    fn kind(&self) -> &'static str {
        match self {
            TaskError::NoImage(_) => "no_image",
            TaskError::Fetch(_) => "fetch",
            TaskError::Decode(_) => "decode",
            TaskError::Plugin(_) => "adapter",
            TaskError::Inference(_) => "inference",
            TaskError::Join(_) => "internal",
        }
    }
}

/// Time spent in each stage, summed over the tasks of a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    pub fetch: Duration,
    pub decode: Duration,
    pub prepare: Duration,
    pub infer: Duration,
    pub finish: Duration,
}

impl StageTimes {
    fn add(&mut self, other: &StageTimes) {
        self.fetch += other.fetch;
        self.decode += other.decode;
        self.prepare += other.prepare;
        self.infer += other.infer;
        self.finish += other.finish;
    }
}

pub struct Outcome {
    pub results: Vec<Value>,
    pub model: String,
    pub failed: usize,
    pub times: StageTimes,
}

pub struct Predictor {
    pub registry: Arc<Registry>,
    pub media: MediaClient,
    pub metrics: Arc<Metrics>,
    pub defaults: Params,
    pub task_concurrency: usize,
    /// One permit per task being worked on, over all requests (ML_TASK_CONCURRENCY).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Douglas–Peucker tolerance of polygon outlines, in pixels.
    pub polygon_tolerance: f64,
    /// Larger images are refused before they are decoded.
    pub max_image_pixels: u64,
    /// One permit per task admitted (running or waiting), over all requests.
    pub queue: Arc<tokio::sync::Semaphore>,
    pub queue_capacity: usize,
}

impl Predictor {
    pub async fn predict(&self, request: PredictRequest) -> Result<Outcome, PredictError> {
        let (tasks, limit) = (request.tasks.len(), self.queue_capacity);
        if tasks > limit {
            return Err(PredictError::TooManyTasks { tasks, limit });
        }
        // Admission, not waiting: a full queue is answered at once, so memory stays bounded
        // and Label Studio (which does not retry 5xx) gets a clear error in the log.
        let _admitted = Arc::clone(&self.queue)
            .try_acquire_many_owned(tasks.max(1) as u32)
            .map_err(|_| PredictError::Busy {
                tasks,
                queued: limit - self.queue.available_permits(),
                limit,
            })?;
        let project = project_id(request.project.as_ref());
        let config = LabelConfig::parse(request.label_config.as_deref().ok_or(PredictError::NoConfig)?)?;
        let plan = Plan::build(&self.registry, project.as_deref(), Some(&config))?;

        let empty = || results::prediction(Vec::new(), &plan.version);
        let mut outcome = Outcome {
            results: Vec::with_capacity(request.tasks.len()),
            model: plan.model_names(),
            failed: 0,
            times: StageTimes::default(),
        };
        // Smart tools send what the user clicked in `context`; our models cannot use it, and an
        // empty answer is what Label Studio handles best.
        if is_interactive(request.params.context.as_ref()) {
            outcome.results = request.tasks.iter().map(|_| empty()).collect();
            return Ok(outcome);
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
        for (label, run) in labels.iter().zip(runs) {
            self.metrics.task_done();
            outcome.times.add(&run.times);
            match run.result {
                Ok(result) => outcome.results.push(results::prediction(result, &plan.version)),
                Err(e) => {
                    warn!("task {label}: {e}; its result is left empty");
                    self.metrics.task_failed(e.kind());
                    outcome.failed += 1;
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
        for (stage, d) in [
            ("fetch", times.fetch),
            ("decode", times.decode),
            ("prepare", times.prepare),
            ("infer", times.infer),
            ("finish", times.finish),
            ("task", started.elapsed()),
        ] {
            if !d.is_zero() {
                self.metrics.stage(stage, d);
            }
        }
        TaskRun { result, times }
    }

    /// Fetches and decodes the image once, then runs each model of the plan on it.
    async fn run_task_inner(&self, plan: &Plan, task: &Task, times: &mut StageTimes) -> Result<Vec<Value>, TaskError> {
        let reference = task
            .data
            .get(&plan.image_key)
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::NoImage(plan.image_key.clone()))?;

        let t = Instant::now();
        let bytes = self.media.fetch(reference, task.id.as_ref()).await?;
        times.fetch = t.elapsed();

        let t = Instant::now();
        let max_pixels = self.max_image_pixels;
        let image = tokio::task::spawn_blocking(move || imaging::decode(&bytes, max_pixels))
            .await
            .map_err(|e| TaskError::Join(e.to_string()))??;
        times.decode = t.elapsed();
        let image = Arc::new(image);
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };

        let mut out = Vec::new();
        for group in plan.groups.iter().filter(|g| !g.controls.is_empty()) {
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
            let regions = self.run_model(&group.model, Arc::clone(&image), params, times).await?;
            let regions = sanitize(regions, &group.model, params.max_det as usize, size);
            // Outlines and RLE cost milliseconds on big images: not on the async executor.
            let (model, controls, tolerance) =
                (Arc::clone(&group.model), group.controls.clone(), self.polygon_tolerance);
            let t = Instant::now();
            let built = tokio::task::spawn_blocking(move || {
                build_results(&model, &controls, &regions, size, base.conf, tolerance)
            })
            .await
            .map_err(|e| TaskError::Join(e.to_string()))?;
            times.finish += t.elapsed();
            out.extend(built);
        }
        Ok(out)
    }

    async fn run_model(
        &self,
        model: &Arc<LoadedModel>,
        image: Arc<RgbImage>,
        params: Params,
        times: &mut StageTimes,
    ) -> Result<Vec<Region>, TaskError> {
        let m = Arc::clone(model);
        let t = Instant::now();
        let prepared = tokio::task::spawn_blocking(move || {
            m.adapter.prepare(
                &m.info,
                ImageRef::new(image.width, image.height, &image.pixels),
                &params,
            )
        })
        .await
        .map_err(|e| TaskError::Join(e.to_string()))??;
        times.prepare += t.elapsed();

        let t = Instant::now();
        let inputs = prepared.inputs.into_vec();
        let context = prepared.context;
        let outputs = model.pool.run(inputs).await?;
        times.infer += t.elapsed();

        let m = Arc::clone(model);
        let t = Instant::now();
        let regions = tokio::task::spawn_blocking(move || {
            let views: Vec<TensorRef<'_>> = outputs
                .iter()
                .map(|o| TensorRef::new(&o.name, &o.shape, &o.data))
                .collect();
            m.adapter.finish(&m.info, &views, context, &params)
        })
        .await
        .map_err(|e| TaskError::Join(e.to_string()))??;
        times.finish += t.elapsed();
        Ok(regions)
    }
}

struct TaskRun {
    result: Result<Vec<Value>, TaskError>,
    times: StageTimes,
}

fn is_interactive(context: Option<&Value>) -> bool {
    context
        .and_then(|c| c.get("result"))
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

/// Drops what a faulty adapter could send: unknown classes, non-finite numbers, masks that
/// do not cover the image exactly, more than `max_det` regions of one kind.
fn sanitize(mut regions: Vec<Region>, model: &LoadedModel, max_det: usize, size: ImageSize) -> Vec<Region> {
    let pixels = size.width as u64 * size.height as u64;
    regions.retain(|r| {
        (r.class_id as usize) < model.class_names.len()
            && r.score.is_finite()
            && match &r.geometry {
                Geometry::Box(b) => [b.x, b.y, b.width, b.height, b.rotation].iter().all(|v| v.is_finite()),
                Geometry::Polygon(points) => points.iter().all(|p| p.x.is_finite() && p.y.is_finite()),
                Geometry::Keypoints(points) => points.iter().all(|p| p.x.is_finite() && p.y.is_finite()),
                Geometry::Mask(m) => {
                    (m.width, m.height) == (size.width, size.height)
                        && m.runs.iter().map(|r| *r as u64).sum::<u64>() == pixels
                }
                Geometry::Class => true,
            }
    });
    // A segmentation adapter sends a box and a mask per instance: count each kind.
    let mut seen = [0usize; 5];
    regions.retain(|r| {
        let kind = match r.geometry {
            Geometry::Box(_) => 0,
            Geometry::Polygon(_) => 1,
            Geometry::Mask(_) => 2,
            Geometry::Keypoints(_) => 3,
            Geometry::Class => 4,
        };
        seen[kind] += 1;
        seen[kind] <= max_det
    });
    regions
}

/// Label Studio results for one image: each region goes to every control tag that can show
/// its geometry and has a label for its class, above that tag's score threshold.
fn build_results(
    model: &LoadedModel,
    controls: &[Control],
    regions: &[Region],
    size: ImageSize,
    default_conf: f32,
    polygon_tolerance: f64,
) -> Vec<Value> {
    // An adapter that sends polygons made them the way its model family does; its masks
    // then fill BrushLabels only.
    let has_polygons = regions.iter().any(|r| matches!(r.geometry, Geometry::Polygon(_)));
    let mut out = Vec::new();
    for control in controls {
        let threshold = control.score_threshold.unwrap_or(default_conf);
        if control.kind == ControlKind::Choices {
            let mut picked: Vec<(&Region, &str)> = regions
                .iter()
                .filter(|r| matches!(r.geometry, Geometry::Class) && r.score > threshold)
                .filter_map(|r| Some((r, control.label_for(model.class_name(r.class_id)?)?)))
                .collect();
            picked.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
            picked.dedup_by(|a, b| a.1 == b.1);
            picked.truncate(if control.multiple { picked.len() } else { 1 });
            out.extend(results::choices(&picked, control));
            continue;
        }
        for region in regions.iter().filter(|r| r.score > threshold) {
            let Some(class_name) = model.class_name(region.class_id) else {
                continue;
            };
            let Some(label) = control.label_for(class_name) else {
                continue;
            };
            let result = match control.kind {
                ControlKind::RectangleLabels => results::rectangle(region, label, control, size),
                ControlKind::PolygonLabels if has_polygons && matches!(region.geometry, Geometry::Mask(_)) => None,
                ControlKind::PolygonLabels => results::polygon(region, label, control, size, polygon_tolerance),
                ControlKind::BrushLabels => results::brush(region, label, control, size),
                ControlKind::KeyPointLabels | ControlKind::Choices => None,
            };
            out.extend(result);
        }
    }
    out
}
