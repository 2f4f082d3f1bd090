//! What the adapters read from a model: its task, input size and class count.

use plugin_api::{ModelInfo, PluginError, TensorInfo};

/// The model's image input, with the size to letterbox to.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// Ultralytics' default export size, for a dynamic model without `imgsz` metadata.
const DEFAULT_SIZE: u32 = 640;

/// Finds the `[batch, 3, h, w]` input. Fixed spatial dims win; dynamic ones come from the
/// `imgsz` metadata (`[h, w]`, or one number for a square), else 640.
pub fn image_input(model: &ModelInfo) -> Result<ImageInput, PluginError> {
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
    let (meta_h, meta_w) = model
        .metadata("imgsz")
        .and_then(parse_imgsz)
        .unwrap_or((DEFAULT_SIZE, DEFAULT_SIZE));
    let dim = |d: i64, fallback: u32| if d > 0 { d as u32 } else { fallback };
    Ok(ImageInput {
        name: input.name.to_string(),
        height: dim(shape[2], meta_h),
        width: dim(shape[3], meta_w),
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

/// The output named `name`, else the one at `index`.
pub fn output<'m>(model: &'m ModelInfo, name: &str, index: usize) -> Option<&'m TensorInfo> {
    model.output(name).or_else(|| model.outputs.get(index))
}

/// Number of class names in Ultralytics' `names` metadata (`{0: 'a', 1: 'b'}`), counted by
/// its keys; the host parses the names themselves.
pub fn class_count_from_names(model: &ModelInfo) -> Option<usize> {
    let names = model.metadata("names")?;
    let inner = names.trim().strip_prefix('{')?.strip_suffix('}')?;
    let count = inner
        .split(',')
        .filter(|item| {
            item.split_once(':')
                .is_some_and(|(k, _)| k.trim().parse::<u32>().is_ok())
        })
        .count();
    (count > 0).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ElementType, MetadataEntry};

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
        let input = image_input(&m).expect("input");
        assert_eq!((input.width, input.height), (320, 256));
    }

    #[test]
    fn dynamic_input_size_comes_from_imgsz_as_h_w() {
        let m = model(vec![-1, 3, -1, -1], &[("imgsz", "[320, 416]")]);
        let input = image_input(&m).expect("input");
        assert_eq!((input.width, input.height), (416, 320));
        let m = model(vec![-1, 3, -1, -1], &[]);
        assert_eq!(image_input(&m).expect("input").width, 640);
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
    fn non_image_inputs_are_unsupported() {
        assert!(image_input(&model(vec![1, 10], &[])).is_err());
        assert!(image_input(&model(vec![1, 1, 28, 28], &[])).is_err());
    }

    #[test]
    fn counts_names() {
        let m = model(
            vec![1, 3, 320, 320],
            &[("names", "{0: 'circle', 1: 'square', 2: 'triangle'}")],
        );
        assert_eq!(class_count_from_names(&m), Some(3));
    }
}
