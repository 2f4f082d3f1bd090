//! An interactive request: the annotator clicked or drew a box with a smart tool, and wants
//! the object under it as a mask, a polygon or a tight box, in the label they chose.
//!
//! A model whose adapter declares prompt kinds (segment-anything) gets the prompt itself;
//! any other model runs as usual at ML_INTERACTIVE_CONF and the prompt picks one of its
//! instances ([`super::select`]). A prompt that makes no sense, or finds nothing, gets an
//! empty prediction and a log line saying why: Label Studio shows the annotator nothing
//! rather than an error.

use std::{sync::Arc, time::Instant};

use labelstudio_protocol::{
    interactive::Prompt,
    label_config::{Control, ControlKind, LabelConfig},
    protocol::Task,
    region::Region,
    results::{self, ImageSize},
};
use log::info;
use plugin_api::{BoxGeometry, FrameOutput, Instance, Options, Params, capability};
use serde_json::Value;

use super::{
    Plan, Predictor, TaskError,
    guard::sanitize,
    select::{self, PixelPrompt},
};
use crate::{imaging, models::LoadedModel, worker::off_executor as blocking};

/// Why an interactive request gets an empty answer (besides a failed task).
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    #[error(
        "the label config has no BrushLabels or PolygonLabels tag on `{0}` for the answer (nor, for a box prompt, \
         a RectangleLabels tag); add one without model_skip"
    )]
    NoTarget(String),
    #[error("the prompt's label `{label}` is in none of the tags the answer goes to ({tags})")]
    UnknownLabel { label: String, tags: String },
    #[error("no object found at the prompt")]
    NothingFound,
}

/// The outcome of one interactive task, for the log line and the answer.
pub(super) struct Answered {
    pub result: Result<Vec<Region>, Unanswered>,
    /// The stages, for the log line: ("fetch", ms), ("decode", ms), ...
    pub stages: Vec<(String, f64)>,
}

impl Predictor {
    /// Answers the prompt on the task's image.
    pub(super) async fn answer_prompt(
        &self,
        plan: &Plan,
        config: &LabelConfig,
        task: &Task,
        prompt: &Prompt,
    ) -> Result<Answered, TaskError> {
        let mut stages = Vec::new();
        let targets = targets(plan, prompt);
        if targets.is_empty() {
            return Ok(Answered {
                result: Err(Unanswered::NoTarget(prompt.image.clone())),
                stages,
            });
        }
        if let Some(label) = &prompt.label {
            let known = targets
                .iter()
                .flat_map(|(_, controls)| controls)
                .any(|c| c.labels.is_empty() || c.labels.iter().any(|l| &l.value == label));
            if !known {
                let tags: Vec<&str> = targets
                    .iter()
                    .flat_map(|(_, controls)| controls.iter().map(|c| c.name.as_str()))
                    .collect();
                return Ok(Answered {
                    result: Err(Unanswered::UnknownLabel {
                        label: label.clone(),
                        tags: tags.join(", "),
                    }),
                    stages,
                });
            }
        }
        let key = config
            .image(&prompt.image)
            .map(|image| image.value_key.clone())
            .unwrap_or_else(|| plan.image_key.clone());
        let reference = task
            .data
            .get(&key)
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::NoImage(key.clone()))?;
        let t = Instant::now();
        let bytes = self.media.fetch(reference, task.id.as_ref()).await?;
        stages.push(("fetch".to_string(), ms(t)));
        let t = Instant::now();
        let (max_pixels, setting) = self.prompt_pixel_limit();
        let image = Arc::new(blocking(move || imaging::decode_within(&bytes, max_pixels, setting)).await??);
        stages.push(("decode".to_string(), ms(t)));
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };
        let pixels = in_pixels(prompt, size);

        let mut out = Vec::new();
        for (model, controls) in targets {
            let preferred = classes_of(&model, &controls, prompt.label.as_deref());
            let found = self
                .prompt_model(&model, &image, &pixels, &preferred, &mut stages)
                .await?;
            let Some(instance) = found else {
                continue;
            };
            let (label, tolerance) = (prompt.label.clone(), self.polygon_tolerance);
            let t = Instant::now();
            let class_name = model
                .class_names
                .get(instance.class_id as usize)
                .cloned()
                .unwrap_or_default();
            let built = blocking(move || {
                let label_of = |c: &Control| label_in(c, label.as_deref(), &class_name);
                results::prompted(&instance, &controls, label_of, size, tolerance)
            })
            .await?;
            stages.push(("outline".to_string(), ms(t)));
            out.extend(built);
        }
        Ok(Answered {
            result: if out.is_empty() {
                Err(Unanswered::NothingFound)
            } else {
                Ok(out)
            },
            stages,
        })
    }

    /// The one instance a model gives for the prompt.
    pub(super) async fn prompt_model(
        &self,
        model: &Arc<LoadedModel>,
        image: &Arc<imaging::RgbImage>,
        prompt: &PixelPrompt,
        preferred: &[u32],
        stages: &mut Vec<(String, f64)>,
    ) -> Result<Option<Instance>, TaskError> {
        let plugin = model.plugin();
        let base = model.params(self.defaults);
        let size = ImageSize {
            width: image.width,
            height: image.height,
        };
        let mut prompts = adapter_prompts(
            prompt,
            plugin.has(capability::PROMPT_POINT),
            plugin.has(capability::PROMPT_BOX),
        );
        // The annotator's label as the model's class, for an adapter that can use it.
        if let [class] = preferred {
            for p in &mut prompts {
                p.class_id = plugin_api::ROption::RSome(*class);
            }
        }
        if !prompts.is_empty() {
            let (frames, times, graphs) = model
                .engine
                .run_prompted(vec![Arc::clone(image)], prompts, base, Options::new())
                .await?;
            stages.push(("prepare".to_string(), times.prepare.as_secs_f64() * 1e3));
            let ran: Vec<&str> = graphs.iter().map(|g| g.graph.as_str()).collect();
            if !ran.contains(&"encoder") && !model.engine.graphs.is_empty() {
                stages.push(("embedding cached".to_string(), 0.0));
            }
            for run in &graphs {
                let name = if run.graph.is_empty() {
                    "inference"
                } else {
                    run.graph.as_str()
                };
                stages.push((name.to_string(), run.took.as_secs_f64() * 1e3));
            }
            // The adapter's own work after each inference (keeping the embedding, the mask).
            stages.push(("finish".to_string(), times.finish.as_secs_f64() * 1e3));
            let frame = checked(frames.into_iter().next().unwrap_or_default(), model, base, size);
            // The adapter answers best first.
            return Ok(frame.instances.into_iter().next());
        }
        let params = Params {
            conf: self.interactive_conf,
            ..base
        };
        let t = Instant::now();
        let (frame, _) = model.predict(Arc::clone(image), params).await?;
        stages.push(("inference".to_string(), ms(t)));
        let frame = checked(frame, model, params, size);
        let t = Instant::now();
        let chosen =
            select::select(&frame.instances, prompt, preferred).and_then(|i| frame.instances.into_iter().nth(i));
        stages.push(("select".to_string(), ms(t)));
        Ok(chosen)
    }
}

