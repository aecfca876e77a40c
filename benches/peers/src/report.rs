//! Printing: one block per model as it finishes, and a summary table at the end.

use crate::bench::{ModelResult, Slot};
use crate::stats::{median, percentile};

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn slot_median(r: &ModelResult, name: &str) -> Option<f64> {
    r.slots.iter().find(|s| s.name == name).and_then(|s| median(&s.times))
}

fn slot_cell(s: &Slot) -> String {
    match (&s.error, median(&s.times)) {
        (Some(e), _) if s.times.is_empty() => format!("failed: {}", first_line(e, 60)),
        (_, Some(m)) => format!("{} (p90 {}, n={})", ms(Some(m)), ms(percentile(&s.times, 0.9)), s.times.len()),
        _ => "-".into(),
    }
}

fn first_line(s: &str, max: usize) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > max { format!("{}...", l.chars().take(max).collect::<String>()) } else { l.to_string() }
}

/// The block printed as soon as a model is done.
pub fn print_model(r: &ModelResult) {
    if let Some(why) = &r.not_run {
        println!("  not run: {why}");
        return;
    }
    for s in &r.slots {
        if let Some(a) = &s.agreement {
            println!("  {:<6} outputs {a}", s.name);
        }
    }
    println!("  {:<6} {:>5} {:>10} {:>10} {:>10}  warm-up runs (ms)", "engine", "runs", "median ms", "p90 ms", "min ms");
    for s in &r.slots {
        if s.times.is_empty() {
            let why = s.error.as_deref().unwrap_or("no timed run");
            println!("  {:<6} failed: {why}", s.name);
            continue;
        }
        let warm: Vec<String> = s.warm.iter().map(|w| format!("{w:.1}")).collect();
        let min = s.times.iter().copied().fold(f64::INFINITY, f64::min);
        println!("  {:<6} {:>5} {:>10} {:>10} {:>10}  {}", s.name, s.times.len(), ms(median(&s.times)), ms(percentile(&s.times, 0.9)), ms(Some(min)), warm.join(", "));
        if let Some(e) = &s.error {
            println!("  {:<6} then failed: {e}", s.name);
        }
    }
    let (k, t, o, w) = (slot_median(r, "kiln"), slot_median(r, "tract"), slot_median(r, "ort"), slot_median(r, "wgpu"));
    println!("  ratios of medians (>1: Kiln slower): kiln/ort {}, kiln/tract {}; Kiln wgpu / Kiln CPU {}", ratio(k, o), ratio(k, t), ratio(w, k));
    if let Some(b) = r.kiln_planned_peak {
        println!("  kiln planned peak of intermediate buffers (memory plan, not RSS): {}", mib(b as f64));
    }
    if let Some(p) = r.ort_peak_rss_kib {
        let before = r.ort_rss_before_kib.map_or(String::new(), |b| format!(", {} before the session", mib(b as f64 * 1024.0)));
        println!("  ort worker process peak RSS (Python + numpy included): {}{before}", mib(p as f64 * 1024.0));
    }
}

/// The summary: one row per model, markdown.
pub fn print_summary(results: &[ModelResult], device: &str) {
    println!();
    println!("Summary: median latency in ms (p90, timed runs), measured on {device}");
    println!("| model | input | kiln | tract | ort | kiln/ort | kiln/tract | kiln wgpu | wgpu/kiln cpu | kiln planned peak | ort peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        if let Some(why) = &r.not_run {
            println!("| {} | {} | not run: {why} | | | | | | | | |", r.label, r.shapes);
            continue;
        }
        let cells: Vec<String> = r.slots.iter().map(slot_cell).collect();
        let (k, t, o, w) = (slot_median(r, "kiln"), slot_median(r, "tract"), slot_median(r, "ort"), slot_median(r, "wgpu"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.shapes,
            cells.first().map_or("-", String::as_str),
            cells.get(1).map_or("-", String::as_str),
            cells.get(2).map_or("-", String::as_str),
            ratio(k, o),
            ratio(k, t),
            cells.get(3).map_or("-", String::as_str),
            ratio(w, k),
            r.kiln_planned_peak.map_or("-".into(), |b| mib(b as f64)),
            r.ort_peak_rss_kib.map_or("-".into(), |k| mib(k as f64 * 1024.0)),
        );
    }
}
