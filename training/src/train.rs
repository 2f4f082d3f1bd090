//! A training job: the project's annotations from Label Studio become an Ultralytics dataset,
//! the trainer fine-tunes the checkpoint behind the project's model (or a base checkpoint,
//! or the architecture from scratch), the result is exported to ONNX, loaded by our own
//! runtime and adapters, scored against the serving model on the val split, and installed
//! only if it is not worse (unless forced). The new version then serves through hot reload.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use crate::yolo_dataset::TrainTask;
use labelstudio_protocol::{
    annotation,
    label_config::{Control, LabelConfig},
};

use super::{
    Context, Handle, JobError, dataset,
    evaluate::{self, Metric},
    install,
    record::{Job, JobOptions, JobResult, TrainResult, finite},
    trainer,
};
use ls_core::{
    imaging,
    models::{LoadedModel, Sidecar, TrainTable},
    worker::off_executor as blocking,
};
use ls_labelstudio::api::Project;

/// Training defaults (ML_TRAIN_*), which a model's `[train]` table and the job override.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// The trainer venv's python (ML_TRAINER_PYTHON).
    pub python: PathBuf,
    pub device: String,
    pub threads: u32,
    pub epochs: u32,
    pub imgsz: u32,
    pub batch: u32,
    pub patience: u32,
    /// A checkpoint to start from when the model has none of its own (ML_TRAIN_BASE).
    pub base: Option<PathBuf>,
    /// The architecture trained from scratch without any checkpoint (ML_TRAIN_ARCH).
    pub arch: String,
    /// Earlier versions kept per model for rollback (ML_MODEL_HISTORY).
    pub history: usize,
}

/// Scores at most this many val images per model: enough to rank two models.
const MAX_SCORED: usize = 500;
/// The ONNX opset of exported models (the one our fixtures and Ultralytics' default use).
const OPSET: u32 = 17;
/// Scoring keeps every region above this, for the whole precision-recall curve.
const SCORE_CONF: f32 = 0.001;

fn arch_yaml(arch: &str, task: TrainTask) -> String {
    let suffix = match task {
        TrainTask::Detect => "",
        TrainTask::Segment => "-seg",
        TrainTask::Pose => "-pose",
        TrainTask::Obb => "-obb",
        TrainTask::Classify => "-cls",
    };
    format!("{arch}{suffix}.yaml")
}

pub async fn run(ctx: &Context, job: &Handle, record: &Job) -> Result<JobResult, JobError> {
    let work = ctx.state_dir.join("work").join(format!("job-{}", record.id));
    let outcome = train(ctx, job, record, &work).await;
    // The dataset and the trainer's run folder can be large; what is worth keeping was copied out.
    let _ = blocking(move || std::fs::remove_dir_all(work)).await;
    outcome.map(|r| JobResult::Train(Box::new(r)))
}

/// A training, step by step: the dataset, the model it replaces and its settings, the
/// checkpoint to start from, the trainer, the new model loaded here, the gate, the install.
async fn train(ctx: &Context, job: &Handle, record: &Job, work: &Path) -> Result<TrainResult, JobError> {
    let clock = Clock(Instant::now());
    let (project, data) = dataset_of(ctx, job, record.project, work, &clock).await?;
    let target = Target::choose(ctx, record.project).await?;
    let settings = target.settings(&record.options, &ctx.train);
    let start = starting_point(ctx, job, &target, &record.options, data.plan.task).await?;
    job.note(format!(
        "{}: training from {start}; {} epochs at imgsz {}, batch {}",
        clock.at(),
        settings.epochs,
        settings.imgsz,
        settings.batch
    ));
    let trained = run_trainer(ctx, job, &data, &start, &settings, work).await?;
    job.note(format!("{}: trained {} epochs", clock.at(), trained.epochs_run));

    let sidecar = new_sidecar(
        target.sidecar.clone(),
        &target.name,
        &target.project,
        record,
        &data,
        &start,
        &trained,
    );
    let sidecar_text = sidecar.to_toml().map_err(|e| JobError::Failed(e.to_string()))?;
    let candidate = load_candidate(ctx, job, &target, &trained, &sidecar_text, work).await?;
    let scores = gate(
        ctx,
        job,
        &project.label_config,
        &data,
        &candidate,
        target.serving.as_ref(),
    )
    .await?;
    drop(candidate);
    job.check()?;
    job.note(format!("{}: scored the models", clock.at()));

    let decision = decide(&scores, record.options.force, record.project, &target.name);
    job.note(decision.reason.clone());
    let mut result = TrainResult {
        installed: false,
        reason: decision.reason,
        model: target.name.clone(),
        metric: scores.metric.name().to_string(),
        new_score: finite(scores.new),
        serving_score: scores.serving.and_then(finite),
        serving_version: target.serving.as_ref().map(|m| m.version.clone()),
        start,
        epochs: trained.epochs_run,
        data: data.summary(),
        version: None,
        seconds: None,
    };
    if decision.install {
        result.version = install(ctx, job, &target.name, &trained, sidecar_text, record.id).await?;
        result.installed = true;
    }
    result.seconds = finite(clock.0.elapsed().as_secs_f64());
    Ok(result)
}

