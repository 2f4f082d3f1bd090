//! Trying a model on one image through the management API: what the model finds, in
//! original-image pixels, and the Label Studio results it would give for a label config.

use std::sync::Arc;

use bytes::Bytes;
use labelstudio_protocol::{
    label_config::LabelConfig,
    results::{self, Found, ImageSize},
};
use plugin_api::{FrameOutput, Instance};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Predictor, TaskError, guard};
use crate::{imaging, worker::off_executor};

/// What to try: an image (the request body) or a URL, with optional thresholds and a label
/// config to build Label Studio results for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryRequest {
    #[serde(skip)]
    image: Option<Bytes>,
    url: Option<String>,
    conf: Option<f32>,
    iou: Option<f32>,
    max_det: Option<u32>,
    label_config: Option<String>,
}

impl TryRequest {
    pub fn image(bytes: Bytes, conf: Option<f32>, iou: Option<f32>, max_det: Option<u32>) -> Self {
        Self {
            image: Some(bytes),
            conf,
            iou,
            max_det,
            ..Self::default()
        }
    }
}

fn instance_json(instance: &Instance, class_names: &[String]) -> Value {
    json!({
        "class_id": instance.class_id,
        "label": class_names.get(instance.class_id as usize),
        "score": instance.score,
        "box": instance.bbox.as_ref().into_option().map(|b| json!({
            "x": b.x, "y": b.y, "width": b.width, "height": b.height, "rotation": b.rotation,
        })),
        "polygons": instance.polygons.iter().map(|p| p.iter().map(|q| [q.x, q.y]).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "mask": instance.mask.as_ref().into_option().map(|m| json!({
            "width": m.width, "height": m.height, "runs": m.runs.as_slice(),
        })),
        "keypoints": instance.keypoints.iter().map(|k| json!({
            "index": k.index, "x": k.x, "y": k.y, "score": k.score,
        })).collect::<Vec<_>>(),
        "track_id": instance.track_id.into_option(),
    })
}

impl Predictor {
    pub async fn try_model(&self, name: &str, request: TryRequest) -> Result<Value, ApiError> {
        let model = self.registry.by_path(name)?;
        let config = request.label_config.as_deref().map(LabelConfig::parse).transpose()?;
        let bytes = match (request.image, request.url) {
            (Some(bytes), _) if !bytes.is_empty() => bytes,
            (_, Some(url)) => self.media.fetch(&url, None).await.map_err(TaskError::from)?,
            _ => return Err(ApiError::Try(TaskError::NoImage("the body (or `url`)".into()))),
        };
        let max_pixels = self.max_image_pixels;
        let image = off_executor(move || imaging::decode(&bytes, max_pixels))
            .await
            .map_err(TaskError::from)?
            .map_err(TaskError::from)?;
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };
        let base = model.params(self.defaults);
        let params = plugin_api::Params {
            conf: request.conf.unwrap_or(base.conf),
            iou: request.iou.unwrap_or(base.iou),
            max_det: request.max_det.unwrap_or(base.max_det),
        };
        let (found, _) = model.predict(Arc::new(image), params).await.map_err(TaskError::from)?;
        let frame: FrameOutput = guard::sanitize(found, model.class_names.len(), params.max_det as usize, size);
        let results = config.map(|config| {
            let controls: Vec<_> = config.active_controls().cloned().collect();
            let found = Found {
                frame: &frame,
                class_names: &model.class_names,
                keypoint_names: &model.described.keypoint_names,
                size,
            };
            results::build(&found, &controls, params.conf, self.polygon_tolerance)
        });
        Ok(json!({
            "model": model.name,
            "model_version": model.version,
            "width": size.width,
            "height": size.height,
            "instances": frame.instances.iter().map(|i| instance_json(i, &model.class_names)).collect::<Vec<_>>(),
            "classes": frame.classes.iter().map(|c| json!({
                "class_id": c.class_id,
                "label": model.class_names.get(c.class_id as usize),
                "score": c.score,
            })).collect::<Vec<_>>(),
            "results": results,
        }))
    }
}
