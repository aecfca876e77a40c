//! The WGSL kernels, one family per file: which CPU-plan steps each takes over (`select`),
//! its tunable variants, and how a loaded step encodes its dispatches.

pub mod act;
pub mod attention;
pub mod batchnorm;
pub mod conv;
pub mod conv_transpose;
#[cfg(test)]
mod div_check;
pub mod elementwise;
pub mod gather;
pub mod matmul;
pub mod matmul_reg;
pub mod movement;
pub mod pool;
pub mod qmatmul;
pub mod reduce;
pub mod reshape;
pub mod resize;
pub mod rows;
pub mod shape;
pub mod slice;
pub mod split;

use crate::device::Gpu;
use crate::runtime::{Float, GpuTensor, Pool};
use kiln_target::Step;
use kiln_tensor::Tensor;

/// Compiles a thread-per-element shader for `variant` (workgroup size `wg{N}`): the parameter
/// block, the read-only arrays `reads` (name, element type; `ST` is the step's storage type)
/// at bindings 1.., the output `y` (`ST`) after them, and `body`, run with `i`, the element,
/// below `P(count)`. Returns the pipeline and its workgroup size.
pub fn per_element(
    gpu: &Gpu,
    kernel: &str,
    variant: &str,
    float: Float,
    reads: &[(&str, &str)],
    count: u32,
    body: &str,
) -> Result<(wgpu::ComputePipeline, u32), String> {
    let wg = elementwise::workgroup(variant);
    let mut src = String::from(float.header());
    src.push_str(crate::runtime::PARAMS_WGSL);
    for (j, (name, ty)) in reads.iter().enumerate() {
        src.push_str(&format!("@group(0) @binding({}) var<storage, read> {name}: array<{ty}>;\n", j + 1));
    }
    src.push_str(&format!(
        "@group(0) @binding({}) var<storage, read_write> y: array<ST>;\n@compute @workgroup_size({wg}, 1, 1)\n\
         fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {{\n\
         \x20   let i = gid.x + gid.y * nw.x * {wg}u;\n    if (i >= P({count}u)) {{ return; }}\n{body}}}\n",
        reads.len() + 1
    ));
    let p = crate::runtime::pipeline(gpu, kernel, variant, &src).map_err(|e| e.to_string())?;
    Ok((p, wg))
}

/// The step attribute that says how a wgpu step stores its floats on the device ("f16";
/// absent: f32). Lowering sets it on every wgpu step of a plan compiled for f16.
pub const PRECISION: &str = kiln_target::PRECISION_ATTR;

/// How a wgpu step stores its floats.
pub fn precision(step: &Step) -> Result<Float, String> {
    match step.attrs.get(PRECISION) {
        None => Ok(Float::F32),
        // An int8 step (`wgpu.qmatmul`) reads and writes f32 around its int8 GEMM.
        Some(kiln_target::AttrValue::String(s)) if s == "int8" => Ok(Float::F32),
        Some(kiln_target::AttrValue::String(s)) => {
            Float::from_name(s).ok_or_else(|| format!("precision '{s}' is not one this Kiln's wgpu kernels store (f32, f16)"))
        }
        Some(other) => Err(format!("precision {other:?} is not a name")),
    }
}

/// Whether a dispatching kernel has an f16 form (f16 loads and stores; see each kernel for
/// its math). Every one has: an f16 plan keeps its device values f16 from upload to
/// readback. A relabelling step stores what its input stores.
pub fn takes_f16(kernel: &str) -> bool {
    matches!(
        kernel,
        matmul::KERNEL
            | elementwise::KERNEL
            | movement::TRANSPOSE
            | movement::CONCAT
            | conv::KERNEL
            | rows::KERNEL
            | attention::KERNEL
            | reduce::KERNEL
            | pool::KERNEL
            | resize::KERNEL
            | conv_transpose::KERNEL
            | slice::KERNEL
            | split::KERNEL
            | gather::KERNEL
            | batchnorm::KERNEL
    )
}

/// What a kernel may read when it is loaded: the device and the plan's constants.
pub struct KernelCtx<'a> {
    pub gpu: &'a Gpu,
    pub weight: &'a dyn Fn(usize) -> Option<Tensor>,
}

/// What a kernel records into: the device, the buffer pool and the open command encoder.
pub struct Encoded<'a> {
    pub gpu: &'a Gpu,
    pub pool: &'a mut Pool,
    pub enc: &'a mut wgpu::CommandEncoder,
    /// The step's inputs that stay on the host (`host_inputs`), by input index; empty when
    /// tuning or benchmarking.
    pub host: &'a [Option<&'a Tensor>],
    /// How the step stores its float outputs (its `precision`).
    pub float: Float,
}

impl Encoded<'_> {
    /// A pooled buffer for an output of the step.
    pub fn output(&mut self, shape: &[usize]) -> Result<GpuTensor, String> {
        self.pool.take(self.gpu, shape, self.float).map_err(|e| e.to_string())
    }
}

