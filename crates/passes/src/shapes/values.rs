//! Shape values: small integer tensors whose elements are tracked, possibly symbolically,
//! from `Shape` through Gather, Slice, Concat, Unsqueeze, Cast, arithmetic, Equal and Where,
//! so that Reshape / Expand / ConstantOfShape targets computed at run time still give shapes.

use super::Cx;
use kiln_tensor::{DType, Dim, Tensor};

/// Integer tensors of at most this many elements are tracked.
const MAX_TRACKED: usize = 64;

/// One element of a shape value: a known integer or a named dim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SymInt {
    Int(i64),
    Sym(String),
}

impl SymInt {
    pub fn int(&self) -> Option<i64> {
        if let SymInt::Int(v) = self { Some(*v) } else { None }
    }
    pub fn from_dim(d: &Dim) -> SymInt {
        match d {
            Dim::Known(n) => SymInt::Int(*n as i64),
            Dim::Sym(s) => SymInt::Sym(s.clone()),
        }
    }
}

/// The elements of a small constant integer tensor of rank <= 1.
pub fn of_tensor(t: &Tensor) -> Option<Vec<SymInt>> {
    if !t.dtype().is_int() || t.rank() > 1 || t.len() > MAX_TRACKED {
        return None;
    }
    Some(t.to_i64_vec().ok()?.into_iter().map(SymInt::Int).collect())
}

/// Shape values of a node's outputs (None where an output is not tracked).
pub fn propagate(cx: &Cx) -> Vec<Option<Vec<SymInt>>> {
    vec![first_output(cx)]
}

fn first_output(cx: &Cx) -> Option<Vec<SymInt>> {
    let n = cx.n;
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return None;
    }
    match n.op_type.as_str() {
        "Constant" => of_tensor(n.attr_tensor("value")?).or_else(|| {
            let v = n.attr_int("value_int").map(|v| vec![v]).or_else(|| n.attr_ints("value_ints").map(<[i64]>::to_vec))?;
            (v.len() <= MAX_TRACKED).then(|| v.into_iter().map(SymInt::Int).collect())
        }),
        "Shape" => {
            let dims = cx.shape(0)?;
            let r = dims.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let start = clamp(cx.attr_i("start", 0));
            let end = clamp(cx.attr_i("end", r));
            Some(dims.get(start..end.max(start))?.iter().map(SymInt::from_dim).collect())
        }
        "Size" => {
            let total = cx.shape(0)?.iter().try_fold(1i64, |acc, d| acc.checked_mul(i64::try_from(d.known()?).ok()?))?;
            Some(vec![SymInt::Int(total)])
        }
        "Identity" | "Squeeze" | "Unsqueeze" | "Reshape" | "Flatten" => cx.sv(0).map(<[SymInt]>::to_vec),
        "Cast" => {
            let to = DType::from_onnx(n.attr_int("to")? as i32)?;
            if to.is_int() { cx.sv(0).map(<[SymInt]>::to_vec) } else { None }
        }
        "Gather" => {
            let data = cx.sv(0)?;
            if cx.rank(0) != Some(1) || cx.attr_i("axis", 0) != 0 {
                return None;
            }
            let len = data.len() as i64;
            cx.ints(1)?
                .into_iter()
                .map(|i| {
                    let i = if i < 0 { i + len } else { i };
                    data.get(usize::try_from(i).ok()?).cloned()
                })
                .collect()
        }
        "Concat" => {
            let mut out = Vec::new();
            for i in 0..n.inputs.len() {
                out.extend_from_slice(cx.sv(i)?);
            }
            Some(out)
        }
        "Slice" => slice(cx),
        "Add" | "Sub" | "Mul" | "Div" | "Equal" => binary(cx, &n.op_type),
        "Where" => {
            let (c, a, b) = (cx.sv(0)?, cx.sv(1)?, cx.sv(2)?);
            let len = c.len().max(a.len()).max(b.len());
            let at = |v: &[SymInt], i: usize| if v.len() == 1 { v.first().cloned() } else { v.get(i).cloned() };
            (0..len).map(|i| if at(c, i)?.int()? != 0 { at(a, i) } else { at(b, i) }).collect()
        }
        "ConstantOfShape" => {
            let count = cx.ints(0)?.iter().try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))?;
            let value = match n.attr_tensor("value") {
                Some(t) if t.dtype().is_int() => *t.to_i64_vec().ok()?.first()?,
                Some(_) => return None,
                None => return None, // float zeros by default: not a shape
            };
            (count <= MAX_TRACKED).then(|| vec![SymInt::Int(value); count])
        }
        _ => None,
    }
}

