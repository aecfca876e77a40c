//! Interoperability with the ORAS client (PyPI `oras`): ORAS pulls what Kiln pushed (by the
//! target manifest's tag and digest), and Kiln pulls what ORAS pushed with Kiln's media types.

mod registry;

use registry::kiln::{Kiln, compile, s, same_artifact};
use registry::{PASSWORD, Registry, USER};
use std::path::PathBuf;
use std::process::Command;

/// The Python with `oras`: $KILN_ORAS_PYTHON, else the test venv ci/test.sh builds.
fn python() -> PathBuf {
    let p = std::env::var_os("KILN_ORAS_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let root = std::env::var_os("KILN_TESTDATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
        root.join("venv/bin/python")
    });
    let ok = Command::new(&p).args(["-c", "import oras.client"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import oras: run `{} -m pip install oras` (ci/test.sh does), or point $KILN_ORAS_PYTHON at a Python that has it",
        p.display(),
        p.display()
    );
    p
}

const SCRIPT: &str = r#"
import json, os, sys, oras.client
host, op, ref = sys.argv[1:4]
c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
c.login(username=os.environ["REG_USER"], password=os.environ["REG_PASSWORD"], hostname=host)
if op == "pull":
    print(json.dumps(sorted(os.path.basename(p) for p in c.pull(target=ref, outdir=sys.argv[4]))))
else:
    files = sys.argv[4:]
    r = c.push(target=ref, files=files[1:], manifest_config=files[0])
    print(r.status_code)
"#;

fn oras(py: &PathBuf, host: &str, args: &[&str], cwd: &std::path::Path) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(host)
        .args(args)
        .current_dir(cwd)
        .env("REG_USER", USER)
        .env("REG_PASSWORD", PASSWORD)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "oras {args:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn oras_pulls_what_kiln_pushed_and_kiln_pulls_what_oras_pushed() {
    let py = python();
    let reg = Registry::start();
    let t = tempfile::tempdir().expect("tmp");
    let dc = reg.docker_config(&t.path().join("docker"));
    let k = Kiln::new(t.path()).env("DOCKER_CONFIG", s(&dc));
    let art = t.path().join("a.kiln");
    compile(&k, &art, "1.0.0", &[]);
    let repo = format!("{}/interop/rapid", reg.host());
    let out = k.ok(&["publish", s(&art), &repo, "--insecure", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["target_tag"], "1.0.0-cpu");

    // ORAS pulls Kiln's target manifest, by tag and by digest: the files, byte for byte.
    for (i, r) in [format!("{repo}:1.0.0-cpu"), format!("{repo}@{}", v["manifest"].as_str().expect("digest"))].iter().enumerate() {
        let dst = t.path().join(format!("oras-{i}"));
        let listed = oras(&py, &reg.host(), &["pull", r, s(&dst)], t.path());
        assert_eq!(listed, r#"["plan.json", "tuning.json", "weights.bin"]"#, "{r}");
        for f in ["plan.json", "tuning.json", "weights.bin"] {
            assert_eq!(std::fs::read(art.join(f)).expect("a"), std::fs::read(dst.join(f)).expect("b"), "{f} differs after ORAS pulled {r}");
        }
    }

    // ORAS pushes an artifact folder with Kiln's media types; Kiln pulls and verifies it.
    let status = oras(
        &py,
        &reg.host(),
        &[
            "push",
            &format!("{}/interop/from-oras:2.0.0", reg.host()),
            "manifest.json:application/vnd.kiln.manifest.v1+json",
            "plan.json:application/vnd.kiln.plan.v1+json",
            "weights.bin:application/vnd.kiln.weights.v1",
            "tuning.json:application/vnd.kiln.file.v1",
        ],
        &art,
    );
    assert_eq!(status, "201");
    let back = t.path().join("back");
    let out = k.ok(&["pull", &format!("{}/interop/from-oras:2.0.0", reg.host()), "-o", s(&back), "--insecure"]);
    assert!(out.contains("verified"), "{out}");
    same_artifact(&art, &back);
    k.ok(&["verify", s(&back)]);
}
