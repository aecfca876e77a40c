//! The adapter's f32 FMA peak, measured: every invocation of a large grid runs 16 independent
//! `fma` chains (the loop body holds each four times) (enough to hide the FMA latency on any GPU) for `iters` iterations, the grid
//! sized to fill the device many times over. The count of iterations doubles until one
//! dispatch takes at least [`MIN_SECONDS`], so launch and submission costs vanish in the
//! figure; the best of several such dispatches is the peak. A GEMM's share of this figure is
//! what the peer benchmark prints for the wgpu target (the CPU's is measured the same way, by
//! an FMA loop, in kiln_target_cpu).

use crate::device::gpu;
use crate::error::WgpuError;
use crate::runtime::{Float, PARAMS_WGSL, Pool, dispatch, encoder, finish, groups_1d, pipeline, readback};
use std::time::Instant;

/// Invocations per workgroup of the peak kernel.
const WG: u32 = 256;
/// Independent accumulators per invocation.
const CHAINS: usize = 16;
/// Copies of the 16 FMAs in the loop body (so the loop's own instructions are few).
const UNROLL: usize = 4;
/// Invocations in the grid on a GPU: 4096 workgroups of 256 (an H100 holds about 270 000
/// resident); on a CPU adapter (lavapipe) 64 workgroups, whose per-invocation costs would
/// otherwise hide the arithmetic.
const THREADS_GPU: usize = 1 << 20;
const THREADS_CPU: usize = 1 << 14;
/// A dispatch shorter than this is repeated with twice the iterations.
pub const MIN_SECONDS: f64 = 0.02;

/// The multiplier and addend come from the parameter block, so the compiler cannot fold the
/// chains; the sum is stored so it cannot drop them.
fn shader() -> String {
    let init: String = (0..CHAINS).map(|c| format!("    var a{c} = f32(t % 97u) * 1e-3 + {c}.0 * 1e-4;\n")).collect();
    let body: String = (0..UNROLL * CHAINS).map(|i| format!("        a{c} = fma(a{c}, m, s);\n", c = i % CHAINS)).collect();
    let sum: Vec<String> = (0..CHAINS).map(|c| format!("a{c}")).collect();
    format!(
        "{PARAMS_WGSL}@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size({WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {{
    let iters = P(0u);
    let m = PF(1u);
    let s = PF(2u);
    let t = gid.x + gid.y * nw.x * {WG}u;
{init}    for (var i = 0u; i < iters; i = i + 1u) {{
{body}    }}
    y[t] = {};
}}
",
        sum.join(" + ")
    )
}

/// The adapter's description and whether it is a CPU (lavapipe): GEMM sizes differ.
pub fn adapter() -> Result<(String, bool), WgpuError> {
    let g = gpu()?;
    Ok((crate::device::description(&g), g.info.device_type == wgpu::DeviceType::Cpu))
}

/// The measured peak.
#[derive(Clone, Debug)]
pub struct Peak {
    pub gflops: f64,
    /// Iterations per invocation of the timed dispatches.
    pub iters: u32,
    /// Invocations in the grid.
    pub threads: usize,
    /// Best wall time of one dispatch (record, submit, wait), seconds.
    pub seconds: f64,
}

/// Measures the adapter's f32 FMA peak (best of `runs` dispatches once a dispatch lasts at least
/// [`MIN_SECONDS`]).
pub fn fma_peak(runs: usize) -> Result<Peak, WgpuError> {
    let g = gpu()?;
    let threads = if g.info.device_type == wgpu::DeviceType::Cpu { THREADS_CPU } else { THREADS_GPU };
    let p = pipeline(&g, "bench.fma_peak", "wg256", &shader())?;
    let mut pool = Pool::default();
    let y = pool.take(&g, &[threads], Float::F32)?;
    let groups = groups_1d(threads, WG);
    let once = |iters: u32| -> Result<f64, WgpuError> {
        let params = [iters, 0.999_999f32.to_bits(), 1e-7f32.to_bits()];
        let t = Instant::now();
        let mut enc = encoder(&g);
        dispatch(&g, &mut enc, &p, &params, &[&y.buf], groups).map_err(WgpuError::Readback)?;
        finish(&g, enc)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let mut iters = 16u32;
    once(iters)?; // compile and first-use costs
    while once(iters)? < MIN_SECONDS && iters < (1 << 24) {
        iters *= 2;
    }
    let best = (0..runs.max(1)).map(|_| once(iters)).collect::<Result<Vec<_>, _>>()?.into_iter().fold(f64::INFINITY, f64::min);
    // Invocation 0's sum, computed here: a driver that dropped or shortened the work would
    // show as a wrong value.
    let v = readback(&g, encoder(&g), &y)?;
    let want = expected_sum(0, iters);
    if v.first().is_none_or(|&got| (got - want).abs() > 1e-3 * want.abs().max(1e-3)) {
        return Err(WgpuError::Readback(format!(
            "the FMA peak kernel's first sum is {:?}, {want} expected: the adapter did not run the work measured",
            v.first()
        )));
    }
    let flops = 2.0 * (UNROLL * CHAINS * threads) as f64 * iters as f64;
    Ok(Peak { gflops: flops / best / 1e9, iters, threads, seconds: best })
}

/// What invocation `t` stores after `iters` iterations (the kernel's arithmetic in f32).
fn expected_sum(t: u32, iters: u32) -> f32 {
    let (m, s) = (0.999_999f32, 1e-7f32);
    (0..CHAINS)
        .map(|c| {
            let mut a = (t % 97) as f32 * 1e-3 + c as f32 * 1e-4;
            for _ in 0..iters as usize * UNROLL {
                a = a.mul_add(m, s);
            }
            a
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shader_has_every_chain() {
        let s = super::shader();
        assert_eq!(s.matches("fma(").count(), super::CHAINS * super::UNROLL);
        assert!(s.contains("a15 = fma(a15, m, s);"));
    }
}
