//! Many hosts, real DNS names, real faults: every node in a network namespace of its own
//! (see support/netns.rs). Needs root; without it each test says SKIPPED.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clustersmith_io::sandbox::is_our_server;
use support::netns::{TestBed, namespaces_with_prefix};
use support::{json, stderr, stdout, wait_until};

fn args(parts: &[&str], nodes: &[String], extra: &[String]) -> Vec<String> {
    let mut all: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    all.extend(extra.iter().cloned());
    all.extend(nodes.iter().cloned());
    all
}

/// The lines of a child's output, as they come (a thread reads them; it ends at EOF).
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// All of a child's output once it closes the pipe (read by a thread, so the child never
/// blocks on a full pipe).
fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

/// Waits for a child we started, killing it (by its PID) when it outlives `timeout`.
fn wait_bounded(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// For every replica (by its own CLUSTER NODES line), the IP of its primary and its own.
fn replica_hosts(bed: &TestBed, servers: &[usize]) -> Vec<(String, String)> {
    let text = bed.cli(servers[0], &["CLUSTER", "NODES"]);
    let ip_of: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first().copied()?, f.get(1)?.split(':').next()?))
        })
        .collect();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(2)?.contains("slave").then(|| {
                (
                    ip_of.get(f[3]).unwrap_or(&"?").to_string(),
                    f[1].split(':').next().unwrap().to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn seed_scenarios_and_three_plus_three_form_by_dns_name_over_tls_across_hosts() {
    let Some(mut bed) = TestBed::new(3, true) else {
        return;
    };
    let tls = bed.tls_args();
    // Seed scenario 1: one primary, one replica, on two hosts.
    let s1 = vec![
        bed.start_server(0, 6379, &[]),
        bed.start_server(1, 6379, &[]),
    ];
    // Seed scenario 2: two primaries with a replica each, two servers on each of two hosts.
    let s2 = vec![
        bed.start_server(0, 6380, &[]),
        bed.start_server(0, 6381, &[]),
        bed.start_server(1, 6380, &[]),
        bed.start_server(1, 6381, &[]),
    ];
    // 3 + 3 over three hosts, one zone per host.
    let s3 = bed.start_on_hosts(3, &[6382, 6383]);
    for (servers, primaries, zones) in [(&s1, "1", false), (&s2, "2", false), (&s3, "3", true)] {
        let nodes = bed.node_args(servers, zones);
        let out = bed.clustersmith(&args(&["apply", "-m", primaries], &nodes, &tls));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = bed.clustersmith(&args(
            &["verify", "-m", primaries, "--format", "json"],
            &nodes,
            &tls,
        ));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(json(&out)["passed"], true);
        let pairs = replica_hosts(&bed, servers);
        assert_eq!(pairs.len(), servers.len() / 2);
        for (primary_ip, replica_ip) in pairs {
            assert_ne!(primary_ip, replica_ip, "a replica on its primary's host");
        }
        // Replication runs over TLS (the nodes have no plaintext port at all): every replica,
        // asked itself, has its link up.
        let mut replicas_up = 0;
        for idx in servers.iter() {
            let info = bed.cli(*idx, &["INFO", "replication"]);
            if info.contains("role:slave") {
                assert!(info.contains("master_link_status:up"), "{info}");
                replicas_up += 1;
            }
            let port = bed.cli(*idx, &["CONFIG", "GET", "port"]);
            assert_eq!(port.split_whitespace().collect::<Vec<_>>(), ["port", "0"]);
        }
        assert_eq!(replicas_up, servers.len() / 2);
        for idx in servers.iter() {
            let info = bed.cli(*idx, &["CLUSTER", "INFO"]);
            assert!(info.contains("cluster_state:ok"), "{info}");
            assert!(
                info.contains(&format!("cluster_known_nodes:{}", servers.len())),
                "{info}"
            );
            assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        }
    }
}

#[test]
fn a_node_down_during_apply_fails_in_bounded_time_naming_it_then_a_rerun_completes() {
    let Some(mut bed) = TestBed::new(3, false) else {
        return;
    };
    let servers = bed.start_on_hosts(3, &[6379, 6380]);
    let nodes = bed.node_args(&servers, true);
    let victim = servers[5];
    // The node goes away after apply has started: kill it once apply reports its first
    // round (steps sent, criteria still failing).
    let started = Instant::now();
    let mut apply = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.client,
            env!("CARGO_BIN_EXE_clustersmith"),
        ])
        .args(args(&["apply", "-m", "3", "--timeout", "6"], &nodes, &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(apply.stderr.take().unwrap());
    let stdout_text = read_all(apply.stdout.take().unwrap());
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("apply wrote no progress line within 20 s");
    assert!(
        first.contains("] round 1 ") && first.contains("waiting for:"),
        "not a first round still under way: {first}"
    );
    assert!(apply.try_wait().unwrap().is_none(), "apply already exited");
    // A crash, not a shutdown: a graceful one may wait for replicas (shutdown-timeout).
    bed.kill_server(victim);
    let status = wait_bounded(&mut apply, Duration::from_secs(30));
    let elapsed = started.elapsed();
    let mut text = stdout_text.recv_timeout(Duration::from_secs(5)).unwrap();
    text.push_str(&first);
    text.push('\n');
    text.extend(lines.try_iter().map(|l| l + "\n"));
    eprintln!("{text}");
    assert!(matches!(status.code(), Some(2) | Some(3)), "{text}");
    assert!(
        elapsed < Duration::from_secs(20),
        "not bounded: {elapsed:?}"
    );
    assert!(
        text.contains(&nodes[5].split(',').next().unwrap().to_owned()),
        "the node is not named:\n{text}"
    );
    bed.restart_server(victim);
    let out = bed.clustersmith(&args(&["apply", "-m", "3"], &nodes, &[]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_frozen_node_cannot_make_verify_or_apply_hang() {
    let Some(mut bed) = TestBed::new(2, false) else {
        return;
    };
    let servers = vec![
        bed.start_server(0, 6379, &[]),
        bed.start_server(1, 6379, &[]),
    ];
    let nodes = bed.node_args(&servers, false);
    assert_eq!(
        bed.clustersmith(&args(&["apply", "-m", "1"], &nodes, &[]))
            .status
            .code(),
        Some(0)
    );
    bed.freeze(servers[1], true);
    let timeouts = ["--connect-timeout", "1000", "--response-timeout", "1000"].map(String::from);
    let started = Instant::now();
    let out = bed.clustersmith(&args(&["verify", "-m", "1"], &nodes, &timeouts));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(stdout(&out).contains("FAIL reachable"));
    let started = Instant::now();
    let out = bed.clustersmith(&args(
        &["apply", "-m", "1", "--timeout", "3"],
        &nodes,
        &timeouts,
    ));
    assert!(matches!(out.status.code(), Some(2) | Some(3)));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    bed.freeze(servers[1], false);
}

#[test]
fn an_unreachable_bus_port_is_named_with_its_likely_cause() {
    let Some(mut bed) = TestBed::new(2, false) else {
        return;
    };
    // The node announces a bus port nothing listens on: peers can never finish the handshake.
    let servers = vec![
        bed.start_server(0, 6379, &[("cluster-node-timeout", "15000")]),
        bed.start_server(
            1,
            6379,
            &[
                ("cluster-announce-bus-port", "16999"),
                // Handshakes live for node-timeout: long enough to be seen after apply.
                ("cluster-node-timeout", "15000"),
            ],
        ),
    ];
    let nodes = bed.node_args(&servers, false);
    let out = bed.clustersmith(&args(&["apply", "-m", "1", "--timeout", "4"], &nodes, &[]));
    assert_eq!(out.status.code(), Some(3));
    let out = bed.clustersmith(&args(&["verify", "-m", "1"], &nodes, &[]));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL membership"), "{text}");
    assert!(text.contains("16999"), "the bus port is not named:\n{text}");
    assert!(text.contains("cluster bus"), "no likely cause:\n{text}");
    let out = bed.clustersmith(&args(
        &["diagnose", "-m", "1", "--format", "json"],
        &nodes,
        &[],
    ));
    let report = json(&out);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "CS303"),
        "{report}"
    );
}

#[test]
fn a_host_back_with_a_new_ip_is_detected_and_repaired_without_losing_keys() {
    let Some(mut bed) = TestBed::new(3, false) else {
        return;
    };
    let servers = bed.start_on_hosts(3, &[6379, 6380]);
    let nodes = bed.node_args(&servers, true);
    assert_eq!(
        bed.clustersmith(&args(&["apply", "-m", "3"], &nodes, &[]))
            .status
            .code(),
        Some(0)
    );
    let writer = bed.client_shell(&format!(
        "for i in $(seq 1 300); do echo \"SET key:$i v$i\"; done | redis-cli -c -h {} -p 6379 | grep -c OK",
        bed.hosts[0].ip
    ));
    let written = String::from_utf8_lossy(&writer.wait_with_output().unwrap().stdout)
        .trim()
        .to_owned();
    assert_eq!(written, "300");
    // Host 2 comes back with a new address: same name, stale nodes.conf.
    for idx in servers.iter().filter(|i| bed.servers[**i].host == 2) {
        bed.stop_server(*idx);
    }
    bed.change_ip(2, 23);
    for idx in [servers[4], servers[5]] {
        bed.restart_server(idx);
    }
    // Right after the restart the peers still dial the old address.
    let out = bed.clustersmith(&args(&["verify", "-m", "3"], &nodes, &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("stale address 10.77.0.3:"),
        "{}",
        stdout(&out)
    );
    let report = json(&bed.clustersmith(&args(
        &["diagnose", "-m", "3", "--format", "json"],
        &nodes,
        &[],
    )));
    let stale: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "CS309")
        .collect();
    assert!(!stale.is_empty(), "{report}");
    assert!(stale[0]["summary"].as_str().unwrap().contains("10.77.0.23"));
    let out = bed.clustersmith(&args(
        &["apply", "-m", "3", "--timeout", "30", "--format", "json"],
        &nodes,
        &[],
    ));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        json(&out)["commands_sent"].as_u64().unwrap() > 0,
        "nothing repaired"
    );
    let out = bed.clustersmith(&args(&["verify", "-m", "3"], &nodes, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Every node, asked itself, lists host 2's two servers at the new address only.
    for idx in &servers {
        let text = bed.cli(*idx, &["CLUSTER", "NODES"]);
        assert!(!text.contains("10.77.0.3:"), "server {idx}:\n{text}");
        assert_eq!(
            text.matches("10.77.0.23:").count(),
            2,
            "server {idx}:\n{text}"
        );
    }
    // Primaries hold the keys once; replicas hold copies (once they have caught up).
    wait_until(
        "600 keys (primaries + replicas)",
        Duration::from_secs(30),
        || bed.keys(&servers) == 600,
    );
}

#[test]
fn apply_rerun_under_write_load_loses_and_fails_nothing() {
    let Some(mut bed) = TestBed::new(3, false) else {
        return;
    };
    let servers = bed.start_on_hosts(3, &[6379, 6380]);
    let nodes = bed.node_args(&servers, true);
    assert_eq!(
        bed.clustersmith(&args(&["apply", "-m", "3"], &nodes, &[]))
            .status
            .code(),
        Some(0)
    );
    // A load through a cluster-aware client (redis-cli -c follows MOVED) that runs until told
    // to stop (bounded: at most 200000 writes).
    let stop = tempfile::tempdir().unwrap();
    let stop_file = stop.path().join("stop");
    let mut writer = bed.client_shell(&format!(
        "i=0; while [ ! -e {} ] && [ $i -lt 200000 ]; do i=$((i+1)); echo \"SET load:$i v$i\"; done | redis-cli -c -h {} -p 6379 | grep -v '^-> Redirected' | sort | uniq -c",
        stop_file.display(),
        bed.hosts[1].ip
    ));
    let writer_out = read_all(writer.stdout.take().unwrap());
    let primaries: Vec<usize> = servers
        .iter()
        .copied()
        .filter(|i| {
            bed.cli(*i, &["INFO", "replication"])
                .contains("role:master")
        })
        .collect();
    assert_eq!(primaries.len(), 3);
    wait_until("the load has begun", Duration::from_secs(20), || {
        bed.keys(&primaries) > 0
    });
    let before = bed.snapshot(&servers, false);
    let keys_before = bed.keys(&primaries);
    for _ in 0..3 {
        let out = bed.clustersmith(&args(
            &["apply", "-m", "3", "--format", "json"],
            &nodes,
            &[],
        ));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            json(&out)["commands_sent"],
            0,
            "a re-run changed a formed cluster"
        );
    }
    // The servers agree: no changing command even tried on any node, and every view is as it
    // was.
    before.assert_untouched(&bed.snapshot(&servers, false), "re-runs under load");
    // The load overlapped the re-runs: writes landed during them, and it still runs after.
    let keys_after = bed.keys(&primaries);
    assert!(
        keys_after > keys_before,
        "no write landed during the re-runs ({keys_before} -> {keys_after})"
    );
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the load ended before the last re-run did"
    );
    wait_until("writes after the re-runs", Duration::from_secs(20), || {
        bed.keys(&primaries) > keys_after
    });
    std::fs::write(&stop_file, "").unwrap();
    let status = wait_bounded(&mut writer, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let replies = writer_out.recv_timeout(Duration::from_secs(5)).unwrap();
    // One line: `<count> OK`, every write acknowledged.
    let fields: Vec<&str> = replies.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "failed writes:\n{replies}");
    assert_eq!(fields[1], "OK", "failed writes:\n{replies}");
    let written: i64 = fields[0].parse().unwrap();
    assert!(
        written > keys_after,
        "{written} writes, {keys_after} keys seen before the end"
    );
    // Every acknowledged write is on its primary and, once replicas catch up, on its replica.
    wait_until(
        "every write on its primary and its replica",
        Duration::from_secs(30),
        || bed.keys(&primaries) == written && bed.keys(&servers) == 2 * written,
    );
}

#[test]
fn diagnose_finds_a_replica_moved_onto_its_primarys_host() {
    let Some(mut bed) = TestBed::new(2, false) else {
        return;
    };
    let servers = bed.start_on_hosts(2, &[6379, 6380]);
    let nodes = bed.node_args(&servers, false);
    assert_eq!(
        bed.clustersmith(&args(&["apply", "-m", "2"], &nodes, &[]))
            .status
            .code(),
        Some(0)
    );
    let report = json(&bed.clustersmith(&args(
        &["diagnose", "-m", "2", "--format", "json"],
        &nodes,
        &[],
    )));
    assert!(report["worst"].is_null(), "{report}");
    // Put each host's replica under the primary on its own host.
    for idx in &servers {
        let own = bed.cli(*idx, &["CLUSTER", "NODES"]);
        let me = own
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_owned();
        if me.contains("slave") {
            let my_ip = me
                .split_whitespace()
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_owned();
            let local_primary = own
                .lines()
                .find(|l| l.contains("master") && l.contains(&format!("{my_ip}:")))
                .map(|l| l.split_whitespace().next().unwrap().to_owned())
                .unwrap();
            bed.cli(*idx, &["CLUSTER", "REPLICATE", &local_primary]);
        }
    }
    wait_until("replicas moved", Duration::from_secs(10), || {
        let report = json(&bed.clustersmith(&args(
            &["diagnose", "-m", "2", "--format", "json"],
            &nodes,
            &[],
        )));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "CS308")
            .count()
            == 2
    });
}

#[test]
fn the_test_bed_leaves_no_namespace_or_process_behind() {
    let (tag, pids) = {
        let Some(mut bed) = TestBed::new(2, false) else {
            return;
        };
        bed.start_server(0, 6379, &[]);
        bed.start_server(1, 6379, &[]);
        assert_eq!(namespaces_with_prefix(bed.tag()).len(), 4);
        (bed.tag().to_owned(), bed.running_pids())
    };
    assert_eq!(pids.len(), 2);
    assert!(namespaces_with_prefix(&tag).is_empty());
    for pid in pids {
        assert!(!is_our_server(pid), "process {pid} left");
    }
    assert!(!std::path::Path::new(&format!("/etc/netns/{tag}-h0")).exists());
}

/// For manual runs: a bed of `CLUSTERSMITH_BED_HOSTS` hosts (default 3), one server on
/// each, held until the file named by `CLUSTERSMITH_BED_HOLD` is removed (at most an hour):
/// `CLUSTERSMITH_BED_HOLD=/tmp/bed cargo test -p clustersmith --test netns -- --ignored --nocapture hold`
#[test]
#[ignore = "manual: holds a test bed until a file is removed"]
fn hold_a_test_bed_for_manual_runs() {
    let hosts = std::env::var("CLUSTERSMITH_BED_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let hold =
        std::env::var("CLUSTERSMITH_BED_HOLD").unwrap_or_else(|_| "/tmp/clustersmith-bed".into());
    let Some(mut bed) = TestBed::new(hosts, false) else {
        return;
    };
    let servers: Vec<usize> = (0..hosts).map(|h| bed.start_server(h, 6379, &[])).collect();
    std::fs::write(&hold, "remove this file to tear the bed down\n").unwrap();
    println!("client namespace: {}", bed.client);
    println!(
        "try: ip netns exec {} {} apply --replicas 0 {}",
        bed.client,
        env!("CARGO_BIN_EXE_clustersmith"),
        bed.node_args(&servers, true).join(" ")
    );
    println!("remove {hold} to tear down");
    let deadline = Instant::now() + Duration::from_secs(3600);
    while std::path::Path::new(&hold).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
}
