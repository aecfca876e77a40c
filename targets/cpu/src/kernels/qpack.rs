//! The int8 GEMM's operands: weights packed once for `vpdpbusd` ([`QPackedB`]) and the
//! activation quantized on the fly into padded u8 rows ([`QuantizedA`], [`QuantParams`]).
//!
//! Quantization is exactly ONNX QuantizeLinear / DynamicQuantizeLinear as Kiln's reference
//! kernels compute it: `q = clamp(round_ties_even(x / scale) + zp)` with a true f32 division
//! (the reference's f64 division rounded to f32 is the same number), NaN -> the integer 0.
//! An i8 activation is stored as u8 (`q + 128`, zero point + 128), so the GEMM is always
//! u8 x i8.

use super::arch_qquant;
use super::error::{KernelError, check_len, checked_product, invalid};
use super::qgemm::{PANEL, QIsa};

const KERNEL: &str = "qgemm pack";

/// Integer weights as given: int8, or uint8 (converted to int8 at pack time, `b - 128`, with
/// the zero point moved the same way).
#[derive(Clone, Copy, Debug)]
pub enum QInts<'a> {
    I8(&'a [i8]),
    U8(&'a [u8]),
}

impl QInts<'_> {
    fn len(&self) -> usize {
        match self {
            QInts::I8(v) => v.len(),
            QInts::U8(v) => v.len(),
        }
    }
    /// Element `i` as the int8 the kernel multiplies (u8 shifted by -128).
    fn at(&self, i: usize) -> Option<i32> {
        match self {
            QInts::I8(v) => v.get(i).map(|&x| i32::from(x)),
            QInts::U8(v) => v.get(i).map(|&x| i32::from(x) - 128),
        }
    }
    fn shift(&self) -> i32 {
        if matches!(self, QInts::U8(_)) { 128 } else { 0 }
    }
}

/// Weights `B [k][n]` packed for the microkernels: column panels of 16, k in groups of 4,
/// `[n / 16][k / 4][16][4]` int8 (zero-padded), plus each column's sum and zero point for the
/// zero-point compensation.
#[derive(Clone, Debug, PartialEq)]
pub struct QPackedB {
    k: usize,
    n: usize,
    data: Vec<i8>,
    col_sums: Vec<i32>,
    zero_points: Vec<i32>,
}

impl QPackedB {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// k groups of 4 (the padded k is `4 kg`).
    pub(crate) fn kg(&self) -> usize {
        self.k.div_ceil(4)
    }
    pub(crate) fn data(&self) -> &[i8] {
        &self.data
    }
    pub(crate) fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }
    /// The int8-domain zero point of each column.
    pub(crate) fn zero_points(&self) -> &[i32] {
        &self.zero_points
    }
}

/// Packs `B[kk][j] = b[kk * rs + j * cs]` (`k x n`; `rs, cs` let a conv's `[M, K]` weights
/// be read as `[K, M]`); `zero_points` (in b's own type) has 1 or `n` entries (empty: 0).
pub fn qpack_b(b: QInts<'_>, k: usize, n: usize, rs: usize, cs: usize, zero_points: &[i32]) -> Result<QPackedB, KernelError> {
    if k > 0 && n > 0 {
        let last = (k - 1).checked_mul(rs).zip((n - 1).checked_mul(cs)).and_then(|(x, y)| x.checked_add(y));
        if last.is_none_or(|l| l >= b.len()) {
            return Err(invalid(KERNEL, format!("B ({} elements) is too short for {k}x{n} with strides ({rs}, {cs})", b.len())));
        }
    }
    if !matches!(zero_points.len(), 0 | 1) && zero_points.len() != n {
        return Err(invalid(KERNEL, format!("{} zero points for {n} columns", zero_points.len())));
    }
    let (kg, panels) = (k.div_ceil(4), n.div_ceil(PANEL));
    // 1 KiB of zeros past the last panel: the AMX tile reads whole 16-group steps.
    let mut data = vec![0i8; checked_product(KERNEL, &[panels, kg, PANEL * 4])?.saturating_add(1024)];
    let mut col_sums = vec![0i32; n];
    for (j, sum) in col_sums.iter_mut().enumerate() {
        let base = (j / PANEL) * kg * PANEL * 4 + (j % PANEL) * 4;
        for kk in 0..k {
            let v = b.at(kk * rs + j * cs).ok_or_else(|| invalid(KERNEL, "B index out of range"))?;
            if let Some(d) = data.get_mut(base + (kk / 4) * PANEL * 4 + kk % 4) {
                // v is in [-128, 127] (u8 shifted by -128), so the cast is exact.
                *d = v as i8;
            }
            *sum += v;
        }
    }
    let zp = |j: usize| zero_points.get(j).or(zero_points.first()).copied().unwrap_or(0) - b.shift();
    Ok(QPackedB { k, n, data, col_sums, zero_points: (0..n).map(zp).collect() })
}

