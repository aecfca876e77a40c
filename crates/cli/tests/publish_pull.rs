//! `kiln publish` / `kiln pull` against a real registry (Debian's docker-registry on 127.0.0.1
//! with htpasswd auth): two versions x two targets round-trip byte for byte, signatures and
//! reports travel as referrers, auth is required, and `--key` refuses what it should.

mod registry;

use registry::kiln::{Kiln, compile, model, relabel, s, same_artifact};
use registry::{PASSWORD, Registry, USER};

#[test]
fn two_versions_two_targets_round_trip_with_auth_referrers_and_keys() {
    let reg = Registry::start();
    let t = tempfile::tempdir().expect("tmp");
    let k = Kiln::new(t.path());
    let key = t.path().join("release");
    k.ok(&["keygen", s(&key)]);
    let public = format!("{}.pub", key.display());
    let other = t.path().join("other");
    k.ok(&["keygen", s(&other)]);

    // 1.0.0/cpu signed and validated (so it has a report); the rest relabelled copies.
    let a = |n: &str| t.path().join(n);
    compile(&k, &a("v1-cpu"), "1.0.0", &["--validate", "--sign", s(&key), "--runs", "3", "--warmup", "1", "--samples", "1"]);
    relabel(&a("v1-cpu"), &a("v1-wgpu"), "1.0.0", "wgpu");
    compile(&k, &a("v2-cpu"), "1.1.0", &[]);
    relabel(&a("v2-cpu"), &a("v2-wgpu"), "1.1.0", "wgpu");
    let repo = format!("{}/team/rapid", reg.host());

    // No credentials: refused, with the way out.
    let e = k.fails(&["publish", s(&a("v1-cpu")), &repo, "--insecure"]);
    assert!(e.contains("authentication failed") && e.contains("--password-stdin"), "{e}");
    let (code, out, err) = k.run(&["publish", s(&a("v1-cpu")), &repo, "--insecure", "-u", USER, "--password-stdin"], Some("wrong\n"));
    assert_ne!(code, 0, "a wrong password must fail: {out}");
    assert!(err.contains("authentication failed"), "{err}");

    // Basic auth from --password-stdin, then from a docker config.json.
    let (code, out, err) = k.run(
        &[
            "publish",
            s(&a("v1-cpu")),
            &repo,
            "--insecure",
            "-u",
            USER,
            "--password-stdin",
            "--json",
            "--source",
            "https://example.invalid/rapid",
            "--revision",
            "abc123",
            "--created",
        ],
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("publish --json");
    assert_eq!(v["tag"], "1.0.0");
    let kinds: Vec<&str> = v["referrers"].as_array().expect("referrers").iter().filter_map(|r| r["artifactType"].as_str()).collect();
    for want in ["application/vnd.kiln.signature.v1+json", "application/vnd.kiln.attestation.v1", "application/vnd.kiln.report.v1"] {
        assert!(kinds.contains(&want), "{want} not among the referrers {kinds:?}");
    }
    assert_eq!(v["referrers_tag_fallback"], true, "docker-registry 2.8 has no referrers API: the tag fallback must be used");
    let v1_manifest = v["manifest"].as_str().expect("manifest digest").to_string();
    assert!(reg.has_tag("team/rapid", &format!("sha256-{}", &v1_manifest["sha256:".len()..])), "no referrers tag for {v1_manifest}");

    let dc = reg.docker_config(&t.path().join("docker"));
    let k = k.env("DOCKER_CONFIG", s(&dc));
    for n in ["v1-wgpu", "v2-cpu", "v2-wgpu"] {
        k.ok(&["publish", s(&a(n)), &repo, "--insecure"]);
    }
    // Republishing is idempotent: every blob is already there.
    let out = k.ok(&["publish", s(&a("v2-cpu")), &repo, "--insecure"]);
    assert!(out.contains("0 blob(s) uploaded"), "{out}");

    // The layout: an index per version, one manifest per target, Kiln's media types and annotations.
    for version in ["1.0.0", "1.1.0"] {
        let index = reg.tagged_json("team/rapid", version);
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(index["artifactType"], "application/vnd.kiln.artifact.v1");
        let targets: Vec<&str> =
            index["manifests"].as_array().expect("manifests").iter().filter_map(|d| d["annotations"]["dev.kiln.target"].as_str()).collect();
        assert_eq!(targets, ["cpu", "wgpu"], "{index}");
    }
    let m = reg.blob_json(&v1_manifest);
    assert_eq!(m["artifactType"], "application/vnd.kiln.artifact.v1");
    assert_eq!(m["config"]["mediaType"], "application/vnd.kiln.manifest.v1+json");
    let ann = &m["annotations"];
    for (k, v) in [
        ("org.opencontainers.image.version", "1.0.0"),
        ("org.opencontainers.image.source", "https://example.invalid/rapid"),
        ("org.opencontainers.image.revision", "abc123"),
        ("dev.kiln.target", "cpu"),
        ("dev.kiln.precision", "f32"),
    ] {
        assert_eq!(ann[k], v, "{k} in {m}");
    }
    assert!(ann["org.opencontainers.image.created"].as_str().is_some_and(|c| c.len() == 20 && c.ends_with('Z')), "{m}");
    let titles: Vec<&str> =
        m["layers"].as_array().expect("layers").iter().filter_map(|l| l["annotations"]["org.opencontainers.image.title"].as_str()).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    // Pull each version and target back, byte for byte.
    for (n, version, target) in [("v1-cpu", "1.0.0", "cpu"), ("v1-wgpu", "1.0.0", "wgpu"), ("v2-cpu", "1.1.0", "cpu"), ("v2-wgpu", "1.1.0", "wgpu")] {
        let dst = a(&format!("pulled-{n}"));
        let out = k.ok(&["pull", &format!("{repo}:{version}"), "--target", target, "-o", s(&dst), "--insecure"]);
        assert!(out.contains(&format!("({target})")), "{out}");
        same_artifact(&a(n), &dst);
    }
    // The signed one comes back with its evidence, and verifies with the release key.
    let dst = a("pulled-signed");
    k.ok(&["pull", &format!("{repo}:1.0.0"), "--target", "cpu", "-o", s(&dst), "--insecure", "--key", &public]);
    let att = t.path().join("pulled-signed.attestations");
    for f in ["artifact.sig", "provenance.intoto.json", "build.intoto.json", "validation.intoto.json", "report/report.json"] {
        assert!(att.join(f).is_file(), "{f} was not pulled as a referrer");
    }
    k.ok(&["verify", s(&dst), "--key", &public]);
    // A version with two targets needs --target; an unknown target is named.
    let e = k.fails(&["pull", &format!("{repo}:1.0.0"), "-o", s(&a("x")), "--insecure"]);
    assert!(e.contains("pick one with --target") && e.contains("wgpu"), "{e}");
    let e = k.fails(&["pull", &format!("{repo}:1.0.0"), "--target", "rocm", "-o", s(&a("x")), "--insecure"]);
    assert!(e.contains("no manifest for target 'rocm'"), "{e}");
    // --key refuses an unsigned artifact and one signed by another key, and leaves nothing.
    let e = k.fails(&["pull", &format!("{repo}:1.1.0"), "--target", "cpu", "-o", s(&a("unsigned")), "--insecure", "--key", &public]);
    assert!(e.contains("does not verify") && e.contains("artifact.sig"), "{e}");
    let e = k.fails(&[
        "pull",
        &format!("{repo}:1.0.0"),
        "--target",
        "cpu",
        "-o",
        s(&a("foreign")),
        "--insecure",
        "--key",
        &format!("{}.pub", other.display()),
    ]);
    assert!(e.contains("does not verify"), "{e}");
    assert!(!a("unsigned").exists() && !a("foreign").exists(), "a refused pull left a folder behind");
    // Pull by digest.
    k.ok(&["pull", &format!("{repo}@{v1_manifest}"), "-o", s(&a("by-digest")), "--insecure"]);
    same_artifact(&a("v1-cpu"), &a("by-digest"));
}

#[test]
fn a_tampered_blob_in_the_registry_fails_the_pull_naming_its_digest() {
    let reg = Registry::start();
    let t = tempfile::tempdir().expect("tmp");
    let dc = reg.docker_config(&t.path().join("docker"));
    let k = Kiln::new(t.path()).env("DOCKER_CONFIG", s(&dc));
    let art = t.path().join("a.kiln");
    compile(&k, &art, "2.0.0", &[]);
    let repo = format!("{}/tamper/rapid", reg.host());
    k.ok(&["publish", s(&art), &repo, "--insecure"]);
    // Straight from the local store: every target of NAME:VERSION.
    let m = registry::kiln::model();
    k.ok(&["compile", s(&m), "--tune", "off", "--no-validate", "--dim", "DynamicDimension.0=1", "--artifact-version", "2.1.0", "-q"]);
    let out = k.ok(&["publish", "rapid_orientation:2.1.0", &repo, "--insecure"]);
    assert!(out.contains("published rapid_orientation 2.1.0 (cpu, f32)"), "{out}");
    assert!(reg.has_tag("tamper/rapid", "2.1.0") && reg.has_tag("tamper/rapid", "2.1.0-cpu"));
    // HTTPS unless told otherwise: against this plain-HTTP registry that fails, saying why.
    let e = k.fails(&["publish", s(&art), &repo]);
    assert!(e.contains("TLS failed") && e.contains("--insecure") && e.contains("after 1 attempt"), "{e}");
    // kiln.toml's `registry` gives the reference: REGISTRY/NAME:VERSION.
    let toml = t.path().join("kiln.toml");
    std::fs::write(&toml, format!("registry = \"oci://{}/from-toml\"\n", reg.host())).expect("kiln.toml");
    k.ok(&["publish", s(&art), "--config", s(&toml), "--insecure"]);
    assert!(reg.has_tag("from-toml/rapid_orientation", "2.0.0"), "kiln.toml's registry was not used");
    let m: kiln_artifact::Manifest = serde_json::from_slice(&std::fs::read(art.join("manifest.json")).expect("manifest")).expect("parse");
    let weights = format!("sha256:{}", m.file("weights.bin").expect("weights").sha256);
    let blob = reg.blob_file(&weights);
    let mut bytes = std::fs::read(&blob).expect("blob in the registry's storage");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&blob, &bytes).expect("tamper");
    let dst = t.path().join("pulled");
    let e = k.fails(&["pull", &format!("{repo}:2.0.0"), "-o", s(&dst), "--insecure"]);
    assert!(e.contains(&weights) && e.contains("refusing"), "the error must name the tampered blob {weights}: {e}");
    assert!(!dst.exists(), "a failed pull left {}", dst.display());
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pull-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary folders left: {leftovers:?}");
}

