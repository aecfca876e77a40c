//! Numpy broadcasting of one operand against an output shape, as the few patterns the chain
//! kernel runs in one pass (scalar, full, row, column, repeated per outer block), with a
//! strided copy for the rest.

/// The broadcast shape of `a` and `b`, or why they do not broadcast.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!("shapes {a:?} and {b:?} cannot be broadcast together")),
        })
        .collect()
}

/// How an operand of shape `x` lines up with the output shape `out` (same rank after padding
/// `x` with leading ones): the output is `outer` blocks of `mid x inner` elements, and the
/// operand holds `mid` values that are a row (`inner == 1`: one per element of a block) or a
/// column (one per `inner` run), the same for every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Scalar,
    Full,
    Blocks {
        outer: usize,
        mid: usize,
        inner: usize,
    },
    /// Needs a strided copy to the output shape.
    General,
}

pub fn pattern(x: &[usize], out: &[usize]) -> Pattern {
    let n: usize = x.iter().product();
    if n == 1 {
        return Pattern::Scalar;
    }
    let r = out.len();
    let padded: Vec<usize> = std::iter::repeat_n(1, r.saturating_sub(x.len())).chain(x.iter().copied()).collect();
    if padded == out {
        return Pattern::Full;
    }
    // Leading ones, then dims equal to the output's, then trailing ones.
    let q = padded.iter().take_while(|&&d| d == 1).count();
    let p = q + padded[q..].iter().zip(&out[q..]).take_while(|(a, b)| a == b).count();
    if padded[p..].iter().any(|&d| d != 1) {
        return Pattern::General;
    }
    let prod = |s: &[usize]| s.iter().product::<usize>();
    Pattern::Blocks { outer: prod(&out[..q]), mid: prod(&out[q..p]), inner: prod(&out[p..]) }
}

/// `x` (shape `xs`, broadcastable to `out`) copied out to the full output shape, a row of the
/// last axis at a time (a copy, or a fill where that axis is broadcast). Any element type:
/// `cpu.expand` runs `Expand` of ints and bools through it too.
pub fn expand<T: Copy>(x: &[T], xs: &[usize], out: &[usize]) -> Vec<T> {
    let r = out.len();
    let padded: Vec<usize> = std::iter::repeat_n(1, r.saturating_sub(xs.len())).chain(xs.iter().copied()).collect();
    // Source strides, 0 where the operand is broadcast.
    let mut strides = vec![0usize; r];
    let mut s = 1;
    for i in (0..r).rev() {
        strides[i] = if padded[i] == 1 { 0 } else { s };
        s *= padded[i];
    }
    let total: usize = out.iter().product();
    let mut dst = Vec::with_capacity(total);
    if total == 0 {
        return dst;
    }
    let inner = out.last().copied().unwrap_or(1);
    let inner_stride = strides.last().copied().unwrap_or(0);
    let mut idx = vec![0usize; r.saturating_sub(1)];
    loop {
        let base: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        if inner_stride == 0 {
            dst.extend(std::iter::repeat_n(x[base], inner));
        } else {
            dst.extend_from_slice(&x[base..base + inner]);
        }
        // Next outer index (odometer over all dims but the last).
        let mut d = idx.len();
        loop {
            if d == 0 {
                return dst;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(pattern(&[1, 1], &[4, 5]), Pattern::Scalar);
        assert_eq!(pattern(&[4, 5], &[4, 5]), Pattern::Full);
        assert_eq!(pattern(&[5], &[2, 4, 5]), Pattern::Blocks { outer: 8, mid: 5, inner: 1 });
        assert_eq!(pattern(&[1, 8, 1, 1], &[1, 8, 6, 6]), Pattern::Blocks { outer: 1, mid: 8, inner: 36 });
        assert_eq!(pattern(&[1, 8, 1, 1], &[3, 8, 6, 6]), Pattern::Blocks { outer: 3, mid: 8, inner: 36 });
        assert_eq!(pattern(&[3, 1, 6], &[3, 8, 6]), Pattern::General);
    }

    #[test]
    fn expand_matches_index_rule() {
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let got = expand(&x, &[3, 1, 2], &[2, 3, 4, 2]);
        let mut want = Vec::new();
        for _ in 0..2 {
            for i in 0..3 {
                for _ in 0..4 {
                    for k in 0..2 {
                        want.push(x[i * 2 + k]);
                    }
                }
            }
        }
        assert_eq!(got, want);
        assert_eq!(expand(&[7.0], &[], &[2, 2]), vec![7.0; 4]);
        assert_eq!(broadcast_shape(&[3, 1, 2], &[4, 1]).expect("broadcasts"), vec![3, 4, 2]);
        assert!(broadcast_shape(&[3], &[4]).is_err());
    }
}