/// What an adapter sent, after the host's checks (sizes, class ids, counts).
fn checked(frame: FrameOutput, model: &LoadedModel, params: Params, size: ImageSize) -> FrameOutput {
    sanitize(frame, model.class_names.len(), params.max_det as usize, size)
}

/// The tags the answer goes to, by model: the mask-capable tags (BrushLabels, PolygonLabels)
/// on the prompt's image; without any, for a box prompt, its RectangleLabels tags (the
/// answer is then the object's tight box).
fn targets(plan: &Plan, prompt: &Prompt) -> Vec<(Arc<LoadedModel>, Vec<Control>)> {
    let on_image = |c: &Control| prompt.image.is_empty() || c.to_name == prompt.image;
    let pick = |kinds: &[ControlKind]| -> Vec<(Arc<LoadedModel>, Vec<Control>)> {
        plan.groups
            .iter()
            .map(|g| {
                let controls: Vec<Control> = g
                    .controls
                    .iter()
                    .filter(|c| on_image(c) && kinds.contains(&c.kind))
                    .cloned()
                    .collect();
                (Arc::clone(&g.model), controls)
            })
            .filter(|(_, controls)| !controls.is_empty())
            .collect()
    };
    let masks = pick(&[ControlKind::BrushLabels, ControlKind::PolygonLabels]);
    if !masks.is_empty() || prompt.bbox.is_none() {
        return masks;
    }
    pick(&[ControlKind::RectangleLabels])
}

/// The model's classes that the chosen label stands for in the target tags.
fn classes_of(model: &LoadedModel, controls: &[Control], label: Option<&str>) -> Vec<u32> {
    let Some(label) = label else {
        return Vec::new();
    };
    (0..model.class_names.len() as u32)
        .filter(|&id| {
            let name = &model.class_names[id as usize];
            controls.iter().any(|c| c.label_for(name) == Some(label))
        })
        .collect()
}

