//! tract: the ONNX model with fixed input facts, optimized, on a 2-thread executor.

use crate::engine::Engine;
use crate::outputs::Output;
use anyhow::Context;
use kiln_tensor::{Data, Tensor};
use std::path::Path;
use std::time::Instant;
use tract_onnx::prelude::*;

pub const THREADS: usize = 2;

pub struct TractEngine {
    state: TypedSimpleState,
    inputs: TVec<TValue>,
    /// Load, optimize and plan time, measured (all attempts).
    pub load_s: f64,
    /// How the model was loaded.
    pub note: String,
}

/// Uses a 2-thread pool for every tract model of this process (tract's default is 1 thread).
pub fn use_threads() {
    tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(THREADS));
}

fn to_tract(t: &kiln_tensor::Tensor) -> anyhow::Result<tract_onnx::prelude::Tensor> {
    Ok(match t.data() {
        Data::F32(v) => tract_onnx::prelude::Tensor::from_shape(t.shape(), v)?,
        Data::I64(v) => tract_onnx::prelude::Tensor::from_shape(t.shape(), v)?,
        other => anyhow::bail!("the bench feeds tract f32 and i64 only, not {:?}", other.dtype()),
    })
}

impl TractEngine {
    /// Loads with tract's defaults; if that fails, again with the model's value_info ignored
    /// (its symbolic intermediate shapes can clash with fixed input facts), then with its
    /// declared output shapes ignored too. `note` says which load worked.
    pub fn new(model: &Path, inputs: &[(String, Tensor)]) -> anyhow::Result<TractEngine> {
        let t = Instant::now();
        let attempts = [("tract defaults", false, false), ("with_ignore_value_info", true, false), ("with_ignore_value_info + with_ignore_output_shapes", true, true)];
        let mut first_err = None;
        for (how, ignore_info, ignore_out) in attempts {
            let onnx = tract_onnx::onnx().with_ignore_value_info(ignore_info).with_ignore_output_shapes(ignore_out);
            match Self::load(onnx, model, inputs) {
                Ok((state, feeds)) => {
                    let note = match &first_err {
                        None => how.to_string(),
                        Some(e) => format!("{how}, after the default load failed: {e}"),
                    };
                    return Ok(TractEngine { state, inputs: feeds, load_s: t.elapsed().as_secs_f64(), note });
                }
                Err(e) => {
                    first_err.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        anyhow::bail!("{}", first_err.unwrap_or_default())
    }

    fn load(onnx: tract_onnx::Onnx, model: &Path, inputs: &[(String, Tensor)]) -> anyhow::Result<(TypedSimpleState, TVec<TValue>)> {
        let mut m = onnx.model_for_path(model)?;
        let mut feeds = TVec::new();
        for (i, (name, tensor)) in inputs.iter().enumerate() {
            let dt = match tensor.data() {
                Data::F32(_) => f32::datum_type(),
                Data::I64(_) => i64::datum_type(),
                other => anyhow::bail!("input {name}: unsupported type {:?}", other.dtype()),
            };
            m = m.with_input_fact(i, InferenceFact::dt_shape(dt, tensor.shape()))?;
            feeds.push(to_tract(tensor)?.into_tvalue());
        }
        // The bench passes inputs in the model's declared order; check it.
        let declared: Vec<String> = m.input_outlets()?.iter().map(|o| m.node(o.node).name.clone()).collect();
        let given: Vec<&String> = inputs.iter().map(|(n, _)| n).collect();
        anyhow::ensure!(declared.iter().collect::<Vec<_>>() == given, "tract sees inputs {declared:?}, the bench gives {given:?}");
        let plan = m.into_optimized()?.into_runnable()?;
        Ok((plan.spawn()?, feeds))
    }

    fn run(&mut self) -> anyhow::Result<(TVec<TValue>, f64)> {
        let feeds = self.inputs.clone();
        let t = Instant::now();
        let out = self.state.run(feeds)?;
        Ok((out, t.elapsed().as_secs_f64() * 1e3))
    }
}

impl Engine for TractEngine {
    fn run_once(&mut self) -> anyhow::Result<f64> {
        Ok(self.run()?.1)
    }

    fn outputs(&mut self) -> anyhow::Result<(Vec<Output>, f64)> {
        let (out, ms) = self.run()?;
        let mut v = Vec::with_capacity(out.len());
        for (i, o) in out.iter().enumerate() {
            let float = o.datum_type().is_float();
            let f = o.cast_to::<f64>().with_context(|| format!("tract output {i}"))?;
            v.push(Output { name: format!("#{i}"), shape: o.shape().to_vec(), float, values: f.to_plain_array_view::<f64>()?.iter().copied().collect() });
        }
        Ok((v, ms))
    }
}
