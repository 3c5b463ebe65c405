//! A primary that comes back empty with a new id at its old address (its disk and nodes.conf
//! lost, or its VM recreated), on Redis 7.0 and Valkey 8.1 (issue 13 §1). Checked on the
//! servers: which ids every node lists, roles, replication links, full resyncs and key counts.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clustersmith_io::sandbox::{find_server_binary, process_start_time, signal};
use support::*;

const KEYS: usize = 600;

/// The servers to run on: Debian's Redis 7.0 and the Valkey 8.1 of the alternative set.
fn binaries() -> Vec<PathBuf> {
    let mut bins = vec![find_server_binary(None).unwrap()];
    bins.extend(
        other_servers()
            .into_iter()
            .filter(|b| binary_version(b).flavour == "valkey"),
    );
    bins
}

/// A formed 3+3 holding `KEYS` keys, written through a cluster client (`redis-cli -c`).
fn formed_with_keys(bin: &Path) -> Servers {
    let servers = Servers::start_with(
        6,
        &ServerOpts {
            bin: Some(bin.to_owned()),
            ..Default::default()
        },
    );
    servers.assert_running(bin);
    let out = clustersmith(
        &with_nodes(&["apply", "-r", "1", "--timeout", "30"], &servers.ips()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let commands: String = (0..KEYS)
        .map(|i| format!("SET key:{i} value-{i}\n"))
        .collect();
    let mut child = Command::new("redis-cli")
        .args(["-c", "-p", &servers.port(0).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    wait_until(
        "every replica holds its primary's keys",
        Duration::from_secs(20),
        || {
            keys_on_primaries(&servers) == KEYS as u64
                && servers.shards().iter().all(|shard| {
                    shard
                        .replicas
                        .iter()
                        .all(|(r, _)| dbsize(&servers, *r) == dbsize(&servers, shard.primary))
                })
        },
    );
    servers
}

fn dbsize(servers: &Servers, idx: usize) -> u64 {
    redis::from_redis_value(servers.cmd(idx, &["DBSIZE"])).unwrap()
}

fn keys_on_primaries(servers: &Servers) -> u64 {
    (0..servers.servers.len())
        .filter(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("master"))
        .map(|i| dbsize(servers, i))
        .sum()
}

fn sync_full(servers: &Servers, idx: usize) -> u64 {
    servers
        .info_field(idx, "stats", "sync_full")
        .unwrap()
        .parse()
        .unwrap()
}

/// Kills the node (SIGKILL: no shutdown, no save), removes its nodes.conf as a lost disk
/// would, and starts the same binary on the same redis.conf: a new, empty node at the same
/// address. Returns its old id.
fn lose_disk_and_restart(
    servers: &mut Servers,
    bin: &Path,
    idx: usize,
    wait_before_restart: impl FnOnce(&Servers),
) -> String {
    let old_id = servers.myid(idx);
    let server = servers.servers[idx].clone();
    signal(server.pid, libc::SIGKILL);
    wait_until("the killed node to exit", Duration::from_secs(10), || {
        process_start_time(server.pid).is_none()
    });
    std::fs::remove_file(server.dir.join("nodes.conf")).unwrap();
    wait_before_restart(servers);
    // By the path the test started it with: Debian's redis-server is a link to
    // redis-check-rdb, which only acts as a server under the server's name.
    let status = Command::new(bin)
        .arg(server.dir.join("redis.conf"))
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the node to come back", Duration::from_secs(10), || {
        std::fs::read_to_string(server.dir.join("server.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|pid| pid != server.pid && process_start_time(pid).is_some())
            && answers_ping(servers.port(idx))
    });
    let pid: u32 = std::fs::read_to_string(server.dir.join("server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    servers.servers[idx].pid = pid;
    servers.servers[idx].start_time = process_start_time(pid);
    assert_ne!(servers.myid(idx), old_id, "the node kept its id");
    old_id
}

/// True once the server at `port` accepts a connection and answers PING (a server still
/// starting refuses connections: that is a "not yet", not a failure).
fn answers_ping(port: u16) -> bool {
    redis::Client::open(("127.0.0.1", port))
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
        .is_ok()
}

/// The two scenarios each run a 6-node cluster through a failover: one at a time, so that a
/// loaded machine does not stretch the failover of one while the other forms.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A primary and the replica that follows it, by the servers' own words.
fn a_primary_and_its_replica(servers: &Servers) -> (usize, usize) {
    let shard = servers.shards().into_iter().next().unwrap();
    (shard.primary, shard.replicas[0].0)
}

#[test]
fn a_primary_back_empty_after_its_replica_took_over_is_readopted_without_losing_a_key() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for bin in binaries() {
        let mut servers = formed_with_keys(&bin);
        let nodes = servers.ips();
        let (lost, replica) = a_primary_and_its_replica(&servers);
        let old_id = lose_disk_and_restart(&mut servers, &bin, lost, |servers| {
            // cluster-node-timeout 5 s, then the election: seconds, more on a loaded machine.
            wait_until("the replica to take over", Duration::from_secs(60), || {
                servers
                    .info_field(replica, "replication", "role")
                    .as_deref()
                    == Some("master")
            });
        });
        let new_id = servers.myid(lost);

        // verify: one line names the case, no "extra node" on every peer.
        let out = clustersmith(&with_nodes(&["verify", "-r", "1"], &nodes), &[]);
        assert_eq!(out.status.code(), Some(1));
        let text = stdout(&out);
        assert_eq!(text.matches("came back with a new id").count(), 1, "{text}");
        assert!(
            text.contains(&format!("{}: came back", nodes[lost])),
            "{text}"
        );
        assert!(!text.contains("knows extra node"), "{text}");

        // diagnose: the root cause on the right node.
        let diag = clustersmith(
            &with_nodes(&["diagnose", "-r", "1", "--format", "json"], &nodes),
            &[],
        );
        let doc = json(&diag);
        assert_eq!(doc["findings"][0]["id"], "CS320", "{doc}");
        assert_eq!(doc["findings"][0]["node"], nodes[lost].as_str());
        // What it explains on that node hangs under it, each naming its cause.
        assert_eq!(doc["findings"][0]["explained_by"], serde_json::Value::Null);
        let cause = format!("CS320@{}", nodes[lost]);
        let symptoms = doc["findings"][0]["symptoms"].as_array().unwrap();
        // The peers still list the old id, disconnected: at least that hangs under it.
        assert!(!symptoms.is_empty(), "no symptom under the cause: {doc}");
        for symptom in symptoms {
            assert_eq!(symptom["explained_by"], cause.as_str(), "{symptom}");
        }

        let full_syncs: Vec<u64> = (0..6).map(|i| sync_full(&servers, i)).collect();
        let out = clustersmith(
            &with_nodes(&["apply", "-r", "1", "--timeout", "30"], &nodes),
            &[],
        );
        assert_eq!(out.status.code(), Some(0));
        let out = clustersmith(&with_nodes(&["verify", "-r", "1"], &nodes), &[]);
        assert_eq!(out.status.code(), Some(0));

        // On the servers: the old id is gone from every view, the node is back as the
        // replica of the one that took over, with its link up, and every key is there.
        wait_until(
            "every view to forget the old id",
            Duration::from_secs(10),
            || (0..6).all(|i| !servers.text(i, &["CLUSTER", "NODES"]).contains(&old_id)),
        );
        assert_eq!(
            servers.info_field(lost, "replication", "master_port"),
            Some(servers.port(replica).to_string())
        );
        assert_eq!(
            servers
                .info_field(lost, "replication", "master_link_status")
                .as_deref(),
            Some("up")
        );
        assert!(
            servers
                .text(replica, &["CLUSTER", "NODES"])
                .contains(&new_id)
        );
        assert_eq!(keys_on_primaries(&servers), KEYS as u64);
        wait_until(
            "the readopted node to hold its shard",
            Duration::from_secs(20),
            || dbsize(&servers, lost) == dbsize(&servers, replica),
        );
        // apply caused exactly one full resync: the empty node's, from its new primary. No
        // healthy replica was resynced.
        for (i, before) in full_syncs.iter().enumerate() {
            let expected = before + u64::from(i == replica);
            assert_eq!(sync_full(&servers, i), expected, "full resyncs on node {i}");
        }
    }
}

#[test]
fn a_primary_back_empty_before_the_failover_is_reported_as_data_loss_and_apply_stops() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for bin in binaries() {
        let mut servers = formed_with_keys(&bin);
        let nodes = servers.ips();
        let (lost, replica) = a_primary_and_its_replica(&servers);
        let keys_before = dbsize(&servers, replica);
        assert!(keys_before > 0);
        // "Before the failover" must hold on a loaded machine too: the replica may not win an
        // election first (the servers' own switch; the rest of the scenario is unchanged).
        servers.cmd(
            replica,
            &["CONFIG", "SET", "cluster-replica-no-failover", "yes"],
        );
        // Back at once: the replica reconnects to the old address before any failover, and
        // the server itself resyncs it from the empty node (nothing clustersmith did).
        lose_disk_and_restart(&mut servers, &bin, lost, |_| {});
        wait_until(
            "the replica to resync from the empty node",
            Duration::from_secs(30),
            || {
                dbsize(&servers, replica) == 0
                    && servers
                        .info_field(replica, "replication", "master_link_status")
                        .as_deref()
                        == Some("up")
            },
        );

        // apply stops, says why and what to do, and sends nothing.
        let before: Vec<_> = (0..6).map(|i| servers.changing_commands(i).0).collect();
        let out = clustersmith(
            &with_nodes(&["apply", "-r", "1", "--timeout", "10"], &nodes),
            &[],
        );
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains("came back with a new id"), "{err}");
        assert!(err.contains("CLUSTER FAILOVER TAKEOVER"), "{err}");
        assert!(err.contains("(0 keys)"), "{err}");
        let after: Vec<_> = (0..6).map(|i| servers.changing_commands(i).0).collect();
        assert_eq!(before, after, "apply sent a changing command");

        // diagnose names the data loss first, on the replica, with the server's own lines.
        let mut args = vec!["diagnose", "-r", "1", "--format", "json"];
        let logs: Vec<String> = servers
            .servers
            .iter()
            .map(|s| s.log_path().display().to_string())
            .collect();
        for log in &logs {
            args.extend(["--log", log.as_str()]);
        }
        let diag = clustersmith(&with_nodes(&args, &nodes), &[]);
        assert_eq!(diag.status.code(), Some(1));
        let doc = json(&diag);
        let top = &doc["findings"][0];
        assert_eq!(top["id"], "CS321", "{doc}");
        assert_eq!(top["node"], nodes[replica].as_str());
        assert_eq!(top["severity"], "critical");
        let evidence = top["evidence"].to_string();
        assert!(evidence.contains("Flushing old data"), "{evidence}");
        assert!(evidence.contains("keys loaded: 0"), "{evidence}");
        let ids: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(ids.contains(&"CS320"), "{ids:?}");
    }
}
