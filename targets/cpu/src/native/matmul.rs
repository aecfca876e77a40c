//! `MatMul`, `Gemm` and `kiln::FusedMatMul` with a constant 2-D right operand (a linear
//! layer) on the CPU GEMM with pre-packed weights and a fused bias + activation epilogue.

use super::{Dims, Lowered, activation, bound_shape, constant, dtype_of, filler, pick, step_float, step_int, tune_with};
use crate::exec::Pool;
use crate::kernels::{
    Activation, Bias, GemmBackend, GemmParams, GemmSpec, Isa, PackedB, PackedLayout, gemm_candidates, pack_b, packed_layout_for,
    sgemm_packed,
};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.matmul";

/// Gemm-style attributes this kernel accepts: transA = 0, any transB and alpha, beta = 1.
struct GemmAttrs {
    trans_b: bool,
    alpha: f32,
}

fn gemm_attrs(int: impl Fn(&str) -> Option<i64>, float: impl Fn(&str) -> Option<f32>) -> Option<GemmAttrs> {
    if int("transA").unwrap_or(0) != 0 || float("beta").unwrap_or(1.0) != 1.0 {
        return None;
    }
    Some(GemmAttrs { trans_b: int("transB").unwrap_or(0) != 0, alpha: float("alpha").unwrap_or(1.0) })
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(a_shape) = bound_shape(g, node, 0, dims) else { return Ok(None) };
    let Some(b) = constant(g, node, 1, DType::F32).filter(|b| b.rank() == 2) else { return Ok(None) };
    let is_gemm = node.op_type == "Gemm" || ["transA", "transB", "alpha", "beta"].iter().any(|k| node.attrs.contains_key(*k));
    let Some(ga) = gemm_attrs(|k| node.attr_int(k), |k| node.attr_float(k)) else { return Ok(None) };
    if (is_gemm && a_shape.len() != 2) || a_shape.len() < 2 {
        return Ok(None);
    }
    let (k, n) = if ga.trans_b { (b.shape()[1], b.shape()[0]) } else { (b.shape()[0], b.shape()[1]) };
    if a_shape.last() != Some(&k) {
        return Ok(None);
    }
    if let Some(v) = node.inputs.get(2).copied().flatten() {
        let ok = g
            .initializers
            .get(&v)
            .is_some_and(|c| c.dtype() == DType::F32 && c.len() == n && c.shape().last() == Some(&n) && c.rank() <= 2);
        if !ok {
            return Ok(None);
        }
    }
    let Some(act) = activation::from_node(node) else { return Ok(None) };
    let m: usize = a_shape[..a_shape.len() - 1].iter().product();
    let spec = GemmSpec::new(m, n, k).scale(ga.alpha, 0.0).act(act);
    let variant = tune_gemm(tuner, &spec, b, ga.trans_b)?;
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

fn tune_gemm(tuner: &mut Tuner, spec: &GemmSpec, b: &Tensor, trans_b: bool) -> Result<String, TargetError> {
    let cands = gemm_candidates(spec, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let Ok(b32) = b.as_slice::<f32>() else { return Ok("default".into()) };
    // Each candidate runs on B packed the way it would be at load (panels for the micro backend),
    // in copies used in turn so that B is read cold (see `cold_copies`).
    let copies = super::cold_copies(spec.k * spec.n * 4);
    let mut packs: Vec<(PackedLayout, Vec<PackedB>)> = Vec::new();
    for c in &cands {
        let layout = packed_layout_for(c, spec.n);
        if !packs.iter().any(|(l, _)| *l == layout) {
            let Ok(p) = pack_b(b32, spec.k, spec.n, trans_b, 0, layout) else { return Ok("default".into()) };
            packs.push((layout, vec![p; copies]));
        }
    }
    let a = filler(spec.m * spec.k);
    let mut c = vec![0f32; spec.m * spec.n];
    // "cold": measured as described above; records made by the earlier hot, single-call
    // timing (other keys) are not reused, so their 1-thread choices do not persist.
    let problem = format!("m={},k={},n={},cold", spec.m, spec.k, spec.n);
    let mut call = 0usize;
    tune_with(tuner, KERNEL, problem, &names, true, |i| {
        let layout = packed_layout_for(&cands[i], spec.n);
        let all = packs.iter().find(|(l, _)| *l == layout).map(|(_, p)| p).ok_or("B was not packed for this candidate")?;
        call += 1;
        let packed = &all[call % all.len()];
        sgemm_packed(spec, &a, packed, Bias::None, &mut c, &cands[i]).map_err(|e| e.to_string())
    })
}

/// The GEMM parameters a variant string names (the Debug form the tuner stored), if any.
fn variant_params(variant: &str) -> Option<GemmParams> {
    let cores = crate::device::cores().max(1);
    for backend in [GemmBackend::Micro, GemmBackend::Library, GemmBackend::Blocked] {
        for isa in Isa::available() {
            for threads in 1..=cores {
                let p = GemmParams { backend, threads, isa };
                if format!("{p:?}") == variant {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// A loaded linear layer: packed B, bias, alpha, activation.
pub struct MatMulStep {
    packed: PackedB,
    bias: Option<Vec<f32>>,
    alpha: f32,
    act: Activation,
}

impl MatMulStep {
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<MatMulStep, String> {
        let ga = gemm_attrs(|k| step_int(step, k), |k| step_float(step, k)).ok_or("unsupported Gemm attributes")?;
        let act = activation::from_step(step).ok_or("unsupported activation")?;
        let b = step.inputs.get(1).copied().flatten().and_then(weight).ok_or("B is not a constant")?;
        let (k, n) = match b.shape() {
            &[r, c] if ga.trans_b => (c, r),
            &[r, c] => (r, c),
            s => return Err(format!("B must be 2-D, found shape {s:?}")),
        };
        // Packed once, in the layout the chosen candidate reads (panels for the micro backend).
        let params = variant_params(&step.variant)
            .unwrap_or_else(|| gemm_candidates(&GemmSpec::new(128, n, k), crate::device::cores()).first().copied().unwrap_or_default());
        let packed = pack_b(b.as_slice::<f32>().map_err(|e| e.to_string())?, k, n, ga.trans_b, 0, packed_layout_for(&params, n))
            .map_err(|e| e.to_string())?;
        let bias = match step.inputs.get(2).copied().flatten() {
            None => None,
            Some(v) => Some(weight(v).ok_or("bias is not a constant")?.into_vec::<f32>().map_err(|e| e.to_string())?),
        };
        Ok(MatMulStep { packed, bias, alpha: ga.alpha, act })
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut Pool) -> Result<Tensor, String> {
        let a = inputs.first().copied().flatten().ok_or("input A is missing")?;
        let (k, n) = (self.packed.k(), self.packed.n());
        if a.rank() < 2 || a.shape().last() != Some(&k) {
            return Err(format!("A has shape {:?}; its last dimension must be {k}", a.shape()));
        }
        let m = a.len() / k.max(1);
        let spec = GemmSpec::new(m, n, k).scale(self.alpha, 0.0).act(self.act);
        let params = pick(&gemm_candidates(&spec, crate::device::cores()), variant).ok_or("no GEMM candidate")?;
        // Every element is written (beta 0 never reads C), so a pooled buffer needs no zeroing.
        let mut c = pool.take(m * n);
        let bias = self.bias.as_deref().map_or(Bias::None, Bias::PerCol);
        sgemm_packed(&spec, a.as_slice::<f32>().map_err(|e| e.to_string())?, &self.packed, bias, &mut c, &params)
            .map_err(|e| e.to_string())?;
        let mut shape = a.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Tensor::from_vec(shape, c).map_err(|e| e.to_string())
    }
}