/// Seconds since the job started, for its notes.
struct Clock(Instant);

impl Clock {
    fn at(&self) -> String {
        format!("{:.1} s", self.0.elapsed().as_secs_f64())
    }
}

/// The project, its tasks, and the dataset written from their annotations.
async fn dataset_of(
    ctx: &Context,
    job: &Handle,
    project_id: u64,
    work: &Path,
    clock: &Clock,
) -> Result<(Project, dataset::Dataset), JobError> {
    job.progress(0.0, format!("reading project {project_id} from Label Studio"));
    let project = ctx.api.project(project_id).await?;
    job.note(format!("project {project_id}: {}", project.title));
    let tasks = dataset::all_tasks(&ctx.api, project_id, job, (0.01, 0.05)).await?;
    {
        let work = work.to_path_buf();
        blocking(move || std::fs::create_dir_all(work.join("run")))
            .await?
            .map_err(|e| JobError::Failed(format!("cannot create the job's folder: {e}")))?;
    }
    let data = dataset::build(
        &ctx.api,
        &project.label_config,
        &tasks,
        &work.join("data"),
        ctx.predictor.max_image_pixels,
        job,
        (0.05, 0.15),
    )
    .await?;
    job.note(format!(
        "{}: dataset ready: {} task, {} classes, counts {:?}",
        clock.at(),
        data.plan.task.ultralytics(),
        data.plan.classes.len(),
        data.counts
    ));
    Ok((project, data))
}

/// The model a training replaces or creates, and the one serving the project now.
struct Target {
    /// The project's id as a model name.
    project: String,
    serving: Option<Arc<LoadedModel>>,
    /// The project's own model, else `<project id>`: a model shared by several projects is
    /// never replaced by one project's training.
    name: String,
    sidecar: Option<Sidecar>,
}

/// Epochs, image size, batch and patience of one training.
struct Settings {
    epochs: u32,
    imgsz: u32,
    batch: u32,
    patience: u32,
}

impl Target {
    async fn choose(ctx: &Context, project_id: u64) -> Result<Self, JobError> {
        let project = project_id.to_string();
        let serving = ctx.registry.route(Some(&project)).ok();
        let name = match &serving {
            Some(m) if m.name == project || m.projects.contains(&project) => m.name.clone(),
            _ => project.clone(),
        };
        let sidecar = ctx
            .registry
            .sidecar(&name)
            .await
            .map_err(|e| JobError::Failed(e.to_string()))?;
        Ok(Self {
            project,
            serving,
            name,
            sidecar,
        })
    }

    /// The job's options, else the model's `[train]` table, else the server's defaults.
    fn settings(&self, options: &JobOptions, defaults: &TrainSettings) -> Settings {
        let table = self.sidecar.as_ref().and_then(|s| s.train).unwrap_or_default();
        let pick = |job: Option<u32>, model: Option<u32>, default: u32| job.or(model).unwrap_or(default).max(1);
        Settings {
            epochs: pick(options.epochs, table.epochs, defaults.epochs),
            imgsz: pick(options.imgsz, table.imgsz, defaults.imgsz),
            batch: pick(options.batch, table.batch, defaults.batch),
            patience: pick(options.patience, table.patience, defaults.patience),
        }
    }
}

/// The checkpoint to fine-tune (the serving model's, the target's, ML_TRAIN_BASE), else the
/// architecture from random weights, with a warning.
async fn starting_point(
    ctx: &Context,
    job: &Handle,
    target: &Target,
    options: &JobOptions,
    task: TrainTask,
) -> Result<String, JobError> {
    let store = ctx.registry.store();
    let mut names = Vec::new();
    if !options.from_scratch {
        names.extend(target.serving.as_ref().map(|m| m.name.clone()));
        names.push(target.name.clone());
    }
    let base = ctx.train.base.clone().filter(|_| !options.from_scratch);
    let found = blocking(move || {
        if let Some(base) = &base
            && !base.is_file()
        {
            log::warn!("ML_TRAIN_BASE {} does not exist; it is not used", base.display());
        }
        names
            .iter()
            .find_map(|name| store.checkpoint(name))
            .or(base.filter(|b| b.is_file()))
    })
    .await?;
    Ok(match found {
        Some(checkpoint) => checkpoint.canonicalize().unwrap_or(checkpoint).display().to_string(),
        None => {
            let yaml = arch_yaml(&ctx.train.arch, task);
            job.warn(format!(
                "no checkpoint to start from (none from an earlier training, no ML_TRAIN_BASE){}: training {yaml} from \
                 random weights, which needs many annotations and epochs to be useful",
                if options.from_scratch {
                    ", and from_scratch was asked"
                } else {
                    ""
                }
            ));
            yaml
        }
    })
}

