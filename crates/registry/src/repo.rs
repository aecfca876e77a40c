//! What a place that holds OCI content must do, whether a registry or the local store. Publish
//! and pull are written once over this trait.

use crate::error::{RegistryError, io};
use crate::media::Descriptor;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

/// A blob's bytes: in memory, or a file read when it is sent.
#[derive(Clone, Debug)]
pub enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Content {
    pub fn open(&self) -> Result<Box<dyn Read + '_>, RegistryError> {
        match self {
            Content::Bytes(b) => Ok(Box::new(b.as_slice())),
            Content::File(p) => Ok(Box::new(std::fs::File::open(p).map_err(|e| io(p, e))?)),
        }
    }
}

/// What a manifest upload told us.
#[derive(Clone, Debug, Default)]
pub struct PutManifest {
    /// The registry said it indexed the manifest's `subject` (OCI 1.1 referrers API).
    pub subject_accepted: bool,
}

pub trait Repository {
    /// The place, for messages ("127.0.0.1:5000/models/m", "local store /path (m)").
    fn describe(&self) -> String;
    fn blob_exists(&self, desc: &Descriptor) -> Result<bool, RegistryError>;
    fn put_blob(&self, desc: &Descriptor, content: &Content) -> Result<(), RegistryError>;
    /// Streams a blob into `sink`: at most `desc.size` bytes, digest checked at the end (so the
    /// sink must be a temporary place until this returns Ok).
    fn fetch_blob(&self, desc: &Descriptor, sink: &mut dyn Write) -> Result<(), RegistryError>;
    /// Uploads a manifest under a tag or its digest.
    fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<PutManifest, RegistryError>;
    /// A manifest by tag or digest: (media type, bytes); None when it does not exist. When the
    /// reference is a digest, the bytes are checked against it.
    fn get_manifest(&self, reference: &str) -> Result<Option<(String, Vec<u8>)>, RegistryError>;
    /// The referrers of a manifest through the OCI 1.1 API; None when there is no such API
    /// (the caller falls back to the `sha256-<hex>` tag).
    fn referrers(&self, digest: &str) -> Result<Option<Vec<Descriptor>>, RegistryError>;
}

/// Copies `reader` into `sink`, refusing more than `desc.size` bytes, fewer, or a digest other
/// than `desc.digest`.
pub fn copy_verified(desc: &Descriptor, reader: &mut dyn Read, sink: &mut dyn Write) -> Result<(), RegistryError> {
    let mismatch = |reason: String| RegistryError::DigestMismatch { digest: desc.digest.clone(), reason };
    let mut h = Sha256::new();
    let mut n: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = reader.read(&mut buf).map_err(|e| mismatch(format!("reading failed after {n} bytes ({e})")))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > desc.size {
            return Err(mismatch(format!("more bytes than the {} its descriptor declares", desc.size)));
        }
        h.update(&buf[..k]);
        sink.write_all(&buf[..k]).map_err(|e| mismatch(format!("cannot store it ({e})")))?;
    }
    if n != desc.size {
        return Err(mismatch(format!("{n} bytes where its descriptor declares {}", desc.size)));
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if format!("sha256:{got}") != desc.digest {
        return Err(mismatch(format!("content hashes to sha256:{got}")));
    }
    Ok(())
}

/// A small blob (a config, a manifest) fetched into memory, verified; refused above `max` bytes.
pub fn fetch_small(repo: &dyn Repository, desc: &Descriptor, max: u64) -> Result<Vec<u8>, RegistryError> {
    if desc.size > max {
        return Err(RegistryError::Invalid {
            what: format!("blob {}", desc.digest),
            reason: format!("{} bytes, more than the {max} allowed for it", desc.size),
        });
    }
    let mut v = Vec::with_capacity(desc.size as usize);
    repo.fetch_blob(desc, &mut v)?;
    Ok(v)
}
