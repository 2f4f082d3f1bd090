//! The project's labeling config (XML): which control tags to fill, on which image, with
//! which labels.

/// The control tags a model can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    RectangleLabels,
    PolygonLabels,
    BrushLabels,
    KeyPointLabels,
    Choices,
    /// A `<Taxonomy>`: whole-image classes, as for `Choices`, but Label Studio stores each as
    /// its path from the root of the `<Choice>` tree.
    Taxonomy,
}

impl ControlKind {
    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag.to_ascii_lowercase().as_str() {
            "rectanglelabels" => Self::RectangleLabels,
            "polygonlabels" => Self::PolygonLabels,
            "brushlabels" => Self::BrushLabels,
            "keypointlabels" => Self::KeyPointLabels,
            "choices" => Self::Choices,
            "taxonomy" => Self::Taxonomy,
            _ => return None,
        })
    }

    /// The result `type`, which is also the key of the label list in `value`.
    pub fn result_type(self) -> &'static str {
        match self {
            Self::RectangleLabels => "rectanglelabels",
            Self::PolygonLabels => "polygonlabels",
            Self::BrushLabels => "brushlabels",
            Self::KeyPointLabels => "keypointlabels",
            Self::Choices => "choices",
            Self::Taxonomy => "taxonomy",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelDef {
    /// What Label Studio stores as the label: the `alias`, else the `value`.
    pub value: String,
    /// The `value` attribute, matched against model class names.
    pub name: String,
    /// Model class names that map to this label (`predicted_values="cat,kitten"`).
    pub predicted_values: Vec<String>,
    /// `model_index` under `KeyPointLabels`: which keypoint of the model (0 for the first).
    pub model_index: Option<usize>,
    /// The stored labels (`alias`, else `value`) of the label's enclosing `<Choice>`s, then its
    /// own: `["Animal", "Cat"]` for a `Cat` nested in `Animal` in a `<Taxonomy>`, which Label
    /// Studio stores by that path. A label that is not nested has itself alone.
    pub path: Vec<String>,
}

/// The keypoint options of a `KeyPointLabels` tag, with the official backend's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointOptions {
    /// `model_add_bboxes` (true): each instance's box goes to `<name>_bbox` as the keypoints' parent.
    pub add_bboxes: bool,
    /// `model_point_size` (1): the drawn size of a point in pixels.
    pub point_size: f64,
    /// `model_point_threshold` (0): keypoints scoring at most this are left out.
    pub point_threshold: f32,
    /// The `<RectangleLabels name="<name>_bbox">` the parent boxes go to, when boxes are added
    /// and the config has it.
    pub parent: Option<ParentBoxes>,
}

impl Default for KeypointOptions {
    fn default() -> Self {
        Self {
            add_bboxes: true,
            point_size: 1.0,
            point_threshold: 0.0,
            parent: None,
        }
    }
}

/// The control tag that takes the keypoints' parent boxes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentBoxes {
    pub name: String,
    pub labels: Vec<LabelDef>,
}

impl ParentBoxes {
    /// The box's label: the tag's label for the class, else the class name itself, as the
    /// official backend writes it.
    pub fn label_for<'a>(&'a self, class_name: &'a str) -> &'a str {
        label_for(&self.labels, class_name).unwrap_or(class_name)
    }
}

/// One keypoint of an instance, as the labels of a `KeyPointLabels` tag are matched to it.
#[derive(Debug, Clone, Copy)]
pub struct KeypointRef<'a> {
    pub class_name: &'a str,
    pub index: usize,
    /// Its name in the model's `kpt_names`, when it has them.
    pub name: Option<&'a str>,
    /// Whether the model has a single class (then `model_index` alone names a keypoint).
    pub one_class: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub kind: ControlKind,
    pub name: String,
    pub to_name: String,
    pub labels: Vec<LabelDef>,
    /// `model_score_threshold` (or `score_threshold`): overrides the default minimum score.
    pub score_threshold: Option<f32>,
    /// `model_path`: the model file (in ML_MODELS_DIR) that fills this tag, instead of the
    /// project's model.
    pub model_path: Option<String>,
    /// `model_skip="true"`: the tag is for people only.
    pub skip: bool,
    /// `choice="multiple"` on `<Choices>` (or `<Taxonomy>`, as the official backend reads it):
    /// every class above the threshold, not just the best.
    pub multiple: bool,
    /// `model_obb="true"` on `RectangleLabels`: the boxes are oriented (train an OBB model).
    pub obb: bool,
    /// For `KeyPointLabels`.
    pub keypoints: KeypointOptions,
}

