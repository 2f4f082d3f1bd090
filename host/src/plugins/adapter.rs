//! The host's handle on one loaded plugin: plain Rust calls over the plugin's root module.

use std::path::PathBuf;

use abi_stable::std_types::{RResult, RSlice};
use plugin_api::{
    AdapterInfo, AdapterModuleRef, Context, ImageRef, ModelInfo, Params, PluginError as AbiError, Prepared, Region,
    TensorRef,
};

pub struct Plugin {
    pub info: AdapterInfo,
    /// The file it was loaded from (not the private copy that is really mapped).
    pub file: PathBuf,
    module: AdapterModuleRef,
}

fn into_result<T>(r: RResult<T, AbiError>) -> Result<T, AbiError> {
    r.into_result()
}

impl Plugin {
    pub(super) fn new(module: AdapterModuleRef, file: PathBuf) -> Result<Self, AbiError> {
        let info = into_result((module.describe())())?;
        Ok(Self { info, file, module })
    }

    pub fn name(&self) -> &str {
        self.info.name.as_str()
    }

    pub fn version(&self) -> &str {
        self.info.version.as_str()
    }

    pub fn tasks(&self) -> Vec<String> {
        self.info.tasks.iter().map(|t| t.to_string()).collect()
    }

    /// The plugin's match score for a model. A plugin built against plugin-api 1.1 or later
    /// says why it refuses one as an `Unsupported` error; any error counts as "cannot serve it".
    pub fn accepts(&self, model: &ModelInfo) -> Result<u32, AbiError> {
        into_result((self.module.accepts())(model))
    }

    pub fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, params: &Params) -> Result<Prepared, AbiError> {
        into_result((self.module.prepare())(model, image, params))
    }

    pub fn finish(
        &self,
        model: &ModelInfo,
        outputs: &[TensorRef<'_>],
        context: Context,
        params: &Params,
    ) -> Result<Vec<Region>, AbiError> {
        into_result((self.module.finish())(
            model,
            RSlice::from_slice(outputs),
            context,
            params,
        ))
        .map(|v| v.into_vec())
    }
}
