//! `diagnose` at scale: N live nodes (formed by `clustersmith apply`, half primaries), given
//! with every node's redis.conf, nodes.conf and server log, where some of the logs are grown
//! to a size of a long-lived node's (lines of the servers' own wording: saves, replicas
//! reconnecting, peers marked failing and cleared, a replica's refused connections).
//!
//! Each run is timed from spawn to exit, with the run's peak RSS (sampled `VmHWM`), its own
//! CPU time, the servers' CPU time meanwhile (what diagnose's requests cost them), and this
//! bench's CPU time meanwhile (its sampler: its own overhead).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::nodes::Nodes;
use crate::run::{Binaries, wait_sampled};

pub struct Options {
    pub nodes: usize,
    /// Size each grown log reaches, in MB.
    pub log_mb: usize,
    /// How many of the nodes' logs are grown (the others keep what their server wrote).
    pub grown: Vec<usize>,
    pub reps: usize,
    pub base_port: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub nodes: usize,
    pub grown_logs: usize,
    /// Bytes of evidence files given (redis.conf + nodes.conf + logs), in MB.
    pub files_mb: f64,
    pub wall_s: f64,
    pub peak_rss_mb: f64,
    pub cpu_s: f64,
    /// The servers' CPU time during the run beyond their idle rate (measured for 3 s
    /// before the runs): what diagnose's requests cost them.
    pub servers_cpu_s: Option<f64>,
    pub bench_cpu_ms: Option<f64>,
    pub exit_code: Option<i32>,
    /// The report's worst severity (a formed cluster: none, or info for the logs' warnings).
    pub worst: Option<String>,
    pub findings: usize,
}

/// The lines a grown log repeats (Redis 7.0 wording), `{}` filled per line.
const LINES: &[&str] = &[
    "* Background saving started by pid {}",
    "* DB saved on disk",
    "* Background saving terminated with success",
    "* 100 changes in 300 seconds. Saving...",
    "* Replica 127.0.0.1:{} asks for synchronization",
    "* Partial resynchronization request from 127.0.0.1:{} accepted. Sending 0 bytes of backlog starting from offset {}.",
    "# Connection with replica 127.0.0.1:{} lost.",
    "* Marking node {} as failing (quorum reached).",
    "* Clear FAIL state for node {}: replica is reachable again.",
    "# Cluster state changed: fail",
    "# Cluster state changed: ok",
    "# Error condition on socket for SYNC: Connection refused",
];

/// Appends lines to `log` until it holds `mb` MB: deterministic (a fixed LCG), timestamps
/// moving forward by 37 ms a line.
fn grow_log(log: &Path, mb: usize) -> anyhow::Result<()> {
    let target = (mb * 1024 * 1024) as u64;
    let mut size = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut out = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .with_context(|| format!("cannot open `{}`", log.display()))?,
    );
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        seed >> 33
    };
    let mut ms: u64 = 0;
    while size < target {
        let template = LINES[(next() % LINES.len() as u64) as usize];
        let mut text = String::new();
        for (i, part) in template.split("{}").enumerate() {
            if i > 0 {
                text.push_str(&(next() % 100_000).to_string());
            }
            text.push_str(part);
        }
        let line = format!(
            "4242:M 02 Dec 2026 {:02}:{:02}:{:02}.{:03} {text}\n",
            ms / 3_600_000 % 24,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        );
        out.write_all(line.as_bytes())?;
        size += line.len() as u64;
        ms += 37;
    }
    out.flush()?;
    Ok(())
}

/// This process's CPU time so far (user + system), in ms.
fn own_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1000.0 / crate::nodes::clock_ticks_per_second()? as f64)
}

