//! `clustersmith report` at scale: N live nodes formed by `clustersmith apply` (half
//! primaries), one report written per rep; the HTML file's size and the run's wall time
//! (spawn to exit: both reads of every node, diagnose, rendering, writing).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::nodes::Nodes;
use crate::run::Binaries;

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub nodes: usize,
    pub wall_s: f64,
    pub html_bytes: u64,
    pub exit_code: Option<i32>,
}

pub fn run_all(
    bins: &Binaries,
    nodes: usize,
    reps: usize,
    base_port: u16,
) -> anyhow::Result<Vec<Sample>> {
    anyhow::ensure!(
        nodes >= 2 && nodes.is_multiple_of(2),
        "--nodes must be even (half primaries)"
    );
    let servers = Nodes::start(&bins.server, nodes, base_port, 5000)?;
    let addrs = servers.addrs();
    let primaries = (nodes / 2).to_string();
    let formed = Command::new(&bins.clustersmith)
        .args(["apply", "-m", &primaries, "-r", "1", "--timeout", "300"])
        .args(&addrs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(
        formed.success(),
        "clustersmith apply could not form the {nodes} nodes"
    );
    let dir = tempfile::tempdir()?;
    let html = dir.path().join("report.html");
    let mut samples = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let status = Command::new(&bins.clustersmith)
            .args(["report", "-m", &primaries, "-r", "1", "--out"])
            .arg(&html)
            .args(&addrs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        samples.push(Sample {
            nodes,
            wall_s: started.elapsed().as_secs_f64(),
            html_bytes: std::fs::metadata(&html).map_or(0, |m| m.len()),
            exit_code: status.code(),
        });
    }
    servers.stop()?;
    Ok(samples)
}

pub fn table(samples: &[Sample]) -> String {
    let mut out =
        String::from("| nodes | wall (s) | HTML size (KiB) | exit |\n|---:|---:|---:|---:|\n");
    for s in samples {
        out.push_str(&format!(
            "| {} | {:.2} | {:.0} | {} |\n",
            s.nodes,
            s.wall_s,
            s.html_bytes as f64 / 1024.0,
            s.exit_code.map_or("killed".to_owned(), |c| c.to_string())
        ));
    }
    out
}

pub fn write(samples: &[Sample], bins: &Binaries, out: &Path) -> anyhow::Result<()> {
    crate::run::write_samples(&samples, table(samples), bins, out)
}
