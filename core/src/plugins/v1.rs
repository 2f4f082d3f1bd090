//! plugin-api 1.x libraries, served through the 2.x interface.
//!
//! A 1.x plugin has one process-wide adapter (no per-model state), sees one image at a time,
//! takes and returns f32 tensors only, and answers with a flat list of regions. This shim
//! converts each way; the one place the host still has to group shapes into instances is
//! here, because 1.x had no instances: a 1.x segmentation adapter sends the mask, the outline
//! and the box of one object one after the other, with the same class and score.

use abi_stable::std_types::{RResult, RSlice, RString};
use plugin_api::{
    BoxGeometry, ClassScore, Context, ElementType, Fit, FrameOutput, Input, Instance, Keypoint, Mask, ModelInfo,
    Output, PluginError, PluginInfo, Point, Prepared, ROption, RVec, Step, Tensor, TensorRef,
};
use plugin_api_v1 as v1;

/// A 1.x root module, with the plugin-api version it was built against.
pub struct Module {
    module: v1::AdapterModuleRef,
    api_version: String,
}

impl Module {
    pub fn new(module: v1::AdapterModuleRef, api_version: String) -> Self {
        Self { module, api_version }
    }

    pub fn describe(&self) -> Result<PluginInfo, PluginError> {
        let info = (self.module.describe())().into_result().map_err(error)?;
        let tasks: Vec<&str> = info.tasks.iter().map(|t| t.as_str()).collect();
        let mut described = PluginInfo::new(info.name.as_str(), info.version.as_str(), &tasks);
        described.api_version = RString::from(self.api_version.as_str());
        Ok(described)
    }

    /// 1.1 says why it refuses a model as an `Unsupported` error from `accepts`; 1.0 says 0.
    pub fn inspect(&self, model: &ModelInfo) -> Result<Fit, PluginError> {
        match (self.module.accepts())(&model_info(model)).into_result() {
            Ok(score) => Ok(Fit::score(score)),
            Err(e) if e.kind == v1::ErrorKind::Unsupported => Ok(Fit::no(e.message.to_string())),
            Err(e) => Err(error(e)),
        }
    }

    pub fn open(&self, model: &ModelInfo) -> Adapter {
        Adapter {
            module: self.module,
            model: model_info(model),
        }
    }
}

/// A 1.x adapter for one model: the process-wide adapter, and the model it is for.
pub struct Adapter {
    module: v1::AdapterModuleRef,
    model: v1::ModelInfo,
}

/// The 1.x context, carried through the 2.x interface.
struct Carried(v1::Context);

impl Adapter {
    pub fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        let frame = match input.frames() {
            [frame] => frame,
            frames => {
                return Err(PluginError::internal(format!(
                    "a plugin-api 1.x adapter takes one image at a time, not {}",
                    frames.len()
                )));
            }
        };
        let image = v1::ImageRef::new(frame.image.width, frame.image.height, frame.image.pixels());
        let prepared = (self.module.prepare())(&self.model, image, &params(input))
            .into_result()
            .map_err(error)?;
        let inputs = prepared
            .inputs
            .iter()
            .map(|t| Tensor::from_values(t.name.as_str(), t.shape.as_slice(), t.data.as_slice()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Prepared::new(inputs, Context::new(Carried(prepared.context))))
    }

    pub fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let Carried(context) = context.into_inner()?;
        let views = outputs
            .iter()
            .map(|t| Ok(v1::TensorRef::new(t.name(), t.shape(), t.f32s()?)))
            .collect::<Result<Vec<_>, PluginError>>()?;
        let regions: RResult<RVec<v1::Region>, v1::PluginError> =
            (self.module.finish())(&self.model, RSlice::from_slice(&views), context, &params(input));
        let regions = regions.into_result().map_err(error)?;
        Ok(Step::Done(Output::one(group(regions.into_vec()))))
    }
}

fn params(input: &Input<'_>) -> v1::Params {
    v1::Params {
        conf: input.params.conf,
        iou: input.params.iou,
        max_det: input.params.max_det,
    }
}

fn error(e: v1::PluginError) -> PluginError {
    let kind = match e.kind {
        v1::ErrorKind::InvalidInput => plugin_api::ErrorKind::INVALID_INPUT,
        v1::ErrorKind::Unsupported => plugin_api::ErrorKind::UNSUPPORTED,
        v1::ErrorKind::Panic => plugin_api::ErrorKind::PANIC,
        v1::ErrorKind::Internal => plugin_api::ErrorKind::INTERNAL,
    };
    PluginError::new(kind, e.message.to_string())
}

fn element_type(t: v1::ElementType) -> ElementType {
    match t {
        v1::ElementType::F32 => ElementType::F32,
        v1::ElementType::F16 => ElementType::F16,
        v1::ElementType::F64 => ElementType::F64,
        v1::ElementType::I64 => ElementType::I64,
        v1::ElementType::I32 => ElementType::I32,
        v1::ElementType::U8 => ElementType::U8,
        v1::ElementType::I8 => ElementType::I8,
        v1::ElementType::Bool => ElementType::BOOL,
        v1::ElementType::Other => ElementType::OTHER,
    }
}

