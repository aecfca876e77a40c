//! The transformer encoder body the BERT family shares: linear layers, LayerNorm, activations,
//! masked multi-head self-attention and the post-norm layer. Families differ in their
//! embeddings and in what they call each weight ([`LayerNames`]); the maths is here once.

use crate::graph::{GraphBuilder, ints};
use crate::{HfError, Weights};
use kiln_ir::{Attr, ValueId};
use kiln_tensor::DType;

/// The feed-forward activation (`hidden_act` / `activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// x * 0.5 * (1 + erf(x / sqrt 2)): "gelu".
    GeluErf,
    /// The tanh approximation: "gelu_new", "gelu_pytorch_tanh", "gelu_fast".
    GeluTanh,
    Relu,
    /// x * sigmoid(x): "silu", "swish".
    Silu,
    /// x * sigmoid(1.702 x): "quick_gelu".
    QuickGelu,
}

impl Activation {
    pub fn from_config(name: &str) -> Result<Activation, HfError> {
        Ok(match name {
            "gelu" | "gelu_python" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "quick_gelu" => Activation::QuickGelu,
            other => {
                return Err(HfError::Unsupported {
                    what: format!("activation \"{other}\""),
                    hint: "Kiln builds gelu, gelu_python, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish and quick_gelu".into(),
                });
            }
        })
    }
}

/// A linear layer's weight ([out, in], PyTorch's layout) and bias names.
pub struct Linear {
    pub weight: String,
    pub bias: String,
}

impl Linear {
    /// `{base}.weight`, `{base}.bias`.
    pub fn at(base: &str) -> Linear {
        Linear { weight: format!("{base}.weight"), bias: format!("{base}.bias") }
    }
}

/// A LayerNorm's scale and shift names.
pub struct Norm {
    pub weight: String,
    pub bias: String,
}

impl Norm {
    pub fn at(base: &str) -> Norm {
        Norm { weight: format!("{base}.weight"), bias: format!("{base}.bias") }
    }
}

/// What one family calls the weights of encoder layer `i`.
pub struct LayerNames {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attn_out: Linear,
    pub attn_norm: Norm,
    pub ff_in: Linear,
    pub ff_out: Linear,
    pub out_norm: Norm,
}

/// The sizes every encoder layer shares.
pub struct EncoderSpec {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub act: Activation,
    pub eps: f32,
}

impl EncoderSpec {
    pub fn check(&self) -> Result<(), HfError> {
        if !self.hidden.is_multiple_of(self.heads) {
            return Err(HfError::Config {
                key: "num_attention_heads".into(),
                reason: format!("({}) does not divide the hidden size ({})", self.heads, self.hidden),
            });
        }
        Ok(())
    }
}

/// `x @ W^T + b` with W kept in the checkpoint's [out, in] layout under its own name (so
/// rebinding a fine-tuned checkpoint by name works on the built graph); the Transpose of a
/// constant is folded by `kiln compile`.
pub fn linear(b: &mut GraphBuilder, w: &Weights, x: ValueId, lin: &Linear, inp: usize, out: usize) -> Result<ValueId, HfError> {
    let weight = b.init(&w.full_name(&lin.weight), w.get(&lin.weight, &[out, inp])?);
    let bias = b.init(&w.full_name(&lin.bias), w.get(&lin.bias, &[out])?);
    let wt = b.op("Transpose", &[weight], vec![("perm", ints(&[1, 0]))]);
    let y = b.op("MatMul", &[x, wt], vec![]);
    Ok(b.op("Add", &[y, bias], vec![]))
}

pub fn layer_norm(b: &mut GraphBuilder, w: &Weights, x: ValueId, norm: &Norm, hidden: usize, eps: f32) -> Result<ValueId, HfError> {
    let scale = b.init(&w.full_name(&norm.weight), w.get(&norm.weight, &[hidden])?);
    let shift = b.init(&w.full_name(&norm.bias), w.get(&norm.bias, &[hidden])?);
    Ok(b.op("LayerNormalization", &[x, scale, shift], vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))]))
}

