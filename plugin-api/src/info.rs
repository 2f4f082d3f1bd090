//! Who a plugin is and what it can do, and how well it fits a model.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

/// The capabilities an adapter may declare. The host uses only what is declared; a name it
/// does not know is listed in `/plugins` and otherwise ignored, so a plugin may declare
/// capabilities of a later 2.x and still load into an older host.
pub mod capability {
    /// `prepare` takes several frames at once and `finish` answers each, so the host may
    /// batch tasks when the model has a dynamic batch axis.
    pub const BATCH: &str = "batch";
    /// Understands `PromptKind::POINT` prompts.
    pub const PROMPT_POINT: &str = "prompt.point";
    /// Understands `PromptKind::BOX` prompts.
    pub const PROMPT_BOX: &str = "prompt.box";
    /// Understands `PromptKind::TEXT` prompts.
    pub const PROMPT_TEXT: &str = "prompt.text";
    /// Understands `PromptKind::MASK` prompts.
    pub const PROMPT_MASK: &str = "prompt.mask";
    /// Answers only with prompts (a class-agnostic segmenter): the host answers a
    /// prediction without prompts with nothing.
    pub const INTERACTIVE_ONLY: &str = "interactive-only";
    /// Keeps state across the frames of one video (`Input::stream`) and sets track ids.
    pub const VIDEO: &str = "video";
    /// `finish` may return `Step::Run` for a second inference.
    pub const TWO_STAGE: &str = "two-stage";
}

/// Named operations an adapter may answer through `Adapter::call`. The host calls only
/// these; an adapter that does not know one answers `unsupported`, which the host takes as
/// "nothing to say".
pub mod operation {
    /// What the model gives beyond class names, for the host to check a label config against
    /// before any prediction. No arguments. Keys of the answer (all optional):
    /// - `keypoints`: how many keypoints each instance has;
    /// - `keypoint.<class id>.<index>`: that keypoint's name for instances of that class.
    pub const DESCRIBE: &str = "describe";
}

/// Who a plugin is, shown by the host's `/plugins` endpoint and folded into `model_version`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: RString,
    pub version: RString,
    /// The plugin-api version the plugin was built against.
    pub api_version: RString,
    /// The tasks it handles, in Ultralytics' words: `detect`, `segment`, `classify`, `pose`...
    pub tasks: RVec<RString>,
    /// What it can do beyond one frame in, instances out (see [`capability`]).
    pub capabilities: RVec<RString>,
}

impl PluginInfo {
    pub fn new(name: &str, version: &str, tasks: &[&str]) -> Self {
        Self {
            name: RString::from(name),
            version: RString::from(version),
            api_version: RString::from(env!("CARGO_PKG_VERSION")),
            tasks: tasks.iter().map(|t| RString::from(*t)).collect(),
            capabilities: RVec::new(),
        }
    }

    pub fn with_capabilities(mut self, capabilities: &[&str]) -> Self {
        self.capabilities = capabilities.iter().map(|c| RString::from(*c)).collect();
        self
    }

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.as_str() == capability)
    }
}

/// How well a plugin fits a model: 0 means "cannot serve it", higher wins; with 0, `reason`
/// says why in a sentence for the person who dropped the model in (it ends up in the
/// model's error in `GET /models`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    pub score: u32,
    pub reason: RString,
}

impl Fit {
    pub fn score(score: u32) -> Self {
        Self {
            score,
            reason: RString::new(),
        }
    }

    pub fn no(reason: impl Into<String>) -> Self {
        Self {
            score: 0,
            reason: RString::from(reason.into()),
        }
    }
}
