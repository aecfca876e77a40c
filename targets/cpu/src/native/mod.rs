//! Plan steps that run on the CPU kernels of `crate::kernels` instead of the reference ones:
//! which nodes qualify (lowering), how their kernel candidates are tuned, and how a loaded
//! step runs.

mod activation;
mod attention;
pub(crate) mod batchnorm;
mod broadcast;
mod cast;
mod chain;
mod concat;
mod conv;
mod conv_transpose;
mod elementwise;
mod expand;
mod gather;
mod global_pool;
mod matmul;
mod qconv;
mod qmatmul;
mod quantize;
mod reduce;
pub(crate) mod resize;
mod rows;
mod transpose;
mod wmatmul;

pub use conv::ConvStep;
pub use elementwise::ElementwiseStep;
pub use matmul::MatMulStep;

use crate::exec::Pool;
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, TuneKey, Tuner};
use kiln_tensor::{DType, Tensor};
use std::collections::BTreeMap;

/// A step bound to its native kernel at load time.
pub enum Native {
    Conv(Box<ConvStep>),
    MatMul(Box<MatMulStep>),
    Elementwise(ElementwiseStep),
    Attention(attention::AttentionStep),
    Rows(rows::RowsStep),
    Transpose(transpose::TransposeStep),
    ConvTranspose(Box<conv_transpose::ConvTransposeStep>),
    Resize(resize::ResizeStep),
    BatchNorm(batchnorm::BatchNormStep),
    GlobalPool(global_pool::GlobalPoolStep),
    Concat(concat::ConcatStep),
    Gather(gather::GatherStep),
    Expand,
    Cast,
    Chain(chain::ChainStepNative),
    Reduce(reduce::ReduceStep),
    QMatMul(Box<qmatmul::QMatMulStep>),
    QConv(Box<qconv::QConvStep>),
    Quantize(quantize::QuantizeStep),
    WMatMul(Box<wmatmul::WMatMulStep>),
}

impl Native {
    /// Binds a plan step whose kernel is native; `weight(i)` reads a plan value's constant.
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<Option<Native>, String> {
        Ok(match step.kernel.as_str() {
            conv::KERNEL => Some(Native::Conv(Box::new(ConvStep::load(step, weight)?))),
            matmul::KERNEL => Some(Native::MatMul(Box::new(MatMulStep::load(step, weight)?))),
            elementwise::KERNEL => Some(Native::Elementwise(ElementwiseStep::load(step, weight)?)),
            attention::KERNEL => Some(Native::Attention(attention::AttentionStep::load(step)?)),
            rows::KERNEL => Some(Native::Rows(rows::RowsStep::load(step)?)),
            conv_transpose::KERNEL => Some(Native::ConvTranspose(Box::new(conv_transpose::ConvTransposeStep::load(step, weight)?))),
            resize::KERNEL => Some(Native::Resize(resize::ResizeStep::load(step)?)),
            batchnorm::KERNEL => Some(Native::BatchNorm(batchnorm::BatchNormStep::load(step, weight)?)),
            global_pool::KERNEL => Some(Native::GlobalPool(global_pool::GlobalPoolStep::load(&step.op)?)),
            concat::KERNEL => Some(Native::Concat(concat::ConcatStep::load(step)?)),
            gather::KERNEL => Some(Native::Gather(gather::GatherStep::load(step))),
            expand::KERNEL => Some(Native::Expand),
            cast::KERNEL => Some(Native::Cast),
            chain::KERNEL => Some(Native::Chain(chain::ChainStepNative::load(step)?)),
            reduce::KERNEL => Some(Native::Reduce(reduce::ReduceStep::load(step)?)),
            transpose::KERNEL => Some(Native::Transpose(transpose::TransposeStep::load(step))),
            qmatmul::KERNEL => Some(Native::QMatMul(Box::new(qmatmul::QMatMulStep::load(step, weight)?))),
            qconv::KERNEL => Some(Native::QConv(Box::new(qconv::QConvStep::load(step, weight)?))),
            quantize::KERNEL => Some(Native::Quantize(quantize::QuantizeStep::load(step, weight)?)),
            wmatmul::KERNEL => Some(Native::WMatMul(Box::new(wmatmul::WMatMulStep::load(step, weight)?))),
            _ => None,
        })
    }

