//! `wgpu.matmul`: linear layers (`MatMul` / `Gemm` / `kiln::FusedMatMul` with a constant 2-D
//! B, the steps the CPU target puts on `cpu.matmul`) on a tiled GEMM with workgroup memory
//! and the fused alpha + bias + activation epilogue. Variants, default first: `w{W}r{R}`
//! (`matmul.wgsl`: W x W threads, R x R outputs each, tile W*R, tiles read per FMA),
//! `d{WG}c{C}` (`matmul_direct.wgsl`: no workgroup memory, C columns per invocation) and
//! `g{BM}x{BN}t{RM}x{RN}k{BK}v{V}u{U}` (`matmul_reg.rs`: register-blocked, vec4 loads,
//! unrolled k loop; for real GPUs).

use super::act::{PRELUDE, epilogue, step_float, step_int};
use super::matmul_reg::Reg;
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::{Float, GpuTensor, PARAMS_WGSL, dispatch, pipeline, upload};
use kiln_target::{Launch, Step};

pub const KERNEL: &str = "wgpu.matmul";
pub const VARIANTS: &[&str] = &[
    "w16r1",
    "w8r2",
    "w16r2",
    "w8r4",
    "d64c1",
    "d64c4",
    "d128c4",
    "d64c8",
    "g64x64t4x4k16v4u4",
    "g64x64t4x4k32v4u8",
    "g64x128t4x8k16v4u4",
    "g128x128t8x8k16v4u16",
    "g32x32t4x4k16v4u4",
    "g64x64t4x4k16v1u4",
];
const SOURCE: &str = include_str!("matmul.wgsl");
const DIRECT: &str = include_str!("matmul_direct.wgsl");

/// (workgroup size, columns per invocation) of a direct variant `d{WG}c{C}`.
fn direct(variant: &str) -> Option<(u32, u32)> {
    let rest = variant.strip_prefix('d')?;
    let (w, c) = rest.split_once('c')?;
    Some((w.parse().ok()?, c.parse().ok()?)).filter(|&(w, c)| w > 0 && c > 0)
}

/// (W, R) of a variant name `w{W}r{R}`.
pub fn geometry(variant: &str) -> (u32, u32) {
    let parse = || -> Option<(u32, u32)> {
        let rest = variant.strip_prefix('w')?;
        let (w, r) = rest.split_once('r')?;
        Some((w.parse().ok()?, r.parse().ok()?))
    };
    parse().filter(|&(w, r)| w > 0 && r > 0).unwrap_or((16, 1))
}

/// Threads and workgroup bytes of a variant.
pub fn footprint(variant: &str) -> (u32, u32) {
    if let Some((wg, _)) = direct(variant) {
        return (wg, 0);
    }
    if let Some(g) = Reg::parse(variant) {
        return g.footprint();
    }
    let (w, r) = geometry(variant);
    (w * w, 2 * w * w * r * 4)
}

/// The shader of a variant: operands and output stored as `float`; with f16, products in
/// f16 and sums in f32 (an f16 sum over K terms loses about log2(K) bits), epilogue in f32.
pub fn shader(variant: &str, epi: &str, float: Float) -> String {
    if let Some((wg, c)) = direct(variant) {
        let body = DIRECT.replace("{WG}", &wg.to_string()).replace("{C}", &c.to_string()).replace("{EPILOGUE}", epi);
        return format!("{}{PARAMS_WGSL}{PRELUDE}{body}", float.header());
    }
    if let Some(g) = Reg::parse(variant) {
        return g.shader(epi, float);
    }
    let (w, r) = geometry(variant);
    let body = SOURCE
        .replace("{W}", &w.to_string())
        .replace("{R}", &r.to_string())
        .replace("{BM_BK}", &(w * r * w).to_string())
        .replace("{BK_BN}", &(w * w * r).to_string())
        .replace("{RR}", &(r * r).to_string())
        .replace("{EPILOGUE}", epi);
    format!("{}{PARAMS_WGSL}{PRELUDE}{body}", float.header())
}

pub fn covers(step: &Step) -> bool {
    step_int(step, "transA").unwrap_or(0) == 0 && step_float(step, "beta").unwrap_or(1.0) == 1.0 && epilogue(step, "x").is_some()
}

