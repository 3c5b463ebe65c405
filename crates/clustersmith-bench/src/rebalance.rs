//! `clustersmith-bench rebalance`: moving slots with their keys, clustersmith against
//! redis-cli, on identical fresh clusters, timed by one poller that is neither tool.
//!
//! - `grow`: 3 primaries hold the keys; a 4th, empty, is added with `redis-cli --cluster
//!   add-node` (the same for both tools, and waited for until it serves: the server's own
//!   rejoin timer is not either tool's time). Then `clustersmith apply -m 4` against
//!   `redis-cli --cluster rebalance --cluster-use-empty-masters`.
//! - `drain`: 4 primaries hold the keys; the 4th leaves. `clustersmith apply -m 3
//!   --remove-unlisted` against `redis-cli --cluster rebalance --cluster-weight <id>=0`
//!   followed by `redis-cli --cluster del-node`.
//!
//! Settled means: every view of the remaining primaries agrees on owners whose counts differ
//! by at most one, no slot is open, and the primaries hold every key. The poller reads
//! `CLUSTER NODES` and `DBSIZE` of each node every [`POLL`]; it reports its rounds and
//! its own CPU time.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clustersmith_core::model::key_slot;
use clustersmith_core::parse::parse_cluster_nodes;

use crate::nodes::Nodes;
use crate::run::{Binaries, server_version, wait_with_sampled_peak_rss};

/// Poll interval of the settle poller.
const POLL: Duration = Duration::from_millis(20);
/// The longest a sample may take.
const SAMPLE_DEADLINE: Duration = Duration::from_secs(300);
/// Keys per pipeline while loading.
const LOAD_BATCH: usize = 10_000;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    Grow,
    Drain,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub case: Case,
    /// `clustersmith` (with its engine) or `redis-cli`.
    pub tool: String,
    pub keys: usize,
    pub rep: usize,
    /// From the tool's start until the poller saw the cluster settled.
    pub settled_ms: Option<f64>,
    /// From the tool's start until it (the last of its commands) exited.
    pub exit_ms: f64,
    pub exit_codes: Vec<Option<i32>>,
    /// Peak RSS of the tool's largest process (sampled `VmHWM`, see
    /// [`crate::run::wait_with_sampled_peak_rss`]).
    pub peak_rss_kb: Option<i64>,
    pub poll_rounds: usize,
    pub poller_cpu_ms: f64,
}

pub struct Options {
    pub keys: usize,
    pub reps: usize,
    pub cases: Vec<Case>,
    /// clustersmith engines to run (`auto`, `classic`, `atomic`).
    pub engines: Vec<String>,
    pub with_redis_cli: bool,
    pub base_port: u16,
}

pub fn run_all(bins: &Binaries, options: &Options) -> anyhow::Result<Vec<Sample>> {
    eprintln!("server: {}", server_version(&bins.server));
    let mut samples = Vec::new();
    for case in &options.cases {
        for rep in 1..=options.reps {
            let mut tools: Vec<Option<&str>> =
                options.engines.iter().map(|e| Some(e.as_str())).collect();
            if options.with_redis_cli {
                tools.push(None);
            }
            for engine in tools {
                let sample = measure(bins, *case, engine, options, rep)?;
                eprintln!(
                    "{:?} {} rep {rep}: settled {} ms, exit {:.0} ms, exit codes {:?}, peak RSS {} KiB",
                    sample.case,
                    sample.tool,
                    sample
                        .settled_ms
                        .map_or("-".to_owned(), |v| format!("{v:.0}")),
                    sample.exit_ms,
                    sample.exit_codes,
                    sample.peak_rss_kb.unwrap_or(0)
                );
                samples.push(sample);
            }
        }
    }
    Ok(samples)
}

