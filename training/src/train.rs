//! A training job: the project's annotations from Label Studio become an Ultralytics dataset,
//! the trainer fine-tunes the checkpoint behind the project's model (or a base checkpoint,
//! or the architecture from scratch), the result is exported to ONNX, loaded by our own
//! runtime and adapters, scored against the serving model on the val split, and installed
//! only if it is not worse (unless forced). The new version then serves through hot reload.

use std::{path::PathBuf, sync::Arc};

use crate::yolo_dataset::TrainTask;
use labelstudio_protocol::label_config::{Control, LabelConfig};
use serde_json::{Value, json};

use super::{
    Context, Handle, JobError, dataset,
    evaluate::{self, Metric},
    install, number,
    record::Job,
    trainer,
};
use ls_core::{
    imaging,
    models::{LoadedModel, Sidecar, TrainTable},
    worker::off_executor as blocking,
};

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

pub async fn run(ctx: &Context, job: &Handle, record: &Job) -> Result<Value, JobError> {
    let work = ctx.state_dir.join("work").join(format!("job-{}", record.id));
    let outcome = train(ctx, job, record, &work).await;
    // The dataset and the trainer's run folder can be large; what is worth keeping was copied out.
    let _ = blocking(move || std::fs::remove_dir_all(work)).await;
    outcome
}

