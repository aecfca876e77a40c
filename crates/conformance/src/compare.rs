use kiln_reference::Value;
use kiln_tensor::{Data, Tensor};

/// Float tolerance: |got - want| <= atol + rtol * |want|. Integers, bools and strings are exact.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

impl Default for Tolerance {
    /// The suite's tolerance: rtol 1e-3, atol 1e-5.
    fn default() -> Self {
        Tolerance { rtol: 1e-3, atol: 1e-5 }
    }
}

/// Compares a produced value with the expected one; Err says what differs and where.
pub fn compare(got: &Value, want: &Value, tol: Tolerance) -> Result<(), String> {
    match (got, want) {
        (Value::Tensor(g), Value::Tensor(w)) => compare_tensor(g, w, tol),
        (Value::Sequence(g), Value::Sequence(w)) => {
            if g.len() != w.len() {
                return Err(format!("sequence of {} tensors, expected {}", g.len(), w.len()));
            }
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                compare_tensor(a, b, tol).map_err(|e| format!("element {i}: {e}"))?;
            }
            Ok(())
        }
        (Value::Optional(g), Value::Optional(w)) => match (g, w) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) => compare(a, b, tol),
            _ => Err(format!("optional is {}, expected {}", some(g), some(w))),
        },
        // An optional holding a value may be compared with that value.
        (Value::Optional(Some(g)), w) => compare(g, w, tol),
        (g, Value::Optional(Some(w))) => compare(g, w, tol),
        (g, w) => Err(format!("got a {}, expected a {}", g.kind(), w.kind())),
    }
}

fn some<T>(o: &Option<T>) -> &'static str {
    if o.is_some() { "present" } else { "empty" }
}

pub fn compare_tensor(g: &Tensor, w: &Tensor, tol: Tolerance) -> Result<(), String> {
    if g.dtype() != w.dtype() {
        return Err(format!("dtype {}, expected {}", g.dtype(), w.dtype()));
    }
    if g.shape() != w.shape() {
        return Err(format!("shape {:?}, expected {:?}", g.shape(), w.shape()));
    }
    if let (Data::String(a), Data::String(b)) = (g.data(), w.data()) {
        return match a.iter().zip(b).position(|(x, y)| x != y) {
            None => Ok(()),
            Some(i) => Err(format!("element {i} is {:?}, expected {:?}", a[i], b[i])),
        };
    }
    if g.dtype().is_float() {
        let (a, b) = (g.to_f64_vec().map_err(|e| e.to_string())?, w.to_f64_vec().map_err(|e| e.to_string())?);
        let mut worst: Option<(usize, f64)> = None;
        let mut bad = 0usize;
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            let ok = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol.atol + tol.rtol * y.abs();
            if !ok {
                bad += 1;
                let d = if (x - y).is_nan() { f64::INFINITY } else { (x - y).abs() };
                if worst.is_none_or(|(_, w)| d > w) {
                    worst = Some((i, d));
                }
            }
        }
        return match worst {
            None => Ok(()),
            Some((i, d)) => Err(format!("{bad} of {} elements differ; worst at {i}: {} vs expected {} (|diff| {d:.3e})", a.len(), a[i], b[i])),
        };
    }
    let (a, b) = (g.to_i64_vec().map_err(|e| e.to_string())?, w.to_i64_vec().map_err(|e| e.to_string())?);
    // u64 values above i64::MAX compare by bits, which is still exact.
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        None => Ok(()),
        Some(i) => Err(format!("element {i} is {}, expected {}", a[i], b[i])),
    }
}
