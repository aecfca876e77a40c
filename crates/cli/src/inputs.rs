//! Building the input tensors for `kiln run`: from .npy files, or seeded random data.

use anyhow::{Context, bail};
use kiln_ir::Model;
use kiln_tensor::{DType, Data, Dim, Tensor};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `NAME=FILE.npy`.
pub fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = s.split_once('=').ok_or_else(|| format!("expected NAME=FILE.npy, got '{s}'"))?;
    if name.is_empty() || file.is_empty() {
        return Err(format!("expected NAME=FILE.npy, got '{s}'"));
    }
    Ok((name.to_string(), PathBuf::from(file)))
}

/// `NAME=N` for a symbolic dimension.
pub fn parse_dim(s: &str) -> Result<(String, usize), String> {
    let (name, n) = s.split_once('=').ok_or_else(|| format!("expected NAME=SIZE, got '{s}'"))?;
    let n: usize = n.parse().map_err(|_| format!("'{n}' is not a dimension size"))?;
    Ok((name.to_string(), n))
}

/// Reads the given files, then (with `random`) fills every other runtime input with seeded
/// random data whose symbolic dims come from `--dim`, from the given inputs, or default to 1.
/// Returns the inputs in graph order and notes on what was generated.
pub fn build(
    model: &Model,
    files: &[(String, PathBuf)],
    dims: &[(String, usize)],
    random: bool,
    seed: u64,
) -> anyhow::Result<(Vec<(String, Tensor)>, Vec<String>)> {
    let g = &model.graph;
    let runtime: Vec<_> = g.runtime_inputs();
    let mut given: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, path) in files {
        if !g.inputs.iter().any(|&i| &g.value(i).name == name) {
            let names: Vec<&str> = runtime.iter().map(|&i| g.value(i).name.as_str()).collect();
            bail!("'{name}' is not an input of the model; its inputs are: {}", names.join(", "));
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read input file {}", path.display()))?;
        let t = kiln_tensor::npy::read(&bytes).with_context(|| format!("input '{name}' from {}", path.display()))?;
        given.insert(name.clone(), t);
    }
    // Symbolic dims: --dim first, then what the given inputs bind.
    let mut bound: BTreeMap<String, usize> = dims.iter().cloned().collect();
    for &i in &runtime {
        let v = g.value(i);
        if let (Some(t), Some(shape)) = (given.get(&v.name), &v.shape)
            && shape.rank() == t.rank()
        {
            for (d, &n) in shape.0.iter().zip(t.shape()) {
                if let Dim::Sym(s) = d {
                    bound.entry(s.clone()).or_insert(n);
                }
            }
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for &i in &runtime {
        let v = g.value(i);
        if let Some(t) = given.remove(&v.name) {
            out.push((v.name.clone(), t));
            continue;
        }
        if !random {
            bail!("input '{}' was not given: pass --input {}=FILE.npy, or --random to fill it with seeded random data", v.name, v.name);
        }
        let dtype = v.dtype.with_context(|| format!("input '{}' has no declared element type to generate", v.name))?;
        let shape = v.shape.as_ref().with_context(|| format!("input '{}' has no declared shape to generate", v.name))?;
        let mut concrete = Vec::new();
        for d in &shape.0 {
            concrete.push(match d {
                Dim::Known(n) => *n,
                Dim::Sym(s) => *bound.entry(s.clone()).or_insert_with(|| {
                    notes.push(format!("symbolic dim '{s}' set to 1 (bind it with --dim {s}=N)"));
                    1
                }),
            });
        }
        let t = random_tensor(&mut rng, dtype, concrete).with_context(|| format!("generating input '{}'", v.name))?;
        notes.push(format!("input '{}' = seeded random {}{:?} (seed {seed})", v.name, dtype, t.shape()));
        out.push((v.name.clone(), t));
    }
    Ok((out, notes))
}

/// Floats uniform in [0, 1); integers uniform in [0, 10) (valid as small indices or token ids);
/// bools fair coin flips.
fn random_tensor(rng: &mut impl Rng, dtype: DType, shape: Vec<usize>) -> anyhow::Result<Tensor> {
    let n: usize = kiln_tensor::checked_numel(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let data = match dtype {
        DType::Bool => Data::Bool((0..n).map(|_| rng.random_bool(0.5)).collect()),
        DType::String => bail!("cannot generate string inputs"),
        d if d.is_float() => Data::from_f64_vec(d, &(0..n).map(|_| rng.random::<f64>()).collect::<Vec<_>>())?,
        d => Data::from_f64_vec(d, &(0..n).map(|_| rng.random_range(0..10) as f64).collect::<Vec<_>>())?,
    };
    Ok(Tensor::new(shape, data)?)
}
