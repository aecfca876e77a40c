//! Arbitrary bytes as a serialized TensorProto (the `input_N.pb` files of ONNX test data).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kiln_onnx::read_tensor_file(data);
});
