mod common;
use kiln_artifact::{BuildConfig, FileEntry, KilnInfo, Manifest, SourceModel};
use kiln_report::diff::{Side, diff, text};
use std::collections::BTreeMap;

fn manifest(precision: &str, weights: u64, kernels: &[(&str, usize)]) -> Manifest {
    Manifest {
        schema_version: 1,
        name: "tiny".into(),
        version: "1.0.0".into(),
        target: BTreeMap::from([("kind".into(), "cpu".into())]),
        precision: precision.into(),
        source: SourceModel { name: "m.onnx".into(), sha256: "ab".repeat(32), weights_sha256: None },
        build: BuildConfig { target: "cpu".into(), tune: "off".into(), kernels: kernels.iter().map(|(k, n)| (k.to_string(), *n)).collect(), ..Default::default() },
        kiln: KilnInfo { version: "0.1.0".into(), commit: "x".into() },
        files: vec![FileEntry { path: "weights.bin".into(), bytes: weights, sha256: format!("{weights:064}") }],
    }
}

#[test]
fn diff_names_precision_size_kernels_and_latency() {
    let (a, b) = (manifest("f32", 4000, &[("cpu.conv2d", 3)]), manifest("int8", 1000, &[("cpu.conv2d", 2), ("cpu.qconv", 1)]));
    let (ra, mut rb) = (common::fixture(), common::fixture());
    rb.latency[0].p50.value = 5.375;
    let rows = diff(&Side { manifest: &a, report: Some(&ra) }, &Side { manifest: &b, report: Some(&rb) });
    let t = text(&rows, false);
    for want in ["precision", "int8", "file weights.bin", "-75.0%", "kernel cpu.qconv", "latency.p50", "-50.0%"] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
    assert!(!t.contains("version"), "equal rows hidden:\n{t}");
    assert_eq!(text(&diff(&Side { manifest: &a, report: None }, &Side { manifest: &a, report: None }), false), "no differences\n");
}
