//! Reading a session's inputs, outputs and metadata into the plugin ABI's `ModelInfo`.

use ort::{
    session::Session,
    value::{Outlet, TensorElementType, ValueType},
};
use plugin_api::{ElementType, MetadataEntry, ModelInfo, TensorInfo};

pub fn model_info(session: &Session) -> Result<ModelInfo, ort::Error> {
    let metadata = session.metadata()?;
    let mut entries: Vec<MetadataEntry> = metadata
        .custom_keys()?
        .into_iter()
        .filter_map(|key| {
            let value = metadata.custom(&key)?;
            Some(MetadataEntry {
                key: key.into(),
                value: value.into(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ModelInfo {
        inputs: session.inputs().iter().map(tensor_info).collect(),
        outputs: session.outputs().iter().map(tensor_info).collect(),
        metadata: entries.into(),
    })
}

fn tensor_info(outlet: &Outlet) -> TensorInfo {
    let (element_type, shape) = match outlet.dtype() {
        ValueType::Tensor { ty, shape, .. } => (element_type(*ty), shape.to_vec()),
        _ => (ElementType::OTHER, Vec::new()),
    };
    TensorInfo {
        name: outlet.name().into(),
        element_type,
        shape: shape.into(),
    }
}

fn element_type(ty: TensorElementType) -> ElementType {
    match ty {
        TensorElementType::Float32 => ElementType::F32,
        TensorElementType::Float16 => ElementType::F16,
        TensorElementType::Float64 => ElementType::F64,
        TensorElementType::Int64 => ElementType::I64,
        TensorElementType::Int32 => ElementType::I32,
        TensorElementType::Uint8 => ElementType::U8,
        TensorElementType::Int8 => ElementType::I8,
        TensorElementType::Bool => ElementType::BOOL,
        _ => ElementType::OTHER,
    }
}
