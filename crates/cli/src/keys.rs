use std::path::PathBuf;

/// Generate an ed25519 key pair for signing artifacts: the secret key at PATH (mode 0600),
/// the public key at PATH.pub (give that to `kiln verify --key`).
///
/// Example: kiln keygen keys/release && kiln compile m.onnx -o m.kiln --sign keys/release
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the secret key (PATH.pub gets the public key).
    path: PathBuf,
}

pub fn main(a: Args) -> anyhow::Result<()> {
    let (pub_path, public) = kiln_artifact::keygen(&a.path)?;
    println!("secret key {} (keep it private)", a.path.display());
    println!("public key {} (key id {})", pub_path.display(), public.key_id());
    Ok(())
}
