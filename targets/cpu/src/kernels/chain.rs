//! Fused elementwise chains: a small interpreter that applies a list of unary and binary steps
//! to L1-sized tiles of the data, so the whole chain costs one pass over memory.
//!
//! The data is viewed as rows of `row_len` elements; binary operands are a scalar, a row
//! (broadcast over rows, e.g. a bias), a column (one value per row) or a full tensor. Each
//! step's loop over a tile is a plain slice loop the compiler vectorises for the chosen ISA.

use super::activation::Activation;
use super::arch;
use super::error::{KernelError, check_len, invalid};
use super::isa::Isa;
use super::math;

const KERNEL: &str = "chain";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Neg,
    Abs,
    Square,
    Sqrt,
    /// 1 / x.
    Recip,
    Exp,
    /// Natural log.
    Log,
    Act(Activation),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    /// NaN-propagating maximum.
    Max,
    /// NaN-propagating minimum.
    Min,
}

/// The second operand of a binary step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand<'a> {
    Scalar(f32),
    /// `row_len` values, the same for every row.
    Row(&'a [f32]),
    /// One value per row.
    Col(&'a [f32]),
    /// As many values as the data.
    Full(&'a [f32]),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step<'a> {
    Unary(Unary),
    /// `acc = acc op rhs`, or `acc = rhs op acc` when `swap`.
    Binary {
        op: Binary,
        rhs: Operand<'a>,
        swap: bool,
    },
}

impl<'a> Step<'a> {
    pub fn unary(op: Unary) -> Self {
        Step::Unary(op)
    }
    pub fn binary(op: Binary, rhs: Operand<'a>) -> Self {
        Step::Binary { op, rhs, swap: false }
    }
}

/// Tunable choices of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainParams {
    /// Elements per tile (a multiple of 16 keeps tiles vector-aligned).
    pub tile: usize,
    pub threads: usize,
    pub isa: Isa,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams { tile: 1024, threads: 1, isa: Isa::best() }
    }
}

/// Candidates for `len` elements; the first is the default.
pub fn chain_candidates(len: usize, max_threads: usize) -> Vec<ChainParams> {
    let threads = if len < 1 << 16 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    for isa in Isa::available() {
        for tile in [1024, 256, 4096] {
            for t in [threads, 1, max_threads.max(1)] {
                let p = ChainParams { tile, threads: t, isa };
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// `out = steps(x)`, `x` and `out` being `rows x row_len`.
pub fn run_chain(x: &[f32], row_len: usize, steps: &[Step<'_>], out: &mut [f32], params: &ChainParams) -> Result<(), KernelError> {
    check_len(KERNEL, "output", out.len(), x.len())?;
    check(out.len(), row_len, steps)?;
    drive(out, params, |start, tile| {
        tile.copy_from_slice(&x[start..start + tile.len()]);
        arch::chain_tile(params.isa, steps, tile, start, row_len);
    });
    Ok(())
}

/// [`run_chain`] in place.
pub fn run_chain_inplace(data: &mut [f32], row_len: usize, steps: &[Step<'_>], params: &ChainParams) -> Result<(), KernelError> {
    check(data.len(), row_len, steps)?;
    drive(data, params, |start, tile| arch::chain_tile(params.isa, steps, tile, start, row_len));
    Ok(())
}

fn check(len: usize, row_len: usize, steps: &[Step<'_>]) -> Result<(), KernelError> {
    if len == 0 {
        return Ok(());
    }
    if row_len == 0 || !len.is_multiple_of(row_len) {
        return Err(invalid(KERNEL, format!("{len} elements are not rows of {row_len}")));
    }
    for step in steps {
        match step {
            Step::Binary { rhs: Operand::Row(r), .. } => check_len(KERNEL, "row operand", r.len(), row_len)?,
            Step::Binary { rhs: Operand::Col(c), .. } => check_len(KERNEL, "column operand", c.len(), len / row_len)?,
            Step::Binary { rhs: Operand::Full(f), .. } => check_len(KERNEL, "full operand", f.len(), len)?,
            _ => {}
        }
    }
    Ok(())
}

/// Calls `f(flat_start, tile)` for every tile, split over threads.
fn drive(data: &mut [f32], params: &ChainParams, f: impl Fn(usize, &mut [f32]) + Sync) {
    let tile = params.tile.max(16);
    if params.threads <= 1 || data.len() <= tile {
        for (i, t) in data.chunks_mut(tile).enumerate() {
            f(i * tile, t);
        }
        return;
    }
    let per = data.len().div_ceil(tile).div_ceil(params.threads * 4).max(1) * tile;
    crate::par::run(data.chunks_mut(per).collect(), params.threads, |c, chunk| {
        for (i, t) in chunk.chunks_mut(tile).enumerate() {
            f(c * per + i * tile, t);
        }
    });
}

/// All steps over one tile whose first element has flat index `start`.
#[inline(always)]
pub(crate) fn tile_body(fma: bool, steps: &[Step<'_>], tile: &mut [f32], start: usize, row_len: usize) {
    let _ = fma;
    for step in steps {
        match *step {
            Step::Unary(op) => unary(op, tile),
            Step::Binary { op, rhs, swap } => match rhs {
                Operand::Scalar(s) => binary_scalar(op, swap, tile, s),
                Operand::Full(f) => binary_slice(op, swap, tile, &f[start..start + tile.len()]),
                Operand::Row(r) => {
                    let mut pos = start;
                    let mut rest = &mut tile[..];
                    while !rest.is_empty() {
                        let col = pos % row_len;
                        let n = (row_len - col).min(rest.len());
                        let (seg, tail) = rest.split_at_mut(n);
                        binary_slice(op, swap, seg, &r[col..col + n]);
                        rest = tail;
                        pos += n;
                    }
                }
                Operand::Col(c) => {
                    let mut pos = start;
                    let mut rest = &mut tile[..];
                    while !rest.is_empty() {
                        let n = (row_len - pos % row_len).min(rest.len());
                        let (seg, tail) = rest.split_at_mut(n);
                        binary_scalar(op, swap, seg, c[pos / row_len]);
                        rest = tail;
                        pos += n;
                    }
                }
            },
        }
    }
}

#[inline(always)]
fn unary(op: Unary, t: &mut [f32]) {
    match op {
        Unary::Neg => t.iter_mut().for_each(|v| *v = -*v),
        Unary::Abs => t.iter_mut().for_each(|v| *v = v.abs()),
        Unary::Square => t.iter_mut().for_each(|v| *v *= *v),
        Unary::Sqrt => t.iter_mut().for_each(|v| *v = v.sqrt()),
        Unary::Recip => t.iter_mut().for_each(|v| *v = 1.0 / *v),
        Unary::Exp => t.iter_mut().for_each(|v| *v = math::exp(*v)),
        Unary::Log => t.iter_mut().for_each(|v| *v = math::ln(*v)),
        Unary::Act(a) => a.apply_slice(t),
    }
}

#[inline(always)]
fn apply(op: Binary, a: f32, b: f32) -> f32 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Max => {
            if a.is_nan() || a > b {
                a
            } else {
                b
            }
        }
        Binary::Min => {
            if a.is_nan() || a < b {
                a
            } else {
                b
            }
        }
    }
}

#[inline(always)]
fn binary_scalar(op: Binary, swap: bool, t: &mut [f32], s: f32) {
    macro_rules! each {
        ($op:expr) => {
            if swap { t.iter_mut().for_each(|v| *v = apply($op, s, *v)) } else { t.iter_mut().for_each(|v| *v = apply($op, *v, s)) }
        };
    }
    match op {
        Binary::Add => each!(Binary::Add),
        Binary::Sub => each!(Binary::Sub),
        Binary::Mul => each!(Binary::Mul),
        Binary::Div => each!(Binary::Div),
        Binary::Max => each!(Binary::Max),
        Binary::Min => each!(Binary::Min),
    }
}

#[inline(always)]
fn binary_slice(op: Binary, swap: bool, t: &mut [f32], r: &[f32]) {
    macro_rules! each {
        ($op:expr) => {
            if swap {
                t.iter_mut().zip(r).for_each(|(v, s)| *v = apply($op, *s, *v))
            } else {
                t.iter_mut().zip(r).for_each(|(v, s)| *v = apply($op, *v, *s))
            }
        };
    }
    match op {
        Binary::Add => each!(Binary::Add),
        Binary::Sub => each!(Binary::Sub),
        Binary::Mul => each!(Binary::Mul),
        Binary::Div => each!(Binary::Div),
        Binary::Max => each!(Binary::Max),
        Binary::Min => each!(Binary::Min),
    }
}
