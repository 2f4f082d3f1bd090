//! What adapters read from a model: its task, image input and size, outputs, class count.

use crate::{ElementType, ModelInfo, PluginError, TensorInfo, TensorRef};

/// The model's image input, with the size to resize or letterbox to.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// The batch axis is dynamic: several frames can run as one inference.
    pub dynamic_batch: bool,
}

/// Finds the first input, which must be an f32 `[batch, 3, h, w]`. Fixed spatial dims win;
/// dynamic ones come from the `imgsz` metadata (`[h, w]`, or one number for a square), else
/// `default_size`.
pub fn image_input(model: &ModelInfo, default_size: u32) -> Result<ImageInput, PluginError> {
    let input = model
        .inputs
        .first()
        .ok_or_else(|| PluginError::unsupported("the model has no inputs"))?;
    let shape = input.shape.as_slice();
    if shape.len() != 4 || !(shape[1] == 3 || shape[1] < 0) {
        return Err(PluginError::unsupported(format!(
            "input `{}` has shape {shape:?}; expected [batch, 3, height, width]",
            input.name
        )));
    }
    if input.element_type != ElementType::F32 {
        return Err(PluginError::unsupported(format!(
            "input `{}` takes {} values; this adapter feeds f32 (export the model without half precision)",
            input.name, input.element_type
        )));
    }
    let (meta_h, meta_w) = model
        .metadata("imgsz")
        .and_then(parse_imgsz)
        .unwrap_or((default_size, default_size));
    let dim = |d: i64, fallback: u32| if d > 0 { d as u32 } else { fallback };
    Ok(ImageInput {
        name: input.name.to_string(),
        height: dim(shape[2], meta_h),
        width: dim(shape[3], meta_w),
        dynamic_batch: shape[0] < 0,
    })
}

/// Parses Ultralytics' `imgsz` metadata, a Python list like `[320, 256]` (`[h, w]`) or a number.
pub fn parse_imgsz(text: &str) -> Option<(u32, u32)> {
    let inner = text.trim().trim_start_matches(['[', '(']).trim_end_matches([']', ')']);
    let dims: Vec<u32> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match dims.as_slice() {
        [s] if *s > 0 => Some((*s, *s)),
        [h, w] if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    }
}

/// The model's `task` metadata (`detect`, `segment`, ...), if it has one.
pub fn task(model: &ModelInfo) -> Option<&str> {
    model.metadata("task").map(str::trim)
}

/// The model output named `name`, else the one at `index`.
pub fn output_info<'m>(model: &'m ModelInfo, name: &str, index: usize) -> Option<&'m TensorInfo> {
    model.output(name).or_else(|| model.outputs.get(index))
}

/// The output tensor named `name`, else the one at `index` ("output0, else the first").
pub fn output<'o, 'a>(outputs: &'o [TensorRef<'a>], name: &str, index: usize) -> Option<&'o TensorRef<'a>> {
    outputs.iter().find(|t| t.name() == name).or_else(|| outputs.get(index))
}

/// The number of classes in the model's `names` metadata.
pub fn class_count(model: &ModelInfo) -> Option<usize> {
    crate::sdk::parse_names(model.metadata("names")?).map(|names| names.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataEntry;

    fn model(shape: Vec<i64>, meta: &[(&str, &str)]) -> ModelInfo {
        ModelInfo {
            inputs: vec![TensorInfo {
                name: "images".into(),
                element_type: ElementType::F32,
                shape: shape.into(),
            }]
            .into(),
            outputs: Default::default(),
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
    fn fixed_input_size_wins() {
        let m = model(vec![1, 3, 256, 320], &[("imgsz", "[640, 640]")]);
        let input = image_input(&m, 640).expect("input");
        assert_eq!((input.width, input.height, input.dynamic_batch), (320, 256, false));
    }

    #[test]
    fn dynamic_input_size_comes_from_imgsz_as_h_w() {
        let m = model(vec![-1, 3, -1, -1], &[("imgsz", "[320, 416]")]);
        let input = image_input(&m, 640).expect("input");
        assert_eq!((input.width, input.height, input.dynamic_batch), (416, 320, true));
        let m = model(vec![-1, 3, -1, -1], &[]);
        assert_eq!(image_input(&m, 224).expect("input").width, 224);
    }

    #[test]
    fn imgsz_forms() {
        assert_eq!(parse_imgsz("[320, 320]"), Some((320, 320)));
        assert_eq!(parse_imgsz("640"), Some((640, 640)));
        assert_eq!(parse_imgsz("(480, 640)"), Some((480, 640)));
        assert_eq!(parse_imgsz("[a, b]"), None);
        assert_eq!(parse_imgsz("[0, 320]"), None);
    }

    #[test]
    fn non_image_and_half_precision_inputs_are_unsupported() {
        assert!(image_input(&model(vec![1, 10], &[]), 640).is_err());
        assert!(image_input(&model(vec![1, 1, 28, 28], &[]), 640).is_err());
        let mut half = model(vec![1, 3, 320, 320], &[]);
        half.inputs[0].element_type = ElementType::F16;
        let err = image_input(&half, 640)
            .err()
            .map(|e| e.message.to_string())
            .unwrap_or_default();
        assert!(err.contains("f16"), "{err}");
    }

    #[test]
    fn counts_names_with_the_real_parser() {
        let m = model(
            vec![1, 3, 320, 320],
            &[("names", "{0: 'circle', 1: 'a, b', 2: 'triangle'}")],
        );
        assert_eq!(class_count(&m), Some(3), "a comma inside a name is not a separator");
    }

    #[test]
    fn output_lookup_prefers_the_name() {
        let (a, b) = ([0.0f32], [1.0f32]);
        let shape = [1i64];
        let outputs = [TensorRef::new("x", &shape, &a), TensorRef::new("output0", &shape, &b)];
        assert_eq!(output(&outputs, "output0", 0).map(|t| t.name()), Some("output0"));
        assert_eq!(output(&outputs, "missing", 0).map(|t| t.name()), Some("x"));
        assert!(output(&outputs, "missing", 5).is_none());
    }
}
