//! What the host hands an adapter for one prediction, and what `prepare` hands back.

use abi_stable::{
    StableAbi,
    std_types::{RSlice, RStr, RString, RVec},
};

use crate::{Context, Frame, Options, Prompt, Tensor};

/// Thresholds for one prediction. The host fills them from the label config and its
/// settings; anything beyond these three travels in `Input::options`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Keep instances whose score is strictly greater than this.
    pub conf: f32,
    /// IoU above which non-maximum suppression drops the weaker of two instances.
    pub iou: f32,
    /// At most this many instances per frame.
    pub max_det: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
        }
    }
}

/// One call's input: the frames (one, unless the adapter declares `batch`), the prompts
/// (only to an adapter that declares the matching `prompt.*` capability), the thresholds and
/// any other settings. `prepare` and `finish` of one prediction get the same input.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct Input<'a> {
    pub frames: RSlice<'a, Frame<'a>>,
    pub prompts: RSlice<'a, Prompt>,
    pub params: Params,
    pub options: &'a Options,
    /// Names the video the frames come from, so that an adapter with `video` can keep a
    /// tracker per video; empty for still images.
    pub stream: RStr<'a>,
}

impl<'a> Input<'a> {
    pub fn new(frames: &'a [Frame<'a>], params: Params, options: &'a Options) -> Self {
        Self {
            frames: RSlice::from_slice(frames),
            prompts: RSlice::from_slice(&[]),
            params,
            options,
            stream: RStr::from_str(""),
        }
    }

    pub fn with_prompts(mut self, prompts: &'a [Prompt]) -> Self {
        self.prompts = RSlice::from_slice(prompts);
        self
    }

    pub fn with_stream(mut self, stream: &'a str) -> Self {
        self.stream = RStr::from_str(stream);
        self
    }

    pub fn frames(&self) -> &'a [Frame<'a>] {
        self.frames.as_slice()
    }

    pub fn prompts(&self) -> &'a [Prompt] {
        self.prompts.as_slice()
    }
}

/// What `prepare` (or a `Step::Run`) returns: the inputs of one inference, and state for
/// `finish`.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Prepared {
    pub inputs: RVec<Tensor>,
    pub context: Context,
    /// Which of the model's graphs to run: empty for the model file itself. A two-stage
    /// model names its other graph here (see `docs/plugins.md`).
    pub graph: RString,
}

impl Prepared {
    pub fn new(inputs: Vec<Tensor>, context: Context) -> Self {
        Self {
            inputs: RVec::from(inputs),
            context,
            graph: RString::new(),
        }
    }

    pub fn on_graph(mut self, graph: &str) -> Self {
        self.graph = RString::from(graph);
        self
    }
}
