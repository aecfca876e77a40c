//! The register-blocked family of `wgpu.matmul` (`matmul_reg.wgsl`), aimed at real GPUs: each
//! thread keeps an RM x RN block of outputs in registers and, per k, reads RM/4 + RN/4 vec4s
//! of the workgroup tiles for RM * RN FMAs (the `w{W}r{R}` family reads one tile value per
//! FMA pair).
//!
//! Variant names: `g{BM}x{BN}t{RM}x{RN}k{BK}v{V}u{U}`: a BM x BN workgroup tile of
//! (BN/RN) x (BM/RM) threads, RM x RN outputs per thread (multiples of 4), BK columns of A per
//! step (a multiple of 4), global loads V wide (1 or 4), the k loop unrolled by U (a divisor
//! of BK; the unrolled text is generated here, WGSL has no unroll pragma).
//!
//! Vector width 4: A, B and Y are bound as `array<vec4<ST>>` and a tile row is read as vec4s
//! where the operand's rows are whole vec4s (K % 4 == 0 for A and a transposed B, N % 4 == 0
//! for B and Y); otherwise the same shader reads and writes single elements of those vec4s
//! (a uniform branch on the parameters), so every shape gets the right result. Every buffer
//! is a whole number of 16 bytes (`runtime::upload_as`, the pool's 256-byte classes), so
//! the vec4 view covers every element.
//!
//! Measured with the `gemm` test (f32, n^3, median of 3, each run submitted and waited for):
//! on an H100 through Vulkan (NVIDIA 580 driver) at 4096^3 the old best, `w8r4`, ran at
//! 1.8 TFLOP/s and these at 15-28 (`g128x128t8x8k16v4u16` 28.5, `g64x128t4x8k16v4u4` 26.5,
//! `g64x64t4x4k16v4u4` 23.7, its V = 1 twin 15.8); at 1024^3 1.2 against 9-11
//! (`g64x64t4x4k32v4u8` 11.1). On lavapipe (2 cores) at 512^3: `d64c8` 2.0 GFLOP/s, these
//! 4.8-8.6. The list in `matmul::VARIANTS` keeps a spread (small tiles for small problems,
//! large ones for large, one V = 1) for the tuner to pick from per step.

use crate::runtime::Float;

const SOURCE: &str = include_str!("matmul_reg.wgsl");

/// The shader names of an operand whose rows run along K: its binding, element read, bound,
/// first row of the workgroup's tile, workgroup tile and that tile's pitch.
struct Side {
    src: &'static str,
    ld: &'static str,
    limit: &'static str,
    origin: &'static str,
    dst: &'static str,
    pitch: &'static str,
}

const A_SIDE: Side = Side { src: "a", ld: "ld_a", limit: "M", origin: "row0", dst: "As", pitch: "AP" };
const BT_SIDE: Side = Side { src: "b", ld: "ld_b", limit: "N", origin: "col0", dst: "Bs", pitch: "BP" };

/// The geometry of a `g...` variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub bm: u32,
    pub bn: u32,
    pub rm: u32,
    pub rn: u32,
    pub bk: u32,
    pub v: u32,
    pub u: u32,
}

/// The number before the first `sep` in `s`, and what follows it.
fn num(s: &str, sep: char) -> Option<(u32, &str)> {
    let (n, rest) = s.split_once(sep)?;
    Some((n.parse().ok()?, rest))
}

impl Reg {
    /// The geometry of a variant name, None when it is not a valid `g...` name.
    pub fn parse(variant: &str) -> Option<Reg> {
        let s = variant.strip_prefix('g')?;
        let (bm, s) = num(s, 'x')?;
        let (bn, s) = num(s, 't')?;
        let (rm, s) = num(s, 'x')?;
        let (rn, s) = num(s, 'k')?;
        let (bk, s) = num(s, 'v')?;
        let (v, s) = num(s, 'u')?;
        let u: u32 = s.parse().ok()?;
        let r = Reg { bm, bn, rm, rn, bk, v, u };
        let ok = rm > 0
            && rn > 0
            && rm % 4 == 0
            && rn % 4 == 0
            && bm % rm == 0
            && bn % rn == 0
            && bm >= rm
            && bn >= rn
            && bk > 0
            && bk % 4 == 0
            && (v == 1 || v == 4)
            && u > 0
            && bk % u == 0;
        ok.then_some(r)
    }

