//! `kiln.toml`: a build described in a file. Paths are relative to the file's folder; flags
//! override what it says; an unknown key is an error with a did-you-mean suggestion.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildFile {
    pub model: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub name: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub precisions: Vec<String>,
    pub tune: Option<String>,
    #[serde(default)]
    pub dims: BTreeMap<String, usize>,
    #[serde(default)]
    pub gates: Vec<String>,
    pub baseline: Option<PathBuf>,
    /// Secret key to sign with.
    pub sign: Option<PathBuf>,
    /// Also write a single-file archive (OUTPUT.tar).
    pub archive: Option<bool>,
    /// Where artifacts are published: `kiln publish DIR --config kiln.toml` pushes to REGISTRY/NAME.
    pub registry: Option<String>,
    /// The local OCI store `kiln compile` adds artifacts to.
    pub store: Option<PathBuf>,
    pub calibration: Option<Calibration>,
    pub quantize: Option<Quantize>,
    pub validate: Option<Validate>,
    #[serde(default)]
    pub cost: BTreeMap<String, crate::cost::Price>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub data: Option<PathBuf>,
    pub samples: Option<usize>,
    /// minmax (default), percentile or entropy.
    pub method: Option<String>,
}

/// How the precision in `precisions` is reached (the flags of the same names override).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quantize {
    /// int4: rows of K per scale.
    pub group_size: Option<usize>,
    /// int4: "rtn" or "gptq".
    pub weight_method: Option<String>,
    /// int8: SmoothQuant's alpha.
    pub smoothquant: Option<f32>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub batch: Vec<usize>,
    pub runs: Option<usize>,
    pub warmup: Option<usize>,
    pub samples: Option<usize>,
    pub data: Option<PathBuf>,
}

const TOP: &[&str] =
    &["model", "weights", "output", "name", "version", "targets", "precisions", "tune", "dims", "gates", "baseline", "sign", "archive", "registry", "store", "calibration", "quantize", "validate", "cost"];
const CALIBRATION: &[&str] = &["data", "samples", "method"];
const QUANTIZE: &[&str] = &["group_size", "weight_method", "smoothquant"];
const VALIDATE: &[&str] = &["enabled", "batch", "runs", "warmup", "samples", "data"];
const COST: &[&str] = &["price_per_hour", "power_watts", "source"];

fn suggest(key: &str, known: &[&str]) -> String {
    let best = known.iter().map(|k| (strsim::levenshtein(key, k), *k)).min();
    match best {
        Some((d, k)) if d <= 3 && d < key.len().max(2) => format!("did you mean '{k}'?"),
        _ => format!("known keys: {}", known.join(", ")),
    }
}

fn check(table: &toml::Table, known: &[&str], at: &str, file: &Path) -> anyhow::Result<()> {
    for key in table.keys() {
        if !known.contains(&key.as_str()) {
            bail!("{}: unknown key '{at}{key}'; {}", file.display(), suggest(key, known));
        }
    }
    Ok(())
}

/// Parses kiln.toml text (`file` names it in errors).
pub fn parse(text: &str, file: &Path) -> anyhow::Result<BuildFile> {
    let table: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", file.display()))?;
    check(&table, TOP, "", file)?;
    for (section, known) in [("calibration", CALIBRATION), ("quantize", QUANTIZE), ("validate", VALIDATE)] {
        if let Some(toml::Value::Table(t)) = table.get(section) {
            check(t, known, &format!("{section}."), file)?;
        }
    }
    if let Some(toml::Value::Table(c)) = table.get("cost") {
        for (target, v) in c {
            if let toml::Value::Table(t) = v {
                check(t, COST, &format!("cost.{target}."), file)?;
            }
        }
    }
    let bf: BuildFile = toml::Value::Table(table).try_into().with_context(|| format!("{} does not describe a build", file.display()))?;
    Ok(bf)
}

/// Reads kiln.toml, making its paths relative to its folder.
pub fn read(path: &Path) -> anyhow::Result<BuildFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bf = parse(&text, path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let fix = |p: &mut Option<PathBuf>| {
        if let Some(x) = p
            && x.is_relative()
        {
            *x = base.join(&*x);
        }
    };
    fix(&mut bf.model);
    fix(&mut bf.weights);
    fix(&mut bf.output);
    fix(&mut bf.baseline);
    fix(&mut bf.sign);
    fix(&mut bf.store);
    if let Some(c) = &mut bf.calibration {
        fix(&mut c.data);
    }
    if let Some(v) = &mut bf.validate {
        fix(&mut v.data);
    }
    Ok(bf)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::path::Path;

    #[test]
    fn full_file_parses() {
        let bf = parse(
            r#"
model = "m.onnx"
output = "out/m.kiln"
version = "1.2.0"
targets = ["cpu"]
precisions = ["int8"]
tune = "off"
gates = ["accuracy.cosine>=0.99", "latency.p99<=20ms"]
registry = "oci://registry.example/models"
[dims]
batch = 1
[calibration]
data = "calib/"
samples = 64
method = "entropy"
[quantize]
group_size = 64
weight_method = "gptq"
[validate]
batch = [1, 4]
runs = 10
[cost.cpu]
price_per_hour = 0.2
power_watts = 30
"#,
            Path::new("kiln.toml"),
        )
        .expect("parse");
        assert_eq!(bf.gates.len(), 2);
        let cal = bf.calibration.as_ref().expect("calibration");
        assert_eq!((cal.samples, cal.method.as_deref(), bf.precisions.as_slice()), (Some(64), Some("entropy"), ["int8".to_string()].as_slice()));
        let q = bf.quantize.as_ref().expect("quantize");
        assert_eq!((q.group_size, q.weight_method.as_deref(), q.smoothquant), (Some(64), Some("gptq"), None));
        assert_eq!(bf.validate.expect("validate").batch, vec![1, 4]);
        assert_eq!(bf.cost["cpu"].price_per_hour, Some(0.2));
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let cases = [
            ("modle = \"m.onnx\"", "unknown key 'modle'; did you mean 'model'?"),
            ("[validate]\nrunz = 3", "unknown key 'validate.runz'; did you mean 'runs'?"),
            ("[cost.cpu]\nprice_per_hr = 1.0", "unknown key 'cost.cpu.price_per_hr'; did you mean 'price_per_hour'?"),
            ("zzzzzzzzzz = 1", "known keys: model"),
        ];
        for (text, want) in cases {
            let e = format!("{:#}", parse(text, Path::new("kiln.toml")).expect_err(text));
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
