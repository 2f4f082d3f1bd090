use std::fmt;

use abi_stable::{DynTrait, StableAbi, std_types::RBox};

use crate::PluginError;

#[repr(C)]
#[derive(StableAbi)]
#[sabi(impl_InterfaceType(Send, Sync))]
pub struct ContextInterface;

/// State that `prepare` hands to `finish` for the same frames (a letterbox's scale and
/// padding, say). The host carries it without looking inside; only the plugin that made it
/// can open it.
#[repr(transparent)]
#[derive(StableAbi)]
pub struct Context(DynTrait<'static, RBox<()>, ContextInterface>);

impl Context {
    pub fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Self(DynTrait::from_value(value))
    }

    /// A context that carries nothing, for adapters that need none.
    pub fn empty() -> Self {
        Self::new(())
    }

    /// Takes the value back out. Fails if the context holds another type, which means the
    /// host mixed up two plugins' contexts.
    pub fn into_inner<T: Send + Sync + 'static>(self) -> Result<T, PluginError> {
        match self.0.downcast_into::<T>() {
            Ok(boxed) => Ok(abi_stable::std_types::RBox::into_inner(boxed)),
            Err(_) => Err(PluginError::internal(format!(
                "the context is not a {}: it was made by another adapter",
                std::any::type_name::<T>()
            ))),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Context(..)")
    }
}

#[repr(C)]
#[derive(StableAbi)]
#[sabi(impl_InterfaceType(Send, Sync))]
pub struct AdapterInterface;

/// One open adapter: the state a plugin keeps for one model (parsed class names, caches,
/// trackers), made by the plugin's `open` and dropped by the host when the model is unloaded
/// or replaced. The host passes it back to every call for that model and never looks inside.
#[repr(transparent)]
#[derive(StableAbi)]
pub struct AdapterHandle(DynTrait<'static, RBox<()>, AdapterInterface>);

impl AdapterHandle {
    #[doc(hidden)]
    pub fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Self(DynTrait::from_value(value))
    }

    #[doc(hidden)]
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.downcast_as::<T>().ok()
    }
}

impl fmt::Debug for AdapterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdapterHandle(..)")
    }
}
