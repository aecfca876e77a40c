//! Weight-only packing for [`wgemm`](super::wgemm): constant `[k, n]` weights stored in a low
//! precision (f16, bf16, 4- or 8-bit integers with scales and zero points per column or per
//! group of rows) packed once into 16-column panels that keep that precision, so the packed
//! weights take what the stored ones take (plus one f32 scale and zero point per group and
//! column for the integer types).
//!
//! | stored | panel `p` (columns `16 p ..`, zero-padded past n) | bytes per weight |
//! |---|---|---|
//! | f16 | `[k][16]` f16 | 2 |
//! | bf16 | `[kp][16][2]` bf16: rows in pairs (`vdpbf16ps` operands, AMX B tiles), `kp` rounded up to whole 16-pair AMX steps | 2 |
//! | int8 / uint8 | `[k][16]` u8 (int8 shifted by 128) | 1 |
//! | int4 / uint4 | `[k][8]` bytes: column `c` in the low nibble of byte `c`, column `c + 8` in its high one (int4 shifted by 8) | 0.5 |
//!
//! Integer weights dequantize as `(q - z) * s`, bit for bit the reference DequantizeLinear:
//! `z` (the zero point plus the shift, as f32: exact) and `s` per `[group][column]`.

use super::error::{KernelError, checked_product, invalid};
use super::isa::Isa;

const KERNEL: &str = "wpack";

/// Columns per packed panel (one zmm of f32).
pub const WPANEL: usize = 16;
/// bf16 row pairs per AMX tile step (32 rows of k).
const PAIR_STEP: usize = 16;

