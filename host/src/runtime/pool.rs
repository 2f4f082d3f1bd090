//! A fixed set of ONNX Runtime sessions for one model. `Session::run` needs `&mut`, so each
//! session serves one inference at a time; several sessions let a model run in parallel.
//! Inference always happens on tokio's blocking pool, never on the async executor.
//!
//! On a CPU, one inference on all cores has the lowest latency, but several inferences on
//! one core each have the highest throughput (ONNX Runtime's threads scale less than
//! linearly). A pool may therefore hold one extra *solo* session with many threads: an
//! inference that starts while no other is running, in any model, takes it; the others take
//! the one-thread sessions. A lone request gets the latency of all cores and a busy server the
//! throughput of one session per core.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicUsize, Ordering},
};

use ort::{session::Session, value::TensorRef};
use tokio::sync::Semaphore;

use super::RuntimeError;

/// One output, copied out of ONNX Runtime's memory so the session can serve the next call.
#[derive(Debug, Clone)]
pub struct OwnedTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

// Fields drop in declaration order: the sessions before the weights they read.
pub struct SessionPool {
    sessions: Vec<Mutex<Session>>,
    solo: Option<Mutex<Session>>,
    /// Inferences running now over all models of the runtime: the solo session is only
    /// taken when this is zero, so its threads never compete with another inference's.
    running: Arc<AtomicUsize>,
    free: Arc<Semaphore>,
    /// The optimized model whose weights the sessions use in place, if they share them.
    _weights: Option<Box<[u8]>>,
}

impl SessionPool {
    pub fn new(
        sessions: Vec<Session>,
        solo: Option<Session>,
        running: Arc<AtomicUsize>,
        weights: Option<Box<[u8]>>,
    ) -> Self {
        let count = sessions.len();
        Self {
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            solo: solo.map(Mutex::new),
            running,
            free: Arc::new(Semaphore::new(count)),
            _weights: weights,
        }
    }

    /// Whether the sessions share one copy of the weights.
    pub fn shares_weights(&self) -> bool {
        self._weights.is_some()
    }

    /// Sessions that can run at the same time (the solo session is not counted: it only runs
    /// alone).
    pub fn size(&self) -> usize {
        self.sessions.len()
    }

    pub fn has_solo(&self) -> bool {
        self.solo.is_some()
    }

    /// Runs one inference on a free session, waiting for one if all are busy.
    pub async fn run(self: &Arc<Self>, inputs: Vec<plugin_api::Tensor>) -> Result<Vec<OwnedTensor>, RuntimeError> {
        let permit = self
            .free
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RuntimeError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.run_blocking(&inputs)
        })
        .await
        .map_err(|e| RuntimeError::Inference(format!("the inference thread failed: {e}")))?
    }

    /// Runs one inference on the calling thread. The caller must hold a permit, or be the
    /// only user of the pool (start-up warm-up).
    pub fn run_blocking(&self, inputs: &[plugin_api::Tensor]) -> Result<Vec<OwnedTensor>, RuntimeError> {
        let _running = Running::start(&self.running);
        if _running.alone
            && let Some(mut solo) = self.solo.as_ref().and_then(try_lock)
        {
            return infer(&mut solo, inputs);
        }
        // A permit is held for each inference on these sessions, so at least one is free;
        // take the first we can lock.
        let mut guard = self
            .sessions
            .iter()
            .find_map(try_lock)
            .unwrap_or_else(|| self.sessions[0].lock().unwrap_or_else(PoisonError::into_inner));
        infer(&mut guard, inputs)
    }
}

fn try_lock(session: &Mutex<Session>) -> Option<std::sync::MutexGuard<'_, Session>> {
    match session.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Counts one running inference for as long as it lives.
struct Running<'a> {
    counter: &'a AtomicUsize,
    alone: bool,
}

impl<'a> Running<'a> {
    fn start(counter: &'a AtomicUsize) -> Self {
        let before = counter.fetch_add(1, Ordering::SeqCst);
        Self {
            counter,
            alone: before == 0,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

fn infer(session: &mut Session, inputs: &[plugin_api::Tensor]) -> Result<Vec<OwnedTensor>, RuntimeError> {
    let mut values = Vec::with_capacity(inputs.len());
    for t in inputs {
        let value = TensorRef::from_array_view((t.shape.to_vec(), t.data.as_slice()))
            .map_err(|e| RuntimeError::Inference(format!("input `{}`: {e}", t.name)))?;
        values.push((t.name.to_string(), value));
    }
    let outputs = session
        .run(values)
        .map_err(|e| RuntimeError::Inference(e.to_string()))?;
    let mut owned = Vec::with_capacity(outputs.len());
    for (name, value) in outputs.iter() {
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| RuntimeError::Inference(format!("output `{name}` is not an f32 tensor: {e}")))?;
        owned.push(OwnedTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            data: data.to_vec(),
        });
    }
    Ok(owned)
}
