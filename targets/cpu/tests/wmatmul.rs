//! `kiln::WMatMul` lowered to `cpu.wmatmul` and run on the CPU target, one node at a time,
//! against the reference executor within 1e-5 of the largest magnitude: every weight type
//! (f16, bf16, int4, uint4, int8, uint8) with f32 and bf16 compute, 1, 7, 64 and 200 rows, K
//! not a multiple of the group, N not a multiple of the tiles, zero points present and
//! absent, bias + activation, and every candidate variant of each. A case that falls back to
//! the reference kernel fails.

use kiln_ir::{Attr, Graph, Model, Node};
use kiln_reference::Value;
use kiln_target::{CompileOptions, Target, TuneCache, TuneMode, Tuner};
use kiln_target_cpu::CpuTarget;
use kiln_target_cpu::kernels::{WCompute, WKind, wgemm_candidates};
use kiln_tensor::{DType, Data, Shape, Tensor, bf16, f16};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Integers in `lo..=hi` as `dtype` (one per element, 4-bit ones too).
fn ints(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let (lo, hi) = match dtype {
        DType::I4 => (-8.0, 7.0),
        DType::U4 => (0.0, 15.0),
        DType::I8 => (-128.0, 127.0),
        _ => (0.0, 255.0),
    };
    let v: Vec<f64> =
        values(shape.iter().product(), seed).iter().map(|&x| (lo + (f64::from(x) + 1.0) / 2.0 * (hi - lo + 1.0)).floor().min(hi)).collect();
    Tensor::new(shape.to_vec(), Data::from_f64_vec(dtype, &v).expect("ints")).expect("tensor")
}

struct Case {
    name: String,
    x: Vec<usize>,
    consts: Vec<Option<Tensor>>,
    attrs: Vec<(&'static str, Attr)>,
}

fn model(c: &Case) -> (Model, Tensor) {
    let mut g = Graph::new("g");
    let x = Tensor::from_vec(c.x.clone(), values(c.x.iter().product(), 1)).expect("x");
    let xv = g.add_value("x", Some(DType::F32), Some(Shape::known(&c.x)));
    g.inputs.push(xv);
    let mut inputs = vec![Some(xv)];
    for (i, t) in c.consts.iter().enumerate() {
        inputs.push(t.as_ref().map(|t| {
            let v = g.add_value(format!("in{}", i + 1), Some(t.dtype()), Some(Shape::known(t.shape())));
            g.initializers.insert(v, t.clone());
            v
        }));
    }
    let out = g.add_value("y", None, None);
    g.nodes.push(Node {
        name: c.name.clone(),
        op_type: "WMatMul".into(),
        domain: "kiln".into(),
        opset: 1,
        inputs,
        outputs: vec![Some(out)],
        attrs: c.attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        unsupported: None,
    });
    g.outputs.push(out);
    let opsets = BTreeMap::from([(String::new(), 17), ("kiln".to_string(), 1)]);
    (Model { graph: g, ir_version: 8, opsets, ..Model::default() }, x)
}

fn run_case(c: &Case) -> Result<usize, String> {
    let (model, x) = model(c);
    let want = match kiln_reference::run(&model, vec![("x".into(), Value::Tensor(x.clone()))]).map_err(|e| format!("reference: {e}"))?.pop()
    {
        Some((_, Value::Tensor(t))) => t.into_vec::<f32>().map_err(|e| e.to_string())?,
        _ => return Err("no reference output".into()),
    };
    let target = CpuTarget;
    let mut tuner = Tuner::new(TuneMode::Off, TuneCache::in_memory(), "test", Duration::from_secs(1));
    let (mut plan, weights) = target.lower(&model, &CompileOptions::default(), &mut tuner).map_err(|e| format!("lower: {e}"))?;
    let step = plan.steps.first().ok_or("no step")?;
    if step.kernel != "cpu.wmatmul" {
        return Err(format!("lowered to {}, not cpu.wmatmul", step.kernel));
    }
    let m: usize = c.x[..c.x.len() - 1].iter().product();
    let w = c.consts[0].as_ref().ok_or("no W")?;
    let kind = match w.dtype() {
        DType::F16 => WKind::F16,
        DType::BF16 => WKind::Bf16,
        DType::I4 | DType::U4 => WKind::U4,
        _ => WKind::U8,
    };
    let compute =
        if c.attrs.iter().any(|(k, v)| *k == "compute" && *v == Attr::String(b"bf16".to_vec())) { WCompute::Bf16 } else { WCompute::F32 };
    let mut variants = vec![step.variant.clone()];
    variants.extend(wgemm_candidates(m, kind, compute, 2).iter().map(|p| format!("{p:?}")));
    for variant in &variants {
        plan.steps[0].variant = variant.clone();
        let mut exe = target.load(&plan, weights.clone()).map_err(|e| format!("load: {e}"))?;
        let got = exe.run(vec![("x".into(), x.clone())]).map_err(|e| format!("run {variant}: {e}"))?;
        let (_, got) = got.first().ok_or("no output")?;
        let mut shape = c.x.clone();
        *shape.last_mut().ok_or("rank 0")? = want.len() / m;
        if got.shape() != shape {
            return Err(format!("{variant}: shape {:?}, want {shape:?}", got.shape()));
        }
        let got = got.as_slice::<f32>().map_err(|e| e.to_string())?;
        let max = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-6);
        if let Some((i, (g, w))) = got.iter().zip(&want).enumerate().find(|(_, (g, w))| (*g - *w).abs() > 1e-5 * max) {
            return Err(format!("{variant}: element {i}: got {g}, want {w} (max {max})"));
        }
    }
    Ok(variants.len())
}

