//! The one error type of the kernels: a caller passed sizes or buffers that do not fit.

/// Kernels check every size and buffer length before touching memory and report a mismatch
/// here instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("{kernel}: {msg}")]
    Invalid { kernel: &'static str, msg: String },
}

pub(crate) fn invalid(kernel: &'static str, msg: impl Into<String>) -> KernelError {
    KernelError::Invalid { kernel, msg: msg.into() }
}

/// Checks that a row-major matrix of `rows x cols` with row stride `ld` fits in `len` elements.
pub(crate) fn check_matrix(kernel: &'static str, name: &str, len: usize, rows: usize, cols: usize, ld: usize) -> Result<(), KernelError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    if ld < cols {
        return Err(invalid(kernel, format!("{name}: row stride {ld} < {cols} columns")));
    }
    let need =
        (rows - 1).checked_mul(ld).and_then(|x| x.checked_add(cols)).ok_or_else(|| invalid(kernel, format!("{name}: size overflows")))?;
    if len < need {
        return Err(invalid(kernel, format!("{name}: {rows}x{cols} (row stride {ld}) needs {need} elements, got {len}")));
    }
    Ok(())
}

/// Checks `len == expected` for a dense buffer.
pub(crate) fn check_len(kernel: &'static str, name: &str, len: usize, expected: usize) -> Result<(), KernelError> {
    if len != expected {
        return Err(invalid(kernel, format!("{name}: expected {expected} elements, got {len}")));
    }
    Ok(())
}

/// `a * b * ...` with overflow reported as an error.
pub(crate) fn checked_product(kernel: &'static str, dims: &[usize]) -> Result<usize, KernelError> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| invalid(kernel, format!("size {dims:?} overflows")))
}
