//! Adapter plugin for segment-anything-style models: an image encoder (SAM ViT-B/L/H,
//! MobileSAM's TinyViT, ...) and SAM's prompt decoder, each exported to ONNX, built against
//! `plugin-api` alone.
//!
//! The model is two files, `NAME.encoder.onnx` and `NAME.decoder.onnx`; the decoder is in the
//! layout of segment-anything's `scripts/export_onnx_model.py` (inputs `image_embeddings`,
//! `point_coords`, `point_labels`, `mask_input`, `has_mask_input`, `orig_im_size`; outputs
//! `masks`, `iou_predictions`, `low_res_masks`). It answers prompts only (clicks and a box)
//! with one class-agnostic mask: the encoder runs once per image, its embedding is kept in
//! a cache bounded in MB (`embedding_cache_mb`), and each click runs only the decoder.
//!
//! The recipe is `SamPredictor`'s ([`recipe`]).

mod cache;
pub mod recipe;

use std::sync::Arc;

use plugin_api::{ROption, prelude::*, sdk};

use cache::{Embedding, EmbeddingCache, ImageKey, image_key};
use recipe::Transform;

/// The decoder's inputs, as segment-anything's exporter names them.
const DECODER_INPUTS: [&str; 6] = [
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
];
const ENCODER: &str = "encoder";
const DECODER: &str = "decoder";
/// SAM's input size, for an encoder whose input size is dynamic.
const DEFAULT_SIZE: usize = 1024;
const DEFAULT_CACHE_MB: usize = 256;

#[derive(Debug, Default)]
pub struct SamPlugin;

impl Plugin for SamPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("sam", env!("CARGO_PKG_VERSION"), &["segment"]).with_capabilities(&[
            capability::PROMPT_POINT,
            capability::PROMPT_BOX,
            capability::INTERACTIVE_ONLY,
            capability::TWO_STAGE,
        ])
    }

    fn inspect(&self, model: &ModelInfo) -> Fit {
        match Layout::read(model) {
            Ok(_) => Fit::score(sdk::EXPLICIT_MATCH),
            Err(e) => Fit::no(e.message.to_string()),
        }
    }

    fn open(&self, model: &ModelInfo, options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        let layout = Layout::read(model)?;
        let budget = options.parse::<usize>("embedding_cache_mb").unwrap_or(DEFAULT_CACHE_MB);
        Ok(Box::new(Sam {
            layout,
            cache: EmbeddingCache::new(budget.saturating_mul(1024 * 1024)),
        }))
    }
}

/// What the adapter reads once from the two graphs.
#[derive(Debug, Clone)]
struct Layout {
    encoder_input: String,
    /// The encoder's square input size (1024 for SAM).
    size: usize,
    encoder_output: String,
    /// `[1, C, H, W]` of the image embedding, as the decoder takes it.
    embedding_shape: Vec<i64>,
    /// `[1, 1, 4H, 4W]`: the decoder's `mask_input`.
    mask_input_shape: Vec<i64>,
}

