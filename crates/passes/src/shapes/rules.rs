//! Per-op inference of output element types and shapes: elementwise ops, matrix products,
//! convolutions and pools, reductions, normalisations, and the kiln fused ops. Layout ops
//! (Reshape, Transpose, Concat, Slice, ...) are in `rules_layout`.

use super::dims::{Window, broadcast};
use super::{Cx, Fact, rules_layout};
use kiln_tensor::{DType, Dim};

/// Facts of each output of the node (shorter than the outputs, or empty, where unknown).
pub fn infer(cx: &Cx) -> Result<Vec<Fact>, String> {
    let n = cx.n;
    let op = n.op_type.as_str();
    if n.domain == "kiln" {
        return kiln(cx, op);
    }
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return Ok(vec![]);
    }
    let same = || Ok(vec![Fact::new(cx.dtype(0), cx.shape(0).map(<[Dim]>::to_vec))]);
    match op {
        "Identity"
        | "Abs"
        | "Neg"
        | "Sqrt"
        | "Exp"
        | "Log"
        | "Reciprocal"
        | "Ceil"
        | "Floor"
        | "Round"
        | "Sign"
        | "Sin"
        | "Cos"
        | "Tan"
        | "Asin"
        | "Acos"
        | "Atan"
        | "Sinh"
        | "Cosh"
        | "Asinh"
        | "Acosh"
        | "Atanh"
        | "Tanh"
        | "Erf"
        | "Not"
        | "BitwiseNot"
        | "Relu"
        | "LeakyRelu"
        | "Elu"
        | "Selu"
        | "Celu"
        | "Sigmoid"
        | "HardSigmoid"
        | "HardSwish"
        | "Softplus"
        | "Softsign"
        | "Gelu"
        | "Mish"
        | "ThresholdedRelu"
        | "Shrink"
        | "Softmax"
        | "LogSoftmax"
        | "Hardmax"
        | "LRN"
        | "CumSum"
        | "InstanceNormalization"
        | "GroupNormalization"
        | "LpNormalization"
        | "MeanVarianceNormalization"
        | "Clip" => same(),
        "Dropout" => {
            let mut out = same()?;
            out.push(Fact::new(Some(DType::Bool), cx.shape(0).map(<[Dim]>::to_vec)));
            Ok(out)
        }
        "BatchNormalization" | "LayerNormalization" => same().map(|mut v| {
            v.truncate(1);
            v
        }),
        // The slope broadcasts to X (by numpy rules, or along the channel axis before opset 7).
        "PRelu" => Ok(vec![Fact::new(cx.dtype(0), cx.shape(0).map(<[Dim]>::to_vec))]),
        "IsNaN" | "IsInf" => Ok(vec![Fact::new(Some(DType::Bool), cx.shape(0).map(<[Dim]>::to_vec))]),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "BitShift" | "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" | "Sum" | "Mean" | "Max"
        | "Min" => broadcast_op(cx, cx.dtype(0), 0..n.inputs.len()),
        "And" | "Or" | "Xor" | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            broadcast_op(cx, Some(DType::Bool), 0..n.inputs.len())
        }
        "Where" => broadcast_op(cx, cx.dtype(1).or(cx.dtype(2)), 0..3),
        "Cast" => {
            let to = n.attr_int("to").and_then(|c| DType::from_onnx(c as i32));
            Ok(vec![Fact::new(to, cx.shape(0).map(<[Dim]>::to_vec))])
        }
        "CastLike" => Ok(vec![Fact::new(cx.dtype(1), cx.shape(0).map(<[Dim]>::to_vec))]),
        "MatMul" => Ok(vec![Fact::new(cx.dtype(0), matmul(cx, cx.shape(0), cx.shape(1))?)]),
        "Gemm" => Ok(vec![Fact::new(cx.dtype(0), gemm(cx))]),
        "Conv" => Ok(vec![Fact::new(cx.dtype(0), conv(cx)?)]),
        "MaxPool" | "AveragePool" | "LpPool" => {
            let shape = pool(cx)?;
            Ok(vec![Fact::new(cx.dtype(0), shape.clone()), Fact::new(Some(DType::I64), shape)])
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            let shape = cx.shape(0).map(|s| s.iter().enumerate().map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) }).collect());
            Ok(vec![Fact::new(cx.dtype(0), shape)])
        }
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceSumSquare" | "ReduceLogSumExp" | "ReduceLogSum"
        | "ReduceL1" | "ReduceL2" => Ok(vec![Fact::new(cx.dtype(0), reduce(cx)?)]),
        "ArgMax" | "ArgMin" => {
            let shape = match cx.shape(0) {
                Some(s) => {
                    let a = cx.axis(cx.attr_i("axis", 0), s.len())?;
                    Some(keep_or_drop(s, &[a], cx.attr_i("keepdims", 1) != 0))
                }
                None => None,
            };
            Ok(vec![Fact::new(Some(DType::I64), shape)])
        }
        _ => match super::rules_resize::infer(cx, op)? {
            Some(facts) => Ok(facts),
            None => match super::rules_quant::infer(cx, op)? {
                Some(facts) => Ok(facts),
                None => rules_layout::infer(cx, op),
            },
        },
    }
}

