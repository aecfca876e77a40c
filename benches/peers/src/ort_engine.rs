//! onnxruntime through benches/ort_worker.py: a child process that keeps one session and
//! times session.run itself (perf_counter), so IPC is outside every timing.

use crate::engine::Engine;
use crate::outputs::Output;
use anyhow::{Context, bail};
use kiln_tensor::Tensor;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub struct OrtEngine {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Where input and output .npy files go.
    dir: PathBuf,
    pub version: String,
    /// The worker's resident set before the session was created (Python + numpy + inputs).
    pub rss_before_kib: u64,
    /// Session creation time in the worker, measured.
    pub load_ms: f64,
}

impl OrtEngine {
    /// Starts `python worker`, writes the inputs as .npy under `dir` and loads `model`.
    pub fn new(python: &Path, worker: &Path, model: &Path, inputs: &[(String, Tensor)], dir: &Path) -> anyhow::Result<OrtEngine> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut load = vec!["load".to_string(), model.display().to_string()];
        for (i, (name, t)) in inputs.iter().enumerate() {
            let p = dir.join(format!("input{i}.npy"));
            std::fs::write(&p, kiln_tensor::npy::write(t)?).with_context(|| format!("writing {}", p.display()))?;
            load.push(format!("{name}={}", p.display()));
        }
        let mut child = Command::new(python)
            .arg(worker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), worker.display()))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
        let mut e = OrtEngine { child, stdin, stdout, dir: dir.to_path_buf(), version: String::new(), rss_before_kib: 0, load_ms: 0.0 };
        let r = e.ask(&load)?;
        let [version, rss, ms] = r.as_slice() else { bail!("worker's load reply has {} fields, not 3", r.len()) };
        e.version = version.clone();
        e.rss_before_kib = rss.parse()?;
        e.load_ms = ms.parse()?;
        Ok(e)
    }

    /// Sends one request; returns the reply's fields after "ok".
    fn ask(&mut self, fields: &[String]) -> anyhow::Result<Vec<String>> {
        writeln!(self.stdin, "{}", fields.join("\t")).context("writing to the onnxruntime worker")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the onnxruntime worker exited (see its stderr above)");
        }
        let mut parts = line.trim_end_matches('\n').split('\t').map(str::to_string);
        match parts.next().as_deref() {
            Some("ok") => Ok(parts.collect()),
            Some("err") => bail!("onnxruntime: {}", parts.collect::<Vec<_>>().join(" ")),
            _ => bail!("unexpected reply from the onnxruntime worker: {line:?}"),
        }
    }

    /// Peak resident set of the worker process so far (Python and numpy included), KiB.
    fn peak_rss_kib(&mut self) -> anyhow::Result<u64> {
        let r = self.ask(&["stats".into()])?;
        Ok(r.first().context("empty stats reply")?.parse()?)
    }
}

impl Engine for OrtEngine {
    fn run_once(&mut self) -> anyhow::Result<f64> {
        let r = self.ask(&["run".into(), "1".into()])?;
        Ok(r.first().context("empty run reply")?.parse()?)
    }

    fn outputs(&mut self) -> anyhow::Result<(Vec<Output>, f64)> {
        let dir = self.dir.display().to_string();
        let r = self.ask(&["outputs".into(), dir])?;
        let (ms, names) = r.split_first().context("empty outputs reply")?;
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let p = self.dir.join(format!("{i}.npy"));
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            let t = kiln_tensor::npy::read(&bytes).with_context(|| format!("decoding {}", p.display()))?;
            out.push(Output::from_kiln(name, &t)?);
        }
        Ok((out, ms.parse()?))
    }

    fn memory(&mut self) -> Option<u64> {
        self.peak_rss_kib().ok().map(|k| k * 1024)
    }
}

impl Drop for OrtEngine {
    fn drop(&mut self) {
        // Ask politely, then make sure: the worker must not outlive the bench.
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if !matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
