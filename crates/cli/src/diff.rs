use crate::artifact::{read_manifest, read_statement};
use kiln_report::diff::{Side, diff, text};
use std::path::{Path, PathBuf};

/// Show what changed between two artifacts: precision, target, sizes, kernels, and (when both
/// were validated) accuracy, latency and cost.
///
/// Example: kiln diff old.kiln new.kiln
#[derive(clap::Args)]
pub struct Args {
    a: PathBuf,
    b: PathBuf,
    /// Show equal rows too.
    #[arg(long)]
    all: bool,
    /// Print a JSON array instead of text.
    #[arg(long)]
    json: bool,
}

/// The validation report attested beside an artifact, if any.
pub fn report_of(dir: &Path) -> anyhow::Result<Option<kiln_report::Report>> {
    Ok(match read_statement(dir, "validation.intoto.json")? {
        None => None,
        Some(s) => Some(serde_json::from_value(s.predicate)?),
    })
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let (ma, _) = read_manifest(&a.a)?;
    let (mb, _) = read_manifest(&a.b)?;
    let (ra, rb) = (report_of(&a.a)?, report_of(&a.b)?);
    let rows = diff(&Side { manifest: &ma, report: ra.as_ref() }, &Side { manifest: &mb, report: rb.as_ref() });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}  vs  {}", a.a.display(), a.b.display());
        print!("{}", text(&rows, a.all));
    }
    Ok(())
}