impl Control {
    /// The label for a model class: exact value, then `predicted_values`, then ignoring case.
    pub fn label_for(&self, class_name: &str) -> Option<&str> {
        label_for(&self.labels, class_name)
    }

    /// The taxonomy path of a model class: that of the label [`Control::label_for`] picks, so
    /// that a value found twice in the tree (`Other` under two branches) goes where that
    /// class's `predicted_values` put it.
    pub fn path_for(&self, class_name: &str) -> Option<&[String]> {
        label_def_for(&self.labels, class_name).map(|l| l.path.as_slice())
    }

    /// The taxonomy path of a stored label (as [`Control::label_for`] returns it); of the first
    /// in the tree when the value is there twice, so prefer [`Control::path_for`] with the class.
    pub fn path_of(&self, label: &str) -> Option<&[String]> {
        self.labels.iter().find(|l| l.value == label).map(|l| l.path.as_slice())
    }

    /// The `KeyPointLabels` label of one keypoint, as the official backend maps them:
    /// `model_index` with the class in `predicted_values` (`<Label value="left_eye"
    /// predicted_values="person" model_index="1"/>`); `model_index` alone for a one-class model;
    /// without `model_index`, the label whose value is the keypoint's name in `kpt_names`.
    pub fn keypoint_label(&self, k: KeypointRef<'_>) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| {
                let for_class = l.predicted_values.iter().any(|p| p == k.class_name);
                match l.model_index {
                    Some(index) => index == k.index && (for_class || (l.predicted_values.is_empty() && k.one_class)),
                    None => k.name == Some(l.name.as_str()) && (for_class || l.predicted_values.is_empty()),
                }
            })
            .map(|l| l.value.as_str())
    }
}

fn label_for<'a>(labels: &'a [LabelDef], class_name: &str) -> Option<&'a str> {
    label_def_for(labels, class_name).map(|l| l.value.as_str())
}

fn label_def_for<'a>(labels: &'a [LabelDef], class_name: &str) -> Option<&'a LabelDef> {
    labels
        .iter()
        .find(|l| l.name == class_name)
        .or_else(|| {
            labels
                .iter()
                .find(|l| l.predicted_values.iter().any(|p| p == class_name))
        })
        .or_else(|| labels.iter().find(|l| l.name.eq_ignore_ascii_case(class_name)))
}

/// A `<VideoRectangle>` on a `<Video>`: tracks of boxes. It holds no labels itself; they come
/// from a `<Labels>` tag on the same video, as in Label Studio's own YOLO backend.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoControl {
    pub name: String,
    pub to_name: String,
    /// The `<Labels>` tag on the same video whose labels the tracks get (its name).
    pub labels_from: Option<String>,
    pub labels: Vec<LabelDef>,
    /// `model_path`: the model file that fills this tag, instead of the project's model.
    pub model_path: Option<String>,
    /// Every `model_*`, `bytetrack_*` and `botsort_*` attribute (tracker and thresholds), as
    /// written, for the host to read and check.
    pub attributes: Vec<(String, String)>,
}

impl VideoControl {
    /// The label for a model class, as for image tags.
    pub fn label_for(&self, class_name: &str) -> Option<&str> {
        label_for(&self.labels, class_name)
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
    }
}

/// A `<Video name="video" value="$video"/>` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTag {
    pub name: String,
    /// The data key, without the `$`.
    pub value_key: String,
    /// `frameRate`: what Label Studio's player assumes (it reads no frame rate from the file).
    pub framerate: Option<FrameRate>,
}

/// A `<Video frameRate>`: a number, or `$key` for a number in each task's data.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameRate {
    Fixed(f64),
    FromData(String),
}

impl FrameRate {
    fn parse(text: &str) -> Option<FrameRate> {
        let text = text.trim();
        match text.strip_prefix('$') {
            Some(key) => Some(FrameRate::FromData(key.to_string())),
            None => text
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(FrameRate::Fixed),
        }
    }

