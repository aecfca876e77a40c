//! Pulling: resolve a tag to the version's index, pick the target's manifest, fetch every blob
//! with its digest checked, write the files safely into a temporary sibling folder, fetch the
//! evidence (referrers API, else the `sha256-<hex>` tag), verify, and only then move the
//! folder into place.

use crate::error::{RegistryError, invalid, io};
use crate::media::*;
use crate::repo::{Repository, fetch_small};
use crate::safe::create_file;
use kiln_artifact::{Manifest, PublicKey, VerifyReport};
use std::io::Write;
use std::path::{Path, PathBuf};

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_CONFIG: u64 = 16 << 20;
const MAX_EVIDENCE_FILE: u64 = 64 << 20;

#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// The target to pick from a version's index (needed when it holds more than one).
    pub target: Option<String>,
    /// Require a signature by this key (refuse the artifact otherwise).
    pub key: Option<PublicKey>,
    /// Skip fetching the evidence (signature, attestations, report).
    pub no_evidence: bool,
}

#[derive(Debug)]
pub struct Pulled {
    pub dir: PathBuf,
    pub artifact_digest: String,
    pub manifest_digest: String,
    pub name: String,
    pub version: String,
    pub target: String,
    pub evidence_files: usize,
    pub report: VerifyReport,
}

/// The target manifest a reference names: (its digest, the manifest).
pub fn resolve(repo: &dyn Repository, reference: &str, target: Option<&str>) -> Result<(String, ImageManifest), RegistryError> {
    let (mt, bytes) =
        repo.get_manifest(reference)?.ok_or_else(|| RegistryError::NotFound { reference: format!("{reference} in {}", repo.describe()) })?;
    let what = || format!("{reference} in {}", repo.describe());
    let (digest, bytes) = if mt == OCI_INDEX || mt == DOCKER_LIST {
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| invalid(what(), format!("the index does not parse ({e})")))?;
        let targets: Vec<&str> = index.manifests.iter().filter_map(|d| d.annotation(ANN_TARGET)).collect();
        let chosen = match target {
            Some(t) => index
                .manifests
                .iter()
                .find(|d| d.annotation(ANN_TARGET) == Some(t))
                .ok_or_else(|| invalid(what(), format!("no manifest for target '{t}'; it holds {targets:?}")))?,
            None if index.manifests.len() == 1 => &index.manifests[0],
            None if index.manifests.is_empty() => return Err(invalid(what(), "the index is empty")),
            None => return Err(invalid(what(), format!("holds targets {targets:?}: pick one with --target"))),
        };
        let (_, b) = repo
            .get_manifest(&chosen.digest)?
            .ok_or_else(|| RegistryError::NotFound { reference: format!("{} (listed in {reference}) in {}", chosen.digest, repo.describe()) })?;
        (chosen.digest.clone(), b)
    } else {
        (digest_of(&bytes), bytes)
    };
    let m: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| invalid(what(), format!("not an OCI image manifest ({e})")))?;
    if m.artifact_type.as_deref() != Some(ARTIFACT_TYPE) && m.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(invalid(
            what(),
            format!(
                "not a Kiln artifact (artifactType {:?}, config {}; Kiln's are {ARTIFACT_TYPE} and {CONFIG_MEDIA_TYPE})",
                m.artifact_type, m.config.media_type
            ),
        ));
    }
    if let (Some(t), Some(have)) = (target, m.annotation_target())
        && t != have
    {
        return Err(invalid(what(), format!("is built for target '{have}', not '{t}'")));
    }
    Ok((digest, m))
}

impl ImageManifest {
    fn annotation_target(&self) -> Option<&str> {
        self.annotations.get(ANN_TARGET).map(String::as_str)
    }
}

/// The referrers of `digest`: the API where there is one, else the referrers tag's index.
pub fn list_referrers(repo: &dyn Repository, digest: &str) -> Result<Vec<Descriptor>, RegistryError> {
    if let Some(v) = repo.referrers(digest)? {
        return Ok(v);
    }
    let tag = crate::publish::referrers_tag(digest)?;
    match repo.get_manifest(&tag)? {
        None => Ok(Vec::new()),
        Some((_, bytes)) => Ok(serde_json::from_slice::<ImageIndex>(&bytes).map(|i| i.manifests).unwrap_or_default()),
    }
}

fn fetch_to(repo: &dyn Repository, root: &Path, rel: &str, desc: &Descriptor) -> Result<(), RegistryError> {
    let (f, path) = create_file(root, rel)?;
    let mut w = std::io::BufWriter::new(f);
    repo.fetch_blob(desc, &mut w)?;
    w.flush().map_err(|e| io(&path, e))
}