/// The label a tag gets: the annotator's, where the tag has it (or has no labels at all);
/// without one chosen, the tag's label for the model's class, else its first label.
fn label_in(control: &Control, chosen: Option<&str>, class_name: &str) -> Option<String> {
    match chosen {
        Some(label) if control.labels.is_empty() || control.labels.iter().any(|l| l.value == label) => {
            Some(label.to_string())
        }
        Some(_) => None,
        None => control
            .label_for(class_name)
            .map(str::to_string)
            .or_else(|| control.labels.first().map(|l| l.value.clone())),
    }
}

/// The prompt in pixels of the image (Label Studio sends percent).
fn in_pixels(prompt: &Prompt, size: ImageSize) -> PixelPrompt {
    let (w, h) = (size.width as f64, size.height as f64);
    PixelPrompt {
        clicks: prompt
            .clicks
            .iter()
            .map(|c| ((c.x / 100.0 * w) as f32, (c.y / 100.0 * h) as f32, c.positive))
            .collect(),
        bbox: prompt.bbox.map(|b| {
            let (x1, x2) = (b.x.min(b.x + b.width), b.x.max(b.x + b.width));
            let (y1, y2) = (b.y.min(b.y + b.height), b.y.max(b.y + b.height));
            BoxGeometry::from_corners(
                (x1 / 100.0 * w) as f32,
                (y1 / 100.0 * h) as f32,
                (x2 / 100.0 * w) as f32,
                (y2 / 100.0 * h) as f32,
            )
        }),
    }
}

/// The prompts of the kinds an adapter declares; none when it declares neither.
fn adapter_prompts(prompt: &PixelPrompt, points: bool, boxes: bool) -> Vec<plugin_api::Prompt> {
    if !points && !boxes {
        return Vec::new();
    }
    let mut out = Vec::new();
    if points {
        out.extend(
            prompt
                .clicks
                .iter()
                .map(|&(x, y, positive)| plugin_api::Prompt::point(x, y, positive)),
        );
    }
    if boxes && let Some(b) = prompt.bbox {
        out.push(plugin_api::Prompt::bbox(b));
    }
    out
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The stages as one log fragment: `fetch 2.1 ms, decode 3.0 ms, embedding cached, ...`.
pub(super) fn stages_line(stages: &[(String, f64)]) -> String {
    stages
        .iter()
        .map(|(name, ms)| {
            if *ms == 0.0 && name == "embedding cached" {
                name.clone()
            } else {
                format!("{name} {ms:.1} ms")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Logs one interactive request.
pub(super) fn log_answer(task: &str, models: &str, prompt: &Prompt, answered: &Answered) {
    let what = match (prompt.clicks.len(), prompt.bbox.is_some()) {
        (n, false) => format!("{n} click(s)"),
        (0, true) => "a box".to_string(),
        (n, true) => format!("a box and {n} click(s)"),
    };
    let outcome = match &answered.result {
        Ok(regions) => format!("{} region(s)", regions.len()),
        Err(why) => format!("an empty answer: {why}"),
    };
    info!(
        "interactive: task {task}, model {models}, {what}: {}; {outcome}",
        stages_line(&answered.stages)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use labelstudio_protocol::interactive::{Click, PromptBox};

    #[test]
    fn percent_prompts_become_pixels_and_a_drawn_backwards_box_is_upright() {
        let prompt = Prompt {
            image: "image".to_string(),
            label: None,
            clicks: vec![Click {
                x: 50.0,
                y: 25.0,
                positive: false,
            }],
            bbox: Some(PromptBox {
                x: 60.0,
                y: 50.0,
                width: -20.0,
                height: 10.0,
            }),
        };
        let p = in_pixels(
            &prompt,
            ImageSize {
                width: 200,
                height: 100,
            },
        );
        assert_eq!(p.clicks, vec![(100.0, 25.0, false)]);
        assert_eq!(p.bbox, Some(BoxGeometry::from_corners(80.0, 50.0, 120.0, 60.0)));
        assert_eq!(adapter_prompts(&p, false, false).len(), 0);
        assert_eq!(adapter_prompts(&p, true, false).len(), 1);
        assert_eq!(adapter_prompts(&p, true, true).len(), 2);
    }

    #[test]
    fn the_chosen_label_must_be_the_tags_and_without_one_the_class_decides() {
        let config = LabelConfig::parse(
            r#"<View><Image name="image" value="$image"/>
               <BrushLabels name="b" toName="image"><Label value="Cat"/><Label value="Dog"/></BrushLabels></View>"#,
        )
        .expect("config");
        let tag = &config.controls[0];
        assert_eq!(label_in(tag, Some("Dog"), "cat").as_deref(), Some("Dog"));
        assert_eq!(label_in(tag, Some("Horse"), "cat"), None);
        assert_eq!(label_in(tag, None, "cat").as_deref(), Some("Cat"));
        assert_eq!(label_in(tag, None, "object").as_deref(), Some("Cat"));
    }
}
