//! Einsum: any equation (explicit or implicit output, repeated labels, ellipsis), summed by
//! walking every combination of the output labels (outer) and the summed labels (inner).

use super::common::{Acc, from_f64, numel, odometer};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// One operand's axes as label ids; the ellipsis stands for `n` fresh ids, right-aligned.
fn parse_term(term: &str, ell_ids: &[usize], ell_rank: usize, ids: &mut Vec<char>) -> Result<Vec<usize>, OpError> {
    let mut out = Vec::new();
    let mut rest = term;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            out.extend_from_slice(&ell_ids[ell_ids.len() - ell_rank..]);
            rest = r;
            continue;
        }
        let mut chars = rest.chars();
        let Some(ch) = chars.next() else { break };
        rest = chars.as_str();
        if ch.is_whitespace() {
            continue;
        }
        if !ch.is_ascii_alphabetic() {
            bail!("Einsum label '{ch}' must be a letter");
        }
        let id = match ids.iter().position(|&c| c == ch) {
            Some(i) => i,
            None => {
                ids.push(ch);
                ids.len() - 1
            }
        };
        out.push(ell_ids.len() + id);
    }
    Ok(out)
}

/// The number of named (non-ellipsis) labels in a term.
fn named(term: &str) -> usize {
    term.replace("...", "").chars().filter(|c| c.is_ascii_alphabetic()).count()
}

fn run<T: Acc>(eq: &str, vals: &[Vec<T>], shapes: &[&[usize]]) -> Result<(Vec<T>, Vec<usize>), OpError> {
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq, None),
    };
    let terms: Vec<&str> = lhs.split(',').map(str::trim).collect();
    if terms.len() != vals.len() {
        bail!("Einsum equation '{eq}' has {} operands but {} inputs were given", terms.len(), vals.len());
    }
    // Ellipsis rank: what each operand's ellipsis covers; the widest sets the count.
    let mut ell_rank = vec![0usize; terms.len()];
    for (i, t) in terms.iter().enumerate() {
        let nn = named(t);
        if t.contains("...") {
            if shapes[i].len() < nn {
                bail!("Einsum operand {i} has rank {} but '{t}' names {nn} axes", shapes[i].len());
            }
            ell_rank[i] = shapes[i].len() - nn;
        } else if shapes[i].len() != nn {
            bail!("Einsum operand {i} has rank {} but '{t}' names {nn} axes", shapes[i].len());
        }
    }
    let ell_n = ell_rank.iter().copied().max().unwrap_or(0);
    let ell_ids: Vec<usize> = (0..ell_n).collect();
    let mut chars = Vec::new();
    let mut axes = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        axes.push(parse_term(t, &ell_ids, ell_rank[i], &mut chars)?);
    }
    let nlab = ell_n + chars.len();
    // Label sizes, broadcasting size-1 axes.
    let mut size = vec![1usize; nlab];
    for (i, ax) in axes.iter().enumerate() {
        for (k, &l) in ax.iter().enumerate() {
            let d = shapes[i][k];
            if size[l] == 1 {
                size[l] = d;
            } else if d != 1 && d != size[l] {
                bail!("Einsum label sizes disagree: {d} vs {}", size[l]);
            }
        }
    }
    let out_labels: Vec<usize> = match rhs {
        Some(r) => {
            let o = parse_term(r.trim(), &ell_ids, ell_n, &mut chars)?;
            if chars.len() + ell_n != nlab {
                bail!("Einsum output '{r}' uses a label no operand has");
            }
            o
        }
        None => {
            // Implicit: ellipsis first, then labels used once, alphabetically.
            let mut once: Vec<usize> = (ell_n..nlab).filter(|&l| axes.iter().flatten().filter(|&&x| x == l).count() == 1).collect();
            once.sort_by_key(|&l| chars[l - ell_n]);
            ell_ids.iter().copied().chain(once).collect()
        }
    };
    let sum_labels: Vec<usize> = (0..nlab).filter(|l| !out_labels.contains(l)).collect();
    let order: Vec<usize> = out_labels.iter().chain(&sum_labels).copied().collect();
    let dims: Vec<usize> = order.iter().map(|&l| size[l]).collect();
    // Per operand, its stride for each label in `order` (0 where absent or broadcast).
    let lstrides: Vec<Vec<usize>> = axes
        .iter()
        .enumerate()
        .map(|(i, ax)| {
            let st = crate::util::strides(shapes[i]);
            order
                .iter()
                .map(|&l| ax.iter().enumerate().filter(|&(k, &x)| x == l && shapes[i][k] != 1).map(|(k, _)| st[k]).sum())
                .collect()
        })
        .collect();
    let out_shape: Vec<usize> = out_labels.iter().map(|&l| size[l]).collect();
    let out_n = numel(&out_shape)?;
    let inner: usize = numel(&sum_labels.iter().map(|&l| size[l]).collect::<Vec<_>>())?;
    let mut out = vec![T::default(); out_n];
    let mut idx = vec![0usize; order.len()];
    if out_n * inner > 0 {
        for o in out.iter_mut() {
            let mut acc = T::default();
            for _ in 0..inner {
                let mut prod: Option<T> = None;
                for (v, ls) in vals.iter().zip(&lstrides) {
                    let off: usize = idx.iter().zip(ls).map(|(a, b)| a * b).sum();
                    prod = Some(match prod {
                        None => v[off],
                        Some(p) => p.mul(v[off]),
                    });
                }
                if let Some(p) = prod {
                    acc = acc.add(p);
                }
                odometer(&mut idx, &dims);
            }
            *o = acc;
        }
    }
    Ok((out, out_shape))
}

