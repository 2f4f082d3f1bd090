//! Typed tensors: an element type, a shape and the elements' bytes.
//!
//! An owned [`Tensor`] keeps its bytes in 8-byte words, so a view of them as any element
//! type is aligned and needs no copy; the host hands outputs over the same way.

use abi_stable::{
    StableAbi,
    std_types::{RSlice, RStr, RString, RVec},
};

use crate::{ElementType, PluginError};

/// A Rust type that is the element of a tensor.
pub trait Element: bytemuck::Pod {
    const TYPE: ElementType;
}

macro_rules! elements {
    ($($rust:ty => $element:ident),*) => {
        $(impl Element for $rust {
            const TYPE: ElementType = ElementType::$element;
        })*
    };
}

// f16 travels as its IEEE 754 bits, in a u16.
elements!(f32 => F32, f64 => F64, i64 => I64, i32 => I32, u8 => U8, i8 => I8, u16 => F16);

fn elements(shape: &[i64]) -> Result<usize, PluginError> {
    shape.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .ok()
            .and_then(|d| n.checked_mul(d))
            .ok_or_else(|| PluginError::invalid_input(format!("the shape {shape:?} is not a tensor's")))
    })
}

/// An owned tensor, as `prepare` returns the model's inputs.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: RString,
    pub element_type: ElementType,
    pub shape: RVec<i64>,
    words: RVec<u64>,
    len: u64,
}

impl Tensor {
    /// A tensor of zero bytes, to fill in place with [`Tensor::values_mut`].
    pub fn zeros(name: &str, element_type: ElementType, shape: &[i64]) -> Result<Self, PluginError> {
        let size = element_type
            .size()
            .ok_or_else(|| PluginError::unsupported(format!("tensors of {element_type} are not supported")))?;
        let len = elements(shape)?
            .checked_mul(size)
            .ok_or_else(|| PluginError::invalid_input("the tensor is too large"))?;
        Ok(Self {
            name: RString::from(name),
            element_type,
            shape: RVec::from(shape.to_vec()),
            words: RVec::from(vec![0u64; len.div_ceil(8)]),
            len: len as u64,
        })
    }

    /// A tensor holding a copy of `values`.
    pub fn from_values<T: Element>(name: &str, shape: &[i64], values: &[T]) -> Result<Self, PluginError> {
        let mut tensor = Self::zeros(name, T::TYPE, shape)?;
        let target = tensor.values_mut::<T>()?;
        if target.len() != values.len() {
            return Err(PluginError::invalid_input(format!(
                "{} values do not fill the shape {shape:?}",
                values.len()
            )));
        }
        target.copy_from_slice(values);
        Ok(tensor)
    }

    /// A tensor holding a copy of `bytes`, the elements in the machine's byte order.
    pub fn from_bytes(name: &str, element_type: ElementType, shape: &[i64], bytes: &[u8]) -> Result<Self, PluginError> {
        let mut tensor = Self::zeros(name, element_type, shape)?;
        if tensor.len as usize != bytes.len() {
            return Err(PluginError::invalid_input(format!(
                "{} bytes do not fill a {element_type} tensor of shape {shape:?}",
                bytes.len()
            )));
        }
        let len = bytes.len();
        bytemuck::cast_slice_mut::<u64, u8>(tensor.words.as_mut_slice())[..len].copy_from_slice(bytes);
        Ok(tensor)
    }

    /// The tensor's bytes, in the machine's byte order.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(self.words.as_slice())[..self.len as usize]
    }

    /// The elements, if they are of type `T`.
    pub fn values<T: Element>(&self) -> Result<&[T], PluginError> {
        check_type::<T>(&self.name, self.element_type)?;
        Ok(bytemuck::cast_slice(self.bytes()))
    }

    /// The elements, writable, if they are of type `T`.
    pub fn values_mut<T: Element>(&mut self) -> Result<&mut [T], PluginError> {
        check_type::<T>(&self.name, self.element_type)?;
        let len = self.len as usize;
        Ok(bytemuck::cast_slice_mut(
            &mut bytemuck::cast_slice_mut::<u64, u8>(self.words.as_mut_slice())[..len],
        ))
    }

    pub fn view(&self) -> TensorRef<'_> {
        TensorRef {
            name: self.name.as_rstr(),
            element_type: self.element_type,
            shape: self.shape.as_rslice(),
            data: RSlice::from_slice(self.bytes()),
        }
    }
}

