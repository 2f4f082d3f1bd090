//! A minimal ls-ml-backend adapter: a whole-image classifier.
//!
//! It serves ONNX models whose metadata says `adapter = my-adapter` (add that key when you
//! export the model), with one input `[1, 3, height, width]` and one output `[1, classes]`.
//! The image is resized (nearest neighbour, no letterbox) and scaled to 0..1; the best class
//! becomes a `Class` region, which the host sends to a `<Choices>` tag. Replace each step
//! with what your model family needs.

use plugin_api::prelude::*;

const NAME: &str = "my-adapter";

#[derive(Default)]
pub struct MyAdapter;

/// What `prepare` hands to `finish` for one image: here nothing is needed, but a letterbox
/// plan or the original size would go here.
struct Nothing;

impl Adapter for MyAdapter {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new(NAME, env!("CARGO_PKG_VERSION"), &["classify"])
    }

    /// Explicit opt-in: other models are left to the other plugins.
    fn accepts(&self, model: &ModelInfo) -> u32 {
        match (model.metadata("adapter"), input_size(model)) {
            (Some(NAME), Some(_)) => 100,
            _ => 0,
        }
    }

    fn explain(&self, model: &ModelInfo) -> String {
        match (model.metadata("adapter"), input_size(model)) {
            (Some(NAME), None) => "the input is not [1, 3, height, width] with fixed sizes".into(),
            (Some(NAME), Some(_)) => String::new(),
            _ => format!("the model's metadata has no `adapter = {NAME}`"),
        }
    }

    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, _params: &Params) -> Result<Prepared, PluginError> {
        let (w, h) = input_size(model).ok_or_else(|| PluginError::unsupported("unexpected input shape"))?;
        let (sw, sh) = (image.width as usize, image.height as usize);
        let pixels = image.pixels.as_slice();
        let mut data = vec![0f32; 3 * w * h];
        for y in 0..h {
            let src_y = y * sh / h;
            for x in 0..w {
                let src = (src_y * sw + x * sw / w) * 3;
                for c in 0..3 {
                    data[c * w * h + y * w + x] = pixels[src + c] as f32 / 255.0;
                }
            }
        }
        let name = model.inputs[0].name.as_str();
        let tensor = Tensor::new(name, vec![1, 3, h as i64, w as i64], data);
        Ok(Prepared::new(vec![tensor], Context::new(Nothing)))
    }

    fn finish(
        &self,
        _model: &ModelInfo,
        outputs: &[TensorRef<'_>],
        context: Context,
        _params: &Params,
    ) -> Result<Vec<Region>, PluginError> {
        let Nothing = context.into_inner()?;
        let scores = outputs
            .first()
            .ok_or_else(|| PluginError::invalid_input("the model returned nothing"))?
            .data();
        let best = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1));
        Ok(best
            .map(|(class, score)| Region {
                class_id: class as u32,
                score: *score,
                geometry: Geometry::Class,
            })
            .into_iter()
            .collect())
    }
}

/// The fixed width and height of a `[1, 3, height, width]` input.
fn input_size(model: &ModelInfo) -> Option<(usize, usize)> {
    match model.inputs.first()?.shape.as_slice() {
        [_, 3, h, w] if *h > 0 && *w > 0 => Some((*w as usize, *h as usize)),
        _ => None,
    }
}

plugin_api::export_adapter!(MyAdapter::default);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        assert_eq!(MyAdapter.describe().name.as_str(), NAME);
    }
}