    /// The rate for one task (`$key` looked up in its data, as a number or a numeric string).
    pub fn resolve(&self, data: &serde_json::Map<String, serde_json::Value>) -> Option<f64> {
        match self {
            FrameRate::Fixed(rate) => Some(*rate),
            FrameRate::FromData(key) => {
                let value = data.get(key)?;
                value
                    .as_f64()
                    .or_else(|| value.as_str()?.trim().parse().ok())
                    .filter(|r: &f64| r.is_finite() && *r > 0.0)
            }
        }
    }
}

/// An `<Image name="image" value="$image"/>` tag: where to find the image in `task.data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTag {
    pub name: String,
    /// The data key, without the `$`.
    pub value_key: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelConfig {
    pub controls: Vec<Control>,
    pub images: Vec<ImageTag>,
    pub videos: Vec<VideoTag>,
    /// `<VideoRectangle>` tags on a `<Video>`, without `model_skip`.
    pub video_controls: Vec<VideoControl>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the label config is not valid XML: {0}")]
pub struct ConfigError(String);

impl LabelConfig {
    pub fn parse(xml: &str) -> Result<Self, ConfigError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| ConfigError(e.to_string()))?;
        let mut config = LabelConfig::default();
        let mut label_tags: Vec<(String, String, Vec<LabelDef>)> = Vec::new();
        for node in doc.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name();
            if tag.eq_ignore_ascii_case("video") {
                if let (Some(name), Some(value)) = (node.attribute("name"), node.attribute("value")) {
                    config.videos.push(VideoTag {
                        name: name.to_string(),
                        value_key: value.trim().trim_start_matches('$').to_string(),
                        // Label Studio documents `frameRate`; attribute names are matched ignoring case.
                        framerate: node
                            .attributes()
                            .find(|a| a.name().eq_ignore_ascii_case("framerate"))
                            .and_then(|a| FrameRate::parse(a.value())),
                    });
                }
                continue;
            }
            if tag.eq_ignore_ascii_case("labels") {
                if let (Some(name), Some(to_name)) = (node.attribute("name"), node.attribute("toName")) {
                    label_tags.push((name.to_string(), first_name(to_name), label_defs(node, "label")));
                }
                continue;
            }
            if tag.eq_ignore_ascii_case("videorectangle") {
                if let (Some(name), Some(to_name)) = (node.attribute("name"), node.attribute("toName"))
                    && !is_true(node.attribute("model_skip"))
                {
                    config.video_controls.push(VideoControl {
                        name: name.to_string(),
                        to_name: first_name(to_name),
                        labels_from: None,
                        labels: Vec::new(),
                        model_path: non_empty(node.attribute("model_path")),
                        attributes: node
                            .attributes()
                            .filter(|a| {
                                let n = a.name();
                                n.starts_with("model_") || n.starts_with("bytetrack_") || n.starts_with("botsort_")
                            })
                            .map(|a| (a.name().to_string(), a.value().to_string()))
                            .collect(),
                    });
                }
                continue;
            }
            if tag.eq_ignore_ascii_case("image") {
                if let (Some(name), Some(value)) = (node.attribute("name"), node.attribute("value")) {
                    config.images.push(ImageTag {
                        name: name.to_string(),
                        value_key: value.trim().trim_start_matches('$').to_string(),
                    });
                }
                continue;
            }
            let Some(kind) = ControlKind::from_tag(tag) else {
                continue;
            };
            let (Some(name), Some(to_name)) = (node.attribute("name"), node.attribute("toName")) else {
                continue;
            };
            let label_tag = if matches!(kind, ControlKind::Choices | ControlKind::Taxonomy) {
                "choice"
            } else {
                "label"
            };
            let labels = label_defs(node, label_tag);
            config.controls.push(Control {
                kind,
                name: name.to_string(),
                to_name: first_name(to_name),
                labels,
                score_threshold: node
                    .attribute("model_score_threshold")
                    .or(node.attribute("score_threshold"))
                    .and_then(|v| v.trim().parse().ok()),
                model_path: non_empty(node.attribute("model_path")),
                skip: is_true(node.attribute("model_skip")),
                multiple: node.attribute("choice").is_some_and(|c| c.trim() == "multiple"),
                obb: is_true(node.attribute("model_obb")),
                keypoints: keypoint_options(node),
            });
        }
        // The parent boxes of a KeyPointLabels tag go to its `<name>_bbox` RectangleLabels,
        // through the keypoints and only there: filled on its own as well, every box would
        // come twice.
        let parents: Vec<(usize, ParentBoxes)> = config
            .controls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == ControlKind::KeyPointLabels && c.keypoints.add_bboxes && !c.skip)
            .filter_map(|(i, kp)| {
                let name = format!("{}_bbox", kp.name);
                let boxes = config
                    .controls
                    .iter()
                    .find(|c| c.kind == ControlKind::RectangleLabels && c.name == name)?;
                Some((
                    i,
                    ParentBoxes {
                        name,
                        labels: boxes.labels.clone(),
                    },
                ))
            })
            .collect();
        for (i, parent) in parents {
            if let Some(boxes) = config.controls.iter_mut().find(|c| c.name == parent.name) {
                boxes.skip = true;
            }
            config.controls[i].keypoints.parent = Some(parent);
        }
        // A VideoRectangle takes its labels from the first Labels tag on the same video.
        for control in &mut config.video_controls {
            if let Some((name, _, labels)) = label_tags.iter().find(|(_, to, _)| *to == control.to_name) {
                control.labels_from = Some(name.clone());
                control.labels = labels.clone();
            }
        }
        config
            .video_controls
            .retain(|c| config.videos.iter().any(|v| v.name == c.to_name));
        Ok(config)
    }

    pub fn video(&self, name: &str) -> Option<&VideoTag> {
        self.videos.iter().find(|v| v.name == name)
    }

    /// The control tags a model should fill: those on an `<Image>`, without `model_skip`.
    pub fn active_controls(&self) -> impl Iterator<Item = &Control> {
        self.controls
            .iter()
            .filter(|c| !c.skip && self.image(&c.to_name).is_some())
    }

    pub fn image(&self, name: &str) -> Option<&ImageTag> {
        self.images.iter().find(|i| i.name == name)
    }
}

