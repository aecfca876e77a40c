//! Seeded random mutations of small valid models through `import_bytes`: any result is fine,
//! a panic is not. This is the CI-side check of the property the fuzz target
//! (crates/onnx/fuzz, needs nightly) explores further.

use kiln_ir::OpSet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// Mutations per seed file in CI; `KILN_MUTATIONS=N` runs more locally.
fn mutations() -> usize {
    std::env::var("KILN_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/malformed/valid").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run python3 testdata/malformed/make.py)", path.display()))
}

/// One random change to `data`; returns a description for the failure message.
fn mutate(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) -> String {
    let len = data.len();
    match rng.random_range(0..6) {
        0 => {
            let flips = rng.random_range(1..=4);
            let mut at = Vec::new();
            for _ in 0..flips {
                let i = rng.random_range(0..len);
                let bit = rng.random_range(0..8);
                data[i] ^= 1 << bit;
                at.push((i, bit));
            }
            format!("bit flips at (byte, bit) {at:?}")
        }
        1 => {
            let n = rng.random_range(0..len);
            data.truncate(n);
            format!("truncated to {n} bytes")
        }
        2 => {
            let i = rng.random_range(0..len);
            let v: u8 = rng.random();
            data[i] = v;
            format!("byte {i} set to {v:#04x}")
        }
        3 => {
            // Extreme varint-ish values where lengths, dims and enums live.
            let i = rng.random_range(0..len);
            let v = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.random_range(0..5)];
            data[i] = v;
            format!("byte {i} set to {v:#04x}")
        }
        4 => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=8).min(len - i);
            data.drain(i..i + n);
            format!("removed {n} bytes at {i}")
        }
        _ => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=16).min(len - i);
            let chunk: Vec<u8> = data[i..i + n].to_vec();
            let at = rng.random_range(0..=data.len());
            data.splice(at..at, chunk);
            format!("copied {n} bytes from {i} to {at}")
        }
    }
}

fn no_panics(name: &str, seed: u64) {
    let original = fixture(name);
    let ops = kiln_reference::op_set();
    let empty = OpSet::new("empty");
    kiln_onnx::import_bytes(&original, None, &ops).unwrap_or_else(|e| panic!("{name} itself must import: {e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut panics = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    let n = mutations();
    for case in 0..n {
        let mut data = original.clone();
        // Mostly one mutation, sometimes a few stacked.
        let rounds = if rng.random_bool(0.8) { 1 } else { rng.random_range(2..=5) };
        let mut what = Vec::new();
        for _ in 0..rounds {
            if !data.is_empty() {
                what.push(mutate(&mut rng, &mut data));
            }
        }
        let set = if case % 2 == 0 { &ops } else { &empty };
        match std::panic::catch_unwind(|| kiln_onnx::import_bytes(&data, None, set)) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty(), "empty error message");
                refused += 1
            }
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                panics.push(format!("case {case} ({}): {msg}", what.join("; ")));
            }
        }
    }
    println!("{name}: {n} mutations, {ok} imported, {refused} refused, {} panicked", panics.len());
    assert!(panics.is_empty(), "{name}: import_bytes panicked on {} mutations:\n{}", panics.len(), panics.join("\n"));
}

/// The same for serialized TensorProtos (`input_N.pb` files) through `read_tensor_file`.
fn tensor_no_panics(name: &str, seed: u64) {
    let original = fixture(name);
    kiln_onnx::read_tensor_file(&original).unwrap_or_else(|e| panic!("{name} itself must read: {e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut panics = Vec::new();
    let n = mutations();
    for case in 0..n {
        let mut data = original.clone();
        let what = mutate(&mut rng, &mut data);
        if std::panic::catch_unwind(|| kiln_onnx::read_tensor_file(&data)).is_err() {
            panics.push(format!("case {case} ({what})"));
        }
    }
    assert!(panics.is_empty(), "{name}: read_tensor_file panicked on {} mutations:\n{}", panics.len(), panics.join("\n"));
}

#[test]
fn mutations_of_tensor_files_never_panic() {
    tensor_no_panics("tensor_raw.pb", 1);
    tensor_no_panics("tensor_typed.pb", 2);
}

#[test]
fn mutations_of_small_model_never_panic() {
    no_panics("small.onnx", 0x6b696c6e);
}

#[test]
fn mutations_of_sparse_model_never_panic() {
    no_panics("sparse.onnx", 0x5eed);
}

#[test]
fn mutations_of_function_model_never_panic() {
    no_panics("function.onnx", 0xf00d);
}
