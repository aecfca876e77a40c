//! Kernel tuning: candidates measured on the device under a time budget, the default first;
//! records keep every candidate's timing, keyed by (kernel key, device fingerprint, Kiln
//! version), persist to a cache folder and merge.

use crate::{KILN_VERSION, TargetError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `--tune off|cache|full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TuneMode {
    /// Every kernel takes its default candidate; nothing is measured or read.
    Off,
    /// Use recorded decisions; kernels without a record take their default.
    Cache,
    /// Use recorded decisions; measure kernels without one, and kernels whose record lacks a
    /// timing for one of today's candidates (a newer Kiln added it), within the budget.
    Full,
}

/// What is tuned: a kernel and the problem it solves ("cpu.gemm", "m=128,k=384,n=1536").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TuneKey {
    pub kernel: String,
    pub problem: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateTiming {
    pub variant: String,
    /// Median of the measured runs, in nanoseconds.
    pub median_ns: u64,
    pub runs: u32,
    #[serde(default)]
    pub min_ns: u64,
}

/// Every candidate's timing for one key on one device and Kiln version, and the choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneRecord {
    pub key: TuneKey,
    pub fingerprint: String,
    pub kiln_version: String,
    pub candidates: Vec<CandidateTiming>,
    pub chosen: String,
}

/// One tuning decision of a compile, for the summary it prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TuneDecision {
    pub key: TuneKey,
    pub chosen: String,
    pub default_variant: String,
    pub default_ns: Option<u64>,
    pub chosen_ns: Option<u64>,
    /// "measured", "cache", or "default" (not measured: tuning off, no record, or no budget left).
    pub source: &'static str,
}

const CACHE_FILE: &str = "tune-records.json";
const CACHE_SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    schema_version: u32,
    records: Vec<TuneRecord>,
}

/// Tuning records on disk (`<dir>/tune-records.json`), merged with what a compile measures.
#[derive(Clone, Debug, Default)]
pub struct TuneCache {
    dir: Option<PathBuf>,
    records: BTreeMap<(TuneKey, String, String), TuneRecord>,
}

impl TuneCache {
    pub fn in_memory() -> TuneCache {
        TuneCache::default()
    }

    /// Loads the records in `dir` (an absent folder or file is an empty cache).
    pub fn open(dir: &Path) -> Result<TuneCache, TargetError> {
        let mut c = TuneCache { dir: Some(dir.to_path_buf()), records: BTreeMap::new() };
        let path = dir.join(CACHE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => c.merge_bytes(&bytes).map_err(|reason| TargetError::Cache {
                path: path.display().to_string(),
                reason: format!("{reason}; delete the file to start a fresh cache"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TargetError::Io { path: path.display().to_string(), source: e }),
        }
        Ok(c)
    }

    /// Merges records from another cache file's bytes (newer records win per key).
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let f: CacheFile = serde_json::from_slice(bytes).map_err(|e| format!("not a Kiln tuning cache: {e}"))?;
        if f.schema_version > CACHE_SCHEMA {
            return Err(format!("cache schema {} is newer than this Kiln reads ({CACHE_SCHEMA})", f.schema_version));
        }
        for r in f.records {
            self.insert(r);
        }
        Ok(())
    }

    pub fn insert(&mut self, r: TuneRecord) {
        self.records.insert((r.key.clone(), r.fingerprint.clone(), r.kiln_version.clone()), r);
    }

    pub fn get(&self, key: &TuneKey, fingerprint: &str) -> Option<&TuneRecord> {
        self.records.get(&(key.clone(), fingerprint.to_string(), KILN_VERSION.to_string()))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes the merged records back (re-reading the file first, so concurrent compiles merge),
    /// atomically through a temporary file.
    pub fn save(&mut self) -> Result<(), TargetError> {
        let Some(dir) = self.dir.clone() else { return Ok(()) };
        let path = dir.join(CACHE_FILE);
        let ioe = |e| TargetError::Io { path: path.display().to_string(), source: e };
        std::fs::create_dir_all(&dir).map_err(ioe)?;
        if let Ok(bytes) = std::fs::read(&path) {
            let mine = std::mem::take(&mut self.records);
            let _ = self.merge_bytes(&bytes);
            self.records.extend(mine);
        }
        let f = CacheFile { schema_version: CACHE_SCHEMA, records: self.records.values().cloned().collect() };
        let json = serde_json::to_vec_pretty(&f).map_err(|e| TargetError::Cache { path: path.display().to_string(), reason: e.to_string() })?;
        let tmp = dir.join(format!(".{CACHE_FILE}.{}", std::process::id()));
        std::fs::write(&tmp, json).map_err(ioe)?;
        std::fs::rename(&tmp, &path).map_err(ioe)
    }
}

/// Chooses kernel candidates for one compile.
pub struct Tuner {
    pub mode: TuneMode,
    pub cache: TuneCache,
    fingerprint: String,
    deadline: Instant,
    /// Runs per candidate (after one warm-up).
    pub runs: u32,
    pub decisions: Vec<TuneDecision>,
}

impl Tuner {
    pub fn new(mode: TuneMode, cache: TuneCache, fingerprint: impl Into<String>, budget: Duration) -> Tuner {
        Tuner { mode, cache, fingerprint: fingerprint.into(), deadline: Instant::now() + budget, runs: 5, decisions: Vec::new() }
    }

    /// Picks one of `candidates` (the first is the default, which always exists) for `key`.
    /// `measure(variant)` runs the candidate once and returns its time.
    pub fn choose(
        &mut self,
        key: TuneKey,
        candidates: &[String],
        mut measure: impl FnMut(&str) -> Result<Duration, TargetError>,
    ) -> Result<String, TargetError> {
        let default = candidates.first().cloned().unwrap_or_else(|| "default".into());
        let decide = |chosen: String, source, default_ns, chosen_ns| TuneDecision {
            key: key.clone(),
            chosen,
            default_variant: default.clone(),
            default_ns,
            chosen_ns,
            source,
        };
        if self.mode == TuneMode::Off || candidates.len() < 2 {
            self.decisions.push(decide(default.clone(), "default", None, None));
            return Ok(default);
        }
        if let Some(r) = self.cache.get(&key, &self.fingerprint)
            && candidates.contains(&r.chosen)
            && (self.mode != TuneMode::Full || Instant::now() >= self.deadline || candidates.iter().all(|c| r.candidates.iter().any(|t| &t.variant == c)))
        {
            // The fastest run, as decisions use (records written before it was kept: the median).
            let ns = |v: &str| r.candidates.iter().find(|c| c.variant == v).map(|c| if c.min_ns > 0 { c.min_ns } else { c.median_ns });
            let d = decide(r.chosen.clone(), "cache", ns(&default), ns(&r.chosen));
            let chosen = r.chosen.clone();
            self.decisions.push(d);
            return Ok(chosen);
        }
        if self.mode == TuneMode::Cache || Instant::now() >= self.deadline {
            self.decisions.push(decide(default.clone(), "default", None, None));
            return Ok(default);
        }
        // Warm up each candidate (the default always), then time them round-robin, so a burst
        // of load elsewhere on the machine hits every candidate alike instead of one.
        let mut active: Vec<&String> = Vec::new();
        for c in candidates {
            if !active.is_empty() && Instant::now() >= self.deadline {
                break;
            }
            measure(c)?;
            active.push(c);
        }
        let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(self.runs as usize); active.len()];
        for round in 0..self.runs.max(1) {
            if round > 0 && Instant::now() >= self.deadline {
                break;
            }
            for (i, c) in active.iter().enumerate() {
                samples[i].push(measure(c)?.as_nanos() as u64);
            }
        }
        let timings: Vec<CandidateTiming> = active
            .iter()
            .zip(&mut samples)
            .map(|(c, ts)| {
                ts.sort_unstable();
                CandidateTiming { variant: (*c).clone(), median_ns: ts[ts.len() / 2], runs: ts.len() as u32, min_ns: ts[0] }
            })
            .collect();
        // Candidates are compared by their fastest run: load elsewhere on the machine only ever
        // adds time, so the minimum is the estimate it disturbs least (a median over 5 runs
        // let a busy machine pick plans 15-20% slower). Another candidate replaces the default
        // only when it is clearly faster (3%): noise alone should not flip a decision.
        let default_ns = timings.first().map(|t| t.min_ns).unwrap_or(u64::MAX);
        let best = timings
            .iter()
            .filter(|t| t.variant == default || (t.min_ns as f64) < default_ns as f64 * 0.97)
            .min_by_key(|t| t.min_ns)
            .map(|t| t.variant.clone())
            .unwrap_or(default.clone());
        let ns = |v: &str| timings.iter().find(|c| c.variant == v).map(|c| c.min_ns);
        self.decisions.push(decide(best.clone(), "measured", ns(&default), ns(&best)));
        self.cache.insert(TuneRecord {
            key,
            fingerprint: self.fingerprint.clone(),
            kiln_version: KILN_VERSION.to_string(),
            candidates: timings,
            chosen: best.clone(),
        });
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TuneKey {
        TuneKey { kernel: "k".into(), problem: "n=4".into() }
    }

    #[test]
    fn full_measures_default_first_then_cache_replays() {
        let dir = tempfile::tempdir().unwrap();
        let cands: Vec<String> = vec!["default".into(), "fast".into()];
        let mut t = Tuner::new(TuneMode::Full, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        let mut order = Vec::new();
        let chosen = t
            .choose(key(), &cands, |v| {
                order.push(v.to_string());
                Ok(Duration::from_micros(if v == "fast" { 10 } else { 50 }))
            })
            .unwrap();
        assert_eq!(chosen, "fast");
        assert_eq!(order[0], "default");
        t.cache.save().unwrap();

        let mut warm = Tuner::new(TuneMode::Cache, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        let chosen = warm.choose(key(), &cands, |_| panic!("a warm cache must not measure")).unwrap();
        assert_eq!(chosen, "fast");
        assert_eq!(warm.decisions[0].source, "cache");
        assert_eq!(warm.decisions[0].default_ns, Some(50_000));

        let mut other = Tuner::new(TuneMode::Cache, TuneCache::open(dir.path()).unwrap(), "other-cpu", Duration::from_secs(5));
        assert_eq!(other.choose(key(), &cands, |_| panic!("no record: default")).unwrap(), "default");

        let mut off = Tuner::new(TuneMode::Off, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        assert_eq!(off.choose(key(), &cands, |_| panic!("off")).unwrap(), "default");
    }

    /// Load that lands on a candidate's runs only slows them: the decision goes by each
    /// candidate's fastest run (a median would keep the default here), and a gain under the
    /// 3% margin still keeps the default.
    #[test]
    fn candidates_are_compared_by_their_fastest_run() {
        let cands: Vec<String> = vec!["default".into(), "fast".into()];
        let pick = |fast: [u64; 6]| {
            let mut t = Tuner::new(TuneMode::Full, TuneCache::in_memory(), "fp", Duration::from_secs(5));
            // The warm-up, then five rounds; "fast" hit by load in three of them.
            let mut runs = fast.into_iter();
            let chosen = t
                .choose(key(), &cands, |v| Ok(Duration::from_micros(if v == "fast" { runs.next().unwrap_or(1000) } else { 100 })))
                .unwrap();
            (chosen, t.decisions[0].chosen_ns)
        };
        assert_eq!(pick([80, 80, 300, 300, 80, 300]), ("fast".to_string(), Some(80_000)));
        assert_eq!(pick([98, 98, 300, 300, 98, 300]), ("default".to_string(), Some(100_000)));
    }

    #[test]
    fn full_measures_again_when_a_candidate_has_no_timing_cache_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<String> = vec!["default".into(), "fast".into()];
        let mut t = Tuner::new(TuneMode::Full, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        let time = |v: &str| Ok(Duration::from_micros(match v { "fast" => 10, "faster" => 5, _ => 50 }));
        assert_eq!(t.choose(key(), &old, time).unwrap(), "fast");
        t.cache.save().unwrap();
        let new: Vec<String> = vec!["default".into(), "fast".into(), "faster".into()];
        let mut cached = Tuner::new(TuneMode::Cache, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        assert_eq!(cached.choose(key(), &new, |_| panic!("cache mode never measures")).unwrap(), "fast");
        let mut full = Tuner::new(TuneMode::Full, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        assert_eq!(full.choose(key(), &new, time).unwrap(), "faster");
        assert_eq!(full.decisions[0].source, "measured");
        full.cache.save().unwrap();
        // The new record covers every candidate: replayed, not measured.
        let mut again = Tuner::new(TuneMode::Full, TuneCache::open(dir.path()).unwrap(), "fp", Duration::from_secs(5));
        assert_eq!(again.choose(key(), &new, |_| panic!("complete record")).unwrap(), "faster");
    }

    #[test]
    fn corrupt_cache_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CACHE_FILE), b"{ not json").unwrap();
        let e = TuneCache::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a Kiln tuning cache") && e.contains("delete the file"), "{e}");
    }
}
