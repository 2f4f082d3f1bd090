//! What an annotator points at in interactive labeling: clicks, boxes, and room for more.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RString, RVec},
};

use crate::{BoxGeometry, Mask, Point};

/// The kind of a prompt. A number rather than an enum, so that a later 2.x can add kinds
/// without changing the layout. The host sends a kind only to an adapter that declares the
/// matching capability (`prompt.point`, `prompt.box`, ...), so an adapter never has to guess.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptKind(pub u32);

impl PromptKind {
    /// A click: `points[0]`, with `positive` saying whether it is on the object or off it.
    pub const POINT: PromptKind = PromptKind(1);
    /// A box around the object: `bbox`.
    pub const BOX: PromptKind = PromptKind(2);
    /// A text description: `text`.
    pub const TEXT: PromptKind = PromptKind(3);
    /// A rough mask of the object: `mask`.
    pub const MASK: PromptKind = PromptKind(4);
}

/// One prompt. All the prompts of one call describe one object together (several clicks,
/// or a box with clicks).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    /// Whether the prompt marks the object (true) or what is not the object (false).
    pub positive: bool,
    /// The class the annotator chose, as an index into the model's class names, if the host
    /// could map it; the answer keeps the annotator's label either way.
    pub class_id: ROption<u32>,
    /// In original-image pixels.
    pub points: RVec<Point>,
    pub bbox: ROption<BoxGeometry>,
    pub text: RString,
    pub mask: ROption<Mask>,
}

impl Prompt {
    fn empty(kind: PromptKind, positive: bool) -> Self {
        Self {
            kind,
            positive,
            class_id: ROption::RNone,
            points: RVec::new(),
            bbox: ROption::RNone,
            text: RString::new(),
            mask: ROption::RNone,
        }
    }

    pub fn point(x: f32, y: f32, positive: bool) -> Self {
        Self {
            points: RVec::from(vec![Point { x, y }]),
            ..Self::empty(PromptKind::POINT, positive)
        }
    }

    pub fn bbox(bbox: BoxGeometry) -> Self {
        Self {
            bbox: ROption::RSome(bbox),
            ..Self::empty(PromptKind::BOX, true)
        }
    }

    pub fn text(text: &str) -> Self {
        Self {
            text: RString::from(text),
            ..Self::empty(PromptKind::TEXT, true)
        }
    }

    pub fn mask(mask: Mask, positive: bool) -> Self {
        Self {
            mask: ROption::RSome(mask),
            ..Self::empty(PromptKind::MASK, positive)
        }
    }
}
