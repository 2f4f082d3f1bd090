//! A deliberately faulty adapter, for tests only (never shipped). It claims every model, with
//! a score above any real adapter, but only while `LS_ML_TEST_FAULT` is set in the server's
//! environment; the variable picks the fault:
//!
//! - `panic-open`, `panic-prepare`, `panic-finish`: panic in that call;
//! - `nan-boxes`: boxes with NaN and infinite coordinates;
//! - `too-many`: 1000 valid boxes, whatever max_det says;
//! - `bad-class`: class ids far beyond the model's classes.

use plugin_api::prelude::*;
use yolov8_common::{Letterbox, model::image_input};

#[derive(Default)]
struct FaultyPlugin;

struct Faulty {
    input: yolov8_common::model::ImageInput,
}

fn fault() -> Option<String> {
    std::env::var("LS_ML_TEST_FAULT").ok()
}

fn boxed(class_id: u32, x: f32) -> Instance {
    Instance::new(class_id, 0.9).with_box(BoxGeometry {
        x,
        y: 1.0,
        width: 2.0,
        height: 2.0,
        rotation: 0.0,
    })
}

impl Plugin for FaultyPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("faulty-test-adapter", env!("CARGO_PKG_VERSION"), &["detect"])
    }

    fn inspect(&self, _model: &ModelInfo) -> Fit {
        if fault().is_some() {
            Fit::score(1000)
        } else {
            Fit::no("")
        }
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        if fault().as_deref() == Some("panic-open") {
            panic!("faulty adapter: open panicked on purpose");
        }
        Ok(Box::new(Faulty {
            input: image_input(model)?,
        }))
    }
}

impl Adapter for Faulty {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        let image = input
            .frames()
            .first()
            .ok_or_else(|| PluginError::invalid_input("no frame"))?
            .image;
        // The host's warm-up image is 64x64; fail only on real task images.
        if fault().as_deref() == Some("panic-prepare") && image.width != 64 {
            panic!("faulty adapter: prepare panicked on purpose");
        }
        let model_input = &self.input;
        let letterbox = Letterbox::plan(image.width, image.height, model_input.width, model_input.height)?;
        Ok(Prepared::new(
            vec![letterbox.tensor(&model_input.name, image)?],
            Context::new(image.width),
        ))
    }

    fn finish(&self, _input: &Input<'_>, _outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let width: u32 = context.into_inner()?;
        if width == 64 {
            return Ok(Step::Done(Output::one(FrameOutput::default())));
        }
        let instances = match fault().as_deref() {
            Some("panic-finish") => panic!("faulty adapter: finish panicked on purpose"),
            Some("nan-boxes") => {
                let mut nan = boxed(0, f32::NAN);
                if let plugin_api::ROption::RSome(b) = &mut nan.bbox {
                    b.height = f32::INFINITY;
                }
                vec![nan, boxed(1, f32::INFINITY), boxed(2, 5.0)]
            }
            Some("too-many") => (0..1000).map(|i| boxed(0, (i % 100) as f32)).collect(),
            Some("bad-class") => vec![boxed(7, 1.0), boxed(u32::MAX, 2.0), boxed(1, 3.0)],
            _ => Vec::new(),
        };
        Ok(Step::Done(Output::one(FrameOutput::instances(instances))))
    }
}

plugin_api::export_plugin!(FaultyPlugin::default);
