//! A model's dynamic batcher: tasks that reach the model within a short wait (of one request
//! or of several) run as one inference, as Triton's dynamic batcher does. Only for models
//! with a dynamic batch axis whose plugin declares `batch`, and only with ML_MAX_BATCH > 1.
//!
//! A batch holds tasks with the same thresholds. If a batch fails, each of its tasks runs
//! again on its own, so one bad image fails its own task and no other.

use std::{sync::Arc, time::Duration};

use plugin_api::{FrameOutput, Options, Params};
use tokio::sync::{mpsc, oneshot};

use super::run::{Engine, RunError, RunTimes};
use crate::imaging::RgbImage;

/// How tasks are batched (from ML_MAX_BATCH and ML_BATCH_WAIT_MS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    pub max_batch: usize,
    pub wait: Duration,
}

type Answer = Result<(FrameOutput, RunTimes), RunError>;

struct Item {
    image: Arc<RgbImage>,
    params: Params,
    reply: oneshot::Sender<Answer>,
}

/// The queue in front of one model. Dropping it (with the model) ends its task.
pub struct Batcher {
    queue: mpsc::UnboundedSender<Item>,
}

impl Batcher {
    /// Starts the batching task on the current Tokio runtime.
    pub fn start(engine: Engine, settings: BatchSettings) -> Self {
        let (queue, items) = mpsc::unbounded_channel();
        tokio::spawn(collect(engine, settings, items));
        Self { queue }
    }

    /// Runs one image in the next batch; its own output and its share of the batch's times.
    pub async fn run(&self, image: Arc<RgbImage>, params: Params) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Item { image, params, reply })
            .map_err(|_| RunError::Batcher("the model's batcher has stopped".into()))?;
        answer
            .await
            .map_err(|_| RunError::Batcher("the model's batcher dropped a task".into()))?
    }
}

/// Takes the first waiting task, then whatever else arrives within the wait, up to the
/// batch size; runs each group of equal thresholds as a batch of its own.
async fn collect(engine: Engine, settings: BatchSettings, mut items: mpsc::UnboundedReceiver<Item>) {
    while let Some(first) = items.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + settings.wait;
        while batch.len() < settings.max_batch {
            match tokio::time::timeout_at(deadline, items.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        for group in by_params(batch) {
            tokio::spawn(run_batch(engine.clone(), group));
        }
    }
}

/// Groups items whose thresholds are equal, in arrival order.
fn by_params(items: Vec<Item>) -> Vec<Vec<Item>> {
    let mut groups: Vec<Vec<Item>> = Vec::new();
    for item in items {
        match groups.iter_mut().find(|g| same(&g[0].params, &item.params)) {
            Some(group) => group.push(item),
            None => groups.push(vec![item]),
        }
    }
    groups
}

fn same(a: &Params, b: &Params) -> bool {
    a.conf.to_bits() == b.conf.to_bits() && a.iou.to_bits() == b.iou.to_bits() && a.max_det == b.max_det
}

async fn run_batch(engine: Engine, items: Vec<Item>) {
    let params = items[0].params;
    let images: Vec<Arc<RgbImage>> = items.iter().map(|i| Arc::clone(&i.image)).collect();
    let tasks = items.len();
    log::debug!("running a batch of {tasks} task(s)");
    match engine.run(images, params, Options::new()).await {
        Ok((frames, times)) => {
            for (item, frame) in items.into_iter().zip(frames) {
                let _ = item.reply.send(Ok((frame, times.share(tasks))));
            }
        }
        Err(_) if tasks > 1 => {
            log::warn!("a batch of {tasks} tasks failed; running each on its own");
            for item in items {
                let answer = engine
                    .run(vec![item.image], item.params, Options::new())
                    .await
                    .map(|(frames, times)| (frames.into_iter().next().unwrap_or_default(), times));
                let _ = item.reply.send(answer);
            }
        }
        Err(e) => {
            if let Some(item) = items.into_iter().next() {
                let _ = item.reply.send(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(conf: f32) -> Item {
        Item {
            image: Arc::new(RgbImage {
                width: 1,
                height: 1,
                pixels: vec![0; 3],
            }),
            params: Params {
                conf,
                ..Params::default()
            },
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn only_equal_thresholds_share_a_batch() {
        let groups = by_params(vec![item(0.25), item(0.5), item(0.25), item(0.5), item(0.1)]);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(groups[1][0].params.conf, 0.5);
    }
}
