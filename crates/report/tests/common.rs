//! A report with fixed numbers standing in for measured ones.

use kiln_report::*;

pub fn fixture() -> Report {
    let dev = "Test CPU (avx2, 2 cores)";
    let m = |v: f64, unit: &str| Figure::measured(v, unit, dev, 50, 0.12);
    let mut r = Report::new(ArtifactInfo {
        name: "tiny".into(),
        version: "1.0.0".into(),
        digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        target: "cpu".into(),
        device: dev.into(),
        precision: "f32".into(),
        bytes: 3 * 1048576,
    });
    r.accuracy = Some(Accuracy {
        reference: "Kiln's reference executor on the source model".into(),
        samples: 4,
        inputs: "seeded random, seed 0".into(),
        outputs: vec![OutputAccuracy {
            name: "probs".into(),
            max_abs: Figure::measured(2.5e-6, "abs", dev, 4, 0.0),
            max_rel: Figure::measured(1.0e-5, "abs", dev, 4, 0.0),
            cosine: Figure::measured(0.9999999, "ratio", dev, 4, 0.0),
            top1: Some(Figure::measured(1.0, "ratio", dev, 4, 0.0)),
            top5: Some(Figure::measured(1.0, "ratio", dev, 4, 0.0)),
        }],
        task: None,
    });
    let samples: Vec<f64> = (0..50).map(|i| 10.0 + f64::from(i % 7) * 0.25 + if i == 49 { 3.0 } else { 0.0 }).collect();
    r.latency.push(Latency {
        batch: 1,
        warmup: 3,
        min: m(10.0, "ms"),
        p50: m(10.75, "ms"),
        p90: m(11.5, "ms"),
        p99: m(11.5, "ms"),
        max: m(14.5, "ms"),
        throughput: m(93.0, "1/s"),
        samples_ms: samples,
    });
    r.memory.planned_peak = Some(Figure::estimated(1048576.0, "bytes", "the executable's memory plan"));
    r.memory.process_peak_rss = Some(m(50.0 * 1048576.0, "bytes"));
    r.cost = Some(Cost {
        price_per_hour: 0.0893,
        price_source: "AWS c7i.large on-demand".into(),
        per_million: Figure::estimated(0.2667, "$", "price x measured p50"),
        power_watts: 15.0,
        energy_per_inference: Figure::estimated(0.16, "J", "15 W x p50"),
    });
    r.compile = vec![Stage { name: "import".into(), time: m(20.0, "ms") }, Stage { name: "lower".into(), time: m(30.0, "ms") }];
    r.precision_map = vec![
        PrecisionRow { kernel: "cpu.conv2d".into(), precision: "f32".into(), steps: 32 },
        PrecisionRow { kernel: "reference".into(), precision: "f32".into(), steps: 4 },
    ];
    r
}
