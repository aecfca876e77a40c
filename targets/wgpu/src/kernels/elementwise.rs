//! `wgpu.elementwise`: single elementwise ops and `kiln::Chain` runs, one WGSL shader generated
//! per step (the chain's ops inlined in order), numpy broadcasting through per-operand strides.

use super::act::{PRELUDE, binary, is_binary, step_float, step_ints, unary};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, PARAMS_WGSL, dispatch, groups_1d, pipeline};
use kiln_target::{AttrValue, Step};

pub const KERNEL: &str = "wgpu.elementwise";

/// Workgroup sizes, default first.
pub const VARIANTS: &[&str] = &["wg64", "wg128", "wg256"];

/// The expression over loaded operands `v0..vk`, or None when some op has no WGSL form.
fn expression(step: &Step, weight: &dyn Fn(usize) -> Option<kiln_tensor::Tensor>) -> Option<(String, usize)> {
    if step.domain == "kiln" && step.op == "Chain" {
        let ops = match step.attrs.get("ops") {
            Some(AttrValue::Strings(v)) => v.clone(),
            _ => return None,
        };
        let floats = |k: &str| match step.attrs.get(k) {
            Some(AttrValue::Floats(v)) => v.clone(),
            _ => Vec::new(),
        };
        let (operands, swap, alpha, beta) = (step_ints(step, "operands")?, step_ints(step, "swap")?, floats("alpha"), floats("beta"));
        let n = ops.len();
        if operands.len() != n || swap.len() != n || alpha.len() != n || beta.len() != n {
            return None;
        }
        let mut acc = "v0".to_string();
        let mut body = String::new();
        for i in 0..n {
            let e = if is_binary(&ops[i]) {
                let k = usize::try_from(operands[i]).ok().filter(|&k| k >= 1 && k < step.inputs.len())?;
                let o = format!("v{k}");
                if swap[i] != 0 { binary(&ops[i], &o, &acc)? } else { binary(&ops[i], &acc, &o)? }
            } else {
                unary(&ops[i], alpha[i], beta[i], &acc)?
            };
            body.push_str(&format!("    let t{i} = {e};\n"));
            acc = format!("t{i}");
        }
        body.push_str(&format!("    y[i] = to_st({acc});\n"));
        return Some((body, step.inputs.len()));
    }
    if !step.domain.is_empty() {
        return None;
    }
    let f = |k: &str| step_float(step, k);
    let e = match step.op.as_str() {
        op if is_binary(op) => binary(op, "v0", "v1")?,
        "Clip" if step.opset < 11 => unary("Clip", f("min").unwrap_or(f32::NEG_INFINITY), f("max").unwrap_or(f32::INFINITY), "v0")?,
        "Clip" => {
            // Bounds are optional constant scalar inputs from opset 11.
            let bound = |i: usize, dflt: f32| -> Option<f32> {
                match step.inputs.get(i).copied().flatten() {
                    None => Some(dflt),
                    Some(v) => weight(v)?.as_slice::<f32>().ok()?.first().copied(),
                }
            };
            unary("Clip", bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?, "v0")?
        }
        "HardSigmoid" => unary("HardSigmoid", f("alpha").unwrap_or(0.2), f("beta").unwrap_or(0.5), "v0")?,
        "LeakyRelu" => unary("LeakyRelu", f("alpha").unwrap_or(0.01), 0.0, "v0")?,
        "Gelu" => match super::act::step_str(step, "approximate").unwrap_or("none") {
            "none" => unary("Gelu", 0.0, 0.0, "v0")?,
            "tanh" => unary("GeluTanh", 0.0, 0.0, "v0")?,
            _ => return None,
        },
        op => unary(op, 0.0, 0.0, "v0")?,
    };
    let arity = if is_binary(&step.op) { 2 } else { 1 };
    Some((format!("    y[i] = to_st({e});\n"), arity))
}

