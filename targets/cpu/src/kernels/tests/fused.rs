use super::util::{assert_close, rand_vec, rng};
use crate::kernels::*;
use rand::Rng;

#[test]
fn chain_matches_stepwise_reference() {
    let mut r = rng(5);
    for case in 0..200 {
        let row_len = [1, 3, 8, 15, 16, 17, 100, 1000][r.random_range(0..8)];
        let rows = [1, 2, 5, 33][r.random_range(0..4)];
        let n = rows * row_len;
        let x = rand_vec(&mut r, n);
        let row = rand_vec(&mut r, row_len);
        let col = rand_vec(&mut r, rows);
        let full = rand_vec(&mut r, n);
        let nsteps = r.random_range(0..6);
        let mut steps = Vec::new();
        for _ in 0..nsteps {
            let step = match r.random_range(0..4) {
                0 => Step::unary(
                    [Unary::Neg, Unary::Abs, Unary::Square, Unary::Exp, Unary::Act(Activation::Gelu), Unary::Act(Activation::Sigmoid)]
                        [r.random_range(0..6)],
                ),
                _ => {
                    let op = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Max, Binary::Min][r.random_range(0..5)];
                    let rhs = match r.random_range(0..4) {
                        0 => Operand::Scalar(r.random_range(-2.0..2.0)),
                        1 => Operand::Row(&row),
                        2 => Operand::Col(&col),
                        _ => Operand::Full(&full),
                    };
                    Step::Binary { op, rhs, swap: r.random_bool(0.3) }
                }
            };
            steps.push(step);
        }
        // Reference: one element at a time.
        let want: Vec<f32> = (0..n)
            .map(|i| {
                let mut acc = x[i];
                for s in &steps {
                    acc = match *s {
                        Step::Unary(u) => match u {
                            Unary::Neg => -acc,
                            Unary::Abs => acc.abs(),
                            Unary::Square => acc * acc,
                            Unary::Sqrt => acc.sqrt(),
                            Unary::Recip => 1.0 / acc,
                            Unary::Exp => acc.exp(),
                            Unary::Log => acc.ln(),
                            Unary::Act(a) => a.apply(acc),
                        },
                        Step::Binary { op, rhs, swap } => {
                            let b = match rhs {
                                Operand::Scalar(s) => s,
                                Operand::Row(v) => v[i % row_len],
                                Operand::Col(v) => v[i / row_len],
                                Operand::Full(v) => v[i],
                            };
                            let (l, rr) = if swap { (b, acc) } else { (acc, b) };
                            match op {
                                Binary::Add => l + rr,
                                Binary::Sub => l - rr,
                                Binary::Mul => l * rr,
                                Binary::Div => l / rr,
                                Binary::Max => l.max(rr),
                                Binary::Min => l.min(rr),
                            }
                        }
                    };
                }
                acc
            })
            .collect();
        let mut cands = chain_candidates(n, 2);
        cands.push(ChainParams { tile: 16, threads: 2, isa: Isa::best() });
        cands.push(ChainParams { tile: 48, threads: 1, isa: Isa::Scalar });
        for p in cands {
            let mut got = vec![0.0; n];
            run_chain(&x, row_len, &steps, &mut got, &p).unwrap();
            assert_close(&format!("case {case} {steps:?} {p:?}"), &got, &want, 1e-5, 1e-5);
            let mut inplace = x.clone();
            run_chain_inplace(&mut inplace, row_len, &steps, &p).unwrap();
            assert_eq!(inplace, got);
        }
    }
    let mut out = vec![0.0; 6];
    assert!(run_chain(&[0.0; 6], 4, &[], &mut out, &ChainParams::default()).is_err());
    let bad = [Step::binary(Binary::Add, Operand::Row(&[1.0; 2]))];
    assert!(run_chain(&[0.0; 6], 3, &bad, &mut out, &ChainParams::default()).is_err());
}

#[test]
fn softmax_and_layer_norm() {
    let mut r = rng(6);
    for &(rows, row_len) in &[(1, 1), (3, 7), (5, 16), (2, 17), (64, 384), (3, 1000), (300, 33)] {
        let x: Vec<f32> = rand_vec(&mut r, rows * row_len).iter().map(|v| v * 20.0).collect();
        let gamma = rand_vec(&mut r, row_len);
        let beta = rand_vec(&mut r, row_len);
        let mut want_sm = vec![0.0; x.len()];
        let mut want_ln = vec![0.0; x.len()];
        for ((row, sm), ln) in x.chunks(row_len).zip(want_sm.chunks_mut(row_len)).zip(want_ln.chunks_mut(row_len)) {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
            let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
            let s: f64 = e.iter().sum();
            sm.iter_mut().zip(&e).for_each(|(o, v)| *o = (v / s) as f32);
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / row_len as f64;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / row_len as f64;
            for (j, o) in ln.iter_mut().enumerate() {
                let nv = (f64::from(row[j]) - mean) / (var + 1e-5).sqrt();
                *o = (nv * f64::from(gamma[j]) + f64::from(beta[j])) as f32;
            }
        }
        for p in row_candidates(x.len(), 2).into_iter().chain([RowParams { threads: 2, isa: Isa::Scalar }]) {
            let mut got = vec![0.0; x.len()];
            softmax(&x, row_len, &mut got, &p).unwrap();
            assert_close(&format!("softmax {rows}x{row_len} {p:?}"), &got, &want_sm, 1e-5, 1e-7);
            let mut inplace = x.clone();
            softmax_inplace(&mut inplace, row_len, &p).unwrap();
            assert_eq!(inplace, got);
            layer_norm(&x, row_len, Some(&gamma), Some(&beta), 1e-5, &mut got, &p).unwrap();
            assert_close(&format!("layer_norm {rows}x{row_len} {p:?}"), &got, &want_ln, 1e-4, 1e-5);
        }
    }
    let mut got = vec![0.0; 4];
    layer_norm(&[1.0, 2.0, 3.0, 4.0], 2, None, None, 0.0, &mut got, &RowParams::default()).unwrap();
    assert_close("ln no affine", &got, &[-1.0, 1.0, -1.0, 1.0], 1e-6, 1e-6);
    softmax(&[0.0, f32::NEG_INFINITY], 2, &mut got[..2], &RowParams::default()).unwrap();
    assert_eq!(&got[..2], &[1.0, 0.0]);
    assert!(softmax(&[0.0; 5], 2, &mut [0.0; 5], &RowParams::default()).is_err());
    assert!(layer_norm(&[0.0; 4], 2, Some(&[1.0]), None, 1e-5, &mut [0.0; 4], &RowParams::default()).is_err());
}
