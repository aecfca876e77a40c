//! The latency guard of a quantized compile (int8, int4, fp16, bf16; written int8 below): the
//! int8 plan and the float plan of the same model are
//! both lowered for the target and timed side by side on it (interleaved runs, per-step
//! profiles). A quantized layer whose step is not faster than its float step goes back to
//! float (the graph is re-quantized without it); if the int8 plan is still not faster than the
//! float plan as a whole, the float plan is emitted and the decision says so. `force` skips it.

use crate::{PipelineError, QUANTIZE_AFTER};
use kiln_ir::Model;
use kiln_target::{CompileOptions, Executable, Plan, Target, Tuner};
use kiln_tensor::{DType, Data, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;

/// Timed runs per plan (after two warm-up runs each), interleaved.
pub const RUNS: usize = 12;

/// What the guard measured and decided.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LatencyCheck {
    /// Where the plans ran (the target's device).
    pub device: String,
    pub runs: usize,
    /// The quantized plan's precision (int8, int4, fp16, bf16).
    pub precision: String,
    /// Median wall time per call, milliseconds, measured.
    pub float_ms: f64,
    pub quantized_ms: f64,
    /// Layers sent back to float because their quantized step was not faster: (node,
    /// quantized us, float us) per call, measured.
    pub layers_kept_float: Vec<(String, f64, f64)>,
    /// The quantized plan was not faster than the float one: the float plan was emitted.
    pub declined: bool,
}

/// A lowered, loaded plan.
pub struct Loaded {
    pub plan: Plan,
    pub weights: Vec<u8>,
    pub exe: Box<dyn Executable>,
}

pub fn load(target: &dyn Target, model: &Model, opts: &CompileOptions, tuner: &mut Tuner) -> Result<Loaded, PipelineError> {
    let (plan, weights) = target.lower(model, opts, tuner)?;
    let exe = target.load(&plan, weights.clone())?;
    Ok(Loaded { plan, weights, exe })
}

/// The float graph the int8 one is compared with: `base` (optimized up to QUANTIZE_AFTER)
/// through the rest of the passes.
pub fn float_model(base: &Model) -> Result<Model, PipelineError> {
    let mut m = base.clone();
    kiln_passes::optimize(&mut m, &kiln_passes::pipeline_after(QUANTIZE_AFTER)?)?;
    Ok(m)
}

/// A plan's median seconds per call, and its steps' seconds per call by node name.
pub type Timing = (f64, BTreeMap<String, f64>);

/// Median seconds per call of each executable on `inputs`, runs interleaved; per-step times
/// (seconds per call) by node name for the quantized products.
pub fn time(exes: &mut [&mut dyn Executable], inputs: &[(String, Tensor)]) -> Result<Vec<Timing>, PipelineError> {
    for e in exes.iter_mut() {
        e.set_profiling(true);
        for _ in 0..2 {
            e.run(inputs.to_vec())?;
        }
    }
    let mut times = vec![Vec::with_capacity(RUNS); exes.len()];
    for _ in 0..RUNS {
        for (e, t) in exes.iter_mut().zip(&mut times) {
            let start = Instant::now();
            e.run(inputs.to_vec())?;
            t.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(exes
        .iter()
        .zip(times)
        .map(|(e, mut t)| {
            t.sort_by(f64::total_cmp);
            let steps = e.step_times().into_iter().filter(|s| s.calls > 0).map(|s| (s.node, s.seconds / s.calls as f64)).collect();
            (t[t.len() / 2], steps)
        })
        .collect())
}

/// Inputs to time with: the given sample, else one built from the plan's declared inputs with
/// `dims` bound (unbound symbols 1): floats pseudo-random in [-1, 1), integers 1.
pub fn synthetic_inputs(plan: &Plan, dims: &BTreeMap<String, usize>) -> Result<Vec<(String, Tensor)>, PipelineError> {
    let mut out = Vec::new();
    for &v in &plan.inputs {
        let p = &plan.values[v];
        let shape: Vec<usize> = p
            .shape
            .iter()
            .flatten()
            .map(|d| match d {
                kiln_target::DimSpec::Known(n) => *n,
                kiln_target::DimSpec::Sym(s) => dims.get(s).copied().unwrap_or(1),
            })
            .collect();
        out.push((p.name.clone(), synthetic_tensor(&p.name, p.dtype().unwrap_or(DType::F32), shape)?));
    }
    Ok(out)
}

/// One synthetic input: floats pseudo-random in [-1, 1), integers 1.
pub fn synthetic_tensor(name: &str, dtype: DType, shape: Vec<usize>) -> Result<Tensor, PipelineError> {
    let n: usize = shape.iter().product();
    let bad = |e: kiln_tensor::TensorError| PipelineError::Calibration(format!("synthetic input {name}: {e}"));
    let data = if dtype == DType::F32 {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        Data::F32(
            (0..n)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect(),
        )
    } else {
        Data::from_f64_vec(dtype, &vec![1.0; n]).map_err(bad)?
    };
    Tensor::new(shape, data).map_err(bad)
}

/// Quantized products whose int8 step is not faster than the float step of the same node.
pub fn slower_layers(int8: &BTreeMap<String, f64>, float: &BTreeMap<String, f64>, quantized: &[String]) -> Vec<(String, f64, f64)> {
    quantized
        .iter()
        .filter_map(|n| {
            let (q, f) = (int8.get(n)?, float.get(n)?);
            (q >= f).then(|| (n.clone(), q * 1e6, f * 1e6))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::slower_layers;
    use std::collections::BTreeMap;

    #[test]
    fn a_layer_goes_back_to_float_when_its_int8_step_is_not_faster() {
        let int8 = BTreeMap::from([("a".to_string(), 1e-5), ("b".to_string(), 3e-5), ("c".to_string(), 2e-5)]);
        let float = BTreeMap::from([("a".to_string(), 4e-5), ("b".to_string(), 3e-5), ("c".to_string(), 1e-5)]);
        let names = ["a", "b", "c", "d"].map(String::from);
        let slow: Vec<String> = slower_layers(&int8, &float, &names).into_iter().map(|(n, _, _)| n).collect();
        // a is faster in int8; b ties (not faster); c is slower; d was not timed.
        assert_eq!(slow, ["b", "c"]);
    }
}