/// How x is quantized: `[scale, zero point, lo, hi]` of the activation's own type plus the
/// offset that takes it to u8 (128 for i8, else 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantParams {
    pub scale: f32,
    /// In the activation's type (u8: 0..=255, i8: -128..=127).
    pub zero_point: i32,
    pub signed: bool,
}

impl QuantParams {
    /// DynamicQuantizeLinear's scale and zero point for `x` (u8): the range `[min(0, min x),
    /// max(0, max x)]` over 255 steps; scale 0 when x is all zeros (then every q is 0).
    pub fn dynamic(x: &[f32], isa: QIsa) -> QuantParams {
        let (lo, hi) = arch_qquant::minmax(isa, x);
        let scale = (hi - lo) / 255.0;
        // Scale 0: zero point 0 (the reference's choice; `-0 / 0` is NaN, which `as` makes 0 too).
        let zero_point = if scale == 0.0 { 0 } else { (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32 };
        QuantParams { scale, zero_point, signed: false }
    }

    /// The zero point in the u8 domain the GEMM uses.
    pub fn u8_zero_point(&self) -> i32 {
        self.zero_point + if self.signed { 128 } else { 0 }
    }

    /// `[scale, zp, lo, hi]` for `quantize_body`, in the activation's own type.
    fn body(&self) -> [f32; 4] {
        let (lo, hi) = if self.signed { (-128.0, 127.0) } else { (0.0, 255.0) };
        [self.scale, self.zero_point as f32, lo, hi]
    }
}

/// `out[i] = q(x[i])` in the u8 domain; returns the sum of `out`. The body every ISA build
/// of `arch_qquant::quantize` runs (a plain loop the compiler vectorises).
#[inline(always)]
pub(crate) fn quantize_body(x: &[f32], out: &mut [u8], [scale, zp, lo, hi]: [f32; 4]) -> i32 {
    let off = if lo < 0.0 { 128 } else { 0 };
    let mut sum = 0i32;
    for (o, &v) in out.iter_mut().zip(x) {
        let q = ((v / scale).round_ties_even() + zp).clamp(lo, hi);
        // q is an integer in [lo, hi] (or NaN, which `as` takes to 0, as the reference does).
        let u = (q as i32 + off) as u8;
        *o = u;
        sum += i32::from(u);
    }
    sum
}

/// `(min(0, min x), max(0, max x))`, NaN ignored (as `f32::min`), in lanes of 16.
#[inline(always)]
pub(crate) fn minmax_body(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lo[i] = lo[i].min(c[i]);
            hi[i] = hi[i].max(c[i]);
        }
    }
    let tail = chunks.remainder().iter().copied();
    let lo = lo.into_iter().chain(tail.clone()).fold(0f32, f32::min);
    let hi = hi.into_iter().chain(tail).fold(0f32, f32::max);
    (lo, hi)
}

/// Quantizes `x` elementwise into `out` (u8 domain); returns the sum of `out`.
pub fn quantize_slice(x: &[f32], p: &QuantParams, isa: QIsa, out: &mut [u8]) -> Result<i32, KernelError> {
    check_len(KERNEL, "quantized output", out.len(), x.len())?;
    // Scale 0 (DynamicQuantizeLinear of zeros): 0 / 0 is NaN, which quantizes to 0 as well.
    Ok(arch_qquant::quantize(isa, x, out, p.body()))
}

