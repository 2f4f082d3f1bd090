//! A project's annotated tasks as an Ultralytics dataset on disk: each image downloaded
//! through the media client (same policies, cache and EXIF handling as predictions),
//! written upright as PNG, with its label file, split into train and val by task id.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::yolo_dataset::{self, Label, Plan, Split, TrainTask};
use labelstudio_protocol::label_config::LabelConfig;
use serde_json::Value;

use super::record::DatasetSummary;
use super::{Handle, JobError};
use ls_core::{imaging, worker::off_executor as blocking};
use ls_labelstudio::api::LabelStudioApi;

const PAGE_SIZE: u64 = 100;

/// One annotated task that made it into the dataset.
pub struct Example {
    pub split: Split,
    /// The image as written (upright PNG).
    pub image: PathBuf,
    /// The annotation's regions, for scoring models on the val split.
    pub result: Vec<Value>,
}

pub struct Dataset {
    pub plan: Plan,
    /// What the trainer takes as `data`: the yaml, or for classification the folder.
    pub data: PathBuf,
    pub examples: Vec<Example>,
    /// Counts of what was read and what was left out, for the job's result.
    pub counts: BTreeMap<&'static str, u64>,
}

impl Dataset {
    pub fn val(&self) -> impl Iterator<Item = &Example> {
        self.examples.iter().filter(|e| e.split == Split::Val)
    }

