use crate::store::{RemoteArgs, StoreArgs};
use anyhow::Context;
use std::path::PathBuf;

/// Pull an artifact from an OCI registry (or the local store) into a folder: picks the target's
/// manifest from the version's index, checks every blob against its digest and declared size,
/// refuses unsafe paths, fetches the signature, attestations and report beside it
/// (DIR.attestations/), and verifies the result before it replaces DIR.
///
/// Example: kiln pull registry.example.com/models/resnet:1.2.0 --target cpu -o resnet.kiln --key release.pub
/// Example: kiln pull resnet:1.2.0 -o resnet.kiln   (from the local store)
#[derive(clap::Args)]
pub struct Args {
    /// HOST[:PORT]/REPOSITORY:TAG or @sha256:DIGEST, or NAME:VERSION in the local store.
    reference: String,
    /// The target to pick when the version holds several.
    #[arg(long)]
    target: Option<String>,
    /// The folder to write (default: NAME-VERSION-TARGET.kiln in the current folder).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Refuse the artifact unless its signature verifies with this public key (`kiln keygen`).
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// Do not fetch the signature, attestations and report.
    #[arg(long, conflicts_with = "key")]
    no_evidence: bool,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let key = a.key.as_deref().map(kiln_artifact::read_public_key).transpose()?;
    let (repo, tag) = crate::store::open(&a.reference, &a.remote, &a.store)?;
    let tag = tag.with_context(|| format!("{}: give a version tag (REF:1.2.0) or a digest (REF@sha256:...)", a.reference))?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let (_, m) = kiln_registry::resolve(repo.as_ref(), &tag, a.target.as_deref())?;
            let name = m.annotations.get(kiln_registry::media::ANN_NAME).cloned().unwrap_or_else(|| "artifact".into());
            let target = m.annotations.get(kiln_registry::media::ANN_TARGET).cloned().unwrap_or_else(|| "any".into());
            PathBuf::from(crate::store::store_name(&format!("{name}-{}-{target}", kiln_registry::version_tag(&tag))) + ".kiln")
        }
    };
    let opts = kiln_registry::PullOptions { target: a.target.clone(), key, no_evidence: a.no_evidence };
    let p = kiln_registry::pull(repo.as_ref(), &tag, &out, &opts).with_context(|| format!("cannot pull {}", a.reference))?;
    if a.json {
        let v = serde_json::json!({
            "reference": a.reference, "output": p.dir.display().to_string(), "digest": p.artifact_digest, "manifest": p.manifest_digest,
            "name": p.name, "version": p.version, "target": p.target, "evidence_files": p.evidence_files, "verified_checks": p.report.checks.len(),
            "notes": p.report.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("pulled {} {} ({}) into {}", p.name, p.version, p.target, p.dir.display());
        println!("  artifact {}  manifest {}", p.artifact_digest, p.manifest_digest);
        println!("  verified: {} checks passed; {} evidence file(s)", p.report.checks.len(), p.evidence_files);
        for n in &p.report.notes {
            println!("  note: {n}");
        }
    }
    Ok(())
}
