//! Small SVG charts, drawn as text (no scripts, no fonts fetched).

use super::xml_escape;

/// A histogram of latency samples (ms) with p50 and p99 marked.
pub fn latency_histogram(id: &str, samples: &[f64], p50: f64, p99: f64) -> String {
    let (w, h, pad) = (560.0, 200.0, 36.0);
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if samples.is_empty() { (0.0, 1.0) } else if hi > lo { (lo, hi) } else { (lo * 0.9, lo * 1.1 + 1e-9) };
    let bins = 20usize;
    let mut counts = vec![0usize; bins];
    for &s in samples {
        let b = (((s - lo) / (hi - lo)) * bins as f64).floor() as usize;
        counts[b.min(bins - 1)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = (w - 2.0 * pad) / bins as f64;
    let x_of = |v: f64| pad + (v - lo) / (hi - lo) * (w - 2.0 * pad);
    let mut s = format!("<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>Latency distribution (ms)</title>");
    s.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fbfbfd\"/>"));
    for (i, c) in counts.iter().enumerate() {
        let bh = *c as f64 / max * (h - 2.0 * pad);
        s.push_str(&format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4a6fd1\"><title>{c} runs</title></rect>",
            pad + i as f64 * bw + 1.0,
            h - pad - bh,
            (bw - 2.0).max(1.0),
            bh
        ));
    }
    for (v, label, color) in [(p50, "p50", "#1b8a3a"), (p99, "p99", "#c0392b")] {
        let x = x_of(v.clamp(lo, hi));
        s.push_str(&format!("<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>", pad - 8.0, h - pad));
        s.push_str(&format!("<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{color}\" text-anchor=\"middle\">{label} {v:.3}</text>", pad - 12.0));
    }
    s.push_str(&format!("<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#333\"/>", h - pad, w - pad));
    s.push_str(&format!("<text x=\"{pad}\" y=\"{:.1}\" font-size=\"11\">{lo:.3} ms</text>", h - pad + 16.0));
    s.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{hi:.3} ms</text>", w - pad, h - pad + 16.0));
    s.push_str("</svg>");
    s
}

/// Horizontal bars: (label, value) with the value printed.
pub fn bars(id: &str, title: &str, rows: &[(String, f64, String)]) -> String {
    let (w, row_h, left) = (560.0, 22.0, 200.0);
    let h = 20.0 + row_h * rows.len().max(1) as f64;
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut s = format!(
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{}</title>",
        xml_escape(title)
    );
    s.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fbfbfd\"/>"));
    let palette = ["#4a6fd1", "#1b8a3a", "#d18b2c", "#8e44ad", "#16a085", "#c0392b"];
    for (i, (label, v, shown)) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let bw = (v / max * (w - left - 140.0)).max(1.0);
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>", left - 6.0, y + 14.0, xml_escape(label)));
        s.push_str(&format!(
            "<rect class=\"bar\" x=\"{left}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
            y + 3.0,
            row_h - 6.0,
            palette[i % palette.len()]
        ));
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>", left + bw + 4.0, y + 14.0, xml_escape(shown)));
    }
    s.push_str("</svg>");
    s
}
