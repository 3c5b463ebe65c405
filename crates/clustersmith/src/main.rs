//! clustersmith: form, verify and diagnose Redis / Valkey clusters.

mod args;
mod commands;
mod exit;
mod output;
mod render;
mod target;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::Cli;
use crate::output::errln;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return argument_error(err),
    };
    // redis-rs builds rustls configs without naming a provider; exactly one is installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let command = cli.command.runner();
    let json = command.json();
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
    let result = runtime.block_on(command.run());
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            errln!("error: {err}");
            let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
            for cause in &causes {
                errln!("  caused by: {cause}");
            }
            if json {
                let mut doc =
                    render::json::ErrorDoc::new(command.name(), exit::ERROR, &err.to_string());
                doc.causes = Some(causes);
                output::outln!("{}", render::json::to_text(&doc));
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
    let mut doc = render::json::ErrorDoc::new(command, exit::ERROR, &headline);
    doc.usage = Some(rendered.trim_end().to_owned());
    output::outln!("{}", render::json::to_text(&doc));
    errln!("{}", rendered.trim_end());
    ExitCode::from(exit::ERROR)
}
