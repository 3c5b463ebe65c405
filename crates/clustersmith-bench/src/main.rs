//! Formation benchmark: for each N, node-timeout and start mode, forms fresh nodes with
//! `clustersmith apply` and other fresh nodes with `redis-cli --cluster create`, and times
//! both with the same independent poller (never a tool's own claim).
//!
//! `cargo build --release --bins && target/release/clustersmith-bench` (see the README).

mod chart;
mod diagnose;
mod html_report;
mod nodes;
mod poller;
mod rebalance;
mod report;
mod roll;
mod run;
mod simulate;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::poller::Cadence;
use crate::run::{Binaries, Point, Start, Tool};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Redraw the chart from a result file.
    Chart {
        /// Result file written by a run.
        results: PathBuf,
        /// SVG to write.
        svg: PathBuf,
    },
    /// Times parse + plan + verify on simulated views of a formed and a half-formed cluster
    /// (no servers), each point in a child process of its own for its peak RSS.
    Simulate {
        /// Cluster sizes (even: half primaries, one replica each).
        #[arg(long, value_delimiter = ',', default_value = "100,300,1000")]
        sizes: Vec<usize>,
        /// Run one point in this process and print it as JSON (what the children do).
        #[arg(long, value_enum)]
        shape: Option<simulate::Shape>,
    },
    /// Moving slots with their keys: 3 -> 4 primaries (grow) and 4 -> 3 (drain), clustersmith
    /// against redis-cli on identical fresh clusters, timed by one poller.
    Rebalance {
        /// Keys of 64 bytes over all slots.
        #[arg(long, default_value_t = 1_000_000)]
        keys: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, value_enum, value_delimiter = ',', default_value = "grow,drain")]
        cases: Vec<rebalance::Case>,
        /// clustersmith's move engines to run (`auto`, `classic`, `atomic`).
        #[arg(long, value_delimiter = ',', default_value = "auto")]
        engines: Vec<String>,
        /// Skip redis-cli (no ratios then).
        #[arg(long)]
        no_redis_cli: bool,
        #[arg(long, default_value_t = 21001)]
        base_port: u16,
        #[command(flatten)]
        bins: BinArgs,
        /// Result file (JSON).
        #[arg(long, default_value = "bench/rebalance.json")]
        out: PathBuf,
        /// Print the table of an earlier result file instead of running.
        #[arg(long, value_name = "FILE")]
        table_of: Option<PathBuf>,
    },
    /// `diagnose` of N live nodes with every node's redis.conf, nodes.conf and log, some logs
    /// grown to a long-lived node's size: wall time, peak RSS, CPU (its own, the servers',
    /// this bench's).
    Diagnose {
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Size of each grown log, in MB.
        #[arg(long, default_value_t = 10)]
        log_mb: usize,
        /// How many logs are grown, one row each (cumulative: the same nodes' logs).
        #[arg(long, value_delimiter = ',', default_value = "1,100")]
        grown: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, default_value_t = 21001)]
        base_port: u16,
        #[command(flatten)]
        bins: BinArgs,
        /// Result file (JSON).
        #[arg(long, default_value = "bench/diagnose.json")]
        out: PathBuf,
    },
    /// `clustersmith report` of N live nodes: the HTML file's size and the run's wall time.
    HtmlReport {
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, default_value_t = 21001)]
        base_port: u16,
        #[command(flatten)]
        bins: BinArgs,
        /// Result file (JSON).
        #[arg(long, default_value = "bench/report.json")]
        out: PathBuf,
    },
    /// A rolling restart under a write load: `clustersmith sandbox roll` against a naive
    /// restart loop (SIGTERM, start, wait for cluster_state:ok; no handoff) on identical
    /// fresh sandboxes: per shard the longest write gap, failed writes, client errors, lost
    /// writes, total time.
    Roll {
        /// Cluster sizes (half primaries, one replica each).
        #[arg(long, value_delimiter = ',', default_value = "6,30")]
        sizes: Vec<usize>,
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "planned,naive"
        )]
        modes: Vec<roll::Mode>,
        #[arg(long, default_value_t = 1)]
        reps: usize,
        /// Writes per second of the load, over all slots.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 21001)]
        base_port: u16,
        #[command(flatten)]
        bins: BinArgs,
        /// Result file (JSON).
        #[arg(long, default_value = "bench/roll.json")]
        out: PathBuf,
    },
    /// Copy a result file's tables into a Markdown file, between `<!-- bench:begin -->` and
    /// `<!-- bench:end -->`.
    Readme {
        results: PathBuf,
        #[arg(default_value = "docs/benchmarks.md")]
        markdown: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Cluster sizes (half primaries, one replica each). 300 works too (ports stay below
    /// 32768 with their bus ports).
    #[arg(long, value_delimiter = ',', default_value = "6,30,100")]
    sizes: Vec<usize>,
    /// cluster-node-timeout values, in ms.
    #[arg(long, value_delimiter = ',', default_value = "5000,15000")]
    node_timeouts: Vec<u64>,
    /// How nodes start: `fresh` (formed at once) and/or `idle` (idle for --settle first).
    #[arg(long, value_delimiter = ',', default_value = "fresh,idle")]
    starts: Vec<String>,
    /// Idle time before forming, for `idle`.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Repetitions of every point.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Tools to run (`clustersmith`, `redis-cli`); both by default, for the ratios.
    #[arg(long, value_delimiter = ',', default_value = "clustersmith,redis-cli")]
    tools: Vec<String>,
    /// First port to use; node ports + 10000 must stay below 32768.
    #[arg(long, default_value_t = 21001)]
    base_port: u16,
    #[command(flatten)]
    bins: BinArgs,
    /// Shortest interval between the poller's rounds, in ms; 0 polls back to back (finest
    /// resolution, most load on the servers). Default: max(2 ms × N, 6.7 × the cheapest
    /// round's reads), which keeps the reads to ~15% of wall time when the servers are not
    /// busy (the report gives each sample's resolution and share of time spent reading).
    #[arg(long)]
    poll_interval_ms: Option<u64>,
    /// Result file (JSON).
    #[arg(long, default_value = "bench/results.json")]
    out: PathBuf,
    /// Chart of topology agreement against N (SVG), written from the results.
    #[arg(long, default_value = "bench/topology-agreement.svg")]
    chart: PathBuf,
}

/// The binaries a run uses.
#[derive(clap::Args)]
struct BinArgs {
    /// Server binary (default: redis-server, else valkey-server, on PATH).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// redis-cli binary (default: on PATH).
    #[arg(long)]
    redis_cli: Option<PathBuf>,
    /// clustersmith binary (default: next to this one).
    #[arg(long)]
    clustersmith: Option<PathBuf>,
}

impl BinArgs {
    fn resolve(&self) -> anyhow::Result<Binaries> {
        Ok(Binaries {
            server: clustersmith_io::sandbox::find_server_binary(self.server_bin.as_deref())?,
            clustersmith: self
                .clustersmith
                .clone()
                .or_else(|| run::sibling_binary("clustersmith"))
                .context("no clustersmith binary next to this one: run `cargo build --release --bins` first, or pass --clustersmith")?,
            redis_cli: self
                .redis_cli
                .clone()
                .or_else(|| run::find_on_path("redis-cli"))
                .context("redis-cli not found on PATH (apt-get install redis-tools), or pass --redis-cli")?,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Chart { results, svg }) => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("cannot read `{}`", results.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)?;
            let rows: Vec<report::Row> = serde_json::from_value(value["rows"].clone())?;
            write_chart(&rows, &svg)
        }
        Some(Command::Readme { results, markdown }) => write_readme(&results, &markdown),
        Some(Command::Diagnose {
            nodes,
            log_mb,
            grown,
            reps,
            base_port,
            bins,
            out,
        }) => {
            let bins = bins.resolve()?;
            let samples = diagnose::run_all(
                &bins,
                &diagnose::Options {
                    nodes,
                    log_mb,
                    grown,
                    reps,
                    base_port,
                },
            )?;
            diagnose::write(&samples, &bins, &out)?;
            print!("{}", diagnose::table(&samples));
            Ok(())
        }
        Some(Command::HtmlReport {
            nodes,
            reps,
            base_port,
            bins,
            out,
        }) => {
            let bins = bins.resolve()?;
            let samples = html_report::run_all(&bins, nodes, reps, base_port)?;
            html_report::write(&samples, &bins, &out)?;
            print!("{}", html_report::table(&samples));
            Ok(())
        }
        Some(Command::Rebalance {
            keys,
            reps,
            cases,
            engines,
            no_redis_cli,
            base_port,
            bins,
            out,
            table_of,
        }) => {
            if let Some(file) = table_of {
                print!("{}", rebalance::table(&rebalance::read(&file)?));
                return Ok(());
            }
            let samples = rebalance::run_all(
                &bins.resolve()?,
                &rebalance::Options {
                    keys,
                    reps,
                    cases,
                    engines,
                    with_redis_cli: !no_redis_cli,
                    base_port,
                },
            )?;
            rebalance::write(&samples, &out)?;
            print!("{}", rebalance::table(&samples));
            Ok(())
        }
        Some(Command::Roll {
            sizes,
            modes,
            reps,
            rate,
            base_port,
            bins,
            out,
        }) => {
            let bins = bins.resolve()?;
            let samples = roll::run_all(
                &bins,
                &roll::Options {
                    sizes,
                    modes,
                    reps,
                    rate,
                    base_port,
                },
            )?;
            roll::write(&samples, &bins, &out)?;
            print!("{}", roll::table(&samples));
            Ok(())
        }
        Some(Command::Simulate {
            sizes,
            shape: Some(shape),
        }) => {
            let &[n] = sizes.as_slice() else {
                anyhow::bail!("--shape runs one point: give one size");
            };
            println!("{}", serde_json::to_string(&simulate::run_point(n, shape))?);
            Ok(())
        }
        Some(Command::Simulate { sizes, shape: None }) => {
            let points = simulate::run_all(&sizes)?;
            print!("{}", simulate::table(&points));
            Ok(())
        }
        None => run_all(&cli.run),
    }
}

fn write_readme(results: &PathBuf, markdown: &PathBuf) -> anyhow::Result<()> {
    let value: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results)
            .with_context(|| format!("cannot read `{}`", results.display()))?,
    )?;
    let text = std::fs::read_to_string(markdown)
        .with_context(|| format!("cannot read `{}`", markdown.display()))?;
    let (begin, end) = ("<!-- bench:begin -->", "<!-- bench:end -->");
    let (head, rest) = text
        .split_once(begin)
        .context("no `<!-- bench:begin -->` marker")?;
    let (_, tail) = rest
        .split_once(end)
        .context("no `<!-- bench:end -->` marker")?;
    // Result files from before the poller measured itself (schema 1) have no cost table.
    let cost = value["cost_markdown"]
        .as_str()
        .map_or(String::new(), |c| format!("\n{c}"));
    let cadence = value["cadence"]
        .as_str()
        .map_or(String::new(), |c| format!("; poller cadence {c}"));
    let tables = format!(
        "Server: {}; {} CPUs; {} repetitions per point, median (min–max); idle nodes waited {} s{cadence}.\n\n{}\n{}{cost}",
        value["server"].as_str().unwrap_or("?"),
        value["cpus"],
        value["reps"],
        value["settle_s"],
        value["table_markdown"].as_str().unwrap_or(""),
        value["extras_markdown"].as_str().unwrap_or(""),
    );
    std::fs::write(markdown, format!("{head}{begin}\n{tables}{end}{tail}"))?;
    Ok(())
}

