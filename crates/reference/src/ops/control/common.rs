//! Helpers shared by the control-flow, sequence, string and signal kernels: reading runtime
//! values, and dtype-agnostic data movement (gather by flat index, concatenate, stack, slice).

use crate::{OpError, Value, bail};
use kiln_tensor::{DType, Data, Tensor};

/// Input `i` of a value kernel, which the op requires.
pub fn req_value<'v>(inputs: &[Option<&'v Value>], i: usize) -> Result<&'v Value, OpError> {
    inputs.get(i).copied().flatten().ok_or_else(|| OpError::Invalid(format!("input {i} is required")))
}

/// Input `i` of a value kernel if given.
pub fn opt_value<'v>(inputs: &[Option<&'v Value>], i: usize) -> Option<&'v Value> {
    inputs.get(i).copied().flatten()
}

/// Input `i` of a value kernel, which must be a tensor.
pub fn req_tensor<'v>(inputs: &[Option<&'v Value>], i: usize) -> Result<&'v Tensor, OpError> {
    as_tensor(req_value(inputs, i)?, i)
}

/// Input `i` of a value kernel if given, which must then be a tensor.
pub fn opt_tensor<'v>(inputs: &[Option<&'v Value>], i: usize) -> Result<Option<&'v Tensor>, OpError> {
    opt_value(inputs, i).map(|v| as_tensor(v, i)).transpose()
}

fn as_tensor(v: &Value, i: usize) -> Result<&Tensor, OpError> {
    v.as_tensor().ok_or_else(|| OpError::Invalid(format!("input {i} must be a tensor, found a {}", v.kind())))
}

/// Input `i` of a value kernel, which must be a sequence.
pub fn req_sequence<'v>(inputs: &[Option<&'v Value>], i: usize) -> Result<&'v [Tensor], OpError> {
    match req_value(inputs, i)? {
        Value::Sequence(s) => Ok(s),
        other => bail!("input {i} must be a sequence, found a {}", other.kind()),
    }
}

/// The single element of a one-element tensor as i64 (an int or float tensor).
pub fn scalar_i64(t: &Tensor, what: &str) -> Result<i64, OpError> {
    if t.len() != 1 || t.dtype() == DType::String {
        bail!("'{what}' must be a one-element numeric tensor, got {} of shape {:?}", t.dtype(), t.shape());
    }
    let v = t.to_i64_vec()?;
    v.first().copied().ok_or_else(|| OpError::Invalid(format!("'{what}' is empty")))
}

/// The single element of a one-element tensor as f64.
pub fn scalar_f64(t: &Tensor, what: &str) -> Result<f64, OpError> {
    if t.len() != 1 || t.dtype() == DType::String {
        bail!("'{what}' must be a one-element numeric tensor, got {} of shape {:?}", t.dtype(), t.shape());
    }
    let v = t.to_f64_vec()?;
    v.first().copied().ok_or_else(|| OpError::Invalid(format!("'{what}' is empty")))
}

/// The single element of a one-element bool (or numeric) tensor as a bool.
pub fn scalar_bool(t: &Tensor, what: &str) -> Result<bool, OpError> {
    Ok(scalar_f64(t, what)? != 0.0)
}

/// The ONNX dtype code of an attribute like `output_datatype` as a Kiln dtype.
pub fn dtype_attr(code: i64, name: &str) -> Result<DType, OpError> {
    i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx)
        .ok_or_else(|| OpError::Invalid(format!("attribute '{name}' must be a supported ONNX element type, got {code}")))
}

/// Builds a float tensor of `dtype` (f32/f64/f16/bf16 or any numeric type) from f64 values.
pub fn from_f64(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor, OpError> {
    Ok(Tensor::new(shape, Data::from_f64_vec(dtype, v)?)?)
}

/// Maps a position (possibly negative) into `0..=len` (`inclusive_end`) or `0..len`.
pub fn position(p: i64, len: usize, inclusive_end: bool) -> Result<usize, OpError> {
    let n = len as i64;
    let v = if p < 0 { p + n } else { p };
    let hi = if inclusive_end { n } else { n - 1 };
    if v < 0 || v > hi {
        bail!("position {p} is out of range for a sequence of {len} tensors");
    }
    Ok(v as usize)
}

macro_rules! each_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => Data::F32($body),
            Data::F64($v) => Data::F64($body),
            Data::F16($v) => Data::F16($body),
            Data::BF16($v) => Data::BF16($body),
            Data::I64($v) => Data::I64($body),
            Data::I32($v) => Data::I32($body),
            Data::I16($v) => Data::I16($body),
            Data::I8($v) => Data::I8($body),
            Data::U8($v) => Data::U8($body),
            Data::U16($v) => Data::U16($body),
            Data::U32($v) => Data::U32($body),
            Data::U64($v) => Data::U64($body),
            Data::Bool($v) => Data::Bool($body),
            Data::I4($v) => Data::I4($body),
            Data::U4($v) => Data::U4($body),
            Data::String($v) => Data::String($body),
        }
    };
}