async fn train(ctx: &Context, job: &Handle, record: &Job, work: &std::path::Path) -> Result<Value, JobError> {
    let started = std::time::Instant::now();
    let project_id = record.project;
    let project_key = project_id.to_string();
    let options = &record.options;
    job.progress(0.0, format!("reading project {project_id} from Label Studio"));
    let project = ctx.api.project(project_id).await?;
    job.note(format!("project {project_id}: {}", project.title));
    let at = || format!("{:.1} s", started.elapsed().as_secs_f64());
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
    let task = data.plan.task;
    job.note(format!(
        "{}: dataset ready: {} task, {} classes, counts {}",
        at(),
        task.ultralytics(),
        data.plan.classes.len(),
        json!(data.counts)
    ));

    // The model that serves the project now, and the name the new one takes: the project's
    // own model, else `<project id>` (a model shared by several projects is never replaced
    // by one project's training).
    let serving = ctx.registry.route(Some(&project_key)).ok();
    let target = match &serving {
        Some(m) if m.name == project_key || m.projects.contains(&project_key) => m.name.clone(),
        _ => project_key.clone(),
    };
    let target_sidecar = ctx
        .registry
        .sidecar(&target)
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?;
    let table = target_sidecar.as_ref().and_then(|s| s.train).unwrap_or_default();
    let pick = |job: Option<u32>, model: Option<u32>, default: u32| job.or(model).unwrap_or(default).max(1);
    let epochs = pick(options.epochs, table.epochs, ctx.train.epochs);
    let imgsz = pick(options.imgsz, table.imgsz, ctx.train.imgsz);
    let batch = pick(options.batch, table.batch, ctx.train.batch);
    let patience = pick(options.patience, table.patience, ctx.train.patience);

    let models = ctx.registry.dir().to_path_buf();
    let mut candidates = Vec::new();
    if !options.from_scratch {
        if let Some(m) = &serving {
            candidates.push(install::checkpoint_of(&models, &m.name));
        }
        candidates.push(install::checkpoint_of(&models, &target));
        if let Some(base) = &ctx.train.base {
            candidates.push(base.clone());
        }
    }
    let base_setting = ctx.train.base.clone();
    let start = blocking(move || {
        if let Some(base) = &base_setting
            && !base.is_file()
        {
            log::warn!("ML_TRAIN_BASE {} does not exist; it is not used", base.display());
        }
        candidates.into_iter().find(|c| c.is_file())
    })
    .await?;
    let model =
        match start {
            Some(checkpoint) => checkpoint.canonicalize().unwrap_or(checkpoint).display().to_string(),
            None => {
                let yaml = arch_yaml(&ctx.train.arch, task);
                job.warn(format!(
                "no checkpoint to start from (none from an earlier training, no ML_TRAIN_BASE){}: training {yaml} from \
                 random weights, which needs many annotations and epochs to be useful",
                if options.from_scratch { ", and from_scratch was asked" } else { "" }
            ));
                yaml
            }
        };
    job.note(format!(
        "{}: training from {model}; {epochs} epochs at imgsz {imgsz}, batch {batch}",
        at()
    ));

    let spec = trainer::Spec {
        task: task.ultralytics(),
        data: data.data.canonicalize().unwrap_or(data.data.clone()),
        model: model.clone(),
        epochs,
        imgsz,
        batch,
        patience,
        device: ctx.train.device.clone(),
        workers: 0,
        threads: ctx.train.threads,
        seed: 0,
        out: work.join("run").canonicalize().unwrap_or(work.join("run")),
        export: trainer::Export { opset: OPSET, imgsz },
    };
    let trained = trainer::train(&ctx.train.python, &spec, job, (0.15, 0.85)).await?;
    job.check()?;
    job.note(format!("{}: trained {} epochs", at(), trained.epochs_run));

    // The new model, loaded by our runtime with the sidecar it will have: it must serve.
    job.progress(0.86, "loading the trained model");
    let sidecar = new_sidecar(target_sidecar, &target, &project_key, record, &data, &model, &trained);
    let sidecar_text = sidecar.to_toml().map_err(JobError::Failed)?;
    let staged_sidecar = work.join("staged.toml");
    {
        let (path, text) = (staged_sidecar.clone(), sidecar_text.clone());
        blocking(move || std::fs::write(path, text))
            .await?
            .map_err(|e| JobError::Failed(format!("cannot write the new settings: {e}")))?;
    }
    let candidate = ctx
        .registry
        .load_unserved(trained.onnx.clone(), staged_sidecar, &target)
        .await
        .map_err(|e| {
            JobError::Failed(format!(
                "the trained model does not load here, so it is not installed: {e}"
            ))
        })?;

    // Both models scored the same way on the val split.
    let config = LabelConfig::parse(&project.label_config).map_err(|e| JobError::Failed(e.to_string()))?;
    let controls: Vec<Control> = config
        .active_controls()
        .filter(|c| c.name == data.plan.control)
        .cloned()
        .collect();
    let metric = if task == TrainTask::Classify {
        Metric::Top1
    } else {
        Metric::BoxMap
    };
    job.progress(
        0.88,
        format!("scoring the new model on {} val images", data.val().count()),
    );
    let new_score = score(ctx, &candidate, &data, &controls, metric).await?;
    let serving_score = match &serving {
        Some(m) => {
            job.progress(0.92, format!("scoring the serving model {} on the same images", m.name));
            Some(score(ctx, m, &data, &controls, metric).await?)
        }
        None => None,
    };
    drop(candidate);
    job.check()?;
    job.note(format!("{}: scored the models", at()));

    let better = serving_score.is_none_or(|s| new_score + 1e-9 >= s);
    let reason = match (serving_score, better, options.force) {
        (None, _, _) => format!("no model served project {project_id}; installed as {target}"),
        (Some(s), true, _) => format!(
            "{} {new_score:.4} is not worse than the serving model's {s:.4}",
            metric.name()
        ),
        (Some(s), false, true) => format!(
            "{} {new_score:.4} is worse than the serving model's {s:.4}, installed anyway (force)",
            metric.name()
        ),
        (Some(s), false, false) => format!(
            "not installed: {} {new_score:.4} is worse than the serving model's {s:.4} (send \"force\": true to install \
             it anyway)",
            metric.name()
        ),
    };
    let install = better || options.force;
    let mut result = json!({
        "installed": false,
        "reason": reason,
        "model": target,
        "metric": metric.name(),
        "new_score": number(new_score),
        "serving_score": serving_score.map(number),
        "serving_version": serving.as_ref().map(|m| m.version.clone()),
        "start": model,
        "epochs": trained.epochs_run,
        "data": data.summary(),
    });
    job.note(reason.clone());
    if install {
        job.progress(0.96, format!("installing {target}"));
        let status = install::install_trained(
            &ctx.registry,
            &target,
            install::Trained {
                onnx: trained.onnx.clone(),
                checkpoint: trained.checkpoint.clone(),
                sidecar: sidecar_text,
            },
            ctx.train.history,
            &format!("training job {}", record.id),
        )
        .await
        .map_err(|e| JobError::Failed(format!("the trained model was not installed: {e}")))?;
        if let Some(error) = &status.error {
            return Err(JobError::Failed(format!(
                "the trained model was installed but does not serve: {error}"
            )));
        }
        result["installed"] = json!(true);
        result["version"] = json!(status.model_version);
    }
    result["seconds"] = number(started.elapsed().as_secs_f64());
    Ok(result)
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
    let mut truths = Vec::new();
    let mut predicted = Vec::new();
    let mut sizes = Vec::new();
    for example in data.val().take(MAX_SCORED) {
        let (path, max) = (example.image.clone(), ctx.predictor.max_image_pixels);
        let image = blocking(move || {
            std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| imaging::decode(&bytes, max).map_err(|e| e.to_string()))
        })
        .await?
        .map_err(|e| JobError::Failed(format!("cannot read back a val image: {e}")))?;
        sizes.push((image.width, image.height));
        let results = ctx
            .predictor
            .results_for(model, Arc::new(image), controls, SCORE_CONF)
            .await
            .map_err(|e| JobError::Failed(format!("model {} failed on a val image: {e}", model.name)))?;
        truths.push(example.result.clone());
        predicted.push(results);
    }
    let samples: Vec<evaluate::Sample<'_>> = truths
        .iter()
        .zip(&predicted)
        .zip(&sizes)
        .map(|((truth, predicted), (width, height))| evaluate::Sample {
            truth,
            predicted,
            width: *width,
            height: *height,
        })
        .collect();
    Ok(match metric {
        Metric::Top1 => evaluate::top1(&samples, &data.plan.control),
        Metric::BoxMap => {
            let mut names = vec![data.plan.control.as_str()];
            if let Some(parent) = &data.plan.parent {
                names = vec![parent.as_str()];
            }
            evaluate::box_map(&samples, &names)
        }
    })
}
