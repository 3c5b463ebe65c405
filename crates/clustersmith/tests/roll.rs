//! Rolling restarts and upgrades on real servers (issue 20 §2, §3, §5), each under an
//! independent write load (`clustersmith-load`, 1000 writes/s over all slots) that reads back
//! every acknowledged write: `sandbox roll` on Redis 7.0, upgrades from Redis 6.2 to 7.0 and
//! from Valkey 8.1 to 9.1, a roll killed with SIGKILL and run again, and a replica that does
//! not come back, which stops the roll before its shard.
//!
//! How often each server started is read from the servers themselves: its log gains one
//! `Ready to accept connections` line per start, and its `run_id` changes with each.
//!
//! The tests take turns: rolls on two cores at once would measure each other.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A 3+3 sandbox of `bin`, taken down when dropped.
struct Sandbox {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
}

impl Sandbox {
    fn up(bin: Option<&Path>, start: u16) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let base = free_port_block(start, 6);
        let state = path(&dir.path().join("sb"));
        let base_arg = base.to_string();
        let mut args = vec!["sandbox", "up", "--dir", &state, "--base-port", &base_arg];
        let bin_arg = bin.map(path);
        if let Some(bin) = &bin_arg {
            args.extend(["--server-bin", bin]);
        }
        let out = clustersmith(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        Sandbox {
            dir,
            ports: (0..6).map(|i| base + i).collect(),
        }
    }

    fn state(&self) -> String {
        path(&self.dir.path().join("sb"))
    }

    fn node_dir(&self, port: u16) -> PathBuf {
        self.dir.path().join("sb").join(format!("node-{port}"))
    }

    fn load(&self) -> clustersmith_load::Load {
        let options = clustersmith_load::LoadOptions::new(
            self.ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect(),
            1000,
        );
        let load = clustersmith_load::Load::start(options).unwrap();
        assert!(
            load.wait_for_writes(100, Duration::from_secs(10)),
            "the load did not get going"
        );
        load
    }

    /// `INFO server` field of the node on `port` (`None` when it does not answer).
    fn info(&self, port: u16, field: &str) -> Option<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        let text: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_owned())
    }

    fn run_ids(&self) -> Vec<Option<String>> {
        self.ports.iter().map(|p| self.info(*p, "run_id")).collect()
    }

    fn role(&self, port: u16) -> String {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut conn = client.get_connection().unwrap();
        let text: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut conn)
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("role:"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// How many times each server started, from its own log.
    fn starts(&self) -> Vec<usize> {
        self.ports
            .iter()
            .map(|p| {
                std::fs::read_to_string(self.node_dir(*p).join("server.log"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("Ready to accept connections"))
                    .count()
            })
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = clustersmith(&["sandbox", "down", "--dir", &self.state()], &[]);
    }
}

/// The load's verdict: nothing lost, nothing failed, no error an application would see, and
/// each shard's longest write gap short (a coordinated handoff pauses writers for tens of
/// milliseconds; a failover by timeout takes the node timeout, 5 s here).
fn assert_unnoticed(report: &clustersmith_load::LoadReport) {
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert_eq!(report.errors_total(), 0, "{}", report.summary());
    assert!(report.longest_gap_ms() < 1000.0, "{}", report.summary());
}

/// The run exited with `code`; its output otherwise.
fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}\n{}",
        stdout(out),
        stderr(out)
    );
}

fn roll_under_load(sandbox: &Sandbox, extra: &[&str]) -> std::process::Output {
    let before = sandbox.run_ids();
    assert!(
        before.iter().all(Option::is_some),
        "every node answers first"
    );
    let primaries: Vec<u16> = sandbox
        .ports
        .iter()
        .copied()
        .filter(|p| sandbox.role(*p) == "master")
        .collect();
    assert_eq!(primaries.len(), 3);
    let load = sandbox.load();
    let state = sandbox.state();
    let mut args = vec!["sandbox", "roll", "--dir", &state];
    args.extend_from_slice(extra);
    let out = clustersmith(&args, &[]);
    assert_exit(&out, 0);
    // Writes go on a little after the roll, through the new primaries.
    assert!(load.wait_for_writes(200, Duration::from_secs(10)));
    let report = load.finish().unwrap();
    assert_unnoticed(&report);
    // The premise: the primaries' slots changed hands (the load followed them), and every
    // node runs a new process, each started exactly once more.
    assert!(report.moved > 0, "{}", report.summary());
    let after = sandbox.run_ids();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a.is_some() && a != b,
            "node {} was not restarted",
            sandbox.ports[i]
        );
    }
    assert_eq!(
        sandbox.starts(),
        vec![2; 6],
        "each node restarted exactly once"
    );
    out
}

