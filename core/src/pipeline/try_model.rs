//! Trying a model on one image through the management API: what the model finds, in
//! original-image pixels, and the Label Studio results it would give for a label config.

use std::sync::Arc;

use bytes::Bytes;
use labelstudio_protocol::{
    label_config::LabelConfig,
    results::{self, Found, ImageSize},
};
use plugin_api::{BoxGeometry, FrameOutput, Instance};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Predictor, TaskError, guard, select::PixelPrompt};
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
    /// Clicks in pixels: `[x, y, 1]` on the object, `[x, y, 0]` off it. With clicks or a
    /// box the model answers the prompt (as for a smart tool) instead of the whole image.
    points: Option<Vec<[f32; 3]>>,
    /// A box prompt in pixels: `[x1, y1, x2, y2]`.
    #[serde(rename = "box")]
    bbox: Option<[f32; 4]>,
}

/// Why a prompt in query text cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PromptTextError {
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("a point is `x,y,1` (on the object) or `x,y,0` (off it), not `{0}`")]
    Point(String),
    #[error("a box is `x1,y1,x2,y2`, not `{0}`")]
    Box(String),
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

    /// Adds a prompt from query text: `points=x,y,1;x,y,0` and `box=x1,y1,x2,y2`.
    pub fn with_prompt_text(mut self, points: Option<&str>, bbox: Option<&str>) -> Result<Self, PromptTextError> {
        let numbers = |text: &str| -> Result<Vec<f32>, PromptTextError> {
            text.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .map_err(|_| PromptTextError::NotANumber(v.to_string()))
                })
                .collect()
        };
        if let Some(text) = points.filter(|t| !t.trim().is_empty()) {
            let mut clicks = Vec::new();
            for click in text.split(';') {
                match numbers(click)?.as_slice() {
                    [x, y, sign] => clicks.push([*x, *y, *sign]),
                    _ => return Err(PromptTextError::Point(click.to_string())),
                }
            }
            self.points = Some(clicks);
        }
        if let Some(text) = bbox.filter(|t| !t.trim().is_empty()) {
            match numbers(text)?.as_slice() {
                [x1, y1, x2, y2] => self.bbox = Some([*x1, *y1, *x2, *y2]),
                _ => return Err(PromptTextError::Box(text.to_string())),
            }
        }
        Ok(self)
    }

    /// The prompt, if the request has one; clicks and box coordinates must be finite.
    fn prompt(&self) -> Option<PixelPrompt> {
        let clicks: Vec<(f32, f32, bool)> = self
            .points
            .iter()
            .flatten()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .take(labelstudio_protocol::interactive::MAX_CLICKS)
            .map(|p| (p[0], p[1], p[2] > 0.5))
            .collect();
        let bbox = self
            .bbox
            .filter(|b| b.iter().all(|v| v.is_finite()))
            .map(|[x1, y1, x2, y2]| BoxGeometry::from_corners(x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)));
        (!clicks.is_empty() || bbox.is_some()).then_some(PixelPrompt { clicks, bbox })
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
        // A try is a task like /predict's: admitted, and holding an image only in one of the
        // task slots (ML_TASK_CONCURRENCY), so that tries cannot add up past the memory bound.
        let _admitted = self.admission.admit(1)?;
        let _slot = self.in_flight.acquire().await;
        let model = self.registry.by_path(name)?;
        let config = request.label_config.as_deref().map(LabelConfig::parse).transpose()?;
        let prompt = request.prompt();
        let bytes = match (request.image, request.url) {
            (Some(bytes), _) if !bytes.is_empty() => bytes,
            (_, Some(url)) => self.media.fetch(&url, None).await.map_err(TaskError::from)?,
            _ => return Err(ApiError::Try(TaskError::NoImage("the body (or `url`)".into()))),
        };
        // A prompt's masks are made at the image's own size, several at a time: prompt models
        // get a smaller pixel limit.
        let (max_pixels, setting) = if prompt.is_some() {
            self.prompt_pixel_limit()
        } else {
            (self.max_image_pixels, "ML_MAX_IMAGE_PIXELS")
        };
        let image = off_executor(move || imaging::decode_within(&bytes, max_pixels, setting))
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
        let image = Arc::new(image);
        let frame: FrameOutput = match prompt {
            Some(prompt) => {
                let mut stages = Vec::new();
                let found = self.prompt_model(&model, &image, &prompt, &[], &mut stages).await?;
                FrameOutput::instances(found.into_iter().collect())
            }
            None => {
                let (found, _) = model.predict(image, params).await.map_err(TaskError::from)?;
                guard::sanitize(found, model.class_names.len(), params.max_det as usize, size)
            }
        };
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

impl Predictor {
    /// What one model finds in one image, checked as serving checks it, keeping everything
    /// scored above `conf` (a training job scores models this way).
    pub async fn found_for(
        &self,
        model: &Arc<crate::models::LoadedModel>,
        image: Arc<imaging::RgbImage>,
        conf: f32,
    ) -> Result<plugin_api::FrameOutput, TaskError> {
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };
        let params = plugin_api::Params {
            conf,
            ..model.params(self.defaults)
        };
        let (found, _) = model.predict(image, params).await?;
        let classes = model.class_names.len();
        off_executor(move || super::guard::sanitize(found, classes, params.max_det as usize, size))
            .await
            .map_err(TaskError::from)
    }
}
