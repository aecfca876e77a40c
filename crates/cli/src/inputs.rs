//! Building the input tensors for `kiln run`: from .npy files, or seeded random data.

use anyhow::{Context, bail};
use kiln_tensor::{DType, Data, Dim, Shape, Tensor};
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
/// A declared input: name, element type and shape when the model says them.
pub type Declared = (String, Option<DType>, Option<Shape>);
/// The inputs to feed, and notes on what was generated.
pub type Feeds = (Vec<(String, Tensor)>, Vec<String>);

pub fn build(
    declared: &[Declared],
    files: &[(String, PathBuf)],
    dims: &[(String, usize)],
    random: bool,
    seed: u64,
    bounds: &BTreeMap<String, usize>,
) -> anyhow::Result<Feeds> {
    let mut given: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, path) in files {
        if !declared.iter().any(|(n, _, _)| n == name) {
            let names: Vec<&str> = declared.iter().map(|(n, _, _)| n.as_str()).collect();
            bail!("'{name}' is not an input of the model; its inputs are: {}", names.join(", "));
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read input file {}", path.display()))?;
        let t = kiln_tensor::npy::read(&bytes).with_context(|| format!("input '{name}' from {}", path.display()))?;
        given.insert(name.clone(), t);
    }
    // Symbolic dims: --dim first, then what the given inputs bind.
    let mut bound: BTreeMap<String, usize> = dims.iter().cloned().collect();
    for (name, _, shape) in declared {
        if let (Some(t), Some(shape)) = (given.get(name), shape)
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
    for (name, dtype, shape) in declared {
        if let Some(t) = given.remove(name) {
            out.push((name.clone(), t));
            continue;
        }
        if !random {
            bail!("input '{name}' was not given: pass --input {name}=FILE.npy, or --random to fill it with seeded random data");
        }
        let dtype = dtype.with_context(|| format!("input '{name}' has no declared element type to generate"))?;
        let shape = shape.as_ref().with_context(|| format!("input '{name}' has no declared shape to generate"))?;
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
        // An integer attention mask is all ones (no padding): random values other than 0 and 1
        // overflow the additive mask a transformer builds from it.
        if !dtype.is_float() && dtype != DType::Bool && dtype != DType::String && name.to_ascii_lowercase().contains("mask") {
            let n: usize = concrete.iter().product();
            let t = Tensor::new(concrete, Data::from_f64_vec(dtype, &vec![1.0; n])?)?;
            notes.push(format!("input '{name}' = all ones {dtype}{:?} (an attention mask: no padding)", t.shape()));
            out.push((name.clone(), t));
            continue;
        }
        let high = bounds.get(name).map_or(10, |&b| b.clamp(1, 10));
        let t = random_tensor(&mut rng, dtype, concrete, high).with_context(|| format!("generating input '{name}'"))?;
        let range = if bounds.contains_key(name) { format!(" in [0, {high}) (it indexes a table of {})", bounds[name]) } else { String::new() };
        notes.push(format!("input '{name}' = seeded random {dtype}{:?}{range} (seed {seed})", t.shape()));
        out.push((name.clone(), t));
    }
    Ok((out, notes))
}

/// Floats uniform in [0, 1); integers uniform in [0, high) (high is 10, or less for an input
/// that indexes a smaller table), strings "0" to "9"; bools fair coin flips.
fn random_tensor(rng: &mut impl Rng, dtype: DType, shape: Vec<usize>, high: usize) -> anyhow::Result<Tensor> {
    let n: usize = kiln_tensor::checked_numel(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let data = match dtype {
        DType::Bool => Data::Bool((0..n).map(|_| rng.random_bool(0.5)).collect()),
        // Strings: the same small integers, as text (a model's categories are unknown here).
        DType::String => Data::String((0..n).map(|_| rng.random_range(0..10).to_string()).collect()),
        d if d.is_float() => Data::from_f64_vec(d, &(0..n).map(|_| rng.random::<f64>()).collect::<Vec<_>>())?,
        d => Data::from_f64_vec(d, &(0..n).map(|_| rng.random_range(0..high) as f64).collect::<Vec<_>>())?,
    };
    Ok(Tensor::new(shape, data)?)
}

/// Input flags shared by `kiln run` and `kiln bench`.
#[derive(clap::Args, Clone)]
pub struct InputArgs {
    /// An input as NAME=FILE.npy (repeat for several inputs).
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE.npy", value_parser = parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Fill inputs not given with seeded random data (floats in [0,1), integers in [0,10) or less
    /// where the input indexes a smaller table, integer inputs named *mask* all ones, strings
    /// "0" to "9").
    #[arg(long)]
    pub random: bool,
    /// Seed for --random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bind a symbolic dimension for --random inputs, as NAME=SIZE (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,
}

impl InputArgs {
    pub fn build(&self, declared: &[Declared], bounds: &BTreeMap<String, usize>) -> anyhow::Result<Feeds> {
        build(declared, &self.inputs, &self.dims, self.random, self.seed, bounds)
    }
}