    /// Threads along N and along M.
    pub fn threads(self) -> (u32, u32) {
        (self.bn / self.rn, self.bm / self.rm)
    }

    /// Threads and workgroup bytes (f32 tiles, the larger storage type).
    pub fn footprint(self) -> (u32, u32) {
        let (tx, ty) = self.threads();
        (tx * ty, self.tile_vec4s() * 16)
    }

    /// vec4s of the two workgroup tiles, padding included.
    fn tile_vec4s(self) -> u32 {
        self.bk * (self.bm / 4 + 1) + self.bk * (self.bn / 4 + 1)
    }

    /// Workgroups for an `m x n` output.
    pub fn groups(self, m: usize, n: usize) -> [u32; 3] {
        [n.div_ceil(self.bn as usize).max(1) as u32, m.div_ceil(self.bm as usize).max(1) as u32, 1]
    }

    /// The shader (see the module doc); `epi` is the epilogue on `x`.
    pub fn shader(self, epi: &str, float: Float) -> String {
        let (tx, ty) = self.threads();
        let vt = if self.v == 4 { "vec4<ST>" } else { "ST" };
        let body = SOURCE
            .replace("{BM}", &self.bm.to_string())
            .replace("{BN}", &self.bn.to_string())
            .replace("{BK}", &self.bk.to_string())
            .replace("{TX}", &tx.to_string())
            .replace("{TY}", &ty.to_string())
            .replace("{AS}", &(self.bk * (self.bm / 4 + 1)).to_string())
            .replace("{BS}", &(self.bk * (self.bn / 4 + 1)).to_string())
            .replace("{VT}", vt)
            .replace("{HELPERS}", &self.helpers())
            .replace("{ACC}", &self.accumulators())
            .replace("{LOAD_A}", &self.load_along_k(&A_SIDE, self.bm))
            .replace("{LOAD_BT}", &self.load_along_k(&BT_SIDE, self.bn))
            .replace("{LOAD_B}", &self.load_along_n())
            .replace("{INNER}", &self.inner(float))
            .replace("{STORE}", &self.stores())
            .replace("{EPILOGUE}", epi);
        format!("{}{}{}{body}", float.header(), crate::runtime::PARAMS_WGSL, super::act::PRELUDE)
    }