/// The shader: operands and output stored as `float`, the math in f32 registers (memory
/// bound either way; f16 would lose the erf / tanh approximations' accuracy and overflow exp
/// past 11).
fn shader(float: Float, body: &str, arity: usize, wg: u32) -> String {
    let mut s = format!("{}{PARAMS_WGSL}", float.header());
    for j in 0..arity {
        s.push_str(&format!("@group(0) @binding({}) var<storage, read> x{j}: array<ST>;\n", j + 1));
    }
    s.push_str(&format!("@group(0) @binding({}) var<storage, read_write> y: array<ST>;\n", arity + 1));
    s.push_str(PRELUDE);
    // p: [n, rank, dims[rank], strides of operand 0 [rank], strides of operand 1 [rank], ...]
    s.push_str(&format!(
        "@compute @workgroup_size({wg})\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {{\n\
         \x20   let i = gid.x + gid.y * nw.x * {wg}u;\n    if (i >= P(0u)) {{ return; }}\n    let r = P(1u);\n    var rem = i;\n"
    ));
    for j in 0..arity {
        s.push_str(&format!("    var o{j}: u32 = 0u;\n"));
    }
    s.push_str("    for (var d: i32 = i32(r) - 1; d >= 0; d = d - 1) {\n        let dim = P(2u + u32(d));\n        let c = rem % dim;\n        rem = rem / dim;\n");
    for j in 0..arity {
        s.push_str(&format!("        o{j} = o{j} + c * P(2u + r * {}u + u32(d));\n", j + 1));
    }
    s.push_str("    }\n");
    for j in 0..arity {
        s.push_str(&format!("    let v{j} = f32(x{j}[o{j}]);\n"));
    }
    s.push_str(body);
    s.push_str("}\n");
    s
}

pub fn workgroup(variant: &str) -> u32 {
    variant.strip_prefix("wg").and_then(|w| w.parse().ok()).unwrap_or(64)
}

/// Numpy broadcasting of the operand shapes.
pub fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (k, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + k];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("shapes {shapes:?} do not broadcast"));
            }
        }
    }
    Ok(out)
}

/// Strides of `shape` read as `out` (0 on broadcast dims).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<u32> {
    let mut st = vec![0u32; out.len()];
    let mut acc = 1usize;
    for k in (0..shape.len()).rev() {
        let o = out.len() - shape.len() + k;
        st[o] = if shape[k] == 1 && out[o] != 1 { 0 } else { acc as u32 };
        acc *= shape[k];
    }
    st
}

pub struct Elementwise {
    pipeline: wgpu::ComputePipeline,
    arity: usize,
    /// A chain keeps X's shape; a single op broadcasts all operands.
    chain: bool,
    wg: u32,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let (body, arity) = expression(step, cx.weight).ok_or("an op of this step has no WGSL form")?;
    let wg = workgroup(&step.variant);
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &shader(super::precision(step)?, &body, arity, wg)).map_err(|e| e.to_string())?;
    Ok(Box::new(Elementwise { pipeline: p, arity, chain: step.op == "Chain", wg }))
}

/// Whether `step` (a CPU plan step) has a WGSL form.
pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<kiln_tensor::Tensor>) -> bool {
    expression(step, weight).is_some()
}

impl GpuKernel for Elementwise {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let ins: Vec<&GpuTensor> =
            (0..self.arity).map(|j| inputs.get(j).copied().flatten().ok_or(format!("operand {j} is missing"))).collect::<Result<_, _>>()?;
        let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
        let out = broadcast(&shapes)?;
        if self.chain && out != ins[0].shape {
            return Err(format!("a chain operand widens X {:?} to {out:?}", ins[0].shape));
        }
        let n: usize = out.iter().product();
        let y = cx.output(&out)?;
        let mut params = vec![n as u32];
        if ins.iter().all(|t| t.shape == out) {
            // Everything contiguous and alike: one flat dimension.
            params.push(1);
            params.push(n.max(1) as u32);
            params.extend(std::iter::repeat_n(1u32, ins.len()));
        } else {
            params.push(out.len() as u32);
            params.extend(out.iter().map(|&d| d.max(1) as u32));
            for t in &ins {
                if t.shape.len() > out.len() {
                    return Err(format!("operand shape {:?} does not fit the output {out:?}", t.shape));
                }
                params.extend(broadcast_strides(&t.shape, &out));
            }
        }
        let mut bufs: Vec<&wgpu::Buffer> = ins.iter().map(|t| t.buf.as_ref()).collect();
        bufs.push(&y.buf);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &bufs, groups_1d(n, self.wg))?;
        Ok(y)
    }
}
