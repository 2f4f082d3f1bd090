//! The host's handle on one loaded plugin, whatever plugin-api major it was built against,
//! and on the adapter it opened for one model. The rest of the host sees only ABI 2 types.

use std::{path::PathBuf, sync::Arc};

use abi_stable::std_types::{RResult, RSlice, RStr};
use plugin_api::{
    AdapterHandle, Context, Fit, Input, ModelInfo, Options, PluginError, PluginInfo, PluginModuleRef, Prepared, Step,
    TensorRef,
};

use super::v1;

/// Which ABI the library speaks.
pub(super) enum Abi {
    V2(PluginModuleRef),
    V1(v1::Module),
}

pub struct Plugin {
    pub info: PluginInfo,
    /// The file it was loaded from (not the private copy that is really mapped).
    pub file: PathBuf,
    abi: Abi,
}

fn into_result<T>(r: RResult<T, PluginError>) -> Result<T, PluginError> {
    r.into_result()
}

impl Plugin {
    pub(super) fn new(abi: Abi, file: PathBuf) -> Result<Self, PluginError> {
        let info = match &abi {
            Abi::V2(module) => into_result((module.describe())())?,
            Abi::V1(module) => module.describe()?,
        };
        Ok(Self { info, file, abi })
    }

    pub fn name(&self) -> &str {
        self.info.name.as_str()
    }

    pub fn version(&self) -> &str {
        self.info.version.as_str()
    }

    /// The plugin-api version it was built against.
    pub fn api_version(&self) -> &str {
        self.info.api_version.as_str()
    }

    pub fn tasks(&self) -> Vec<String> {
        self.info.tasks.iter().map(|t| t.to_string()).collect()
    }

    pub fn capabilities(&self) -> Vec<String> {
        self.info.capabilities.iter().map(|t| t.to_string()).collect()
    }

    /// Whether the plugin declares this capability; the host uses nothing undeclared.
    pub fn has(&self, capability: &str) -> bool {
        self.info.has(capability)
    }

    /// How well the plugin fits a model.
    pub fn inspect(&self, model: &ModelInfo) -> Result<Fit, PluginError> {
        match &self.abi {
            Abi::V2(module) => into_result((module.inspect())(model)),
            Abi::V1(module) => module.inspect(model),
        }
    }

    /// Opens the plugin's adapter for one model.
    pub fn open(self: &Arc<Self>, model: &ModelInfo, options: &Options) -> Result<Adapter, PluginError> {
        let inner = match &self.abi {
            Abi::V2(module) => Opened::V2(*module, into_result((module.open())(model, options))?),
            Abi::V1(module) => Opened::V1(module.open(model)),
        };
        Ok(Adapter {
            plugin: Arc::clone(self),
            inner,
        })
    }
}

enum Opened {
    V2(PluginModuleRef, AdapterHandle),
    V1(v1::Adapter),
}

/// One model's open adapter. Dropping it drops the plugin's state for that model.
pub struct Adapter {
    plugin: Arc<Plugin>,
    inner: Opened,
}

impl Adapter {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        match &self.inner {
            Opened::V2(module, handle) => into_result((module.prepare())(handle, input)),
            Opened::V1(adapter) => adapter.prepare(input),
        }
    }

    pub fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        match &self.inner {
            Opened::V2(module, handle) => {
                into_result((module.finish())(handle, input, RSlice::from_slice(outputs), context))
            }
            Opened::V1(adapter) => adapter.finish(input, outputs, context),
        }
    }

    /// A named operation (`plugin_api::operation`); ABI 1 adapters know none.
    pub fn call(&self, operation: &str, args: &Options) -> Result<Options, PluginError> {
        match &self.inner {
            Opened::V2(module, handle) => into_result((module.call())(handle, RStr::from_str(operation), args)),
            Opened::V1(_) => Err(PluginError::unsupported(format!(
                "ABI 1 adapters have no operation `{operation}`"
            ))),
        }
    }
}
