//! Running a model on still images: the adapter's `prepare`, the session, the adapter's
//! `finish` (again, for a two-stage adapter), each off the async executor. The warm-up, a
//! task and a batch of tasks all go through here.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plugin_api::{
    Frame, FrameOutput, ImageRef, Input, Options, Params, PluginError, Prepared, Prompt, Step, TensorRef, capability,
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
    /// The sessions of the graph that answers: the model file, or a two-file model's decoder.
    pub pool: Arc<SessionPool>,
    /// The graphs of a two-file model by name, in the order they run (empty for one file).
    pub graphs: Arc<Vec<(String, Arc<SessionPool>)>>,
}

/// Which graph ran in one inference of a run, and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphRun {
    pub graph: String,
    pub took: Duration,
}

/// The frames of a run, their prompts and settings: what `prepare` and `finish` both see.
struct Stills {
    images: Vec<Arc<RgbImage>>,
    prompts: Vec<Prompt>,
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
        call(&Input::new(&frames, self.params, &self.options).with_prompts(&self.prompts))
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
        self.run_prompted(images, Vec::new(), params, options)
            .await
            .map(|(frames, times, _)| (frames, times))
    }

    /// The same with prompts (for an adapter that declares their kinds), also saying which
    /// graphs ran.
    pub async fn run_prompted(
        &self,
        images: Vec<Arc<RgbImage>>,
        prompts: Vec<Prompt>,
        params: Params,
        options: Options,
    ) -> Result<(Vec<FrameOutput>, RunTimes, Vec<GraphRun>), RunError> {
        let count = images.len();
        let stills = Arc::new(Stills {
            images,
            prompts,
            params,
            options,
        });
        let mut graphs_run = Vec::new();
        let mut times = RunTimes::default();
        let (adapter, s) = (Arc::clone(&self.adapter), Arc::clone(&stills));
        let t = Instant::now();
        let mut prepared = blocking(move || s.with_input(|input| adapter.prepare(input))).await??;
        let mut pool = self.pool_for(&prepared)?;
        times.prepare = t.elapsed();

        let mut done = 0;
        let frames = loop {
            let t = Instant::now();
            let context = prepared.context;
            let graph = prepared.graph.to_string();
            let outputs = pool.run(prepared.inputs.into_vec()).await?;
            times.infer += t.elapsed();
            graphs_run.push(GraphRun {
                graph,
                took: t.elapsed(),
            });
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
                    pool = self.pool_for(&next)?;
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
        Ok((frames, times, graphs_run))
    }

    /// The sessions of the graph an adapter asks for: empty names the model file (or the
    /// decoder of a two-file model), anything else one of a two-file model's graphs.
    fn pool_for(&self, prepared: &Prepared) -> Result<Arc<SessionPool>, PluginError> {
        if prepared.graph.is_empty() {
            return Ok(Arc::clone(&self.pool));
        }
        if let Some((_, pool)) = self
            .graphs
            .iter()
            .find(|(name, _)| name.as_str() == prepared.graph.as_str())
        {
            return Ok(Arc::clone(pool));
        }
        Err(PluginError::unsupported(if self.graphs.is_empty() {
            format!(
                "the adapter asks for graph `{}`, but this model is one ONNX file",
                prepared.graph
            )
        } else {
            let names: Vec<&str> = self.graphs.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "the adapter asks for graph `{}`, but this model has the graphs {}",
                prepared.graph,
                names.join(", ")
            )
        }))
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
