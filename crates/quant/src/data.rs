//! Calibration samples from files, read one sample at a time.
//!
//! The convention, for a folder or a list of files (kiln.toml's `[quantize] calibration`):
//! - `NAME.npz`: one sample; its arrays are named by graph input (`numpy.savez(f, X=x)`),
//!   every runtime input present, nothing else;
//! - `<input>.npy` or `<input>_<n>.npy`: one array of one sample; the files sharing `<n>` (or
//!   sharing no suffix) form a sample, which must hold every runtime input.
//!
//! A folder mixing the two, a file matching two inputs (inputs `x` and `x_1` make `x_1.npy`
//! ambiguous), two files for one input of one sample, other files (hidden ones aside) and
//! sub-folders are refused with an error naming the file. Each array's dtype and shape are
//! checked against the input the model declares (symbolic dims match any size).

use crate::DataError;
use kiln_ir::Model;
use kiln_tensor::{DType, Dim, Shape, Tensor};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A graph input a sample must provide.
#[derive(Clone, Debug)]
struct InputSpec {
    name: String,
    dtype: Option<DType>,
    shape: Option<Shape>,
}

#[derive(Clone, Debug)]
enum Source {
    Npz(PathBuf),
    /// A numbered (or unnumbered: None) group of `.npy` files, one per input.
    Npy(Option<u64>, BTreeMap<String, PathBuf>),
}

/// One sample: a tensor per runtime input, in the model's input order.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The .npz file, or the sample number of a .npy group.
    pub name: String,
    pub inputs: Vec<(String, Tensor)>,
}

/// An indexed set of calibration samples: file names only, until iterated.
#[derive(Clone, Debug)]
pub struct CalibrationSet {
    inputs: Vec<InputSpec>,
    sources: Vec<Source>,
}

impl CalibrationSet {
    /// A folder (every file in it) or one file.
    pub fn open(path: &Path, model: &Model) -> Result<CalibrationSet, DataError> {
        if path.is_dir() { Self::from_dir(path, model) } else { Self::from_files(&[path.to_path_buf()], model) }
    }

    pub fn from_dir(dir: &Path, model: &Model) -> Result<CalibrationSet, DataError> {
        let io = |source| DataError::Io { path: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            if path.is_dir() {
                return Err(DataError::Ambiguous {
                    path,
                    reason: "sub-folders are not read; move its files up or out of the calibration folder".into(),
                });
            }
            files.push(path);
        }
        files.sort();
        Self::index(&files, model)?.non_empty(dir.display().to_string())
    }

    /// Files as kiln.toml lists them, grouped by the same convention as a folder.
    pub fn from_files(files: &[PathBuf], model: &Model) -> Result<CalibrationSet, DataError> {
        Self::index(files, model)?.non_empty("the list of calibration files".into())
    }

    fn non_empty(self, place: String) -> Result<CalibrationSet, DataError> {
        if self.sources.is_empty() { Err(DataError::Empty { place, inputs: self.input_names() }) } else { Ok(self) }
    }

    fn index(files: &[PathBuf], model: &Model) -> Result<CalibrationSet, DataError> {
        let g = &model.graph;
        let inputs: Vec<InputSpec> = g
            .runtime_inputs()
            .iter()
            .map(|&v| {
                let info = g.value(v);
                InputSpec { name: info.name.clone(), dtype: info.dtype, shape: info.shape.clone() }
            })
            .collect();
        let mut set = CalibrationSet { inputs, sources: Vec::new() };
        let mut groups: BTreeMap<Option<u64>, BTreeMap<String, PathBuf>> = BTreeMap::new();
        let (mut first_npz, mut first_npy) = (None, None);
        for path in files {
            match path.extension().and_then(|e| e.to_str()) {
                Some("npz") => {
                    first_npz.get_or_insert(path.clone());
                    set.sources.push(Source::Npz(path.clone()));
                }
                Some("npy") => {
                    first_npy.get_or_insert(path.clone());
                    let (input, n) = set.npy_owner(path)?;
                    if let Some(other) = groups.entry(n).or_default().insert(input.clone(), path.clone()) {
                        return Err(DataError::Ambiguous {
                            path: path.clone(),
                            reason: format!("'{}' already gives input '{input}' of this sample; remove one", other.display()),
                        });
                    }
                }
                _ => return Err(DataError::Extension { path: path.clone() }),
            }
        }
        if let (Some(_), Some(npy)) = (first_npz, first_npy) {
            return Err(DataError::Ambiguous {
                path: npy,
                reason: "mixes .npz samples with .npy files; keep one convention (see kiln_quant::data)".into(),
            });
        }
        set.sources.extend(groups.into_iter().map(|(n, files)| Source::Npy(n, files)));
        Ok(set)
    }

