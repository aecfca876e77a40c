//! `kiln`: the command-line front end. The only crate that prints, parses flags or exits.

mod artifact;
mod bench;
mod buildfile;
mod compile;
mod cost;
mod diff;
mod export;
mod inputs;
mod inspect;
mod keys;
mod load;
mod ls;
mod publish;
mod pull;
mod run;
mod store;
mod validate;
mod verify;

use clap::{Parser, Subcommand};

/// Kiln compiles trained models (ONNX, or Hugging Face safetensors checkpoints) into measured,
/// deployable artifacts.
///
/// Start with `kiln inspect MODEL` to see what a model needs and whether Kiln supports every op,
/// `kiln run MODEL --random` to execute it on Kiln's reference executor, then
/// `kiln compile MODEL --target cpu -o DIR` (an artifact, validated) and `kiln bench DIR --random`;
/// `kiln verify DIR` checks an artifact, `kiln validate` re-measures it, `kiln diff A B` compares two;
/// `kiln export MODEL -o out.onnx` writes a model (e.g. one built from safetensors) as ONNX;
/// `kiln compile` also keeps each artifact in the local OCI store (`kiln ls`), `kiln publish DIR
/// REGISTRY/REPO:VERSION` pushes one to an OCI registry and `kiln pull REF --target T` fetches it.
#[derive(Parser)]
#[command(name = "kiln", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Inspect(inspect::Args),
    Run(run::Args),
    Compile(Box<compile::Args>),
    Bench(bench::Args),
    Export(export::Args),
    Keygen(keys::Args),
    Verify(verify::Args),
    Validate(validate::Args),
    Diff(diff::Args),
    Publish(publish::Args),
    Pull(pull::Args),
    Ls(ls::Args),
}

/// Tensors' data 64-byte aligned (cache lines, AVX-512 registers): see kiln_target_cpu::alloc.
#[global_allocator]
static ALLOC: kiln_target_cpu::alloc::Aligned = kiln_target_cpu::alloc::Aligned;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::main(a),
        Command::Run(a) => run::main(a),
        Command::Compile(a) => compile::main(*a),
        Command::Bench(a) => bench::main(a),
        Command::Export(a) => export::main(a),
        Command::Keygen(a) => keys::main(a),
        Command::Verify(a) => verify::main(a),
        Command::Validate(a) => validate::main(a),
        Command::Diff(a) => diff::main(a),
        Command::Publish(a) => publish::main(a),
        Command::Pull(a) => pull::main(a),
        Command::Ls(a) => ls::main(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<validate::GatesFailed>().is_some() => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
