//! `kiln`: the command-line front end. The only crate that prints, parses flags or exits.

mod bench;
mod compile;
mod export;
mod inputs;
mod inspect;
mod load;
mod run;

use clap::{Parser, Subcommand};

/// Kiln compiles trained models (ONNX, or Hugging Face safetensors checkpoints) into measured,
/// deployable artifacts.
///
/// Start with `kiln inspect MODEL` to see what a model needs and whether Kiln supports every op,
/// `kiln run MODEL --random` to execute it on Kiln's reference executor, then
/// `kiln compile MODEL --target cpu -o DIR` and `kiln bench DIR --random` for a compiled plan;
/// `kiln export MODEL -o out.onnx` writes a model (e.g. one built from safetensors) as ONNX.
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
    Compile(compile::Args),
    Bench(bench::Args),
    Export(export::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::main(a),
        Command::Run(a) => run::main(a),
        Command::Compile(a) => compile::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Export(a) => export::main(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
