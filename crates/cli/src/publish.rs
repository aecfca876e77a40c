use crate::store::{RemoteArgs, StoreArgs};
use anyhow::Context;
use kiln_registry::media::{ANN_CREATED, ANN_REVISION, ANN_SOURCE};
use std::path::PathBuf;

/// Publish an artifact to an OCI registry (or the local store): its files as blobs, a manifest
/// for its target, its signature, attestations and report as referrers, and the version's image
/// index (one entry per target) last, so an interrupted publish leaves no tag. Publishing
/// another target under the same version adds it to that index.
///
/// Example: kiln publish model.kiln registry.example.com/models/resnet:1.2.0
/// Example: kiln publish model.kiln 127.0.0.1:5000/models/resnet --insecure -u ci --password-stdin < pass
#[derive(clap::Args)]
pub struct Args {
    /// An artifact folder (`kiln compile -o DIR`), its .tar archive, or NAME:VERSION in the
    /// local store (every target of that version).
    artifact: PathBuf,
    /// HOST[:PORT]/REPOSITORY[:TAG] (the tag defaults to the artifact's version), or NAME[:TAG]
    /// for the local store. Default: kiln.toml's `registry` (--config) plus the artifact's name.
    reference: Option<String>,
    /// A build file (kiln.toml) whose `registry` gives the reference when none is given.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// org.opencontainers.image.source annotation (where the model's code lives).
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    /// org.opencontainers.image.revision annotation (e.g. a git commit).
    #[arg(long)]
    revision: Option<String>,
    /// Add org.opencontainers.image.created (now, RFC 3339); off by default so a republish
    /// gives the same digests.
    #[arg(long)]
    created: bool,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dirs = if a.artifact.is_file() {
        vec![kiln_artifact::unpack(&a.artifact, tmp.path())?]
    } else if a.artifact.exists() {
        vec![a.artifact.clone()]
    } else {
        from_store(&a, tmp.path())?
    };
    let dir = dirs.first().context("nothing to publish")?.clone();
    let reference = match (&a.reference, &a.config) {
        (Some(r), _) => r.clone(),
        (None, Some(c)) => {
            let bf = crate::buildfile::read(c)?;
            let registry =
                bf.registry.with_context(|| format!("{} has no `registry`: give the reference (kiln publish DIR HOST/REPO)", c.display()))?;
            let name = crate::artifact::read_manifest(&dir)?.0.name;
            format!("{}/{}", registry.trim_end_matches('/'), crate::store::store_name(&name))
        }
        (None, None) => anyhow::bail!("give the reference (kiln publish DIR HOST/REPO[:TAG]) or --config kiln.toml with a `registry`"),
    };
    let (repo, tag) = crate::store::open(&reference, &a.remote, &a.store)?;
    if tag.as_deref().is_some_and(|t| t.starts_with("sha256:")) {
        anyhow::bail!("{reference}: publish to a tag (or none: the version), not a digest");
    }
    let mut opts = kiln_registry::PublishOptions { tag, ..Default::default() };
    if let Some(s) = &a.source {
        opts.annotations.insert(ANN_SOURCE.into(), s.clone());
    }
    if let Some(r) = &a.revision {
        opts.annotations.insert(ANN_REVISION.into(), r.clone());
    }
    if a.created {
        opts.annotations.insert(ANN_CREATED.into(), rfc3339_now());
    }
    for d in &dirs {
        let p = kiln_registry::publish(repo.as_ref(), d, &opts)
            .with_context(|| format!("cannot publish {} to {}", a.artifact.display(), repo.describe()))?;
        if a.json {
            let v = serde_json::json!({
                "reference": format!("{}:{}", repo.describe(), p.tag), "tag": p.tag, "target_tag": p.target_tag, "index": p.index_digest, "manifest": p.manifest_digest,
                "digest": p.artifact_digest, "name": p.name, "version": p.version, "target": p.target, "precision": p.precision, "bytes": p.bytes,
                "uploaded": p.uploaded, "skipped": p.skipped, "referrers": p.referrers.iter().map(|(t, d)| serde_json::json!({"artifactType": t, "digest": d})).collect::<Vec<_>>(),
                "referrers_tag_fallback": p.referrers_tag_fallback,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("published {} {} ({}, {}) to {}:{}", p.name, p.version, p.target, p.precision, repo.describe(), p.tag);
            println!("  artifact {}  manifest {}  index {}", p.artifact_digest, p.manifest_digest, p.index_digest);
            println!(
                "  {} blob(s) uploaded, {} already there; {} referrer(s){}",
                p.uploaded,
                p.skipped,
                p.referrers.len(),
                if p.referrers_tag_fallback { " (referrers tag fallback: the registry has no referrers API)" } else { "" }
            );
        }
    }
    Ok(())
}

/// Now as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Every target of NAME:VERSION in the local store, pulled (verified) into folders under `tmp`.
fn from_store(a: &Args, tmp: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = a.artifact.to_string_lossy();
    let Ok(kiln_registry::Reference::Local { name, tag: Some(tag) }) = kiln_registry::parse_reference(&text) else {
        anyhow::bail!("{text} does not exist (give an artifact folder, its .tar, or NAME:VERSION from `kiln ls`)");
    };
    let store = a.store.open()?;
    let repo = store.repo(&name);
    let mut targets: Vec<String> = store.list()?.into_iter().filter(|e| e.name == name && e.tag == tag).map(|e| e.target).collect();
    targets.dedup();
    anyhow::ensure!(!targets.is_empty(), "{text} is not in the local store {} (see `kiln ls`)", store.root().display());
    let mut dirs = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let dir = tmp.join(format!("{i}.kiln"));
        let opts = kiln_registry::PullOptions { target: Some(t.clone()), ..Default::default() };
        kiln_registry::pull(&repo, &tag, &dir, &opts).with_context(|| format!("cannot read {text} ({t}) from the local store"))?;
        dirs.push(dir);
    }
    Ok(dirs)
}
