//! A prediction's regions, typed: what the pipeline carries from the model to the edge, and
//! what `serde` writes as Label Studio's result JSON there. Nothing reads this JSON back.

use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::results::ImageSize;

/// One region of a prediction, as Label Studio reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    pub id: String,
    pub from_name: String,
    pub to_name: String,
    /// Label Studio's result type (`rectanglelabels`, `choices`, `videorectangle`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The image's size, for results drawn on an image.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
    /// Video regions say who made them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
    pub value: RegionValue,
    pub score: f64,
    /// A pose instance's box is there to group its points, not to be drawn.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// The region a keypoint belongs to.
    #[serde(rename = "parentID", skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Text Label Studio shows with the region: a pose instance's box and points all carry
    /// the instance's id, as the official backend's do, so they read as one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    pub text: Vec<String>,
}

/// The size of the image a region was drawn on (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Original {
    pub original_width: u32,
    pub original_height: u32,
    pub image_rotation: u32,
}

impl From<ImageSize> for Original {
    fn from(size: ImageSize) -> Self {
        Self {
            original_width: size.width,
            original_height: size.height,
            image_rotation: 0,
        }
    }
}

/// A region's shape and its labels. Label Studio keys the labels by the result type
/// (`"rectanglelabels": [...]`), beside the shape's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionValue {
    pub shape: Shape,
    /// The key the labels go under: the result type, or `labels` for a video track.
    pub labels_key: &'static str,
    pub labels: Vec<String>,
}

/// Coordinates are in percent of the image (or frame).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Rectangle {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
        /// Degrees, clockwise about the top-left corner.
        rotation: f32,
    },
    Polygon {
        points: Vec<[f64; 2]>,
    },
    Keypoint {
        x: f64,
        y: f64,
        /// How wide the point is drawn.
        width: f64,
    },
    /// A mask in Label Studio's RLE.
    Brush {
        rle: Vec<u8>,
    },
    /// Whole-image labels: the labels are all there is.
    Choices,
    /// Whole-image labels of a `<Taxonomy>`, each as its path from the tree's root; they are
    /// the value (under `taxonomy`), so `labels` stays empty.
    Taxonomy {
        paths: Vec<Vec<String>>,
    },
    /// A track: its boxes on the timeline.
    VideoRectangle {
        frames_count: u64,
        duration: f64,
        sequence: Vec<VideoBox>,
    },
}

/// One keyframe of a video track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoBox {
    pub frame: u64,
    /// False on the last box before a gap, and on the track's last box.
    pub enabled: bool,
    pub rotation: u32,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub time: f64,
    pub score: f64,
}

impl Serialize for RegionValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.shape {
            Shape::Rectangle {
                x,
                y,
                width,
                height,
                rotation,
            } => {
                map.serialize_entry("x", x)?;
                map.serialize_entry("y", y)?;
                map.serialize_entry("width", width)?;
                map.serialize_entry("height", height)?;
                map.serialize_entry("rotation", rotation)?;
            }
            Shape::Polygon { points } => {
                map.serialize_entry("points", points)?;
                map.serialize_entry("closed", &true)?;
            }
            Shape::Keypoint { x, y, width } => {
                map.serialize_entry("x", x)?;
                map.serialize_entry("y", y)?;
                map.serialize_entry("width", width)?;
            }
            Shape::Brush { rle } => {
                map.serialize_entry("format", "rle")?;
                map.serialize_entry("rle", rle)?;
            }
            Shape::Choices => {}
            Shape::Taxonomy { paths } => {
                map.serialize_entry("taxonomy", paths)?;
                return map.end();
            }
            Shape::VideoRectangle {
                frames_count,
                duration,
                sequence,
            } => {
                map.serialize_entry("framesCount", frames_count)?;
                map.serialize_entry("duration", duration)?;
                map.serialize_entry("sequence", sequence)?;
            }
        }
        map.serialize_entry(self.labels_key, &self.labels)?;
        map.end()
    }
}

/// One task's prediction: its regions, their mean score, and the model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub result: Vec<Region>,
    pub score: f64,
    pub model_version: String,
}

impl Prediction {
    /// The regions with their mean score (0 without any).
    pub fn new(result: Vec<Region>, model_version: &str) -> Self {
        let score = if result.is_empty() {
            0.0
        } else {
            result.iter().map(|r| r.score).sum::<f64>() / result.len() as f64
        };
        Self {
            result,
            score: (score * 1e6).round() / 1e6,
            model_version: model_version.to_string(),
        }
    }

    /// No regions.
    pub fn empty(model_version: &str) -> Self {
        Self::new(Vec::new(), model_version)
    }
}

/// A prediction for Label Studio's bulk import: the task it belongs to, beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskPrediction {
    pub task: u64,
    #[serde(flatten)]
    pub prediction: Prediction,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn regions_are_written_as_label_studio_reads_them() {
        let rect = Region {
            id: "a0".into(),
            from_name: "label".into(),
            to_name: "image".into(),
            kind: "rectanglelabels",
            original: Some(
                ImageSize {
                    width: 640,
                    height: 480,
                }
                .into(),
            ),
            origin: None,
            value: RegionValue {
                shape: Shape::Rectangle {
                    x: 10.0,
                    y: 20.0,
                    width: 30.0,
                    height: 40.0,
                    rotation: 0.0,
                },
                labels_key: "rectanglelabels",
                labels: vec!["cat".into()],
            },
            score: 0.9,
            hidden: false,
            parent_id: None,
            meta: None,
        };
        assert_eq!(
            serde_json::to_value(&rect).unwrap(),
            json!({"id": "a0", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                   "original_width": 640, "original_height": 480, "image_rotation": 0,
                   "value": {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0.0,
                             "rectanglelabels": ["cat"]},
                   "score": 0.9})
        );
        let choice = Region {
            kind: "choices",
            original: None,
            value: RegionValue {
                shape: Shape::Choices,
                labels_key: "choices",
                labels: vec!["dog".into()],
            },
            hidden: true,
            parent_id: Some("a0".into()),
            ..rect
        };
        let written = serde_json::to_value(&choice).unwrap();
        assert_eq!(written["value"], json!({"choices": ["dog"]}));
        assert_eq!(
            (written["hidden"].clone(), written["parentID"].clone()),
            (json!(true), json!("a0"))
        );
        assert!(written.get("original_width").is_none());
        let prediction = Prediction::new(vec![choice.clone(), Region { score: 0.5, ..choice }], "m@1");
        assert_eq!(serde_json::to_value(&prediction).unwrap()["score"], json!(0.7));
        let imported = serde_json::to_value(TaskPrediction { task: 7, prediction }).unwrap();
        assert_eq!(
            (imported["task"].clone(), imported["model_version"].clone()),
            (json!(7), json!("m@1"))
        );
        assert_eq!(imported["result"].as_array().map(Vec::len), Some(2));
    }
}
