//! The evidence for int8 on the wgpu target: a GEMM on WGSL's packed 4x8 dot product
//! (`dot4I8Packed`, the `packed_4x8_integer_dot_product` language extension; naga emits
//! SPIR-V's `OpSDot` where the device declares the DotProduct capability, shifts and
//! multiplies elsewhere), shaped like the f32 direct GEMM (`d{WG}c{C}`: an invocation per C
//! outputs of a row, no workgroup memory), timed on the adapter. `int8_decision` compares it
//! with the f32 GEMM's best variant at the same size.

use crate::bench::{GemmFigure, gemm};
use crate::device::gpu;
use crate::error::WgpuError;
use crate::runtime::{PARAMS_WGSL, Pool, dispatch, encoder, finish, groups_1d, pipeline, readback, upload};
use std::time::Instant;

const WG: u32 = 64;
const C: u32 = 4;

/// A: [M, K/4] and B^T: [N, K/4] of `{IN}` (four K values each), Y: [M, N] of `{ACC}`,
/// the four products summed by `{DOT}`: `u32` / `i32` / `dot4I8Packed` for int8 (four int8
/// values to a word), `vec4<f32>` / `f32` / `dot` for the same loop in f32 reading K four at
/// a time (the baseline that separates what the packed dot product gains from what the
/// wider loads gain).
/// p: [M, N, K/4]
const SOURCE: &str = r#"
@group(0) @binding(1) var<storage, read> a: array<{IN}>;
@group(0) @binding(2) var<storage, read> b: array<{IN}>;
@group(0) @binding(3) var<storage, read_write> y: array<{ACC}>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K4 = P(2u);
    let cols = (N + 3u) / 4u;
    let t = gid.x + gid.y * nw.x * 64u;
    if (t >= M * cols) { return; }
    let row = t / cols;
    let n0 = (t % cols) * 4u;
    var acc: array<{ACC}, 4>;
    for (var k = 0u; k < K4; k = k + 1u) {
        let av = a[row * K4 + k];
        for (var j = 0u; j < 4u; j = j + 1u) {
            acc[j] = acc[j] + {DOT}(av, b[min(n0 + j, N - 1u) * K4 + k]);
        }
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (n0 + j < N) { y[row * N + n0 + j] = acc[j]; }
    }
}
"#;

fn shader(input: &str, acc: &str, dot: &str) -> String {
    SOURCE.replace("{IN}", input).replace("{ACC}", acc).replace("{DOT}", dot)
}

fn pack(v: &[i8]) -> Vec<f32> {
    v.chunks(4).map(|c| f32::from_bits(u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))).collect()
}

/// Median seconds of `runs` dispatches of `source` over A, B into a fresh `[m, n]` output
/// (after a warm-up), and the output read back.
fn time_shader(
    source: &str,
    label: &str,
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    runs: usize,
) -> Result<(f64, Vec<f32>), WgpuError> {
    let g = gpu()?;
    let p = pipeline(&g, label, "d64c4", &format!("{PARAMS_WGSL}{source}"))?;
    let (ab, bb) = (upload(&g, a, &[a.len()]), upload(&g, b, &[b.len()]));
    let mut pool = Pool::default();
    let y = pool.take(&g, &[m, n], crate::runtime::Float::F32)?;
    let params = [m as u32, n as u32, (k / 4) as u32];
    let groups = groups_1d(m * n.div_ceil(C as usize), WG);
    let mut times = Vec::new();
    for r in 0..=runs.max(1) {
        let t = Instant::now();
        let mut enc = encoder(&g);
        dispatch(&g, &mut enc, &p, &params, &[&ab.buf, &bb.buf, &y.buf], groups).map_err(WgpuError::Readback)?;
        finish(&g, enc)?;
        if r > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], readback(&g, encoder(&g), &y)?))
}

fn figure(variant: &str, seconds: f64, (m, n, k): (usize, usize, usize)) -> GemmFigure {
    GemmFigure { variant: variant.into(), seconds, gflops: 2.0 * (m * n * k) as f64 / seconds / 1e9 }
}

/// Times `m x k @ k x n` in int8 (k a multiple of 4) on `dot4I8Packed` and the same loop in
/// f32 with `vec4` loads, `runs` times each after a warm-up: (int8, f32 x4, whether the int8
/// result equals the host's int32 exactly).
pub fn gemm_int8(m: usize, n: usize, k: usize, runs: usize) -> Result<(GemmFigure, GemmFigure, bool), WgpuError> {
    if !k.is_multiple_of(4) {
        return Err(WgpuError::NotSupported(format!("an int8 GEMM with K = {k}, not a multiple of 4")));
    }
    let a: Vec<i8> = (0..m * k).map(|i| ((i * 7) % 255) as i16 as i8).collect();
    let bt: Vec<i8> = (0..n * k).map(|i| ((i * 13) % 251) as i16 as i8).collect();
    let (s8, got) = time_shader(&shader("u32", "i32", "dot4I8Packed"), "int8 gemm", &pack(&a), &pack(&bt), (m, n, k), runs)?;
    let exact = (0..m * n).all(|i| {
        let (r, c) = (i / n, i % n);
        let want: i32 = (0..k).map(|j| a[r * k + j] as i32 * bt[c * k + j] as i32).sum();
        got[i].to_bits() as i32 == want
    });
    let af: Vec<f32> = a.iter().map(|&v| f32::from(v)).collect();
    let bf: Vec<f32> = bt.iter().map(|&v| f32::from(v)).collect();
    let (s32, _) = time_shader(&shader("vec4<f32>", "f32", "dot"), "f32x4 gemm", &af, &bf, (m, n, k), runs)?;
    Ok((figure("int8 dot4I8Packed d64c4", s8, (m, n, k)), figure("f32 vec4 d64c4", s32, (m, n, k)), exact))
}

/// The int8 GEMM against the f32 GEMM's fastest variant at one size on this adapter.
#[derive(Clone, Debug)]
pub struct Int8Evidence {
    pub int8: GemmFigure,
    /// The same loop in f32, K read four at a time.
    pub f32x4: GemmFigure,
    /// The fastest `wgpu.matmul` variant.
    pub f32_best: GemmFigure,
    /// The int8 result equals the host's.
    pub exact: bool,
}

impl Int8Evidence {
    /// int8 time over the f32 time: above 1, int8 does not pay here.
    pub fn ratio(&self) -> f64 {
        self.int8.seconds / self.f32_best.seconds.max(1e-12)
    }
}

/// Measures both at `m x k @ k x n`.
pub fn int8_evidence(m: usize, n: usize, k: usize, runs: usize) -> Result<Int8Evidence, WgpuError> {
    let (int8, f32x4, exact) = gemm_int8(m, n, k, runs)?;
    let f32_best = gemm(m, n, k, runs)?
        .into_iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .ok_or_else(|| WgpuError::NotSupported("an f32 GEMM (no variant fits the adapter)".into()))?;
    Ok(Int8Evidence { int8, f32x4, f32_best, exact })
}
