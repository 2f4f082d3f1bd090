use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RSlice, RStr},
};

use crate::{
    AdapterHandle, Context, Fit, Input, ModelInfo, Options, PluginError, PluginInfo, Prepared, Step, TensorRef,
};

/// The root module every 2.x plugin exports: a prefix struct of `extern "C"` functions.
///
/// **This struct, and every type it reaches, keeps its layout for all of 2.x.** abi_stable
/// refuses a library whose prefix struct has fewer fields than the host's, so a host that
/// added a field would refuse every older plugin. A later 2.x grows through what the
/// functions carry instead: capability names, `Options` keys, new `PromptKind`,
/// `ElementType` and `ErrorKind` numbers, and named operations through `call`. See
/// `docs/plugins.md` for the rules, and `host/tests/integration/plugin_abi.rs` for the builds that
/// prove them.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
pub struct PluginModule {
    pub describe: extern "C" fn() -> RResult<PluginInfo, PluginError>,
    pub inspect: extern "C" fn(&ModelInfo) -> RResult<Fit, PluginError>,
    pub open: extern "C" fn(&ModelInfo, &Options) -> RResult<AdapterHandle, PluginError>,
    pub prepare: extern "C" fn(&AdapterHandle, &Input<'_>) -> RResult<Prepared, PluginError>,
    pub finish:
        extern "C" fn(&AdapterHandle, &Input<'_>, RSlice<'_, TensorRef<'_>>, Context) -> RResult<Step, PluginError>,
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(&AdapterHandle, RStr<'_>, &Options) -> RResult<Options, PluginError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}

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
