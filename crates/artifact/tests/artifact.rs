//! Artifact writing, determinism, signatures and `verify` on tampered copies.

use kiln_artifact::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn manifest() -> Manifest {
    Manifest {
        schema_version: 0,
        name: "tiny".into(),
        version: "1.2.3".into(),
        target: BTreeMap::from([("kind".into(), "cpu".into()), ("device".into(), "test cpu".into())]),
        precision: "f32".into(),
        source: SourceModel { name: "tiny.onnx".into(), sha256: sha256_hex(b"model"), weights_sha256: None },
        build: BuildConfig { target: "cpu".into(), tune: "off".into(), ..Default::default() },
        kiln: KilnInfo { version: "0.1.0".into(), commit: "abc".into() },
        files: Vec::new(),
    }
}

fn files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("weights.bin".into(), (0u8..=255).cycle().take(300).collect()),
        ("plan.json".into(), b"{\"steps\": []}\n".to_vec()),
        ("kernels/k.wgsl".into(), b"fn main() {}\n".to_vec()),
    ]
}

/// An artifact with a signature and one signed attestation.
fn build(dir: &Path, key: &KeyPair) -> ArtifactOutput {
    let out = write_artifact(dir, manifest(), &files()).expect("write");
    write_atomic(&attestations_dir(dir).join("artifact.sig"), &serde_json::to_vec(&sign_digest(&out.digest, key)).expect("json")).expect("sig");
    let st = statement("tiny", &out.digest, "https://kiln.invalid/validation/v1", serde_json::json!({"latency_ms": 1.5}));
    write_attestation(dir, "validation.intoto.json", &Envelope::new(&st, Some(key))).expect("attest");
    out
}

fn key(dir: &Path) -> (KeyPair, PublicKey) {
    let p = dir.join("k");
    keygen(&p).expect("keygen");
    (read_secret_key(&p).expect("secret"), read_public_key(&PathBuf::from(format!("{}.pub", p.display()))).expect("public"))
}

#[test]
fn same_inputs_same_bytes() {
    let t = tempfile::tempdir().expect("tmp");
    let a = write_artifact(&t.path().join("a"), manifest(), &files()).expect("a");
    let mut reordered = files();
    reordered.reverse();
    let b = write_artifact(&t.path().join("b"), manifest(), &reordered).expect("b");
    assert_eq!(a.digest, b.digest);
    for f in ["manifest.json", "plan.json", "weights.bin", "kernels/k.wgsl"] {
        assert_eq!(std::fs::read(t.path().join("a").join(f)).expect("a"), std::fs::read(t.path().join("b").join(f)).expect("b"), "{f}");
    }
    let m = std::fs::read_to_string(t.path().join("a/manifest.json")).expect("manifest");
    assert!(!m.contains(&t.path().display().to_string()), "no absolute paths: {m}");
    pack(&t.path().join("a"), &t.path().join("a.tar")).expect("pack a");
    pack(&t.path().join("b"), &t.path().join("b.tar")).expect("pack b");
    assert_eq!(std::fs::read(t.path().join("a.tar")).expect("a"), std::fs::read(t.path().join("b.tar")).expect("b"));
}

#[test]
fn bad_version_and_paths_are_refused_and_leave_nothing() {
    let t = tempfile::tempdir().expect("tmp");
    let mut m = manifest();
    m.version = "1.2".into();
    assert!(write_artifact(&t.path().join("x"), m, &files()).is_err());
    assert!(write_artifact(&t.path().join("y"), manifest(), &[("../evil".into(), vec![])]).is_err());
    assert_eq!(std::fs::read_dir(t.path()).expect("dir").count(), 0, "nothing left behind");
    // An unrelated folder is never replaced.
    std::fs::create_dir(t.path().join("docs")).expect("mkdir");
    std::fs::write(t.path().join("docs/readme"), "keep").expect("write");
    assert!(matches!(write_artifact(&t.path().join("docs"), manifest(), &files()), Err(ArtifactError::NotAnArtifact(_))));
}

