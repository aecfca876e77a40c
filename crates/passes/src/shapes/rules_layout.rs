//! Inference for layout and shape ops: Reshape, Flatten, Transpose, Concat, Split, Slice,
//! Gather, Squeeze, Unsqueeze, Shape, Size, Expand, ConstantOfShape, Constant, Tile, Range.

use super::dims::{broadcast, product, quotient};
use super::{Cx, Fact, SymInt};
use kiln_tensor::{DType, Dim, Shape};

pub fn infer(cx: &Cx, op: &str) -> Result<Vec<Fact>, String> {
    let dt = cx.dtype(0);
    let one = |shape: Option<Vec<Dim>>| Ok(vec![Fact::new(dt, shape)]);
    match op {
        "Reshape" => one(reshape(cx)?),
        "Flatten" => one(match cx.shape(0) {
            Some(s) => {
                let a = if cx.attr_i("axis", 1) < 0 { cx.attr_i("axis", 1) + s.len() as i64 } else { cx.attr_i("axis", 1) };
                let a = usize::try_from(a).ok().filter(|&a| a <= s.len()).ok_or("Flatten axis out of range")?;
                Some(vec![product(cx, &s[..a]), product(cx, &s[a..])])
            }
            None => None,
        }),
        "Transpose" => one(match cx.shape(0) {
            Some(s) => {
                let perm: Vec<i64> = cx.n.attr_ints("perm").map_or_else(|| (0..s.len() as i64).rev().collect(), <[i64]>::to_vec);
                if perm.len() != s.len() {
                    return Err(format!("perm {perm:?} does not fit rank {}", s.len()));
                }
                Some(perm.iter().map(|&p| cx.axis(p, s.len()).map(|a| s[a].clone())).collect::<Result<_, _>>()?)
            }
            None => None,
        }),
        "Concat" => one(concat(cx)?),
        "Split" => split(cx),
        "Slice" => one(slice(cx)?),
        "Gather" => one(match (cx.shape(0), cx.shape(1)) {
            (Some(d), Some(i)) => {
                let a = cx.axis(cx.attr_i("axis", 0), d.len())?;
                let mut s = d[..a].to_vec();
                s.extend_from_slice(i);
                s.extend_from_slice(&d[a + 1..]);
                Some(s)
            }
            _ => None,
        }),
        "Squeeze" => one(squeeze(cx)?),
        "Unsqueeze" => one(unsqueeze(cx)?),
        "Shape" => {
            let len = cx.shape(0).map(|s| {
                let r = s.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r);
                (clamp(cx.attr_i("end", r)) - clamp(cx.attr_i("start", 0))).max(0) as usize
            });
            Ok(vec![Fact::new(Some(DType::I64), len.map(|l| vec![Dim::Known(l)]))])
        }
        "Size" => Ok(vec![Fact::new(Some(DType::I64), Some(vec![]))]),
        "Expand" => one(match (cx.shape(0), target(cx, 1)) {
            (Some(x), Some(t)) => Some(broadcast(cx, &[x, &t])?),
            // Unknown target: the output rank is max(rank of X, length of the shape input).
            (Some(x), None) => cx.shape(1).and_then(|s| s.first()?.known()).map(|r| (0..r.max(x.len())).map(|_| cx.fresh()).collect()),
            (None, _) => None,
        }),
        "ConstantOfShape" => {
            let dtype = cx.n.attr_tensor("value").map_or(DType::F32, |t| t.dtype());
            let shape =
                target(cx, 0).or_else(|| cx.shape(0).and_then(|s| s.first()?.known()).map(|r| (0..r).map(|_| cx.fresh()).collect()));
            Ok(vec![Fact::new(Some(dtype), shape)])
        }
        "Constant" => Ok(constant(cx)),
        "Tile" => one(match (cx.shape(0), cx.ints(1)) {
            (Some(x), Some(reps)) if reps.len() == x.len() => Some(
                x.iter()
                    .zip(&reps)
                    .map(|(d, &r)| match (d, r) {
                        (d, 1) => d.clone(),
                        (Dim::Known(n), r) => usize::try_from(r).ok().and_then(|r| n.checked_mul(r)).map_or_else(|| cx.fresh(), Dim::Known),
                        _ => cx.fresh(),
                    })
                    .collect(),
            ),
            _ => None,
        }),
        "Range" => {
            let len = match (cx.constant(0), cx.constant(1), cx.constant(2)) {
                (Some(s), Some(l), Some(d)) => {
                    let f = |t: &kiln_tensor::Tensor| t.to_f64_vec().ok().and_then(|v| v.first().copied());
                    match (f(s), f(l), f(d)) {
                        (Some(s), Some(l), Some(d)) if d != 0.0 => Dim::Known(((l - s) / d).ceil().max(0.0) as usize),
                        _ => cx.fresh(),
                    }
                }
                _ => cx.fresh(),
            };
            one(Some(vec![len]))
        }
        _ => Ok(vec![]),
    }
}

