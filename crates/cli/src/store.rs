//! Where artifacts go: the local store (an OCI image layout) and registries. Shared by
//! `compile`, `publish`, `pull` and `ls`.

use anyhow::Context;
use kiln_registry::{Credentials, LocalStore, Reference, Remote, RemoteOptions, RemoteRef, Repository};
use std::io::Read;
use std::path::{Path, PathBuf};

/// How to reach a registry.
#[derive(clap::Args, Clone, Debug)]
pub struct RemoteArgs {
    /// Talk plain HTTP to the registry (only for a registry you know to be on a trusted network).
    #[arg(long)]
    insecure: bool,
    /// Registry user name (the password is read from stdin: --password-stdin). Without it,
    /// credentials come from the docker config.json ($DOCKER_CONFIG or ~/.docker).
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Read the password (with --username) or a bearer token (without) from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Retries on 5xx, 429 and dropped connections, with exponential backoff.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Upload blobs larger than this in chunks of this size (e.g. 16MiB, 512KiB).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    chunk_size: u64,
}

/// The local store folder (--store / $KILN_STORE).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// The local OCI store (default: $KILN_STORE, else ~/.local/share/kiln/store).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<LocalStore> {
        let p = self.store.clone().unwrap_or_else(kiln_registry::default_store_path);
        LocalStore::open(&p).with_context(|| format!("cannot open the local store {}", p.display()))
    }
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| format!("'{s}' is not a size like 16MiB, 512KiB or 1048576"))?;
    let mult = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("'{s}': unknown unit '{u}' (B, KiB, MiB, GiB)")),
    };
    n.checked_mul(mult).filter(|v| *v > 0).ok_or_else(|| format!("'{s}' is out of range"))
}

fn read_stdin_secret() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("cannot read the secret from stdin")?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!s.is_empty(), "--password-stdin: stdin was empty");
    Ok(s)
}

impl RemoteArgs {
    pub fn open(&self, r: &RemoteRef) -> anyhow::Result<Remote> {
        let credentials = match (&self.username, self.password_stdin) {
            (Some(u), true) => Credentials::Basic { username: u.clone(), password: read_stdin_secret()? },
            (Some(_), false) => anyhow::bail!("--username needs --password-stdin (the password is never taken as a flag)"),
            (None, true) => Credentials::Bearer(read_stdin_secret()?),
            (None, false) => kiln_registry::lookup_credentials(&r.registry),
        };
        Ok(Remote::new(
            r,
            RemoteOptions { insecure: self.insecure, credentials, retries: self.retries, chunk_size: self.chunk_size, ..Default::default() },
        ))
    }
}

/// Opens what a reference names: (the repository, the tag or digest in it, a printable name).
pub fn open(reference: &str, remote: &RemoteArgs, store: &StoreArgs) -> anyhow::Result<(Box<dyn Repository>, Option<String>)> {
    match kiln_registry::parse_reference(reference)? {
        Reference::Remote(r) => {
            let tag = r.reference().map(String::from);
            Ok((Box::new(remote.open(&r)?), tag))
        }
        Reference::Local { name, tag } => Ok((Box::new(store.open()?.repo(&name)), tag)),
    }
}

/// Stores a freshly written artifact in the local store under NAME:VERSION.
pub fn store_artifact(store: &LocalStore, artifact: &Path) -> anyhow::Result<kiln_registry::Published> {
    let name = crate::artifact::read_manifest(artifact)?.0.name;
    let repo = store.repo(&store_name(&name));
    Ok(kiln_registry::publish(&repo, artifact, &kiln_registry::PublishOptions::default())?)
}

/// An artifact name as a store repository name (lower case; other characters as '-').
pub fn store_name(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' }).collect();
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if s.is_empty() { "artifact".into() } else { s }
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