impl Layout {
    fn read(model: &ModelInfo) -> Result<Layout, PluginError> {
        let graph_list = |key: &str| -> Vec<String> {
            model
                .metadata(key)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let graphs = graph_list("graphs");
        if !(graphs.iter().any(|g| g == ENCODER) && graphs.iter().any(|g| g == DECODER)) {
            return Err(PluginError::unsupported(
                "not a segment-anything model: it needs an image encoder and a prompt decoder, as two files \
                 NAME.encoder.onnx and NAME.decoder.onnx",
            ));
        }
        let decoder_inputs = graph_list("graph.decoder.inputs");
        let missing: Vec<&str> = DECODER_INPUTS
            .iter()
            .copied()
            .filter(|name| !decoder_inputs.iter().any(|i| i == name))
            .collect();
        if !missing.is_empty() {
            return Err(PluginError::unsupported(format!(
                "the decoder lacks the inputs {} of segment-anything's ONNX export (scripts/export_onnx_model.py)",
                missing.join(", ")
            )));
        }
        let decoder_outputs = graph_list("graph.decoder.outputs");
        for needed in ["masks", "iou_predictions"] {
            if !decoder_outputs.iter().any(|o| o == needed) {
                return Err(PluginError::unsupported(format!(
                    "the decoder has no `{needed}` output (segment-anything's export names its outputs masks, \
                     iou_predictions and low_res_masks)"
                )));
            }
        }
        let encoder_inputs = graph_list("graph.encoder.inputs");
        let [encoder_input] = encoder_inputs.as_slice() else {
            return Err(PluginError::unsupported(format!(
                "the encoder must take one input, the image; it takes {}",
                encoder_inputs.len()
            )));
        };
        let input = model
            .input(encoder_input)
            .ok_or_else(|| PluginError::internal("the encoder's input is not in the model's inputs"))?;
        if input.element_type != ElementType::F32 {
            return Err(PluginError::unsupported(format!(
                "the encoder's input is {}; f32 is supported",
                input.element_type
            )));
        }
        let size = match input.shape.as_slice() {
            [_, 3, h, w] if h == w && *h > 0 => *h as usize,
            [_, 3, h, w] if *h <= 0 && *w <= 0 => DEFAULT_SIZE,
            other => {
                return Err(PluginError::unsupported(format!(
                    "the encoder's input must be a square image [1, 3, S, S] (already resized, normalised and \
                     padded); it is {other:?}"
                )));
            }
        };
        let encoder_output = graph_list("graph.encoder.outputs")
            .into_iter()
            .next()
            .ok_or_else(|| PluginError::unsupported("the encoder has no output"))?;
        let embedding = model.input("image_embeddings").ok_or_else(|| {
            PluginError::internal("the decoder's image_embeddings input is not in the model's inputs")
        })?;
        let embedding_shape = match embedding.shape.as_slice() {
            [_, c, h, w] if *c > 0 && *h > 0 && *w > 0 => vec![1, *c, *h, *w],
            other => {
                return Err(PluginError::unsupported(format!(
                    "the decoder's image_embeddings must have a fixed shape [1, C, H, W]; it is {other:?}"
                )));
            }
        };
        if let Some(out) = model.output(&encoder_output) {
            let fits = out.shape.len() == 4
                && out.shape[1..]
                    .iter()
                    .zip(&embedding_shape[1..])
                    .all(|(a, b)| *a <= 0 || a == b);
            if !fits {
                return Err(PluginError::unsupported(format!(
                    "the encoder's output {:?} does not fit the decoder's image_embeddings {embedding_shape:?}: the two \
                     files are not one model (was only one of them replaced?)",
                    out.shape.as_slice()
                )));
            }
        }
        let mask_input_shape = match model.input("mask_input").map(|t| t.shape.as_slice()) {
            Some([_, _, h, w]) if *h > 0 && *w > 0 => vec![1, 1, *h, *w],
            _ => vec![1, 1, 4 * embedding_shape[2], 4 * embedding_shape[3]],
        };
        Ok(Layout {
            encoder_input: encoder_input.clone(),
            size,
            encoder_output,
            embedding_shape,
            mask_input_shape,
        })
    }
}

pub struct Sam {
    layout: Layout,
    cache: EmbeddingCache,
}

/// What `prepare` hands `finish`.
enum Stage {
    /// The encoder runs for this image; the decoder follows (unless there is no prompt).
    Encode { key: ImageKey },
    /// The decoder runs.
    Decode,
}

/// The prompt of one call, in original-image pixels.
struct Clicks {
    points: Vec<(f32, f32, bool)>,
    bbox: Option<[f32; 4]>,
}

impl Clicks {
    fn of(input: &Input<'_>) -> Clicks {
        let mut clicks = Clicks {
            points: Vec::new(),
            bbox: None,
        };
        for prompt in input.prompts() {
            if prompt.kind == PromptKind::POINT {
                clicks
                    .points
                    .extend(prompt.points.iter().map(|p| (p.x, p.y, prompt.positive)));
            } else if prompt.kind == PromptKind::BOX
                && let ROption::RSome(b) = &prompt.bbox
            {
                let [x1, y1, x2, y2] = b.bounds();
                clicks.bbox = Some([x1, y1, x2, y2]);
            }
        }
        clicks
    }

