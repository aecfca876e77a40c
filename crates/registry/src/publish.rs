//! Publishing an artifact folder: blobs first, then the target's manifest (by digest), the
//! evidence as referrers, and last the version's index under its tag, so an interrupted
//! publish never leaves a tag naming incomplete content.

use crate::error::{RegistryError, invalid, io};
use crate::media::*;
use crate::reference::version_tag;
use crate::repo::{Content, Repository};
use kiln_artifact::Manifest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct PublishOptions {
    /// Extra manifest annotations (org.opencontainers.image.source / revision / created ...).
    pub annotations: BTreeMap<String, String>,
    /// The index tag (default: the artifact's version, `+` as `_`).
    pub tag: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Published {
    pub tag: String,
    /// The target manifest's own tag (`VERSION-TARGET`).
    pub target_tag: String,
    pub index_digest: String,
    /// The target's image manifest.
    pub manifest_digest: String,
    /// The artifact digest (= the config blob's digest).
    pub artifact_digest: String,
    pub name: String,
    pub version: String,
    pub target: String,
    pub precision: String,
    pub bytes: u64,
    pub uploaded: usize,
    pub skipped: usize,
    /// (artifactType, manifest digest) of each referrer pushed.
    pub referrers: Vec<(String, String)>,
    /// The referrers went to the `sha256-<hex>` tag (the registry has no referrers API).
    pub referrers_tag_fallback: bool,
}

struct Counter {
    uploaded: usize,
    skipped: usize,
}

fn push_blob(repo: &dyn Repository, desc: &Descriptor, content: &Content, n: &mut Counter) -> Result<(), RegistryError> {
    if repo.blob_exists(desc)? {
        n.skipped += 1;
        return Ok(());
    }
    repo.put_blob(desc, content)?;
    n.uploaded += 1;
    Ok(())
}

fn regular_file(p: &Path) -> Result<(), RegistryError> {
    let m = std::fs::symlink_metadata(p).map_err(|e| io(p, e))?;
    if !m.file_type().is_file() {
        return Err(RegistryError::Unsafe { path: p.display().to_string(), reason: "not a regular file (symlinks are not published)".into() });
    }
    Ok(())
}

pub fn publish(repo: &dyn Repository, artifact: &Path, opts: &PublishOptions) -> Result<Published, RegistryError> {
    let report = kiln_artifact::verify(artifact, None)?;
    if !report.ok() {
        let failures: Vec<&str> = report.failures().map(|c| c.what.as_str()).collect();
        return Err(invalid(artifact.display().to_string(), format!("does not verify, refusing to publish it: {}", failures.join("; "))));
    }
    let mpath = artifact.join(kiln_artifact::MANIFEST_FILE);
    regular_file(&mpath)?;
    let mbytes = std::fs::read(&mpath).map_err(|e| io(&mpath, e))?;
    let m: Manifest = serde_json::from_slice(&mbytes).map_err(|e| invalid(mpath.display().to_string(), e.to_string()))?;
    let target = m.target.get("kind").cloned().unwrap_or_else(|| m.build.target.clone());
    let mut n = Counter { uploaded: 0, skipped: 0 };

    let config = Descriptor::new(CONFIG_MEDIA_TYPE, &mbytes);
    let mut blobs = vec![(config.clone(), Content::Bytes(mbytes.clone()))];
    let mut layers = Vec::new();
    for f in &m.files {
        crate::safe::check_relative(&f.path)?;
        let p = artifact.join(&f.path);
        regular_file(&p)?;
        let mut d = Descriptor {
            media_type: file_media_type(&f.path).into(),
            digest: format!("sha256:{}", f.sha256),
            size: f.bytes,
            artifact_type: None,
            annotations: BTreeMap::new(),
        };
        d.annotations.insert(ANN_TITLE.into(), f.path.clone());
        layers.push(d.clone());
        blobs.push((d, Content::File(p)));
    }
    let mut annotations = opts.annotations.clone();
    annotations.insert(ANN_VERSION.into(), m.version.clone());
    annotations.insert(ANN_NAME.into(), m.name.clone());
    annotations.insert(ANN_TITLE.into(), m.name.clone());
    annotations.insert(ANN_TARGET.into(), target.clone());
    annotations.insert(ANN_PRECISION.into(), m.precision.clone());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config,
        layers,
        subject: None,
        annotations,
    };
    // Weights (the big blob) first: what an interruption most likely hits.
    blobs.sort_by_key(|(d, _)| std::cmp::Reverse(d.size));
    for (d, c) in &blobs {
        push_blob(repo, d, c, &mut n)?;
    }
    let mbody = to_json(&manifest);
    let mdesc = Descriptor { artifact_type: Some(ARTIFACT_TYPE.into()), ..Descriptor::new(OCI_MANIFEST, &mbody) };
    // Tagged VERSION-TARGET too, for clients that do not read indexes (ORAS and the like); its
    // content is complete, so the interrupted-push rule holds.
    let target_tag = target_tag(&m.version, &target, &m.precision);
    repo.put_manifest(&target_tag, OCI_MANIFEST, &mbody)?;

    let (referrers, fallback) = push_evidence(repo, artifact, &mdesc, &mut n)?;

    let tag = opts.tag.clone().unwrap_or_else(|| version_tag(&m.version));
    let mut index = match repo.get_manifest(&tag)? {
        None => ImageIndex::new(Some(ARTIFACT_TYPE)),
        Some((mt, bytes)) if mt == OCI_INDEX => serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("{}:{tag}", repo.describe()), format!("the existing index does not parse ({e})")))?,
        Some((mt, _)) => {
            return Err(invalid(
                format!("{}:{tag}", repo.describe()),
                format!("the tag exists and holds {mt}, not a Kiln index; publish under another tag (--tag)"),
            ));
        }
    };
    index.artifact_type = Some(ARTIFACT_TYPE.into());
    index.annotations.insert(ANN_VERSION.into(), m.version.clone());
    index.annotations.insert(ANN_NAME.into(), m.name.clone());
    index.manifests.retain(|d| !(d.annotation(ANN_TARGET) == Some(target.as_str()) && d.annotation(ANN_PRECISION) == Some(m.precision.as_str())));
    let mut entry = mdesc.clone();
    entry.annotations.insert(ANN_TARGET.into(), target.clone());
    entry.annotations.insert(ANN_PRECISION.into(), m.precision.clone());
    index.manifests.push(entry);
    index
        .manifests
        .sort_by(|a, b| (a.annotation(ANN_TARGET), a.annotation(ANN_PRECISION)).cmp(&(b.annotation(ANN_TARGET), b.annotation(ANN_PRECISION))));
    let ibody = to_json(&index);
    repo.put_manifest(&tag, OCI_INDEX, &ibody)?;
    Ok(Published {
        tag,
        target_tag,
        index_digest: digest_of(&ibody),
        manifest_digest: mdesc.digest,
        artifact_digest: report.digest,
        name: m.name.clone(),
        version: m.version.clone(),
        target,
        precision: m.precision.clone(),
        bytes: mbytes.len() as u64 + m.total_bytes(),
        uploaded: n.uploaded,
        skipped: n.skipped,
        referrers,
        referrers_tag_fallback: fallback,
    })
}

