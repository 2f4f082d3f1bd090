//! Background jobs: training a project's model from its annotations, and predicting a whole
//! project. Jobs are queued (a bounded queue), run one at a time per kind, report progress,
//! survive restarts (a job that was running when the server stopped is failed as
//! "interrupted"; a queued one still runs), and can be cancelled.

mod dataset;
mod evaluate;
mod install;
mod predict;
pub mod record;
mod store;
mod train;
mod trainer;
pub mod yolo_dataset;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

pub use install::{HistoryError, rollback};
pub use record::{Job, JobKind, JobOptions, JobState};
pub use store::{JobStore, LocalJobs, StoreError};
pub use train::TrainSettings;

use ls_core::{models::Registry, pipeline::Predictor};
use ls_labelstudio::api::LabelStudioApi;

/// What the jobs work with.
pub struct Context {
    pub predictor: Arc<Predictor>,
    pub registry: Arc<Registry>,
    pub api: Arc<LabelStudioApi>,
    pub train: TrainSettings,
    /// Where jobs keep their records and working files (ML_STATE_DIR).
    pub state_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the job queue is full ({limit} jobs waiting, ML_JOBS_QUEUE); try again when one has finished")]
    QueueFull { limit: usize },
    #[error("project {project} already has a training job ({job}, {state}); cancel it first or wait for it")]
    AlreadyTraining {
        project: u64,
        job: u64,
        state: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the job records: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start the job store's thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("there is no job {0}")]
    NotFound(u64),
}

/// Why a job stopped short.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

impl From<ls_labelstudio::api::LabelStudioError> for JobError {
    fn from(e: ls_labelstudio::api::LabelStudioError) -> Self {
        JobError::Failed(e.to_string())
    }
}

impl From<ls_core::worker::WorkerFailed> for JobError {
    fn from(e: ls_core::worker::WorkerFailed) -> Self {
        JobError::Failed(e.to_string())
    }
}

struct Table {
    jobs: BTreeMap<u64, Job>,
    next_id: u64,
    /// Cancel switches of running jobs.
    cancels: HashMap<u64, watch::Sender<bool>>,
    /// Process groups of running trainers, killed at shutdown.
    children: HashMap<u64, u32>,
}

pub struct Jobs {
    table: Mutex<Table>,
    saver: std::sync::mpsc::Sender<store::Write>,
    /// Finished jobs kept (ML_JOBS_KEEP); older ones are forgotten, files and all.
    keep: usize,
    queue_limit: usize,
    wake: HashMap<JobKind, Notify>,
    context: Context,
}

/// The finished jobs past the newest `keep`, oldest first: the ones to forget.
fn beyond_keep(jobs: &BTreeMap<u64, Job>, keep: usize) -> Vec<u64> {
    let finished: Vec<u64> = jobs.values().filter(|j| j.state.is_finished()).map(|j| j.id).collect();
    finished[..finished.len().saturating_sub(keep)].to_vec()
}

impl Jobs {
    /// Loads the jobs kept in the state folder, fails those that were running (the server
    /// stopped under them), and starts the workers. Blocking (reads the folder).
    pub fn start(context: Context, queue_limit: usize, keep: usize) -> Result<Arc<Jobs>, StartError> {
        let store = LocalJobs::open(&context.state_dir)?;
        Self::start_with(context, Box::new(store), queue_limit, keep)
    }

    /// As [`Jobs::start`], with the records in `store`.
    pub fn start_with(
        context: Context,
        store: Box<dyn JobStore>,
        queue_limit: usize,
        keep: usize,
    ) -> Result<Arc<Jobs>, StartError> {
        // Nothing runs yet: working files left by jobs that a stop interrupted go.
        let work = context.state_dir.join("work");
        if work.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&work)
        {
            log::warn!("cannot clear the jobs' working folder {}: {e}", work.display());
        }
        let mut jobs = BTreeMap::new();
        let mut interrupted = Vec::new();
        for mut job in store.load()? {
            if job.state == JobState::Running {
                job.state = JobState::Failed;
                job.error = Some("interrupted: the server stopped while this job was running; start it again".into());
                job.finished_at = Some(record::now());
                job.pid = None;
                interrupted.push(job.clone());
            }
            jobs.insert(job.id, job);
        }
        for job in &interrupted {
            log::warn!(
                "job {} ({} project {}) was interrupted by a restart",
                job.id,
                job.kind.as_str(),
                job.project
            );
            store.save(job)?;
        }
        let next_id = jobs.keys().next_back().map_or(1, |id| id + 1);
        let keep = keep.max(1);
        for id in beyond_keep(&jobs, keep) {
            jobs.remove(&id);
            if let Err(e) = store.remove(id) {
                log::warn!("{e}");
            }
        }
        let (saver, saves) = std::sync::mpsc::channel::<store::Write>();
        std::thread::Builder::new()
            .name("job-store".into())
            .spawn(move || {
                // One writer, in order: a later state never loses to an earlier one.
                while let Ok(write) = saves.recv() {
                    match write {
                        store::Write::Save(job) => {
                            if let Err(e) = store.save(&job) {
                                log::error!("{e}");
                            }
                        }
                        store::Write::Remove(id) => {
                            if let Err(e) = store.remove(id) {
                                log::warn!("{e}");
                            }
                        }
                    }
                }
            })
            .map_err(StartError::Thread)?;
        let jobs = Arc::new(Jobs {
            table: Mutex::new(Table {
                jobs,
                next_id,
                cancels: HashMap::new(),
                children: HashMap::new(),
            }),
            saver,
            keep,
            queue_limit: queue_limit.max(1),
            wake: JobKind::ALL.into_iter().map(|k| (k, Notify::new())).collect(),
            context,
        });
        for kind in JobKind::ALL {
            let jobs = Arc::clone(&jobs);
            tokio::spawn(async move { jobs.work(kind).await });
        }
        Ok(jobs)
    }

