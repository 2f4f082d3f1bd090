//! Adapter plugin for Ultralytics pose models (`yolov8-pose`, YOLO11 and YOLO26 pose) exported
//! to ONNX.
//!
//! The head is `[batch, 4 + classes + K·D, anchors]`, or NMS-free `[batch, candidates, 6 +
//! K·D]` for YOLO26, with `kpt_shape` `[K, D]` in the metadata (D = 3: x, y, visibility; D = 2:
//! x, y). As Ultralytics' `PosePredictor`: the boxes as in detection (per-class NMS for the
//! anchor layout), then each kept box's keypoints mapped back with the boxes' pad and gains
//! and clipped to the image. Each instance carries its box and its K keypoints (a keypoint
//! without visibility gets score 1).

use std::marker::PhantomData;

use plugin_api::{Keypoint, prelude::*, sdk, sdk::Family};
use yolov8_common::{
    FrameDecoder, Letterbox, Opened, YoloPlugin, box_instance, detect, letterbox_input, model::output,
};

const FAMILY: Family = Family {
    task: "pose",
    input: letterbox_input,
    looks_like: |_| false,
    heads: "a pose head (it needs `task: pose` and `kpt_shape` metadata)",
};

pub fn plugin() -> YoloPlugin<PoseDecoder> {
    YoloPlugin {
        name: "yolov8-pose",
        version: env!("CARGO_PKG_VERSION"),
        family: FAMILY,
        decoder: PhantomData,
    }
}

/// The `kpt_shape` of a pose model: K keypoints of D values each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeypointShape {
    pub count: usize,
    pub dims: usize,
}

impl KeypointShape {
    /// Parses `[17, 3]` (or `(17, 3)`).
    pub fn parse(text: &str) -> Option<Self> {
        let inner = text.trim().trim_start_matches(['[', '(']).trim_end_matches([']', ')']);
        let mut parts = inner.split(',').map(|p| p.trim().parse::<usize>());
        let (count, dims) = (parts.next()?.ok()?, parts.next()?.ok()?);
        (parts.next().is_none() && count > 0 && (dims == 2 || dims == 3)).then_some(Self { count, dims })
    }
}

/// Boxes after NMS, each with its keypoints.
#[derive(Debug)]
pub struct PoseDecoder {
    shape: KeypointShape,
    /// `kpt_names` per class, when the exporter wrote them.
    names: Vec<Vec<String>>,
}

impl FrameDecoder for PoseDecoder {
    fn open(model: &ModelInfo) -> Result<Self, PluginError> {
        let text = model.metadata("kpt_shape").ok_or_else(|| {
            PluginError::unsupported("the pose model has no `kpt_shape` metadata ([keypoints, 2 or 3])")
        })?;
        let shape = KeypointShape::parse(text).ok_or_else(|| {
            PluginError::unsupported(format!(
                "the pose model's `kpt_shape` is `{text}`; expected [keypoints, 2 or 3]"
            ))
        })?;
        if let Some([_, rows, anchors]) = output(model, "output0", 0).map(|o| o.shape.as_slice()) {
            let extra = (shape.count * shape.dims) as i64;
            let anchor_layout = match sdk::class_count(model) {
                Some(classes) => *rows == 4 + classes as i64 + extra,
                None => *rows < 0 || *rows > 4 + extra,
            };
            if !(anchor_layout || *anchors == 6 + extra) {
                return Err(PluginError::unsupported(format!(
                    "the head {:?} has no room for {} keypoints of {} values (`kpt_shape`)",
                    [1, *rows, *anchors],
                    shape.count,
                    shape.dims
                )));
            }
        }
        let names = model
            .metadata("kpt_names")
            .and_then(sdk::parse_keypoint_names)
            .unwrap_or_default();
        Ok(Self { shape, names })
    }

    fn describe(&self) -> Options {
        let mut options = Options::new().with("keypoints", self.shape.count);
        for (class, names) in self.names.iter().enumerate() {
            for (index, name) in names.iter().enumerate() {
                options.set(&format!("keypoint.{class}.{index}"), name);
            }
        }
        options
    }

