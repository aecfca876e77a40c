//! Gates: `METRIC OP VALUE[UNIT]` (`accuracy.cosine>=0.99`, `latency.p99<=20ms`), and
//! regression gates against a baseline report (`latency.p50<=+5%`).

use crate::{GateResult, Report, ReportError};

/// What a metric measures, which fixes the units a gate may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A fraction: `0.99` or `99%`.
    Ratio,
    /// Milliseconds: `ms`, `us`, `ns`, `s`.
    Time,
    /// Bytes: `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`.
    Bytes,
    /// US dollars: `0.5` or `$0.5`.
    Dollars,
    /// Joules: `J`, `mJ`.
    Joules,
    /// Per second: `120` or `120/s`.
    Rate,
    /// A plain number (absolute error).
    Number,
}

/// Every metric a gate can name, with its kind and what it is.
pub const METRICS: &[(&str, Kind, &str)] = &[
    ("accuracy.cosine", Kind::Ratio, "lowest cosine similarity over outputs"),
    ("accuracy.max_abs", Kind::Number, "largest absolute error over outputs"),
    ("accuracy.max_rel", Kind::Number, "largest relative error over outputs"),
    ("accuracy.top1", Kind::Ratio, "lowest top-1 agreement over outputs"),
    ("accuracy.top5", Kind::Ratio, "lowest top-5 agreement over outputs"),
    ("accuracy.task", Kind::Ratio, "task accuracy against labels"),
    ("latency.min", Kind::Time, "fastest run (first batch size)"),
    ("latency.p50", Kind::Time, "median run"),
    ("latency.p90", Kind::Time, "90th percentile run"),
    ("latency.p99", Kind::Time, "99th percentile run"),
    ("latency.max", Kind::Time, "slowest run"),
    ("latency.throughput", Kind::Rate, "inferences per second at the median"),
    ("memory.planned_peak", Kind::Bytes, "planned peak of intermediate buffers"),
    ("memory.rss", Kind::Bytes, "process peak resident set"),
    ("cost.per_million", Kind::Dollars, "$ per million inferences"),
    ("energy.per_inference", Kind::Joules, "estimated joules per inference"),
    ("size.bytes", Kind::Bytes, "artifact size"),
    ("compile.total", Kind::Time, "compile time, all stages"),
];

fn known() -> String {
    METRICS.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")
}

/// The value of `metric` in `report` (canonical units: ms, bytes, $, J, fractions), if measured.
pub fn metric(report: &Report, metric: &str) -> Option<f64> {
    let acc = report.accuracy.as_ref();
    let outs = || acc.into_iter().flat_map(|a| a.outputs.iter());
    let fold_min = |v: Vec<f64>| v.into_iter().reduce(f64::min);
    let fold_max = |v: Vec<f64>| v.into_iter().reduce(f64::max);
    let lat = report.latency.first();
    match metric {
        "accuracy.cosine" => fold_min(outs().map(|o| o.cosine.value).collect()),
        "accuracy.max_abs" => fold_max(outs().map(|o| o.max_abs.value).collect()),
        "accuracy.max_rel" => fold_max(outs().map(|o| o.max_rel.value).collect()),
        "accuracy.top1" => fold_min(outs().filter_map(|o| o.top1.as_ref().map(|f| f.value)).collect()),
        "accuracy.top5" => fold_min(outs().filter_map(|o| o.top5.as_ref().map(|f| f.value)).collect()),
        "accuracy.task" => acc.and_then(|a| a.task.as_ref()).map(|f| f.value),
        "latency.min" => lat.map(|l| l.min.value),
        "latency.p50" => lat.map(|l| l.p50.value),
        "latency.p90" => lat.map(|l| l.p90.value),
        "latency.p99" => lat.map(|l| l.p99.value),
        "latency.max" => lat.map(|l| l.max.value),
        "latency.throughput" => lat.map(|l| l.throughput.value),
        "memory.planned_peak" => report.memory.planned_peak.as_ref().map(|f| f.value),
        "memory.rss" => report.memory.process_peak_rss.as_ref().map(|f| f.value),
        "cost.per_million" => report.cost.as_ref().map(|c| c.per_million.value),
        "energy.per_inference" => report.cost.as_ref().map(|c| c.energy_per_inference.value),
        "size.bytes" => Some(report.artifact.bytes as f64),
        "compile.total" => (!report.compile.is_empty()).then(|| report.compile.iter().map(|s| s.time.value).sum()),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Ge,
    Le,
    Gt,
    Lt,
    Eq,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Ge => a >= b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Lt => a < b,
            Op::Eq => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        }
    }
    fn text(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Eq => "==",
        }
    }
}

/// The threshold: absolute (canonical units) or relative to a baseline (`+5%` = 0.05).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Absolute(f64),
    Relative(f64),
}

/// A parsed gate.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub text: String,
    pub metric: String,
    pub kind: Kind,
    pub op: Op,
    pub threshold: Threshold,
}