async fn run_trainer(
    ctx: &Context,
    job: &Handle,
    data: &dataset::Dataset,
    start: &str,
    settings: &Settings,
    work: &Path,
) -> Result<trainer::Trained, JobError> {
    let spec = trainer::Spec {
        task: data.plan.task.ultralytics(),
        data: data.data.canonicalize().unwrap_or(data.data.clone()),
        model: start.to_string(),
        epochs: settings.epochs,
        imgsz: settings.imgsz,
        batch: settings.batch,
        patience: settings.patience,
        device: ctx.train.device.clone(),
        workers: 0,
        threads: ctx.train.threads,
        seed: 0,
        out: work.join("run").canonicalize().unwrap_or(work.join("run")),
        export: trainer::Export {
            opset: OPSET,
            imgsz: settings.imgsz,
        },
    };
    let trained = trainer::train(&ctx.train.python, &spec, job, (0.15, 0.85)).await?;
    job.check()?;
    Ok(trained)
}

/// The new model, loaded by our runtime with the sidecar it will have: it must serve.
async fn load_candidate(
    ctx: &Context,
    job: &Handle,
    target: &Target,
    trained: &trainer::Trained,
    sidecar_text: &str,
    work: &Path,
) -> Result<Arc<LoadedModel>, JobError> {
    job.progress(0.86, "loading the trained model");
    let staged_sidecar = work.join("staged.toml");
    {
        let (path, text) = (staged_sidecar.clone(), sidecar_text.to_string());
        blocking(move || std::fs::write(path, text))
            .await?
            .map_err(|e| JobError::Failed(format!("cannot write the new settings: {e}")))?;
    }
    ctx.registry
        .load_unserved(trained.onnx.clone(), staged_sidecar, &target.name)
        .await
        .map_err(|e| {
            JobError::Failed(format!(
                "the trained model does not load here, so it is not installed: {e}"
            ))
        })
}

/// Both models' scores, the same way on the same val images.
struct Scores {
    metric: Metric,
    new: f64,
    serving: Option<f64>,
}

async fn gate(
    ctx: &Context,
    job: &Handle,
    label_config: &str,
    data: &dataset::Dataset,
    candidate: &Arc<LoadedModel>,
    serving: Option<&Arc<LoadedModel>>,
) -> Result<Scores, JobError> {
    let config = LabelConfig::parse(label_config).map_err(|e| JobError::Failed(e.to_string()))?;
    let controls: Vec<Control> = config
        .active_controls()
        .filter(|c| c.name == data.plan.control)
        .cloned()
        .collect();
    let metric = if data.plan.task == TrainTask::Classify {
        Metric::Top1
    } else {
        Metric::BoxMap
    };
    job.progress(
        0.88,
        format!("scoring the new model on {} val images", data.val().count()),
    );
    let new = score(ctx, candidate, data, &controls, metric).await?;
    let serving = match serving {
        Some(m) => {
            job.progress(0.92, format!("scoring the serving model {} on the same images", m.name));
            Some(score(ctx, m, data, &controls, metric).await?)
        }
        None => None,
    };
    Ok(Scores { metric, new, serving })
}

struct Decision {
    install: bool,
    reason: String,
}

/// Installed if not worse than the serving model, or forced.
fn decide(scores: &Scores, force: bool, project_id: u64, target: &str) -> Decision {
    let (name, new) = (scores.metric.name(), scores.new);
    let better = scores.serving.is_none_or(|s| new + 1e-9 >= s);
    let reason = match (scores.serving, better, force) {
        (None, _, _) => format!("no model served project {project_id}; installed as {target}"),
        (Some(s), true, _) => format!("{name} {new:.4} is not worse than the serving model's {s:.4}"),
        (Some(s), false, true) => {
            format!("{name} {new:.4} is worse than the serving model's {s:.4}, installed anyway (force)")
        }
        (Some(s), false, false) => format!(
            "not installed: {name} {new:.4} is worse than the serving model's {s:.4} (send \"force\": true to install \
             it anyway)"
        ),
    };
    Decision {
        install: better || force,
        reason,
    }
}