#[test]
fn compile_stores_in_the_local_store_and_ls_lists_it() {
    let t = tempfile::tempdir().expect("tmp");
    let k = Kiln::new(t.path());
    let store = t.path().join("store");
    let m = model();
    // No -o: the store is the destination.
    let out = k.ok(&["compile", s(&m), "--tune", "off", "--no-validate", "--dim", "DynamicDimension.0=1", "--artifact-version", "3.1.0"]);
    assert!(out.contains("stored rapid_orientation:3.1.0 (cpu)"), "{out}");
    let dir = t.path().join("b.kiln");
    k.ok(&["compile", s(&m), "--tune", "off", "--no-validate", "--dim", "DynamicDimension.0=1", "--artifact-version", "3.2.0", "-o", s(&dir), "-q"]);
    for f in ["oci-layout", "index.json", "blobs/sha256"] {
        assert!(store.join(f).exists(), "{f} missing from the OCI layout");
    }
    let ls = k.ok(&["ls"]);
    assert!(ls.starts_with("NAME") && ls.contains("PRECISION") && ls.contains("DIGEST"), "{ls}");
    let digest = k.ok(&["verify", s(&dir)]).lines().next().expect("digest").to_string();
    let row = ls.lines().find(|l| l.contains("3.2.0")).unwrap_or_else(|| panic!("3.2.0 not listed: {ls}"));
    for want in ["rapid_orientation", "cpu", "f32", "MiB", digest.as_str()] {
        assert!(row.contains(want), "{want} missing from `{row}`");
    }
    assert!(ls.contains("3.1.0"), "{ls}");
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["ls", "--json"])).expect("ls --json");
    assert_eq!(v["artifacts"].as_array().map(Vec::len), Some(2), "{v}");
    // Pull from the store by NAME:VERSION, and a store elsewhere via --store.
    let back = t.path().join("back");
    k.ok(&["pull", "rapid_orientation:3.2.0", "-o", s(&back)]);
    same_artifact(&dir, &back);
    let other = t.path().join("other-store");
    k.ok(&["publish", s(&dir), "mine:stable", "--store", s(&other)]);
    let ls = k.ok(&["ls", "--store", s(&other)]);
    assert!(ls.contains("mine") && ls.contains("3.2.0"), "{ls}");
    let e = k.fails(&["compile", s(&m), "--tune", "off", "--no-validate", "--no-store"]);
    assert!(e.contains("--no-store needs -o"), "{e}");
}
