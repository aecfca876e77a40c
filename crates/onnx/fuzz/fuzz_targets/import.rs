//! Arbitrary bytes into the ONNX importer: any result is fine, a panic, abort or runaway
//! allocation is a bug. Seed the corpus with the fixtures: `mkdir -p corpus/import &&
//! cp ../../../testdata/malformed/valid/*.onnx ../../../testdata/malformed/*.onnx corpus/import/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ops() -> &'static kiln_ir::OpSet {
    static OPS: OnceLock<kiln_ir::OpSet> = OnceLock::new();
    OPS.get_or_init(|| {
        let mut ops = kiln_ir::OpSet::new("fuzz");
        for op in ["Add", "Relu", "Gemm", "If", "Identity", "Neg", "Mul", "Constant"] {
            ops.insert("", op, 1, 21);
        }
        ops
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = kiln_onnx::import_bytes(data, None, ops());
});