fn cases() -> Vec<Case> {
    let (k, n, g) = (75, 70, 32);
    let s = |v: &str| Attr::String(v.as_bytes().to_vec());
    let floats = |shape: &[usize], seed| Tensor::from_vec(shape.to_vec(), values(shape.iter().product(), seed)).expect("tensor");
    let scales = |shape: &[usize], seed| {
        Tensor::from_vec(shape.to_vec(), values(shape.iter().product(), seed).iter().map(|v| 0.02 + 0.01 * v).collect::<Vec<f32>>())
            .expect("scales")
    };
    let mut out = Vec::new();
    for m in [1usize, 7, 64, 200] {
        // Rank 3 for the larger row counts.
        let x = if m >= 64 { vec![2, m / 2, k] } else { vec![m, k] };
        let w = floats(&[k, n], 2);
        let f16w = Tensor::from_vec(vec![k, n], w.as_slice::<f32>().expect("w").iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>())
            .expect("f16");
        let bf16w = Tensor::from_vec(vec![k, n], w.as_slice::<f32>().expect("w").iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())
            .expect("bf16");
        let bias = Some(floats(&[n], 3));
        let act = ("activation", s("gelu"));
        out.push(Case {
            name: format!("f16_m{m}"),
            x: x.clone(),
            consts: vec![Some(f16w.clone()), None, None, bias.clone()],
            attrs: vec![act.clone()],
        });
        out.push(Case { name: format!("bf16_m{m}"), x: x.clone(), consts: vec![Some(bf16w.clone()), None, None, None], attrs: vec![] });
        out.push(Case {
            name: format!("bf16_compute_bf16_m{m}"),
            x: x.clone(),
            consts: vec![Some(bf16w), None, None, bias.clone()],
            attrs: vec![("compute", s("bf16")), ("activation", s("relu"))],
        });
        for (dt, seed) in [(DType::I4, 4), (DType::U4, 5), (DType::I8, 6), (DType::U8, 7)] {
            let q = ints(&[k, n], seed, dt);
            let groups = [k.div_ceil(g), n];
            // Group-wise with zero points, bias and an activation.
            out.push(Case {
                name: format!("{}_g{g}_zp_m{m}", dt.name()),
                x: x.clone(),
                consts: vec![Some(q.clone()), Some(scales(&groups, seed + 10)), Some(ints(&groups, seed + 20, dt)), bias.clone()],
                attrs: vec![("block_size", Attr::Int(g as i64)), ("activation", s("silu"))],
            });
            // Group-wise without zero points.
            out.push(Case {
                name: format!("{}_g{g}_m{m}", dt.name()),
                x: x.clone(),
                consts: vec![Some(q.clone()), Some(scales(&groups, seed + 30)), None, None],
                attrs: vec![("block_size", Attr::Int(g as i64))],
            });
            // Per column with zero points, and per tensor, on the bf16 compute.
            out.push(Case {
                name: format!("{}_per_column_m{m}", dt.name()),
                x: x.clone(),
                consts: vec![Some(q.clone()), Some(scales(&[n], seed + 40)), Some(ints(&[n], seed + 50, dt)), bias.clone()],
                attrs: vec![],
            });
            out.push(Case {
                name: format!("{}_per_tensor_bf16_compute_m{m}", dt.name()),
                x: x.clone(),
                consts: vec![Some(q), Some(Tensor::scalar(0.03f32)), None, None],
                attrs: vec![("compute", s("bf16"))],
            });
        }
    }
    out
}

#[test]
fn wmatmul_runs_natively_and_matches_the_reference() {
    let all = cases();
    let mut failures = Vec::new();
    for c in &all {
        match run_case(c) {
            Ok(v) => println!("{}: ok ({v} variants)", c.name),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), all.len(), failures.join("\n  "));
}

#[test]
fn plans_keep_the_weights_low_precision() {
    let (k, n) = (64, 32);
    let q = ints(&[k, n], 1, DType::I4);
    let c = Case {
        name: "int4".into(),
        x: vec![3, k],
        consts: vec![Some(q), Some(Tensor::from_vec(vec![2, n], vec![0.01f32; 2 * n]).expect("s")), None, None],
        attrs: vec![("block_size", Attr::Int(32))],
    };
    let (model, _) = model(&c);
    let mut tuner = Tuner::new(TuneMode::Off, TuneCache::in_memory(), "test", Duration::from_secs(1));
    let (plan, _) = CpuTarget.lower(&model, &CompileOptions::default(), &mut tuner).expect("lower");
    let w = plan.weights.iter().find(|w| w.name == "in1").expect("W");
    assert_eq!((w.dtype.as_str(), w.bytes), ("i4", (k * n / 2) as u64));
}
