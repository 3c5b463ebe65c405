//! One measurement: fresh nodes, one tool, one independent poller.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::nodes::Nodes;
use crate::poller::{Cadence, Milestones, PollStats, Poller};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Clustersmith,
    RedisCli,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Clustersmith => "clustersmith",
            Tool::RedisCli => "redis-cli",
        }
    }
}

/// How the nodes were started: formed at once, or idle first (the BOSH case: the deploy
/// starts the jobs, and post-deploy runs later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    Fresh,
    Idle,
}

pub struct Binaries {
    pub server: PathBuf,
    pub clustersmith: PathBuf,
    pub redis_cli: PathBuf,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    pub tool: Tool,
    pub nodes: usize,
    pub node_timeout_ms: u64,
    pub start: Start,
    pub rep: usize,
    #[serde(flatten)]
    pub milestones: Milestones,
    /// What the poller did and cost: rounds, resolution, its own CPU time.
    #[serde(flatten)]
    pub poll: PollStats,
    /// The servers' CPU time (user + system, all N summed, from `/proc/PID/stat`) from the
    /// tool's start until both the tool and the poller were done: forming, plus serving the
    /// poller's reads.
    pub servers_cpu_run_ms: Option<f64>,
    /// The servers' CPU time over their whole life, read just before stopping them: start,
    /// idle wait, forming, polling and `verify`.
    pub servers_cpu_ms: Option<f64>,
    /// When the tool exited, and how.
    pub exit_ms: f64,
    pub exit_code: Option<i32>,
    pub peak_rss_kb: Option<i64>,
    /// `clustersmith verify` on the formed cluster (clustersmith runs only).
    pub verify_ms: Option<f64>,
    pub verify_exit_code: Option<i32>,
}

pub struct Point {
    pub tool: Tool,
    pub nodes: usize,
    pub node_timeout_ms: u64,
    pub start: Start,
    pub settle: Duration,
    pub base_port: u16,
    pub cadence: Cadence,
}

/// How long the poller waits for a formed cluster before giving up on a sample.
const POLL_DEADLINE: Duration = Duration::from_secs(180);

pub fn measure(bins: &Binaries, point: &Point, rep: usize) -> anyhow::Result<Sample> {
    let nodes = Nodes::start(
        &bins.server,
        point.nodes,
        point.base_port,
        point.node_timeout_ms,
    )?;
    if point.start == Start::Idle {
        std::thread::sleep(point.settle);
    }
    let addrs = nodes.addrs();
    let primaries = point.nodes / 2;
    let poller = Poller::connect(&addrs, primaries, point.cadence)?;
    let mut cmd = match point.tool {
        Tool::Clustersmith => {
            let mut cmd = Command::new(&bins.clustersmith);
            cmd.args(["apply", "--primaries", &primaries.to_string()])
                .args(["--replicas", "1", "--timeout", "170"])
                .args(&addrs);
            cmd
        }
        Tool::RedisCli => {
            let mut cmd = Command::new(&bins.redis_cli);
            cmd.args(["--cluster", "create"]).args(&addrs).args([
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ]);
            cmd
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());

    let cpu_before = nodes.cpu_ms();
    let start = Instant::now();
    let polling = std::thread::spawn(move || poller.run(start, POLL_DEADLINE));
    let child = cmd.spawn()?;
    // Sampled: wait4's figure would carry this bench's own resident size (its poller's state
    // for N nodes) into the child's.
    let (exit_code, peak_rss_kb) = wait_with_sampled_peak_rss(child.id());
    let exit_ms = start.elapsed().as_secs_f64() * 1000.0;
    let (milestones, poll) = polling
        .join()
        .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
    let servers_cpu_run_ms = cpu_before
        .zip(nodes.cpu_ms())
        .map(|(before, after)| after - before);

    let (verify_ms, verify_exit_code) = if point.tool == Tool::Clustersmith && milestones.complete()
    {
        let started = Instant::now();
        let status = Command::new(&bins.clustersmith)
            .args(["verify", "--primaries", &primaries.to_string()])
            .args(&addrs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        (
            Some(started.elapsed().as_secs_f64() * 1000.0),
            status.code(),
        )
    } else {
        (None, None)
    };
    let servers_cpu_ms = nodes.cpu_ms();
    // Gone (reaped, ports free) before the next sample starts, or the run stops here.
    nodes.stop()?;
    Ok(Sample {
        tool: point.tool,
        nodes: point.nodes,
        node_timeout_ms: point.node_timeout_ms,
        start: point.start,
        rep,
        milestones,
        poll,
        servers_cpu_run_ms,
        servers_cpu_ms,
        exit_ms,
        exit_code,
        peak_rss_kb,
        verify_ms,
        verify_exit_code,
    })
}

/// What `wait4` says of a child once it exited.
pub struct Reaped {
    pub code: Option<i32>,
    pub max_rss_kb: Option<i64>,
    /// User + system CPU time the child used, in ms.
    pub cpu_ms: Option<f64>,
}

#[allow(
    unsafe_code,
    reason = "wait4 is the only interface that reports one child's peak RSS and CPU time"
)]
pub fn wait_for_child(pid: u32) -> Reaped {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own, not yet reaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if reaped <= 0 {
        return Reaped {
            code: None,
            max_rss_kb: None,
            cpu_ms: None,
        };
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    Reaped {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        max_rss_kb: Some(usage.ru_maxrss),
        cpu_ms: Some(ms(usage.ru_utime) + ms(usage.ru_stime)),
    }
}

/// Waits for one child and returns its exit code and its own peak resident set size in KiB,
/// sampled from `/proc/PID/status` (`VmHWM`) every 5 ms while it runs.
///
/// `wait4`'s `ru_maxrss` cannot be used for a small child of a large parent: Linux carries the
/// forked copy of the parent's resident size into the child's figure across `exec`, so a
/// 15 MB redis-cli started by a bench that had just loaded a million keys reads as large as
/// the bench. `VmHWM` belongs to the child's own address space; sampling misses at most the
/// growth of its last 5 ms.
pub fn wait_with_sampled_peak_rss(pid: u32) -> (Option<i32>, Option<i64>) {
    let reaped = wait_sampled(pid);
    (reaped.code, reaped.max_rss_kb)
}

/// [`wait_for_child`], with the peak RSS sampled as [`wait_with_sampled_peak_rss`] does.
pub fn wait_sampled(pid: u32) -> Reaped {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !done.load(Ordering::Relaxed) {
                let hwm = std::fs::read_to_string(&path).ok().and_then(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                });
                if let Some(kb) = hwm {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let reaped = wait_for_child(pid);
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let kb = peak.load(Ordering::Relaxed);
    Reaped {
        max_rss_kb: (kb > 0).then_some(kb),
        ..reaped
    }
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The clustersmith binary built next to this one (`cargo build --release` builds both).
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let candidate = me.parent()?.join(name);
    candidate.is_file().then_some(candidate)
}

pub fn server_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Writes a benchmark's result file: the server's version, the machine's CPUs, the samples and
/// their table (the markdown the README quotes).
pub fn write_samples(
    samples: &impl serde::Serialize,
    table: String,
    bins: &Binaries,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let value = serde_json::json!({
        "server": server_version(&bins.server),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "samples": samples,
        "table_markdown": table,
    });
    std::fs::write(out, serde_json::to_string_pretty(&value)?)
        .with_context(|| format!("cannot write `{}`", out.display()))
}