/// The first of a comma-separated `toName`.
fn first_name(to_name: &str) -> String {
    to_name.split(',').next().unwrap_or(to_name).trim().to_string()
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|p| !p.is_empty()).map(str::to_string)
}

fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn keypoint_options(node: roxmltree::Node<'_, '_>) -> KeypointOptions {
    let defaults = KeypointOptions::default();
    KeypointOptions {
        add_bboxes: node
            .attribute("model_add_bboxes")
            .map_or(defaults.add_bboxes, |v| is_true(Some(v))),
        point_size: node
            .attribute("model_point_size")
            .and_then(|v| v.trim().parse().ok())
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .unwrap_or(defaults.point_size),
        point_threshold: node
            .attribute("model_point_threshold")
            .and_then(|v| v.trim().parse().ok())
            .filter(|v: &f32| v.is_finite())
            .unwrap_or(defaults.point_threshold),
        parent: None,
    }
}

/// What Label Studio stores as a label: the alias, when there is one.
fn stored<'a>(n: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    n.attribute("alias").or(n.attribute("value"))
}

fn label_defs(node: roxmltree::Node<'_, '_>, label_tag: &str) -> Vec<LabelDef> {
    let is_label = |n: &roxmltree::Node<'_, '_>| n.is_element() && n.tag_name().name().eq_ignore_ascii_case(label_tag);
    node.descendants()
        .filter(is_label)
        .filter_map(|n| {
            // Label Studio's taxonomy path: the stored values from the root down to the label
            // itself (`ancestors` starts at the node). Under a `<Choice>` without a value there
            // is no path Label Studio could store, so no label either.
            let mut path: Vec<String> = n
                .ancestors()
                .take_while(|a| *a != node)
                .filter(is_label)
                .map(|a| stored(a).map(str::to_string))
                .collect::<Option<_>>()?;
            path.reverse();
            Some(LabelDef {
                value: stored(n)?.to_string(),
                path,
                name: n.attribute("value")?.to_string(),
                predicted_values: n
                    .attribute("predicted_values")
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                model_index: n.attribute("model_index").and_then(|v| v.trim().parse().ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<View>
  <Image name="image" value="$picture" zoom="true"/>
  <RectangleLabels name="label" toName="image" model_score_threshold="0.4">
    <Label value="Circle" background="red"/>
    <Label value="Box" predicted_values="square,rectangle"/>
  </RectangleLabels>
  <Choices name="kind" toName="image"><Choice value="Shapes"/></Choices>
</View>"#;

    #[test]
    fn parses_controls_labels_and_images() {
        let config = LabelConfig::parse(CONFIG).expect("parse");
        assert_eq!(
            config.images,
            vec![ImageTag {
                name: "image".into(),
                value_key: "picture".into()
            }]
        );
        assert_eq!(config.controls.len(), 2);
        let rect = &config.controls[0];
        assert_eq!(rect.kind, ControlKind::RectangleLabels);
        assert_eq!((rect.name.as_str(), rect.to_name.as_str()), ("label", "image"));
        assert_eq!(rect.score_threshold, Some(0.4));
        assert_eq!(rect.labels[1].predicted_values, vec!["square", "rectangle"]);
        assert_eq!(config.controls[1].labels[0].value, "Shapes");
    }

    #[test]
    fn maps_class_names_to_labels() {
        let config = LabelConfig::parse(CONFIG).expect("parse");
        let rect = &config.controls[0];
        assert_eq!(rect.label_for("Circle"), Some("Circle"));
        assert_eq!(rect.label_for("square"), Some("Box"));
        assert_eq!(rect.label_for("circle"), Some("Circle"));
        assert_eq!(rect.label_for("triangle"), None);
    }

    #[test]
    fn exact_match_beats_predicted_values_and_case() {
        let config = LabelConfig::parse(
            r#"<View><Image name="i" value="$i"/><RectangleLabels name="l" toName="i">
               <Label value="cat" predicted_values="Cat"/><Label value="Cat"/></RectangleLabels></View>"#,
        )
        .expect("parse");
        assert_eq!(config.controls[0].label_for("Cat"), Some("Cat"));
        assert_eq!(config.controls[0].label_for("cat"), Some("cat"));
    }

    #[test]
    fn model_attributes_and_several_controls() {
        let config = LabelConfig::parse(
            r#"<View>
              <Image name="img" value="$photo"/>
              <Text name="caption" value="$text"/>
              <RectangleLabels name="boxes" toName="img" model_path="det.onnx" score_threshold="0.6">
                <Label value="Circle" alias="circle-alias"/>
              </RectangleLabels>
              <View><PolygonLabels name="outlines" toName="img"><Label value="Circle"/></PolygonLabels></View>
              <BrushLabels name="masks" toName="img" model_skip="true"><Label value="Circle"/></BrushLabels>
              <KeyPointLabels name="points" toName="img"><Label value="Circle"/></KeyPointLabels>
              <Choices name="on_text" toName="caption"><Choice value="x"/></Choices>
            </View>"#,
        )
        .expect("parse");
        assert_eq!(config.controls.len(), 5);
        let boxes = &config.controls[0];
        assert_eq!(boxes.model_path.as_deref(), Some("det.onnx"));
        assert_eq!(boxes.score_threshold, Some(0.6));
        assert_eq!(boxes.labels[0].value, "circle-alias");
        assert_eq!(boxes.label_for("Circle"), Some("circle-alias"));
        assert!(config.controls[2].skip);
        let active: Vec<&str> = config.active_controls().map(|c| c.name.as_str()).collect();
        // The skipped tag and the tag on a text object are left out.
        assert_eq!(active, vec!["boxes", "outlines", "points"]);
        assert_eq!(config.image("img").map(|i| i.value_key.as_str()), Some("photo"));
    }

    #[test]
    fn video_rectangle_takes_the_labels_of_its_video() {
        let config = LabelConfig::parse(
            r#"<View>
              <Image name="img" value="$image"/>
              <Labels name="img_labels" toName="img"><Label value="Wrong"/></Labels>
              <Video name="video" value="$video" framerate="25"/>
              <VideoRectangle name="box" toName="video" model_tracker="bytetrack" model_conf="0.3"
                              bytetrack_track_buffer="60" hotkey="b"/>
              <Labels name="videoLabels" toName="video">
                <Label value="Ball" predicted_values="circle"/><Label value="square"/>
              </Labels>
              <VideoRectangle name="skipped" toName="video" model_skip="true"/>
              <VideoRectangle name="on_nothing" toName="missing"/>
            </View>"#,
        )
        .expect("parse");
        assert_eq!(config.video_controls.len(), 1, "skipped and dangling tags are left out");
        let video = &config.video_controls[0];
        assert_eq!((video.name.as_str(), video.to_name.as_str()), ("box", "video"));
        assert_eq!(video.labels_from.as_deref(), Some("videoLabels"));
        assert_eq!(video.label_for("circle"), Some("Ball"));
        assert_eq!(video.label_for("Square"), Some("square"));
        assert_eq!(video.attribute("model_tracker"), Some("bytetrack"));
        assert_eq!(video.attribute("bytetrack_track_buffer"), Some("60"));
        assert_eq!(
            video.attribute("hotkey"),
            None,
            "only model and tracker attributes are kept"
        );
        let tag = config.video("video").expect("video tag");
        assert_eq!(
            (tag.value_key.as_str(), tag.framerate.clone()),
            ("video", Some(FrameRate::Fixed(25.0)))
        );
        let from_data = LabelConfig::parse(r#"<View><Video name="v" value="$video" frameRate="$fps"/></View>"#)
            .expect("parse")
            .videos[0]
            .framerate
            .clone()
            .expect("frame rate");
        let data = |v: serde_json::Value| v.as_object().cloned().expect("object");
        assert_eq!(
            from_data.resolve(&data(serde_json::json!({"fps": "29.97"}))),
            Some(29.97)
        );
        assert_eq!(from_data.resolve(&data(serde_json::json!({"fps": 25}))), Some(25.0));
        assert_eq!(from_data.resolve(&data(serde_json::json!({}))), None);
        assert_eq!(config.active_controls().count(), 0, "Labels are not image tags");
    }

    const POSE: &str = r#"<View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="kp_bbox" toName="image" model_skip="true"><Label value="Square" predicted_values="square"/></RectangleLabels>
      <KeyPointLabels name="kp" toName="image" model_point_size="3" model_point_threshold="0.5">
        <Label value="sq-tl" predicted_values="square" model_index="0"/>
        <Label value="sq-tr" predicted_values="square" model_index="1"/>
        <Label value="apex" predicted_values="triangle" model_index="0"/>
        <Label value="nose"/>
      </KeyPointLabels>
    </View>"#;

    #[test]
    fn keypoint_labels_map_by_class_and_index_then_by_name() {
        let config = LabelConfig::parse(POSE).expect("parse");
        let kp = config.controls.iter().find(|c| c.name == "kp").expect("kp");
        assert_eq!(kp.keypoints.point_size, 3.0);
        assert_eq!(kp.keypoints.point_threshold, 0.5);
        assert!(kp.keypoints.add_bboxes);
        let parent = kp.keypoints.parent.as_ref().expect("the _bbox tag is the parent");
        assert_eq!(parent.label_for("square"), "Square");
        assert_eq!(
            parent.label_for("triangle"),
            "triangle",
            "the class name without a label"
        );
        let point = |class_name, index, name, one_class| KeypointRef {
            class_name,
            index,
            name,
            one_class,
        };
        assert_eq!(kp.keypoint_label(point("square", 1, None, false)), Some("sq-tr"));
        assert_eq!(kp.keypoint_label(point("triangle", 0, None, false)), Some("apex"));
        assert_eq!(kp.keypoint_label(point("triangle", 1, None, false)), None);
        assert_eq!(
            kp.keypoint_label(point("person", 0, Some("nose"), false)),
            Some("nose"),
            "kpt_names"
        );
        let one_class = LabelConfig::parse(
            r#"<View><Image name="i" value="$i"/><KeyPointLabels name="k" toName="i" model_add_bboxes="false">
               <Label value="a" model_index="0"/><Label value="b" model_index="1"/></KeyPointLabels></View>"#,
        )
        .expect("parse");
        let k = &one_class.controls[0];
        assert!(!k.keypoints.add_bboxes && k.keypoints.parent.is_none());
        assert_eq!(k.keypoint_label(point("anything", 1, None, true)), Some("b"));
        assert_eq!(
            k.keypoint_label(point("anything", 1, None, false)),
            None,
            "two classes need predicted_values"
        );
    }

    #[test]
    fn the_bbox_tag_of_keypoints_is_filled_only_through_them() {
        let unskipped = POSE.replace(r#" model_skip="true""#, "");
        let config = LabelConfig::parse(&unskipped).expect("parse");
        let active: Vec<&str> = config.active_controls().map(|c| c.name.as_str()).collect();
        assert_eq!(active, vec!["kp"]);
    }

    /// The official backend's first keypoint test config (test_keypoint_labels.py): boxes are
    /// added, yet there is no `keypoints_bbox` tag to put them in.
    const OFFICIAL_KEYPOINTS: &str = r#"<View>
      <KeyPointLabels name="keypoints" toName="image"
        model_score_threshold="0.85" model_point_threshold="0.95" model_add_bboxes="true" model_point_size="1"
      >
        <Label value="nose" predicted_values="person" model_index="0" background="red" />
        <Label value="left_eye" predicted_values="person" model_index="1" background="yellow" />
        <Label value="right_eye" predicted_values="person" model_index="2" background="yellow" />
        <Label value="left_ear" predicted_values="person" model_index="3" background="purple" />
        <Label value="right_ear" predicted_values="person" model_index="4" background="purple" />
        <View>
        <Label value="left_shoulder" predicted_values="person" model_index="5" background="green" />
        <Label value="left_elbow" predicted_values="person" model_index="7" background="green" />
        <Label value="left_wrist" predicted_values="person" model_index="9" background="green" />
        <Label value="right_shoulder" predicted_values="person" model_index="6" background="blue" />
        <Label value="right_elbow" predicted_values="person" model_index="8" background="blue" />
        <Label value="right_wrist" predicted_values="person" model_index="10" background="blue" />
        </View>
        <View>
        <Label value="left_hip" predicted_values="person" model_index="11" background="brown" />
        <Label value="left_knee" predicted_values="person" model_index="13" background="brown" />
        <Label value="left_ankle" predicted_values="person" model_index="15" background="brown" />
        <Label value="right_hip" predicted_values="person" model_index="12" background="orange" />
        <Label value="right_knee" predicted_values="person" model_index="14" background="orange" />
        <Label value="right_ankle" predicted_values="person" model_index="16" background="orange" />
        </View>
        <Label value="right_ankle" predicted_values="just_to_test_warning" model_index="0" background="orange" />
      </KeyPointLabels>
      <Image name="image" value="$image" />
    </View>"#;

    #[test]
    fn keypoints_without_their_bbox_tag_come_without_a_parent() {
        let config = LabelConfig::parse(OFFICIAL_KEYPOINTS).expect("parse");
        let active: Vec<&Control> = config.active_controls().collect();
        assert_eq!(active.len(), 1, "{active:?}");
        let kp = active[0];
        assert_eq!((kp.kind, kp.name.as_str()), (ControlKind::KeyPointLabels, "keypoints"));
        assert!(kp.keypoints.add_bboxes, "model_add_bboxes is read as written");
        assert_eq!(kp.keypoints.parent, None, "no keypoints_bbox tag, so no parent boxes");
        assert_eq!((kp.score_threshold, kp.keypoints.point_threshold), (Some(0.85), 0.95));
        assert_eq!(kp.labels.len(), 18, "labels nested in <View>s count too");
        let point = |class_name, index| KeypointRef {
            class_name,
            index,
            name: None,
            one_class: false,
        };
        assert_eq!(kp.keypoint_label(point("person", 5)), Some("left_shoulder"));
        assert_eq!(kp.keypoint_label(point("person", 16)), Some("right_ankle"));
        assert_eq!(kp.keypoint_label(point("just_to_test_warning", 0)), Some("right_ankle"));
        assert_eq!(kp.keypoint_label(point("person", 17)), None);
    }

    #[test]
    fn keypoints_with_their_bbox_tag_keep_it_as_the_parent() {
        let with_boxes = OFFICIAL_KEYPOINTS.replace(
            r#"<Image name="image""#,
            r#"<RectangleLabels name="keypoints_bbox" toName="image"><Label value="Person" predicted_values="person"/></RectangleLabels>
               <Image name="image""#,
        );
        let config = LabelConfig::parse(&with_boxes).expect("parse");
        let active: Vec<&str> = config.active_controls().map(|c| c.name.as_str()).collect();
        assert_eq!(
            active,
            vec!["keypoints"],
            "the parent tag is filled through the keypoints only"
        );
        let kp = &config.controls[0];
        let parent = kp.keypoints.parent.as_ref().expect("keypoints_bbox is the parent");
        assert_eq!(parent.name, "keypoints_bbox");
        assert_eq!(parent.label_for("person"), "Person");
        let boxes = config
            .controls
            .iter()
            .find(|c| c.name == "keypoints_bbox")
            .expect("box tag");
        assert!(boxes.skip);
        let no_boxes = with_boxes.replace(r#"model_add_bboxes="true""#, r#"model_add_bboxes="false""#);
        let config = LabelConfig::parse(&no_boxes).expect("parse");
        assert_eq!(config.controls[0].keypoints.parent, None, "boxes are not added");
        let active: Vec<&str> = config.active_controls().map(|c| c.name.as_str()).collect();
        assert_eq!(
            active,
            vec!["keypoints", "keypoints_bbox"],
            "then the box tag is an ordinary one"
        );
    }

    const TAXONOMY: &str = r#"<View>
      <Image name="image" value="$image"/>
      <Taxonomy name="kind" toName="image" model_score_threshold="0.3">
        <Choice value="Animal">
          <Choice value="Cat" predicted_values="kitten,tabby"/>
          <View><Choice value="Dog"/></View>
          <Choice value="Other" predicted_values="animal_misc"/>
        </Choice>
        <Choice value="Plant" alias="plant">
          <Choice value="Tree" alias="tree">
            <Choice value="Oak"/>
          </Choice>
          <Choice value="Other" predicted_values="plant_misc"/>
        </Choice>
        <Choice>
          <Choice value="Lost"/>
        </Choice>
      </Taxonomy>
      <Text name="text" value="$text"/>
      <Taxonomy name="on_text" toName="text"><Choice value="A"/></Taxonomy>
    </View>"#;

    #[test]
    fn a_taxonomy_takes_every_choice_of_its_tree_with_its_path() {
        let config = LabelConfig::parse(TAXONOMY).expect("parse");
        let active: Vec<&Control> = config.active_controls().collect();
        assert_eq!(active.len(), 1, "the taxonomy on a text tag is left out: {active:?}");
        let tax = active[0];
        assert_eq!((tax.kind, tax.kind.result_type()), (ControlKind::Taxonomy, "taxonomy"));
        assert_eq!(tax.score_threshold, Some(0.3));
        assert!(!tax.multiple);
        let values: Vec<&str> = tax.labels.iter().map(|l| l.value.as_str()).collect();
        assert_eq!(
            values,
            vec!["Animal", "Cat", "Dog", "Other", "plant", "tree", "Oak", "Other"],
            "every depth, in the tree's order; a choice without a value is left out with its children"
        );
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(tax.path_of("Cat"), Some(path(&["Animal", "Cat"]).as_slice()));
        assert_eq!(
            tax.path_of("Dog"),
            Some(path(&["Animal", "Dog"]).as_slice()),
            "a <View> is no level"
        );
        assert_eq!(
            tax.path_of("Animal"),
            Some(path(&["Animal"]).as_slice()),
            "an inner node alone"
        );
        assert_eq!(
            tax.path_of("Oak"),
            Some(path(&["plant", "tree", "Oak"]).as_slice()),
            "aliases, as Label Studio stores them"
        );
        assert_eq!(tax.path_of("Lost"), None);
        assert_eq!(
            tax.path_of("Other"),
            Some(path(&["Animal", "Other"]).as_slice()),
            "the first"
        );
        assert_eq!(tax.label_for("tabby"), Some("Cat"));
        assert_eq!(tax.path_for("tabby"), Some(path(&["Animal", "Cat"]).as_slice()));
        assert_eq!(tax.label_for("Tree"), Some("tree"));
        assert_eq!(tax.path_for("Tree"), Some(path(&["plant", "tree"]).as_slice()));
        assert_eq!(
            tax.path_for("plant_misc"),
            Some(path(&["plant", "Other"]).as_slice()),
            "predicted_values pick which Other"
        );
        assert_eq!(
            tax.path_for("oak"),
            Some(path(&["plant", "tree", "Oak"]).as_slice()),
            "case"
        );
        assert_eq!(tax.path_for("fish"), None);
    }

    #[test]
    fn labels_outside_a_taxonomy_are_their_own_path() {
        let config = LabelConfig::parse(CONFIG).expect("parse");
        assert_eq!(config.controls[0].path_for("square"), Some(&["Box".to_string()][..]));
        assert_eq!(config.controls[1].path_of("Shapes"), Some(&["Shapes".to_string()][..]));
        let multiple = TAXONOMY.replace(r#"model_score_threshold="0.3""#, r#"choice="multiple""#);
        assert!(LabelConfig::parse(&multiple).expect("parse").controls[0].multiple);
    }

    #[test]
    fn bad_xml_is_an_error() {
        assert!(LabelConfig::parse("<View><Image></View>").is_err());
    }
}