    fn instances(
        &self,
        opened: &Opened,
        outputs: &[TensorRef<'_>],
        letterbox: &Letterbox,
        params: &Params,
    ) -> Result<Vec<Instance>, PluginError> {
        let KeypointShape { count, dims } = self.shape;
        let (head, kept) = detect(&opened.head_spec(count * dims), outputs, params)?;
        Ok(kept
            .iter()
            .map(|d| {
                let keypoints = (0..count)
                    .map(|k| Keypoint {
                        index: k as u32,
                        x: letterbox.unmap_x(head.extra(k * dims, d.anchor)),
                        y: letterbox.unmap_y(head.extra(k * dims + 1, d.anchor)),
                        score: if dims == 3 {
                            head.extra(k * dims + 2, d.anchor)
                        } else {
                            1.0
                        },
                    })
                    .collect();
                box_instance(letterbox, d).with_keypoints(keypoints)
            })
            .collect())
    }
}

plugin_api::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{MetadataEntry, TensorInfo};

    #[test]
    fn kpt_shape_parses_as_ultralytics_writes_it() {
        assert_eq!(
            KeypointShape::parse("[17, 3]"),
            Some(KeypointShape { count: 17, dims: 3 })
        );
        assert_eq!(KeypointShape::parse("(4,2)"), Some(KeypointShape { count: 4, dims: 2 }));
        assert_eq!(KeypointShape::parse("[4, 5]"), None);
        assert_eq!(KeypointShape::parse("[0, 3]"), None);
        assert_eq!(KeypointShape::parse("17"), None);
    }

    fn model(meta: &[(&str, &str)], head: [i64; 3]) -> ModelInfo {
        ModelInfo {
            inputs: vec![TensorInfo {
                name: "images".into(),
                element_type: ElementType::F32,
                shape: vec![1, 3, 64, 64].into(),
            }]
            .into(),
            outputs: vec![TensorInfo {
                name: "output0".into(),
                element_type: ElementType::F32,
                shape: head.to_vec().into(),
            }]
            .into(),
            metadata: meta
                .iter()
                .map(|(k, v)| MetadataEntry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn keypoints_are_mapped_back_and_clipped_like_boxes() {
        let info = model(&[("kpt_shape", "[2, 3]"), ("names", "{0: 'a'}")], [1, 300, 12]);
        let decoder = PoseDecoder::open(&info).expect("open");
        assert_eq!(decoder.describe().get("keypoints"), Some("2"));
        let opened = Opened::new(&info).expect("opened");
        // One end-to-end row: box, score, class, then (x, y, v) twice; the second point lies
        // in the padding and is clipped to the image.
        let mut data = vec![0f32; 300 * 12];
        data[..12].copy_from_slice(&[10.0, 20.0, 30.0, 40.0, 0.9, 0.0, 16.0, 24.0, 0.8, 2.0, 70.0, 0.1]);
        let shape = [1i64, 300, 12];
        let letterbox = Letterbox::plan(128, 64, 64, 64).expect("plan"); // gain 0.5, 16 px pad above and below
        let params = Params {
            conf: 0.25,
            ..Params::default()
        };
        let out = decoder
            .instances(
                &opened,
                &[TensorRef::new("output0", &shape, &data)],
                &letterbox,
                &params,
            )
            .expect("instances");
        assert_eq!(out.len(), 1);
        let k = &out[0].keypoints;
        assert_eq!((k[0].index, k[0].x, k[0].y, k[0].score), (0, 32.0, 16.0, 0.8));
        assert_eq!(
            (k[1].x, k[1].y, k[1].score),
            (4.0, 64.0, 0.1),
            "clipped to the 128x64 image"
        );
    }

    #[test]
    fn a_model_without_kpt_shape_or_with_a_head_too_small_is_refused() {
        assert!(PoseDecoder::open(&model(&[], [1, 300, 12])).is_err());
        let err = PoseDecoder::open(&model(&[("kpt_shape", "[17, 3]"), ("names", "{0: 'a'}")], [1, 300, 12]))
            .expect_err("small head");
        assert!(err.message.contains("17 keypoints"), "{}", err.message);
    }

    #[test]
    fn kpt_names_are_described_per_class() {
        let info = model(
            &[("kpt_shape", "[2, 2]"), ("kpt_names", "{0: ['tip', 'tail']}")],
            [1, 9, 100],
        );
        let described = PoseDecoder::open(&info).expect("open").describe();
        assert_eq!(described.get("keypoint.0.1"), Some("tail"));
    }
}