/// Parses `METRIC OP VALUE[UNIT]`; an unknown metric is an error listing the known ones.
pub fn parse(text: &str) -> Result<Gate, ReportError> {
    let err = |reason: String| ReportError::Gate { gate: text.to_string(), reason };
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (pos, op, len) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
        .iter()
        .filter_map(|(t, op)| s.find(t).map(|p| (p, *op, t.len())))
        .min_by_key(|(p, _, len)| (*p, usize::MAX - len))
        .ok_or_else(|| err("expected METRIC OP VALUE with OP one of >= <= > < == (e.g. latency.p99<=20ms)".into()))?;
    let metric = &s[..pos];
    let value = &s[pos + len..];
    let kind = METRICS
        .iter()
        .find(|m| m.0 == metric)
        .map(|m| m.1)
        .ok_or_else(|| ReportError::UnknownMetric { gate: text.to_string(), metric: metric.to_string(), known: known() })?;
    let threshold = if (value.starts_with('+') || value.starts_with('-')) && value.ends_with('%') {
        let n: f64 = value[..value.len() - 1].parse().map_err(|_| err(format!("'{value}' is not a relative change like +5%")))?;
        Threshold::Relative(n / 100.0)
    } else {
        Threshold::Absolute(parse_value(value, kind).map_err(err)?)
    };
    Ok(Gate { text: text.to_string(), metric: metric.to_string(), kind, op, threshold })
}

/// A value with a unit, in the canonical unit of `kind`.
fn parse_value(v: &str, kind: Kind) -> Result<f64, String> {
    let v = v.strip_prefix('$').filter(|_| kind == Kind::Dollars).unwrap_or(v);
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')).unwrap_or(v.len());
    // "1e3" keeps its exponent, but a unit starting with e/E does not exist.
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("'{v}' is not a number with a unit"))?;
    let scale = match (kind, unit) {
        (_, "") => 1.0,
        (Kind::Ratio, "%") => 0.01,
        (Kind::Time, "ms") => 1.0,
        (Kind::Time, "us" | "µs") => 1e-3,
        (Kind::Time, "ns") => 1e-6,
        (Kind::Time, "s") => 1e3,
        (Kind::Bytes, "B") => 1.0,
        (Kind::Bytes, "KB") => 1e3,
        (Kind::Bytes, "MB") => 1e6,
        (Kind::Bytes, "GB") => 1e9,
        (Kind::Bytes, "KiB") => 1024.0,
        (Kind::Bytes, "MiB") => 1024.0 * 1024.0,
        (Kind::Bytes, "GiB") => 1024.0 * 1024.0 * 1024.0,
        (Kind::Joules, "J") => 1.0,
        (Kind::Joules, "mJ") => 1e-3,
        (Kind::Rate, "/s") => 1.0,
        (k, u) => return Err(format!("unit '{u}' does not fit this metric ({})", units(k))),
    };
    Ok(n * scale)
}

fn units(k: Kind) -> &'static str {
    match k {
        Kind::Ratio => "a fraction like 0.99 or 99%",
        Kind::Time => "ms, us, ns or s",
        Kind::Bytes => "B, KB, MB, GB, KiB, MiB or GiB",
        Kind::Dollars => "dollars, like 0.50 or $0.50",
        Kind::Joules => "J or mJ",
        Kind::Rate => "per second, like 100 or 100/s",
        Kind::Number => "a plain number",
    }
}

/// Shows a canonical value in the metric's unit.
pub fn show(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Ratio => {
            let s = format!("{v:.9}");
            let s = s.trim_end_matches('0');
            s.strip_suffix('.').unwrap_or(s).to_string()
        }
        Kind::Time => format!("{v:.3} ms"),
        Kind::Bytes => format!("{:.0} B ({:.2} MiB)", v, v / 1048576.0),
        Kind::Dollars => format!("${v:.4}"),
        Kind::Joules => format!("{v:.4} J"),
        Kind::Rate => format!("{v:.1}/s"),
        Kind::Number => format!("{v:.3e}"),
    }
}

/// Evaluates a gate on `report` (and `baseline` for relative gates).
pub fn evaluate(gate: &Gate, report: &Report, baseline: Option<&Report>) -> GateResult {
    let fail = |message: String| GateResult { gate: gate.text.clone(), passed: false, message };
    let Some(actual) = metric(report, &gate.metric) else {
        return fail(format!("{} was not measured in this validation", gate.metric));
    };
    let (limit, how) = match gate.threshold {
        Threshold::Absolute(t) => (t, String::new()),
        Threshold::Relative(r) => {
            let Some(b) = baseline else {
                return fail(format!("a relative gate needs --baseline ARTIFACT ({} is relative)", gate.text));
            };
            let Some(base) = metric(b, &gate.metric) else {
                return fail(format!("the baseline has no {}", gate.metric));
            };
            (base * (1.0 + r), format!(" (baseline {} {:+.1}%)", show(gate.kind, base), r * 100.0))
        }
    };
    let passed = gate.op.holds(actual, limit);
    let verdict = if passed { "passed" } else { "FAILED" };
    GateResult {
        gate: gate.text.clone(),
        passed,
        message: format!("{verdict}: {} = {}, needs {} {}{how}", gate.metric, show(gate.kind, actual), gate.op.text(), show(gate.kind, limit)),
    }
}

/// Regression gates implied by `--baseline` when none are given.
pub const DEFAULT_REGRESSION_GATES: &[&str] = &["latency.p50<=+5%", "accuracy.cosine>=-0.1%"];