/// Output of a broadcasting op over the inputs in `range`.
fn broadcast_op(cx: &Cx, dtype: Option<DType>, range: std::ops::Range<usize>) -> Result<Vec<Fact>, String> {
    let shapes: Option<Vec<&[Dim]>> = range.map(|i| cx.shape(i)).collect();
    let shape = match shapes {
        Some(s) if !s.is_empty() => Some(broadcast(cx, &s)?),
        _ => None,
    };
    Ok(vec![Fact::new(dtype, shape)])
}

/// Numpy matmul of two shapes (1-D promotion, broadcast batch axes).
pub fn matmul(cx: &Cx, a: Option<&[Dim]>, b: Option<&[Dim]>) -> Result<Option<Vec<Dim>>, String> {
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(None);
    };
    if a.is_empty() || b.is_empty() {
        return Err("MatMul inputs must have rank >= 1".into());
    }
    let a2: Vec<Dim> = if a.len() == 1 { vec![Dim::Known(1), a[0].clone()] } else { a.to_vec() };
    let b2: Vec<Dim> = if b.len() == 1 { vec![b[0].clone(), Dim::Known(1)] } else { b.to_vec() };
    let (ka, kb) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if let (Dim::Known(p), Dim::Known(q)) = (ka, kb)
        && p != q
    {
        return Err(format!("MatMul inner dimensions differ: {} x {}", super::shape_text(a), super::shape_text(b)));
    }
    let mut out = broadcast(cx, &[&a2[..a2.len() - 2], &b2[..b2.len() - 2]])?;
    if a.len() > 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if b.len() > 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Ok(Some(out))
}

fn gemm(cx: &Cx) -> Option<Vec<Dim>> {
    let (a, b) = (cx.shape(0)?, cx.shape(1)?);
    if a.len() != 2 || b.len() != 2 {
        return None;
    }
    let m = if cx.attr_i("transA", 0) != 0 { &a[1] } else { &a[0] };
    let n = if cx.attr_i("transB", 0) != 0 { &b[0] } else { &b[1] };
    Some(vec![m.clone(), n.clone()])
}

fn window_attrs<'a>(cx: &'a Cx, kernel: &[usize], ceil_mode: bool) -> Result<Vec<Window<'a>>, String> {
    let k = kernel.len();
    let list = |name: &str| -> Result<Vec<usize>, String> {
        match cx.n.attr_ints(name) {
            None => Ok(vec![1; k]),
            Some(v) if v.len() == k && v.iter().all(|&x| x >= 1) => Ok(v.iter().map(|&x| x as usize).collect()),
            Some(v) => Err(format!("attribute '{name}' must hold {k} positive values, got {v:?}")),
        }
    };
    let (strides, dilations) = (list("strides")?, list("dilations")?);
    let pads: Vec<usize> = match cx.n.attr_ints("pads") {
        None => vec![0; 2 * k],
        Some(p) if p.len() == 2 * k && p.iter().all(|&x| x >= 0) => p.iter().map(|&x| x as usize).collect(),
        Some(p) => {
            return Err(format!("attribute 'pads' must hold {} non-negative values, got {p:?}", 2 * k));
        }
    };
    let auto_pad = cx.n.attr_str("auto_pad").unwrap_or("NOTSET");
    Ok((0..k)
        .map(|i| Window {
            kernel: kernel[i],
            stride: strides[i],
            dilation: dilations[i],
            pads: (pads[i], pads[i + k]),
            auto_pad,
            ceil_mode,
        })
        .collect())
}