    fn input_names(&self) -> String {
        self.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Which input (and sample number) a `.npy` file name gives.
    fn npy_owner(&self, path: &Path) -> Result<(String, Option<u64>), DataError> {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let matches: Vec<(String, Option<u64>)> = self
            .inputs
            .iter()
            .filter_map(|i| {
                if stem == i.name {
                    return Some((i.name.clone(), None));
                }
                let rest = stem.strip_prefix(i.name.as_str())?.strip_prefix('_')?;
                let n = rest.bytes().all(|b| b.is_ascii_digit()).then(|| rest.parse().ok()).flatten()?;
                Some((i.name.clone(), Some(n)))
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(DataError::UnknownInput {
                path: path.to_path_buf(),
                name: stem.to_string(),
                inputs: format!("{} (name files <input>.npy or <input>_<n>.npy)", self.input_names()),
            }),
            many => Err(DataError::Ambiguous {
                path: path.to_path_buf(),
                reason: format!(
                    "the name fits inputs {}; use .npz samples instead",
                    many.iter().map(|(i, _)| format!("'{i}'")).collect::<Vec<_>>().join(" and ")
                ),
            }),
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The samples, each read from disk when the iterator reaches it.
    pub fn iter(&self) -> impl Iterator<Item = Result<Sample, DataError>> + '_ {
        self.sources.iter().map(|s| self.read(s))
    }

    fn read(&self, source: &Source) -> Result<Sample, DataError> {
        let (name, mut found) = match source {
            Source::Npz(path) => (path.display().to_string(), self.read_npz(path)?),
            Source::Npy(n, files) => {
                let mut found = BTreeMap::new();
                for (input, path) in files {
                    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.clone(), source })?;
                    found.insert(input.clone(), (path.clone(), parse_npy(path, &bytes)?));
                }
                (n.map_or_else(|| "unnumbered".to_string(), |n| n.to_string()), found)
            }
        };
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let Some((path, t)) = found.remove(&spec.name) else {
                let hint = match source {
                    Source::Npz(_) => format!("an array named '{}' to the .npz (numpy.savez(file, {}=array))", spec.name, spec.name),
                    Source::Npy(n, _) => format!("the file {}{}.npy", spec.name, n.map_or_else(String::new, |n| format!("_{n}"))),
                };
                return Err(DataError::MissingInput { sample: name, input: spec.name.clone(), hint });
            };
            check(spec, &path, &t)?;
            inputs.push((spec.name.clone(), t));
        }
        Ok(Sample { name, inputs })
    }

    fn read_npz(&self, path: &Path) -> Result<BTreeMap<String, (PathBuf, Tensor)>, DataError> {
        let file = std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        let zip_err = |source| DataError::Zip { path: path.to_path_buf(), source };
        let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
        let mut out = BTreeMap::new();
        for i in 0..archive.len() {
            let mut member = archive.by_index(i).map_err(zip_err)?;
            let member_name = member.name().map_err(zip_err)?.to_string();
            let at = path.join(&member_name);
            let input = member_name.strip_suffix(".npy").unwrap_or(&member_name).to_string();
            if !self.inputs.iter().any(|s| s.name == input) {
                return Err(DataError::UnknownInput { path: path.to_path_buf(), name: input, inputs: self.input_names() });
            }
            let mut bytes = Vec::new();
            member.read_to_end(&mut bytes).map_err(|source| DataError::Io { path: at.clone(), source })?;
            let t = parse_npy(&at, &bytes)?;
            out.insert(input, (at, t));
        }
        Ok(out)
    }
}

fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Tensor, DataError> {
    kiln_tensor::npy::read(bytes).map_err(|source| DataError::Npy { path: path.to_path_buf(), source })
}

/// The array against the input's declared type and shape.
fn check(spec: &InputSpec, path: &Path, t: &Tensor) -> Result<(), DataError> {
    if let Some(d) = spec.dtype
        && d != t.dtype()
    {
        return Err(DataError::WrongDType { path: path.to_path_buf(), input: spec.name.clone(), expected: d, found: t.dtype() });
    }
    if let Some(shape) = &spec.shape {
        let fits = shape.rank() == t.rank()
            && shape.0.iter().zip(t.shape()).all(|(d, &n)| match d {
                Dim::Known(k) => *k == n,
                Dim::Sym(_) => true,
            });
        if !fits {
            return Err(DataError::WrongShape {
                path: path.to_path_buf(),
                input: spec.name.clone(),
                expected: shape.to_string(),
                found: t.shape().to_vec(),
            });
        }
    }
    Ok(())
}
