//! A test of the prelude's `k_div` against IEEE division, bit for bit, over seeded pairs and the
//! quantization ties that exposed the problem on an H100 (NVIDIA's Vulkan division is
//! reciprocal-then-multiply). Its normal path uses integer arithmetic alone, exact on every
//! device, so passing here on lavapipe (whose `/` is exact anyway) checks it for all of them;
//! the same pairs through `a * (1.0 / b)`, NVIDIA's way, must differ somewhere, or the pairs
//! would not test anything.

use super::act::PRELUDE;
use crate::device::gpu;
use crate::runtime::{Float, PARAMS_WGSL, Pool, dispatch, encoder, finish, groups_1d, pipeline, readback, upload};

const SHADER: &str = "
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= P(0u)) { return; }
    y[2u * i] = a[i] * (1.0 / b[i]);
    y[2u * i + 1u] = k_div(a[i], b[i]);
}
";

fn pairs() -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // Quantization ties: x / scale landing on k + 0.5 (DynamicQuantizeLinear's case).
    for k in 0..255u32 {
        let scale = 0.0123f32 + k as f32 * 1e-4;
        a.push((k as f32 + 0.5) * scale);
        b.push(scale);
    }
    for _ in 0..1 << 16 {
        let r = next();
        let x = f32::from_bits(((r >> 8) as u32 & 0x007f_ffff) | (((r >> 40) as u32 % 60 + 97) << 23));
        let y = f32::from_bits(((r >> 31) as u32 & 0x007f_ffff) | (((r >> 56) as u32 % 40 + 107) << 23));
        a.push(if r & 1 == 0 { x } else { -x });
        b.push(y);
    }
    (a, b)
}

#[test]
fn k_div_rounds_like_ieee_division() {
    let g = match gpu() {
        Ok(g) => g,
        Err(e) => {
            assert!(std::env::var("KILN_REQUIRE_GPU_ADAPTER").as_deref() != Ok("1"), "KILN_REQUIRE_GPU_ADAPTER=1 but {e}");
            println!("skipped: {e}");
            return;
        }
    };
    let (a, b) = pairs();
    let n = a.len();
    let p = pipeline(&g, "test.k_div", "wg64", &format!("{}{PARAMS_WGSL}{PRELUDE}{SHADER}", Float::F32.header())).expect("shader compiles");
    let (ab, bb) = (upload(&g, &a, &[n]), upload(&g, &b, &[n]));
    let mut pool = Pool::default();
    let y = pool.take(&g, &[2 * n], Float::F32).expect("buffer");
    let mut enc = encoder(&g);
    dispatch(&g, &mut enc, &p, &[n as u32], &[&ab.buf, &bb.buf, &y.buf], groups_1d(n, 64)).expect("dispatch");
    finish(&g, enc).expect("run");
    let got = readback(&g, encoder(&g), &y).expect("readback");
    let mut wrong = Vec::new();
    let mut sloppy = 0;
    for i in 0..n {
        let want = a[i] / b[i];
        sloppy += usize::from(got[2 * i].to_bits() != want.to_bits());
        let v = got[2 * i + 1];
        if v.to_bits() != want.to_bits() {
            wrong.push(format!("k_div({:e}, {:e}) = {v:e}, IEEE {want:e}", a[i], b[i]));
        }
    }
    assert!(wrong.is_empty(), "{} of {n} quotients differ from IEEE division, first: {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert!(sloppy > 0, "no pair tells a reciprocal-and-multiply division from IEEE's");
    println!("k_div exact on {n} pairs; a * (1 / b) differs on {sloppy}");
}