/// One referrer's worth of evidence: (artifactType, [(path, media type, file)]).
pub type EvidenceGroup = (String, Vec<(String, String, PathBuf)>);

/// The evidence beside an artifact, grouped into referrers.
pub fn evidence_groups(artifact: &Path) -> Result<Vec<EvidenceGroup>, RegistryError> {
    let att = kiln_artifact::attestations_dir(artifact);
    if !att.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut stack = vec![(att.clone(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let e = e.map_err(|e| io(&d, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let ft = e.file_type().map_err(|x| io(&e.path(), x))?;
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if ft.is_file() && !name.starts_with('.') {
                files.push((rel, e.path()));
            }
        }
    }
    files.sort();
    let mut groups: Vec<EvidenceGroup> = Vec::new();
    let mut report = Vec::new();
    for (rel, p) in files {
        if rel == "artifact.sig" {
            groups.push((SIGNATURE_ARTIFACT_TYPE.into(), vec![(rel, SIGNATURE_ARTIFACT_TYPE.into(), p)]));
        } else if rel.ends_with(".intoto.json") && !rel.contains('/') {
            groups.push((ATTESTATION_ARTIFACT_TYPE.into(), vec![(rel, DSSE_MEDIA_TYPE.into(), p)]));
        } else {
            let mt = match rel.rsplit('.').next() {
                Some("json") => "application/json",
                Some("md") => "text/markdown",
                Some("html") => "text/html",
                Some("xml") => "application/xml",
                _ => "application/octet-stream",
            };
            report.push((rel, mt.to_string(), p));
        }
    }
    if !report.is_empty() {
        groups.push((REPORT_ARTIFACT_TYPE.into(), report));
    }
    Ok(groups)
}

/// Pushes each evidence group as a referrer of `subject`; where the registry does not index
/// subjects, records them in the `sha256-<hex>` tag's index (the referrers tag schema).
fn push_evidence(
    repo: &dyn Repository,
    artifact: &Path,
    subject: &Descriptor,
    n: &mut Counter,
) -> Result<(Vec<(String, String)>, bool), RegistryError> {
    let groups = evidence_groups(artifact)?;
    if groups.is_empty() {
        return Ok((Vec::new(), false));
    }
    let empty = Descriptor::new(OCI_EMPTY, EMPTY_JSON);
    push_blob(repo, &empty, &Content::Bytes(EMPTY_JSON.to_vec()), n)?;
    let subject = Descriptor { annotations: BTreeMap::new(), ..subject.clone() };
    let mut pushed = Vec::new();
    let mut fallback = Vec::new();
    for (artifact_type, files) in groups {
        let mut layers = Vec::new();
        for (rel, mt, p) in files {
            let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
            let mut d = Descriptor::new(&mt, &bytes);
            d.annotations.insert(ANN_TITLE.into(), rel);
            push_blob(repo, &d, &Content::Bytes(bytes), n)?;
            layers.push(d);
        }
        let rm = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(artifact_type.clone()),
            config: empty.clone(),
            layers,
            subject: Some(subject.clone()),
            annotations: BTreeMap::new(),
        };
        let body = to_json(&rm);
        let d = Descriptor { artifact_type: Some(artifact_type.clone()), ..Descriptor::new(OCI_MANIFEST, &body) };
        let r = repo.put_manifest(&d.digest, OCI_MANIFEST, &body)?;
        if !r.subject_accepted {
            fallback.push(d.clone());
        }
        pushed.push((artifact_type, d.digest));
    }
    let used_fallback = !fallback.is_empty();
    if used_fallback {
        let tag = referrers_tag(&subject.digest)?;
        let mut index = match repo.get_manifest(&tag)? {
            Some((_, bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|_| ImageIndex::new(None)),
            None => ImageIndex::new(None),
        };
        for d in fallback {
            if !index.manifests.iter().any(|x| x.digest == d.digest) {
                index.manifests.push(d);
            }
        }
        repo.put_manifest(&tag, OCI_INDEX, &to_json(&index))?;
    }
    Ok((pushed, used_fallback))
}

/// The tag of one target's manifest: `VERSION-TARGET` (`-PRECISION` added when not f32).
pub fn target_tag(version: &str, target: &str, precision: &str) -> String {
    let t = format!("{}-{target}", version_tag(version));
    if precision == "f32" { t } else { format!("{t}-{precision}") }
}

/// The referrers tag schema's tag for a subject: `sha256-<hex>`.
pub fn referrers_tag(digest: &str) -> Result<String, RegistryError> {
    digest_hex(digest).map(|h| format!("sha256-{h}")).ok_or_else(|| invalid(format!("digest '{digest}'"), "not sha256:<64 hex digits>"))
}
