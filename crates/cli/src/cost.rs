//! The price and power tables behind cost and energy figures.
//!
//! Defaults (override per target in kiln.toml `[cost.<target>]` or with --price-per-hour /
//! --power-watts):
//! - cpu: $0.0893/hour, AWS EC2 on-demand c7i.large (2 vCPU, 4 GiB), us-east-1, Linux, from
//!   https://aws.amazon.com/ec2/pricing/on-demand/ (2025); 15 W, an estimate of two vCPUs'
//!   share of a loaded server socket (no power meter is read).

use crate::validate::Opts;
use kiln_report::{Cost, Figure};
use std::collections::BTreeMap;

#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub price_per_hour: Option<f64>,
    pub power_watts: Option<f64>,
    pub source: Option<String>,
}

fn default(kind: &str) -> (f64, &'static str, f64) {
    match kind {
        "cpu" => (0.0893, "AWS EC2 on-demand c7i.large (2 vCPU), us-east-1, Linux, aws.amazon.com/ec2/pricing/on-demand (2025)", 15.0),
        _ => (1.0, "placeholder $1/hour: no price known for this target; set [cost.<target>] in kiln.toml", 100.0),
    }
}

/// Cost of one inference at `p50_ms` for a batch of `batch`.
pub fn cost(kind: &str, table: &BTreeMap<String, Price>, o: &Opts, p50_ms: f64, batch: u64, p50: &Figure) -> Cost {
    let (mut price, mut source, mut watts) = {
        let (p, s, w) = default(kind);
        (p, s.to_string(), w)
    };
    if let Some(t) = table.get(kind) {
        if let Some(p) = t.price_per_hour {
            price = p;
            source = t.source.clone().unwrap_or_else(|| "kiln.toml [cost]".into());
        }
        if let Some(w) = t.power_watts {
            watts = w;
        }
    }
    if let Some(p) = o.price_per_hour {
        price = p;
        source = "--price-per-hour".into();
    }
    if let Some(w) = o.power_watts {
        watts = w;
    }
    let per_inference_s = p50_ms / 1e3 / batch.max(1) as f64;
    let basis = match &p50.basis {
        kiln_report::Basis::Measured { device, runs, .. } => format!("${price}/h x measured p50 on {device} ({runs} runs) / batch {batch}"),
        kiln_report::Basis::Estimated { model } => format!("${price}/h x estimated p50 ({model})"),
    };
    Cost {
        price_per_hour: price,
        price_source: source,
        per_million: Figure::estimated(price / 3600.0 * per_inference_s * 1e6, "$", &basis),
        power_watts: watts,
        energy_per_inference: Figure::estimated(watts * per_inference_s, "J", &format!("{watts} W (assumed, not metered) x p50 / batch")),
    }
}
