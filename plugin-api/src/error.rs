use std::fmt;

use abi_stable::{StableAbi, std_types::RString};

/// What kind of failure a plugin call reports. A number rather than an enum, so that a later
/// 2.x can add kinds without changing the layout; an unknown kind reads as `INTERNAL`.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u32);

impl ErrorKind {
    /// The image, prompt or tensors handed to the adapter cannot be processed.
    pub const INVALID_INPUT: ErrorKind = ErrorKind(1);
    /// The model is not one this adapter can serve (wrong shapes, missing outputs), or the
    /// call asks for something the adapter does not do.
    pub const UNSUPPORTED: ErrorKind = ErrorKind(2);
    /// The adapter panicked; the panic was caught on the plugin's side.
    pub const PANIC: ErrorKind = ErrorKind(3);
    /// Anything else.
    pub const INTERNAL: ErrorKind = ErrorKind(4);

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::INVALID_INPUT => "invalid input",
            ErrorKind::UNSUPPORTED => "unsupported",
            ErrorKind::PANIC => "adapter panicked",
            _ => "adapter error",
        }
    }
}

/// An error returned across the plugin boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_INPUT, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INTERNAL, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.describe(), self.message)
    }
}

impl std::error::Error for PluginError {}