#[test]
fn verify_passes_then_names_every_flipped_byte() {
    let t = tempfile::tempdir().expect("tmp");
    let (k, public) = key(t.path());
    let dir = t.path().join("art");
    let out = build(&dir, &k);
    let r = verify(&dir, Some(&public)).expect("verify");
    assert!(r.ok(), "{:?}", r.checks);
    assert_eq!(r.digest, out.digest);
    // Every file, artifact and evidence: flip one byte (first, middle, last) and read the report.
    let att = attestations_dir(&dir);
    let targets: Vec<(PathBuf, String)> = ["manifest.json", "plan.json", "weights.bin", "kernels/k.wgsl"]
        .iter()
        .map(|f| (dir.join(f), f.to_string()))
        .chain(["artifact.sig", "validation.intoto.json"].iter().map(|f| (att.join(f), f.to_string())))
        .collect();
    for (path, name) in &targets {
        let orig = std::fs::read(path).expect("read");
        for at in [0, orig.len() / 2, orig.len() - 1] {
            let mut b = orig.clone();
            b[at] ^= 0x01;
            std::fs::write(path, &b).expect("flip");
            let r = verify(&dir, Some(&public)).expect("verify");
            assert!(!r.ok(), "{name} byte {at} flipped, verify passed");
            let named = r.failures().any(|c| c.what.contains(name.as_str()));
            // A flipped manifest changes the digest: the signature and attestations say so.
            let digest_moved = name == "manifest.json" && r.failures().any(|c| c.what.contains("artifact.sig"));
            assert!(named || digest_moved, "{name} byte {at}: {:?}", r.checks);
            std::fs::write(path, &orig).expect("restore");
        }
    }
    assert!(verify(&dir, Some(&public)).expect("verify").ok());
}

#[test]
fn missing_extra_and_wrong_key_are_named() {
    let t = tempfile::tempdir().expect("tmp");
    let (k, public) = key(t.path());
    let (_, other) = key(&t.path().join("o").tap_mkdir());
    let dir = t.path().join("art");
    build(&dir, &k);
    std::fs::remove_file(dir.join("plan.json")).expect("rm");
    std::fs::write(dir.join("extra.bin"), b"x").expect("extra");
    let r = verify(&dir, Some(&public)).expect("verify");
    let fails: Vec<&str> = r.failures().map(|c| c.what.as_str()).collect();
    assert!(fails.iter().any(|f| f.contains("plan.json: missing")), "{fails:?}");
    assert!(fails.iter().any(|f| f.contains("extra.bin: extra")), "{fails:?}");
    let dir2 = t.path().join("art2");
    build(&dir2, &k);
    let r = verify(&dir2, Some(&other)).expect("verify");
    assert!(r.failures().any(|c| c.what.contains("artifact.sig")), "{:?}", r.checks);
    assert!(r.failures().any(|c| c.what.contains("validation.intoto.json")), "{:?}", r.checks);
    // No key given: integrity still checked, with a note on who signed.
    let r = verify(&dir2, None).expect("verify");
    assert!(r.ok() && !r.notes.is_empty(), "{:?} {:?}", r.checks, r.notes);
}

#[test]
fn attestation_about_another_artifact_is_refused() {
    let t = tempfile::tempdir().expect("tmp");
    let (k, public) = key(t.path());
    let dir = t.path().join("art");
    build(&dir, &k);
    let st = statement("tiny", &format!("sha256:{}", sha256_hex(b"other")), "x", serde_json::json!({}));
    write_attestation(&dir, "stray.intoto.json", &Envelope::new(&st, Some(&k))).expect("attest");
    let r = verify(&dir, Some(&public)).expect("verify");
    assert!(r.failures().any(|c| c.what.contains("stray.intoto.json") && c.what.contains("not this artifact")), "{:?}", r.checks);
}

#[test]
fn archive_round_trips_and_verifies() {
    let t = tempfile::tempdir().expect("tmp");
    let (k, public) = key(t.path());
    let dir = t.path().join("art");
    let out = build(&dir, &k);
    pack(&dir, &t.path().join("art.tar")).expect("pack");
    let un = t.path().join("un");
    let got = unpack(&t.path().join("art.tar"), &un).expect("unpack");
    let r = verify(&got, Some(&public)).expect("verify");
    assert!(r.ok(), "{:?}", r.checks);
    assert_eq!(r.digest, out.digest);
}

#[test]
fn keys_are_not_overwritten_and_bad_files_are_named() {
    let t = tempfile::tempdir().expect("tmp");
    key(t.path());
    assert!(keygen(&t.path().join("k")).is_err());
    std::fs::write(t.path().join("junk"), "hello").expect("write");
    let e = read_public_key(&t.path().join("junk")).expect_err("error").to_string();
    assert!(e.contains("kiln keygen"), "{e}");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}