    fn table(&self) -> parking_lot::MutexGuard<'_, Table> {
        self.table.lock()
    }

    /// Queues a job. A project has at most one training job queued or running.
    pub fn submit(&self, kind: JobKind, project: u64, options: JobOptions, origin: &str) -> Result<Job, SubmitError> {
        let job = {
            let mut table = self.table();
            if kind == JobKind::Train
                && let Some(existing) = table
                    .jobs
                    .values()
                    .find(|j| j.kind == JobKind::Train && j.project == project && !j.state.is_finished())
            {
                return Err(SubmitError::AlreadyTraining {
                    project,
                    job: existing.id,
                    state: existing.state.as_str(),
                });
            }
            let queued = table.jobs.values().filter(|j| j.state == JobState::Queued).count();
            if queued >= self.queue_limit {
                return Err(SubmitError::QueueFull {
                    limit: self.queue_limit,
                });
            }
            let id = table.next_id;
            table.next_id += 1;
            let job = Job::new(id, kind, project, options, origin);
            table.jobs.insert(id, job.clone());
            for id in beyond_keep(&table.jobs, self.keep) {
                table.jobs.remove(&id);
                let _ = self.saver.send(store::Write::Remove(id));
            }
            job
        };
        log::info!(
            "job {} queued: {} project {} (from {}){}",
            job.id,
            kind.as_str(),
            project,
            origin,
            serde_json::to_string(&job.options)
                .ok()
                .filter(|o| o != "{}")
                .map(|o| format!(", options {o}"))
                .unwrap_or_default()
        );
        let _ = self.saver.send(store::Write::Save(Box::new(job.clone())));
        if let Some(wake) = self.wake.get(&kind) {
            wake.notify_one();
        }
        Ok(job)
    }

    /// The training job of a project that is queued or running, if any.
    pub fn training_of(&self, project: u64) -> Option<Job> {
        self.table()
            .jobs
            .values()
            .find(|j| j.kind == JobKind::Train && j.project == project && !j.state.is_finished())
            .cloned()
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Job> {
        self.table().jobs.values().rev().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Job> {
        self.table().jobs.get(&id).cloned()
    }

    /// Cancels a queued job at once, or tells a running one to stop (its trainer is killed).
    /// A finished job stays as it is.
    pub fn cancel(&self, id: u64) -> Result<Job, CancelError> {
        let mut table = self.table();
        let switch = table.cancels.get(&id).cloned();
        let job = table.jobs.get_mut(&id).ok_or(CancelError::NotFound(id))?;
        match job.state {
            JobState::Queued => {
                job.state = JobState::Cancelled;
                job.step = "cancelled before it started".into();
                job.finished_at = Some(record::now());
                log::info!("job {id} cancelled while queued");
                let _ = self.saver.send(store::Write::Save(Box::new(job.clone())));
            }
            JobState::Running => {
                if let Some(switch) = switch {
                    let _ = switch.send(true);
                }
                job.step = "cancelling".into();
                log::info!("job {id}: cancelling");
            }
            _ => {}
        }
        Ok(job.clone())
    }

    /// Jobs by kind and state, for /metrics.
    pub fn counts(&self) -> BTreeMap<(JobKind, JobState), usize> {
        let mut counts = BTreeMap::new();
        for kind in JobKind::ALL {
            for state in JobState::ALL {
                counts.insert((kind, state), 0);
            }
        }
        for job in self.table().jobs.values() {
            *counts.entry((job.kind, job.state)).or_default() += 1;
        }
        counts
    }

    /// Kills the trainers still running, at shutdown: their jobs show as interrupted after
    /// the next start.
    pub fn shutdown(&self) {
        let children: Vec<(u64, u32)> = self.table().children.iter().map(|(j, p)| (*j, *p)).collect();
        for (job, pid) in children {
            log::warn!("job {job}: stopping its trainer (process group {pid}) with the server");
            trainer::kill_group(pid);
        }
    }

    /// The worker of one kind: the oldest queued job, one at a time.
    async fn work(self: Arc<Self>, kind: JobKind) {
        let Some(wake) = self.wake.get(&kind) else { return };
        loop {
            let notified = wake.notified();
            let next = {
                let mut table = self.table();
                let id = table
                    .jobs
                    .values()
                    .find(|j| j.kind == kind && j.state == JobState::Queued)
                    .map(|j| j.id);
                id.and_then(|id| {
                    let (switch, cancelled) = watch::channel(false);
                    table.cancels.insert(id, switch);
                    let job = table.jobs.get_mut(&id)?;
                    job.state = JobState::Running;
                    job.started_at = Some(record::now());
                    job.step = "starting".into();
                    Some((job.clone(), cancelled))
                })
            };
            let Some((job, cancelled)) = next else {
                notified.await;
                continue;
            };
            let _ = self.saver.send(store::Write::Save(Box::new(job.clone())));
            let handle = Handle {
                jobs: Arc::clone(&self),
                id: job.id,
                cancelled,
                saved: Mutex::new(Instant::now()),
            };
            let started = Instant::now();
            log::info!("job {} started: {} project {}", job.id, kind.as_str(), job.project);
            let run = async {
                match kind {
                    JobKind::Train => train::run(&self.context, &handle, &job).await,
                    JobKind::Predict => predict::run(&self.context, &handle, &job).await,
                }
            };
            // A bug in one job must not stop the queue behind it.
            let outcome = std::panic::AssertUnwindSafe(run)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(JobError::Failed(
                        "internal error: the job panicked; see the server log".into(),
                    ))
                });
            let took = started.elapsed().as_secs_f64();
            handle.update_now(|j| {
                j.finished_at = Some(record::now());
                j.pid = None;
                match outcome {
                    Ok(result) => {
                        j.state = JobState::Succeeded;
                        j.progress = 1.0;
                        j.step = "done".into();
                        log::info!("job {} succeeded in {took:.1} s: {result}", j.id);
                        j.result = Some(result);
                    }
                    Err(JobError::Cancelled) => {
                        j.state = JobState::Cancelled;
                        j.step = "cancelled".into();
                        log::info!("job {} cancelled after {took:.1} s", j.id);
                    }
                    Err(JobError::Failed(e)) => {
                        j.state = JobState::Failed;
                        log::warn!("job {} failed after {took:.1} s: {e}", j.id);
                        j.error = Some(e);
                    }
                }
            });
            let mut table = self.table();
            table.cancels.remove(&job.id);
            table.children.remove(&job.id);
        }
    }
}