pub fn activation(b: &mut GraphBuilder, x: ValueId, act: Activation) -> ValueId {
    match act {
        Activation::GeluErf => {
            let sqrt2 = b.scalar_f32("sqrt2", std::f32::consts::SQRT_2);
            let one = b.scalar_f32("one", 1.0);
            let half = b.scalar_f32("half", 0.5);
            let d = b.op("Div", &[x, sqrt2], vec![]);
            let e = b.op("Erf", &[d], vec![]);
            let a = b.op("Add", &[e, one], vec![]);
            let m = b.op("Mul", &[x, a], vec![]);
            b.op("Mul", &[m, half], vec![])
        }
        Activation::GeluTanh => {
            // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            let three = b.scalar_f32("three", 3.0);
            let c = b.scalar_f32("c0044715", 0.044715);
            let k = b.scalar_f32("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt());
            let one = b.scalar_f32("one", 1.0);
            let half = b.scalar_f32("half", 0.5);
            let cube = b.op("Pow", &[x, three], vec![]);
            let cc = b.op("Mul", &[cube, c], vec![]);
            let inner = b.op("Add", &[x, cc], vec![]);
            let scaled = b.op("Mul", &[inner, k], vec![]);
            let t = b.op("Tanh", &[scaled], vec![]);
            let a = b.op("Add", &[t, one], vec![]);
            let m = b.op("Mul", &[x, a], vec![]);
            b.op("Mul", &[m, half], vec![])
        }
        Activation::Relu => b.op("Relu", &[x], vec![]),
        Activation::Silu => {
            let s = b.op("Sigmoid", &[x], vec![]);
            b.op("Mul", &[x, s], vec![])
        }
        Activation::QuickGelu => {
            let k = b.scalar_f32("quick_gelu_k", 1.702);
            let kx = b.op("Mul", &[x, k], vec![]);
            let s = b.op("Sigmoid", &[kx], vec![]);
            b.op("Mul", &[x, s], vec![])
        }
    }
}

/// The attention mask as f32 [batch, sequence] (1 keep, 0 pad).
pub fn mask_f32(b: &mut GraphBuilder, attention_mask: ValueId) -> ValueId {
    b.op("Cast", &[attention_mask], vec![("to", Attr::Int(i64::from(DType::F32.to_onnx())))])
}

/// The additive mask [batch, 1, 1, sequence]: 0 where kept, the lowest f32 where padded (as
/// transformers does), added to the attention scores before Softmax.
pub fn mask_bias(b: &mut GraphBuilder, mask_f: ValueId) -> ValueId {
    let axes = b.const_i64("mask_axes", &[1, 2]);
    let one = b.scalar_f32("one", 1.0);
    let lowest = b.scalar_f32("mask_lowest", f32::MIN);
    let m = b.op("Unsqueeze", &[mask_f, axes], vec![]);
    let inv = b.op("Sub", &[one, m], vec![]);
    b.op("Mul", &[inv, lowest], vec![])
}

/// One post-norm encoder layer: x + attention -> LayerNorm -> + FFN -> LayerNorm.
pub fn layer(b: &mut GraphBuilder, w: &Weights, x: ValueId, mask_bias: ValueId, spec: &EncoderSpec, n: &LayerNames) -> Result<ValueId, HfError> {
    let (h, heads) = (spec.hidden, spec.heads);
    let d = h / heads;
    let split = b.const_i64("split_heads", &[0, 0, heads as i64, d as i64]);
    let merge = b.const_i64("merge_heads", &[0, 0, h as i64]);
    let q = linear(b, w, x, &n.query, h, h)?;
    let k = linear(b, w, x, &n.key, h, h)?;
    let v = linear(b, w, x, &n.value, h, h)?;
    let q = b.op("Reshape", &[q, split], vec![]);
    let q = b.op("Transpose", &[q], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let k = b.op("Reshape", &[k, split], vec![]);
    let k = b.op("Transpose", &[k], vec![("perm", ints(&[0, 2, 3, 1]))]);
    let v = b.op("Reshape", &[v, split], vec![]);
    let v = b.op("Transpose", &[v], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let scale = b.scalar_f32("attn_scale", (d as f32).sqrt());
    let s = b.op("MatMul", &[q, k], vec![]);
    let s = b.op("Div", &[s, scale], vec![]);
    let s = b.op("Add", &[s, mask_bias], vec![]);
    let p = b.op("Softmax", &[s], vec![("axis", Attr::Int(-1))]);
    let ctx = b.op("MatMul", &[p, v], vec![]);
    let ctx = b.op("Transpose", &[ctx], vec![("perm", ints(&[0, 2, 1, 3]))]);
    let ctx = b.op("Reshape", &[ctx, merge], vec![]);
    let a = linear(b, w, ctx, &n.attn_out, h, h)?;
    let a = b.op("Add", &[a, x], vec![]);
    let a = layer_norm(b, w, a, &n.attn_norm, h, spec.eps)?;
    let f = linear(b, w, a, &n.ff_in, h, spec.intermediate)?;
    let f = activation(b, f, spec.act);
    let f = linear(b, w, f, &n.ff_out, spec.intermediate, h)?;
    let f = b.op("Add", &[f, a], vec![]);
    layer_norm(b, w, f, &n.out_norm, h, spec.eps)
}

/// `table[ids]`: an embedding lookup.
pub fn embed(b: &mut GraphBuilder, table: ValueId, ids: ValueId) -> ValueId {
    b.op("Gather", &[table, ids], vec![("axis", Attr::Int(0))])
}

/// 0..sequence as i64 [sequence], from the ids' shape.
pub fn positions(b: &mut GraphBuilder, input_ids: ValueId) -> ValueId {
    let shape = b.op("Shape", &[input_ids], vec![]);
    let one = b.scalar_i64("one_i64", 1);
    let zero = b.scalar_i64("zero_i64", 0);
    let seq = b.op("Gather", &[shape, one], vec![("axis", Attr::Int(0))]);
    b.op("Range", &[zero, seq, one], vec![])
}