#[test]
fn a_sandbox_roll_under_load_loses_no_write_and_restarts_each_node_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::up(None, 22201);
    let primaries: Vec<u16> = sandbox
        .ports
        .iter()
        .copied()
        .filter(|p| sandbox.role(*p) == "master")
        .collect();
    let out = roll_under_load(&sandbox, &["--failback"]);
    assert!(stdout(&out).contains("rolled 6 nodes"), "{}", stdout(&out));
    // --failback: the primaries of the start hold their role again.
    for port in primaries {
        assert_eq!(sandbox.role(port), "master", "{port} failed back");
    }
    // Done: the roll's state is gone, and a new roll starts from scratch.
    assert!(!sandbox.dir.path().join("sb/roll.state").exists());
}

/// An upgrade `from` → `to` of every node, checked by the versions the servers report.
fn upgrade(from: &Path, to: &Path, start: u16) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let old = binary_version(from);
    let new = binary_version(to);
    let sandbox = Sandbox::up(Some(from), start);
    let field = |v: &BinaryVersion| {
        if v.flavour == "valkey" {
            "valkey_version"
        } else {
            "redis_version"
        }
    };
    // The premise: every node runs the old version.
    for port in &sandbox.ports {
        assert_eq!(
            sandbox.info(*port, field(&old)).as_deref(),
            Some(old.version.as_str())
        );
    }
    roll_under_load(&sandbox, &["--server-bin", &path(to)]);
    for port in &sandbox.ports {
        assert_eq!(
            sandbox.info(*port, field(&new)).as_deref(),
            Some(new.version.as_str()),
            "{port} runs the new version"
        );
    }
}

fn server(flavour: &str, prefix: &str) -> Option<PathBuf> {
    let found = other_servers().into_iter().find(|b| {
        let v = binary_version(b);
        v.flavour == flavour && v.version.starts_with(prefix)
    });
    if found.is_none() {
        skip(
            &format!("no {flavour} {prefix}x in CLUSTERSMITH_TEST_SERVERS"),
            false,
        );
    }
    found
}

#[test]
fn an_upgrade_from_redis_6_2_to_7_0_loses_no_write() {
    let Some(old) = server("redis", "6.2.") else {
        return;
    };
    let new = clustersmith_io::sandbox::find_server_binary(None).unwrap();
    upgrade(&old, &new, 22221);
}

#[test]
fn an_upgrade_from_valkey_8_1_to_9_1_loses_no_write() {
    let (Some(old), Some(new)) = (server("valkey", "8.1."), server("valkey", "9.1.")) else {
        return;
    };
    upgrade(&old, &new, 22241);
}

