//! A minimal ls-ml-backend adapter plugin: a whole-image classifier.
//!
//! It serves ONNX models whose metadata says `adapter = my-adapter` (add that key when you
//! export the model), with one f32 input `[1, 3, height, width]` and one output `[1, classes]`.
//! Each image is resized (nearest neighbour, no letterbox) and scaled to 0..1; the best
//! class goes to a `<Choices>` tag. Replace each step with what your model family needs.
//!
//! A plugin has two parts: the `Plugin` (one per library) says which models it serves and
//! opens an `Adapter` for each; the adapter keeps whatever it learned about its model and
//! does the work for every prediction.

use plugin_api::prelude::*;

const NAME: &str = "my-adapter";

#[derive(Default)]
pub struct MyPlugin;

impl Plugin for MyPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(NAME, env!("CARGO_PKG_VERSION"), &["classify"])
    }

    /// Explicit opt-in: other models are left to the other plugins. The reason for a "no"
    /// is shown in `GET /models`, for whoever dropped the model in.
    fn inspect(&self, model: &ModelInfo) -> Fit {
        match (model.metadata("adapter"), input_of(model)) {
            (Some(NAME), Ok(_)) => Fit::score(100),
            (Some(NAME), Err(e)) => Fit::no(e.message.to_string()),
            _ => Fit::no(format!("the model's metadata has no `adapter = {NAME}`")),
        }
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        let (name, width, height) = input_of(model)?;
        Ok(Box::new(MyAdapter { name, width, height }))
    }
}

/// What the adapter keeps about its model, read once in `open`.
pub struct MyAdapter {
    name: String,
    width: usize,
    height: usize,
}

/// What `prepare` hands to `finish` for one image: here nothing is needed, but a letterbox
/// plan or the original size would go here.
struct Nothing;

impl Adapter for MyAdapter {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        // Without the `batch` capability the host sends one frame at a time.
        let image = input
            .frames()
            .first()
            .ok_or_else(|| PluginError::invalid_input("no image"))?
            .image;
        if image.width == 0 || image.height == 0 {
            return Err(PluginError::invalid_input("the image is empty"));
        }
        let (w, h) = (self.width, self.height);
        let mut data = vec![0f32; 3 * w * h];
        for y in 0..h {
            let src_y = (y * image.height as usize / h) as u32;
            for x in 0..w {
                let src_x = (x * image.width as usize / w) as u32;
                // `pixel` checks the bounds: a short buffer is an error, never a crash.
                let rgb = image
                    .pixel(src_x, src_y)
                    .ok_or_else(|| PluginError::invalid_input("the image holds fewer pixels than its size says"))?;
                for (c, value) in rgb.iter().enumerate() {
                    data[c * w * h + y * w + x] = *value as f32 / 255.0;
                }
            }
        }
        let tensor = Tensor::from_values(&self.name, &[1, 3, h as i64, w as i64], &data)?;
        Ok(Prepared::new(vec![tensor], Context::new(Nothing)))
    }

    fn finish(&self, _input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let Nothing = context.into_inner()?;
        let scores = outputs
            .first()
            .ok_or_else(|| PluginError::invalid_input("the model returned nothing"))?
            .f32s()?;
        let best = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1));
        let classes = best
            .map(|(class, score)| ClassScore {
                class_id: class as u32,
                score: *score,
            })
            .into_iter()
            .collect();
        Ok(Step::Done(Output::one(FrameOutput::classes(classes))))
    }
}

/// The input's name and fixed width and height, if it is an f32 `[1, 3, height, width]`.
fn input_of(model: &ModelInfo) -> Result<(String, usize, usize), PluginError> {
    let input = model
        .inputs
        .first()
        .ok_or_else(|| PluginError::unsupported("the model has no inputs"))?;
    match input.shape.as_slice() {
        [_, 3, h, w] if *h > 0 && *w > 0 && input.element_type == ElementType::F32 => {
            Ok((input.name.to_string(), *w as usize, *h as usize))
        }
        _ => Err(PluginError::unsupported(
            "the input is not an f32 [1, 3, height, width] with fixed sizes",
        )),
    }
}

plugin_api::export_plugin!(MyPlugin::default);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        assert_eq!(MyPlugin.describe().name.as_str(), NAME);
    }

    #[test]
    fn a_short_pixel_buffer_is_an_error() {
        let adapter = MyAdapter {
            name: "images".into(),
            width: 4,
            height: 4,
        };
        let pixels = [0u8; 5];
        let frames = [Frame::still(ImageRef::new(2, 2, &pixels))];
        let options = Options::new();
        let input = Input::new(&frames, Params::default(), &options);
        assert!(adapter.prepare(&input).is_err());
    }
}
