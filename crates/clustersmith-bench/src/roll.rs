//! `clustersmith-bench roll`: a rolling restart, planned against naive, side by side on
//! identical fresh sandboxes under the same independent write load (`clustersmith-load`,
//! every acknowledged write read back).
//!
//! - `planned`: `clustersmith sandbox roll` (replicas first, each primary after a
//!   coordinated handoff, each node back before the next).
//! - `naive`: the same nodes in the same order, as a `systemctl restart` loop does them:
//!   SIGTERM, wait until the process is gone, start it again, wait until every node says
//!   `cluster_state:ok` again. No handoff.
//!
//! Reported per run: each shard's longest write gap (p50 and max over the shards), writes
//! that failed (given up after the load's 10 s write timeout), client errors by kind (each
//! retried by the load; redirections it follows are not errors), acknowledged writes lost,
//! and the total time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::run::{Binaries, server_version};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Planned,
    Naive,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub mode: Mode,
    pub nodes: usize,
    pub rep: usize,
    pub rate: u32,
    /// From the first restart's start until the last node was back.
    pub total_ms: f64,
    pub exit_code: Option<i32>,
    /// Each shard's longest write gap, in ms, in the load's shard order.
    pub gaps_ms: Vec<f64>,
    pub acked: u64,
    pub failed: u64,
    pub lost: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
}

pub struct Options {
    pub sizes: Vec<usize>,
    pub modes: Vec<Mode>,
    pub reps: usize,
    pub rate: u32,
    pub base_port: u16,
}

/// The longest a naive restart may take to come back before the run gives up.
const RECOVER_DEADLINE: Duration = Duration::from_secs(120);

pub fn run_all(bins: &Binaries, options: &Options) -> anyhow::Result<Vec<Sample>> {
    eprintln!("server: {}", server_version(&bins.server));
    let mut samples = Vec::new();
    for &nodes in &options.sizes {
        anyhow::ensure!(
            nodes >= 2 && nodes.is_multiple_of(2),
            "sizes are even: half primaries, one replica each"
        );
        for rep in 1..=options.reps {
            for &mode in &options.modes {
                let sample = measure(bins, options, nodes, rep, mode)?;
                eprintln!(
                    "{mode:?} N={nodes} rep {rep}: {:.1} s, gaps {:?} ms, failed {}, lost {}, errors {:?}",
                    sample.total_ms / 1000.0,
                    sample.gaps_ms.iter().map(|g| g.round()).collect::<Vec<_>>(),
                    sample.failed,
                    sample.lost,
                    sample.errors
                );
                samples.push(sample);
            }
        }
    }
    Ok(samples)
}

