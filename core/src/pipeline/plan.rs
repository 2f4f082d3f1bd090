//! Which model fills which control tag of a project's label config.
//!
//! A control tag with `model_path` is filled by that model; the others by the project's model
//! (routing: `<project id>.onnx`, ML_DEFAULT_MODEL, the only model). /setup and /predict both
//! build the plan, so the `model_version` Label Studio stores from /setup is exactly the one
//! its predictions carry; were they to differ, Label Studio would ask again on every task open.

use std::sync::Arc;

use labelstudio_protocol::label_config::{Control, ControlKind, FrameRate, LabelConfig, VideoControl};

use crate::models::{LoadedModel, Registry, RouteError};

/// One model, the image it looks at, and the control tags of that image it fills.
pub struct Group {
    pub model: Arc<LoadedModel>,
    pub controls: Vec<Control>,
    /// The `task.data` key of the image its tags label (their `toName`).
    pub image_key: String,
}

/// A `<VideoRectangle>` and the model whose detections it tracks.
pub struct VideoGroup {
    pub model: Arc<LoadedModel>,
    pub control: VideoControl,
    /// The `task.data` key of the video.
    pub video_key: String,
    /// The `<Video frameRate>`, which Label Studio's player numbers frames by.
    pub framerate: Option<FrameRate>,
}

pub struct Plan {
    pub groups: Vec<Group>,
    pub videos: Vec<VideoGroup>,
    /// The versions of the models in the plan, joined by `+`.
    pub version: String,
    /// The `task.data` key of the first image a tag labels (prompts name their own).
    pub image_key: String,
}

impl Plan {
    pub fn build(registry: &Registry, project: Option<&str>, config: Option<&LabelConfig>) -> Result<Plan, RouteError> {
        let controls: Vec<&Control> = config.map(|c| c.active_controls().collect()).unwrap_or_default();
        let mut groups: Vec<Group> = Vec::new();
        // `model_path`'s model, else the project's (routed once).
        let mut routed: Option<Arc<LoadedModel>> = None;
        let mut model_for = |model_path: Option<&String>| -> Result<Arc<LoadedModel>, RouteError> {
            match model_path.filter(|_| registry.model_paths_allowed()) {
                Some(path) => registry.by_path(path),
                None => match &routed {
                    Some(m) => Ok(Arc::clone(m)),
                    None => {
                        let m = registry.route(project)?;
                        routed = Some(Arc::clone(&m));
                        Ok(m)
                    }
                },
            }
        };
        let first_image = config
            .and_then(|config| controls.first().and_then(|c| config.image(&c.to_name)))
            .map(|image| image.value_key.clone())
            .unwrap_or_else(|| "image".to_string());
        for control in &controls {
            let model = model_for(control.model_path.as_ref())?;
            if control.kind == ControlKind::KeyPointLabels {
                check_keypoints(control, &model)?;
            }
            // Each tag labels its own image: tags of two images never share a group, so the
            // second image gets its own boxes, not the first one's.
            let image_key = config
                .and_then(|config| config.image(&control.to_name))
                .map_or_else(|| first_image.clone(), |image| image.value_key.clone());
            match groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(&g.model, &model) && g.image_key == image_key)
            {
                Some(group) => group.controls.push((*control).clone()),
                None => groups.push(Group {
                    model,
                    controls: vec![(*control).clone()],
                    image_key,
                }),
            }
        }
        let mut videos = Vec::new();
        for control in config.map(|c| c.video_controls.as_slice()).unwrap_or_default() {
            let Some(video) = config.and_then(|c| c.video(&control.to_name)) else {
                continue;
            };
            // A wrong tracker setting is answered at /setup, where Label Studio shows it.
            super::video::check_settings(control).map_err(|e| RouteError::BadTag(e.to_string()))?;
            let model = model_for(control.model_path.as_ref())?;
            videos.push(VideoGroup {
                model,
                control: control.clone(),
                video_key: video.value_key.clone(),
                framerate: video.framerate.clone(),
            });
        }
        // A config with nothing to fill still gets the project's model version, so that
        // connecting the model works before the config is finished.
        if groups.is_empty() && videos.is_empty() {
            groups.push(Group {
                model: registry.route(project)?,
                controls: Vec::new(),
                image_key: first_image.clone(),
            });
        }
        let mut versions: Vec<&str> = Vec::new();
        for model in groups.iter().map(|g| &g.model).chain(videos.iter().map(|v| &v.model)) {
            if !versions.contains(&model.version.as_str()) {
                versions.push(&model.version);
            }
        }
        Ok(Plan {
            version: versions.join("+"),
            groups,
            videos,
            image_key: first_image,
        })
    }

    /// Whether any image control tag is filled.
    pub fn fills_images(&self) -> bool {
        self.groups.iter().any(|g| !g.controls.is_empty())
    }

    /// Whether any control tag is filled at all.
    pub fn fills_anything(&self) -> bool {
        self.fills_images() || !self.videos.is_empty()
    }

    /// The model names, for log lines.
    pub fn model_names(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for model in self
            .groups
            .iter()
            .map(|g| &g.model)
            .chain(self.videos.iter().map(|v| &v.model))
        {
            if !names.contains(&model.name.as_str()) {
                names.push(&model.name);
            }
        }
        names.join("+")
    }
}

/// A `KeyPointLabels` tag against a pose model: every `model_index` must be one of the model's
/// keypoints, and some label must name a keypoint. Without its `<name>_bbox` tag (the official
/// backend's kp configs have none) the points come without parent boxes. A model without
/// keypoints (a detector with a tag for people to place points) is not checked.
fn check_keypoints(control: &Control, model: &LoadedModel) -> Result<(), RouteError> {
    let Some(count) = model.described.keypoints else {
        return Ok(());
    };
    let mismatch = |reason: String| RouteError::Mismatch {
        model: model.name.clone(),
        reason,
    };
    let tag = &control.name;
    if let Some(label) = control
        .labels
        .iter()
        .find(|l| l.model_index.is_some_and(|i| i >= count))
    {
        return Err(mismatch(format!(
            "<KeyPointLabels name=\"{tag}\"> has <Label value=\"{}\" model_index=\"{}\">, but the model gives {count} \
             keypoints per object (model_index 0 to {})",
            label.name,
            label.model_index.unwrap_or_default(),
            count.saturating_sub(1)
        )));
    }
    let named = |name: &str| model.described.keypoint_names.iter().flatten().any(|n| n == name);
    if !control.labels.iter().any(|l| l.model_index.is_some() || named(&l.name)) {
        return Err(mismatch(format!(
            "no <Label> of <KeyPointLabels name=\"{tag}\"> names one of the model's {count} keypoints: give each \
             Label model_index=\"<0 to {}>\" and predicted_values=\"<class>\" (the class may be left out for a \
             one-class model){}",
            count.saturating_sub(1),
            if model.described.keypoint_names.iter().any(|n| !n.is_empty()) {
                ", or a value from the model's keypoint names"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
