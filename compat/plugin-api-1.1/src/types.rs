//! Plain data that crosses the plugin boundary.

use abi_stable::{
    StableAbi,
    std_types::{RSlice, RStr, RString, RVec},
};

use crate::Context;

/// The element type of a model input or output.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    F32,
    F16,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
    /// A type that adapters cannot receive; the host still reports it so `accepts` can refuse.
    Other,
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

/// What the host knows about a model before any adapter has looked at it.
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

/// A decoded image: RGB, 8 bits per channel, row-major, `width * height * 3` bytes, already
/// turned upright according to its EXIF orientation. Borrowed from the host for one call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: RSlice<'a, u8>,
}

impl<'a> ImageRef<'a> {
    pub fn new(width: u32, height: u32, pixels: &'a [u8]) -> Self {
        Self {
            width,
            height,
            pixels: RSlice::from_slice(pixels),
        }
    }

    pub fn pixels(&self) -> &'a [u8] {
        self.pixels.as_slice()
    }
}

/// An owned f32 tensor, as `prepare` returns it for the model's inputs.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: RString,
    pub shape: RVec<i64>,
    pub data: RVec<f32>,
}

impl Tensor {
    pub fn new(name: impl Into<String>, shape: Vec<i64>, data: Vec<f32>) -> Self {
        Self {
            name: RString::from(name.into()),
            shape: RVec::from(shape),
            data: RVec::from(data),
        }
    }
}

/// A borrowed f32 tensor, as the host hands the model's outputs to `finish`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub name: RStr<'a>,
    pub shape: RSlice<'a, i64>,
    pub data: RSlice<'a, f32>,
}

impl<'a> TensorRef<'a> {
    pub fn new(name: &'a str, shape: &'a [i64], data: &'a [f32]) -> Self {
        Self {
            name: RStr::from_str(name),
            shape: RSlice::from_slice(shape),
            data: RSlice::from_slice(data),
        }
    }

    pub fn name(&self) -> &'a str {
        self.name.as_str()
    }

    pub fn shape(&self) -> &'a [i64] {
        self.shape.as_slice()
    }

    pub fn data(&self) -> &'a [f32] {
        self.data.as_slice()
    }
}

/// Thresholds for one prediction. The host fills them from the label config and its settings.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Keep regions whose score is strictly greater than this.
    pub conf: f32,
    /// IoU above which non-maximum suppression drops the weaker of two regions.
    pub iou: f32,
    /// At most this many regions per image.
    pub max_det: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
        }
    }
}

/// What `prepare` returns: the model's inputs, and state for `finish`.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Prepared {
    pub inputs: RVec<Tensor>,
    pub context: Context,
}

impl Prepared {
    pub fn new(inputs: Vec<Tensor>, context: Context) -> Self {
        Self {
            inputs: RVec::from(inputs),
            context,
        }
    }
}

/// An axis-aligned (or, with `rotation`, oriented) box in original-image pixels.
/// `x`, `y` is the top-left corner; `rotation` is in degrees, clockwise, about that corner.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct BoxGeometry {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub rotation: f32,
}

/// A point in original-image pixels.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A keypoint in original-image pixels, with its own confidence.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

/// A binary mask the size of the original image, run-length encoded in row-major order:
/// `runs` alternates counts of background and foreground pixels, starting with background
/// (so it starts with 0 when the first pixel is foreground). The counts sum to `width * height`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub runs: RVec<u32>,
}

/// The shape of one region.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum Geometry {
    Box(BoxGeometry),
    Polygon(RVec<Point>),
    Mask(Mask),
    Keypoints(RVec<Keypoint>),
    /// A class for the whole image (classification).
    Class,
}

/// One thing the model found: a class index into the model's class names, a score, a shape.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Region {
    pub class_id: u32,
    pub score: f32,
    pub geometry: Geometry,
}

/// Who an adapter is, shown by the host's `/plugins` endpoint and folded into `model_version`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: RString,
    pub version: RString,
    /// The tasks it handles, in Ultralytics' words: `detect`, `segment`, `classify`, `pose`...
    pub tasks: RVec<RString>,
}

impl AdapterInfo {
    pub fn new(name: &str, version: &str, tasks: &[&str]) -> Self {
        Self {
            name: RString::from(name),
            version: RString::from(version),
            tasks: tasks.iter().map(|t| RString::from(*t)).collect(),
        }
    }
}
