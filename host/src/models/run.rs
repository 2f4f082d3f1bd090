//! Running a model on still images: the adapter's `prepare`, the session, the adapter's
//! `finish` (again, for a two-stage adapter), each off the async executor. The warm-up, a
//! task and a batch of tasks all go through here.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plugin_api::{
    Frame, FrameOutput, ImageRef, Input, Options, Params, PluginError, Prepared, Step, TensorRef, capability,
};

use crate::{
    imaging::RgbImage,
    plugins::Adapter,
    runtime::{RuntimeError, SessionPool},
    worker::{WorkerFailed, off_executor as blocking},
};

/// Inferences one prediction may chain (a two-stage model runs two).
pub const MAX_INFERENCES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Inference(#[from] RuntimeError),
    #[error(transparent)]
    Worker(#[from] WorkerFailed),
    #[error("{0}")]
    Batcher(String),
}

/// Time spent in each step of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RunTimes {
    pub prepare: Duration,
    pub infer: Duration,
    pub finish: Duration,
}

impl RunTimes {
    /// One task's share of a batch's times.
    pub fn share(&self, tasks: usize) -> RunTimes {
        let n = tasks.max(1) as u32;
        RunTimes {
            prepare: self.prepare / n,
            infer: self.infer / n,
            finish: self.finish / n,
        }
    }
}

/// What a model needs to run: its adapter and its sessions.
#[derive(Clone)]
pub struct Engine {
    pub adapter: Arc<Adapter>,
    pub pool: Arc<SessionPool>,
}

/// The frames of a run and their settings: what `prepare` and `finish` both see.
struct Stills {
    images: Vec<Arc<RgbImage>>,
    params: Params,
    options: Options,
}

impl Stills {
    fn with_input<T>(&self, call: impl FnOnce(&Input<'_>) -> T) -> T {
        let frames: Vec<Frame<'_>> = self
            .images
            .iter()
            .map(|image| Frame::still(ImageRef::new(image.width, image.height, &image.pixels)))
            .collect();
        call(&Input::new(&frames, self.params, &self.options))
    }
}

impl Engine {
    /// Runs the model on these images (one, unless the plugin declares `batch`); one
    /// `FrameOutput` per image, in order.
    pub async fn run(
        &self,
        images: Vec<Arc<RgbImage>>,
        params: Params,
        options: Options,
    ) -> Result<(Vec<FrameOutput>, RunTimes), RunError> {
        let count = images.len();
        let stills = Arc::new(Stills {
            images,
            params,
            options,
        });
        let mut times = RunTimes::default();
        let (adapter, s) = (Arc::clone(&self.adapter), Arc::clone(&stills));
        let t = Instant::now();
        let mut prepared = blocking(move || s.with_input(|input| adapter.prepare(input))).await??;
        runnable(&prepared)?;
        times.prepare = t.elapsed();

        let mut done = 0;
        let frames = loop {
            let t = Instant::now();
            let context = prepared.context;
            let outputs = self.pool.run(prepared.inputs.into_vec()).await?;
            times.infer += t.elapsed();
            done += 1;

            let (adapter, s) = (Arc::clone(&self.adapter), Arc::clone(&stills));
            let t = Instant::now();
            let step = blocking(move || {
                let views: Vec<TensorRef<'_>> = outputs.iter().map(|o| o.view()).collect();
                s.with_input(|input| adapter.finish(input, &views, context))
            })
            .await??;
            times.finish += t.elapsed();
            match step {
                Step::Done(output) => break output.frames.into_vec(),
                Step::Run(next) => {
                    self.may_run_again(done)?;
                    runnable(&next)?;
                    prepared = next;
                }
            }
        };
        if frames.len() != count {
            return Err(RunError::Plugin(PluginError::internal(format!(
                "the adapter answered {} frames for {count}",
                frames.len()
            ))));
        }
        Ok((frames, times))
    }

    /// Whether the adapter may ask for another inference after `done` of them.
    fn may_run_again(&self, done: usize) -> Result<(), PluginError> {
        if !self.adapter.plugin().has(capability::TWO_STAGE) {
            return Err(PluginError::internal(
                "the adapter asked for another inference without declaring `two-stage`",
            ));
        }
        if done >= MAX_INFERENCES {
            return Err(PluginError::internal(format!(
                "the adapter asked for more than {MAX_INFERENCES} inferences for one prediction"
            )));
        }
        Ok(())
    }
}

/// Whether the host can run the inference an adapter asks for: it runs the model's one
/// ONNX file.
fn runnable(prepared: &Prepared) -> Result<(), PluginError> {
    if prepared.graph.is_empty() {
        Ok(())
    } else {
        Err(PluginError::unsupported(format!(
            "the adapter asks for graph `{}`, but this model is one ONNX file",
            prepared.graph
        )))
    }
}