fn slice(cx: &Cx) -> Option<Vec<SymInt>> {
    let data = cx.sv(0)?;
    let (starts, ends, axes, steps) = if let Some(s) = cx.n.attr_ints("starts") {
        (s.to_vec(), cx.n.attr_ints("ends")?.to_vec(), cx.n.attr_ints("axes").map(<[i64]>::to_vec), None)
    } else {
        let axes = if cx.has_input(3) { Some(cx.ints(3)?) } else { None };
        let steps = if cx.has_input(4) { Some(cx.ints(4)?) } else { None };
        (cx.ints(1)?, cx.ints(2)?, axes, steps)
    };
    if starts.len() != 1 || ends.len() != 1 || axes.as_ref().is_some_and(|a| a.as_slice() != [0] && a.as_slice() != [-1]) {
        return None;
    }
    let step = steps.and_then(|s| s.first().copied()).unwrap_or(1);
    if step == 0 {
        return None;
    }
    let len = data.len() as i64;
    let norm = |v: i64, lo: i64, hi: i64| (if v < 0 { v + len } else { v }).clamp(lo, hi);
    let (mut i, end) = if step > 0 {
        (norm(starts[0], 0, len), norm(ends[0], 0, len))
    } else {
        (norm(starts[0], -1, len - 1), norm(ends[0], -1, len - 1))
    };
    let mut out = Vec::new();
    while (step > 0 && i < end) || (step < 0 && i > end) {
        out.push(data.get(usize::try_from(i).ok()?)?.clone());
        i += step;
    }
    Some(out)
}

fn binary(cx: &Cx, op: &str) -> Option<Vec<SymInt>> {
    let (a, b) = (cx.sv(0)?, cx.sv(1)?);
    let len = if a.len() == 1 {
        b.len()
    } else if b.len() == 1 || a.len() == b.len() {
        a.len()
    } else {
        return None;
    };
    let at = |v: &[SymInt], i: usize| if v.len() == 1 { v.first().cloned() } else { v.get(i).cloned() };
    (0..len)
        .map(|i| {
            let (x, y) = (at(a, i)?, at(b, i)?);
            use SymInt::{Int, Sym};
            Some(match (op, x, y) {
                ("Add", Int(p), Int(q)) => Int(p.checked_add(q)?),
                ("Sub", Int(p), Int(q)) => Int(p.checked_sub(q)?),
                ("Mul", Int(p), Int(q)) => Int(p.checked_mul(q)?),
                ("Div", Int(p), Int(q)) if q != 0 => Int(p / q),
                ("Equal", Int(p), Int(q)) => Int(i64::from(p == q)),
                // Symbols are dims: never negative.
                ("Equal", Sym(_), Int(q)) | ("Equal", Int(q), Sym(_)) if q < 0 => Int(0),
                ("Equal", Sym(s), Sym(t)) if s == t => Int(1),
                ("Add" | "Sub", Sym(s), Int(0)) | ("Add", Int(0), Sym(s)) => Sym(s),
                ("Mul" | "Div", Sym(s), Int(1)) | ("Mul", Int(1), Sym(s)) => Sym(s),
                _ => return None,
            })
        })
        .collect()
}