    fn is_empty(&self) -> bool {
        self.points.is_empty() && self.bbox.is_none()
    }
}

fn one_frame<'a>(input: &Input<'a>) -> Result<ImageRef<'a>, PluginError> {
    match input.frames() {
        [frame] => Ok(frame.image),
        frames => Err(PluginError::invalid_input(format!(
            "a segment-anything model takes one image per call, not {}",
            frames.len()
        ))),
    }
}

impl Sam {
    fn encoder_inputs(&self, image: ImageRef<'_>) -> Result<Prepared, PluginError> {
        let size = self.layout.size;
        let mut tensor = Tensor::zeros(
            &self.layout.encoder_input,
            ElementType::F32,
            &[1, 3, size as i64, size as i64],
        )?;
        let pixels = image.rgb()?;
        recipe::encoder_input(
            pixels,
            image.width as usize,
            image.height as usize,
            size,
            tensor.values_mut::<f32>()?,
        );
        Ok(Prepared::new(vec![tensor], Context::empty()).on_graph(ENCODER))
    }

    fn decoder_inputs(
        &self,
        image: ImageRef<'_>,
        clicks: &Clicks,
        embedding: &Embedding,
    ) -> Result<Prepared, PluginError> {
        let (w, h) = (image.width as usize, image.height as usize);
        let transform = Transform::new(h, w, self.layout.size);
        let (coords, labels) = recipe::prompt_points(&clicks.points, clicks.bbox, transform);
        let n = labels.len() as i64;
        let inputs = vec![
            Tensor::from_values("image_embeddings", &embedding.shape, &embedding.values)?,
            Tensor::from_values("point_coords", &[1, n, 2], &coords)?,
            Tensor::from_values("point_labels", &[1, n], &labels)?,
            Tensor::zeros("mask_input", ElementType::F32, &self.layout.mask_input_shape)?,
            Tensor::from_values("has_mask_input", &[1], &[0.0f32])?,
            Tensor::from_values("orig_im_size", &[2], &[h as f32, w as f32])?,
        ];
        Ok(Prepared::new(inputs, Context::new(Stage::Decode)).on_graph(DECODER))
    }

    /// Keeps the encoder's output as the image's embedding.
    fn embedding_of(&self, outputs: &[TensorRef<'_>]) -> Result<Embedding, PluginError> {
        let out = sdk::output(outputs, &self.layout.encoder_output, 0)
            .ok_or_else(|| PluginError::internal("the encoder gave no output"))?;
        let values = out.f32s()?;
        let expected: i64 = self.layout.embedding_shape.iter().product();
        if values.len() as i64 != expected {
            return Err(PluginError::internal(format!(
                "the encoder gave {} values; the decoder takes {:?}",
                values.len(),
                self.layout.embedding_shape
            )));
        }
        Ok(Embedding {
            shape: self.layout.embedding_shape.clone(),
            values: values.to_vec(),
        })
    }

    /// The best mask of the decoder's answer, as one class-agnostic instance.
    fn instance_of(&self, image: ImageRef<'_>, outputs: &[TensorRef<'_>]) -> Result<FrameOutput, PluginError> {
        let (w, h) = (image.width as usize, image.height as usize);
        let masks = sdk::output(outputs, "masks", 0).ok_or_else(|| PluginError::internal("no `masks` output"))?;
        let scores = sdk::output(outputs, "iou_predictions", 1)
            .ok_or_else(|| PluginError::internal("no `iou_predictions` output"))?
            .f32s()?;
        let shape = masks.shape();
        let count = match shape {
            [1, n, mh, mw] if *mh as usize == h && *mw as usize == w => *n as usize,
            other => {
                return Err(PluginError::internal(format!(
                    "the decoder's masks are {other:?}; [1, N, {h}, {w}] (the image's size) was expected"
                )));
            }
        };
        let logits = masks.f32s()?;
        let Some(best) = recipe::best_mask(&scores[..count.min(scores.len())]) else {
            return Ok(FrameOutput::default());
        };
        let plane = &logits[best * w * h..(best + 1) * w * h];
        let bits: Vec<bool> = plane.iter().map(|v| *v > 0.0).collect();
        let Some(instance) = instance_from_bits(&bits, w, h, scores[best]) else {
            return Ok(FrameOutput::default());
        };
        Ok(FrameOutput::instances(vec![instance]))
    }
}