fn v1_element_type(t: ElementType) -> v1::ElementType {
    [
        v1::ElementType::F32,
        v1::ElementType::F16,
        v1::ElementType::F64,
        v1::ElementType::I64,
        v1::ElementType::I32,
        v1::ElementType::U8,
        v1::ElementType::I8,
        v1::ElementType::Bool,
    ]
    .into_iter()
    .find(|v| element_type(*v) == t)
    .unwrap_or(v1::ElementType::Other)
}

fn model_info(model: &ModelInfo) -> v1::ModelInfo {
    let tensors = |list: &RVec<plugin_api::TensorInfo>| {
        list.iter()
            .map(|t| v1::TensorInfo {
                name: t.name.clone(),
                element_type: v1_element_type(t.element_type),
                shape: t.shape.clone(),
            })
            .collect()
    };
    v1::ModelInfo {
        inputs: tensors(&model.inputs),
        outputs: tensors(&model.outputs),
        metadata: model
            .metadata
            .iter()
            .map(|e| v1::MetadataEntry {
                key: e.key.clone(),
                value: e.value.clone(),
            })
            .collect(),
    }
}

/// Regions into instances: a run of regions with the same class and score that brings no
/// second shape of a kind is one object.
fn group(regions: Vec<v1::Region>) -> FrameOutput {
    let mut out = FrameOutput::default();
    let mut current: Option<Instance> = None;
    for region in regions {
        if matches!(region.geometry, v1::Geometry::Class) {
            out.classes.push(ClassScore {
                class_id: region.class_id,
                score: region.score,
            });
            continue;
        }
        let joins = current.as_ref().is_some_and(|i| {
            i.class_id == region.class_id
                && i.score.to_bits() == region.score.to_bits()
                && !has_kind(i, &region.geometry)
        });
        if !joins && let Some(done) = current.take() {
            out.instances.push(done);
        }
        let instance = current.get_or_insert_with(|| Instance::new(region.class_id, region.score));
        match region.geometry {
            v1::Geometry::Box(b) => {
                instance.bbox = ROption::RSome(BoxGeometry {
                    x: b.x,
                    y: b.y,
                    width: b.width,
                    height: b.height,
                    rotation: b.rotation,
                })
            }
            v1::Geometry::Polygon(points) => instance
                .polygons
                .push(points.iter().map(|p| Point { x: p.x, y: p.y }).collect()),
            v1::Geometry::Mask(m) => {
                instance.mask = ROption::RSome(Mask {
                    width: m.width,
                    height: m.height,
                    runs: m.runs,
                })
            }
            v1::Geometry::Keypoints(points) => {
                instance.keypoints = points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Keypoint {
                        index: i as u32,
                        x: p.x,
                        y: p.y,
                        score: p.score,
                    })
                    .collect()
            }
            v1::Geometry::Class => {}
        }
    }
    out.instances.extend(current);
    out
}

fn has_kind(instance: &Instance, geometry: &v1::Geometry) -> bool {
    match geometry {
        v1::Geometry::Box(_) => instance.bbox.is_some(),
        v1::Geometry::Polygon(_) => !instance.polygons.is_empty(),
        v1::Geometry::Mask(_) => instance.mask.is_some(),
        v1::Geometry::Keypoints(_) => !instance.keypoints.is_empty(),
        v1::Geometry::Class => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(class_id: u32, score: f32, geometry: v1::Geometry) -> v1::Region {
        v1::Region {
            class_id,
            score,
            geometry,
        }
    }

    fn rect(x: f32) -> v1::Geometry {
        v1::Geometry::Box(v1::BoxGeometry {
            x,
            y: 0.0,
            width: 1.0,
            height: 1.0,
            rotation: 0.0,
        })
    }

    fn mask() -> v1::Geometry {
        v1::Geometry::Mask(v1::Mask {
            width: 1,
            height: 1,
            runs: vec![0, 1].into(),
        })
    }

    #[test]
    fn a_segmentation_run_of_mask_outline_and_box_is_one_instance() {
        let outline = v1::Geometry::Polygon(vec![v1::Point { x: 0.0, y: 0.0 }].into());
        let out = group(vec![
            region(1, 0.9, mask()),
            region(1, 0.9, outline),
            region(1, 0.9, rect(0.0)),
            // The next object has the same class and score: its mask starts a new instance.
            region(1, 0.9, mask()),
            region(1, 0.9, rect(5.0)),
            region(0, 0.5, v1::Geometry::Class),
        ]);
        assert_eq!(out.instances.len(), 2);
        let first = &out.instances[0];
        assert!(first.mask.is_some() && first.bbox.is_some() && first.polygons.len() == 1);
        assert_eq!(out.instances[1].bbox.map(|b| b.x), ROption::RSome(5.0));
        assert_eq!(out.classes.len(), 1);
    }

    #[test]
    fn boxes_are_one_instance_each_even_with_equal_scores() {
        let out = group(vec![
            region(0, 0.5, rect(0.0)),
            region(0, 0.5, rect(1.0)),
            region(2, 0.4, rect(2.0)),
        ]);
        assert_eq!(out.instances.len(), 3);
    }
}
