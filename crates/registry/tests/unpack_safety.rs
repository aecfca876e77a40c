//! Pulling refuses content that would write outside the target folder or beyond what the
//! artifact's manifest declares; publishing refuses symlinked files. Uses the local store, so
//! the hostile manifests are crafted byte for byte without a server.

use kiln_artifact::{BuildConfig, KilnInfo, Manifest, SourceModel};
use kiln_registry::media::*;
use kiln_registry::{Content, LocalStore, PullOptions, Repository};
use std::collections::BTreeMap;
use std::path::Path;

fn manifest() -> Manifest {
    Manifest {
        schema_version: 0,
        name: "m".into(),
        version: "1.0.0".into(),
        target: BTreeMap::from([("kind".to_string(), "cpu".to_string())]),
        precision: "f32".into(),
        source: SourceModel { name: "m.onnx".into(), sha256: "00".into(), weights_sha256: None },
        build: BuildConfig { target: "cpu".into(), ..Default::default() },
        kiln: KilnInfo { version: "0".into(), commit: "unknown".into() },
        files: vec![],
    }
}

/// Pushes blobs and an image manifest whose layers are (title, bytes, declared size) into
/// `store` as `m:bad`; the config lists `listed` as the artifact's files.
fn craft(store: &LocalStore, listed: &[(&str, &[u8])], layers: &[(&str, &[u8], u64)]) {
    let repo = store.repo("m");
    let mut m = manifest();
    m.files = listed
        .iter()
        .map(|(p, b)| kiln_artifact::FileEntry { path: p.to_string(), bytes: b.len() as u64, sha256: kiln_artifact::sha256_hex(b) })
        .collect();
    let config = m.to_bytes();
    let cdesc = Descriptor::new(CONFIG_MEDIA_TYPE, &config);
    repo.put_blob(&cdesc, &Content::Bytes(config)).expect("config");
    let mut ls = Vec::new();
    for (title, bytes, size) in layers {
        let mut d = Descriptor::new(FILE_MEDIA_TYPE, bytes);
        repo.put_blob(&d, &Content::Bytes(bytes.to_vec())).expect("blob");
        d.size = *size;
        d.annotations.insert(ANN_TITLE.into(), title.to_string());
        ls.push(d);
    }
    let im = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: cdesc,
        layers: ls,
        subject: None,
        annotations: BTreeMap::new(),
    };
    repo.put_manifest("bad", OCI_MANIFEST, &to_json(&im)).expect("manifest");
}

fn pull_err(store: &LocalStore, out: &Path) -> String {
    let e = kiln_registry::pull(&store.repo("m"), "bad", out, &PullOptions::default()).expect_err("must be refused").to_string();
    assert!(!out.exists(), "a refused pull left {}", out.display());
    e
}

fn setup() -> (tempfile::TempDir, LocalStore) {
    let t = tempfile::tempdir().expect("tmp");
    let store = LocalStore::open(&t.path().join("store")).expect("store");
    (t, store)
}

#[test]
fn parent_and_absolute_paths_are_refused() {
    for title in ["../evil", "a/../../evil", "/tmp/kiln-evil-absolute", "./x", "a//b"] {
        let (t, store) = setup();
        craft(&store, &[(title, b"evil")], &[(title, b"evil", 4)]);
        let e = pull_err(&store, &t.path().join("out/a"));
        assert!(e.contains("refusing to unpack"), "{title}: {e}");
        assert!(
            !t.path().join("evil").exists() && !t.path().join("out/evil").exists() && !Path::new("/tmp/kiln-evil-absolute").exists(),
            "{title} escaped"
        );
    }
}

#[test]
fn sizes_beyond_the_manifest_are_refused() {
    // The layer descriptor claims more than the artifact's manifest lists.
    let (t, store) = setup();
    craft(&store, &[("w.bin", b"1234")], &[("w.bin", b"1234", 1 << 30)]);
    let e = pull_err(&store, &t.path().join("a"));
    assert!(e.contains("declares 1073741824 bytes, the artifact's manifest 4"), "{e}");
    // The blob holds more bytes than its descriptor (and the manifest) declare.
    let (t, store) = setup();
    craft(&store, &[("w.bin", b"1234")], &[("w.bin", b"1234", 4)]);
    let blob = store.blob_path(&format!("sha256:{}", kiln_artifact::sha256_hex(b"1234"))).expect("path");
    std::fs::write(&blob, b"1234 and much more").expect("grow the blob");
    let e = pull_err(&store, &t.path().join("a"));
    assert!(e.contains("more bytes than the 4 its descriptor declares"), "{e}");
}

#[test]
fn unlisted_and_duplicate_layers_are_refused() {
    let (t, store) = setup();
    craft(&store, &[("a.bin", b"a")], &[("a.bin", b"a", 1), ("extra.bin", b"x", 1)]);
    let e = pull_err(&store, &t.path().join("a"));
    assert!(e.contains("extra.bin") && e.contains("not listed"), "{e}");
    let (t, store) = setup();
    craft(&store, &[("a.bin", b"a")], &[("a.bin", b"a", 1), ("a.bin", b"a", 1)]);
    let e = pull_err(&store, &t.path().join("a"));
    assert!(e.contains("a.bin"), "{e}");
}

#[test]
fn a_folder_that_is_not_an_artifact_is_not_replaced() {
    let (t, store) = setup();
    craft(&store, &[("a.bin", b"a")], &[("a.bin", b"a", 1)]);
    let out = t.path().join("home");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("precious.txt"), b"mine").expect("write");
    let e = kiln_registry::pull(&store.repo("m"), "bad", &out, &PullOptions::default()).expect_err("refused").to_string();
    assert!(e.contains("not a Kiln artifact"), "{e}");
    assert_eq!(std::fs::read(out.join("precious.txt")).expect("kept"), b"mine");
    // The well-formed artifact itself pulls into a fresh folder.
    let fresh = t.path().join("fresh");
    kiln_registry::pull(&store.repo("m"), "bad", &fresh, &PullOptions::default()).expect("pull");
    assert_eq!(std::fs::read(fresh.join("a.bin")).expect("a.bin"), b"a");
}

#[test]
fn publishing_refuses_a_symlinked_file() {
    let (t, store) = setup();
    let outside = t.path().join("secret");
    std::fs::write(&outside, b"secret").expect("secret");
    let art = t.path().join("art");
    kiln_artifact::write_artifact(&art, manifest(), &[("w.bin".into(), b"secret".to_vec())]).expect("artifact");
    std::fs::remove_file(art.join("w.bin")).expect("rm");
    std::os::unix::fs::symlink(&outside, art.join("w.bin")).expect("symlink");
    let e = kiln_registry::publish(&store.repo("m"), &art, &Default::default()).expect_err("refused").to_string();
    assert!(e.contains("symlink"), "{e}");
}
