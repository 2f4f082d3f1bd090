//! What [`export_adapter!`](crate::export_adapter) expands to, kept out of the macro so that
//! the macro stays small and this code is checked once, here.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::OnceLock,
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, ROk, RResult, RSlice, RVec},
};

use crate::{
    Adapter, AdapterInfo, AdapterModule, AdapterModuleRef, Context, ErrorKind, ImageRef, ModelInfo, Params,
    PluginError, Prepared, Region, TensorRef,
};

/// The symbol abi_stable's loader looks up (`abi_stable::library::ROOT_MODULE_LOADER_NAME`).
#[doc(hidden)]
#[allow(dead_code)]
pub const LOADER_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

// Each plugin links its own copy of this crate, so this static holds exactly that plugin's adapter.
static ADAPTER: OnceLock<Box<dyn Adapter>> = OnceLock::new();

/// Builds the root module around the adapter that `make` constructs (once per process).
pub fn module_for(make: impl FnOnce() -> Box<dyn Adapter>) -> AdapterModuleRef {
    ADAPTER.get_or_init(make);
    guarded_module()
}

/// The root module whose functions call the registered adapter, catching its panics.
pub fn guarded_module() -> AdapterModuleRef {
    AdapterModule {
        describe,
        accepts,
        prepare,
        finish,
    }
    .leak_into_prefix()
}

fn guarded<T>(call: impl FnOnce(&dyn Adapter) -> Result<T, PluginError>) -> RResult<T, PluginError> {
    let Some(adapter) = ADAPTER.get() else {
        return RErr(PluginError::internal("the plugin's adapter was never constructed"));
    };
    match catch_unwind(AssertUnwindSafe(|| call(adapter.as_ref()))) {
        Ok(Ok(value)) => ROk(value),
        Ok(Err(error)) => RErr(error),
        Err(payload) => RErr(PluginError::new(ErrorKind::Panic, panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

extern "C" fn describe() -> RResult<AdapterInfo, PluginError> {
    guarded(|a| Ok(a.describe()))
}

extern "C" fn accepts(model: &ModelInfo) -> RResult<u32, PluginError> {
    guarded(|a| match a.accepts(model) {
        // A refusal with a reason travels as an `Unsupported` error through the same
        // function, so the ABI stays the 1.0 one.
        0 => match a.explain(model) {
            why if why.trim().is_empty() => Ok(0),
            why => Err(PluginError::unsupported(why)),
        },
        score => Ok(score),
    })
}

extern "C" fn prepare(model: &ModelInfo, image: ImageRef<'_>, params: &Params) -> RResult<Prepared, PluginError> {
    guarded(|a| a.prepare(model, image, params))
}

extern "C" fn finish(
    model: &ModelInfo,
    outputs: RSlice<'_, TensorRef<'_>>,
    context: Context,
    params: &Params,
) -> RResult<RVec<Region>, PluginError> {
    guarded(|a| a.finish(model, outputs.as_slice(), context, params).map(RVec::from))
}

/// Exports an [`Adapter`](crate::Adapter) as this library's plugin root module.
///
/// Pass a function or closure that builds the adapter; it runs once, when the host loads
/// the plugin. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! export_adapter {
    ($constructor:expr) => {
        #[doc(hidden)]
        fn __ls_ml_adapter_root_module() -> $crate::AdapterModuleRef {
            $crate::__private::module_for(|| ::std::boxed::Box::new(($constructor)()))
        }

        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __LS_ML_ADAPTER_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __load() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(__ls_ml_adapter_root_module)
            }
            // SAFETY: the module type named here is the one `__load` returns.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<$crate::AdapterModuleRef>(
                    __load,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