fn measure(
    bins: &Binaries,
    options: &Options,
    nodes: usize,
    rep: usize,
    mode: Mode,
) -> anyhow::Result<Sample> {
    let dir = tempfile::tempdir()?;
    let sandbox = dir.path().join("sb");
    let up = Command::new(&bins.clustersmith)
        .args(["sandbox", "up", "--dir"])
        .arg(&sandbox)
        .args(["-m", &(nodes / 2).to_string(), "-r", "1"])
        .args(["--base-port", &options.base_port.to_string()])
        .arg("--server-bin")
        .arg(&bins.server)
        .output()?;
    anyhow::ensure!(
        up.status.success(),
        "sandbox up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let ports: Vec<u16> = (0..nodes as u16).map(|i| options.base_port + i).collect();
    let result = (|| {
        let load = clustersmith_load::Load::start(clustersmith_load::LoadOptions::new(
            ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            options.rate,
        ))?;
        anyhow::ensure!(
            load.wait_for_writes(100, Duration::from_secs(10)),
            "the load did not get going"
        );
        let started = Instant::now();
        let exit_code = match mode {
            Mode::Planned => Command::new(&bins.clustersmith)
                .args(["sandbox", "roll", "--dir"])
                .arg(&sandbox)
                .output()?
                .status
                .code(),
            Mode::Naive => {
                naive_roll(&bins.server, &sandbox, &ports)?;
                Some(0)
            }
        };
        let total = started.elapsed();
        // Writes go on a little after the roll, so that a gap at its very end shows.
        load.wait_for_writes(u64::from(options.rate / 5), Duration::from_secs(10));
        let report = load.finish()?;
        Ok(Sample {
            mode,
            nodes,
            rep,
            rate: options.rate,
            total_ms: total.as_secs_f64() * 1000.0,
            exit_code,
            gaps_ms: report.shards.iter().map(|s| s.longest_gap_ms).collect(),
            acked: report.acked,
            failed: report.failed,
            lost: report.lost,
            errors: report.errors,
        })
    })();
    let down = Command::new(&bins.clustersmith)
        .args(["sandbox", "down", "--dir"])
        .arg(&sandbox)
        .output()?;
    if !down.status.success() {
        eprintln!(
            "sandbox down: {}",
            String::from_utf8_lossy(&down.stderr).trim()
        );
    }
    result
}

/// Each node in the planned roll's order (replicas, then primaries, each by port): SIGTERM,
/// start again from its redis.conf, wait until every node says `cluster_state:ok`.
fn naive_roll(server: &Path, sandbox: &Path, ports: &[u16]) -> anyhow::Result<()> {
    let mut order: Vec<(bool, u16)> = ports
        .iter()
        .map(|p| Ok((role(*p)? == "master", *p)))
        .collect::<anyhow::Result<_>>()?;
    order.sort();
    for (_, port) in order {
        let node_dir: PathBuf = sandbox.join(format!("node-{port}"));
        let pid: u32 = std::fs::read_to_string(node_dir.join("server.pid"))?
            .trim()
            .parse()?;
        clustersmith_io::sandbox::stop_server(pid);
        let status = Command::new(server)
            .arg(node_dir.join("redis.conf"))
            .current_dir(&node_dir)
            .status()?;
        anyhow::ensure!(status.success(), "{port} did not start again");
        let deadline = Instant::now() + RECOVER_DEADLINE;
        while !ports.iter().all(|p| cluster_ok(*p)) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the cluster did not recover from restarting {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

fn connection(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_connection_with_timeout(Duration::from_secs(1))
}

fn role(port: u16) -> anyhow::Result<String> {
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut connection(port)?)?;
    text.lines()
        .find_map(|l| l.strip_prefix("role:"))
        .map(|r| r.trim().to_owned())
        .with_context(|| format!("no role in INFO of {port}"))
}

fn cluster_ok(port: u16) -> bool {
    connection(port)
        .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
        .is_ok_and(|text| text.contains("cluster_state:ok"))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub fn write(samples: &[Sample], bins: &Binaries, out: &Path) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = serde_json::json!({
        "server": server_version(&bins.server),
        "samples": samples,
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// The Markdown table: one row per run, then the naive/planned ratios per size.
pub fn table(samples: &[Sample]) -> String {
    let mut text = String::from(
        "| N | roll | rep | longest write gap per shard, p50 / max (ms) | failed writes | client errors | lost | total (s) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for s in samples {
        let errors = if s.errors.is_empty() {
            "0".to_owned()
        } else {
            s.errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        text.push_str(&format!(
            "| {} | {:?} | {} | {:.0} / {:.0} | {} | {} | {} | {:.1} |\n",
            s.nodes,
            s.mode,
            s.rep,
            median(&s.gaps_ms),
            s.gaps_ms.iter().copied().fold(0.0, f64::max),
            s.failed,
            errors,
            s.lost,
            s.total_ms / 1000.0
        ));
    }
    let mut sizes: Vec<usize> = samples.iter().map(|s| s.nodes).collect();
    sizes.dedup();
    for n in sizes {
        let max_gap = |mode| {
            let gaps: Vec<f64> = samples
                .iter()
                .filter(|s| s.nodes == n && s.mode == mode)
                .map(|s| s.gaps_ms.iter().copied().fold(0.0, f64::max))
                .collect();
            median(&gaps)
        };
        let (planned, naive) = (max_gap(Mode::Planned), max_gap(Mode::Naive));
        if planned > 0.0 && naive > 0.0 {
            text.push_str(&format!(
                "\nN={n}: the naive roll's longest gap is {:.0}x the planned roll's ({naive:.0} ms against {planned:.0} ms, medians over reps).\n",
                naive / planned
            ));
        }
    }
    text
}
