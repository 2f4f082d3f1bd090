use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RSlice, RVec},
};

use crate::{AdapterInfo, Context, ImageRef, ModelInfo, Params, PluginError, Prepared, Region, TensorRef};

/// The root module every plugin exports: a versioned prefix struct of `extern "C"` functions.
///
/// Versioning: abi_stable refuses a plugin whose `plugin-api` has another major version, and
/// checks the layout of every type reachable from here. abi_stable lets a library carry
/// *more* prefix fields than its loader expects, never fewer, so a host that grew a field
/// would refuse every older plugin: within a major version this struct and the types it
/// reaches do not change. Minor versions add behaviour behind the existing functions (see
/// `Adapter::explain`) and API that does not cross the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = AdapterModuleRef)))]
pub struct AdapterModule {
    pub describe: extern "C" fn() -> RResult<AdapterInfo, PluginError>,
    pub accepts: extern "C" fn(&ModelInfo) -> RResult<u32, PluginError>,
    pub prepare: extern "C" fn(&ModelInfo, ImageRef<'_>, &Params) -> RResult<Prepared, PluginError>,
    #[sabi(last_prefix_field)]
    pub finish:
        extern "C" fn(&ModelInfo, RSlice<'_, TensorRef<'_>>, Context, &Params) -> RResult<RVec<Region>, PluginError>,
}

impl RootModule for AdapterModuleRef {
    declare_root_module_statics! {AdapterModuleRef}

    const BASE_NAME: &'static str = "ls_ml_adapter";
    const NAME: &'static str = "ls-ml-backend adapter";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_abi_stables_loader_symbol() {
        // The export macro cannot compute this name, so it spells it out; keep them in step.
        assert_eq!(
            crate::export::LOADER_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