    /// Whether the step may take input 0's buffer when the executor hands it over: chains and
    /// elementwise ops (a binary one runs in it only when it has the output's shape, else reads
    /// it; see `ElementwiseStep::run`).
    pub fn in_place(&self) -> bool {
        matches!(self, Native::Chain(_) | Native::Elementwise(_))
    }

    /// Runs the step; `owned` is input 0 handed over (then `inputs[0]` is None), only ever
    /// given when [`Native::in_place`] says so.
    /// `pool` lends output buffers to the kernels that overwrite all of theirs.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, owned: Option<Tensor>, pool: &mut Pool) -> Result<Tensor, String> {
        match self {
            Native::Conv(c) => c.run(inputs, variant, pool),
            Native::MatMul(m) => m.run(inputs, variant, pool),
            Native::Elementwise(e) => e.run(inputs, variant, owned, pool),
            Native::Attention(a) => a.run(inputs, variant, pool),
            Native::Rows(r) => r.run(inputs, variant, pool),
            Native::Transpose(t) => t.run(inputs, pool),
            Native::ConvTranspose(c) => c.run(inputs, variant, pool),
            Native::Resize(r) => r.run(inputs, pool),
            Native::BatchNorm(b) => b.run(inputs),
            Native::GlobalPool(p) => p.run(inputs),
            Native::Concat(c) => c.run(inputs, pool),
            Native::Gather(g) => g.run(inputs),
            Native::Expand => expand::run(inputs),
            Native::Cast => cast::run(inputs),
            Native::Chain(c) => c.run(inputs, variant, owned, pool),
            Native::Reduce(r) => r.run(inputs),
            Native::QMatMul(q) => q.run(inputs, variant, pool),
            Native::QConv(q) => q.run(inputs, variant),
            Native::Quantize(q) => q.run(inputs),
            Native::WMatMul(w) => w.run(inputs, variant, pool),
        }
    }
}

/// The sizes lowering tunes for: bound symbolic dims and, where shape inference could derive
/// them with those dims, the concrete shapes of values by name.
pub struct Dims<'a> {
    pub dims: &'a BTreeMap<String, usize>,
    pub shapes: &'a BTreeMap<String, Vec<usize>>,
}

/// What lowering decided for a node that can run natively: the kernel name and the chosen
/// variant (tuned when the node's shapes are known).
pub struct Lowered {
    pub kernel: &'static str,
    pub variant: String,
}

/// Lowers `node` to a native kernel when it qualifies (f32, constant weights, supported
/// attributes); None leaves it to the reference kernel.
pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let qualified = node.qualified_op();
    let lowered = match qualified.as_str() {
        "Conv" | "kiln::FusedConv" => conv::lower(g, node, dims, tuner)?,
        "MatMul" | "Gemm" | "kiln::FusedMatMul" => matmul::lower(g, node, dims, tuner)?,
        "kiln::Attention" => attention::lower(g, node, dims, tuner)?,
        "kiln::Chain" => chain::lower(g, node, dims, tuner)?,
        "Transpose" => transpose::lower(g, node),
        "ConvTranspose" => conv_transpose::lower(g, node, dims, tuner)?,
        "Resize" => resize::lower(g, node),
        "BatchNormalization" => batchnorm::lower(g, node),
        "GlobalAveragePool" | "GlobalMaxPool" => global_pool::lower(g, node),
        "Concat" => concat::lower(g, node),
        "Gather" => gather::lower(g, node),
        "Expand" => expand::lower(g, node),
        "Cast" => cast::lower(g, node),
        "kiln::QMatMul" => qmatmul::lower(g, node, dims, tuner)?,
        "kiln::QConv" => qconv::lower(g, node, dims, tuner)?,
        "kiln::WMatMul" => wmatmul::lower(g, node, dims, tuner)?,
        _ if quantize::covers(node) => quantize::lower(g, node),
        _ if elementwise::covers(node) => elementwise::lower(g, node, dims, tuner)?,
        _ if rows::covers(node) => rows::lower(g, node, dims, tuner)?,
        _ if reduce::covers(node) => reduce::lower(g, node),
        _ => None,
    };
    Ok(lowered)
}

/// The constant behind input `i`, if it is an initializer of element type `dtype`.
fn constant<'g>(g: &'g Graph, node: &Node, i: usize, dtype: DType) -> Option<&'g Tensor> {
    let v = node.inputs.get(i).copied().flatten()?;
    g.initializers.get(&v).filter(|t| t.dtype() == dtype)
}

