//! A fixed set of ONNX Runtime sessions for one model. `Session::run` needs `&mut`, so each
//! session serves one inference at a time; several sessions let a model run in parallel.
//! Inference always happens on tokio's blocking pool, never on the async executor.

use std::sync::{Arc, Mutex, PoisonError};

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

pub struct SessionPool {
    sessions: Vec<Mutex<Session>>,
    free: Arc<Semaphore>,
}

impl SessionPool {
    pub fn new(sessions: Vec<Session>) -> Self {
        let count = sessions.len();
        Self {
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            free: Arc::new(Semaphore::new(count)),
        }
    }

    pub fn size(&self) -> usize {
        self.sessions.len()
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
        // With a permit held, at least one session is free; take the first we can lock.
        let mut guard = self
            .sessions
            .iter()
            .find_map(|s| match s.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            })
            .unwrap_or_else(|| self.sessions[0].lock().unwrap_or_else(PoisonError::into_inner));
        infer(&mut guard, inputs)
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
