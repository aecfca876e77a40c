use crate::{inputs, load};
use anyhow::Context;
use kiln_reference::Value;
use kiln_tensor::Tensor;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Run a model (on Kiln's reference executor) or a compiled plan folder, and summarise (or
/// save) its outputs.
///
/// Inputs come from .npy files (`--input NAME=FILE.npy`, repeatable); symbolic dims are bound
/// from them. `--random` fills the inputs you did not give with seeded random data.
///
/// Examples: kiln run model.onnx --random --dim batch=1 -o out/
///           kiln run compiled/ --input x=x.npy
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx, a Hugging Face folder or .safetensors file) or a folder written by
    /// `kiln compile`.
    model: PathBuf,
    /// Replace the model's initializers by name with this safetensors checkpoint's tensors.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    inputs: inputs::InputArgs,
    /// Write each output to DIR/<output name>.npy (names made safe for a file system).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct OutputSummary {
    name: String,
    kind: &'static str,
    dtype: Option<String>,
    shape: Option<Vec<usize>>,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    first: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    executor: String,
    /// Wall time of the run, measured on this machine's CPU (one run, not a benchmark).
    elapsed_ms: f64,
    notes: Vec<String>,
    outputs: Vec<OutputSummary>,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let mut runnable = load::runnable_with(&a.model, a.weights.as_deref())?;
    let (feeds, notes) = a.inputs.build(&runnable.inputs(), &runnable.index_bounds())?;
    let started = std::time::Instant::now();
    let outputs = runnable.run(feeds).with_context(|| {
        // Generated inputs are the usual suspects (a symbolic dim left at 1, random integers
        // as indices): say what was generated.
        let generated: Vec<&str> = notes.iter().map(String::as_str).filter(|n| n.contains("random") || n.contains("symbolic dim")).collect();
        if generated.is_empty() {
            format!("running {}", a.model.display())
        } else {
            format!("running {} on generated inputs ({})", a.model.display(), generated.join("; "))
        }
    })?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let files = match &a.out {
        Some(dir) => write_outputs(dir, &outputs)?,
        None => vec![None; outputs.len()],
    };
    let report = Report {
        model: a.model.display().to_string(),
        executor: runnable.executor(),
        elapsed_ms,
        notes,
        outputs: outputs.iter().zip(files).map(|((n, v), f)| summarise(n, v, f)).collect(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn summarise(name: &str, v: &Value, file: Option<String>) -> OutputSummary {
    let mut s = OutputSummary { name: name.into(), kind: v.kind(), dtype: None, shape: None, min: None, max: None, mean: None, first: vec![], file };
    if let Value::Tensor(t) = v {
        s.dtype = Some(t.dtype().to_string());
        s.shape = Some(t.shape().to_vec());
        if let Ok(x) = t.to_f64_vec() {
            if !x.is_empty() {
                s.min = Some(x.iter().copied().fold(f64::INFINITY, f64::min));
                s.max = Some(x.iter().copied().fold(f64::NEG_INFINITY, f64::max));
                s.mean = Some(x.iter().sum::<f64>() / x.len() as f64);
            }
            s.first = x.iter().take(6).map(|v| format!("{v:.6}")).collect();
        } else if let kiln_tensor::Data::String(v) = t.data() {
            s.first = v.iter().take(6).map(|v| format!("{v:?}")).collect();
        }
    }
    if let Value::Sequence(ts) = v {
        // The count, and the first elements' types.
        s.shape = Some(vec![ts.len()]);
        s.first = ts.iter().take(3).map(|t| format!("{}{:?}", t.dtype(), t.shape())).collect();
    }
    if let Value::Maps(maps) = v {
        // The count, and the first maps as {key: value, ...}.
        s.shape = Some(vec![maps.len()]);
        s.first = maps.iter().take(2).map(map_text).collect();
    }
    s
}

fn map_text(m: &kiln_reference::Map) -> String {
    let keys: Vec<String> = match m.keys.data() {
        kiln_tensor::Data::String(k) => k.iter().map(|k| format!("{k:?}")).collect(),
        _ => m.keys.to_i64_vec().unwrap_or_default().iter().map(i64::to_string).collect(),
    };
    let values = m.values.to_f64_vec().unwrap_or_default();
    let entries: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k}: {v:.6}")).collect();
    format!("{{{}}}", entries.join(", "))
}

fn print_text(r: &Report) {
    println!("ran {} on the {} in {:.1} ms (measured, this CPU, one run)", r.model, r.executor, r.elapsed_ms);
    for n in &r.notes {
        println!("note: {n}");
    }
    for o in &r.outputs {
        match (&o.dtype, &o.shape) {
            (Some(d), Some(shape)) => {
                print!("{}: {d}{shape:?}", o.name);
                if let (Some(lo), Some(hi), Some(mean)) = (o.min, o.max, o.mean) {
                    print!("  min {lo:.6} max {hi:.6} mean {mean:.6}");
                }
                println!("  first [{}]", o.first.join(", "));
            }
            (None, Some(shape)) => println!("{}: {} of {}  first [{}]", o.name, o.kind, shape[0], o.first.join(", ")),
            _ => println!("{}: {}", o.name, o.kind),
        }
        if let Some(f) = &o.file {
            println!("  -> {f}");
        }
    }
}

/// A file name for an output: characters other than letters, digits, '.', '-' and '_' become
/// '_', and a clash gets a numeric suffix.
fn safe_name(name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if base.is_empty() || base.chars().all(|c| c == '.') {
        base = "output".into();
    }
    let mut candidate = base.clone();
    let mut k = 1;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{base}_{k}");
        k += 1;
    }
    candidate
}