/// A loaded wgpu step.
pub trait GpuKernel: Send {
    /// Records the step's dispatches and returns its (pooled) output.
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String>;

    /// Every output of the step, in order (kernels with more than one override this).
    fn encode_all(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<Vec<GpuTensor>, String> {
        Ok(vec![self.encode(cx, inputs)?])
    }
}

/// The wgpu kernel that takes over a CPU-plan step, with its variants (default first), or
/// None when the step stays on the CPU. `f32` says whether a plan value is f32 (steps on the
/// reference kernel take any type).
pub fn select(
    step: &Step,
    weight: &dyn Fn(usize) -> Option<Tensor>,
    f32: &dyn Fn(usize) -> bool,
) -> Option<(&'static str, &'static [&'static str])> {
    match step.kernel.as_str() {
        "reference" if pool::covers(step, f32) => Some((pool::KERNEL, pool::VARIANTS)),
        "reference" if reshape::covers(step, weight, f32) => Some((reshape::KERNEL, reshape::VARIANTS)),
        "reference" if split::covers(step, weight, f32) => Some((split::KERNEL, split::VARIANTS)),
        "reference" if slice::covers(step, weight, f32) => Some((slice::KERNEL, slice::VARIANTS)),
        "reference" if shape::covers(step) => Some((shape::KERNEL, shape::VARIANTS)),
        "reference"
            if step.op == "PRelu"
                && step.opset >= 7
                && step.inputs.iter().flatten().all(|&v| f32(v))
                && elementwise::covers(step, weight) =>
        {
            Some((elementwise::KERNEL, elementwise::VARIANTS))
        }
        "cpu.elementwise" | "cpu.chain" if elementwise::covers(step, weight) => Some((elementwise::KERNEL, elementwise::VARIANTS)),
        "cpu.matmul" if matmul::covers(step) => Some((matmul::KERNEL, matmul::VARIANTS)),
        "cpu.qmatmul" if qmatmul::covers(step, weight) => Some((qmatmul::KERNEL, qmatmul::VARIANTS)),
        "cpu.qconv" if qmatmul::covers(step, weight) => Some((qmatmul::CONV, qmatmul::VARIANTS)),
        "cpu.rows" if rows::covers(step) => Some((rows::KERNEL, rows::VARIANTS)),
        "cpu.conv2d" if conv::covers(step) => Some((conv::KERNEL, conv::VARIANTS)),
        "cpu.attention" if attention::covers(step) => Some((attention::KERNEL, attention::VARIANTS)),
        "cpu.transpose" => Some((movement::TRANSPOSE, movement::VARIANTS)),
        "cpu.concat" => Some((movement::CONCAT, movement::VARIANTS)),
        "cpu.batchnorm" if batchnorm::covers(step, weight) => Some((batchnorm::KERNEL, batchnorm::VARIANTS)),
        "cpu.resize" if resize::covers(step, weight) => Some((resize::KERNEL, resize::VARIANTS)),
        "cpu.conv_transpose" if conv_transpose::covers(step, weight) => Some((conv_transpose::KERNEL, conv_transpose::VARIANTS)),
        "cpu.gather" if gather::covers(step) => Some((gather::KERNEL, gather::VARIANTS)),
        "cpu.reduce" | "cpu.global_pool" if reduce::covers(step, weight) => Some((reduce::KERNEL, reduce::VARIANTS)),
        _ => None,
    }
}

/// Whether input `j` of a wgpu step is only ever bound as a device buffer (its kernel never
/// reads it on the host at load), so a constant there may be stored as f16 in the plan.
pub fn binds_on_device(step: &Step, j: usize) -> bool {
    match step.kernel.as_str() {
        matmul::KERNEL | conv::KERNEL | rows::KERNEL => j >= 1,
        gather::KERNEL => j == 0,
        // Clip's bounds are read at load into the shader.
        elementwise::KERNEL => step.op != "Clip",
        _ => false,
    }
}

/// Whether a kernel only relabels its input (no dispatch): worth running on the adapter only
/// where its input already is there.
pub fn only_relabels(kernel: &str) -> bool {
    kernel == reshape::KERNEL
}

/// The inputs of a wgpu kernel it reads on the host rather than the device (a reshape's
/// computed target shape): never uploaded.
pub fn host_inputs(kernel: &str) -> &'static [usize] {
    if kernel == reshape::KERNEL { &[1] } else { &[] }
}

/// Whether a wgpu kernel reads only its input's shape and leaves its output on the host
/// (`wgpu.shape`): worth it only where the input is on the device alone.
pub fn output_on_host(kernel: &str) -> bool {
    kernel == shape::KERNEL
}

/// Binds a wgpu plan step to its kernel.
pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    match step.kernel.as_str() {
        elementwise::KERNEL => elementwise::load(step, cx),
        matmul::KERNEL => matmul::load(step, cx),
        qmatmul::KERNEL | qmatmul::CONV => qmatmul::load(step, cx),
        rows::KERNEL => rows::load(step, cx),
        conv::KERNEL => conv::load(step, cx),
        attention::KERNEL => attention::load(step, cx),
        movement::TRANSPOSE => movement::load_transpose(step, cx),
        movement::CONCAT => movement::load_concat(step, cx),
        reduce::KERNEL => reduce::load(step, cx),
        gather::KERNEL => gather::load(step, cx),
        batchnorm::KERNEL => batchnorm::load(step, cx),
        resize::KERNEL => resize::load(step, cx),
        conv_transpose::KERNEL => conv_transpose::load(step, cx),
        pool::KERNEL => pool::load(step, cx),
        reshape::KERNEL => reshape::load(step, cx),
        split::KERNEL => split::load(step, cx),
        slice::KERNEL => slice::load(step, cx),
        shape::KERNEL => Err("wgpu.shape runs in the executor, not as a kernel".into()),
        other => Err(format!("this Kiln has no wgpu kernel '{other}'")),
    }
}

