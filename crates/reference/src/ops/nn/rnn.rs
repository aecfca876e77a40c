//! RNN, GRU and LSTM cells over the shared sequence driver in `recurrent.rs`.

use super::recurrent::{Seq, matvec_add};
use crate::util::opt;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// `W x + R h + Wb + Rb` for one direction: the gate pre-activations, [gates * hidden].
fn pre(seq: &Seq, gates: usize, dir: usize, x: &[f64], h: &[f64]) -> Vec<f64> {
    let gh = gates * seq.hidden;
    let b = &seq.b[dir * 2 * gh..(dir + 1) * 2 * gh];
    let mut g: Vec<f64> = (0..gh).map(|i| b[i] + b[gh + i]).collect();
    matvec_add(&seq.w[dir * gh * seq.input..(dir + 1) * gh * seq.input], seq.input, x, &mut g);
    matvec_add(&seq.r[dir * gh * seq.hidden..(dir + 1) * gh * seq.hidden], seq.hidden, h, &mut g);
    g
}

pub fn rnn(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let seq = Seq::read(ctx, inputs, 1, &["Tanh"])?;
    let h0 = seq.state(opt(inputs, 5), "initial_h")?;
    let c0 = vec![0.0; h0.len()];
    let (y, h, _) = seq.run(h0, c0, |dir, x, h, _| {
        let g = pre(&seq, 1, dir, x, h);
        let f = seq.acts[dir][0];
        for (hv, gv) in h.iter_mut().zip(g) {
            *hv = f.apply(seq.clip(gv));
        }
    });
    seq.outputs(y, &[h])
}

pub fn gru(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let seq = Seq::read(ctx, inputs, 3, &["Sigmoid", "Tanh"])?;
    let lbr = ctx.attr_i("linear_before_reset", 0) != 0;
    let h0 = seq.state(opt(inputs, 5), "initial_h")?;
    let c0 = vec![0.0; h0.len()];
    let hs = seq.hidden;
    let (y, h, _) = seq.run(h0, c0, |dir, x, h, _| {
        let (f, g) = (seq.acts[dir][0], seq.acts[dir][1]);
        let gh = 3 * hs;
        let b = &seq.b[dir * 2 * gh..(dir + 1) * 2 * gh];
        let w = &seq.w[dir * gh * seq.input..(dir + 1) * gh * seq.input];
        let r = &seq.r[dir * gh * hs..(dir + 1) * gh * hs];
        // Input parts of the z, r, h gates with the input bias.
        let mut xg: Vec<f64> = b[..gh].to_vec();
        matvec_add(w, seq.input, x, &mut xg);
        // Recurrent parts of z and r with their bias.
        let mut hg: Vec<f64> = b[gh..gh + 2 * hs].to_vec();
        matvec_add(&r[..2 * hs * hs], hs, h, &mut hg);
        let z: Vec<f64> = (0..hs).map(|i| f.apply(seq.clip(xg[i] + hg[i]))).collect();
        let rt: Vec<f64> = (0..hs).map(|i| f.apply(seq.clip(xg[hs + i] + hg[hs + i]))).collect();
        let rh = &r[2 * hs * hs..];
        let rbh = &b[gh + 2 * hs..];
        let mut cand = vec![0.0; hs];
        if lbr {
            matvec_add(rh, hs, h, &mut cand);
            for i in 0..hs {
                cand[i] = rt[i] * (cand[i] + rbh[i]);
            }
        } else {
            let gated: Vec<f64> = (0..hs).map(|i| rt[i] * h[i]).collect();
            matvec_add(rh, hs, &gated, &mut cand);
            for i in 0..hs {
                cand[i] += rbh[i];
            }
        }
        for i in 0..hs {
            let ht = g.apply(seq.clip(xg[2 * hs + i] + cand[i]));
            h[i] = (1.0 - z[i]) * ht + z[i] * h[i];
        }
    });
    seq.outputs(y, &[h])
}

pub fn lstm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let seq = Seq::read(ctx, inputs, 4, &["Sigmoid", "Tanh", "Tanh"])?;
    let h0 = seq.state(opt(inputs, 5), "initial_h")?;
    let c0 = seq.state(opt(inputs, 6), "initial_c")?;
    let hs = seq.hidden;
    let peep = match opt(inputs, 7) {
        Some(p) if p.shape() == [seq.dirs, 3 * hs] => super::common::floats(p, "P")?,
        Some(p) => bail!("P has shape {:?}, expected [{}, {}]", p.shape(), seq.dirs, 3 * hs),
        None => vec![0.0; seq.dirs * 3 * hs],
    };
    let couple = ctx.attr_i("input_forget", 0) != 0;
    let (y, h, c) = seq.run(h0, c0, |dir, x, h, c| {
        let (f, g, hf) = (seq.acts[dir][0], seq.acts[dir][1], seq.acts[dir][2]);
        let pre = pre(&seq, 4, dir, x, h);
        let p = &peep[dir * 3 * hs..(dir + 1) * 3 * hs];
        // Gate order in W, R, B: input, output, forget, cell; in P: input, output, forget.
        for j in 0..hs {
            let i = f.apply(seq.clip(pre[j] + p[j] * c[j]));
            let ft = if couple { 1.0 - i } else { f.apply(seq.clip(pre[2 * hs + j] + p[2 * hs + j] * c[j])) };
            let ct = g.apply(seq.clip(pre[3 * hs + j]));
            c[j] = ft * c[j] + i * ct;
            let o = f.apply(seq.clip(pre[hs + j] + p[hs + j] * c[j]));
            h[j] = o * hf.apply(c[j]);
        }
    });
    seq.outputs(y, &[h, c])
}
