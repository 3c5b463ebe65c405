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
use crate::output::errln;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // redis-rs builds rustls configs without naming a provider; exactly one is installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let json = cli.command.json_name().is_some();
    if json {
        output::use_json_stderr();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLUSTERSMITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(output::stderr_colour())
        .with_writer(|| output::TracingWriter);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            errln!("error: failed to start the async runtime: {err}");
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
            errln!("error: {err}");
            let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
            for cause in &causes {
                errln!("  caused by: {cause}");
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
