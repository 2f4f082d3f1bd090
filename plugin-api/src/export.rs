//! What [`export_plugin!`](crate::export_plugin) expands to, kept out of the macro so that
//! the macro stays small and this code is checked once, here.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::OnceLock,
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, ROk, RResult, RSlice, RStr},
};

use crate::{
    Adapter, AdapterHandle, Context, ErrorKind, Fit, Input, ModelInfo, Options, Plugin, PluginError, PluginInfo,
    PluginModule, PluginModuleRef, Prepared, Step, TensorRef,
};

/// The symbol abi_stable's loader looks up (`abi_stable::library::ROOT_MODULE_LOADER_NAME`).
#[doc(hidden)]
#[allow(dead_code)]
pub const LOADER_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

// Each plugin links its own copy of this crate, so this static holds exactly that plugin.
// It is the factory only: each model's state lives in the adapter `open` returns.
static PLUGIN: OnceLock<Box<dyn Plugin>> = OnceLock::new();

/// Builds the root module around the plugin that `make` constructs (once per process).
pub fn module_for(make: impl FnOnce() -> Box<dyn Plugin>) -> PluginModuleRef {
    PLUGIN.get_or_init(make);
    PluginModule {
        describe,
        inspect,
        open,
        prepare,
        finish,
        call,
    }
    .leak_into_prefix()
}

/// An open adapter as the handle holds it. Dropping it runs the adapter's own destructor
/// under `catch_unwind`: the host drops handles, and a panic must not cross into it.
struct Opened(Option<Box<dyn Adapter>>);

impl Drop for Opened {
    fn drop(&mut self) {
        let adapter = self.0.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(adapter)));
    }
}

fn guarded<T>(call: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => ROk(value),
        Ok(Err(error)) => RErr(error),
        Err(payload) => RErr(PluginError::new(ErrorKind::PANIC, panic_message(payload.as_ref()))),
    }
}

fn plugin() -> Result<&'static dyn Plugin, PluginError> {
    PLUGIN
        .get()
        .map(|p| p.as_ref())
        .ok_or_else(|| PluginError::internal("the plugin was never constructed"))
}

fn adapter(handle: &AdapterHandle) -> Result<&dyn Adapter, PluginError> {
    handle
        .get::<Opened>()
        .and_then(|o| o.0.as_deref())
        .ok_or_else(|| PluginError::internal("the adapter handle was made by another plugin"))
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

extern "C" fn describe() -> RResult<PluginInfo, PluginError> {
    guarded(|| Ok(plugin()?.describe()))
}

extern "C" fn inspect(model: &ModelInfo) -> RResult<Fit, PluginError> {
    guarded(|| Ok(plugin()?.inspect(model)))
}

extern "C" fn open(model: &ModelInfo, options: &Options) -> RResult<AdapterHandle, PluginError> {
    guarded(|| {
        let adapter = plugin()?.open(model, options)?;
        Ok(AdapterHandle::new(Opened(Some(adapter))))
    })
}

extern "C" fn prepare(handle: &AdapterHandle, input: &Input<'_>) -> RResult<Prepared, PluginError> {
    guarded(|| adapter(handle)?.prepare(input))
}

extern "C" fn finish(
    handle: &AdapterHandle,
    input: &Input<'_>,
    outputs: RSlice<'_, TensorRef<'_>>,
    context: Context,
) -> RResult<Step, PluginError> {
    guarded(|| adapter(handle)?.finish(input, outputs.as_slice(), context))
}

extern "C" fn call(handle: &AdapterHandle, operation: RStr<'_>, args: &Options) -> RResult<Options, PluginError> {
    guarded(|| adapter(handle)?.call(operation.as_str(), args))
}

/// Exports a [`Plugin`](crate::Plugin) as this library's root module.
///
/// Pass a function or closure that builds the plugin; it runs once, when the host loads the
/// library. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! export_plugin {
    ($constructor:expr) => {
        #[doc(hidden)]
        fn __ls_ml_plugin_root_module() -> $crate::PluginModuleRef {
            $crate::__private::module_for(|| ::std::boxed::Box::new(($constructor)()))
        }

        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __LS_ML_PLUGIN_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __load() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(__ls_ml_plugin_root_module)
            }
            // SAFETY: the module type named here is the one `__load` returns.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModuleRef>(
                    __load,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