/// The activation side of the GEMM: `rows x k` u8 (row stride `lda`, a multiple of 64; k
/// padding and the rows up to a multiple of 96 are zero), each row's sum, the u8 zero point
/// and the scale.
#[derive(Clone, Debug, Default)]
pub struct QuantizedA {
    pub(crate) data: Vec<u8>,
    pub(crate) rows: usize,
    pub(crate) k: usize,
    pub(crate) lda: usize,
    pub(crate) row_sums: Vec<i32>,
    pub(crate) zero_point: i32,
    pub(crate) scale: f32,
}

/// Activations at least this large are quantized on several threads.
const PAR_MIN: usize = 1 << 20;

/// Rows are allocated in multiples of this (every tile height divides it).
pub(crate) const ROW_ALIGN: usize = 96;

impl QuantizedA {
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn scale(&self) -> f32 {
        self.scale
    }
    /// The u8-domain zero point.
    pub fn zero_point(&self) -> i32 {
        self.zero_point
    }

    /// Row `r`'s first `k` bytes.
    pub fn row(&self, r: usize) -> Option<&[u8]> {
        self.data.get(r * self.lda..r * self.lda + self.k)
    }

    fn reset(&mut self, rows: usize, k: usize, p: &QuantParams) -> Result<(), KernelError> {
        // Rows padded to 64 bytes: the AMX tile reads whole 64-byte steps (zeros past k).
        let lda = k.div_ceil(64) * 64;
        let len = checked_product(KERNEL, &[rows.div_ceil(ROW_ALIGN) * ROW_ALIGN, lda])?;
        self.data.clear();
        self.data.resize(len, 0);
        self.row_sums.clear();
        self.row_sums.resize(rows, 0);
        (self.rows, self.k, self.lda, self.zero_point, self.scale) = (rows, k, lda, p.u8_zero_point(), p.scale);
        Ok(())
    }

    /// Quantizes a row-major `rows x k` x (QMatMul's A) with `p`.
    /// Quantizes a row-major `rows x k` x (QMatMul's A) with `p`, rows split over `threads`
    /// when x is large.
    pub fn quantize(&mut self, x: &[f32], rows: usize, k: usize, p: &QuantParams, isa: QIsa, threads: usize) -> Result<(), KernelError> {
        check_len(KERNEL, "A", x.len(), checked_product(KERNEL, &[rows, k])?)?;
        self.reset(rows, k, p)?;
        let (kk, lda) = (k.max(1), self.lda.max(1));
        let row = |((xr, dst), sum): ((&[f32], &mut [u8]), &mut i32)| -> Result<(), KernelError> {
            *sum = quantize_slice(xr, p, isa, dst.get_mut(..k).ok_or_else(|| invalid(KERNEL, "row stride"))?)?;
            Ok(())
        };
        if threads > 1 && x.len() >= PAR_MIN {
            let per = rows.div_ceil(threads).max(1);
            let blocks: Vec<_> = x.chunks(per * kk).zip(self.data.chunks_mut(per * lda)).zip(self.row_sums.chunks_mut(per)).collect();
            crate::par::try_run(blocks, threads, |_, ((xb, db), sb)| {
                xb.chunks_exact(kk).zip(db.chunks_exact_mut(lda)).zip(sb.iter_mut()).try_for_each(row)
            })
        } else {
            x.chunks_exact(kk).zip(self.data.chunks_exact_mut(lda)).zip(self.row_sums.iter_mut()).try_for_each(row)
        }
    }

    /// Fills the rows from already quantized u8 data (a conv's im2col): `fill(r, row)` writes
    /// row `r`'s `k` bytes.
    pub fn gather(&mut self, rows: usize, k: usize, p: &QuantParams, mut fill: impl FnMut(usize, &mut [u8])) -> Result<(), KernelError> {
        self.reset(rows, k, p)?;
        let lda = self.lda;
        for (r, (dst, sum)) in self.data.chunks_exact_mut(lda.max(1)).zip(self.row_sums.iter_mut()).enumerate() {
            let row = &mut dst[..k];
            fill(r, row);
            *sum = row.iter().map(|&v| i32::from(v)).sum();
        }
        Ok(())
    }
}
