//! GridSample (2-D and, from opset 20, N-D): nearest, (bi/tri)linear and bicubic sampling
//! with zeros / border / reflection padding.

use super::common::{floats, from_f64, numel};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq)]
enum Pad {
    Zeros,
    Border,
    Reflection,
}

/// Reflects `x` into [lo, hi] (given doubled, as the bounds may be half-integers).
fn reflect(x: f64, twice_lo: f64, twice_hi: f64) -> f64 {
    if twice_lo == twice_hi {
        return 0.0;
    }
    let (min, span) = (twice_lo / 2.0, (twice_hi - twice_lo) / 2.0);
    let x = (x - min).abs();
    let extra = x % span;
    let flips = (x / span).floor();
    if flips % 2.0 == 0.0 { extra + min } else { span - extra + min }
}

/// Applies border / reflection padding to a coordinate on an axis of `size` pixels.
fn pad_coord(x: f64, size: usize, pad: Pad, align: bool) -> f64 {
    let hi = size as f64 - 1.0;
    match pad {
        Pad::Zeros => x,
        Pad::Border => x.clamp(0.0, hi),
        Pad::Reflection => {
            let r = if align { reflect(x, 0.0, 2.0 * hi) } else { reflect(x, -1.0, 2.0 * size as f64 - 1.0) };
            r.clamp(0.0, hi)
        }
    }
}

/// Cubic convolution weights (A = -0.75) for the taps at floor-1 ..= floor+2.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let w0 = ((a * (t + 1.0) - 5.0 * a) * (t + 1.0) + 8.0 * a) * (t + 1.0) - 4.0 * a;
    let w1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    let u = 1.0 - t;
    let w2 = ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// The (index, weight) taps along one axis for a sample at unnormalised coordinate `x`.
fn taps(x: f64, size: usize, mode: Mode, pad: Pad, align: bool) -> Vec<(Option<usize>, f64)> {
    let inside = |i: f64| (i >= 0.0 && i < size as f64).then_some(i as usize);
    match mode {
        Mode::Nearest => vec![(inside(pad_coord(x, size, pad, align).round_ties_even()), 1.0)],
        Mode::Linear => {
            let x = pad_coord(x, size, pad, align);
            let f = x.floor();
            let t = x - f;
            vec![(inside(f), 1.0 - t), (inside(f + 1.0), t)]
        }
        Mode::Cubic => {
            let f = x.floor();
            let w = cubic_weights(x - f);
            (0..4).map(|k| (inside(pad_coord(f - 1.0 + k as f64, size, pad, align)), w[k])).collect()
        }
    }
}

pub fn grid_sample(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, grid) = (req(inputs, 0)?, req(inputs, 1)?);
    let (xs, gs) = (x.shape(), grid.shape());
    let n = xs.len().saturating_sub(2);
    if n == 0 || gs.len() != n + 2 || gs[0] != xs[0] || gs[n + 1] != n {
        bail!("GridSample needs X (N, C, D1..Dn) and grid (N, O1..On, n), got {xs:?} and {gs:?}");
    }
    let mode = match ctx.attr_s("mode", if ctx.opset() >= 20 { "linear" } else { "bilinear" }) {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic,
        other => bail!("attribute 'mode' must be nearest, linear or cubic, got '{other}'"),
    };
    let pad = match ctx.attr_s("padding_mode", "zeros") {
        "zeros" => Pad::Zeros,
        "border" => Pad::Border,
        "reflection" => Pad::Reflection,
        other => bail!("attribute 'padding_mode' must be zeros, border or reflection, got '{other}'"),
    };
    let align = ctx.attr_i("align_corners", 0) != 0;
    let (batch, c) = (xs[0], xs[1]);
    let spatial = &xs[2..];
    let isz = numel(spatial)?;
    let osz = numel(&gs[1..=n])?;
    let xv = floats(x, "X")?;
    let gv = floats(grid, "grid")?;
    let st = crate::util::strides(spatial);
    let mut y = vec![0.0; numel(&[batch, c, osz])?];
    for b in 0..batch {
        for p in 0..osz {
            let g = &gv[(b * osz + p) * n..(b * osz + p + 1) * n];
            // Per spatial axis d (outermost first); the grid lists x (innermost) first.
            let axes: Vec<Vec<(Option<usize>, f64)>> = (0..n)
                .map(|d| {
                    let size = spatial[d];
                    let gc = g[n - 1 - d];
                    let u = if align { (gc + 1.0) / 2.0 * (size as f64 - 1.0) } else { ((gc + 1.0) * size as f64 - 1.0) / 2.0 };
                    taps(u, size, mode, pad, align)
                })
                .collect();
            // Cartesian product of the per-axis taps.
            let mut combos: Vec<(Option<usize>, f64)> = vec![(Some(0), 1.0)];
            for (d, ax) in axes.iter().enumerate() {
                let mut next = Vec::with_capacity(combos.len() * ax.len());
                for &(off, w) in &combos {
                    for &(i, wi) in ax {
                        next.push((off.zip(i).map(|(o, i)| o + i * st[d]), w * wi));
                    }
                }
                combos = next;
            }
            for ch in 0..c {
                let plane = &xv[(b * c + ch) * isz..(b * c + ch + 1) * isz];
                y[(b * c + ch) * osz + p] = combos.iter().filter_map(|&(o, w)| o.map(|o| plane[o] * w)).sum();
            }
        }
    }
    let mut shape = vec![batch, c];
    shape.extend(&gs[1..=n]);
    Ok(vec![from_f64(x.dtype(), shape, &y)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_and_cubic_weights() {
        // Reflect into [0, 3]: 4.5 -> 1.5, -1 -> 1.
        assert_eq!(reflect(4.5, 0.0, 6.0), 1.5);
        assert_eq!(reflect(-1.0, 0.0, 6.0), 1.0);
        for t in [0.0, 0.25, 0.5, 0.9] {
            let w = cubic_weights(t);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    }
}
