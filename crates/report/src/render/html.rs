use super::{rows, svg, value, xml_escape as esc};
use crate::Report;

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:980px;color:#1d1d1f;background:#fff}\
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
code{background:#f3f3f6;padding:.1rem .3rem;border-radius:3px}table{border-collapse:collapse;width:100%;font-size:.9rem}\
td,th{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left}th{background:#f7f7fa}\
.pass{color:#1b8a3a;font-weight:600}.fail{color:#c0392b;font-weight:600}.muted{color:#666;font-size:.85rem}\
.chart{display:block;margin:.5rem 0;border:1px solid #eee;border-radius:4px}";

/// A self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched.
pub fn html(r: &Report) -> String {
    let a = &r.artifact;
    let mut b = String::new();
    b.push_str(&format!("<h1>Kiln validation: {} {}</h1>", esc(&a.name), esc(&a.version)));
    b.push_str(&format!(
        "<p class=\"muted\"><code>{}</code><br>{} on {} &middot; {} &middot; {:.2} MiB</p>",
        esc(&a.digest),
        esc(&a.target),
        esc(&a.device),
        esc(&a.precision),
        a.bytes as f64 / 1048576.0
    ));
    if !r.gates.is_empty() {
        let failed = r.gates.iter().filter(|g| !g.passed).count();
        b.push_str("<h2>Gates</h2>");
        b.push_str(&if failed == 0 {
            format!("<p class=\"pass\" id=\"verdict\">All {} gates passed</p>", r.gates.len())
        } else {
            format!("<p class=\"fail\" id=\"verdict\">{failed} of {} gates failed</p>", r.gates.len())
        });
        b.push_str("<table><tr><th>gate</th><th>result</th></tr>");
        for g in &r.gates {
            let cls = if g.passed { "pass" } else { "fail" };
            b.push_str(&format!("<tr><td><code>{}</code></td><td class=\"{cls}\">{}</td></tr>", esc(&g.gate), esc(&g.message)));
        }
        b.push_str("</table>");
    }
    if let Some(l) = r.latency.first() {
        b.push_str(&format!("<h2>Latency distribution (batch {}, {} runs)</h2>", l.batch, l.samples_ms.len()));
        b.push_str(&svg::latency_histogram("latency-chart", &l.samples_ms, l.p50.value, l.p99.value));
    }
    b.push_str("<h2>Precision map</h2>");
    let pm: Vec<(String, f64, String)> = r.precision_map.iter().map(|p| (format!("{} ({})", p.kernel, p.precision), p.steps as f64, format!("{} steps", p.steps))).collect();
    b.push_str(&svg::bars("precision-chart", "Plan steps by kernel and precision", &pm));
    if !r.layer_error.is_empty() {
        b.push_str("<h2>Per-layer error</h2>");
        let le: Vec<(String, f64, String)> = r.layer_error.iter().map(|l| (l.layer.clone(), l.max_abs, format!("{:.3e}", l.max_abs))).collect();
        b.push_str(&svg::bars("layer-error-chart", "Max abs error per layer", &le));
    } else {
        b.push_str(&format!("<p class=\"muted\">Per-layer error: not applicable, the build is not quantized ({}).</p>", esc(&a.precision)));
    }
    if let Some(acc) = &r.accuracy {
        b.push_str("<h2>Accuracy</h2>");
        b.push_str(&format!("<p class=\"muted\">Against {} over {} sample(s): {}.</p>", esc(&acc.reference), acc.samples, esc(&acc.inputs)));
        let oe: Vec<(String, f64, String)> = acc.outputs.iter().map(|o| (o.name.clone(), o.max_abs.value, format!("max abs {}", value(&o.max_abs)))).collect();
        b.push_str(&svg::bars("output-error-chart", "Max abs error per output", &oe));
    }
    b.push_str("<h2>All figures</h2><table><tr><th>section</th><th>metric</th><th>value</th><th>basis</th></tr>");
    for (sec, m, v, basis) in rows(r) {
        b.push_str(&format!("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>", esc(&sec), esc(&m), esc(&v), esc(&basis)));
    }
    b.push_str("</table>");
    if let Some(c) = &r.cost {
        b.push_str(&format!("<p class=\"muted\">Price ${}/h ({}); power {} W, estimated.</p>", c.price_per_hour, esc(&c.price_source), c.power_watts));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Kiln validation: {}</title><style>{CSS}</style></head><body>{b}</body></html>\n",
        esc(&a.name)
    )
}
