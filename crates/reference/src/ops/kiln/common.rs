//! Running one ai.onnx kernel as a step of a fused op, and the activation epilogue shared by
//! FusedConv and FusedMatMul.

use crate::registry::{Kernel, OpCtx, registry};
use crate::{OpError, bail};
use kiln_ir::{Attr, Node};
use kiln_tensor::{Data, Tensor};
use std::collections::BTreeMap;

/// The ai.onnx opset the steps of a fused op run under (attributes and inputs take their
/// newest form: Clip bounds are inputs, Softmax works on one axis).
pub const STEP_OPSET: i64 = 21;

/// Attributes of a fused node that belong to its activation, not to its main op.
pub const ACTIVATION_ATTRS: &[&str] =
    &["activation", "activation_alpha", "activation_beta", "activation_min", "activation_max", "activation_approximate"];

/// Runs the registered ai.onnx kernel `op` with `attrs` on `inputs`; returns its first output.
pub fn step(ctx: &OpCtx, op: &str, attrs: BTreeMap<String, Attr>, inputs: &[Option<&Tensor>]) -> Result<Tensor, OpError> {
    match step_all(ctx, op, attrs, inputs)?.into_iter().next() {
        Some(t) => Ok(t),
        None => bail!("{op} step produced no output"),
    }
}

/// [`step`] keeping every output (DynamicQuantizeLinear has three).
pub fn step_all(ctx: &OpCtx, op: &str, attrs: BTreeMap<String, Attr>, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let node = Node { name: ctx.node.name.clone(), op_type: op.to_string(), opset: STEP_OPSET, attrs, ..Node::default() };
    let Some(Kernel::Tensor(f)) = registry().lookup("", op, STEP_OPSET) else {
        bail!("no ai.onnx {op} kernel for opset {STEP_OPSET}");
    };
    let cx = OpCtx { node: &node, subgraph: ctx.subgraph };
    f(&cx, inputs)
}

/// The node's attributes without the activation ones: what the main op reads.
pub fn main_attrs(ctx: &OpCtx) -> BTreeMap<String, Attr> {
    ctx.node.attrs.iter().filter(|(k, _)| !ACTIVATION_ATTRS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn float_attr(ctx: &OpCtx, name: &str, onnx_name: &str) -> BTreeMap<String, Attr> {
    let mut m = BTreeMap::new();
    if let Some(v) = ctx.node.attr_float(name) {
        m.insert(onnx_name.to_string(), Attr::Float(v));
    }
    m
}

/// A one-element tensor of `like`'s element type holding `v` (Clip bounds).
fn scalar_like(like: &Tensor, v: f32) -> Result<Tensor, OpError> {
    Ok(Tensor::new(vec![], Data::from_f64_vec(like.dtype(), &[f64::from(v)])?)?)
}

/// Applies the activation named by attribute `activation` (default "none") to `x`:
/// relu, leaky_relu (activation_alpha), clip (activation_min / activation_max, each optional),
/// sigmoid, hard_sigmoid (activation_alpha, activation_beta), hard_swish, tanh,
/// gelu (activation_approximate "none" | "tanh"), silu (x * sigmoid(x)).
pub fn activation(ctx: &OpCtx, x: Tensor) -> Result<Tensor, OpError> {
    let name = ctx.attr_s("activation", "none");
    let none = BTreeMap::new;
    Ok(match name {
        "none" => x,
        "relu" => step(ctx, "Relu", none(), &[Some(&x)])?,
        "leaky_relu" => step(ctx, "LeakyRelu", float_attr(ctx, "activation_alpha", "alpha"), &[Some(&x)])?,
        "clip" => {
            let lo = ctx.node.attr_float("activation_min").map(|v| scalar_like(&x, v)).transpose()?;
            let hi = ctx.node.attr_float("activation_max").map(|v| scalar_like(&x, v)).transpose()?;
            step(ctx, "Clip", none(), &[Some(&x), lo.as_ref(), hi.as_ref()])?
        }
        "sigmoid" => step(ctx, "Sigmoid", none(), &[Some(&x)])?,
        "hard_sigmoid" => {
            let mut attrs = float_attr(ctx, "activation_alpha", "alpha");
            attrs.extend(float_attr(ctx, "activation_beta", "beta"));
            step(ctx, "HardSigmoid", attrs, &[Some(&x)])?
        }
        "hard_swish" => step(ctx, "HardSwish", none(), &[Some(&x)])?,
        "tanh" => step(ctx, "Tanh", none(), &[Some(&x)])?,
        "gelu" => {
            let mut attrs = BTreeMap::new();
            if let Some(a) = ctx.node.attr_str("activation_approximate") {
                attrs.insert("approximate".to_string(), Attr::String(a.as_bytes().to_vec()));
            }
            step(ctx, "Gelu", attrs, &[Some(&x)])?
        }
        "silu" => {
            let s = step(ctx, "Sigmoid", none(), &[Some(&x)])?;
            step(ctx, "Mul", none(), &[Some(&x), Some(&s)])?
        }
        other => bail!(
            "attribute 'activation' must be one of none, relu, leaky_relu, clip, sigmoid, hard_sigmoid, hard_swish, tanh, gelu, silu; got {other:?}"
        ),
    })
}