/// Installs the trained model as a new version of `target`; the version that serves.
async fn install(
    ctx: &Context,
    job: &Handle,
    target: &str,
    trained: &trainer::Trained,
    sidecar: String,
    job_id: u64,
) -> Result<Option<String>, JobError> {
    job.progress(0.96, format!("installing {target}"));
    let status = install::install_trained(
        &ctx.registry,
        target,
        install::Trained {
            onnx: trained.onnx.clone(),
            checkpoint: trained.checkpoint.clone(),
            sidecar,
        },
        ctx.train.history,
        &format!("training job {job_id}"),
    )
    .await
    .map_err(|e| JobError::Failed(format!("the trained model was not installed: {e}")))?;
    if let Some(error) = &status.error {
        return Err(JobError::Failed(format!(
            "the trained model was installed but does not serve: {error}"
        )));
    }
    Ok(status.model_version)
}

/// The sidecar of the trained model: the settings of the one it replaces (the labels aside:
/// the new model names its classes after the project's labels itself), the project, and where
/// it came from.
fn new_sidecar(
    previous: Option<Sidecar>,
    target: &str,
    project: &str,
    record: &Job,
    data: &dataset::Dataset,
    start: &str,
    trained: &trainer::Trained,
) -> Sidecar {
    let mut sidecar = previous.unwrap_or_default();
    sidecar.labels = match data.plan.task {
        // A classifier numbers its classes by folder name (Ultralytics lists them sorted), and
        // a folder name cannot hold every character a label can: the sidecar names them.
        TrainTask::Classify => Some(dataset::classes_by_folder(&data.plan.classes)),
        _ => None,
    };
    if target != project && !sidecar.projects.iter().any(|p| p == project) {
        sidecar.projects.push(project.to_string());
    }
    sidecar.train = sidecar
        .train
        .or(Some(TrainTable::default()))
        .filter(|t| *t != TrainTable::default());
    let count = |key: &str| toml::Value::Integer(data.counts.get(key).copied().unwrap_or(0) as i64);
    sidecar.trained = [
        ("job", toml::Value::Integer(record.id as i64)),
        ("project", toml::Value::String(project.to_string())),
        ("task", toml::Value::String(data.plan.task.ultralytics().to_string())),
        ("start", toml::Value::String(start.to_string())),
        ("epochs", toml::Value::Integer(trained.epochs_run as i64)),
        ("train_images", count("train")),
        ("val_images", count("val")),
        ("at", toml::Value::Float(super::record::now())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    sidecar
}

/// A model's score on the val split (at most MAX_SCORED images).
async fn score(
    ctx: &Context,
    model: &Arc<LoadedModel>,
    data: &dataset::Dataset,
    controls: &[Control],
    metric: Metric,
) -> Result<f64, JobError> {
    let Some(control) = controls.first() else {
        return Err(JobError::Failed(format!(
            "the label config has no active tag {} to score",
            data.plan.control
        )));
    };
    // Pose is scored by the keypoints' parent boxes, annotated in the parent tag.
    let truth_tag = data.plan.parent.as_deref().unwrap_or(&data.plan.control);
    let mut boxes = Vec::new();
    let mut choices = Vec::new();
    for example in data.val().take(MAX_SCORED) {
        let (path, max) = (example.image.clone(), ctx.predictor.max_image_pixels);
        let image = blocking(move || {
            std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| imaging::decode(&bytes, max).map_err(|e| e.to_string()))
        })
        .await?
        .map_err(|e| JobError::Failed(format!("cannot read back a val image: {e}")))?;
        let (width, height) = (image.width, image.height);
        let found = ctx
            .predictor
            .found_for(model, Arc::new(image), SCORE_CONF)
            .await
            .map_err(|e| JobError::Failed(format!("model {} failed on a val image: {e}", model.name)))?;
        match metric {
            Metric::Top1 => choices.push((
                annotation::first_choice(&example.result, &data.plan.control),
                evaluate::predicted_choice(&found, &model.class_names, control, SCORE_CONF),
            )),
            Metric::BoxMap => boxes.push(evaluate::Sample {
                truth: annotation::boxes(&example.result, &BTreeSet::from([truth_tag]), width, height),
                predicted: evaluate::predicted_boxes(&found, &model.class_names, control, SCORE_CONF),
            }),
        }
    }
    Ok(match metric {
        Metric::Top1 => evaluate::top1(&choices),
        Metric::BoxMap => evaluate::box_map(&boxes),
    })
}
