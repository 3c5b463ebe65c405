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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return argument_error(err),
    };
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

/// Arguments clap refused. With `--format json` among them, the refusal is one JSON document
/// on stdout too (exit 2), as every other refusal is; help and version print as usual.
fn argument_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants_json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    if !wants_json
        || matches!(
            err.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        err.exit();
    }
    output::use_json_stderr();
    let rendered = err.render().to_string();
    let headline = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let command = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map_or("clustersmith", String::as_str);
    output::outln!(
        "{}",
        render::error_json(
            command,
            exit::ERROR,
            &headline,
            &serde_json::json!({ "usage": rendered.trim_end() })
        )
    );
    errln!("{}", rendered.trim_end());
    ExitCode::from(exit::ERROR)
}