    /// Element reads of A and B and the four-output store, for the operand type.
    fn helpers(self) -> String {
        let common = "// alpha, bias and the activation on four outputs from column gc on.
fn out4(gc: u32, v: vec4<f32>, N: u32) -> vec4<f32> {
    var o = PF(4u) * v;
    if (P(5u) == 1u) {
        let l = N - 1u;
        o = o + vec4<f32>(f32(bias[min(gc, l)]), f32(bias[min(gc + 1u, l)]), f32(bias[min(gc + 2u, l)]), f32(bias[min(gc + 3u, l)]));
    }
    return vec4<f32>(act(o.x), act(o.y), act(o.z), act(o.w));
}
";
        let (reads, store) = if self.v == 4 {
            (
                "fn ld_a(i: u32) -> ST { return a[i >> 2u][i & 3u]; }\nfn ld_b(i: u32) -> ST { return b[i >> 2u][i & 3u]; }\n",
                "    if ((N & 3u) == 0u && gc + 3u < N) {
        y[i >> 2u] = vec4<ST>(to_st(o.x), to_st(o.y), to_st(o.z), to_st(o.w));
        return;
    }
    for (var q = 0u; q < 4u; q = q + 1u) {
        let e = i + q;
        if (gc + q < N) { y[e >> 2u][e & 3u] = to_st(o[q]); }
    }",
            )
        } else {
            (
                "fn ld_a(i: u32) -> ST { return a[i]; }\nfn ld_b(i: u32) -> ST { return b[i]; }\n",
                "    for (var q = 0u; q < 4u; q = q + 1u) {
        if (gc + q < N) { y[i + q] = to_st(o[q]); }
    }",
            )
        };
        format!(
            "{reads}{common}// Four outputs of row gr from column gc on (gc a multiple of 4), bounds checked.
fn put(gr: u32, gc: u32, v: vec4<f32>) {{
    let M = P(0u);
    let N = P(1u);
    if (gr >= M) {{ return; }}
    var o = out4(gc, v, N);
    let i = gr * N + gc;
{store}
}}"
        )
    }

    fn accumulators(self) -> String {
        let mut s = String::new();
        for i in 0..self.rm {
            for j in 0..self.rn / 4 {
                s.push_str(&format!("    var c{i}_{j} = vec4<f32>(0.0);\n"));
            }
        }
        s
    }

    /// A loop over a tile's `count` loads, `T` threads at a time (the bound check dropped
    /// when `count` is a multiple of `T`).
    fn each(self, count: u32, body: &str) -> String {
        let (tx, ty) = self.threads();
        let t = tx * ty;
        let guard = if count.is_multiple_of(t) { "true".to_string() } else { format!("idx < {count}u") };
        format!(
            "for (var e = 0u; e < {}u; e = e + 1u) {{
                let idx = t + e * T;
                if ({guard}) {{
{body}
                }}
            }}",
            count.div_ceil(t)
        )
    }

    /// Loads a `rows x BK` tile of a row-major operand whose rows run along K (A, or a
    /// transposed B) into the k-major tile `dst`: vec4s along K where K % 4 == 0.
    fn load_along_k(self, side: &Side, rows: u32) -> String {
        let Side { src, ld, limit, origin, dst, pitch } = side;
        let scalar = self.each(
            rows * self.bk,
            &format!(
                "                    let r = idx / BK;
                    let c = idx % BK;
                    var v = ST(0.0);
                    if ({origin} + r < {limit} && k0 + c < K) {{ v = {ld}(({origin} + r) * K + k0 + c); }}
                    {dst}[c * {pitch} + r / 4u][r % 4u] = v;"
            ),
        );
        if self.v != 4 {
            return format!("        {scalar}");
        }
        let vector = self.each(
            rows * self.bk / 4,
            &format!(
                "                    let r = idx / (BK / 4u);
                    let c = (idx % (BK / 4u)) * 4u;
                    var v = vec4<ST>(ST(0.0));
                    if ({origin} + r < {limit} && k0 + c < K) {{ v = {src}[(({origin} + r) * K + k0 + c) >> 2u]; }}
                    let s = c * {pitch} + r / 4u;
                    let q = r % 4u;
                    {dst}[s][q] = v.x;
                    {dst}[s + {pitch}][q] = v.y;
                    {dst}[s + 2u * {pitch}][q] = v.z;
                    {dst}[s + 3u * {pitch}][q] = v.w;"
            ),
        );
        format!("        if ((K & 3u) == 0u) {{\n            {vector}\n        }} else {{\n            {scalar}\n        }}")
    }

    /// Loads the `BK x BN` tile of a B stored [K, N]: vec4s along N where N % 4 == 0.
    fn load_along_n(self) -> String {
        let scalar = self.each(
            self.bk * self.bn,
            "                    let r = idx / BN;
                    let c = idx % BN;
                    var v = ST(0.0);
                    if (k0 + r < K && col0 + c < N) { v = ld_b((k0 + r) * N + col0 + c); }
                    Bs[r * BP + c / 4u][c % 4u] = v;",
        );
        if self.v != 4 {
            return format!("            {scalar}");
        }
        let vector = self.each(
            self.bk * self.bn / 4,
            "                    let r = idx / (BN / 4u);
                    let c = (idx % (BN / 4u)) * 4u;
                    var v = vec4<ST>(ST(0.0));
                    if (k0 + r < K && col0 + c < N) { v = b[((k0 + r) * N + col0 + c) >> 2u]; }
                    Bs[r * BP + c / 4u] = v;",
        );
        format!("            if ((N & 3u) == 0u) {{\n            {vector}\n            }} else {{\n            {scalar}\n            }}")
    }

    /// The k loop over the tiles, unrolled by U: per k the A and B fragments into registers,
    /// then their outer product into the accumulators.
    fn inner(self, float: Float) -> String {
        let mut step = String::new();
        for u in 0..self.u {
            step.push_str(&format!("            {{\n                let k = kk + {u}u;\n"));
            for i4 in 0..self.rm / 4 {
                step.push_str(&format!("                let a{i4} = As[k * AP + {i4}u * TY + ty];\n"));
            }
            for j in 0..self.rn / 4 {
                step.push_str(&format!("                let b{j} = Bs[k * BP + {j}u * TX + tx];\n"));
            }
            for i in 0..self.rm {
                let av = format!("a{}.{}", i / 4, ["x", "y", "z", "w"][(i % 4) as usize]);
                for j in 0..self.rn / 4 {
                    let c = format!("c{i}_{j}");
                    step.push_str(&match float {
                        Float::F32 => format!("                {c} = fma(vec4<f32>({av}), b{j}, {c});\n"),
                        Float::F16 => format!("                {c} = {c} + vec4<f32>({av} * b{j});\n"),
                    });
                }
            }
            step.push_str("            }\n");
        }
        format!("        for (var kk = 0u; kk < BK; kk = kk + {}u) {{\n{step}        }}", self.u)
    }

    fn stores(self) -> String {
        let mut s = String::new();
        for i in 0..self.rm {
            let (i4, q) = (i / 4, i % 4);
            for j in 0..self.rn / 4 {
                s.push_str(&format!("    put(row0 + ({i4}u * TY + ty) * 4u + {q}u, col0 + ({j}u * TX + tx) * 4u, c{i}_{j});\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Encoded, KernelCtx, PRECISION, matmul};
    use crate::runtime::{Pool, encoder, readback, upload_as};
    use kiln_target::{AttrValue, Step};

    #[test]
    fn names_parse_and_bad_ones_are_refused() {
        let r = Reg::parse("g64x32t8x4k16v4u4").expect("valid");
        assert_eq!(r, Reg { bm: 64, bn: 32, rm: 8, rn: 4, bk: 16, v: 4, u: 4 });
        assert_eq!(r.threads(), (8, 8));
        assert_eq!(r.footprint(), (64, (16 * 17 + 16 * 9) * 16));
        for bad in
            ["g64x64t4x4k16v2u4", "g64x64t3x4k16v4u4", "g64x64t4x4k16v4u3", "g64x64t4x4k6v4u2", "g64x60t4x8k16v4u4", "w8r4", "g64x64"]
        {
            assert_eq!(Reg::parse(bad), None, "{bad}");
        }
        // Every listed variant of the family is a valid name.
        assert!(matmul::VARIANTS.iter().filter(|v| v.starts_with('g')).all(|v| Reg::parse(v).is_some()));
    }

    /// One GEMM on the adapter against an f64 host reference: max |error| / max(1, max |y|).
    fn check(variant: &str, (m, n, k): (usize, usize, usize), tb: bool, bias: bool, act: &str, float: Float) -> Result<f64, String> {
        let gpu = crate::device::gpu().map_err(|e| e.to_string())?;
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0).collect();
        let c: Vec<f32> = (0..n).map(|i| (i % 9) as f32 / 4.0 - 1.0).collect();
        let alpha = 0.75f32;
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("transB".to_string(), AttrValue::Int(tb as i64));
        attrs.insert("alpha".to_string(), AttrValue::Float(alpha));
        attrs.insert("activation".to_string(), AttrValue::String(act.into()));
        if float == Float::F16 {
            attrs.insert(PRECISION.to_string(), AttrValue::String("f16".into()));
        }
        let step = Step {
            node: "t".into(),
            op: "Gemm".into(),
            domain: String::new(),
            kernel: matmul::KERNEL.into(),
            variant: variant.into(),
            inputs: vec![Some(0), Some(1), Some(2)],
            outputs: vec![Some(3)],
            attrs,
            opset: 17,
            launch: None,
        };
        let kernel = crate::kernels::load(&step, &KernelCtx { gpu: &gpu, weight: &|_| None })?;
        let bshape = if tb { [n, k] } else { [k, n] };
        let ins = [upload_as(&gpu, &a, &[m, k], float), upload_as(&gpu, &b, &bshape, float), upload_as(&gpu, &c, &[n], float)];
        let refs = [Some(&ins[0]), Some(&ins[1]), bias.then_some(&ins[2])];
        let mut pool = Pool::default();
        let mut enc = encoder(&gpu);
        let y = kernel.encode(&mut Encoded { gpu: &gpu, pool: &mut pool, enc: &mut enc, host: &[], float }, &refs)?;
        let got = readback(&gpu, enc, &y).map_err(|e| e.to_string())?;
        // The reference reads the operands as the device stores them.
        let q = |x: f32| if float == Float::F16 { half::f16::from_f32(x).to_f32() as f64 } else { x as f64 };
        let (mut err, mut scale) = (0.0f64, 1.0f64);
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|l| q(a[i * k + l]) * q(if tb { b[j * k + l] } else { b[l * n + j] })).sum();
                let x = alpha as f64 * dot + if bias { q(c[j]) } else { 0.0 };
                let want = if act == "relu" { x.max(0.0) } else { x };
                scale = scale.max(want.abs());
                err = err.max((got[i * n + j] as f64 - want).abs());
            }
        }
        Ok(err / scale)
    }

    /// Every register-blocked variant on edge shapes: M, N, K off the tiles, K below BK, the
    /// vec4 paths (K % 4 == 0, N % 4 == 0) and the scalar ones, transB, bias, an activation,
    /// f16 where the adapter has it. Without an adapter: skipped.
    #[test]
    fn register_blocked_variants_match_the_host() {
        let gpu = match crate::device::gpu() {
            Ok(g) => g,
            Err(e) => {
                assert!(std::env::var("KILN_REQUIRE_GPU_ADAPTER").as_deref() != Ok("1"), "KILN_REQUIRE_GPU_ADAPTER=1 but {e}");
                println!("skipped: {e}");
                return;
            }
        };
        type Problem = ((usize, usize, usize), bool, bool, &'static str, Float);
        let cases: &[Problem] = &[
            ((37, 100, 12), false, true, "relu", Float::F32),
            ((70, 97, 130), false, false, "none", Float::F32),
            ((33, 24, 20), true, true, "none", Float::F32),
            ((5, 66, 9), true, true, "relu", Float::F32),
            ((130, 132, 36), false, true, "relu", Float::F16),
        ];
        let mut failures = Vec::new();
        for v in matmul::VARIANTS.iter().filter(|v| v.starts_with('g') && crate::tune::fits(&gpu, matmul::KERNEL, v)) {
            for &(dims, tb, bias, act, float) in cases {
                if float == Float::F16 && !gpu.shader_f16 {
                    continue;
                }
                let tol = if float == Float::F16 { 1e-2 } else { 1e-4 };
                match check(v, dims, tb, bias, act, float) {
                    Ok(e) if e <= tol => {}
                    other => failures.push(format!("{v} {dims:?} transB {tb} bias {bias} {act} {float:?}: {other:?}")),
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