pub fn einsum(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let eq: String = ctx.attr_s("equation", "").chars().filter(|c| !c.is_whitespace()).collect();
    let ts: Vec<&Tensor> = inputs.iter().map(|t| t.ok_or_else(|| OpError::Invalid("Einsum inputs are required".into()))).collect::<Result<_, _>>()?;
    let Some(first) = ts.first() else { bail!("Einsum needs at least one input") };
    let dt = first.dtype();
    if ts.iter().any(|t| t.dtype() != dt) {
        bail!("Einsum inputs must share one element type");
    }
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    if dt.is_float() {
        let vals: Vec<Vec<f64>> = ts.iter().map(|t| t.to_f64_vec()).collect::<Result<_, _>>()?;
        let (out, shape) = run(&eq, &vals, &shapes)?;
        return Ok(vec![from_f64(dt, shape, &out)?]);
    }
    if !dt.is_int() || dt == DType::Bool {
        bail!("Einsum does not take {dt} inputs");
    }
    let vals: Vec<Vec<i64>> = ts.iter().map(|t| t.to_i64_vec()).collect::<Result<_, _>>()?;
    let (out, shape) = run(&eq, &vals, &shapes)?;
    Ok(vec![Tensor::from_vec(shape, out)?.cast(dt)?])
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn implicit_output_trace_and_ellipsis() -> Result<(), crate::OpError> {
        let a: Vec<f64> = (1..=4).map(f64::from).collect();
        // Implicit "ij,jk" is "ik".
        let (v, s) = run("ij,jk", &[a.clone(), a.clone()], &[&[2, 2], &[2, 2]])?;
        assert_eq!((v, s), (vec![7.0, 10.0, 15.0, 22.0], vec![2, 2]));
        // Trace: repeated label, scalar output.
        let (v, s) = run("ii->", std::slice::from_ref(&a), &[&[2, 2]])?;
        assert_eq!((v, s), (vec![5.0], vec![]));
        // Implicit "ji" transposes (labels sorted alphabetically).
        let (v, _) = run("ji", std::slice::from_ref(&a), &[&[2, 2]])?;
        assert_eq!(v, vec![1.0, 3.0, 2.0, 4.0]);
        // Ellipsis batch axes broadcast.
        let (v, s) = run("...ij,...j->...i", &[a.clone(), vec![1.0, 1.0]], &[&[1, 2, 2], &[2]])?;
        assert_eq!((v, s), (vec![3.0, 7.0], vec![1, 2]));
        assert!(run("ij->k", &[a], &[&[2, 2]]).is_err());
        Ok(())
    }
}
