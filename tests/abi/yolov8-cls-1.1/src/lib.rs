//! The yolov8-cls plugin as it was released for plugin-api 1.1, frozen: the host's tests
//! build it against the frozen plugin-api 1.1 and check that it still reproduces
//! Ultralytics' classes through the host's 1.x shim. Only the resize, which knows nothing of
//! the plugin API, is shared with today's plugins (it lives in plugin-api's SDK now).
//!
//! Preprocessing is Ultralytics 8.4's `classify_transforms` as `predict()` applies it to a
//! PIL image: resize the shortest edge to the model's size with Pillow's bilinear filter
//! (antialiased), centre crop, scale to 0..1. The model's output is already a softmax; the
//! five best classes come back as `Class` regions, best first, for a `<Choices>` tag.

#[path = "../../../../plugin-api/src/sdk/resize.rs"]
mod resize;

use plugin_api::prelude::*;

pub use resize::resize_bilinear;

const EXPLICIT_MATCH: u32 = 100;
const SHAPE_MATCH: u32 = 5;
const TOP: usize = 5;

#[derive(Debug, Default)]
pub struct YoloV8Cls;

/// The model's `[batch, 3, h, w]` input, with its size (fixed dims, else `imgsz`, else 224).
fn input(model: &ModelInfo) -> Result<(String, usize, usize), PluginError> {
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
    let (meta_h, meta_w) = model.metadata("imgsz").and_then(parse_imgsz).unwrap_or((224, 224));
    let dim = |d: i64, fallback: usize| if d > 0 { d as usize } else { fallback };
    Ok((input.name.to_string(), dim(shape[3], meta_w), dim(shape[2], meta_h)))
}

/// Ultralytics' `imgsz` metadata: `[h, w]` or one number.
fn parse_imgsz(text: &str) -> Option<(usize, usize)> {
    let dims: Vec<usize> = text
        .trim()
        .trim_matches(['[', ']', '(', ')'])
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

/// One `[1, classes]` output.
fn looks_like_classifier(model: &ModelInfo) -> bool {
    model.outputs.len() == 1 && matches!(model.outputs[0].shape.as_slice(), [_, n] if *n > 1)
}

/// torchvision's `Resize(size)` for an int: the shortest edge becomes `size`, the other
/// keeps the aspect ratio, truncated.
fn shortest_edge(w: usize, h: usize, size: usize) -> (usize, usize) {
    if w <= h {
        (size, ((size as f64 * h as f64 / w as f64) as usize).max(1))
    } else {
        (((size as f64 * w as f64 / h as f64) as usize).max(1), size)
    }
}

/// torchvision's `CenterCrop` offset: Python's `round((in - out) / 2)`, ties to even.
fn crop_offset(len: usize, crop: usize) -> usize {
    (len.saturating_sub(crop) as f64 / 2.0).round_ties_even() as usize
}

impl Adapter for YoloV8Cls {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("yolov8-cls", env!("CARGO_PKG_VERSION"), &["classify"])
    }

    fn accepts(&self, model: &ModelInfo) -> u32 {
        if input(model).is_err() {
            return 0;
        }
        match model.metadata("task") {
            Some("classify") => EXPLICIT_MATCH,
            Some(_) => 0,
            None if looks_like_classifier(model) => SHAPE_MATCH,
            None => 0,
        }
    }

    fn explain(&self, model: &ModelInfo) -> String {
        if let Err(e) = input(model) {
            return e.message.to_string();
        }
        match model.metadata("task") {
            Some("classify") => String::new(),
            Some(other) => format!("the model's task is `{other}`; this adapter serves `classify`"),
            None if looks_like_classifier(model) => String::new(),
            None => "the model has no `task` metadata, and its output is not [1, classes]".to_string(),
        }
    }

    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, _params: &Params) -> Result<Prepared, PluginError> {
        let (name, in_w, in_h) = input(model)?;
        let (w, h) = (image.width as usize, image.height as usize);
        if w == 0 || h == 0 || image.pixels.len() != w * h * 3 {
            return Err(PluginError::invalid_input("the image is empty or not RGB"));
        }
        // A square model resizes the shortest edge; another shape resizes to it exactly.
        let (rw, rh) = if in_w == in_h {
            shortest_edge(w, h, in_w)
        } else {
            (in_w, in_h)
        };
        let resized = resize_bilinear(image.pixels.as_slice(), w, h, rw, rh);
        let (left, top) = (crop_offset(rw, in_w), crop_offset(rh, in_h));
        let plane = in_w * in_h;
        let mut data = vec![0f32; 3 * plane];
        for y in 0..in_h.min(rh) {
            for x in 0..in_w.min(rw) {
                let src = ((top + y) * rw + left + x) * 3;
                for c in 0..3 {
                    data[c * plane + y * in_w + x] = resized[src + c] as f32 / 255.0;
                }
            }
        }
        let tensor = Tensor::new(name, vec![1, 3, in_h as i64, in_w as i64], data);
        Ok(Prepared::new(vec![tensor], Context::empty()))
    }

    fn finish(
        &self,
        _model: &ModelInfo,
        outputs: &[TensorRef<'_>],
        _context: Context,
        _params: &Params,
    ) -> Result<Vec<Region>, PluginError> {
        let probs = outputs
            .iter()
            .find(|t| t.name() == "output0")
            .or_else(|| outputs.first())
            .ok_or_else(|| PluginError::invalid_input("the model returned no outputs"))?
            .data();
        let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i].is_finite()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        Ok(order
            .into_iter()
            .take(TOP)
            .map(|class| Region {
                class_id: class as u32,
                score: probs[class],
                geometry: Geometry::Class,
            })
            .collect())
    }
}

plugin_api::export_adapter!(YoloV8Cls::default);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_and_centre_crop_follow_torchvision() {
        assert_eq!(shortest_edge(640, 480, 96), (128, 96));
        assert_eq!(shortest_edge(360, 640, 96), (96, 170));
        assert_eq!(crop_offset(128, 96), 16);
        assert_eq!(crop_offset(97, 96), 0, "0.5 rounds to even");
        assert_eq!(crop_offset(99, 96), 2, "1.5 rounds to even");
    }

    #[test]
    fn imgsz_metadata() {
        assert_eq!(parse_imgsz("[96, 96]"), Some((96, 96)));
        assert_eq!(parse_imgsz("224"), Some((224, 224)));
        assert_eq!(parse_imgsz("[a]"), None);
    }
}