/// A shape given as the values of input `i` (Expand, ConstantOfShape), as dims.
fn target(cx: &Cx, i: usize) -> Option<Vec<Dim>> {
    cx.sv(i)?
        .iter()
        .map(|v| match v {
            SymInt::Int(n) => usize::try_from(*n).ok().map(Dim::Known),
            SymInt::Sym(s) => Some(Dim::Sym(s.clone())),
        })
        .collect()
}

fn reshape(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(t) = cx.sv(1) else {
        // Only the rank is known (from the length of the shape input).
        return Ok(cx.shape(1).and_then(|s| s.first()?.known()).map(|r| (0..r).map(|_| cx.fresh()).collect()));
    };
    let input = cx.shape(0);
    let allowzero = cx.attr_i("allowzero", 0) != 0;
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(t.len());
    for (i, v) in t.iter().enumerate() {
        out.push(match v {
            SymInt::Int(0) if !allowzero => Some(match input.and_then(|s| s.get(i)) {
                Some(d) => d.clone(),
                None => cx.fresh(),
            }),
            SymInt::Int(-1) => None,
            SymInt::Int(n) if *n >= 0 => Some(Dim::Known(*n as usize)),
            SymInt::Int(n) => return Err(format!("Reshape target holds {n}")),
            SymInt::Sym(s) => Some(Dim::Sym(s.clone())),
        });
    }
    let holes = out.iter().filter(|d| d.is_none()).count();
    if holes > 1 {
        return Err("Reshape target holds more than one -1".into());
    }
    if holes == 1 {
        let others: Vec<Dim> = out.iter().flatten().cloned().collect();
        let fill = match input {
            Some(all) => quotient(cx, all, &others)?,
            None => cx.fresh(),
        };
        for d in &mut out {
            if d.is_none() {
                *d = Some(fill.clone());
            }
        }
    }
    Ok(Some(out.into_iter().flatten().collect()))
}

fn concat(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let shapes: Option<Vec<&[Dim]>> = (0..cx.n.inputs.len()).map(|i| cx.shape(i)).collect();
    let Some(shapes) = shapes else { return Ok(None) };
    let Some(first) = shapes.first() else { return Ok(None) };
    let r = first.len();
    if shapes.iter().any(|s| s.len() != r) {
        return Err("Concat inputs differ in rank".into());
    }
    let a = cx.axis(cx.attr_i("axis", 0), r)?;
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let col: Vec<Dim> = shapes.iter().map(|s| s[i].clone()).collect();
        out.push(if i == a {
            let total: Option<usize> = col.iter().map(Dim::known).try_fold(0usize, |acc, d| acc.checked_add(d?));
            match total {
                Some(t) => Dim::Known(t),
                None => {
                    let nonzero: Vec<&Dim> = col.iter().filter(|d| **d != Dim::Known(0)).collect();
                    if let [d] = nonzero.as_slice() { (*d).clone() } else { cx.fresh() }
                }
            }
        } else {
            // Every input has this dim: a known one wins over symbols.
            match col.iter().find(|d| d.known().is_some()) {
                Some(k) => {
                    if col.iter().any(|d| d.known().is_some_and(|v| Some(v) != k.known())) {
                        return Err(format!("Concat inputs differ on axis {i}"));
                    }
                    k.clone()
                }
                None => col[0].clone(),
            }
        });
    }
    Ok(Some(out))
}

fn split(cx: &Cx) -> Result<Vec<Fact>, String> {
    let dt = cx.dtype(0);
    let outs = cx.n.outputs.len();
    let Some(s) = cx.shape(0) else { return Ok(vec![Fact::new(dt, None); outs]) };
    let a = cx.axis(cx.attr_i("axis", 0), s.len())?;
    let sizes: Option<Vec<i64>> = match cx.n.attr_ints("split") {
        Some(v) => Some(v.to_vec()),
        None if cx.has_input(1) => cx.ints(1),
        None => match s[a].known() {
            Some(d) => {
                let parts = cx.n.attr_int("num_outputs").map_or(outs, |k| k.max(1) as usize);
                let chunk = d.div_ceil(parts.max(1));
                Some((0..parts).map(|k| chunk.min(d.saturating_sub(k * chunk)) as i64).collect())
            }
            None => None,
        },
    };
    Ok((0..outs)
        .map(|k| {
            let shape = sizes.as_ref().and_then(|v| v.get(k)).map(|&len| {
                let mut o = s.to_vec();
                o[a] = if len >= 0 { Dim::Known(len as usize) } else { cx.fresh() };
                o
            });
            let shape = shape.or_else(|| {
                let mut o = s.to_vec();
                o[a] = cx.fresh();
                Some(o)
            });
            Fact::new(dt, shape)
        })
        .collect())
}