/// A running job's way to report progress and to hear that it is cancelled.
pub struct Handle {
    jobs: Arc<Jobs>,
    id: u64,
    cancelled: watch::Receiver<bool>,
    saved: Mutex<Instant>,
}

/// Progress is saved at most this often (every change is in memory at once).
const SAVE_EVERY: Duration = Duration::from_secs(1);

impl Handle {
    /// Changes the job; the change reaches the state folder within a second.
    pub fn update(&self, change: impl FnOnce(&mut Job)) {
        self.apply(change, false);
    }

    /// Changes the job and saves it at once (for changes that must survive a crash).
    pub fn update_now(&self, change: impl FnOnce(&mut Job)) {
        self.apply(change, true);
    }

    fn apply(&self, change: impl FnOnce(&mut Job), now: bool) {
        let snapshot = {
            let mut table = self.jobs.table();
            let Some(job) = table.jobs.get_mut(&self.id) else {
                return;
            };
            change(job);
            let mut saved = self.saved.lock();
            (now || saved.elapsed() >= SAVE_EVERY).then(|| {
                *saved = Instant::now();
                job.clone()
            })
        };
        if let Some(job) = snapshot {
            let _ = self.jobs.saver.send(store::Write::Save(Box::new(job)));
        }
    }

    pub fn progress(&self, progress: f64, step: impl Into<String>) {
        let step = step.into();
        self.update(|j| {
            j.progress = progress.clamp(0.0, 1.0);
            j.step = step;
        });
    }

    /// A line in the job's log and the server's: what a long job is doing.
    pub fn note(&self, line: impl Into<String>) {
        let line = line.into();
        log::info!("job {}: {line}", self.id);
        self.update(|j| j.push_log(&line));
    }

    pub fn warn(&self, warning: impl Into<String>) {
        let warning = warning.into();
        log::info!("job {}: {warning}", self.id);
        self.update_now(|j| j.warnings.push(warning));
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves when the job is cancelled.
    pub async fn cancelled(&self) {
        let mut cancelled = self.cancelled.clone();
        let _ = cancelled.wait_for(|c| *c).await;
    }

    /// Fails with `Cancelled` if the job was cancelled.
    pub fn check(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Remembers the trainer's process group, to kill it at shutdown.
    pub fn child(&self, pid: Option<u32>) {
        {
            let mut table = self.jobs.table();
            match pid {
                Some(pid) => table.children.insert(self.id, pid),
                None => table.children.remove(&self.id),
            };
        }
        self.update_now(|j| j.pid = pid);
    }
}
