//! Unique.

use super::common::{axis, elem_order, gather_flat};
use crate::util::req;
use crate::{OpCtx, OpError};
use kiln_tensor::Tensor;
use std::cmp::Ordering;

/// Unique: the distinct elements (or slices along `axis`), sorted ascending or in order of
/// first occurrence; with the first-occurrence indices, the inverse indices and the counts.
pub fn unique(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let ax = ctx.node.attr_int("axis").map(|a| axis(a, x.rank())).transpose()?;
    let (outer, dim, inner) = match ax {
        Some(ax) => (x.shape()[..ax].iter().product(), x.shape()[ax], x.shape()[ax + 1..].iter().product()),
        None => (1, x.len(), 1),
    };
    let order = elem_order(x.data())?;
    // Slice `s` holds elements (o * dim + s) * inner + i, compared in that order.
    let cmp = |a: usize, b: usize| -> Ordering {
        for o in 0..outer {
            for i in 0..inner {
                let c = order((o * dim + a) * inner + i, (o * dim + b) * inner + i);
                if c != Ordering::Equal {
                    return c;
                }
            }
        }
        Ordering::Equal
    };
    let mut ids: Vec<usize> = (0..dim).collect();
    ids.sort_by(|&a, &b| cmp(a, b)); // stable: equal slices keep index order
    // Groups of equal slices: (first occurrence, members).
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &s in &ids {
        match groups.last_mut() {
            Some((first, members)) if cmp(*first, s) == Ordering::Equal => members.push(s),
            _ => groups.push((s, vec![s])),
        }
    }
    if ctx.attr_i("sorted", 1) == 0 {
        groups.sort_by_key(|g| g.0);
    }
    let mut inverse = vec![0i64; dim];
    for (g, (_, members)) in groups.iter().enumerate() {
        for &m in members {
            inverse[m] = g as i64;
        }
    }
    let firsts: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let mut idx = Vec::with_capacity(outer * firsts.len() * inner);
    for o in 0..outer {
        for &s in &firsts {
            let base = (o * dim + s) * inner;
            idx.extend(base..base + inner);
        }
    }
    let n = firsts.len();
    let shape = match ax {
        Some(ax) => {
            let mut s = x.shape().to_vec();
            s[ax] = n;
            s
        }
        None => vec![n],
    };
    let counts: Vec<i64> = groups.iter().map(|g| g.1.len() as i64).collect();
    Ok(vec![
        gather_flat(x, shape, &idx)?,
        Tensor::from_vec(vec![n], firsts.iter().map(|&f| f as i64).collect())?,
        Tensor::from_vec(vec![dim], inverse)?,
        Tensor::from_vec(vec![n], counts)?,
    ])
}
