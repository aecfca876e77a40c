//! What every collector of observed activations (range observers, channel maxima, Hessians)
//! does first with a tensor it is fed: find the value, and read the tensor as f32.

use crate::QuantError;
use kiln_tensor::{DType, Tensor};
use std::borrow::Cow;

/// The error for a value no collector observes, listing those it does.
pub(crate) fn not_observed<'a>(value: &str, known: impl Iterator<Item = &'a String>) -> QuantError {
    QuantError::NotObserved { value: value.to_string(), known: known.cloned().collect::<Vec<_>>().join(", ") }
}

/// `t`'s elements as f32: borrowed when f32, widened from the other float types, refused
/// (naming `value`) otherwise.
pub(crate) fn f32_values<'a>(value: &str, t: &'a Tensor) -> Result<Cow<'a, [f32]>, QuantError> {
    let wrong = || QuantError::NotFloat { value: value.to_string(), dtype: t.dtype() };
    match t.dtype() {
        DType::F32 => Ok(Cow::Borrowed(t.as_slice::<f32>().map_err(|_| wrong())?)),
        d if d.is_float() => Ok(Cow::Owned(t.cast(DType::F32).map_err(|_| wrong())?.as_slice::<f32>().map_err(|_| wrong())?.to_vec())),
        _ => Err(wrong()),
    }
}