/// Weights as stored, row-major `[k, n]`: 16-bit floats as bit patterns, 4-bit integers one
/// per element.
#[derive(Clone, Copy, Debug)]
pub enum WSource<'a> {
    F16(&'a [u16]),
    Bf16(&'a [u16]),
    I4(&'a [i8]),
    U4(&'a [u8]),
    I8(&'a [i8]),
    U8(&'a [u8]),
}

/// Scales and zero points of integer weights (the DequantizeLinear that reads them): one
/// value (`block` 0), one per column (`block` 0), or `[ceil(k / block)][n]` (groups of
/// `block` rows).
#[derive(Clone, Copy, Debug)]
pub struct WScales<'a> {
    pub scale: &'a [f32],
    /// Empty (0) or as many as `scale`.
    pub zero_point: &'a [i32],
    pub block: usize,
}

/// How a [`WPacked`] stores its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WKind {
    F16,
    Bf16,
    /// 8-bit, offset binary (int8 shifted by 128).
    U8,
    /// 4-bit, offset binary (int4 shifted by 8), two per byte.
    U4,
}

#[derive(Clone, Debug, PartialEq)]
enum Store {
    Halves(Vec<u16>),
    Bytes(Vec<u8>),
}

/// Low-precision weights packed once for [`wgemm`](super::wgemm).
#[derive(Clone, Debug, PartialEq)]
pub struct WPacked {
    k: usize,
    n: usize,
    kind: WKind,
    store: Store,
    /// Elements (u16 or bytes) per panel.
    panel_len: usize,
    /// Rows per scale group (k when there is one group), at least 1.
    group: usize,
    /// `[groups][panels * 16]`, zero past n; empty for float weights.
    scale: Vec<f32>,
    zero: Vec<f32>,
}

impl WPacked {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn kind(&self) -> WKind {
        self.kind
    }
    pub fn panels(&self) -> usize {
        self.n.div_ceil(WPANEL)
    }
    /// Rows per scale group.
    pub fn group(&self) -> usize {
        self.group
    }
    /// Bytes held (values, scales, zero points).
    pub fn bytes(&self) -> usize {
        let values = match &self.store {
            Store::Halves(v) => 2 * v.len(),
            Store::Bytes(v) => v.len(),
        };
        values + 4 * (self.scale.len() + self.zero.len())
    }

    /// bf16 row pairs per panel (bf16 weights; 0 otherwise).
    pub(crate) fn pairs(&self) -> usize {
        if self.kind == WKind::Bf16 { self.panel_len / (2 * WPANEL) } else { 0 }
    }

    /// The packed bf16 pairs (bf16 weights; empty otherwise): panel `p` at `p * pairs() * 32`.
    pub(crate) fn halves(&self) -> &[u16] {
        match (&self.store, self.kind) {
            (Store::Halves(v), WKind::Bf16) => v,
            _ => &[],
        }
    }

    /// Panel `p`'s packed values (a pointer to them and their length in bytes), with the
    /// group scales and zero points from its first column (rows of `panels * 16`; empty for
    /// float weights).
    pub(crate) fn panel_raw(&self, p: usize) -> Option<(*const u8, usize, &[f32], &[f32])> {
        let (ptr, bytes) = match &self.store {
            Store::Halves(h) => {
                let h = h.get(p * self.panel_len..(p + 1) * self.panel_len)?;
                (h.as_ptr().cast::<u8>(), 2 * h.len())
            }
            Store::Bytes(b) => {
                let b = b.get(p * self.panel_len..(p + 1) * self.panel_len)?;
                (b.as_ptr(), b.len())
            }
        };
        Some((ptr, bytes, params_from(&self.scale, p)?, params_from(&self.zero, p)?))
    }

    /// Rows `r0..r0 + rows` (inside one scale group) of panel `p` as f32: row `i` into
    /// `dst[i * ld..][..16]`. None when out of range. Compiled per ISA through
    /// `arch::wunpack`.
    #[inline(always)]
    pub(crate) fn dequant_rows(&self, p: usize, r0: usize, rows: usize, dst: &mut [f32], ld: usize) -> Option<()> {
        if rows == 0 {
            return Some(());
        }
        if p >= self.panels() || r0 + rows > self.k || ld < WPANEL || dst.len() < (rows - 1) * ld + WPANEL {
            return None;
        }
        let (g, np) = (r0 / self.group, self.panels() * WPANEL);
        let at = g * np + p * WPANEL;
        let base = p * self.panel_len;
        match (&self.store, self.kind) {
            (Store::Halves(h), WKind::F16) => {
                let src = h.get(base + r0 * WPANEL..base + (r0 + rows) * WPANEL)?;
                for (s, d) in src.chunks_exact(WPANEL).zip(dst.chunks_mut(ld)) {
                    for (x, &v) in d[..WPANEL].iter_mut().zip(s) {
                        *x = f16_to_f32(v);
                    }
                }
            }
            (Store::Halves(h), _) => {
                // Pair rows: row r is element r % 2 of each column's pair in pair row r / 2.
                let panel = h.get(base..base + self.panel_len)?;
                for (i, d) in dst.chunks_mut(ld).take(rows).enumerate() {
                    let r = r0 + i;
                    let src = panel.get(r / 2 * 2 * WPANEL..(r / 2 + 1) * 2 * WPANEL)?;
                    for (x, pair) in d[..WPANEL].iter_mut().zip(src.chunks_exact(2)) {
                        *x = f32::from_bits(u32::from(pair[r % 2]) << 16);
                    }
                }
            }
            (Store::Bytes(b), kind) => {
                let s: &[f32; WPANEL] = self.scale.get(at..at + WPANEL)?.try_into().ok()?;
                let z: &[f32; WPANEL] = self.zero.get(at..at + WPANEL)?.try_into().ok()?;
                if kind == WKind::U8 {
                    let src = b.get(base + r0 * WPANEL..base + (r0 + rows) * WPANEL)?;
                    for (row, d) in src.chunks_exact(WPANEL).zip(dst.chunks_mut(ld)) {
                        for c in 0..WPANEL {
                            d[c] = (f32::from(row[c]) - z[c]) * s[c];
                        }
                    }
                } else {
                    const H: usize = WPANEL / 2;
                    let src = b.get(base + r0 * H..base + (r0 + rows) * H)?;
                    for (row, d) in src.chunks_exact(H).zip(dst.chunks_mut(ld)) {
                        for c in 0..H {
                            d[c] = (f32::from(row[c] & 15) - z[c]) * s[c];
                            d[c + H] = (f32::from(row[c] >> 4) - z[c + H]) * s[c + H];
                        }
                    }
                }
            }
        }
        Some(())
    }
}

/// Group parameters from panel `p`'s first column (empty stays empty).
fn params_from(v: &[f32], p: usize) -> Option<&[f32]> {
    if v.is_empty() { Some(v) } else { v.get(p * WPANEL..) }
}

/// f16 bits to f32, exactly (branch-free, so it vectorises): the exponent and mantissa moved
/// into place and rescaled by 2^112 (normal and subnormal alike), infinities and NaNs kept.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let em = h & 0x7fff;
    let sign = (h & 0x8000) << 16;
    let finite = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let bits = if em >= 0x7c00 { (em << 13) | 0x7f80_0000 } else { finite.to_bits() };
    f32::from_bits(bits | sign)
}

/// f32 to bf16 bits as the reference's Cast does: round to nearest even, NaN kept quiet.
/// Vectorises.
#[inline(always)]
pub(crate) fn f32_to_bf16(x: f32) -> u16 {
    if x.to_bits() & 0x7fff_ffff > 0x7f80_0000 {
        return ((x.to_bits() >> 16) | 0x40) as u16;
    }
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    (rounded >> 16) as u16
}

/// Packs `w` (`[k, n]` row-major; `scales` for integer weights, None for float ones).
pub fn wpack(w: WSource<'_>, k: usize, n: usize, scales: Option<WScales<'_>>) -> Result<WPacked, KernelError> {
    let len = checked_product(KERNEL, &[k, n])?;
    let stored = match w {
        WSource::F16(v) | WSource::Bf16(v) => v.len(),
        WSource::I4(v) | WSource::I8(v) => v.len(),
        WSource::U4(v) | WSource::U8(v) => v.len(),
    };
    if stored != len {
        return Err(invalid(KERNEL, format!("W has {stored} values, [{k}, {n}] needs {len}")));
    }
    let panels = n.div_ceil(WPANEL);
    let np = panels * WPANEL;
    let col = |c: usize| (c < n).then_some(c);
    match w {
        WSource::F16(v) => {
            if scales.is_some() {
                return Err(invalid(KERNEL, "f16 weights take no scales"));
            }
            let panel_len = checked_product(KERNEL, &[k, WPANEL])?;
            let mut h = vec![0u16; checked_product(KERNEL, &[panels, panel_len])?];
            for (p, panel) in h.chunks_exact_mut(panel_len.max(1)).enumerate().take(panels) {
                for (r, row) in panel.chunks_exact_mut(WPANEL).enumerate() {
                    for (c, d) in row.iter_mut().enumerate() {
                        *d = col(p * WPANEL + c).map_or(0, |j| v[r * n + j]);
                    }
                }
            }
            Ok(float_packed(k, n, WKind::F16, Store::Halves(h), panel_len))
        }
        WSource::Bf16(v) => {
            if scales.is_some() {
                return Err(invalid(KERNEL, "bf16 weights take no scales"));
            }
            let pairs = k.div_ceil(2 * PAIR_STEP) * PAIR_STEP;
            let panel_len = checked_product(KERNEL, &[pairs, 2 * WPANEL])?;
            let mut h = vec![0u16; checked_product(KERNEL, &[panels, panel_len])?];
            for (p, panel) in h.chunks_exact_mut(panel_len.max(1)).enumerate().take(panels) {
                for r in 0..k {
                    for c in 0..WPANEL {
                        panel[r / 2 * 2 * WPANEL + 2 * c + r % 2] = col(p * WPANEL + c).map_or(0, |j| v[r * n + j]);
                    }
                }
            }
            Ok(float_packed(k, n, WKind::Bf16, Store::Halves(h), panel_len))
        }
        WSource::I4(_) | WSource::U4(_) | WSource::I8(_) | WSource::U8(_) => {
            let s = scales.ok_or_else(|| invalid(KERNEL, "integer weights need scales"))?;
            let (kind, offset) = match w {
                WSource::I4(_) => (WKind::U4, 8),
                WSource::U4(_) => (WKind::U4, 0),
                WSource::I8(_) => (WKind::U8, 128),
                _ => (WKind::U8, 0),
            };
            let value = |i: usize| -> u8 {
                match w {
                    WSource::I4(v) | WSource::I8(v) => (i32::from(v[i]) + offset) as u8,
                    WSource::U4(v) | WSource::U8(v) => v[i],
                    _ => 0,
                }
            };
            let (group, groups) = if s.block > 0 { (s.block, k.div_ceil(s.block)) } else { (k.max(1), 1) };
            let fits = if s.block > 0 { s.scale.len() == groups * n } else { s.scale.len() == 1 || s.scale.len() == n };
            if !fits || !(s.zero_point.is_empty() || s.zero_point.len() == s.scale.len()) {
                return Err(invalid(
                    KERNEL,
                    format!("{} scales and {} zero points for [{k}, {n}] weights, block {}", s.scale.len(), s.zero_point.len(), s.block),
                ));
            }
            let mut scale = vec![0f32; checked_product(KERNEL, &[groups, np])?];
            let mut zero = vec![0f32; scale.len()];
            for g in 0..groups {
                for j in 0..n {
                    let i = if s.scale.len() == 1 {
                        0
                    } else if s.block > 0 {
                        g * n + j
                    } else {
                        j
                    };
                    scale[g * np + j] = s.scale[i];
                    zero[g * np + j] = (s.zero_point.get(i).copied().unwrap_or(0) + offset) as f32;
                }
            }
            let row = if kind == WKind::U4 { WPANEL / 2 } else { WPANEL };
            let panel_len = checked_product(KERNEL, &[k, row])?;
            let mut b = vec![0u8; checked_product(KERNEL, &[panels, panel_len])?];
            for (p, panel) in b.chunks_exact_mut(panel_len.max(1)).enumerate().take(panels) {
                for (r, dst) in panel.chunks_exact_mut(row).enumerate() {
                    for c in 0..WPANEL {
                        let q = col(p * WPANEL + c).map_or(0, |j| value(r * n + j));
                        if kind == WKind::U8 {
                            dst[c] = q;
                        } else if c < row {
                            dst[c] = q & 15;
                        } else {
                            dst[c - row] |= (q & 15) << 4;
                        }
                    }
                }
            }
            Ok(WPacked { k, n, kind, store: Store::Bytes(b), panel_len, group, scale, zero })
        }
    }
}

fn float_packed(k: usize, n: usize, kind: WKind, store: Store, panel_len: usize) -> WPacked {
    WPacked { k, n, kind, store, panel_len, group: k.max(1), scale: Vec::new(), zero: Vec::new() }
}

/// Rows `pc..pc + kc`, columns `jc..jc + nc` (`jc` a multiple of `nr`) of `w` as f32 column
/// panels `[nc / nr][kc][nr]` (zero past n), what the f32 microkernels read: the AVX-512
/// conversions where `isa` allows, else [`unpack_body`] compiled for it.
pub(crate) fn unpack(isa: Isa, w: &WPacked, ks: (usize, usize), js: (usize, usize), nr: usize, dst: &mut [f32]) -> Option<()> {
    if isa.effective() == Isa::Avx512 {
        super::arch_wgemv::unpack(w, ks, js, nr, dst)
    } else {
        super::arch::wunpack(isa, w, ks, js, nr, dst)
    }
}

/// [`unpack`] in portable code, compiled per ISA by `arch::wunpack`.
#[inline(always)]
pub(crate) fn unpack_body(
    _fma: bool,
    w: &WPacked,
    (pc, kc): (usize, usize),
    (jc, nc): (usize, usize),
    nr: usize,
    dst: &mut [f32],
) -> Option<()> {
    if nr == 0 || !nr.is_multiple_of(WPANEL) || !jc.is_multiple_of(WPANEL) || kc == 0 || dst.len() < nc.div_ceil(nr) * kc * nr {
        return None;
    }
    for (q, panel) in dst.chunks_exact_mut(kc * nr).take(nc.div_ceil(nr)).enumerate() {
        for sub in 0..nr / WPANEL {
            let p = (jc + q * nr) / WPANEL + sub;
            let out = panel.get_mut(sub * WPANEL..)?;
            if p >= w.panels() {
                for row in out.chunks_mut(nr).take(kc) {
                    row[..WPANEL].fill(0.0);
                }
                continue;
            }
            let mut r = pc;
            while r < pc + kc {
                let rows = (pc + kc - r).min((r / w.group + 1) * w.group - r);
                w.dequant_rows(p, r, rows, out.get_mut((r - pc) * nr..)?, nr)?;
                r += rows;
            }
        }
    }
    Some(())
}
