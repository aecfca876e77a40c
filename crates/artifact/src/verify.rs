use crate::attest::{Envelope, PAYLOAD_TYPE, STATEMENT_TYPE, pae};
use crate::digest::{list_files, sha256_hex};
use crate::error::{ArtifactError, invalid, io};
use crate::manifest::{MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, Manifest};
use crate::sign::{ArtifactSignature, PublicKey, verify_digest_signature};
use crate::write::attestations_dir;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::path::Path;

/// One thing `verify` looked at.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub ok: bool,
    /// What was checked, naming the file ("file weights.bin: sha256 differs from the manifest").
    pub what: String,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// `sha256:<hex>` of manifest.json as found.
    pub digest: String,
    pub checks: Vec<Check>,
    /// Things worth saying that are not failures (unsigned artifact, no trusted key given).
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        self.checks.push(Check { ok, what: what.into() });
    }
}

/// Checks an artifact folder: every file's sha256 against the manifest (naming each changed,
/// missing or extra file), `artifact.sig` over the digest, and each attestation's signature and
/// subject. With `key`, a signature by that key is required; without, signatures are checked
/// against the key `artifact.sig` carries (which proves integrity, not who signed).
pub fn verify(dir: &Path, key: Option<&PublicKey>) -> Result<VerifyReport, ArtifactError> {
    let mpath = dir.join(MANIFEST_FILE);
    if !dir.is_dir() {
        return Err(invalid(dir, "not a folder (give an artifact folder written by `kiln compile`, or its .tar archive)"));
    }
    let mbytes = std::fs::read(&mpath).map_err(|e| io(&mpath, e))?;
    let mut r = VerifyReport { digest: format!("sha256:{}", sha256_hex(&mbytes)), ..Default::default() };
    match serde_json::from_slice::<Manifest>(&mbytes) {
        Err(e) => r.check(false, format!("file {MANIFEST_FILE}: does not parse as a manifest ({e}): it was changed")),
        Ok(m) if m.schema_version > MANIFEST_SCHEMA_VERSION => {
            r.check(false, format!("file {MANIFEST_FILE}: schema {} is newer than this Kiln reads ({MANIFEST_SCHEMA_VERSION})", m.schema_version))
        }
        Ok(m) => check_files(dir, &m, &mut r)?,
    }
    check_evidence(dir, key, &mut r)?;
    Ok(r)
}

fn check_files(dir: &Path, m: &Manifest, r: &mut VerifyReport) -> Result<(), ArtifactError> {
    let present = list_files(dir)?;
    for f in &m.files {
        let p = dir.join(&f.path);
        match std::fs::read(&p) {
            Err(_) => r.check(false, format!("file {}: missing", f.path)),
            Ok(b) if b.len() as u64 != f.bytes || sha256_hex(&b) != f.sha256 => {
                r.check(false, format!("file {}: changed (sha256 {} , manifest says {})", f.path, sha256_hex(&b), f.sha256))
            }
            Ok(_) => r.check(true, format!("file {}: sha256 {}", f.path, f.sha256)),
        }
    }
    for p in present {
        if p != MANIFEST_FILE && m.file(&p).is_none() {
            r.check(false, format!("file {p}: extra (not in the manifest)"));
        }
    }
    Ok(())
}

fn check_evidence(dir: &Path, key: Option<&PublicKey>, r: &mut VerifyReport) -> Result<(), ArtifactError> {
    let att = attestations_dir(dir);
    let sig_path = att.join("artifact.sig");
    let mut signer: Option<PublicKey> = key.cloned();
    if sig_path.exists() {
        let text = std::fs::read(&sig_path).map_err(|e| io(&sig_path, e))?;
        match serde_json::from_slice::<ArtifactSignature>(&text) {
            Err(e) => r.check(false, format!("signature artifact.sig: does not parse ({e}): it was changed")),
            Ok(sig) => {
                match verify_digest_signature(&sig, &r.digest, key) {
                    Ok(()) => r.check(true, format!("signature artifact.sig: valid, key {}", sig.keyid)),
                    Err(e) => r.check(false, format!("signature artifact.sig: {e}")),
                }
                if key.is_none() {
                    r.notes.push(format!("signatures checked against the key artifact.sig carries ({}); pass --key PUB to check who signed", sig.keyid));
                    signer = PublicKey::from_hex(&sig.public_key);
                }
            }
        }
    } else if key.is_some() {
        r.check(false, format!("signature artifact.sig: missing ({} has none)", att.display()));
    } else {
        r.notes.push("unsigned: no artifact.sig (sign with `kiln compile --sign KEY`)".into());
    }
    if !att.is_dir() {
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(&att)
        .map_err(|e| io(&att, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".intoto.json"))
        .collect();
    names.sort();
    for name in names {
        let p = att.join(&name);
        let env: Envelope = match std::fs::read(&p).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(e) => e,
            None => {
                r.check(false, format!("attestation {name}: not a DSSE envelope: it was changed"));
                continue;
            }
        };
        let Some(payload) = env.payload_bytes() else {
            r.check(false, format!("attestation {name}: payload is not base64: it was changed"));
            continue;
        };
        let statement = env.statement();
        let subject_ok = statement.as_ref().is_some_and(|s| {
            s.type_ == STATEMENT_TYPE && s.subject.iter().any(|sub| sub.digest.get("sha256").map(|d| format!("sha256:{d}")).as_deref() == Some(r.digest.as_str()))
        });
        match &statement {
            None => r.check(false, format!("attestation {name}: payload is not an in-toto statement: it was changed")),
            Some(s) if !subject_ok => {
                let named: Vec<String> = s.subject.iter().filter_map(|x| x.digest.get("sha256").cloned()).collect();
                r.check(false, format!("attestation {name}: names sha256:{} , not this artifact ({})", named.join(","), r.digest))
            }
            Some(s) => r.check(true, format!("attestation {name}: {} about this artifact", s.predicate_type)),
        }
        let msg = pae(&env.payload_type, &payload);
        if env.payload_type != PAYLOAD_TYPE {
            r.check(false, format!("attestation {name}: payloadType {} is not {PAYLOAD_TYPE}", env.payload_type));
        }
        match (&signer, env.signatures.is_empty()) {
            (_, true) if key.is_some() => r.check(false, format!("attestation {name}: unsigned")),
            (_, true) => r.notes.push(format!("attestation {name}: unsigned")),
            (None, false) => r.notes.push(format!("attestation {name}: signed, but no key to check it with (pass --key PUB)")),
            (Some(k), false) => {
                let good = env.signatures.iter().any(|s| s.keyid == k.key_id() && B64.decode(&s.sig).is_ok_and(|sig| k.verify(&msg, &sig)));
                if good {
                    r.check(true, format!("attestation {name}: signature valid, key {}", k.key_id()));
                } else {
                    r.check(false, format!("attestation {name}: no valid signature by key {}: it was changed or signed by another key", k.key_id()));
                }
            }
        }
    }
    Ok(())
}