/// A share of the largest piece below which a piece of the mask gets no outline of its own.
const MIN_PIECE_SHARE: f64 = 0.01;

/// An instance from a full-size binary mask: its runs, its tight box, and one outline per
/// piece (through boundary pixels' centres), largest first. None for an empty mask.
fn instance_from_bits(bits: &[bool], w: usize, h: usize, score: f32) -> Option<Instance> {
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in bits.iter().enumerate().filter(|(_, bit)| **bit) {
        let (x, y) = (i % w, i / w);
        x1 = x1.min(x);
        y1 = y1.min(y);
        x2 = x2.max(x);
        y2 = y2.max(y);
    }
    if x1 == usize::MAX {
        return None;
    }
    let runs = mask_geometry::runs_of_bits(bits);
    let pieces = mask_geometry::outlines_of_bits(w, h, bits, 2);
    let area = |p: &[(i32, i32)]| {
        let f: Vec<(f64, f64)> = p.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
        mask_geometry::area(&f) + p.len() as f64 / 2.0 + 1.0
    };
    let largest = pieces.first().map(|p| area(p)).unwrap_or(0.0);
    let mut instance = Instance::new(0, score)
        .with_mask(Mask {
            width: w as u32,
            height: h as u32,
            runs: RVec::from(runs),
        })
        .with_box(BoxGeometry::from_corners(
            x1 as f32,
            y1 as f32,
            (x2 + 1) as f32,
            (y2 + 1) as f32,
        ));
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 || area(piece) >= MIN_PIECE_SHARE * largest {
            instance = instance.with_polygon(
                piece
                    .iter()
                    .map(|&(x, y)| Point {
                        x: x as f32 + 0.5,
                        y: y as f32 + 0.5,
                    })
                    .collect(),
            );
        }
    }
    Some(instance)
}

impl Adapter for Sam {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        let image = one_frame(input)?;
        let key = image_key(image.width, image.height, image.rgb()?);
        let clicks = Clicks::of(input);
        if !clicks.is_empty()
            && let Some(embedding) = self.cache.get(key)
        {
            return self.decoder_inputs(image, &clicks, &embedding);
        }
        let mut prepared = self.encoder_inputs(image)?;
        prepared.context = Context::new(Stage::Encode { key });
        Ok(prepared)
    }

    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let image = one_frame(input)?;
        match context.into_inner::<Stage>()? {
            Stage::Encode { key } => {
                let embedding = Arc::new(self.embedding_of(outputs)?);
                self.cache.put(key, Arc::clone(&embedding));
                let clicks = Clicks::of(input);
                if clicks.is_empty() {
                    // An image encoded ahead of its clicks.
                    return Ok(Step::Done(Output::one(FrameOutput::default())));
                }
                Ok(Step::Run(self.decoder_inputs(image, &clicks, &embedding)?))
            }
            Stage::Decode => Ok(Step::Done(Output::one(self.instance_of(image, outputs)?))),
        }
    }

    fn call(&self, operation: &str, _args: &Options) -> Result<Options, PluginError> {
        match operation {
            "cache" => {
                let (images, bytes) = self.cache.usage();
                Ok(Options::new().with("images", images).with("bytes", bytes))
            }
            other => Err(PluginError::unsupported(format!(
                "this adapter has no operation `{other}`"
            ))),
        }
    }
}