fn write_chart(rows: &[report::Row], svg: &PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = svg.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(svg, chart::svg(rows, "topology agreement", "fresh"))
        .with_context(|| format!("cannot write `{}`", svg.display()))?;
    eprintln!("chart: {}", svg.display());
    Ok(())
}

fn run_all(args: &RunArgs) -> anyhow::Result<()> {
    let bins = args.bins.resolve()?;
    let starts: Vec<Start> = args
        .starts
        .iter()
        .map(|s| match s.as_str() {
            "fresh" => Ok(Start::Fresh),
            "idle" => Ok(Start::Idle),
            other => Err(anyhow::anyhow!("unknown start `{other}` (fresh, idle)")),
        })
        .collect::<anyhow::Result<_>>()?;
    for tool in &args.tools {
        anyhow::ensure!(
            [Tool::Clustersmith, Tool::RedisCli]
                .iter()
                .any(|t| t.name() == tool),
            "unknown tool `{tool}` (clustersmith, redis-cli)"
        );
    }
    for n in &args.sizes {
        anyhow::ensure!(
            *n >= 2 && n % 2 == 0,
            "sizes must be even and at least 2, got {n}"
        );
    }
    let cadence = args.poll_interval_ms.map_or(Cadence::Auto, |ms| {
        Cadence::Every(Duration::from_millis(ms))
    });
    let server_version = run::server_version(&bins.server);
    eprintln!("server: {server_version}");
    let mut samples = Vec::new();
    for &nodes in &args.sizes {
        for &node_timeout_ms in &args.node_timeouts {
            for &start in &starts {
                for rep in 0..args.reps {
                    // Alternate which tool goes first, so neither always runs on a warmer machine.
                    let order = if rep % 2 == 0 {
                        [Tool::Clustersmith, Tool::RedisCli]
                    } else {
                        [Tool::RedisCli, Tool::Clustersmith]
                    };
                    for tool in order
                        .into_iter()
                        .filter(|t| args.tools.iter().any(|n| n == t.name()))
                    {
                        let point = Point {
                            tool,
                            nodes,
                            node_timeout_ms,
                            start,
                            settle: Duration::from_secs_f64(args.settle),
                            base_port: args.base_port,
                            cadence,
                        };
                        let sample = run::measure(&bins, &point, rep)?;
                        eprintln!(
                            "N={nodes:<4} nt={node_timeout_ms:<6} {start:<5?} rep {rep} {:<12} topology {} ok {} repl {} exit {:.2}s (code {:?}) | poller: {} rounds, {:.1}/s, every {:.0} ms (max {:.0}), reads {:.1} ms ({:.0}%), cpu {} | servers cpu {} forming, {} in all",
                            tool.name(),
                            seen(
                                sample.milestones.topology_ms,
                                sample.milestones.topology_window_ms
                            ),
                            seen(
                                sample.milestones.all_ok_ms,
                                sample.milestones.all_ok_window_ms
                            ),
                            seen(
                                sample.milestones.repl_up_ms,
                                sample.milestones.repl_up_window_ms
                            ),
                            sample.exit_ms / 1e3,
                            sample.exit_code,
                            sample.poll.rounds,
                            sample.poll.rounds_per_s,
                            sample.poll.round_ms,
                            sample.poll.round_max_ms,
                            sample.poll.read_ms,
                            sample.poll.read_share * 100.0,
                            ms(sample.poll.poller_cpu_ms),
                            ms(sample.servers_cpu_run_ms),
                            ms(sample.servers_cpu_ms),
                        );
                        samples.push(sample);
                    }
                }
            }
        }
    }
    let rows = report::rows(&samples);
    let table = report::table(&rows);
    let extras = report::extras(&samples);
    let cost = report::cost(&samples);
    println!("{table}\n{extras}\n{cost}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let result = json!({
        "schema_version": 2,
        "server": server_version,
        "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "settle_s": args.settle,
        "cadence": cadence.describe(),
        "reps": args.reps,
        "rows": rows,
        "samples": samples,
        "table_markdown": table,
        "extras_markdown": extras,
        "cost_markdown": cost,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)? + "\n")
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    eprintln!("results: {}", args.out.display());
    write_chart(&rows, &args.chart)?;
    // A sample the poller never saw formed, or a tool that failed, makes the run invalid.
    let failed = samples
        .iter()
        .filter(|s| !s.milestones.complete() || s.exit_code != Some(0))
        .count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} samples did not form a cluster (see the log above)",
        samples.len()
    );
    Ok(())
}

/// A milestone and how far before it may have happened (the round that saw it, back to the
/// start of the one before).
fn seen(at: Option<f64>, window: Option<f64>) -> String {
    match (at, window) {
        (Some(_), Some(w)) => format!("{} (-{w:.0}ms)", ms(at)),
        _ => ms(at),
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("never".to_owned(), |v| format!("{:.2}s", v / 1e3))
}
