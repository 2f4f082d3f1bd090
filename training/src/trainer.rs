//! The trainer: Ultralytics in its own venv (scripts/setup-trainer.sh), run as a child process
//! in its own process group with its own thread budget, so that training never starves
//! serving and a cancel kills everything it started. It reports on stdout, one `LSMLB {json}`
//! line per event; every other line is its log.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{
    Handle, JobError,
    record::{Epoch, Measured, Metrics},
};

/// The trainer program, carried in the binary so that an installed server needs no source tree.
const TRAIN_PY: &str = include_str!("../trainer/train.py");
const EVENT_PREFIX: &str = "LSMLB ";
/// How long the trainer gets to exit after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// What the trainer is asked to do (`spec.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub task: &'static str,
    pub data: PathBuf,
    /// A checkpoint (`.pt`) to fine-tune, or an architecture yaml (`yolo11n.yaml`) from scratch.
    pub model: String,
    pub epochs: u32,
    pub imgsz: u32,
    pub batch: u32,
    pub patience: u32,
    pub device: String,
    pub workers: u32,
    pub threads: u32,
    pub seed: u32,
    pub out: PathBuf,
    pub export: Export,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub opset: u32,
    pub imgsz: u32,
}

/// What a finished training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    pub onnx: PathBuf,
    pub checkpoint: PathBuf,
    pub epochs_run: u64,
}

/// Kills a process group: SIGKILL to every process in it.
pub fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the group; it touches no memory of ours.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

fn term_group(pid: u32) {
    // SAFETY: as above.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGTERM);
    }
}

/// Runs the trainer to the end, reporting each epoch to the job. Progress goes from `from`
/// to `to` over the epochs.
pub async fn train(python: &Path, spec: &Spec, job: &Handle, (from, to): (f64, f64)) -> Result<Trained, JobError> {
    if !python.is_file() {
        return Err(JobError::Failed(format!(
            "the trainer is not installed: {} does not exist. Run scripts/setup-trainer.sh (it installs Ultralytics \
             into its own venv), or set ML_TRAINER_PYTHON to the python of a venv that has ultralytics==8.4.190",
            python.display()
        )));
    }
    let script = spec.out.join("train.py");
    let spec_file = spec.out.join("spec.json");
    let spec_json = serde_json::to_vec_pretty(spec).map_err(|e| JobError::Failed(e.to_string()))?;
    {
        let (script, spec_file) = (script.clone(), spec_file.clone());
        ls_core::worker::off_executor(move || {
            std::fs::write(&script, TRAIN_PY).and_then(|()| std::fs::write(&spec_file, spec_json))
        })
        .await?
        .map_err(|e| JobError::Failed(format!("cannot write the trainer's files: {e}")))?;
    }
    let threads = spec.threads.max(1).to_string();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(&script)
        .arg("--spec")
        .arg(&spec_file)
        .current_dir(&spec.out)
        .env("YOLO_OFFLINE", "1")
        .env("YOLO_CONFIG_DIR", spec.out.join("config"))
        .env("OMP_NUM_THREADS", &threads)
        .env("MKL_NUM_THREADS", &threads)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: nice(2) only lowers the child's own priority, between fork and exec; it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            // Serving comes first when both want the CPU; a failure just keeps the priority.
            let _ = libc::nice(10);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| JobError::Failed(format!("cannot start the trainer {}: {e}", python.display())))?;
    let pid = child.id();
    job.child(pid);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(JobError::Failed("the trainer's output could not be read".into()));
    };
    let mut out = BufReader::new(stdout).lines();
    let mut err = BufReader::new(stderr).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut trained = None;
    let mut reported_error: Option<String> = None;
    let outcome = loop {
        tokio::select! {
            () = job.cancelled() => break Err(JobError::Cancelled),
            line = out.next_line(), if out_open => match line {
                Ok(Some(line)) => {
                    // Progress bars redraw with `\r` and no newline: an event can follow one.
                    let line = visible(&line);
                    let event = line
                        .find(EVENT_PREFIX)
                        .and_then(|at| serde_json::from_str::<Value>(&line[at + EVENT_PREFIX.len()..]).ok());
                    match event {
                        Some(event) => on_event(&event, job, (from, to), &mut trained, &mut reported_error),
                        None if !line.trim().is_empty() => job.update(|j| j.push_log(line)),
                        None => {}
                    }
                }
                _ => out_open = false,
            },
            line = err.next_line(), if err_open => match line {
                Ok(Some(line)) => {
                    let line = visible(&line);
                    if !line.trim().is_empty() {
                        job.update(|j| j.push_log(line));
                    }
                }
                _ => err_open = false,
            },
            status = child.wait(), if !out_open && !err_open => break Ok(status),
        }
    };
    let status = match outcome {
        Ok(status) => status,
        Err(cancelled) => {
            if let Some(pid) = pid {
                term_group(pid);
                if tokio::time::timeout(KILL_GRACE, child.wait()).await.is_err() {
                    kill_group(pid);
                }
                // Whatever the trainer started (data loader workers) goes with it.
                kill_group(pid);
            }
            let _ = child.wait().await;
            job.child(None);
            return Err(cancelled);
        }
    };
    job.child(None);
    let status = status.map_err(|e| JobError::Failed(format!("waiting for the trainer failed: {e}")))?;
    match (status.success(), trained) {
        (true, Some(trained)) => Ok(trained),
        (true, None) => Err(JobError::Failed(
            "the trainer finished without exporting a model; see the job's log".into(),
        )),
        (false, _) => Err(JobError::Failed(match reported_error {
            Some(message) => format!("training failed: {message}"),
            None => format!("the trainer exited with {status}; see the job's log"),
        })),
    }
}

/// What a terminal would show of a line that redraws itself with `\r`: its last frame,
/// without the escape codes.
fn visible(line: &str) -> &str {
    let last = line.trim_end_matches('\r').rsplit('\r').next().unwrap_or(line);
    last.trim_start_matches("\u{1b}[K")
}

fn on_event(
    event: &Value,
    job: &Handle,
    (from, to): (f64, f64),
    trained: &mut Option<Trained>,
    reported_error: &mut Option<String>,
) {
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let number = |key: &str| event.get(key).and_then(Value::as_u64).unwrap_or(0);
    match event.get("event").and_then(Value::as_str) {
        Some("start") => {
            let epochs = number("epochs");
            job.progress(from, format!("training: epoch 0/{epochs}"));
            job.update(|j| j.push_log(&format!("trainer started on {} from {}", text("device"), text("model"))));
        }
        Some("epoch") => {
            let (epoch, epochs) = (number("epoch"), number("epochs").max(1));
            // The trainer writes each number through `plain` (null if not finite); anything
            // else it could send is not a measurement.
            let metrics: Measured = event
                .get("metrics")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_f64())).collect())
                .unwrap_or_default();
            let row = Epoch {
                epoch,
                metrics: metrics.clone(),
            };
            job.update_now(|j| {
                j.progress = from + (to - from) * (epoch as f64 / epochs as f64).min(1.0);
                j.step = format!("training: epoch {epoch}/{epochs}");
                j.metrics = Metrics::Train(metrics);
                j.epochs.push(row);
            });
        }
        Some("exported") => {
            *trained = Some(Trained {
                onnx: PathBuf::from(text("onnx")),
                checkpoint: PathBuf::from(text("checkpoint")),
                epochs_run: number("epochs_run"),
            });
            job.progress(to, "exported the trained model to ONNX");
        }
        Some("error") => *reported_error = Some(text("message")),
        _ => {}
    }
}