    pub fn summary(&self) -> DatasetSummary {
        DatasetSummary {
            task: self.plan.task.ultralytics().to_string(),
            control: self.plan.control.clone(),
            classes: self.plan.classes.clone(),
            counts: self.counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

/// Every task of a project, page by page.
pub async fn all_tasks(
    api: &LabelStudioApi,
    project: u64,
    job: &Handle,
    progress: (f64, f64),
) -> Result<Vec<Value>, JobError> {
    let mut tasks = Vec::new();
    for page in 1.. {
        job.check()?;
        let got = api.tasks_page(project, page, PAGE_SIZE).await?;
        let done = got.tasks.len() < PAGE_SIZE as usize;
        tasks.extend(got.tasks);
        let total = got.total.unwrap_or(tasks.len() as u64).max(1);
        let share = (tasks.len() as f64 / total as f64).min(1.0);
        job.progress(
            progress.0 + (progress.1 - progress.0) * share,
            format!("reading tasks: {} of {total}", tasks.len()),
        );
        if done || got.total.is_some_and(|t| tasks.len() as u64 >= t) {
            break;
        }
    }
    Ok(tasks)
}

fn task_id(task: &Value) -> Option<u64> {
    task.get("id").and_then(Value::as_u64)
}

/// Builds the dataset in `root` from the project's tasks. Tasks without a usable annotation,
/// skipped annotations, unknown labels and images that cannot be read are counted and
/// reported, not fatal; a dataset without anything to train on is.
pub async fn build(
    api: &Arc<LabelStudioApi>,
    config_xml: &str,
    tasks: &[Value],
    root: &Path,
    max_pixels: u64,
    job: &Handle,
    progress: (f64, f64),
) -> Result<Dataset, JobError> {
    let config = LabelConfig::parse(config_xml).map_err(|e| JobError::Failed(format!("the project's {e}")))?;
    let annotated: Vec<(&Value, &Value)> = tasks
        .iter()
        .filter_map(|t| yolo_dataset::latest_annotation(t).map(|a| (t, a)))
        .collect();
    let seen = annotated.iter().filter_map(|(_, a)| a.get("result"));
    let plan = yolo_dataset::plan(&config, seen).map_err(|e| JobError::Failed(e.to_string()))?;
    let image_key = plan.value_key.clone();

    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    counts.insert("tasks", tasks.len() as u64);
    counts.insert("annotated", annotated.len() as u64);
    let cancelled = tasks
        .iter()
        .filter(|t| {
            t.get("annotations")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a.get("was_cancelled") == Some(&Value::Bool(true))))
        })
        .count() as u64;
    counts.insert("only_skipped_annotations", cancelled);
    counts.insert(
        "without_annotations",
        tasks.len() as u64 - annotated.len() as u64 - cancelled,
    );
    if annotated.is_empty() {
        return Err(JobError::Failed(format!(
            "project has no annotated tasks to train on ({} tasks, {} without annotations, {} with only skipped \
             annotations)",
            tasks.len(),
            counts["without_annotations"],
            cancelled
        )));
    }

    let ids: Vec<u64> = annotated.iter().map(|(t, _)| task_id(t).unwrap_or(0)).collect();
    let splits = yolo_dataset::split_all(&ids);
    {
        let (dir, classify) = (root.to_path_buf(), plan.task == TrainTask::Classify);
        let classes = plan.classes.clone();
        blocking(move || -> std::io::Result<()> {
            for split in ["train", "val"] {
                if classify {
                    for class in &classes {
                        std::fs::create_dir_all(dir.join(split).join(class_dir(class)))?;
                    }
                } else {
                    std::fs::create_dir_all(dir.join("images").join(split))?;
                    std::fs::create_dir_all(dir.join("labels").join(split))?;
                }
            }
            Ok(())
        })
        .await?
        .map_err(|e| JobError::Failed(format!("cannot create the dataset folder {}: {e}", root.display())))?;
    }

    let mut examples = Vec::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let total = annotated.len();
    for (i, ((task, annotation), split)) in annotated.iter().zip(splits).enumerate() {
        job.check()?;
        let id = task_id(task).unwrap_or(0);
        job.progress(
            progress.0 + (progress.1 - progress.0) * (i as f64 / total as f64),
            format!("downloading images: {}/{total}", i + 1),
        );
        let Some(reference) = task.pointer(&format!("/data/{}", image_key)).and_then(Value::as_str) else {
            *counts.entry("without_image").or_default() += 1;
            continue;
        };
        let bytes = match api.media().fetch(reference, task.get("id")).await {
            Ok(bytes) => bytes,
            Err(e) => {
                *counts.entry("image_failed").or_default() += 1;
                job.warn(format!("task {id}: {e}; left out"));
                continue;
            }
        };
        let result: Vec<Value> = annotation
            .get("result")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (plan_c, result_c, root_c) = (plan.clone(), result.clone(), root.to_path_buf());
        let written =
            blocking(move || write_example(&plan_c, &root_c, id, split, &bytes, &result_c, max_pixels)).await?;
        match written {
            Ok((example, skips)) => {
                for skip in skips {
                    *skipped.entry(skip).or_default() += 1;
                }
                if let Some(example) = example {
                    examples.push(Example { result, ..example });
                } else {
                    *counts.entry("no_usable_region").or_default() += 1;
                }
            }
            Err(e) => {
                *counts.entry("image_failed").or_default() += 1;
                job.warn(format!("task {id}: {e}; left out"));
            }
        }
    }
    for (why, n) in &skipped {
        job.warn(format!("{n} region(s) left out: {why}"));
    }
    counts.insert("regions_left_out", skipped.values().sum());
    let train = examples.iter().filter(|e| e.split == Split::Train).count() as u64;
    let val = examples.len() as u64 - train;
    counts.insert("train", train);
    counts.insert("val", val);
    if train == 0 || val == 0 {
        return Err(JobError::Failed(format!(
            "too little to train on: {} usable annotated image(s) ({train} for training, {val} for validation); \
             training needs at least one of each",
            examples.len()
        )));
    }
    let data = if plan.task == TrainTask::Classify {
        root.to_path_buf()
    } else {
        let yaml = root.join("data.yaml");
        let text = yolo_dataset::data_yaml(&plan, &root.display().to_string());
        let path = yaml.clone();
        blocking(move || std::fs::write(&path, text))
            .await?
            .map_err(|e| JobError::Failed(format!("cannot write {}: {e}", yaml.display())))?;
        yaml
    };
    Ok(Dataset {
        plan,
        data,
        examples,
        counts,
    })
}

/// The labels in the order a classifier trained on these folders numbers its classes: by
/// folder name, as Ultralytics (torchvision's ImageFolder) sorts them.
pub fn classes_by_folder(classes: &[String]) -> Vec<String> {
    let mut by_folder: Vec<(String, &String)> = classes.iter().map(|c| (class_dir(c), c)).collect();
    by_folder.sort();
    by_folder.into_iter().map(|(_, c)| c.clone()).collect()
}

/// A class name as a folder name: Ultralytics' classification datasets are folders per class.
fn class_dir(class: &str) -> String {
    class
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Decodes, writes the image upright and its label. `None` for an image with nothing to
/// learn from (a classification task without a known choice). Blocking.
fn write_example(
    plan: &Plan,
    root: &Path,
    id: u64,
    split: Split,
    bytes: &[u8],
    result: &[Value],
    max_pixels: u64,
) -> Result<(Option<Example>, Vec<String>), String> {
    let image = imaging::decode(bytes, max_pixels).map_err(|e| e.to_string())?;
    let converted = yolo_dataset::convert(plan, result, image.width, image.height);
    let skips: Vec<String> = converted.skipped.iter().map(ToString::to_string).collect();
    let file = format!("task-{id}.png");
    let path = match &converted.label {
        Label::Class(class) => root
            .join(split.dir())
            .join(class_dir(plan.classes.get(*class).map(String::as_str).unwrap_or("?")))
            .join(&file),
        Label::Empty if plan.task == TrainTask::Classify => return Ok((None, skips)),
        _ => root.join("images").join(split.dir()).join(&file),
    };
    let rgb = image::RgbImage::from_raw(image.width, image.height, image.pixels)
        .ok_or_else(|| "the decoded image has the wrong size".to_string())?;
    rgb.save_with_format(&path, image::ImageFormat::Png)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if plan.task != TrainTask::Classify {
        let label = root.join("labels").join(split.dir()).join(format!("task-{id}.txt"));
        std::fs::write(&label, converted.label.file_text())
            .map_err(|e| format!("cannot write {}: {e}", label.display()))?;
    }
    Ok((
        Some(Example {
            split,
            image: path,
            result: Vec::new(),
        }),
        skips,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classifier_numbers_its_classes_by_folder_name() {
        let labels: Vec<String> = ["Dog", "cat", "bird/other", "Ant"].map(String::from).to_vec();
        assert_eq!(class_dir("bird/other"), "bird_other");
        // Byte order, as Python's sorted(): upper case first.
        assert_eq!(classes_by_folder(&labels), ["Ant", "Dog", "bird/other", "cat"]);
    }
}
