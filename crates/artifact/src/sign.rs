//! ed25519 keys, and signatures over an artifact digest.

use crate::digest::{hex, sha256_hex, unhex};
use crate::error::{ArtifactError, io};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const SECRET_TAG: &str = "kiln-ed25519-secret-v1";
const PUBLIC_TAG: &str = "kiln-ed25519-public-v1";

/// A signing key (and its public half).
pub struct KeyPair(SigningKey);

/// A public key that checks signatures.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey(VerifyingKey);

impl KeyPair {
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }
}

impl PublicKey {
    /// The first 16 hex digits of the sha256 of the key bytes.
    pub fn key_id(&self) -> String {
        sha256_hex(self.0.as_bytes())[..16].to_string()
    }
    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        let b: [u8; 32] = unhex(s)?.try_into().ok()?;
        VerifyingKey::from_bytes(&b).ok().map(PublicKey)
    }
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        Signature::from_slice(sig).is_ok_and(|s| self.0.verify(msg, &s).is_ok())
    }
}

fn key_err(path: &Path, reason: impl Into<String>) -> ArtifactError {
    ArtifactError::Key { path: path.display().to_string(), reason: reason.into() }
}

/// Generates a key pair from the OS's random source: the secret key at `path` (mode 0600) and
/// the public key at `path.pub`. Refuses to overwrite an existing key.
pub fn keygen(path: &Path) -> Result<(PathBuf, PublicKey), ArtifactError> {
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(key_err(p, "exists; refusing to overwrite a key"));
        }
    }
    let mut seed = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| io(Path::new("/dev/urandom"), e))?;
    std::io::Read::read_exact(&mut f, &mut seed).map_err(|e| io(Path::new("/dev/urandom"), e))?;
    let key = KeyPair(SigningKey::from_bytes(&seed));
    let public = key.public();
    crate::write_atomic(path, format!("{SECRET_TAG} {}\n", hex(&seed)).as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io(path, e))?;
    }
    crate::write_atomic(&pub_path, format!("{PUBLIC_TAG} {}\n", public.to_hex()).as_bytes())?;
    Ok((pub_path, public))
}

fn read_tagged(path: &Path, tag: &str) -> Result<[u8; 32], ArtifactError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let hexpart = text.trim().strip_prefix(tag).ok_or_else(|| key_err(path, format!("not a Kiln key file (expected it to start with '{tag}'; make one with `kiln keygen`)")))?;
    unhex(hexpart).and_then(|b| b.try_into().ok()).ok_or_else(|| key_err(path, "the key is not 32 bytes of hex"))
}

pub fn read_secret_key(path: &Path) -> Result<KeyPair, ArtifactError> {
    Ok(KeyPair(SigningKey::from_bytes(&read_tagged(path, SECRET_TAG)?)))
}

pub fn read_public_key(path: &Path) -> Result<PublicKey, ArtifactError> {
    let b = read_tagged(path, PUBLIC_TAG)?;
    VerifyingKey::from_bytes(&b).map(PublicKey).map_err(|_| key_err(path, "not a valid ed25519 public key"))
}

/// `artifact.sig`: an ed25519 signature over the artifact digest string (`sha256:<hex>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactSignature {
    pub digest: String,
    pub keyid: String,
    pub public_key: String,
    pub sig: String,
}

pub fn sign_digest(digest: &str, key: &KeyPair) -> ArtifactSignature {
    let public = key.public();
    ArtifactSignature { digest: digest.into(), keyid: public.key_id(), public_key: public.to_hex(), sig: B64.encode(key.sign(digest.as_bytes())) }
}

/// Checks `sig` against `digest` with `key` (or the key it carries when none is given).
pub fn verify_digest_signature(sig: &ArtifactSignature, digest: &str, key: Option<&PublicKey>) -> Result<(), String> {
    if sig.digest != digest {
        return Err(format!("signs {} , not this artifact ({digest})", sig.digest));
    }
    let carried = PublicKey::from_hex(&sig.public_key).ok_or("the signature's public key is not valid")?;
    if let Some(k) = key
        && (k != &carried || sig.keyid != k.key_id())
    {
        return Err(format!("signed by key {} , not the given key {}", sig.keyid, k.key_id()));
    }
    if sig.keyid != carried.key_id() {
        return Err(format!("keyid {} does not match the public key it carries", sig.keyid));
    }
    let key = key.unwrap_or(&carried);
    let raw = B64.decode(&sig.sig).map_err(|_| "the signature is not base64".to_string())?;
    if key.verify(digest.as_bytes(), &raw) { Ok(()) } else { Err(format!("the signature does not verify with key {}", key.key_id())) }
}
