//! `clustersmith-load --seed HOST:PORT --rate 1000 --duration 30`: writes to a cluster for a
//! bounded time, reads every acknowledged write back, and prints the report as JSON (see the
//! library's documentation). The password, if any, comes from `REDISCLI_AUTH`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clustersmith_load::{Load, LoadOptions};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A node to read the slot map from (repeatable).
    #[arg(long = "seed", required = true)]
    seeds: Vec<String>,
    /// Writes per second over the whole cluster.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to write, in seconds (at most an hour).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// ACL user.
    #[arg(long)]
    user: Option<String>,
    /// Key prefix.
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !(0.0..=3600.0).contains(&cli.duration) {
        anyhow::bail!("--duration must be between 0 and 3600 seconds");
    }
    let mut options = LoadOptions::new(cli.seeds, cli.rate);
    options.user = cli.user;
    options.password = std::env::var("REDISCLI_AUTH").ok();
    options.prefix = cli.prefix;
    let load = Load::start(options)?;
    std::thread::sleep(Duration::from_secs_f64(cli.duration));
    let report = load.finish()?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = cli.out {
        std::fs::write(out, &text)?;
    }
    println!("{text}");
    eprintln!("{}", report.summary());
    Ok(())
}