/// Threads per workgroup and workgroup memory bytes of a variant (for pruning by limits).
pub fn footprint(kernel: &str, variant: &str) -> (u32, u32) {
    match kernel {
        elementwise::KERNEL
        | movement::TRANSPOSE
        | movement::CONCAT
        | gather::KERNEL
        | batchnorm::KERNEL
        | resize::KERNEL
        | conv_transpose::KERNEL
        | pool::KERNEL
        | qmatmul::KERNEL
        | qmatmul::CONV
        | split::KERNEL
        | slice::KERNEL => (elementwise::workgroup(variant), 0),
        rows::KERNEL => (elementwise::workgroup(variant), elementwise::workgroup(variant) * 4),
        attention::KERNEL => (elementwise::workgroup(variant), elementwise::workgroup(variant) * 4 + 4096),
        matmul::KERNEL => matmul::footprint(variant),
        reduce::KERNEL => reduce::footprint(variant),
        conv::KERNEL => conv::footprint(variant),
        _ => (0, 0),
    }
}

/// The launch geometry a variant of the step's kernel uses at the given input shapes (for
/// the plan).
pub fn launch(
    step: &Step,
    variant: &str,
    shapes: &[Option<Vec<usize>>],
    weight: &dyn Fn(usize) -> Option<Tensor>,
) -> Option<kiln_target::Launch> {
    match step.kernel.as_str() {
        elementwise::KERNEL => {
            let s: Vec<&[usize]> = shapes.iter().flatten().map(Vec::as_slice).collect();
            let n: usize = elementwise::broadcast(&s).ok()?.iter().product();
            let wg = elementwise::workgroup(variant);
            Some(kiln_target::Launch { grid: crate::runtime::groups_1d(n, wg), block: [wg, 1, 1], shared_bytes: 0 })
        }
        reduce::KERNEL => reduce::launch(step, variant, shapes, weight),
        gather::KERNEL => gather::launch(step, variant, shapes),
        batchnorm::KERNEL => batchnorm::launch(variant, shapes),
        resize::KERNEL => resize::launch(step, variant, shapes, weight),
        conv_transpose::KERNEL => conv_transpose::launch(step, variant, shapes),
        conv::KERNEL => conv::launch(step, variant, shapes),
        pool::KERNEL => pool::launch(step, variant, shapes),
        split::KERNEL => split::launch(variant, shapes),
        slice::KERNEL => slice::launch(step, variant, shapes, weight),
        matmul::KERNEL => matmul::launch(step, variant, shapes),
        qmatmul::KERNEL | qmatmul::CONV => qmatmul::launch(step, shapes, weight),
        rows::KERNEL => rows::launch(step, variant, shapes),
        attention::KERNEL => attention::launch(step, variant, shapes),
        movement::TRANSPOSE => movement::launch(variant, shapes, false),
        movement::CONCAT => movement::launch(variant, shapes, true),
        _ => None,
    }
}

/// Every variant of a wgpu kernel, default first (empty for an unknown kernel).
pub fn variants(kernel: &str) -> &'static [&'static str] {
    match kernel {
        elementwise::KERNEL => elementwise::VARIANTS,
        matmul::KERNEL => matmul::VARIANTS,
        qmatmul::KERNEL | qmatmul::CONV => qmatmul::VARIANTS,
        rows::KERNEL => rows::VARIANTS,
        conv::KERNEL => conv::VARIANTS,
        movement::TRANSPOSE | movement::CONCAT => movement::VARIANTS,
        attention::KERNEL => attention::VARIANTS,
        reduce::KERNEL => reduce::VARIANTS,
        gather::KERNEL => gather::VARIANTS,
        batchnorm::KERNEL => batchnorm::VARIANTS,
        resize::KERNEL => resize::VARIANTS,
        conv_transpose::KERNEL => conv_transpose::VARIANTS,
        pool::KERNEL => pool::VARIANTS,
        reshape::KERNEL => reshape::VARIANTS,
        split::KERNEL => split::VARIANTS,
        slice::KERNEL => slice::VARIANTS,
        shape::KERNEL => shape::VARIANTS,
        _ => &[],
    }
}