/// The concrete shape of input `i`: from the tuning shapes when known there, else with
/// symbolic dims bound from `dims` (1 when unbound).
fn bound_shape(g: &Graph, node: &Node, i: usize, dims: &Dims) -> Option<Vec<usize>> {
    let v = node.inputs.get(i).copied().flatten()?;
    if let Some(s) = dims.shapes.get(&g.value(v).name) {
        return Some(s.clone());
    }
    let dims = dims.dims;
    let shape = g.value(v).shape.as_ref()?;
    Some(
        shape
            .0
            .iter()
            .map(|d| d.known().unwrap_or_else(|| if let kiln_tensor::Dim::Sym(s) = d { dims.get(s).copied().unwrap_or(1) } else { 1 }))
            .collect(),
    )
}

fn dtype_of(g: &Graph, node: &Node, i: usize) -> Option<DType> {
    node.inputs.get(i).copied().flatten().and_then(|v| g.value(v).dtype)
}

/// Tunes among `candidates` (Debug strings; the first is the default) by timing `run(i)`.
fn tune(
    tuner: &mut Tuner,
    kernel: &str,
    problem: String,
    candidates: &[String],
    run: impl FnMut(usize) -> Result<(), String>,
) -> Result<String, TargetError> {
    tune_with(tuner, kernel, problem, candidates, false, run)
}

/// [`tune`]; with `warm`, each timed call follows an untimed one of the same candidate, so
/// its worker threads are awake as inside a run of consecutive multi-threaded steps (the
/// tuner interleaves candidates, and a 1-thread one lets the workers fall asleep).
fn tune_with(
    tuner: &mut Tuner,
    kernel: &str,
    problem: String,
    candidates: &[String],
    warm: bool,
    mut run: impl FnMut(usize) -> Result<(), String>,
) -> Result<String, TargetError> {
    tuner.choose(TuneKey { kernel: kernel.to_string(), problem }, candidates, |variant| {
        let i = candidates.iter().position(|c| c == variant).unwrap_or(0);
        let fail = |reason: String| TargetError::Run { step: 0, kernel: kernel.to_string(), reason: format!("while tuning: {reason}") };
        if warm {
            run(i).map_err(fail)?;
        }
        let t = std::time::Instant::now();
        run(i).map_err(fail)?;
        Ok(t.elapsed())
    })
}

/// Tuning cycles through copies of a step's weights totalling at least this many bytes (more
/// than both cores' L2), so each timed call reads them cold, as a plan step does: between two
/// uses of a layer's weights the other layers' weights pass through the caches. With one hot
/// copy (and sleeping workers, see [`tune_with`]) the f32 GEMM tuning chose 1-thread variants
/// that ran the MiniLM-L6 plan in 25 ms against 16 ms with two threads. Used by the f32 GEMM;
/// the int8/low-precision GEMMs keep hot tuning, where cold+warm picks measured slower plans.
const COLD_BYTES: usize = 24 << 20;

/// How many copies of `bytes` of weights tuning cycles through (at most 16).
fn cold_copies(bytes: usize) -> usize {
    COLD_BYTES.div_ceil(bytes.max(1)).clamp(1, 16)
}

/// Deterministic pseudo-random floats in [-1, 1) for tuning runs.
fn filler(n: usize) -> Vec<f32> {
    let mut s: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A plan step's float attribute (an int one reads as a float).
fn step_float(step: &Step, k: &str) -> Option<f32> {
    match step.attrs.get(k) {
        Some(kiln_target::AttrValue::Float(v)) => Some(*v),
        Some(kiln_target::AttrValue::Int(v)) => Some(*v as f32),
        _ => None,
    }
}

fn step_int(step: &Step, k: &str) -> Option<i64> {
    match step.attrs.get(k) {
        Some(kiln_target::AttrValue::Int(v)) => Some(*v),
        _ => None,
    }
}

fn step_ints(step: &Step, k: &str) -> Option<Vec<i64>> {
    match step.attrs.get(k) {
        Some(kiln_target::AttrValue::Ints(v)) => Some(v.clone()),
        _ => None,
    }
}

fn step_str<'s>(step: &'s Step, k: &str) -> Option<&'s str> {
    match step.attrs.get(k) {
        Some(kiln_target::AttrValue::String(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// Picks the candidate whose Debug form is `variant`, else the default (first).
fn pick<T: std::fmt::Debug + Copy>(candidates: &[T], variant: &str) -> Option<T> {
    candidates.iter().find(|c| format!("{c:?}") == variant).or(candidates.first()).copied()
}
