//! int8 on the wgpu target: not supported yet. This Kiln has no int8 WGSL kernel; the int8
//! layers of a quantized model (`kiln::QMatMul` / `kiln::QConv` on the CPU target's int8
//! kernels, and the ONNX integer ops on the reference kernel) run on the CPU part of the
//! plan, in int8, each marked there with `precision: "int8"` and a note saying so (the compile
//! report lists them). The evidence says a kernel would pay, even on lavapipe
//! (`bench_int8::int8_evidence`, the `gemm` test): a GEMM on WGSL's packed 4x8 dot product is
//! exact and at 512^3 runs in 0.5x the time of the same loop in f32 reading K four at a time,
//! and 0.25x `wgpu.matmul`'s best variant. What it needs: activations quantized on the device
//! (static scale, or a min / max reduction first for dynamic), uint8 operands shifted to int8
//! (`dot4I8Packed` is signed only), the zero-point corrections (row sums of A, column sums of
//! W) and the f32 epilogue.

use kiln_target::{AttrValue, PRECISION_ATTR, PRECISION_NOTE_ATTR, Step};

/// What the plan says on each int8 layer of a wgpu plan.
pub const NOTE: &str = "int8 is not supported by the wgpu target yet (no int8 WGSL kernel): this layer runs on the CPU part, in int8";

/// Whether a step of the CPU target's plan computes in int8.
pub fn is_int8_layer(s: &Step) -> bool {
    matches!(s.kernel.as_str(), "cpu.qmatmul" | "cpu.qconv")
        || (s.kernel == "reference" && matches!(s.op.as_str(), "QLinearMatMul" | "MatMulInteger" | "QLinearConv" | "ConvInteger"))
}

/// Marks an int8 layer left on the CPU part: its precision and why it is there.
pub fn mark(s: &mut Step) {
    s.attrs.insert(PRECISION_ATTR.into(), AttrValue::String("int8".into()));
    s.attrs.insert(PRECISION_NOTE_ATTR.into(), AttrValue::String(NOTE.into()));
}
