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
}

impl ControlKind {
    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag.to_ascii_lowercase().as_str() {
            "rectanglelabels" => Self::RectangleLabels,
            "polygonlabels" => Self::PolygonLabels,
            "brushlabels" => Self::BrushLabels,
            "keypointlabels" => Self::KeyPointLabels,
            "choices" => Self::Choices,
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
    /// `choice="multiple"` on `<Choices>`: every class above the threshold, not just the best.
    pub multiple: bool,
}

impl Control {
    /// The label for a model class: exact value, then `predicted_values`, then ignoring case.
    pub fn label_for(&self, class_name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == class_name)
            .or_else(|| {
                self.labels
                    .iter()
                    .find(|l| l.predicted_values.iter().any(|p| p == class_name))
            })
            .or_else(|| self.labels.iter().find(|l| l.name.eq_ignore_ascii_case(class_name)))
            .map(|l| l.value.as_str())
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
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the label config is not valid XML: {0}")]
pub struct ConfigError(String);

impl LabelConfig {
    pub fn parse(xml: &str) -> Result<Self, ConfigError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| ConfigError(e.to_string()))?;
        let mut config = LabelConfig::default();
        for node in doc.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name();
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
            let label_tag = if kind == ControlKind::Choices {
                "choice"
            } else {
                "label"
            };
            let labels = node
                .descendants()
                .filter(|n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case(label_tag))
                .filter_map(|n| {
                    Some(LabelDef {
                        // Label Studio stores the alias, when there is one, as the label.
                        value: n.attribute("alias").or(n.attribute("value"))?.to_string(),
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
                    })
                })
                .collect();
            config.controls.push(Control {
                kind,
                name: name.to_string(),
                to_name: to_name.split(',').next().unwrap_or(to_name).trim().to_string(),
                labels,
                score_threshold: node
                    .attribute("model_score_threshold")
                    .or(node.attribute("score_threshold"))
                    .and_then(|v| v.trim().parse().ok()),
                model_path: node
                    .attribute("model_path")
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
                skip: node
                    .attribute("model_skip")
                    .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")),
                multiple: node.attribute("choice").is_some_and(|c| c.trim() == "multiple"),
            });
        }
        Ok(config)
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
    fn bad_xml_is_an_error() {
        assert!(LabelConfig::parse("<View><Image></View>").is_err());
    }
}
