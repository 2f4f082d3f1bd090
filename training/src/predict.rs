//! A project prediction job: every task of a project, page by page, through the normal
//! pipeline (routing, limits, the model the project uses), and the predictions written back
//! through Label Studio's bulk import. Tasks that already hold a prediction of the current
//! model version are skipped (unless forced), so a second run writes nothing twice.

use std::time::Instant;

use labelstudio_protocol::{
    protocol::{PredictRequest, Task},
    region::TaskPrediction,
};
use serde_json::{Value, json};

use super::{
    Context, Handle, JobError,
    record::{Job, JobResult, Metrics, PredictProgress, PredictResult, finite},
};

const PAGE_SIZE: u64 = 100;
/// Tasks per /predict-sized batch through the pipeline.
const BATCH: usize = 16;

pub async fn run(ctx: &Context, job: &Handle, record: &Job) -> Result<JobResult, JobError> {
    let project_id = record.project;
    let project_key = project_id.to_string();
    job.progress(0.0, format!("reading project {project_id} from Label Studio"));
    let project = ctx.api.project(project_id).await?;
    let started = Instant::now();
    let (mut seen, mut predicted, mut skipped, mut failed, mut written) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut version = String::new();
    let mut total = 0u64;
    // Pages are read as the job goes; a task that moves between pages meanwhile is at worst
    // seen twice, and then skipped by its version.
    for page in 1.. {
        job.check()?;
        let got = ctx.api.tasks_page(project_id, page, PAGE_SIZE).await?;
        total = got.total.unwrap_or(total.max(seen + got.tasks.len() as u64));
        let last = got.tasks.len() < PAGE_SIZE as usize;
        seen += got.tasks.len() as u64;
        // The version the project's model has now: a hot reload mid-job changes it for the
        // tasks that follow.
        let model = ctx
            .registry
            .route(Some(&project_key))
            .map_err(|e| JobError::Failed(format!("no model for project {project_id}: {e}")))?;
        version.clone_from(&model.version);
        let mut todo: Vec<Value> = Vec::new();
        for task in got.tasks {
            let has_current = task.get("predictions").and_then(Value::as_array).is_some_and(|p| {
                p.iter()
                    .any(|p| p.get("model_version").and_then(Value::as_str) == Some(&version))
            });
            if has_current && !record.options.force {
                skipped += 1;
            } else {
                todo.push(task);
            }
        }
        for batch in todo.chunks(BATCH) {
            job.check()?;
            let tasks: Vec<Task> = batch
                .iter()
                .map(|t| Task {
                    id: t.get("id").cloned(),
                    data: t.get("data").and_then(Value::as_object).cloned().unwrap_or_default(),
                })
                .collect();
            let request = PredictRequest {
                tasks,
                project: Some(json!(project_key)),
                label_config: Some(project.label_config.clone()),
                params: Default::default(),
            };
            let outcome = ctx
                .predictor
                .predict(request)
                .await
                .map_err(|e| JobError::Failed(format!("predicting project {project_id} failed: {e}")))?;
            let mut predictions = Vec::new();
            for (i, (task, prediction)) in batch.iter().zip(outcome.results).enumerate() {
                if outcome.failed_at.contains(&i) {
                    failed += 1;
                    continue;
                }
                let Some(task) = task.get("id").and_then(Value::as_u64) else {
                    // Label Studio's task list always has ids; a task without one cannot be given its prediction.
                    log::warn!("project {project_id}: a task without an id is left out");
                    failed += 1;
                    continue;
                };
                version.clone_from(&prediction.model_version);
                predictions.push(TaskPrediction { task, prediction });
            }
            predicted += batch.len() as u64;
            written += ctx.api.import_predictions(project_id, &predictions).await?;
            report(job, started, predicted, skipped, failed, seen, total, &version);
        }
        report(job, started, predicted, skipped, failed, seen, total, &version);
        if last || (got.total.is_some() && seen >= total) {
            break;
        }
    }
    if failed > 0 {
        job.warn(format!(
            "{failed} task(s) could not be predicted (their images could not be read or the model failed); the server \
             log says why for each"
        ));
    }
    Ok(JobResult::Predict(PredictResult {
        model_version: version,
        tasks: seen,
        predicted: predicted - failed,
        written,
        skipped_current: skipped,
        failed,
        seconds: finite(started.elapsed().as_secs_f64()),
    }))
}

#[allow(clippy::too_many_arguments)]
fn report(
    job: &Handle,
    started: Instant,
    predicted: u64,
    skipped: u64,
    failed: u64,
    seen: u64,
    total: u64,
    version: &str,
) {
    let done = predicted + skipped;
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let rate = predicted as f64 / elapsed;
    let left = total.saturating_sub(done);
    let metrics = Metrics::Predict(PredictProgress {
        tasks_per_second: (rate * 100.0).round() / 100.0,
        eta_seconds: if rate > 0.0 {
            finite((left as f64 / rate).round())
        } else {
            None
        },
        predicted: predicted - failed,
        skipped_current: skipped,
        failed,
        model_version: version.to_string(),
    });
    let total = total.max(seen).max(1);
    job.update(|j| {
        j.progress = (done as f64 / total as f64).min(1.0);
        j.step = format!("{done}/{total} tasks");
        j.metrics = metrics;
    });
}
