//! Admission control: a request's tasks are admitted at once or refused at once, so memory
//! stays bounded and Label Studio (which does not retry 5xx) gets a clear error in the log.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

pub struct Admission {
    /// One permit per task admitted (running or waiting), over all requests.
    queue: Arc<Semaphore>,
    capacity: usize,
}

impl Admission {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Admits `tasks` tasks, or says why not. The permit frees their places when dropped.
    pub fn admit(&self, tasks: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let limit = self.capacity;
        if tasks > limit {
            return Err(ApiError::TooManyTasks { tasks, limit });
        }
        Arc::clone(&self.queue)
            .try_acquire_many_owned(tasks.max(1) as u32)
            .map_err(|_| ApiError::Busy {
                tasks,
                queued: limit - self.queue.available_permits(),
                limit,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_frees_when_done() {
        let admission = Admission::new(3);
        let first = admission.admit(2).expect("fits");
        assert!(matches!(admission.admit(2), Err(ApiError::Busy { queued: 2, .. })));
        assert!(matches!(admission.admit(4), Err(ApiError::TooManyTasks { .. })));
        drop(first);
        assert!(admission.admit(3).is_ok());
    }
}
