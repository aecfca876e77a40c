//! Arithmetic on symbolic dims: broadcasting, window output sizes, products for Reshape.

use super::Cx;
use kiln_tensor::Dim;

/// Numpy broadcasting over dims that may be symbolic. Equal symbols broadcast to themselves,
/// a known 1 broadcasts to anything, a symbol against a known n > 1 is n (the symbol must be 1
/// or n), two different symbols give a fresh symbol. Two different known dims > 1 conflict.
pub fn broadcast(cx: &Cx, shapes: &[&[Dim]]) -> Result<Vec<Dim>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(rank);
    for pos in 0..rank {
        let mut known: Option<usize> = None;
        let mut sym: Option<&str> = None;
        let mut mixed_syms = false;
        for s in shapes {
            let off = rank - s.len();
            if pos < off {
                continue;
            }
            match &s[pos - off] {
                Dim::Known(1) => {}
                Dim::Known(n) => match known {
                    Some(k) if k != *n => {
                        let list: Vec<String> = shapes.iter().map(|s| super::shape_text(s)).collect();
                        return Err(format!("shapes {} cannot be broadcast together", list.join(" and ")));
                    }
                    _ => known = Some(*n),
                },
                Dim::Sym(name) => match sym {
                    Some(t) if t != name => mixed_syms = true,
                    _ => sym = Some(name),
                },
            }
        }
        out.push(match (known, sym) {
            (Some(n), _) => Dim::Known(n),
            (None, Some(_)) if mixed_syms => cx.fresh(),
            (None, Some(s)) => Dim::Sym(s.to_string()),
            (None, None) => Dim::Known(1),
        });
    }
    Ok(out)
}

/// Spatial output size of a Conv/Pool window along one axis (the reference kernel's rule).
pub struct Window<'a> {
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pads: (usize, usize),
    pub auto_pad: &'a str,
    pub ceil_mode: bool,
}

impl Window<'_> {
    pub fn output(&self, cx: &Cx, input: &Dim) -> Result<Dim, String> {
        let eff = (self.kernel.max(1) - 1).checked_mul(self.dilation).and_then(|v| v.checked_add(1)).ok_or("window size overflows")?;
        let s = self.stride.max(1);
        let Dim::Known(i) = input else {
            // A symbolic size survives windows that keep it: stride 1 and "same" padding.
            let same = s == 1
                && (self.auto_pad.starts_with("SAME")
                    || (self.auto_pad == "NOTSET" && self.pads.0.checked_add(self.pads.1) == Some(eff - 1)));
            return Ok(if same { input.clone() } else { cx.fresh() });
        };
        let i = *i;
        let span_of = |total: usize| -> Result<usize, String> {
            total.checked_sub(eff).ok_or_else(|| format!("window {eff} is larger than the padded input {total}"))
        };
        let out = match self.auto_pad {
            "SAME_UPPER" | "SAME_LOWER" => i.div_ceil(s),
            "VALID" => {
                let span = span_of(i)?;
                if self.ceil_mode { span.div_ceil(s) + 1 } else { span / s + 1 }
            }
            _ => {
                let padded = i.checked_add(self.pads.0).and_then(|v| v.checked_add(self.pads.1)).ok_or("padded size overflows")?;
                let span = span_of(padded)?;
                let mut o = if self.ceil_mode { span.div_ceil(s) + 1 } else { span / s + 1 };
                if self.ceil_mode && (o - 1) * s >= i + self.pads.0 {
                    o -= 1;
                }
                o
            }
        };
        Ok(Dim::Known(out))
    }
}

/// The product of the known dims (None on overflow).
pub fn known_product(dims: &[Dim]) -> Option<usize> {
    dims.iter().filter_map(Dim::known).try_fold(1usize, |acc, d| acc.checked_mul(d))
}

/// The product of `dims` when it can be written as one dim: all known, or one symbol times 1.
pub fn product(cx: &Cx, dims: &[Dim]) -> Dim {
    let Some(known) = known_product(dims) else { return cx.fresh() };
    let syms: Vec<&Dim> = dims.iter().filter(|d| d.known().is_none()).collect();
    match syms.as_slice() {
        [] => Dim::Known(known),
        [s] if known == 1 => (*s).clone(),
        _ => cx.fresh(),
    }
}

/// The dim that makes `others` hold as many elements as `all` (Reshape's -1): known when the
/// symbols cancel, the one symbol left over, or a fresh symbol.
pub fn quotient(cx: &Cx, all: &[Dim], others: &[Dim]) -> Result<Dim, String> {
    let mut syms: Vec<&str> = all.iter().filter_map(|d| if let Dim::Sym(s) = d { Some(s.as_str()) } else { None }).collect();
    let (Some(num), Some(den)) = (known_product(all), known_product(others)) else { return Ok(cx.fresh()) };
    for d in others {
        if let Dim::Sym(s) = d {
            match syms.iter().position(|x| x == s) {
                Some(p) => {
                    syms.remove(p);
                }
                None => return Ok(cx.fresh()),
            }
        }
    }
    if den == 0 {
        return Ok(cx.fresh());
    }
    match syms.as_slice() {
        [] if num.is_multiple_of(den) => Ok(Dim::Known(num / den)),
        [] => Err(format!("cannot reshape {num} elements into a multiple of {den}")),
        [s] if num == den => Ok(Dim::Sym(s.to_string())),
        _ => Ok(cx.fresh()),
    }
}
