//! A deliberately faulty adapter, for tests only (never shipped). It claims every model, with
//! a score above any real adapter, but only while `LS_ML_TEST_FAULT` is set in the server's
//! environment; the variable picks the fault:
//!
//! - `panic-prepare`, `panic-finish`: panic in that call;
//! - `nan-boxes`: boxes with NaN and infinite coordinates;
//! - `too-many`: 1000 valid boxes, whatever max_det says;
//! - `bad-class`: class ids far beyond the model's classes.

use plugin_api::prelude::*;
use yolov8_common::{Letterbox, model::image_input};

#[derive(Default)]
struct Faulty;

fn fault() -> Option<String> {
    std::env::var("LS_ML_TEST_FAULT").ok()
}

fn boxed(class_id: u32, x: f32) -> Region {
    Region {
        class_id,
        score: 0.9,
        geometry: Geometry::Box(BoxGeometry {
            x,
            y: 1.0,
            width: 2.0,
            height: 2.0,
            rotation: 0.0,
        }),
    }
}

impl Adapter for Faulty {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("faulty-test-adapter", env!("CARGO_PKG_VERSION"), &["detect"])
    }

    fn accepts(&self, _model: &ModelInfo) -> u32 {
        if fault().is_some() { 1000 } else { 0 }
    }

    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, _params: &Params) -> Result<Prepared, PluginError> {
        // The host's warm-up image is 64x64; fail only on real task images.
        if fault().as_deref() == Some("panic-prepare") && image.width != 64 {
            panic!("faulty adapter: prepare panicked on purpose");
        }
        let input = image_input(model)?;
        let letterbox = Letterbox::plan(image.width, image.height, input.width, input.height)?;
        Ok(Prepared::new(
            vec![letterbox.tensor(&input.name, image)?],
            Context::new(image.width),
        ))
    }

    fn finish(
        &self,
        _model: &ModelInfo,
        _outputs: &[TensorRef<'_>],
        context: Context,
        _params: &Params,
    ) -> Result<Vec<Region>, PluginError> {
        let width: u32 = context.into_inner()?;
        if width == 64 {
            return Ok(Vec::new());
        }
        Ok(match fault().as_deref() {
            Some("panic-finish") => panic!("faulty adapter: finish panicked on purpose"),
            Some("nan-boxes") => {
                let mut nan = boxed(0, f32::NAN);
                if let Geometry::Box(b) = &mut nan.geometry {
                    b.height = f32::INFINITY;
                }
                vec![nan, boxed(1, f32::INFINITY), boxed(2, 5.0)]
            }
            Some("too-many") => (0..1000).map(|i| boxed(0, (i % 100) as f32)).collect(),
            Some("bad-class") => vec![boxed(7, 1.0), boxed(u32::MAX, 2.0), boxed(1, 3.0)],
            _ => Vec::new(),
        })
    }
}

plugin_api::export_adapter!(Faulty::default);
