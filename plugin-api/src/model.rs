//! What the host knows about a model before any adapter has looked at it.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

/// The element type of a tensor. A number rather than an enum, so that a later 2.x can name
/// more types without changing the layout; an adapter refuses a type it does not know.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElementType(pub u32);

impl ElementType {
    pub const F32: ElementType = ElementType(1);
    pub const F16: ElementType = ElementType(2);
    pub const F64: ElementType = ElementType(3);
    pub const I64: ElementType = ElementType(4);
    pub const I32: ElementType = ElementType(5);
    pub const U8: ElementType = ElementType(6);
    pub const I8: ElementType = ElementType(7);
    pub const BOOL: ElementType = ElementType(8);
    /// A type the host cannot hand to an adapter; it still reports it so `inspect` can refuse.
    pub const OTHER: ElementType = ElementType(0);

    /// Bytes per element, or None for a type without a fixed size here.
    pub fn size(self) -> Option<usize> {
        match self {
            ElementType::F32 | ElementType::I32 => Some(4),
            ElementType::F16 => Some(2),
            ElementType::F64 | ElementType::I64 => Some(8),
            ElementType::U8 | ElementType::I8 | ElementType::BOOL => Some(1),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::F64 => "f64",
            ElementType::I64 => "i64",
            ElementType::I32 => "i32",
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
            ElementType::BOOL => "bool",
            _ => "other",
        }
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One model input or output: its name, element type and shape (`-1` for a dynamic axis).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: RString,
    pub element_type: ElementType,
    pub shape: RVec<i64>,
}

/// One entry of the ONNX model's custom metadata (Ultralytics writes `task`, `names`, `imgsz`...).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    pub key: RString,
    pub value: RString,
}

/// The model as ONNX Runtime describes it: inputs, outputs and custom metadata.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    pub inputs: RVec<TensorInfo>,
    pub outputs: RVec<TensorInfo>,
    pub metadata: RVec<MetadataEntry>,
}

impl ModelInfo {
    /// The value of a custom metadata key, if the model has it.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|e| e.key.as_str() == key)
            .map(|e| e.value.as_str())
    }

    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|t| t.name.as_str() == name)
    }

    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|t| t.name.as_str() == name)
    }
}