/// Conv (and FusedConv): (N, M, spatial out...) when the kernel size is known.
pub fn conv(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    conv_w(cx, 1)
}

/// `conv` with the weights at input `wi` (kiln::QConv's are at 3).
pub(super) fn conv_w(cx: &Cx, wi: usize) -> Result<Option<Vec<Dim>>, String> {
    let (Some(x), Some(w)) = (cx.shape(0), cx.shape(wi)) else {
        return Ok(None);
    };
    if x.len() < 3 || w.len() != x.len() {
        return Err(format!("Conv needs X of rank >= 3 and W of the same rank, got {} and {}", super::shape_text(x), super::shape_text(w)));
    }
    let kernel: Option<Vec<usize>> = match cx.n.attr_ints("kernel_shape") {
        Some(k) => k.iter().map(|&v| usize::try_from(v).ok()).collect(),
        None => w[2..].iter().map(Dim::known).collect(),
    };
    let mut out = vec![x[0].clone(), w[0].clone()];
    match kernel {
        Some(k) if k.len() == x.len() - 2 => {
            for (win, d) in window_attrs(cx, &k, false)?.iter().zip(&x[2..]) {
                out.push(win.output(cx, d)?);
            }
        }
        _ => out.extend((2..x.len()).map(|_| cx.fresh())),
    }
    Ok(Some(out))
}

/// `conv` for channels-last X `[N, spatial.., C]`: the output `[N, spatial out.., M]`.
fn conv_nhwc(cx: &Cx, x: &[Dim], wi: usize) -> Result<Option<Vec<Dim>>, String> {
    let (Some(w), true) = (cx.shape(wi), x.len() >= 3) else {
        return Ok(None);
    };
    let kernel: Option<Vec<usize>> = match cx.n.attr_ints("kernel_shape") {
        Some(k) => k.iter().map(|&v| usize::try_from(v).ok()).collect(),
        None => w[2..].iter().map(Dim::known).collect(),
    };
    let spatial = &x[1..x.len() - 1];
    let mut out = vec![x[0].clone()];
    match kernel {
        Some(k) if k.len() == spatial.len() => {
            for (win, d) in window_attrs(cx, &k, false)?.iter().zip(spatial) {
                out.push(win.output(cx, d)?);
            }
        }
        _ => out.extend(spatial.iter().map(|_| cx.fresh())),
    }
    out.push(w.first().cloned().unwrap_or_else(|| cx.fresh()));
    Ok(Some(out))
}

fn pool(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(x) = cx.shape(0) else {
        return Ok(None);
    };
    let Some(k) = cx.n.attr_ints("kernel_shape") else {
        return Ok(None);
    };
    if x.len() != k.len() + 2 {
        return Err(format!("kernel_shape {k:?} does not fit input {}", super::shape_text(x)));
    }
    let k: Vec<usize> = k.iter().map(|&v| v.max(1) as usize).collect();
    let mut out = x[..2].to_vec();
    for (win, d) in window_attrs(cx, &k, cx.attr_i("ceil_mode", 0) != 0)?.iter().zip(&x[2..]) {
        out.push(win.output(cx, d)?);
    }
    Ok(Some(out))
}