/// Writes each tensor output as `<safe name>.npy`, each file atomically (temp file + rename).
fn write_outputs(dir: &Path, outputs: &[(String, Value)]) -> anyhow::Result<Vec<Option<String>>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create output folder {}", dir.display()))?;
    let mut taken = BTreeSet::new();
    let mut files = Vec::new();
    for (name, v) in outputs {
        // An optional output is written as what it holds (nothing when empty).
        let mut v = v;
        while let Value::Optional(inner) = v {
            match inner {
                Some(inner) => v = inner,
                None => break,
            }
        }
        if let Value::Sequence(ts) = v {
            // A sequence of tensors: DIR/<name>/<index>.npy.
            let sub = dir.join(safe_name(name, &mut taken));
            std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
            for (i, t) in ts.iter().enumerate() {
                let path = sub.join(format!("{i}.npy"));
                write_npy(&path, t).with_context(|| format!("writing element {i} of output '{name}' to {}", path.display()))?;
            }
            files.push(Some(format!("{}/ ({} tensors)", sub.display(), ts.len())));
            continue;
        }
        if let Value::Maps(maps) = v {
            let path = dir.join(format!("{}.json", safe_name(name, &mut taken)));
            write_maps(&path, maps).with_context(|| format!("writing output '{name}' to {}", path.display()))?;
            files.push(Some(path.display().to_string()));
            continue;
        }
        let Some(t) = v.as_tensor() else {
            files.push(None);
            continue;
        };
        let path = dir.join(format!("{}.npy", safe_name(name, &mut taken)));
        write_npy(&path, t).with_context(|| format!("writing output '{name}' to {}", path.display()))?;
        files.push(Some(path.display().to_string()));
    }
    Ok(files)
}

/// A sequence of maps as a JSON list of objects, {"key": value, ...} (int keys as strings).
fn write_maps(path: &Path, maps: &[kiln_reference::Map]) -> anyhow::Result<()> {
    let mut list = Vec::with_capacity(maps.len());
    for m in maps {
        let keys: Vec<String> = match m.keys.data() {
            kiln_tensor::Data::String(k) => k.clone(),
            _ => m.keys.to_i64_vec()?.iter().map(i64::to_string).collect(),
        };
        let values = m.values.to_f64_vec()?;
        let obj: serde_json::Map<String, serde_json::Value> = keys.into_iter().zip(values).map(|(k, v)| (k, serde_json::json!(v))).collect();
        list.push(serde_json::Value::Object(obj));
    }
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, serde_json::to_string_pretty(&list)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn write_npy(path: &Path, t: &Tensor) -> anyhow::Result<()> {
    let t = match t.dtype() {
        kiln_tensor::DType::BF16 | kiln_tensor::DType::I4 | kiln_tensor::DType::U4 => t.cast(kiln_tensor::DType::F32)?,
        _ => t.clone(),
    };
    let bytes = kiln_tensor::npy::write(&t)?;
    let tmp = path.with_extension("npy.partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn names_are_made_safe_and_unique() {
        let mut t = Default::default();
        assert_eq!(safe_name("gpu_0/softmax:0", &mut t), "gpu_0_softmax_0");
        assert_eq!(safe_name("gpu_0/softmax?0", &mut t), "gpu_0_softmax_0_1");
        assert_eq!(safe_name("..", &mut t), "output");
    }
}
