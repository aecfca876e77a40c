//! tract: the ONNX model with fixed input facts, optimized, on a 2-thread executor.

use crate::engine::Engine;
use crate::outputs::Output;
use anyhow::Context;
use kiln_tensor::{Data, Tensor};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;
use crate::bench::guard;
use tract_onnx::prelude::*;

pub const THREADS: usize = 2;

/// tract lives on a thread of its own. Measured here: with tract running on the main thread,
/// Kiln's later runs on that thread were ~4x slower (MiniLM-L3: ~57 ms alone, ~230 ms after
/// tract); on its own thread the effect is gone. Likely cause: tract's hand-written x86
/// kernels leave the upper vector-register halves dirty, and SSE code on that thread then
/// pays the AVX-SSE transition penalty.
pub struct TractEngine {
    jobs: Option<mpsc::Sender<Job>>,
    replies: mpsc::Receiver<anyhow::Result<Reply>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Load, optimize and plan time, measured (all attempts).
    pub load_s: f64,
    /// How the model was loaded.
    pub note: String,
}

enum Job {
    Run,
    Outputs,
}

enum Reply {
    Loaded { load_s: f64, note: String },
    Ran(f64),
    Outputs(Vec<Output>, f64),
}

/// The model and inputs, owned by the tract thread.
struct Loaded {
    state: TypedSimpleState,
    inputs: TVec<TValue>,
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

impl Loaded {
    /// Loads with tract's defaults; if that fails, again with the model's value_info ignored
    /// (its symbolic intermediate shapes can clash with fixed input facts), then with its
    /// declared output shapes ignored too. `note` says which load worked.
    fn new(model: &Path, inputs: &[(String, Tensor)]) -> anyhow::Result<(Loaded, f64, String)> {
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
                    return Ok((Loaded { state, inputs: feeds }, t.elapsed().as_secs_f64(), note));
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

    fn serve(&mut self, job: Job) -> anyhow::Result<Reply> {
        match job {
            Job::Run => Ok(Reply::Ran(self.run()?.1)),
            Job::Outputs => self.outputs().map(|(o, ms)| Reply::Outputs(o, ms)),
        }
    }
}

impl TractEngine {
    /// Starts the tract thread, which loads the model and then serves runs.
    pub fn new(model: &Path, inputs: &[(String, Tensor)]) -> anyhow::Result<TractEngine> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (reply_tx, replies) = mpsc::channel();
        let (model, inputs) = (model.to_path_buf(), inputs.to_vec());
        let thread = std::thread::Builder::new().name("tract".into()).spawn(move || {
            let mut loaded = match guard(|| Loaded::new(&model, &inputs)) {
                Ok((l, load_s, note)) => {
                    let _ = reply_tx.send(Ok(Reply::Loaded { load_s, note }));
                    l
                }
                Err(e) => {
                    let _ = reply_tx.send(Err(e));
                    return;
                }
            };
            while let Ok(job) = job_rx.recv() {
                if reply_tx.send(guard(|| loaded.serve(job))).is_err() {
                    return;
                }
            }
        })?;
        let mut e = TractEngine { jobs: Some(jobs), replies, thread: Some(thread), load_s: 0.0, note: String::new() };
        match e.replies.recv()? {
            Ok(Reply::Loaded { load_s, note }) => {
                e.load_s = load_s;
                e.note = note;
                Ok(e)
            }
            Ok(_) => anyhow::bail!("the tract thread answered out of turn"),
            Err(err) => Err(err),
        }
    }

    fn ask(&mut self, job: Job) -> anyhow::Result<Reply> {
        self.jobs.as_ref().context("tract thread stopped")?.send(job).map_err(|_| anyhow::anyhow!("the tract thread is gone"))?;
        self.replies.recv().map_err(|_| anyhow::anyhow!("the tract thread is gone"))?
    }
}

impl Engine for TractEngine {
    fn run_once(&mut self) -> anyhow::Result<f64> {
        match self.ask(Job::Run)? {
            Reply::Ran(ms) => Ok(ms),
            _ => anyhow::bail!("the tract thread answered out of turn"),
        }
    }

    fn outputs(&mut self) -> anyhow::Result<(Vec<Output>, f64)> {
        match self.ask(Job::Outputs)? {
            Reply::Outputs(o, ms) => Ok((o, ms)),
            _ => anyhow::bail!("the tract thread answered out of turn"),
        }
    }
}

impl Drop for TractEngine {
    fn drop(&mut self) {
        self.jobs = None; // the thread's recv fails and it returns
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
