use std::path::PathBuf;

/// Check an artifact: print its digest, check every file against the manifest, the signature
/// over the digest and every attestation beside it (signature, and that it names this
/// artifact). Names exactly what changed; exits non-zero if anything did.
///
/// Example: kiln verify model.kiln --key keys/release.pub
#[derive(clap::Args)]
pub struct Args {
    /// An artifact folder, or a .tar archive written by `kiln compile --archive`.
    artifact: PathBuf,
    /// The public key the artifact must be signed with (from `kiln keygen`).
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// Print every check, not only failures.
    #[arg(long, short)]
    verbose: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let key = a.key.as_deref().map(kiln_artifact::read_public_key).transpose()?;
    let tmp;
    let dir = if a.artifact.is_file() {
        tmp = tempfile::tempdir()?;
        kiln_artifact::unpack(&a.artifact, tmp.path())?
    } else {
        a.artifact.clone()
    };
    let r = kiln_artifact::verify(&dir, key.as_ref())?;
    if a.json {
        let v = serde_json::json!({
            "artifact": a.artifact.display().to_string(),
            "digest": r.digest,
            "ok": r.ok(),
            "checks": r.checks.iter().map(|c| serde_json::json!({"ok": c.ok, "what": c.what})).collect::<Vec<_>>(),
            "notes": r.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", r.digest);
        for c in &r.checks {
            if !c.ok {
                println!("FAILED {}", c.what);
            } else if a.verbose {
                println!("ok     {}", c.what);
            }
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        let failed = r.failures().count();
        if failed == 0 {
            println!("verified: {} checks passed", r.checks.len());
        }
    }
    if !r.ok() {
        anyhow::bail!("{} does not verify: {}", a.artifact.display(), r.failures().map(|c| c.what.as_str()).collect::<Vec<_>>().join("; "));
    }
    Ok(())
}
