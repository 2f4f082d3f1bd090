//! A fixed set of ONNX Runtime sessions for one model. `Session::run` needs `&mut`, so each
//! session serves one inference at a time; several sessions let a model run in parallel.
//!
//! Each session lives on its own thread and takes jobs from a channel, never on the async
//! executor. A session that always runs on the same thread keeps that thread's caches and
//! ONNX Runtime's per-thread buffers warm: measured on 2 cores (`ort-layouts`), the same two
//! sessions called from whichever of 8 pool threads was free gave 8-10% fewer inferences per
//! second than from two fixed threads.
//!
//! On a CPU, one inference on all cores has the lowest latency, but several inferences on
//! one core each have the highest throughput (ONNX Runtime's threads scale less than
//! linearly). A pool may therefore hold one extra *solo* session with many threads: an
//! inference that starts while no other is running, in any model, takes it; the others take
//! the one-thread sessions. A lone request gets the latency of all cores and a busy server the
//! throughput of one session per core.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
};

use ort::{
    session::{Session, SessionInputValue},
    value::{DynValue, TensorElementType, TensorRef, ValueType},
};
use plugin_api::{ElementType, Tensor};
use tokio::sync::{Semaphore, oneshot};

use super::RuntimeError;

/// One output, copied out of ONNX Runtime's memory so the session can serve the next call.
pub type OwnedTensor = Tensor;

type Outcome = Result<Vec<OwnedTensor>, RuntimeError>;

enum Reply {
    Async(oneshot::Sender<Outcome>),
    Blocking(mpsc::Sender<Outcome>),
}

impl Reply {
    /// A caller that gave up waiting is no error: the outcome is dropped.
    fn send(self, outcome: Outcome) {
        let _ = match self {
            Reply::Async(tx) => tx.send(outcome).map_err(drop),
            Reply::Blocking(tx) => tx.send(outcome).map_err(drop),
        };
    }
}

struct Job {
    inputs: Vec<Tensor>,
    reply: Reply,
}

/// A session's thread: it owns the session (and a handle on the weights the session reads,
/// dropped after it) and runs the jobs sent to it, one at a time.
struct Worker {
    jobs: mpsc::Sender<Job>,
    busy: Arc<AtomicBool>,
}