fn slice(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(s) = cx.shape(0) else { return Ok(None) };
    let r = s.len();
    let (starts, ends, axes, steps) = if let Some(st) = cx.n.attr_ints("starts") {
        (Some(st.to_vec()), cx.n.attr_ints("ends").map(<[i64]>::to_vec), cx.n.attr_ints("axes").map(<[i64]>::to_vec), None)
    } else {
        let opt = |i: usize| if cx.has_input(i) { cx.ints(i).map(Some) } else { Some(None) };
        (cx.ints(1), cx.ints(2), opt(3).flatten(), opt(4).flatten())
    };
    let (Some(starts), Some(ends)) = (starts, ends) else {
        // Bounds computed at run time: the rank is kept, sliced axes are unknown.
        return Ok(Some(s.iter().map(|_| cx.fresh()).collect()));
    };
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps: Vec<i64> = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("Slice starts, ends, axes and steps differ in length".into());
    }
    let mut out = s.to_vec();
    for k in 0..starts.len() {
        let a = cx.axis(axes[k], r)?;
        let (st, en, step) = (starts[k], ends[k], steps[k]);
        if step == 0 {
            return Err("Slice step 0".into());
        }
        out[a] = match &s[a] {
            Dim::Known(d) => {
                let d = *d as i64;
                let norm = |v: i64, lo: i64, hi: i64| (if v < 0 { v + d } else { v }).clamp(lo, hi);
                let len = if step > 0 {
                    let (b, e) = (norm(st, 0, d), norm(en, 0, d));
                    if e > b { (e - b + step - 1) / step } else { 0 }
                } else {
                    let (b, e) = (norm(st, 0, d - 1), norm(en, -1, d - 1));
                    if b > e { (b - e + (-step) - 1) / (-step) } else { 0 }
                };
                Dim::Known(len as usize)
            }
            Dim::Sym(name) if st == 0 && step == 1 && en >= i32::MAX as i64 => Dim::Sym(name.clone()),
            _ => cx.fresh(),
        };
    }
    Ok(Some(out))
}

fn squeeze(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(s) = cx.shape(0) else { return Ok(None) };
    let Some(axes) = cx.axes(1) else { return Ok(None) };
    if axes.is_empty() {
        if s.iter().any(|d| d.known().is_none()) {
            return Ok(None);
        }
        return Ok(Some(s.iter().filter(|d| **d != Dim::Known(1)).cloned().collect()));
    }
    let axes: Vec<usize> = axes.iter().map(|&a| cx.axis(a, s.len())).collect::<Result<_, _>>()?;
    for &a in &axes {
        if let Dim::Known(d) = s[a]
            && d != 1
        {
            return Err(format!("Squeeze axis {a} has size {d}"));
        }
    }
    Ok(Some(s.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| d.clone()).collect()))
}

fn unsqueeze(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(s) = cx.shape(0) else { return Ok(None) };
    let Some(axes) = cx.axes(1) else { return Ok(None) };
    let r = s.len() + axes.len();
    let mut axes: Vec<usize> = axes.iter().map(|&a| cx.axis(a, r)).collect::<Result<_, _>>()?;
    axes.sort_unstable();
    let mut src = s.iter();
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        if axes.contains(&i) {
            out.push(Dim::Known(1));
        } else {
            out.push(src.next().ok_or("Unsqueeze axes repeat")?.clone());
        }
    }
    Ok(Some(out))
}

fn constant(cx: &Cx) -> Vec<Fact> {
    let n = cx.n;
    if let Some(t) = n.attr_tensor("value") {
        return vec![Fact::new(Some(t.dtype()), Some(Shape::known(t.shape()).0))];
    }
    let f = |dtype: DType, shape: Vec<Dim>| vec![Fact::new(Some(dtype), Some(shape))];
    if n.attr_int("value_int").is_some() {
        return f(DType::I64, vec![]);
    }
    if let Some(v) = n.attr_ints("value_ints") {
        return f(DType::I64, vec![Dim::Known(v.len())]);
    }
    if n.attr_float("value_float").is_some() && n.attr_int("value_float").is_none() {
        return f(DType::F32, vec![]);
    }
    if let Some(v) = n.attr_floats("value_floats") {
        return f(DType::F32, vec![Dim::Known(v.len())]);
    }
    vec![]
}
