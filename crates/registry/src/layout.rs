//! The local store: an OCI image layout folder (`oci-layout`, `index.json`, `blobs/sha256/`).
//! Names are tagged in `index.json` as `org.opencontainers.image.ref.name = NAME:TAG`, so one
//! store holds many artifacts; any OCI layout tool can read it.

use crate::error::{RegistryError, invalid, io};
use crate::media::{ANN_REF_NAME, Descriptor, ImageIndex, digest_hex, digest_of};
use crate::repo::{Content, PutManifest, Repository, copy_verified};
use std::io::Write;
use std::path::{Path, PathBuf};

const LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

/// `$KILN_STORE`, else `$XDG_DATA_HOME/kiln/store`, else `~/.local/share/kiln/store`.
pub fn default_store_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KILN_STORE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(p).join("kiln/store");
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".local/share/kiln/store")
}

impl LocalStore {
    /// Opens the store at `root`, creating an empty layout when the folder is new or empty.
    pub fn open(root: &Path) -> Result<LocalStore, RegistryError> {
        let s = LocalStore { root: root.to_path_buf() };
        let layout = root.join("oci-layout");
        if !layout.exists() {
            let empty = std::fs::read_dir(root).map(|mut d| d.next().is_none()).unwrap_or(true);
            if !empty {
                return Err(invalid(
                    root.display().to_string(),
                    "exists and is not an OCI image layout (no oci-layout file); point --store or $KILN_STORE elsewhere",
                ));
            }
            std::fs::create_dir_all(root.join("blobs/sha256")).map_err(|e| io(root, e))?;
            kiln_artifact::write_atomic(&root.join("index.json"), &crate::media::to_json(&ImageIndex::new(None)))?;
            kiln_artifact::write_atomic(&layout, LAYOUT)?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn repo(&self, name: &str) -> LocalRepo {
        LocalRepo { store: self.clone(), name: name.to_string() }
    }

    pub fn index(&self) -> Result<ImageIndex, RegistryError> {
        let p = self.root.join("index.json");
        let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
        serde_json::from_slice(&bytes).map_err(|e| invalid(p.display().to_string(), format!("not an OCI index ({e})")))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), RegistryError> {
        Ok(kiln_artifact::write_atomic(&self.root.join("index.json"), &crate::media::to_json(index))?)
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        let hex = digest_hex(digest).ok_or_else(|| invalid(format!("digest '{digest}'"), "not sha256:<64 hex digits>"))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Tags `desc` as `ref_name` (replacing what had that name).
    /// Under the store's lock, so concurrent compiles do not lose each other's tags.
    fn tag(&self, ref_name: &str, mut desc: Descriptor) -> Result<(), RegistryError> {
        let _lock = Lock::take(&self.root.join(".index.lock"))?;
        let mut index = self.index()?;
        index.manifests.retain(|d| d.annotation(ANN_REF_NAME) != Some(ref_name));
        desc.annotations.insert(ANN_REF_NAME.into(), ref_name.into());
        index.manifests.push(desc);
        index.manifests.sort_by(|a, b| a.annotation(ANN_REF_NAME).cmp(&b.annotation(ANN_REF_NAME)));
        self.write_index(&index)
    }
}

/// One name in the local store, as a [`Repository`].
#[derive(Clone, Debug)]
pub struct LocalRepo {
    store: LocalStore,
    name: String,
}

fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
        .unwrap_or_else(|| crate::media::OCI_MANIFEST.into())
}

impl Repository for LocalRepo {
    fn describe(&self) -> String {
        format!("local store {} ({})", self.store.root.display(), self.name)
    }

    fn blob_exists(&self, desc: &Descriptor) -> Result<bool, RegistryError> {
        let p = self.store.blob_path(&desc.digest)?;
        Ok(std::fs::metadata(&p).is_ok_and(|m| m.len() == desc.size))
    }

    fn put_blob(&self, desc: &Descriptor, content: &Content) -> Result<(), RegistryError> {
        let p = self.store.blob_path(&desc.digest)?;
        let tmp = p.with_extension(format!("partial-{}", std::process::id()));
        let r = (|| {
            let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
            copy_verified(desc, &mut content.open()?, &mut f)?;
            f.flush().map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &p).map_err(|e| io(&p, e))
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    fn fetch_blob(&self, desc: &Descriptor, sink: &mut dyn Write) -> Result<(), RegistryError> {
        let p = self.store.blob_path(&desc.digest)?;
        let mut f = std::fs::File::open(&p).map_err(|_| RegistryError::NotFound { reference: format!("{} in {}", desc.digest, self.describe()) })?;
        copy_verified(desc, &mut f, sink)
    }

    fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<PutManifest, RegistryError> {
        let desc = Descriptor::new(media_type, bytes);
        if !self.blob_exists(&desc)? {
            self.put_blob(&desc, &Content::Bytes(bytes.to_vec()))?;
        }
        if digest_hex(reference).is_some() {
            if reference != desc.digest {
                return Err(RegistryError::DigestMismatch { digest: reference.into(), reason: format!("the manifest hashes to {}", desc.digest) });
            }
        } else {
            self.store.tag(&format!("{}:{reference}", self.name), desc)?;
        }
        Ok(PutManifest::default())
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<(String, Vec<u8>)>, RegistryError> {
        let desc = if digest_hex(reference).is_some() {
            let p = self.store.blob_path(reference)?;
            match std::fs::metadata(&p) {
                Ok(m) => Descriptor { size: m.len(), ..Descriptor::new("", b"") }.with_digest(reference),
                Err(_) => return Ok(None),
            }
        } else {
            let name = format!("{}:{reference}", self.name);
            match self.store.index()?.manifests.into_iter().find(|d| d.annotation(ANN_REF_NAME) == Some(name.as_str())) {
                Some(d) => d,
                None => return Ok(None),
            }
        };
        let bytes = crate::repo::fetch_small(self, &desc, 4 << 20)?;
        let mt = if desc.media_type.is_empty() { media_type_of(&bytes) } else { desc.media_type.clone() };
        debug_assert_eq!(digest_of(&bytes), desc.digest);
        Ok(Some((mt, bytes)))
    }

    fn referrers(&self, _digest: &str) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        Ok(None)
    }
}

impl Descriptor {
    fn with_digest(mut self, digest: &str) -> Descriptor {
        self.digest = digest.to_string();
        self
    }
}

/// One artifact (one target of one version) in the local store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreEntry {
    pub name: String,
    pub tag: String,
    pub version: String,
    pub target: String,
    pub precision: String,
    /// Config (the artifact's manifest.json) plus every file.
    pub bytes: u64,
    /// The artifact digest (`kiln verify` prints the same).
    pub digest: String,
    /// The target's OCI manifest.
    pub manifest_digest: String,
}

impl LocalStore {
    /// Every artifact the store holds, by name, then tag, then target.
    pub fn list(&self) -> Result<Vec<StoreEntry>, RegistryError> {
        let mut out = Vec::new();
        for d in self.index()?.manifests {
            let Some((name, tag)) = d.annotation(ANN_REF_NAME).and_then(|r| r.rsplit_once(':')) else {
                continue;
            };
            if tag.starts_with("sha256-") {
                continue; // a referrers-tag index, not an artifact
            }
            let repo = self.repo(name);
            let Some((mt, bytes)) = repo.get_manifest(&d.digest)? else { continue };
            let manifests: Vec<String> = if mt == crate::media::OCI_INDEX {
                let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{name}:{tag}"), e.to_string()))?;
                index.manifests.into_iter().map(|m| m.digest).collect()
            } else {
                vec![d.digest.clone()]
            };
            for md in manifests {
                let Some((_, mb)) = repo.get_manifest(&md)? else { continue };
                let Ok(m) = serde_json::from_slice::<crate::media::ImageManifest>(&mb) else {
                    continue;
                };
                let ann = |k: &str| m.annotations.get(k).cloned().unwrap_or_default();
                out.push(StoreEntry {
                    name: name.to_string(),
                    tag: tag.to_string(),
                    version: ann(crate::media::ANN_VERSION),
                    target: ann(crate::media::ANN_TARGET),
                    precision: ann(crate::media::ANN_PRECISION),
                    bytes: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
                    digest: m.config.digest.clone(),
                    manifest_digest: md,
                });
            }
        }
        out.sort_by(|a, b| (&a.name, &a.tag, &a.target, &a.precision).cmp(&(&b.name, &b.tag, &b.target, &b.precision)));
        // A target manifest is also tagged VERSION-TARGET: list it once, under its version.
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|e| seen.insert((e.name.clone(), e.manifest_digest.clone())));
        Ok(out)
    }
}

/// An exclusive lock file (O_EXCL), removed when dropped.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock, RegistryError> {
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => return Ok(Lock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && started.elapsed() < std::time::Duration::from_secs(30) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(invalid(
                        path.display().to_string(),
                        "held for 30 s: another kiln is writing this store, or one was killed (remove the file if none is running)",
                    ));
                }
                Err(e) => return Err(io(path, e)),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