pub fn run_all(bins: &Binaries, options: &Options) -> anyhow::Result<Vec<Sample>> {
    let n = options.nodes;
    anyhow::ensure!(
        n >= 2 && n.is_multiple_of(2),
        "--nodes must be even (half primaries)"
    );
    let nodes = Nodes::start(&bins.server, n, options.base_port, 5000)?;
    let addrs = nodes.addrs();
    let formed = Command::new(&bins.clustersmith)
        .args([
            "apply",
            "-m",
            &(n / 2).to_string(),
            "-r",
            "1",
            "--timeout",
            "300",
        ])
        .args(&addrs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(
        formed.success(),
        "clustersmith apply could not form the {n} nodes"
    );
    // What the formed cluster's gossip costs the servers with nobody asking anything: the
    // part of their CPU time during a run that is not diagnose's doing.
    let idle_before = nodes.cpu_ms();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let idle_per_s = nodes
        .cpu_ms()
        .zip(idle_before)
        .map(|(a, b)| (a - b) / 3000.0);
    let dirs: Vec<PathBuf> = nodes.servers.iter().map(|s| s.dir.clone()).collect();
    let mut samples = Vec::new();
    let mut grown_so_far = 0;
    let mut grown_sorted = options.grown.clone();
    grown_sorted.sort_unstable();
    for grown in grown_sorted {
        for dir in dirs.iter().take(grown.min(n)).skip(grown_so_far) {
            grow_log(&dir.join("server.log"), options.log_mb)?;
        }
        grown_so_far = grown_so_far.max(grown.min(n));
        let mut args: Vec<String> = vec!["diagnose".into(), "--format".into(), "json".into()];
        args.extend(["--fail-on".into(), "never".into()]);
        let mut files_bytes = 0u64;
        for dir in &dirs {
            for (flag, file) in [
                ("--redis-conf", "redis.conf"),
                ("--nodes-conf", "nodes.conf"),
                ("--log", "server.log"),
            ] {
                let path = dir.join(file);
                files_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                args.push(flag.into());
                args.push(path.display().to_string());
            }
        }
        args.extend(["-m".into(), (n / 2).to_string(), "-r".into(), "1".into()]);
        args.extend(addrs.iter().cloned());
        for _ in 0..options.reps {
            let out = tempfile::NamedTempFile::new()?;
            let servers_before = nodes.cpu_ms();
            let bench_before = own_cpu_ms();
            let started = Instant::now();
            let child = Command::new(&bins.clustersmith)
                .args(&args)
                .stdout(out.reopen()?)
                .stderr(Stdio::null())
                .spawn()?;
            let reaped = wait_sampled(child.id());
            let wall_s = started.elapsed().as_secs_f64();
            let bench_cpu_ms = own_cpu_ms().zip(bench_before).map(|(a, b)| a - b);
            let servers_cpu_s = nodes
                .cpu_ms()
                .zip(servers_before)
                .zip(idle_per_s)
                .map(|((a, b), idle)| ((a - b) / 1000.0 - idle * wall_s).max(0.0));
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.path())?)
                    .context("diagnose wrote no JSON report")?;
            samples.push(Sample {
                nodes: n,
                grown_logs: grown.min(n),
                files_mb: files_bytes as f64 / 1_048_576.0,
                wall_s,
                peak_rss_mb: reaped.max_rss_kb.unwrap_or(0) as f64 / 1024.0,
                cpu_s: reaped.cpu_ms.unwrap_or(0.0) / 1000.0,
                servers_cpu_s,
                bench_cpu_ms,
                exit_code: reaped.code,
                worst: report["worst"].as_str().map(str::to_owned),
                findings: report["findings"].as_array().map_or(0, Vec::len),
            });
        }
    }
    nodes.stop()?;
    Ok(samples)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One row per number of grown logs: medians (min–max) over the repetitions.
pub fn table(samples: &[Sample]) -> String {
    let mut text = String::from(
        "| nodes | grown logs | evidence files | wall | peak RSS | diagnose CPU | servers' CPU above idle | bench's CPU | worst finding |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut groups: Vec<usize> = samples.iter().map(|s| s.grown_logs).collect();
    groups.dedup();
    for grown in groups {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.grown_logs == grown).collect();
        let wall: Vec<f64> = of.iter().map(|s| s.wall_s).collect();
        let (lo, hi) = (
            wall.iter().copied().fold(f64::MAX, f64::min),
            wall.iter().copied().fold(0.0, f64::max),
        );
        text.push_str(&format!(
            "| {} | {grown} | {:.0} MB | {:.2} s ({lo:.2}–{hi:.2}) | {:.0} MB | {:.2} s | {} | {} | {} |\n",
            of[0].nodes,
            of[0].files_mb,
            median(wall.clone()),
            of.iter().map(|s| s.peak_rss_mb).fold(0.0, f64::max),
            median(of.iter().map(|s| s.cpu_s).collect()),
            of.iter()
                .filter_map(|s| s.servers_cpu_s)
                .map(|c| format!("{c:.2} s"))
                .next_back()
                .unwrap_or_else(|| "?".into()),
            of.iter()
                .filter_map(|s| s.bench_cpu_ms)
                .map(|c| format!("{c:.0} ms"))
                .next_back()
                .unwrap_or_else(|| "?".into()),
            of[0].worst.as_deref().unwrap_or("none"),
        ));
    }
    text
}

pub fn write(samples: &[Sample], bins: &Binaries, out: &Path) -> anyhow::Result<()> {
    crate::run::write_samples(&samples, table(samples), bins, out)
}