fn measure(
    bins: &Binaries,
    case: Case,
    engine: Option<&str>,
    options: &Options,
    rep: usize,
) -> anyhow::Result<Sample> {
    let nodes = Nodes::start(&bins.server, 4, options.base_port, 5000)?;
    let addrs = nodes.addrs();
    let initial = match case {
        Case::Grow => 3,
        Case::Drain => 4,
    };
    let created = Command::new(&bins.redis_cli)
        .args(["--cluster", "create"])
        .args(&addrs[..initial])
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(created.success(), "redis-cli --cluster create failed");
    let ports: Vec<u16> = nodes.servers.iter().map(|s| s.port).collect();
    wait_for(
        || Ok((0..initial).all(|i| cluster_ok(ports[i]))),
        "the first primaries serve",
    )?;
    load(&ports[..initial], options.keys)?;
    if case == Case::Grow {
        let added = Command::new(&bins.redis_cli)
            .args(["--cluster", "add-node", &addrs[3], &addrs[0]])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(added.success(), "redis-cli --cluster add-node failed");
        wait_for(
            || Ok(cluster_ok(ports[3]) && (0..4).all(|i| known(ports[i]) == 4)),
            "the 4th node is known and serves",
        )?;
    }
    let remaining = match case {
        Case::Grow => 4,
        Case::Drain => 3,
    };
    let leaving_id = query_text(ports[3], &["CLUSTER", "MYID"])?;
    let mut commands: Vec<Command> = Vec::new();
    let tool = match engine {
        Some(engine) => {
            let mut cmd = Command::new(&bins.clustersmith);
            cmd.args([
                "apply",
                "-m",
                &remaining.to_string(),
                "-r",
                "0",
                "--timeout",
                "290",
            ])
            .args(["--move-engine", engine]);
            if case == Case::Drain {
                cmd.arg("--remove-unlisted");
            }
            cmd.args(&addrs[..remaining]);
            commands.push(cmd);
            format!("clustersmith ({engine})")
        }
        None => {
            let mut cmd = Command::new(&bins.redis_cli);
            cmd.args(["--cluster", "rebalance", &addrs[0]]);
            match case {
                Case::Grow => {
                    cmd.arg("--cluster-use-empty-masters");
                }
                Case::Drain => {
                    cmd.args(["--cluster-weight", &format!("{leaving_id}=0")]);
                }
            }
            commands.push(cmd);
            if case == Case::Drain {
                let mut del = Command::new(&bins.redis_cli);
                del.args(["--cluster", "del-node", &addrs[0], &leaving_id]);
                commands.push(del);
            }
            "redis-cli".to_owned()
        }
    };
    let start = Instant::now();
    let watched: Vec<u16> = ports[..remaining].to_vec();
    let keys = options.keys as u64;
    let poller = std::thread::spawn(move || settle_poller(&watched, remaining, keys, start));
    let mut exit_codes = Vec::new();
    let mut peak_rss_kb: Option<i64> = None;
    for mut cmd in commands {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {tool}"))?;
        let (code, rss) = wait_with_sampled_peak_rss(child.id());
        exit_codes.push(code);
        peak_rss_kb = peak_rss_kb.max(rss);
    }
    let exit_ms = start.elapsed().as_secs_f64() * 1000.0;
    let (settled_ms, poll_rounds, poller_cpu_ms) = poller
        .join()
        .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
    nodes.stop()?;
    Ok(Sample {
        case,
        tool,
        keys: options.keys,
        rep,
        settled_ms,
        exit_ms,
        exit_codes,
        peak_rss_kb,
        poll_rounds,
        poller_cpu_ms,
    })
}

/// Polls until the cluster is settled (see the module docs) or the sample deadline; returns
/// (ms to settled, rounds, the poller's own CPU ms).
fn settle_poller(
    ports: &[u16],
    primaries: usize,
    keys: u64,
    start: Instant,
) -> (Option<f64>, usize, f64) {
    let cpu_before = crate::poller::thread_cpu_ms();
    let mut rounds = 0;
    let mut conns: Vec<Option<redis::Connection>> = ports.iter().map(|_| None).collect();
    let settled = loop {
        rounds += 1;
        if settled_now(ports, &mut conns, primaries, keys) {
            break Some(start.elapsed().as_secs_f64() * 1000.0);
        }
        if start.elapsed() > SAMPLE_DEADLINE {
            break None;
        }
        std::thread::sleep(POLL);
    };
    let cpu = crate::poller::thread_cpu_ms()
        .zip(cpu_before)
        .map_or(0.0, |(after, before)| after - before);
    (settled, rounds, cpu)
}

fn settled_now(
    ports: &[u16],
    conns: &mut [Option<redis::Connection>],
    primaries: usize,
    keys: u64,
) -> bool {
    let mut owners: Option<Vec<(String, usize)>> = None;
    let mut total_keys = 0u64;
    for (port, slot) in ports.iter().zip(conns.iter_mut()) {
        if slot.is_none() {
            *slot = connect(*port).ok();
        }
        let Some(conn) = slot.as_mut() else {
            return false;
        };
        let Ok((text, dbsize, role)) = redis::pipe()
            .cmd("CLUSTER")
            .arg("NODES")
            .cmd("DBSIZE")
            .cmd("ROLE")
            .query::<(String, u64, Vec<redis::Value>)>(conn)
        else {
            *slot = None;
            return false;
        };
        let parsed = parse_cluster_nodes(&text).value;
        let mut seen: Vec<(String, usize)> = parsed
            .entries()
            .iter()
            .filter(|e| !e.slots.is_empty())
            .map(|e| (e.id.as_str().to_owned(), e.slots.len()))
            .collect();
        seen.sort();
        if parsed.entries().iter().any(|e| !e.open_slots().is_empty()) {
            return false;
        }
        match &owners {
            None => owners = Some(seen),
            Some(first) if *first != seen => return false,
            Some(_) => {}
        }
        let is_primary =
            matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
        if is_primary {
            total_keys += dbsize;
        }
    }
    let Some(owners) = owners else { return false };
    let counts: Vec<usize> = owners.iter().map(|(_, n)| *n).collect();
    owners.len() == primaries
        && counts
            .iter()
            .max()
            .zip(counts.iter().min())
            .is_some_and(|(max, min)| max - min <= 1)
        && total_keys == keys
}

fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
        .get_connection_with_timeout(Duration::from_secs(2))
}

fn query_text(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    Ok(cmd.query::<String>(&mut connect(port)?)?)
}

fn cluster_ok(port: u16) -> bool {
    query_text(port, &["CLUSTER", "INFO"]).is_ok_and(|t| t.contains("cluster_state:ok"))
}

fn known(port: u16) -> usize {
    query_text(port, &["CLUSTER", "NODES"])
        .map(|t| t.lines().filter(|l| !l.contains("handshake")).count())
        .unwrap_or(0)
}

fn wait_for(mut check: impl FnMut() -> anyhow::Result<bool>, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("timed out waiting until {what}")
}

/// Writes `keys` keys of 64 bytes, each to the primary that owns its slot, in pipelines.
fn load(ports: &[u16], keys: usize) -> anyhow::Result<()> {
    let mut owners: Vec<(u16, u16, u16)> = Vec::new();
    let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut connect(ports[0])?)?;
    for entry in slots {
        let start: u16 = redis::from_redis_value(entry[0].clone())?;
        let end: u16 = redis::from_redis_value(entry[1].clone())?;
        let node: Vec<redis::Value> = redis::from_redis_value(entry[2].clone())?;
        let port: u16 = redis::from_redis_value(node[1].clone())?;
        owners.push((start, end, port));
    }
    let value = vec![b'x'; 64];
    let mut pipes: Vec<(u16, redis::Pipeline, usize)> =
        ports.iter().map(|p| (*p, redis::pipe(), 0)).collect();
    let mut conns: Vec<redis::Connection> = ports
        .iter()
        .map(|p| connect(*p))
        .collect::<Result<_, _>>()?;
    for n in 0..keys {
        let key = format!("key:{n}");
        let slot = key_slot(key.as_bytes());
        let port = owners
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, p)| *p)
            .context("a slot without owner")?;
        let idx = ports
            .iter()
            .position(|p| *p == port)
            .context("unknown owner")?;
        let (_, pipe, count) = &mut pipes[idx];
        pipe.cmd("SET").arg(&key).arg(&value).ignore();
        *count += 1;
        if *count == LOAD_BATCH {
            pipe.query::<()>(&mut conns[idx])?;
            pipe.clear();
            *count = 0;
        }
    }
    for (idx, (_, pipe, count)) in pipes.iter_mut().enumerate() {
        if *count > 0 {
            pipe.query::<()>(&mut conns[idx])?;
        }
    }
    Ok(())
}

/// The Markdown table of a run: per case and tool, the median settle time, the ratio to
/// redis-cli, exit time and peak RSS.
pub fn table(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| case | keys | tool | settled (median) | vs redis-cli | exit (median) | peak RSS | poller rounds / CPU |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    // (case, tool) in order of first appearance: reps interleave the tools.
    let mut keys: Vec<(Case, String)> = Vec::new();
    for s in samples {
        if !keys.iter().any(|(c, t)| *c == s.case && *t == s.tool) {
            keys.push((s.case, s.tool.clone()));
        }
    }
    for (case, tool) in keys {
        let rows: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.case == case && s.tool == tool)
            .collect();
        let settled = median(rows.iter().filter_map(|s| s.settled_ms).collect());
        let reference = median(
            samples
                .iter()
                .filter(|s| s.case == case && s.tool == "redis-cli")
                .filter_map(|s| s.settled_ms)
                .collect(),
        );
        let exit = median(rows.iter().map(|s| s.exit_ms).collect());
        let rss = rows.iter().filter_map(|s| s.peak_rss_kb).max();
        let ratio = settled
            .zip(reference)
            .map_or("-".to_owned(), |(s, r)| format!("{:.2}x", r / s));
        let fmt_s = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.2} s", v / 1000.0));
        let rounds: usize = rows.iter().map(|s| s.poll_rounds).sum::<usize>() / rows.len().max(1);
        let cpu: f64 = rows.iter().map(|s| s.poller_cpu_ms).sum::<f64>() / rows.len().max(1) as f64;
        out.push_str(&format!(
            "| {case:?} | {} | {tool} | {} | {ratio} | {} | {} | {rounds} / {cpu:.0} ms |\n",
            rows[0].keys,
            fmt_s(settled),
            fmt_s(exit),
            rss.map_or("-".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
        ));
    }
    out
}

/// The samples of a result file written by [`write`].
pub fn read(path: &PathBuf) -> anyhow::Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    Ok(serde_json::from_value(value["samples"].clone())?)
}

pub fn write(samples: &[Sample], out: &PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(&serde_json::json!({ "samples": samples }))?,
    )?;
    Ok(())
}