fn keep_or_drop(s: &[Dim], axes: &[usize], keep: bool) -> Vec<Dim> {
    s.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

fn reduce(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(s) = cx.shape(0) else {
        return Ok(None);
    };
    let keep = cx.attr_i("keepdims", 1) != 0;
    let Some(axes) = cx.axes(1) else {
        // Axes computed at run time: only the rank is known when dims are kept.
        return Ok(keep.then(|| s.iter().map(|_| cx.fresh()).collect()));
    };
    let axes: Vec<usize> = if axes.is_empty() {
        if cx.attr_i("noop_with_empty_axes", 0) != 0 {
            return Ok(Some(s.to_vec()));
        }
        (0..s.len()).collect()
    } else {
        axes.iter().map(|&a| cx.axis(a, s.len())).collect::<Result<_, _>>()?
    };
    Ok(Some(keep_or_drop(s, &axes, keep)))
}

fn kiln(cx: &Cx, op: &str) -> Result<Vec<Fact>, String> {
    match op {
        "FusedConv" | "QConv" if cx.n.attr_str("layout") == Some("NHWC") => {
            // Channels last: infer as NCHW on a permuted view of X, then move channels back.
            let Some(x) = cx.shape(0) else {
                return Ok(vec![Fact::new(cx.dtype(0), None)]);
            };
            let y = conv_nhwc(cx, x, if op == "QConv" { 3 } else { 1 })?;
            Ok(vec![Fact::new(cx.dtype(0), y)])
        }
        "FusedConv" => Ok(vec![Fact::new(cx.dtype(0), conv(cx)?)]),
        "QConv" => Ok(vec![Fact::new(cx.dtype(0), conv_w(cx, 3)?)]),
        // Float in, float out; the weights are [K, N] at input 3, the bias keeps the shape.
        "QMatMul" => Ok(vec![Fact::new(cx.dtype(0), matmul(cx, cx.shape(0), cx.shape(3))?)]),
        // Float in, float out; the low-precision weights are [K, N] at input 1.
        "WMatMul" => Ok(vec![Fact::new(cx.dtype(0), matmul(cx, cx.shape(0), cx.shape(1))?)]),
        "FusedMatMul" => {
            let gemm_form = ["transA", "transB", "alpha", "beta"].iter().any(|k| cx.n.attrs.contains_key(*k));
            let shape = if gemm_form {
                gemm(cx)
            } else {
                let p = matmul(cx, cx.shape(0), cx.shape(1))?;
                match (p, cx.shape(2)) {
                    (Some(p), Some(c)) => Some(broadcast(cx, &[&p, c])?),
                    (p, None) if !cx.has_input(2) => p,
                    _ => None,
                }
            };
            Ok(vec![Fact::new(cx.dtype(0), shape)])
        }
        // A chain keeps its input's shape and type.
        "Chain" => Ok(vec![Fact::new(cx.dtype(0), cx.shape(0).map(<[Dim]>::to_vec))]),
        "Attention" if cx.attr_i("num_heads", 0) > 0 => Ok(vec![Fact::new(cx.dtype(0), heads_in_columns(cx)?)]),
        "Attention" => {
            // Q (.., n, d) x K' (.., d, m) -> (.., n, m); then x V (.., m, dv).
            let k_t: Option<Vec<Dim>> = cx.shape(1).map(|k| {
                let mut k = k.to_vec();
                if cx.attr_i("k_transposed", 0) == 0 && k.len() >= 2 {
                    let r = k.len();
                    k.swap(r - 2, r - 1);
                }
                k
            });
            let scores = matmul(cx, cx.shape(0), k_t.as_deref())?;
            Ok(vec![Fact::new(cx.dtype(0), matmul(cx, scores.as_deref(), cx.shape(2))?)])
        }
        _ => Ok(vec![]),
    }
}

/// kiln::Attention with `num_heads`: Q `[b, n, h*d]`, V `[b, m, h*dv]` -> `[b, n, h*dv]`; Q
/// alone is `[b, n, 3*h*d]` (Q, K, V side by side) -> `[b, n, h*d]`.
fn heads_in_columns(cx: &Cx) -> Result<Option<Vec<Dim>>, String> {
    let Some(q) = cx.shape(0) else { return Ok(None) };
    if q.len() != 3 {
        return Err(format!("Attention with num_heads takes Q of rank 3, got {}", super::shape_text(q)));
    }
    if !cx.has_input(1) && !cx.has_input(2) {
        let last = match q[2] {
            Dim::Known(c) if c % 3 == 0 => Dim::Known(c / 3),
            Dim::Known(c) => return Err(format!("packed Q, K, V of {c} columns is not a multiple of 3")),
            Dim::Sym(_) => cx.fresh(),
        };
        return Ok(Some(vec![q[0].clone(), q[1].clone(), last]));
    }
    let (Some(k), Some(v)) = (cx.shape(1), cx.shape(2)) else { return Ok(None) };
    if k.len() != 3 || v.len() != 3 {
        return Err("Attention with num_heads takes K and V of rank 3".into());
    }
    let batch = broadcast(cx, &[&q[..1], &k[..1], &v[..1]])?;
    Ok(Some(vec![batch[0].clone(), q[1].clone(), v[2].clone()]))
}