impl Worker {
    fn spawn(
        name: String,
        mut session: Session,
        weights: Option<Arc<[u8]>>,
        running: Arc<AtomicUsize>,
    ) -> Result<Self, RuntimeError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let busy = Arc::new(AtomicBool::new(false));
        let busy_flag = Arc::clone(&busy);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    // ONNX Runtime reports its own failures as errors; a panic here must not
                    // take the session's thread (and every later inference) with it.
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| infer(&mut session, &job.inputs)))
                        .unwrap_or_else(|_| Err(RuntimeError::Inference("the inference panicked".into())));
                    // Free before answering: whoever gets the answer may send the next job.
                    busy_flag.store(false, Ordering::SeqCst);
                    running.fetch_sub(1, Ordering::SeqCst);
                    job.reply.send(outcome);
                }
                // The session reads its weights from `weights`: drop it first.
                drop(session);
                drop(weights);
            })
            .map_err(|e| RuntimeError::Inference(format!("cannot start an inference thread: {e}")))?;
        Ok(Self { jobs, busy })
    }

    /// Takes the worker if it is idle.
    fn claim(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

pub struct SessionPool {
    workers: Vec<Worker>,
    solo: Option<Worker>,
    /// Inferences running now over all models of the runtime: the solo session is only
    /// taken when this is zero, so its threads never compete with another inference's.
    running: Arc<AtomicUsize>,
    free: Semaphore,
    shares_weights: bool,
    /// Inferences started on this pool since it was built.
    inferences: std::sync::atomic::AtomicU64,
}

impl SessionPool {
    /// Starts one thread per session. With `weights`, the sessions read their weights from it
    /// in place; each thread keeps it alive until its session is gone.
    pub fn new(
        name: &str,
        sessions: Vec<Session>,
        solo: Option<Session>,
        running: Arc<AtomicUsize>,
        weights: Option<Arc<[u8]>>,
    ) -> Result<Self, RuntimeError> {
        let count = sessions.len();
        let workers = sessions
            .into_iter()
            .enumerate()
            .map(|(i, s)| Worker::spawn(format!("infer-{name}-{i}"), s, weights.clone(), Arc::clone(&running)))
            .collect::<Result<Vec<_>, _>>()?;
        let solo = solo
            .map(|s| Worker::spawn(format!("infer-{name}-solo"), s, weights.clone(), Arc::clone(&running)))
            .transpose()?;
        Ok(Self {
            workers,
            solo,
            running,
            free: Semaphore::new(count),
            shares_weights: weights.is_some(),
            inferences: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Whether the sessions share one copy of the weights.
    pub fn shares_weights(&self) -> bool {
        self.shares_weights
    }

    /// Sessions that can run at the same time (the solo session is not counted: it only runs
    /// alone).
    pub fn size(&self) -> usize {
        self.workers.len()
    }

    pub fn has_solo(&self) -> bool {
        self.solo.is_some()
    }

    /// Inferences started on this pool so far.
    pub fn inferences(&self) -> u64 {
        self.inferences.load(Ordering::Relaxed)
    }

    /// Runs one inference on a free session, waiting for one if all are busy.
    pub async fn run(&self, inputs: Vec<Tensor>) -> Outcome {
        let _permit = self.free.acquire().await.map_err(|_| RuntimeError::Closed)?;
        let (tx, rx) = oneshot::channel();
        self.dispatch(Job {
            inputs,
            reply: Reply::Async(tx),
        })?;
        rx.await.map_err(|_| RuntimeError::Closed)?
    }

    /// Runs one inference and waits for it on the calling thread (start-up warm-up, tests).
    /// Not from async code.
    pub fn run_blocking(&self, inputs: &[Tensor]) -> Outcome {
        let (tx, rx) = mpsc::channel();
        self.dispatch(Job {
            inputs: inputs.to_vec(),
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| RuntimeError::Closed)?
    }

    /// Sends the job to the solo session if nothing else runs, else to an idle session. The
    /// async path holds a permit per running job, so one is always idle there; a blocking
    /// caller without one may find none and queues behind the first session.
    fn dispatch(&self, job: Job) -> Result<(), RuntimeError> {
        self.inferences.fetch_add(1, Ordering::Relaxed);
        let alone = self.running.fetch_add(1, Ordering::SeqCst) == 0;
        let worker = self
            .solo
            .as_ref()
            .filter(|w| alone && w.claim())
            .or_else(|| self.workers.iter().find(|w| w.claim()))
            .unwrap_or(&self.workers[0]);
        worker.jobs.send(job).map_err(|_| {
            self.running.fetch_sub(1, Ordering::SeqCst);
            RuntimeError::Closed
        })
    }
}

fn infer(session: &mut Session, inputs: &[Tensor]) -> Result<Vec<OwnedTensor>, RuntimeError> {
    let mut values: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
    for t in inputs {
        let value = input_value(t).map_err(|e| RuntimeError::Inference(format!("input `{}`: {e}", t.name)))?;
        values.push((t.name.to_string(), value));
    }
    let outputs = session
        .run(values)
        .map_err(|e| RuntimeError::Inference(e.to_string()))?;
    let mut owned = Vec::with_capacity(outputs.len());
    for (name, value) in outputs.iter() {
        owned.push(output_tensor(name, &value).map_err(|e| RuntimeError::Inference(format!("output `{name}`: {e}")))?);
    }
    Ok(owned)
}

/// A view of the tensor's bytes as the element type it declares.
fn input_value(t: &Tensor) -> Result<SessionInputValue<'_>, String> {
    fn view<'t, T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + bytemuck::Pod>(
        t: &'t Tensor,
    ) -> Result<SessionInputValue<'t>, String> {
        let values: &[T] = bytemuck::try_cast_slice(t.bytes()).map_err(|e| e.to_string())?;
        Ok(TensorRef::from_array_view((t.shape.to_vec(), values))
            .map_err(|e| e.to_string())?
            .into())
    }
    match t.element_type {
        ElementType::F32 => view::<f32>(t),
        ElementType::F16 => view::<half::f16>(t),
        ElementType::F64 => view::<f64>(t),
        ElementType::I64 => view::<i64>(t),
        ElementType::I32 => view::<i32>(t),
        ElementType::U8 => view::<u8>(t),
        ElementType::I8 => view::<i8>(t),
        other => Err(format!("tensors of {other} cannot be fed to the model")),
    }
}

/// The output copied out, in its own element type.
fn output_tensor(name: &str, value: &DynValue) -> Result<OwnedTensor, String> {
    fn copy<T: ort::value::PrimitiveTensorElementType + bytemuck::Pod>(
        name: &str,
        element_type: ElementType,
        value: &DynValue,
    ) -> Result<OwnedTensor, String> {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(|e| e.to_string())?;
        Tensor::from_bytes(name, element_type, shape, bytemuck::cast_slice(data)).map_err(|e| e.to_string())
    }
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => return Err(format!("{other} is not a tensor")),
    };
    match ty {
        TensorElementType::Float32 => copy::<f32>(name, ElementType::F32, value),
        TensorElementType::Float16 => copy::<half::f16>(name, ElementType::F16, value),
        TensorElementType::Float64 => copy::<f64>(name, ElementType::F64, value),
        TensorElementType::Int64 => copy::<i64>(name, ElementType::I64, value),
        TensorElementType::Int32 => copy::<i32>(name, ElementType::I32, value),
        TensorElementType::Uint8 => copy::<u8>(name, ElementType::U8, value),
        TensorElementType::Int8 => copy::<i8>(name, ElementType::I8, value),
        other => Err(format!("tensors of {other:?} cannot be handed to an adapter")),
    }
}