plugin_api::export_plugin!(SamPlugin::default);

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, element_type: ElementType, shape: &[i64]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            element_type,
            shape: RVec::from(shape.to_vec()),
        }
    }

    /// The ModelInfo the host builds for `sam.encoder.onnx` + `sam.decoder.onnx`.
    fn pair(encoder_out: &[i64]) -> ModelInfo {
        let f32 = ElementType::F32;
        let inputs = vec![
            tensor("image", f32, &[1, 3, 1024, 1024]),
            tensor("image_embeddings", f32, &[1, 256, 64, 64]),
            tensor("point_coords", f32, &[1, -1, 2]),
            tensor("point_labels", f32, &[1, -1]),
            tensor("mask_input", f32, &[1, 1, 256, 256]),
            tensor("has_mask_input", f32, &[1]),
            tensor("orig_im_size", f32, &[2]),
        ];
        let outputs = vec![
            tensor("image_embeddings", f32, encoder_out),
            tensor("masks", f32, &[-1, -1, -1, -1]),
            tensor("iou_predictions", f32, &[-1, 4]),
            tensor("low_res_masks", f32, &[-1, -1, -1, -1]),
        ];
        let meta = [
            ("graphs", "encoder,decoder"),
            ("graph.encoder.inputs", "image"),
            ("graph.encoder.outputs", "image_embeddings"),
            (
                "graph.decoder.inputs",
                "image_embeddings,point_coords,point_labels,mask_input,has_mask_input,orig_im_size",
            ),
            ("graph.decoder.outputs", "masks,iou_predictions,low_res_masks"),
        ];
        ModelInfo {
            inputs: RVec::from(inputs),
            outputs: RVec::from(outputs),
            metadata: meta
                .iter()
                .map(|(k, v)| plugin_api::MetadataEntry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_pair_in_segment_anythings_layout_fits_and_a_mismatched_pair_does_not() {
        let fit = SamPlugin.inspect(&pair(&[1, 256, 64, 64]));
        assert!(fit.score > 0, "{:?}", fit.reason);
        let half_replaced = SamPlugin.inspect(&pair(&[1, 128, 64, 64]));
        assert_eq!(half_replaced.score, 0);
        assert!(
            half_replaced.reason.contains("not one model"),
            "{}",
            half_replaced.reason
        );
        let single = ModelInfo::default();
        assert!(SamPlugin.inspect(&single).reason.contains("NAME.encoder.onnx"));
    }

    #[test]
    fn a_click_encodes_once_then_the_cache_serves_the_decoder() {
        let sam = SamPlugin
            .open(&pair(&[1, 256, 64, 64]), &Options::new().with("embedding_cache_mb", 64))
            .expect("open");
        let pixels = vec![90u8; 8 * 6 * 3];
        let frames = [Frame::still(ImageRef::new(8, 6, &pixels))];
        let prompts = [Prompt::point(2.0, 3.0, true)];
        let options = Options::new();
        let input = Input::new(&frames, Params::default(), &options).with_prompts(&prompts);
        let first = sam.prepare(&input).expect("prepare");
        assert_eq!(first.graph.as_str(), ENCODER);
        let embedding = vec![0.25f32; 256 * 64 * 64];
        let shape = [1i64, 256, 64, 64];
        let outputs = [TensorRef::new("image_embeddings", &shape, &embedding)];
        let Step::Run(decode) = sam.finish(&input, &outputs, first.context).expect("finish") else {
            panic!("the decoder should run next");
        };
        assert_eq!(decode.graph.as_str(), DECODER);
        let labels = decode.inputs[2].values::<f32>().expect("labels");
        assert_eq!(labels, [1.0, -1.0], "a click, then the padding point");
        let again = sam.prepare(&input).expect("prepare");
        assert_eq!(
            again.graph.as_str(),
            DECODER,
            "the second click on the image skips the encoder"
        );
    }

    #[test]
    fn a_mask_becomes_an_instance_with_its_tight_box_and_outline() {
        let (w, h) = (6, 5);
        let mut bits = vec![false; w * h];
        for y in 1..4 {
            for x in 2..5 {
                bits[y * w + x] = true;
            }
        }
        let instance = instance_from_bits(&bits, w, h, 0.8).expect("instance");
        assert_eq!(
            instance.bbox.into_option(),
            Some(BoxGeometry::from_corners(2.0, 1.0, 5.0, 4.0))
        );
        assert_eq!(instance.polygons.len(), 1);
        assert!(instance_from_bits(&[false; 4], 2, 2, 0.5).is_none());
    }
}