#[test]
fn a_downgrade_is_refused_before_any_node_restarts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(old) = server("redis", "6.2.") else {
        return;
    };
    let sandbox = Sandbox::up(None, 22261);
    let before = sandbox.run_ids();
    let state = sandbox.state();
    let out = clustersmith(
        &[
            "sandbox",
            "roll",
            "--dir",
            &state,
            "--server-bin",
            &path(&old),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CS352"), "{}", stderr(&out));
    assert_eq!(sandbox.run_ids(), before, "no node restarted");
}

/// SIGKILL while the roll restarts its fourth node, then the same command again: it says it
/// resumes, finishes, and no server started more than once more.
#[test]
fn a_roll_killed_mid_way_finishes_on_a_rerun_without_restarting_a_node_twice() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::up(None, 22281);
    let before = sandbox.run_ids();
    let load = sandbox.load();
    let state = sandbox.state();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(["sandbox", "roll", "--dir", &state, "--format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut restarts = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while restarts < 4 && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("\"acting\"") && line.contains(": restart") {
            restarts += 1;
        }
    }
    assert_eq!(restarts, 4, "the roll got to its fourth restart");
    // The PID of the child this test started.
    assert!(clustersmith_io::sandbox::signal(child.id(), libc::SIGKILL));
    child.wait().unwrap();
    // The premise: the kill interrupted the roll, some nodes restarted and some not.
    let midway = sandbox.run_ids();
    let restarted = before.iter().zip(&midway).filter(|(b, m)| b != m).count();
    assert!(
        (1..6).contains(&restarted),
        "{restarted} of 6 restarted at the kill"
    );
    assert!(sandbox.dir.path().join("sb/roll.state").exists());
    let out = clustersmith(&["sandbox", "roll", "--dir", &state], &[]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("resuming the roll"),
        "{}",
        stderr(&out)
    );
    let after = sandbox.run_ids();
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(b, a)| a.is_some() && b != a)
    );
    assert_eq!(sandbox.starts(), vec![2; 6], "no node restarted twice");
    let report = load.finish().unwrap();
    eprintln!("load: {}", report.summary());
    // A kill in the middle of a node's restart leaves that node down until the re-run: a
    // replica by then, so no write fails; its data is its primary's.
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
}

/// The operator's path (`roll --restart-cmd`), with a restart script that stops one replica
/// and does not start it again: the roll waits for it, hands no primary over, and stops at
/// its deadline with the node named; nothing is lost. Started again by hand, a re-run
/// finishes the roll.
#[test]
fn a_replica_that_does_not_come_back_stops_the_roll_before_any_primary() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::up(None, 22301);
    let bin = clustersmith_io::sandbox::find_server_binary(None).unwrap();
    let replicas: Vec<u16> = sandbox
        .ports
        .iter()
        .copied()
        .filter(|p| sandbox.role(*p) == "slave")
        .collect();
    // The roll takes replicas in the order of their addresses: the first one stays down.
    let broken = replicas[0];
    let script = sandbox.dir.path().join("restart.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
# restart.sh SANDBOX PORT BROKEN_PORT SERVER_BIN: stop the node (SIGTERM, bounded wait), then
# start it from its own redis.conf, except BROKEN_PORT, which stays down.
dir="$1/node-$2"
pid=$(cat "$dir/server.pid")
kill "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ "$2" = "$3" ] && exit 0
cd "$dir" && exec "$4" "$dir/redis.conf"
"#,
    )
    .unwrap();
    let before = sandbox.run_ids();
    let load = sandbox.load();
    let state_file = sandbox.dir.path().join("roll.state");
    let command = format!(
        "sh {} {} {{port}} {broken} {}",
        path(&script),
        sandbox.state(),
        path(&bin)
    );
    let first = format!("127.0.0.1:{}", sandbox.ports[0]);
    let roll = |timeout: &str| {
        clustersmith(
            &[
                "roll",
                &first,
                "--restart-cmd",
                &command,
                "--state",
                &path(&state_file),
                "--timeout",
                timeout,
            ],
            &[],
        )
    };
    let out = roll("15");
    assert_exit(&out, 3);
    assert!(
        stdout(&out).contains(&format!("127.0.0.1:{broken}` does not answer")),
        "{}",
        stdout(&out)
    );
    // The premise: the broken replica is down; and no primary was handed over or restarted.
    assert_eq!(sandbox.info(broken, "run_id"), None);
    let now = sandbox.run_ids();
    for (i, port) in sandbox.ports.iter().enumerate() {
        if !replicas.contains(port) {
            assert_eq!(now[i], before[i], "primary {port} untouched");
            assert_eq!(sandbox.role(*port), "master");
        }
    }
    // Started again by hand, the node counts as restarted; the re-run finishes the rest.
    let dir = sandbox.node_dir(broken);
    let started = Command::new(&bin)
        .arg(dir.join("redis.conf"))
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(started.success());
    let out = roll("120");
    assert_exit(&out, 0);
    assert_eq!(sandbox.starts(), vec![2; 6], "each node restarted once");
    let report = load.finish().unwrap();
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert!(
        !state_file.exists(),
        "the state is removed once the roll is done"
    );
}