/// The elements of `data` at flat indices `idx`, in order; every index must be in range.
pub fn take(data: &Data, idx: &[usize]) -> Result<Data, OpError> {
    let n = data.len();
    if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
        bail!("index {bad} is out of range for {n} elements");
    }
    Ok(each_data!(data, v => gather(v, idx)))
}

fn gather<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

/// Appends the elements of several same-dtype data blocks.
pub fn concat_data(parts: &[&Data]) -> Result<Data, OpError> {
    let Some(first) = parts.first() else { bail!("nothing to concatenate") };
    let dtype = first.dtype();
    if let Some(p) = parts.iter().find(|p| p.dtype() != dtype) {
        bail!("cannot concatenate {} with {}", dtype, p.dtype());
    }
    let mut out = Data::zeros(dtype, 0);
    for p in parts {
        append(&mut out, p);
    }
    Ok(out)
}

fn append(out: &mut Data, p: &Data) {
    macro_rules! ext {
        ($($var:ident),*) => {
            match (out, p) {
                $((Data::$var(o), Data::$var(v)) => o.extend_from_slice(v),)*
                _ => {}
            }
        };
    }
    ext!(F32, F64, F16, BF16, I64, I32, I16, I8, U8, U16, U32, U64, Bool, I4, U4, String);
}

/// Concatenates tensors along `axis`; all shapes must agree elsewhere.
pub fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor, OpError> {
    let Some(first) = parts.first() else { bail!("nothing to concatenate") };
    let rank = first.rank();
    if axis >= rank {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    for p in parts {
        let same = p.rank() == rank && (0..rank).all(|d| d == axis || p.shape()[d] == first.shape()[d]);
        if !same {
            bail!("cannot concatenate shapes {:?} and {:?} along axis {axis}", first.shape(), p.shape());
        }
    }
    let outer: usize = first.shape()[..axis].iter().product();
    let inner: usize = first.shape()[axis + 1..].iter().product();
    let datas: Vec<&Data> = parts.iter().map(|p| p.data()).collect();
    let all = concat_data(&datas)?;
    // Flat offsets of each part inside `all`.
    let mut offsets = Vec::with_capacity(parts.len());
    let mut off = 0;
    for p in parts {
        offsets.push(off);
        off += p.len();
    }
    let mut idx = Vec::with_capacity(all.len());
    for o in 0..outer {
        for (p, &start) in parts.iter().zip(&offsets) {
            let chunk = p.shape()[axis] * inner;
            idx.extend(start + o * chunk..start + (o + 1) * chunk);
        }
    }
    let mut shape = first.shape().to_vec();
    shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
    Ok(Tensor::new(shape, take(&all, &idx)?)?)
}

/// Stacks same-shape tensors along a new axis `axis` (0..=rank).
pub fn stack(parts: &[&Tensor], axis: usize) -> Result<Tensor, OpError> {
    let Some(first) = parts.first() else { bail!("nothing to stack") };
    if axis > first.rank() {
        bail!("axis {axis} is out of range for stacking rank {} tensors", first.rank());
    }
    let mut expanded = Vec::with_capacity(parts.len());
    for p in parts {
        if p.shape() != first.shape() {
            bail!("cannot stack shapes {:?} and {:?}", first.shape(), p.shape());
        }
        let mut s = p.shape().to_vec();
        s.insert(axis, 1);
        expanded.push((*p).clone().reshape(s)?);
    }
    let refs: Vec<&Tensor> = expanded.iter().collect();
    concat(&refs, axis)
}

/// The elements `start..start + len` along `axis`, keeping the axis.
pub fn narrow(t: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor, OpError> {
    let shape = t.shape();
    if axis >= shape.len() || start + len > shape[axis] {
        bail!("range {start}..{} along axis {axis} is out of bounds for shape {shape:?}", start + len);
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = o * shape[axis] * inner + start * inner;
        idx.extend(base..base + len * inner);
    }
    let mut out_shape = shape.to_vec();
    out_shape[axis] = len;
    Ok(Tensor::new(out_shape, take(t.data(), &idx)?)?)
}

/// The slice at `index` along `axis`, with that axis removed.
pub fn select(t: &Tensor, axis: usize, index: usize) -> Result<Tensor, OpError> {
    let n = narrow(t, axis, index, 1)?;
    let mut shape = n.shape().to_vec();
    shape.remove(axis);
    Ok(n.reshape(shape)?)
}

/// A tensor of `dtype` whose shape is `shape`, with `n` zero elements along a new axis 0.
pub fn empty_stacked(dtype: DType, shape: &[usize]) -> Tensor {
    let mut s = vec![0];
    s.extend_from_slice(shape);
    Tensor::zeros(dtype, s)
}

/// A value's tensor, or an error naming what was found.
pub fn value_tensor(v: Value, what: &str) -> Result<Tensor, OpError> {
    match v {
        Value::Tensor(t) => Ok(t),
        other => bail!("{what} must be a tensor, found a {}", other.kind()),
    }
}
