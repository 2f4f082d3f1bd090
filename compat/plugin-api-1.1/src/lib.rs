//! The stable ABI between the `ls-ml-backend` host and its model-family adapter plugins.
//!
//! An adapter does the pre- and post-processing around one family of ONNX models: it turns
//! a decoded RGB image into input tensors, and the model's output tensors into regions in
//! original-image pixels. It knows nothing of HTTP, Label Studio or ONNX Runtime; the host
//! knows nothing of any model family.
//!
//! A plugin is a `cdylib` crate that implements [`Adapter`] and calls [`export_adapter!`]:
//!
//! ```no_run
//! use plugin_api::prelude::*;
//!
//! #[derive(Default)]
//! struct MyAdapter;
//!
//! impl Adapter for MyAdapter {
//!     fn describe(&self) -> AdapterInfo { AdapterInfo::new("my-adapter", env!("CARGO_PKG_VERSION"), &["detect"]) }
//!     fn accepts(&self, model: &ModelInfo) -> u32 { 0 }
//!     fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, params: &Params) -> Result<Prepared, PluginError> { todo!() }
//!     fn finish(&self, model: &ModelInfo, outputs: &[TensorRef<'_>], context: Context, params: &Params)
//!         -> Result<Vec<Region>, PluginError> { todo!() }
//! }
//!
//! plugin_api::export_adapter!(MyAdapter::default);
//! ```
//!
//! Only `#[repr(C)]` types from this crate cross the boundary, and every call into a plugin
//! catches panics on the plugin's side, so a bug in an adapter comes back as an error value.
// abi_stable's derive macros emit impls inside consts, which newer compilers flag.
#![allow(non_local_definitions)]
// `Context` wraps a DynTrait whose zero-sized phantom field rustc cannot prove FFI-safe;
// abi_stable checks its layout at load time instead.
#![allow(improper_ctypes_definitions)]

mod adapter;
mod context;
mod error;
mod export;
mod module;
mod types;

/// The FFI-safe containers the data types use (`Mask::runs`, `Region` polygons, ...).
pub use abi_stable::std_types::{RSlice, RStr, RString, RVec};
pub use adapter::Adapter;
pub use context::Context;
pub use error::{ErrorKind, PluginError};
pub use module::{AdapterModule, AdapterModuleRef};
pub use types::{
    AdapterInfo, BoxGeometry, ElementType, Geometry, ImageRef, Keypoint, Mask, MetadataEntry, ModelInfo, Params, Point,
    Prepared, Region, Tensor, TensorInfo, TensorRef,
};

/// Everything a plugin author needs, in one `use`.
pub mod prelude {
    pub use crate::RVec;
    pub use crate::{
        Adapter, AdapterInfo, BoxGeometry, Context, ElementType, ErrorKind, Geometry, ImageRef, Keypoint, Mask,
        ModelInfo, Params, PluginError, Point, Prepared, Region, Tensor, TensorInfo, TensorRef,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::{guarded_module, module_for};
    pub use abi_stable;
}