fn check_type<T: Element>(name: &str, actual: ElementType) -> Result<(), PluginError> {
    if actual == T::TYPE {
        Ok(())
    } else {
        Err(PluginError::unsupported(format!(
            "tensor `{name}` holds {actual}, not {}",
            T::TYPE
        )))
    }
}

/// A borrowed tensor, as the host hands the model's outputs to `finish`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub name: RStr<'a>,
    pub element_type: ElementType,
    pub shape: RSlice<'a, i64>,
    pub data: RSlice<'a, u8>,
}

impl<'a> TensorRef<'a> {
    /// A view of typed values.
    pub fn new<T: Element>(name: &'a str, shape: &'a [i64], values: &'a [T]) -> Self {
        Self {
            name: RStr::from_str(name),
            element_type: T::TYPE,
            shape: RSlice::from_slice(shape),
            data: RSlice::from_slice(bytemuck::cast_slice(values)),
        }
    }

    pub fn name(&self) -> &'a str {
        self.name.as_str()
    }

    pub fn shape(&self) -> &'a [i64] {
        self.shape.as_slice()
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.data.as_slice()
    }

    /// The elements, if they are of type `T` (the host's buffers are always aligned for it).
    pub fn values<T: Element>(&self) -> Result<&'a [T], PluginError> {
        check_type::<T>(self.name(), self.element_type)?;
        bytemuck::try_cast_slice(self.bytes())
            .map_err(|e| PluginError::invalid_input(format!("tensor `{}`: {e}", self.name())))
    }

    /// The f32 elements: the common case.
    pub fn f32s(&self) -> Result<&'a [f32], PluginError> {
        self.values::<f32>()
    }

    /// Item `index` along the first (batch) axis, as a tensor with a batch axis of 1 whose
    /// shape is kept in `shape`.
    pub fn batch_item<'s>(&self, index: usize, shape: &'s mut Vec<i64>) -> Result<TensorRef<'s>, PluginError>
    where
        'a: 's,
    {
        let full = self.shape();
        let (&batch, rest) = full
            .split_first()
            .ok_or_else(|| PluginError::invalid_input(format!("tensor `{}` has no batch axis", self.name())))?;
        if index as i64 >= batch {
            return Err(PluginError::invalid_input(format!(
                "tensor `{}` holds {batch} items, not {}",
                self.name(),
                index + 1
            )));
        }
        let size = self.element_type.size().unwrap_or(1);
        let item = elements(rest)? * size;
        let bytes = self
            .bytes()
            .get(index * item..(index + 1) * item)
            .ok_or_else(|| PluginError::invalid_input(format!("tensor `{}` is shorter than its shape", self.name())))?;
        shape.clear();
        shape.push(1);
        shape.extend_from_slice(rest);
        Ok(TensorRef {
            name: self.name,
            element_type: self.element_type,
            shape: RSlice::from_slice(shape.as_slice()),
            data: RSlice::from_slice(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip_without_copies() {
        let mut t = Tensor::zeros("x", ElementType::F32, &[1, 3]).expect("tensor");
        t.values_mut::<f32>().expect("f32").copy_from_slice(&[1.0, 2.5, -3.0]);
        assert_eq!(t.bytes().len(), 12);
        assert_eq!(t.view().f32s().expect("view"), &[1.0, 2.5, -3.0]);
        assert!(t.values::<i64>().is_err(), "another type is refused");
        let ids = Tensor::from_values("ids", &[2], &[7i64, -1]).expect("i64");
        assert_eq!(ids.element_type, ElementType::I64);
        assert_eq!(ids.view().values::<i64>().expect("i64"), &[7, -1]);
        let half = Tensor::from_values("h", &[1], &[0x3c00u16]).expect("f16");
        assert_eq!(half.element_type, ElementType::F16);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Tensor::zeros("x", ElementType::F32, &[-1, 3]).is_err());
        assert!(Tensor::from_values("x", &[2, 2], &[1u8, 2, 3]).is_err());
        assert!(Tensor::zeros("x", ElementType::OTHER, &[1]).is_err());
    }

    #[test]
    fn batch_items_are_views_of_one_item() {
        let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let shape = [3i64, 2, 2];
        let t = TensorRef::new("out", &shape, &values);
        let mut item_shape = Vec::new();
        let second = t.batch_item(1, &mut item_shape).expect("item");
        assert_eq!(second.shape(), &[1, 2, 2]);
        assert_eq!(second.f32s().expect("f32"), &[4.0, 5.0, 6.0, 7.0]);
        assert!(t.batch_item(3, &mut Vec::new()).is_err());
    }
}
