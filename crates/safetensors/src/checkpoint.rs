//! A checkpoint: one `.safetensors` file, or shards named by `model.safetensors.index.json`.

use crate::SafetensorsError;
use crate::file::SafetensorsFile;
use crate::header::TensorInfo;
use kiln_tensor::Tensor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The index file of a sharded checkpoint, as Hugging Face writes it.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Every tensor of a checkpoint, by name, wherever its shard is.
pub struct Checkpoint {
    source: PathBuf,
    shards: Vec<SafetensorsFile>,
    /// tensor name -> index in `shards`.
    by_name: BTreeMap<String, usize>,
    metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens a `.safetensors` file, a `*.index.json` shard index, or a folder holding either
    /// (`model.safetensors.index.json`, else `model.safetensors`, else its `*.safetensors` files).
    pub fn open(path: &Path) -> Result<Checkpoint, SafetensorsError> {
        if path.is_dir() {
            let index = path.join(INDEX_FILE);
            if index.is_file() {
                return Checkpoint::open_index(&index);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return Checkpoint::open(&single);
            }
            let io = |source| SafetensorsError::Io { path: path.to_path_buf(), source };
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(SafetensorsError::NoCheckpoint { path: path.to_path_buf() });
            }
            let shards = files.iter().map(|f| SafetensorsFile::open(f)).collect::<Result<Vec<_>, _>>()?;
            return Checkpoint::from_shards(path.to_path_buf(), shards, BTreeMap::new());
        }
        if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".json")) {
            return Checkpoint::open_index(path);
        }
        Ok(Checkpoint::from_file(SafetensorsFile::open(path)?))
    }

    /// A checkpoint of one file.
    pub fn from_file(file: SafetensorsFile) -> Checkpoint {
        let by_name = file.names().map(|n| (n.to_string(), 0)).collect();
        let metadata = file.metadata().clone();
        Checkpoint { source: file.path().to_path_buf(), shards: vec![file], by_name, metadata }
    }

    fn from_shards(source: PathBuf, shards: Vec<SafetensorsFile>, metadata: BTreeMap<String, String>) -> Result<Checkpoint, SafetensorsError> {
        let mut by_name = BTreeMap::new();
        for (i, s) in shards.iter().enumerate() {
            for n in s.names() {
                if let Some(&j) = by_name.get(n) {
                    let j: usize = j;
                    return Err(SafetensorsError::Duplicate {
                        name: n.to_string(),
                        first: shards[j].path().display().to_string(),
                        second: s.path().display().to_string(),
                    });
                }
                by_name.insert(n.to_string(), i);
            }
        }
        Ok(Checkpoint { source, shards, by_name, metadata })
    }

    /// Reads a shard index: `{"metadata": {...}, "weight_map": {tensor: shard file}}`. Shard
    /// names must stay inside the index's folder; every tensor of the map must be in its shard.
    pub fn open_index(index: &Path) -> Result<Checkpoint, SafetensorsError> {
        let bad = |reason: String| SafetensorsError::Index { path: index.to_path_buf(), reason };
        let text = std::fs::read(index).map_err(|source| SafetensorsError::Io { path: index.to_path_buf(), source })?;
        let json: Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let map = json.get("weight_map").and_then(Value::as_object).ok_or_else(|| bad("no \"weight_map\" object".into()))?;
        let metadata = match json.get("metadata") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect(),
            _ => BTreeMap::new(),
        };
        let dir = match index.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir_canon = dir.canonicalize().map_err(|source| SafetensorsError::Io { path: dir.clone(), source })?;
        let mut shard_names: Vec<&str> = Vec::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| bad(format!("weight_map entry '{tensor}' is {file}, not a file name")))?;
            let rel = Path::new(file);
            if file.is_empty() || rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(bad(format!("shard '{file}' (of tensor '{tensor}') is not a plain file name in the index's folder")));
            }
            if !shard_names.contains(&file) {
                shard_names.push(file);
            }
        }
        shard_names.sort_unstable();
        let mut shards = Vec::new();
        for name in &shard_names {
            let path = dir.join(name);
            let canon = path.canonicalize().map_err(|source| SafetensorsError::Io { path: path.clone(), source })?;
            if !canon.starts_with(&dir_canon) {
                return Err(bad(format!("shard '{name}' leads out of the index's folder through a link")));
            }
            shards.push(SafetensorsFile::open(&path)?);
        }
        let ck = Checkpoint::from_shards(index.to_path_buf(), shards, metadata)?;
        for (tensor, file) in map {
            let file = file.as_str().unwrap_or_default();
            let in_shard = ck.by_name.get(tensor).map(|&i| ck.shards[i].path().file_name() == Path::new(file).file_name());
            if in_shard != Some(true) {
                return Err(bad(format!("weight_map puts '{tensor}' in '{file}', which has no tensor of that name")));
            }
        }
        Ok(ck)
    }

    /// What was opened (a file, an index or a folder), for messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn shard_paths(&self) -> Vec<&Path> {
        self.shards.iter().map(SafetensorsFile::path).collect()
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The file's `__metadata__` (one file), or the index's `metadata` (shards).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).and_then(|&i| self.shards[i].info(name))
    }

    fn shard(&self, name: &str) -> Result<&SafetensorsFile, SafetensorsError> {
        self.by_name.get(name).map(|&i| &self.shards[i]).ok_or_else(|| SafetensorsError::NotFound {
            name: name.to_string(),
            path: self.source.display().to_string(),
            count: self.len(),
        })
    }

    /// The tensor's bytes, borrowed from its shard's mapping (zero-copy).
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8]), SafetensorsError> {
        self.shard(name)?.raw(name)
    }

    /// See [`SafetensorsFile::tensor`].
    pub fn tensor(&self, name: &str) -> Result<Tensor, SafetensorsError> {
        self.shard(name)?.tensor(name)
    }

    /// See [`SafetensorsFile::tensor_f32`].
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor, SafetensorsError> {
        self.shard(name)?.tensor_f32(name)
    }
}
