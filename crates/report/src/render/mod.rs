//! Renderings of a report: JSON (the schema), Markdown, HTML with SVG charts, JUnit XML.

mod html;
mod svg;

pub use html::html;

use crate::{Basis, Figure, Report};

/// The report as JSON under its versioned schema (pretty, trailing newline).
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// How a figure was obtained, in words.
pub fn basis(f: &Figure) -> String {
    match &f.basis {
        Basis::Measured { device, runs, spread } => format!("measured on {device}, {runs} runs, spread {:.1}%", spread * 100.0),
        Basis::Estimated { model } => format!("estimated: {model}"),
    }
}

/// A figure's value with its unit.
pub fn value(f: &Figure) -> String {
    let v = f.value;
    match f.unit.as_str() {
        "ms" => format!("{v:.3} ms"),
        "bytes" => format!("{:.2} MiB", v / 1048576.0),
        "$" => format!("${v:.4}"),
        "J" => format!("{v:.4} J"),
        "ratio" => crate::gate::show(crate::gate::Kind::Ratio, v),
        "1/s" => format!("{v:.1}/s"),
        "abs" => format!("{v:.3e}"),
        u => format!("{v} {u}"),
    }
}

/// Rows of (section, metric, value, basis) every text renderer shares.
pub fn rows(r: &Report) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut push = |s: &str, m: String, f: &Figure| out.push((s.to_string(), m, value(f), basis(f)));
    if let Some(a) = &r.accuracy {
        for o in &a.outputs {
            push("accuracy", format!("{} cosine", o.name), &o.cosine);
            push("accuracy", format!("{} max abs error", o.name), &o.max_abs);
            push("accuracy", format!("{} max rel error", o.name), &o.max_rel);
            if let Some(t) = &o.top1 {
                push("accuracy", format!("{} top-1 agreement", o.name), t);
            }
            if let Some(t) = &o.top5 {
                push("accuracy", format!("{} top-5 agreement", o.name), t);
            }
        }
        if let Some(t) = &a.task {
            push("accuracy", "task accuracy (labels)".into(), t);
        }
    }
    for l in &r.latency {
        for (n, f) in [("min", &l.min), ("p50", &l.p50), ("p90", &l.p90), ("p99", &l.p99), ("max", &l.max), ("throughput", &l.throughput)] {
            push("latency", format!("batch {} {n}", l.batch), f);
        }
    }
    if let Some(f) = &r.memory.planned_peak {
        push("memory", "planned peak".into(), f);
    }
    if let Some(f) = &r.memory.process_peak_rss {
        push("memory", "process peak RSS".into(), f);
    }
    if let Some(c) = &r.cost {
        push("cost", "per million inferences".into(), &c.per_million);
        push("cost", "energy per inference".into(), &c.energy_per_inference);
    }
    for s in &r.compile {
        push("compile", s.name.clone(), &s.time);
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A Markdown summary for a pull-request comment.
pub fn markdown(r: &Report) -> String {
    let a = &r.artifact;
    let mut s = format!("## Kiln validation: {} {}\n\n", md_escape(&a.name), md_escape(&a.version));
    s.push_str(&format!("`{}` · {} on {} · {} · {:.2} MiB\n\n", a.digest, a.target, md_escape(&a.device), a.precision, a.bytes as f64 / 1048576.0));
    if !r.gates.is_empty() {
        let failed = r.gates.iter().filter(|g| !g.passed).count();
        s.push_str(&if failed == 0 { format!("**Gates: all {} passed**\n\n", r.gates.len()) } else { format!("**Gates: {failed} of {} FAILED**\n\n", r.gates.len()) });
        s.push_str("| gate | result |\n|---|---|\n");
        for g in &r.gates {
            s.push_str(&format!("| `{}` | {} {} |\n", md_escape(&g.gate), if g.passed { "✅" } else { "❌" }, md_escape(&g.message)));
        }
        s.push('\n');
    }
    s.push_str("| section | metric | value | basis |\n|---|---|---|---|\n");
    for (sec, m, v, b) in rows(r) {
        s.push_str(&format!("| {sec} | {} | {v} | {} |\n", md_escape(&m), md_escape(&b)));
    }
    if let Some(c) = &r.cost {
        s.push_str(&format!("\nPrice: ${}/h ({}); power {} W (estimated).\n", c.price_per_hour, md_escape(&c.price_source), c.power_watts));
    }
    if let Some(acc) = &r.accuracy {
        s.push_str(&format!("\nAccuracy against {} over {} sample(s) ({}).\n", md_escape(&acc.reference), acc.samples, md_escape(&acc.inputs)));
    }
    s
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// JUnit XML: one test case per gate (a failure element when it failed), and one per figure
/// (always passing, the figure in system-out) so CI shows what was measured.
pub fn junit(r: &Report) -> String {
    let failures = r.gates.iter().filter(|g| !g.passed).count();
    let figures = rows(r);
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let name = xml_escape(&format!("kiln.validation.{}", r.artifact.name));
    s.push_str(&format!("<testsuites name=\"{name}\" tests=\"{}\" failures=\"{failures}\">\n", r.gates.len() + figures.len()));
    s.push_str(&format!("  <testsuite name=\"{name}.gates\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n", r.gates.len()));
    for g in &r.gates {
        s.push_str(&format!("    <testcase classname=\"kiln.gates\" name=\"{}\"", xml_escape(&g.gate)));
        if g.passed {
            s.push_str(&format!(">\n      <system-out>{}</system-out>\n    </testcase>\n", xml_escape(&g.message)));
        } else {
            s.push_str(&format!(">\n      <failure message=\"{}\" type=\"gate\"/>\n    </testcase>\n", xml_escape(&g.message)));
        }
    }
    s.push_str("  </testsuite>\n");
    s.push_str(&format!("  <testsuite name=\"{name}.figures\" tests=\"{}\" failures=\"0\" errors=\"0\">\n", figures.len()));
    for (sec, m, v, b) in &figures {
        s.push_str(&format!(
            "    <testcase classname=\"kiln.{}\" name=\"{}\">\n      <system-out>{} ({})</system-out>\n    </testcase>\n",
            xml_escape(sec),
            xml_escape(m),
            xml_escape(v),
            xml_escape(b)
        ));
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
