//! clustersmith: form, verify and diagnose Redis / Valkey clusters.

mod args;
mod commands;
mod exit;
mod output;
mod render;
mod target;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command, SandboxCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // redis-rs builds rustls configs without naming a provider; exactly one is installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLUSTERSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Plan(args) => commands::plan_cmd(args).await,
            Command::Apply(args) => commands::apply_cmd(args).await,
            Command::Verify(args) => commands::verify_cmd(args).await,
            Command::Diagnose(args) => commands::diagnose_cmd(args).await,
            Command::Explain(args) => commands::explain_cmd(args),
            Command::Sandbox(SandboxCommand::Up(args)) => commands::sandbox_up(args).await,
            Command::Sandbox(SandboxCommand::Down(args)) => commands::sandbox_down(args),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
            for cause in &causes {
                eprintln!("  caused by: {cause}");
            }
            if let Some(command) = cli.command.json_name() {
                output::outln!(
                    "{}",
                    render::error_json(
                        command,
                        exit::ERROR,
                        &err.to_string(),
                        &serde_json::json!({ "causes": causes })
                    )
                );
            }
            ExitCode::from(exit::ERROR)
        }
    }
}