pub struct MatMul {
    pipeline: wgpu::ComputePipeline,
    direct: Option<(u32, u32)>,
    reg: Option<Reg>,
    w: u32,
    r: u32,
    trans_b: bool,
    alpha: f32,
    /// A one-value buffer bound when there is no bias.
    dummy: GpuTensor,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    let epi = epilogue(step, "x").ok_or("unsupported activation")?;
    let (w, r) = geometry(&step.variant);
    let p = pipeline(cx.gpu, KERNEL, &step.variant, &shader(&step.variant, &epi, super::precision(step)?)).map_err(|e| e.to_string())?;
    let trans_b = step_int(step, "transB").unwrap_or(0) != 0;
    Ok(Box::new(MatMul {
        pipeline: p,
        direct: direct(&step.variant),
        reg: Reg::parse(&step.variant),
        w,
        r,
        trans_b,
        alpha: step_float(step, "alpha").unwrap_or(1.0),
        dummy: upload(cx.gpu, &[0.0], &[1]),
    }))
}

/// (M, N, K) and the output shape for A's shape and B's.
pub fn problem(a: &[usize], b: &[usize], trans_b: bool) -> Result<(usize, usize, usize, Vec<usize>), String> {
    let (k, n) = match b {
        &[r, c] if trans_b => (c, r),
        &[r, c] => (r, c),
        s => return Err(format!("B must be 2-D, found {s:?}")),
    };
    if a.len() < 2 || a.last() != Some(&k) {
        return Err(format!("A {a:?} does not fit B {b:?} (transB {trans_b})"));
    }
    let m: usize = a[..a.len() - 1].iter().product();
    let mut out = a.to_vec();
    if let Some(l) = out.last_mut() {
        *l = n;
    }
    Ok((m, n, k, out))
}

/// Workgroups for an `m x n` output: direct `(workgroup, columns)`, register-blocked or tiled
/// `(W, R)`.
fn groups(direct: Option<(u32, u32)>, reg: Option<Reg>, (w, r): (u32, u32), m: usize, n: usize) -> [u32; 3] {
    match (direct, reg) {
        (Some((wg, c)), _) => crate::runtime::groups_1d(m * n.div_ceil(c as usize), wg),
        (None, Some(g)) => g.groups(m, n),
        (None, None) => {
            let tile = (w * r) as usize;
            [n.div_ceil(tile).max(1) as u32, m.div_ceil(tile).max(1) as u32, 1]
        }
    }
}

/// The launch geometry of a variant at the step's input shapes.
pub fn launch(step: &Step, variant: &str, shapes: &[Option<Vec<usize>>]) -> Option<Launch> {
    let (a, b) = (shapes.first()?.as_ref()?, shapes.get(1)?.as_ref()?);
    let (m, n, _, _) = problem(a, b, step_int(step, "transB").unwrap_or(0) != 0).ok()?;
    let d = direct(variant);
    let g = Reg::parse(variant);
    let (w, r) = geometry(variant);
    let block = match (d, g) {
        (Some((wg, _)), _) => [wg, 1, 1],
        (None, Some(g)) => [g.threads().0, g.threads().1, 1],
        (None, None) => [w, w, 1],
    };
    // The tiles hold the step's storage type (footprint counts f32, the larger).
    let shared_bytes = footprint(variant).1 / 4 * super::precision(step).ok()?.bytes() as u32;
    Some(Launch { grid: groups(d, g, (w, r), m, n), block, shared_bytes })
}

impl GpuKernel for MatMul {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let a = inputs.first().copied().flatten().ok_or("A is missing")?;
        let b = inputs.get(1).copied().flatten().ok_or("B is missing")?;
        let bias = inputs.get(2).copied().flatten();
        let (m, n, k, out) = problem(&a.shape, &b.shape, self.trans_b)?;
        let y = cx.output(&out)?;
        let params = [m as u32, n as u32, k as u32, self.trans_b as u32, self.alpha.to_bits(), bias.is_some() as u32];
        let groups = groups(self.direct, self.reg, (self.w, self.r), m, n);
        if groups[1] > 65535 {
            return Err(format!("{m} rows exceed the adapter's 65535 workgroups per dimension"));
        }
        let bias_buf = bias.unwrap_or(&self.dummy);
        dispatch(cx.gpu, cx.enc, &self.pipeline, &params, &[&a.buf, &b.buf, &bias_buf.buf, &y.buf], groups)?;
        Ok(y)
    }
}
