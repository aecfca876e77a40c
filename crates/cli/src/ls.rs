use crate::store::{StoreArgs, human_bytes};

/// List the artifacts in the local store (where `kiln compile` puts them): name, version,
/// target, precision, size and artifact digest, one line per target of each version.
///
/// Example: kiln ls
/// Example: kiln ls --store /srv/kiln-store --json
#[derive(clap::Args)]
pub struct Args {
    /// Only this name.
    name: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let store = a.store.open()?;
    let entries: Vec<_> = store.list()?.into_iter().filter(|e| a.name.as_deref().is_none_or(|n| e.name == n)).collect();
    if a.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| serde_json::json!({"name": e.name, "version": e.version, "tag": e.tag, "target": e.target, "precision": e.precision, "bytes": e.bytes, "digest": e.digest, "manifest": e.manifest_digest}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"store": store.root().display().to_string(), "artifacts": v}))?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("{}: empty (kiln compile stores what it builds here)", store.root().display());
        return Ok(());
    }
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| [e.name.clone(), e.version.clone(), e.target.clone(), e.precision.clone(), human_bytes(e.bytes), e.digest.clone()])
        .collect();
    let head = ["NAME", "VERSION", "TARGET", "PRECISION", "SIZE", "DIGEST"];
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: &[&str]| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string();
    println!("{}", line(&head));
    for r in &rows {
        println!("{}", line(&r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    Ok(())
}
