//! The stable ABI between the `ls-ml-backend` host and its model-family adapter plugins,
//! and an SDK of helpers for writing them.
//!
//! A plugin knows one family of ONNX models: it turns decoded frames (and, for interactive
//! labeling, prompts) into input tensors, and the model's output tensors into instances in
//! original-image pixels. It knows nothing of HTTP, Label Studio or ONNX Runtime; the host
//! knows nothing of any model family.
//!
//! A plugin is a `cdylib` crate that implements [`Plugin`] (once per library) and
//! [`Adapter`] (one instance per model), and calls [`export_plugin!`]:
//!
//! ```no_run
//! use plugin_api::prelude::*;
//!
//! #[derive(Default)]
//! struct MyPlugin;
//! struct MyAdapter;
//!
//! impl Plugin for MyPlugin {
//!     fn describe(&self) -> PluginInfo { PluginInfo::new("my-adapter", env!("CARGO_PKG_VERSION"), &["detect"]) }
//!     fn inspect(&self, model: &ModelInfo) -> Fit { Fit::no("not mine") }
//!     fn open(&self, model: &ModelInfo, options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
//!         Ok(Box::new(MyAdapter))
//!     }
//! }
//!
//! impl Adapter for MyAdapter {
//!     fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> { todo!() }
//!     fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
//!         todo!()
//!     }
//! }
//!
//! plugin_api::export_plugin!(MyPlugin::default);
//! ```
//!
//! Only `#[repr(C)]` types from this crate cross the boundary, and every call into a plugin
//! catches panics on the plugin's side, so a bug in an adapter comes back as an error value.
//! What may change within 2.x, and what never does, is in `docs/plugins.md`.
// abi_stable's derive macros emit impls inside consts, which newer compilers flag.
#![allow(non_local_definitions)]
// `Context` wraps a DynTrait whose zero-sized phantom field rustc cannot prove FFI-safe;
// abi_stable checks its layout at load time instead.
#![allow(improper_ctypes_definitions)]

mod adapter;
mod context;
mod error;
mod export;
mod geometry;
mod info;
mod io;
mod media;
mod model;
mod module;
mod options;
mod output;
mod prompt;
pub mod sdk;
mod tensor;

/// The FFI-safe containers the data types use (`Mask::runs`, `Instance::polygons`, ...).
pub use abi_stable::std_types::{ROption, RSlice, RStr, RString, RVec};
pub use adapter::{Adapter, Plugin};
pub use context::{AdapterHandle, Context};
pub use error::{ErrorKind, PluginError};
pub use geometry::{BoxGeometry, Keypoint, Mask, Point};
pub use info::{Fit, PluginInfo, capability, operation};
pub use io::{Input, Params, Prepared};
pub use media::{Frame, ImageRef};
pub use model::{ElementType, MetadataEntry, ModelInfo, TensorInfo};
pub use module::{PluginModule, PluginModuleRef};
pub use options::{KeyValue, Options};
pub use output::{ClassScore, FrameOutput, Instance, Output, Step};
pub use prompt::{Prompt, PromptKind};
pub use tensor::{Element, Tensor, TensorRef};

/// Everything a plugin author needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Adapter, BoxGeometry, ClassScore, Context, ElementType, ErrorKind, Fit, Frame, FrameOutput, ImageRef, Input,
        Instance, Keypoint, Mask, ModelInfo, Options, Output, Params, Plugin, PluginError, PluginInfo, Point, Prepared,
        Prompt, PromptKind, RVec, Step, Tensor, TensorInfo, TensorRef, capability, operation,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::module_for;
    pub use abi_stable;
}