pub fn pull(repo: &dyn Repository, reference: &str, out: &Path, opts: &PullOptions) -> Result<Pulled, RegistryError> {
    let (mdigest, m) = resolve(repo, reference, opts.target.as_deref())?;
    let config = fetch_small(repo, &m.config, MAX_CONFIG)?;
    let km: Manifest =
        serde_json::from_slice(&config).map_err(|e| invalid(format!("config {}", m.config.digest), format!("not a Kiln manifest ({e})")))?;
    if km.schema_version > kiln_artifact::MANIFEST_SCHEMA_VERSION {
        return Err(invalid(
            format!("config {}", m.config.digest),
            format!("manifest schema {} is newer than this Kiln reads; update Kiln", km.schema_version),
        ));
    }
    let target = km.target.get("kind").cloned().unwrap_or_else(|| km.build.target.clone());
    if let Some(t) = &opts.target
        && *t != target
    {
        return Err(invalid(reference, format!("is built for target '{target}', not '{t}'")));
    }
    // Every layer must be a file the Kiln manifest lists, with the size and digest it declares.
    let mut files = Vec::new();
    for l in &m.layers {
        let title = l
            .annotation(ANN_TITLE)
            .ok_or_else(|| invalid(format!("layer {}", l.digest), "has no org.opencontainers.image.title: Kiln cannot tell which file it is"))?;
        crate::safe::check_relative(title)?;
        let f = km
            .file(title)
            .ok_or_else(|| RegistryError::Unsafe { path: title.into(), reason: "not listed in the artifact's manifest.json".into() })?;
        if l.size != f.bytes {
            return Err(RegistryError::Unsafe {
                path: title.into(),
                reason: format!("the layer declares {} bytes, the artifact's manifest {}", l.size, f.bytes),
            });
        }
        if l.digest != format!("sha256:{}", f.sha256) {
            return Err(invalid(title, format!("layer digest {} differs from the manifest's sha256:{}", l.digest, f.sha256)));
        }
        files.push((title.to_string(), l.clone()));
    }
    if let Some(missing) = km.files.iter().find(|f| !files.iter().any(|(t, _)| *t == f.path)) {
        return Err(invalid(reference, format!("file {} of the artifact has no layer", missing.path)));
    }

    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "artifact".into());
    let tmp = parent.join(format!(".{name}.pull-{}", std::process::id()));
    let tmp_att = kiln_artifact::attestations_dir(&tmp);
    let clean = || {
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&tmp_att);
    };
    clean();
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let (mut f, p) = create_file(&tmp, kiln_artifact::MANIFEST_FILE)?;
        f.write_all(&config).map_err(|e| io(&p, e))?;
        for (title, l) in &files {
            fetch_to(repo, &tmp, title, l)?;
        }
        let mut evidence = 0;
        if !opts.no_evidence {
            evidence = fetch_evidence(repo, &mdigest, &tmp_att)?;
        }
        let report = kiln_artifact::verify(&tmp, opts.key.as_ref())?;
        if !report.ok() {
            let failures: Vec<&str> = report.failures().map(|c| c.what.as_str()).collect();
            return Err(invalid(reference, format!("does not verify, refusing it: {}", failures.join("; "))));
        }
        Ok((evidence, report))
    })();
    let (evidence_files, report) = match result {
        Ok(r) => r,
        Err(e) => {
            clean();
            return Err(e);
        }
    };
    if let Err(e) = move_into_place(&tmp, out) {
        clean();
        return Err(e);
    }
    Ok(Pulled {
        dir: out.to_path_buf(),
        artifact_digest: m.config.digest.clone(),
        manifest_digest: mdigest,
        name: km.name,
        version: km.version,
        target,
        evidence_files,
        report,
    })
}

fn fetch_evidence(repo: &dyn Repository, subject: &str, att: &Path) -> Result<usize, RegistryError> {
    let kinds = [SIGNATURE_ARTIFACT_TYPE, ATTESTATION_ARTIFACT_TYPE, REPORT_ARTIFACT_TYPE];
    let mut n = 0;
    for r in list_referrers(repo, subject)? {
        if !r.artifact_type.as_deref().is_some_and(|t| kinds.contains(&t)) {
            continue;
        }
        let Some((_, bytes)) = repo.get_manifest(&r.digest)? else { continue };
        let rm: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("referrer {}", r.digest), e.to_string()))?;
        if rm.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject) {
            return Err(invalid(format!("referrer {}", r.digest), format!("its subject is not {subject}")));
        }
        std::fs::create_dir_all(att).map_err(|e| io(att, e))?;
        for l in &rm.layers {
            let title = l.annotation(ANN_TITLE).ok_or_else(|| invalid(format!("referrer layer {}", l.digest), "has no title"))?;
            if l.size > MAX_EVIDENCE_FILE {
                return Err(RegistryError::Unsafe {
                    path: title.into(),
                    reason: format!("{} bytes of evidence, more than the {MAX_EVIDENCE_FILE} allowed", l.size),
                });
            }
            fetch_to(repo, att, title, l)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Replaces `out` (only if it is empty or a Kiln artifact) and its `.attestations` with `tmp`'s.
fn move_into_place(tmp: &Path, out: &Path) -> Result<(), RegistryError> {
    if out.exists() {
        let ours = out.join(kiln_artifact::MANIFEST_FILE).exists() || out.join("plan.json").exists();
        let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !ours && !empty {
            return Err(invalid(out.display().to_string(), "exists and is not a Kiln artifact; refusing to replace it (pick another -o)"));
        }
        std::fs::remove_dir_all(out).map_err(|e| io(out, e))?;
    }
    let out_att = kiln_artifact::attestations_dir(out);
    if out_att.exists() {
        std::fs::remove_dir_all(&out_att).map_err(|e| io(&out_att, e))?;
    }
    std::fs::rename(tmp, out).map_err(|e| io(out, e))?;
    let tmp_att = kiln_artifact::attestations_dir(tmp);
    if tmp_att.exists() {
        std::fs::rename(&tmp_att, &out_att).map_err(|e| io(&out_att, e))?;
    }
    Ok(())
}
