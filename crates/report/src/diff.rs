//! What changed between two artifacts: manifest facts (precision, target, sizes, kernels) and,
//! when both have validation reports, accuracy and latency.

use crate::Report;
use crate::gate::{Kind, METRICS, metric, show};
use kiln_artifact::Manifest;
use std::collections::BTreeSet;

/// One side of a diff.
pub struct Side<'a> {
    pub manifest: &'a Manifest,
    pub report: Option<&'a Report>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    pub what: String,
    pub a: String,
    pub b: String,
    /// "+12.0%", "changed", or "" when equal.
    pub change: String,
}

fn row(what: &str, a: String, b: String) -> Row {
    let change = if a == b { String::new() } else { "changed".into() };
    Row { what: what.into(), a, b, change }
}

fn num_row(what: &str, kind: Kind, a: Option<f64>, b: Option<f64>) -> Row {
    let s = |v: Option<f64>| v.map(|v| show(kind, v)).unwrap_or_else(|| "-".into());
    let change = match (a, b) {
        (Some(x), Some(y)) if x == y => String::new(),
        (Some(x), Some(y)) if x != 0.0 => format!("{:+.1}%", (y - x) / x * 100.0),
        (None, None) => String::new(),
        _ => "changed".into(),
    };
    Row { what: what.into(), a: s(a), b: s(b), change }
}

/// Every row, equal ones included (callers may show only changes).
pub fn diff(a: &Side, b: &Side) -> Vec<Row> {
    let (ma, mb) = (a.manifest, b.manifest);
    let mut rows = vec![
        row("name", ma.name.clone(), mb.name.clone()),
        row("version", ma.version.clone(), mb.version.clone()),
        row("precision", ma.precision.clone(), mb.precision.clone()),
        row("target", format!("{:?}", ma.target.get("kind")), format!("{:?}", mb.target.get("kind"))),
        row("device", ma.target.get("device").cloned().unwrap_or_default(), mb.target.get("device").cloned().unwrap_or_default()),
        row("source model", ma.source.sha256[..12.min(ma.source.sha256.len())].to_string(), mb.source.sha256[..12.min(mb.source.sha256.len())].to_string()),
        row("tune", ma.build.tune.clone(), mb.build.tune.clone()),
        num_row("size", Kind::Bytes, Some(ma.total_bytes() as f64), Some(mb.total_bytes() as f64)),
    ];
    let files: BTreeSet<&str> = ma.files.iter().chain(&mb.files).map(|f| f.path.as_str()).collect();
    for f in files {
        let (fa, fb) = (ma.file(f), mb.file(f));
        let mut r = num_row(&format!("file {f}"), Kind::Bytes, fa.map(|x| x.bytes as f64), fb.map(|x| x.bytes as f64));
        if r.change.is_empty() && fa.map(|x| &x.sha256) != fb.map(|x| &x.sha256) {
            r.change = "content changed".into();
        }
        rows.push(r);
    }
    let kernels: BTreeSet<&String> = ma.build.kernels.keys().chain(mb.build.kernels.keys()).collect();
    for k in kernels {
        let n = |m: &Manifest| m.build.kernels.get(k).copied().unwrap_or(0).to_string();
        rows.push(row(&format!("kernel {k} (steps)"), n(ma), n(mb)));
    }
    if a.report.is_some() || b.report.is_some() {
        for (name, kind, _) in METRICS.iter().filter(|m| m.0.starts_with("accuracy.") || m.0.starts_with("latency.") || m.0.starts_with("cost.")) {
            let (x, y) = (a.report.and_then(|r| metric(r, name)), b.report.and_then(|r| metric(r, name)));
            if x.is_some() || y.is_some() {
                rows.push(num_row(name, *kind, x, y));
            }
        }
    }
    rows
}

/// A plain-text table of the rows that changed (or "no differences").
pub fn text(rows: &[Row], all: bool) -> String {
    let shown: Vec<&Row> = rows.iter().filter(|r| all || !r.change.is_empty()).collect();
    if shown.is_empty() {
        return "no differences\n".into();
    }
    let w0 = shown.iter().map(|r| r.what.len()).max().unwrap_or(0);
    let w1 = shown.iter().map(|r| r.a.len()).max().unwrap_or(0);
    let w2 = shown.iter().map(|r| r.b.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in shown {
        out.push_str(&format!("{:<w0$}  {:<w1$}  {:<w2$}  {}\n", r.what, r.a, r.b, r.change).replace("  \n", "\n"));
    }
    out
}
