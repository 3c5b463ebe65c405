//! Changing a live cluster's shape on real servers: primaries added and removed with their
//! slots and keys, under a client load, runs killed half-way and resumed, refusals that change
//! nothing, and other server versions.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::Commands as _;
use support::*;

/// Hash slot of a key.
fn key_slot(key: &str) -> u16 {
    clustersmith_core::model::key_slot(key.as_bytes())
}

fn cluster_client(servers: &Servers, idx: usize) -> redis::cluster::ClusterConnection {
    let auth = servers
        .password
        .as_deref()
        .map_or(String::new(), |p| format!(":{p}@"));
    redis::cluster::ClusterClient::new(vec![format!(
        "redis://{auth}127.0.0.1:{}/",
        servers.port(idx)
    )])
    .unwrap()
    .get_connection()
    .unwrap()
}

/// Writes `count` keys `fill:N` = `value-N` through a cluster client, in pipelines per node.
fn fill(servers: &Servers, idx: usize, count: usize) {
    let mut conn = cluster_client(servers, idx);
    for start in (0..count).step_by(5000) {
        let mut pipe = redis::cluster::cluster_pipe();
        for n in start..(start + 5000).min(count) {
            pipe.cmd("SET")
                .arg(format!("fill:{n}"))
                .arg(format!("value-{n}"))
                .ignore();
        }
        pipe.query::<()>(&mut conn).unwrap();
    }
}

/// Every `fill:N` readable with its value through a cluster client; returns how many were not.
fn missing_fill(servers: &Servers, idx: usize, count: usize) -> usize {
    let mut conn = cluster_client(servers, idx);
    let mut missing = 0;
    for start in (0..count).step_by(5000) {
        let mut pipe = redis::cluster::cluster_pipe();
        for n in start..(start + 5000).min(count) {
            pipe.cmd("GET").arg(format!("fill:{n}"));
        }
        let values: Vec<Option<String>> = pipe.query(&mut conn).unwrap();
        for (offset, value) in values.into_iter().enumerate() {
            if value.as_deref() != Some(format!("value-{}", start + offset).as_str()) {
                missing += 1;
            }
        }
    }
    missing
}

/// Keys on the nodes that are primaries now (each key counted once).
fn keys_on_primaries(servers: &Servers, nodes: &[usize]) -> u64 {
    nodes
        .iter()
        .filter(|idx| servers.info_field(**idx, "replication", "role").as_deref() == Some("master"))
        .map(|idx| {
            redis::cmd("DBSIZE")
                .query::<u64>(&mut servers.conn(*idx))
                .unwrap()
        })
        .sum()
}

/// The independent load's verdict after a reshape: no acknowledged write lost (every one read
/// back), none given up, at least `min_acked` acknowledged. Errors it retried are reported, not
/// hidden: only the ones a cluster client is expected to wait out (TRYAGAIN, CLUSTERDOWN,
/// LOADING) are allowed, each counted in the summary.
fn assert_load_kept(report: &clustersmith_load::LoadReport, min_acked: u64, what: &str) {
    eprintln!("{what}: load: {}", report.summary());
    assert_eq!(
        report.lost, 0,
        "{what}: acknowledged writes lost: {:?}",
        report.lost_keys
    );
    assert_eq!(
        report.failed,
        0,
        "{what}: writes given up: {}",
        report.summary()
    );
    assert!(report.acked >= min_acked, "{what}: {}", report.summary());
    let unexpected: Vec<&String> = report
        .errors
        .keys()
        .filter(|kind| !["TRYAGAIN", "CLUSTERDOWN", "LOADING"].contains(&kind.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "{what}: {}", report.summary());
}

/// Owners of the slots as one node sees them: port -> slot count.
fn slot_counts(servers: &Servers, idx: usize) -> BTreeMap<u16, usize> {
    let text = servers.text(idx, &["CLUSTER", "NODES"]);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
        let slots: usize = fields[8..]
            .iter()
            .filter(|f| !f.starts_with('['))
            .map(|f| match f.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            })
            .sum();
        if slots > 0 {
            counts.insert(port, slots);
        }
    }
    counts
}

fn assert_balanced(servers: &Servers, idx: usize, primaries: usize) {
    let counts = slot_counts(servers, idx);
    assert_eq!(counts.len(), primaries, "{counts:?}");
    let (min, max) = (
        counts.values().min().unwrap(),
        counts.values().max().unwrap(),
    );
    assert!(max - min <= 1, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 16384);
}

fn apply(
    nodes: &[String],
    primaries: usize,
    replicas: usize,
    extra: &[&str],
) -> std::process::Output {
    apply_as(nodes, primaries, replicas, extra, None)
}

/// `apply` with the servers' password in `REDISCLI_AUTH`, when they have one.
fn apply_as(
    nodes: &[String],
    primaries: usize,
    replicas: usize,
    extra: &[&str],
    password: Option<&str>,
) -> std::process::Output {
    let (m, r) = (primaries.to_string(), replicas.to_string());
    let mut args = vec!["apply", "-m", &m, "-r", &r, "--timeout", "120"];
    args.extend_from_slice(extra);
    let env: Vec<(&str, &str)> = password.map(|p| ("REDISCLI_AUTH", p)).into_iter().collect();
    clustersmith(&with_nodes(&args, nodes), &env)
}

fn no_open_slots(servers: &Servers, nodes: &[usize]) {
    for idx in nodes {
        let text = servers.text(*idx, &["CLUSTER", "NODES"]);
        assert!(!text.contains("->-") && !text.contains("-<-"), "{text}");
    }
}

#[test]
fn three_to_four_to_six_to_three_primaries_under_load_loses_no_key() {
    const FILL: usize = 200_000;
    let servers = Servers::start(12);
    let all = servers.names();
    assert_eq!(apply(&all[..6], 3, 1, &[]).status.code(), Some(0));
    fill(&servers, 0, FILL);
    let load = start_load(&servers, 0, 500);

    // 3 -> 4: plan shows the moves first, then apply carries them out.
    let planned = clustersmith(&with_nodes(&["plan", "-m", "4", "-r", "1"], &all[..8]), &[]);
    assert_eq!(planned.status.code(), Some(4));
    let text = stdout(&planned);
    assert!(text.contains("slot moves (4096 slots in all"), "{text}");
    assert!(!text.contains("no changes"), "{text}");
    let grown = apply(&all[..8], 4, 1, &[]);
    assert_eq!(grown.status.code(), Some(0));
    assert!(
        stderr(&grown).contains("moving slots: 4096 slots"),
        "{}",
        stderr(&grown)
    );
    assert_balanced(&servers, 0, 4);

    // 4 -> 6.
    assert_eq!(apply(&all, 6, 1, &[]).status.code(), Some(0));
    assert_balanced(&servers, 0, 6);

    // 6 -> 3: the nodes left out of the spec are drained and forgotten, and left running.
    let refused = apply(&all[..6], 3, 1, &[]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "not without --remove-unlisted"
    );
    let shrunk = apply(&all[..6], 3, 1, &["--remove-unlisted"]);
    assert_eq!(shrunk.status.code(), Some(0));
    assert_balanced(&servers, 0, 3);
    let report = load.finish().unwrap();
    for idx in 0..6 {
        let text = servers.text(idx, &["CLUSTER", "NODES"]);
        assert_eq!(text.lines().count(), 6, "the leavers are forgotten: {text}");
    }
    for server in &servers.servers[6..] {
        // (It may answer LOADING: one that lost its last slot became a replica on its own,
        // cluster-allow-replica-migration, and keeps syncing until someone resets it.)
        assert!(
            std::path::Path::new(&format!("/proc/{}", server.pid)).exists(),
            "a removed node is left running"
        );
    }
    no_open_slots(&servers, &(0..6).collect::<Vec<_>>());

    assert_load_kept(&report, 1000, "3 -> 4 -> 6 -> 3");
    assert_eq!(missing_fill(&servers, 0, FILL), 0, "keys lost");
    assert_eq!(
        keys_on_primaries(&servers, &(0..6).collect::<Vec<_>>()),
        FILL as u64 + report.acked
    );
}

/// Three primaries holding `fill` keys (plus 200 keys in one slot of the first primary) and a
/// fourth node met by hand, known to all and seeing every slot's owner: the start of a 3 -> 4
/// move. Returns the servers and the crowded slot.
fn three_plus_one(opts: &ServerOpts, count: usize) -> (Servers, u16) {
    let servers = Servers::start_with(4, opts);
    let nodes = servers.names();
    assert_eq!(
        apply_as(&nodes[..3], 3, 0, &[], opts.password.as_deref())
            .status
            .code(),
        Some(0)
    );
    fill(&servers, 0, count);
    let tag = (0..100)
        .map(|n| format!("t{n}"))
        .find(|t| key_slot(t) < 5000)
        .unwrap();
    let slot = key_slot(&tag);
    let mut conn = cluster_client(&servers, 0);
    for n in 0..200 {
        conn.set::<_, _, ()>(format!("{{{tag}}}:{n}"), n).unwrap();
    }
    servers.cmd(
        3,
        &["CLUSTER", "MEET", "127.0.0.1", &servers.port(0).to_string()],
    );
    wait_until(
        "the fourth node is known and sees every owner",
        Duration::from_secs(30),
        || {
            (0..4).all(|idx| {
                let text = servers.text(idx, &["CLUSTER", "NODES"]);
                text.lines().count() == 4 && !text.contains("handshake")
            }) && servers
                .text(3, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        },
    );
    (servers, slot)
}

fn keys_in_slot(servers: &Servers, idx: usize, slot: u16) -> Vec<String> {
    redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1000)
        .query(&mut servers.conn(idx))
        .unwrap()
}

/// After a 3 -> 4 move of [`three_plus_one`]'s cluster: four even owners, no open slot, every
/// `fill:N` readable and exactly those keys (plus the crowded slot's 200) on the primaries.
fn assert_four_even_primaries_with_every_key(servers: &Servers, fill: usize) {
    assert_balanced(servers, 0, 4);
    no_open_slots(servers, &[0, 1, 2, 3]);
    assert_eq!(missing_fill(servers, 0, fill), 0, "keys lost");
    assert_eq!(
        keys_on_primaries(servers, &[0, 1, 2, 3]),
        (fill + 200) as u64
    );
}

/// Starts `clustersmith apply ARGS… NODES…` with its stderr in a file, and returns once it
/// says it is moving slots.
fn apply_until_moving(
    servers: &Servers,
    args: &[&str],
) -> (std::process::Child, std::path::PathBuf) {
    let log = servers.path().join("apply.stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(with_nodes(args, &servers.names()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("apply starts moving slots", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("moving slots:")
    });
    (child, log)
}

/// Resumes from the state a move leaves at each point where `apply` can be killed, set up on
/// the servers by the same commands, and checks that a new run finishes it with no key lost.
#[test]
fn a_move_interrupted_at_any_point_is_finished_by_the_next_run() {
    const FILL: usize = 20_000;
    let points = [
        "after IMPORTING on the target",
        "after MIGRATING on the source",
        "half-way through MIGRATE",
        "after SETSLOT NODE on the target only",
        "after SETSLOT NODE on target and source, before the other primaries",
    ];
    for (step, point) in points.iter().enumerate() {
        let (servers, slot) = three_plus_one(&ServerOpts::default(), FILL);
        let (source_id, target_id) = (servers.myid(0), servers.myid(3));
        let crowded = keys_in_slot(&servers, 0, slot).len();
        assert!(crowded >= 200);
        let s = slot.to_string();
        servers.cmd(3, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &source_id]);
        if step >= 1 {
            servers.cmd(0, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &target_id]);
        }
        if step >= 2 {
            let keys = keys_in_slot(&servers, 0, slot);
            let take = if step == 2 {
                keys.len() / 2
            } else {
                keys.len()
            };
            let port = servers.port(3).to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys[..take].iter().map(String::as_str));
            servers.cmd(0, &args);
        }
        if step >= 3 {
            servers.cmd(3, &["CLUSTER", "SETSLOT", &s, "NODE", &target_id]);
        }
        if step >= 4 {
            servers.cmd(0, &["CLUSTER", "SETSLOT", &s, "NODE", &target_id]);
        }
        let nodes = servers.names();
        let out = apply(&nodes, 4, 0, &[]);
        assert_eq!(out.status.code(), Some(0), "{point}");
        if step < 4 {
            assert!(
                stderr(&out).contains("finishing slot moves a previous run left open"),
                "{point}: {}",
                stderr(&out)
            );
        }
        assert_balanced(&servers, 0, 4);
        no_open_slots(&servers, &[0, 1, 2, 3]);
        assert_eq!(missing_fill(&servers, 0, FILL), 0, "{point}: keys lost");
        assert_eq!(
            keys_on_primaries(&servers, &[0, 1, 2, 3]),
            (FILL + 200) as u64,
            "{point}"
        );
        // The crowded slot's keys are all with its final owner, the node every view names.
        let owner = (0..4)
            .find(|idx| !keys_in_slot(&servers, *idx, slot).is_empty())
            .unwrap();
        assert_eq!(
            keys_in_slot(&servers, owner, slot).len(),
            crowded,
            "{point}"
        );
        for viewer in 0..4 {
            assert_eq!(
                slot_owner_port(&servers, viewer, slot),
                servers.port(owner),
                "{point}: node {viewer} names another owner of slot {slot}"
            );
        }
    }
}

/// `kill -9` of a real `apply` while keys move, then a second run: it converges from live
/// state alone and no key is lost.
#[test]
fn apply_killed_while_keys_move_is_finished_by_the_next_run() {
    // Redis 7.0 (clustersmith drives the move) and Valkey 9.1 (the servers' own atomic
    // migration keeps running after apply is killed; the next run follows it).
    let valkey9 = other_servers()
        .into_iter()
        .filter(|bin| binary_version(bin).version.starts_with("9."));
    for bin in std::iter::once(None).chain(valkey9.map(Some)) {
        killed_and_resumed(&ServerOpts {
            bin,
            ..Default::default()
        });
    }
}

fn killed_and_resumed(opts: &ServerOpts) {
    const FILL: usize = 300_000;
    let (servers, _) = three_plus_one(opts, FILL);
    let nodes = servers.names();
    let (mut child, _) = apply_until_moving(
        &servers,
        &["apply", "-m", "4", "-r", "0", "--timeout", "120"],
    );
    let atomic = opts.bin.is_some();
    if !atomic {
        // Into the MIGRATE of some slot.
        std::thread::sleep(Duration::from_millis(150));
    }
    // The premise, from the servers: a move is under way when the run dies. Valkey 9 moves
    // slots itself: an active job in CLUSTER GETSLOTMIGRATIONS. Redis: some but not all of
    // the new primary's share moved, or a slot open.
    let moved = || {
        slot_counts(&servers, 3)
            .get(&servers.port(3))
            .copied()
            .unwrap_or(0)
    };
    let open = || {
        (0..4).any(|idx| {
            let text = servers.text(idx, &["CLUSTER", "NODES"]);
            text.contains("->-") || text.contains("-<-")
        })
    };
    if atomic {
        wait_until(
            "an atomic migration job is active",
            Duration::from_secs(5),
            || (0..4).any(|idx| active_migrations(&servers, idx) > 0),
        );
    } else {
        wait_until("a move under way", Duration::from_secs(5), || {
            open() || (1..4096).contains(&moved())
        });
    }
    // `Child::kill` is SIGKILL on Unix: `kill -9`, no chance to clean up.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "killed by the signal, not finished: {status:?}"
    );
    let left_open = !atomic && open();
    if !atomic {
        // (An atomic migration goes on in the servers after the kill.)
        let moved = moved();
        assert!(moved < 4096, "killed before every slot moved ({moved})");
    }

    let started = Instant::now();
    let out = apply(&nodes, 4, 0, &[]);
    assert_eq!(out.status.code(), Some(0));
    eprintln!("second run: {:.2}s", started.elapsed().as_secs_f64());
    if left_open {
        assert!(
            stderr(&out).contains("finishing slot moves a previous run left open"),
            "{}",
            stderr(&out)
        );
    }
    assert_four_even_primaries_with_every_key(&servers, FILL);
}

/// The port of the node that node `viewer`'s CLUSTER NODES says owns `slot`.
fn slot_owner_port(servers: &Servers, viewer: usize, slot: u16) -> u16 {
    let text = servers.text(viewer, &["CLUSTER", "NODES"]);
    text.lines()
        .find(|line| {
            line.split(' ')
                .skip(8)
                .filter(|f| !f.starts_with('['))
                .any(|f| {
                    let (a, b) = f.split_once('-').unwrap_or((f, f));
                    (a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()).contains(&slot)
                })
        })
        .and_then(|line| {
            line.split(' ')
                .nth(1)?
                .split(['@', ':'])
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("nobody owns slot {slot} in {text}"))
}

/// Jobs of `CLUSTER GETSLOTMIGRATIONS` on node `idx` not yet in a final state.
fn active_migrations(servers: &Servers, idx: usize) -> usize {
    let jobs: Vec<redis::Value> =
        redis::from_redis_value(servers.cmd(idx, &["CLUSTER", "GETSLOTMIGRATIONS"]))
            .unwrap_or_default();
    jobs.into_iter()
        .filter(|job| {
            let fields: Vec<String> = match job {
                redis::Value::Map(pairs) => pairs
                    .iter()
                    .flat_map(|(k, v)| [k, v])
                    .filter_map(|v| redis::from_redis_value(v.clone()).ok())
                    .collect(),
                other => redis::from_redis_value(other.clone()).unwrap_or_default(),
            };
            let state = fields
                .chunks(2)
                .find(|kv| kv[0] == "state")
                .and_then(|kv| kv.get(1))
                .map(String::as_str);
            !matches!(state, Some("success" | "failed" | "cancelled") | None)
        })
        .count()
}

/// A key that already exists on the target stops its slot and says so; nothing is
/// overwritten until `--replace` is given.
#[test]
fn a_key_on_both_sides_stops_the_move_until_replace_is_given() {
    let (servers, slot) = three_plus_one(&ServerOpts::default(), 1000);
    let (source_id, target_id) = (servers.myid(0), servers.myid(3));
    let s = slot.to_string();
    servers.cmd(3, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &source_id]);
    servers.cmd(0, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &target_id]);
    let key = keys_in_slot(&servers, 0, slot)[0].clone();
    // A stale copy on the target, written as a client redirected by ASK would.
    let mut target = servers.conn(3);
    redis::pipe()
        .cmd("ASKING")
        .cmd("SET")
        .arg(&key)
        .arg("stale")
        .query::<()>(&mut target)
        .unwrap();
    let nodes = servers.names();
    let out = apply(&nodes, 4, 0, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("slot {slot} was not moved")) && err.contains("BUSYKEY"),
        "{err}"
    );
    assert!(err.contains("--replace"), "{err}");
    let source_copy: String = servers.conn(0).get(&key).unwrap();
    assert_ne!(source_copy, "stale", "the source keeps its copy");
    let target_copy: String = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .cmd("GET")
        .arg(&key)
        .query::<(String,)>(&mut target)
        .unwrap()
        .0;
    assert_eq!(target_copy, "stale", "nothing was overwritten");

    let out = apply(&nodes, 4, 0, &["--replace"]);
    assert_eq!(out.status.code(), Some(0));
    let mut conn = cluster_client(&servers, 0);
    assert_eq!(conn.get::<_, String>(&key).unwrap(), source_copy);
    assert_eq!(missing_fill(&servers, 0, 1000), 0);
}

/// A member to remove that owns slots and does not answer: refused, nothing sent.
#[test]
fn removing_an_unreachable_node_that_owns_slots_is_refused() {
    let (mut servers, _) = three_plus_one(&ServerOpts::default(), 1000);
    let nodes = servers.names();
    assert_eq!(apply(&nodes, 4, 0, &[]).status.code(), Some(0));
    servers.stop(3);
    let before = servers.snapshot_of(&[0, 1, 2]);
    let out = apply(&nodes[..3], 3, 0, &["--remove-unlisted"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does not answer while it owns slots"),
        "{}",
        stderr(&out)
    );
    before.assert_unchanged(&servers.snapshot_of(&[0, 1, 2]), "a refused removal");
}

/// Redis 6.2, Valkey 8.1 and Valkey 9.1: a primary added and removed again with its keys.
#[test]
fn other_versions_grow_and_shrink_with_their_keys() {
    for bin in other_servers() {
        let version = binary_version(&bin);
        let opts = ServerOpts {
            bin: Some(bin.clone()),
            ..Default::default()
        };
        let (servers, _) = three_plus_one(&opts, 20_000);
        servers.assert_running(&bin);
        let nodes = servers.names();
        // The engine is chosen from what the servers are: Valkey 9 moves slots itself.
        let planned = clustersmith(&with_nodes(&["plan", "-m", "4", "-r", "0"], &nodes), &[]);
        let atomic = version.flavour == "valkey" && version.version.starts_with("9.");
        assert_eq!(
            stdout(&planned).contains("moved by: atomic slot migration (CLUSTER MIGRATESLOTS)"),
            atomic,
            "{version:?}: {}",
            stdout(&planned)
        );
        let load = start_load(&servers, 0, 500);
        let grown = apply(&nodes, 4, 0, &[]);
        assert_eq!(grown.status.code(), Some(0), "{version:?}");
        assert_balanced(&servers, 0, 4);
        let shrunk = apply(&nodes[..3], 3, 0, &["--remove-unlisted"]);
        assert_eq!(shrunk.status.code(), Some(0), "{version:?}");
        assert_balanced(&servers, 0, 3);
        let report = load.finish().unwrap();
        assert_load_kept(&report, 200, &format!("{version:?}"));
        assert_eq!(
            missing_fill(&servers, 0, 20_000),
            0,
            "{version:?}: keys lost"
        );
        assert_eq!(
            keys_on_primaries(&servers, &[0, 1, 2]),
            20_200 + report.acked,
            "{version:?}"
        );
    }
}

/// While another apply is at work (its connection is named, as every apply names its own),
/// a second one refuses and changes nothing; once it is gone, the second one runs.
#[test]
fn a_second_apply_at_work_on_the_cluster_is_refused() {
    let (servers, _) = three_plus_one(&ServerOpts::default(), 1000);
    let nodes = servers.names();
    let mut other = servers.conn(2);
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("clustersmith-apply:4242")
        .query::<()>(&mut other)
        .unwrap();
    let before = servers.snapshot();
    let out = apply(&nodes, 4, 0, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("another clustersmith apply is at work on this cluster")
            && err.contains("name=clustersmith-apply:4242"),
        "{err}"
    );
    before.assert_unchanged(&servers.snapshot(), "a refused concurrent apply");
    drop(other);
    wait_until("the other client is gone", Duration::from_secs(10), || {
        !servers
            .text(2, &["CLIENT", "LIST"])
            .contains("clustersmith-apply:4242")
    });
    assert_eq!(apply(&nodes, 4, 0, &[]).status.code(), Some(0));
    assert_balanced(&servers, 0, 4);
}

/// `weight=` gives a primary a larger share: the slots move to follow it, and `verify` passes
/// against the weighted layout without a balance warning.
#[test]
fn weights_set_the_primaries_shares() {
    let servers = Servers::start(3);
    let nodes = servers.names();
    assert_eq!(apply(&nodes, 3, 0, &[]).status.code(), Some(0));
    fill(&servers, 0, 5000);
    let weighted: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if i == 1 {
                format!("{n},weight=2")
            } else {
                n.clone()
            }
        })
        .collect();
    assert_eq!(apply(&weighted, 3, 0, &[]).status.code(), Some(0));
    let counts = slot_counts(&servers, 0);
    assert_eq!(counts[&servers.port(1)], 8192, "{counts:?}");
    assert_eq!(
        counts[&servers.port(0)] + counts[&servers.port(2)],
        8192,
        "{counts:?}"
    );
    let verify = clustersmith(&with_nodes(&["verify", "-m", "3"], &weighted), &[]);
    assert_eq!(verify.status.code(), Some(0));
    assert!(!stdout(&verify).contains("WARN"), "{}", stdout(&verify));
    assert_eq!(missing_fill(&servers, 0, 5000), 0);
}

/// A target that stops answering mid-move: the run stops with exit 3, naming the slot and the
/// state it is left in; once the node answers again, the next run finishes with no key lost.
#[test]
fn a_node_failing_mid_move_stops_the_run_with_exit_3_and_the_next_run_finishes() {
    const FILL: usize = 300_000;
    let (servers, _) = three_plus_one(&ServerOpts::default(), FILL);
    let nodes = servers.names();
    let (mut child, log) = apply_until_moving(
        &servers,
        &[
            "apply",
            "-m",
            "4",
            "-r",
            "0",
            "--timeout",
            "120",
            "--response-timeout",
            "2000",
        ],
    );
    std::thread::sleep(Duration::from_millis(100));
    let frozen = Frozen::new(servers.servers[3].pid);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "apply did not stop on the frozen target"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains("was not moved from") && err.contains("slot left: open"),
        "{err}"
    );
    drop(frozen);

    let out = apply(&nodes, 4, 0, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_four_even_primaries_with_every_key(&servers, FILL);
}

/// With a password on every node, `MIGRATE` presents it to the target (`AUTH`) and no key is
/// lost; the password never shows in the output.
#[test]
fn slots_move_on_a_cluster_with_a_password() {
    const PASSWORD: &str = "migrate-s3cret";
    let opts = ServerOpts {
        password: Some(PASSWORD.into()),
        ..Default::default()
    };
    let (servers, _) = three_plus_one(&opts, 5000);
    let out = apply_as(&servers.names(), 4, 0, &[], Some(PASSWORD));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !stdout(&out).contains(PASSWORD) && !stderr(&out).contains(PASSWORD),
        "the password was printed"
    );
    assert_balanced(&servers, 0, 4);
    assert_eq!(missing_fill(&servers, 0, 5000), 0, "keys lost");
}

/// `--reset-removed`: once every spec node has forgotten a removed member, it is reset and
/// forgets the cluster too (and no longer replicates anyone).
#[test]
fn a_removed_member_is_reset_when_asked() {
    let (servers, _) = three_plus_one(&ServerOpts::default(), 5000);
    let nodes = servers.names();
    assert_eq!(apply(&nodes, 4, 0, &[]).status.code(), Some(0));
    let old_id = servers.myid(3);
    let out = apply(&nodes[..3], 3, 0, &["--remove-unlisted", "--reset-removed"]);
    assert_eq!(out.status.code(), Some(0));
    assert_balanced(&servers, 0, 3);
    let own = servers.text(3, &["CLUSTER", "NODES"]);
    assert_eq!(
        own.lines().count(),
        1,
        "the removed node knows only itself: {own}"
    );
    assert!(own.contains("myself,master"), "{own}");
    // A hard reset: a new id, so that adding it back is not refused by the forget ban.
    assert_ne!(servers.myid(3), old_id);
    for idx in 0..3 {
        assert_eq!(servers.text(idx, &["CLUSTER", "NODES"]).lines().count(), 3);
    }
    assert_eq!(missing_fill(&servers, 0, 5000), 0, "keys lost");
}

/// `apply … 2>&1 | head -3` (issue 23 §2): the reader goes away while slots move. The run must
/// neither panic nor stop with slots open: it finishes the move and converges, for a closed
/// stderr and a closed stdout alike.
#[test]
fn apply_whose_output_pipe_closes_mid_move_finishes_the_move() {
    for closed in ["stderr", "stdout"] {
        let (servers, _) = three_plus_one(&ServerOpts::default(), 100_000);
        let (reader, writer) = std::io::pipe().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clustersmith"));
        cmd.args(with_nodes(
            &["apply", "-m", "4", "-r", "0", "--timeout", "120"],
            &servers.names(),
        ));
        // Progress always goes to stderr; the other stream is the closed pipe too, as with
        // `2>&1 | head`.
        let mut child = if closed == "stderr" {
            cmd.stdout(Stdio::null()).stderr(writer)
        } else {
            cmd.stdout(writer.try_clone().unwrap()).stderr(writer)
        }
        .spawn()
        .unwrap();
        drop(cmd);
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(reader));
        // The premise: the run is moving slots when its reader goes away.
        let moving = lines
            .by_ref()
            .take(500)
            .map_while(Result::ok)
            .any(|line| line.contains("moving slots:"));
        assert!(moving, "{closed}: apply never said it was moving slots");
        let still_moving = (0..4).any(|idx| {
            let nodes = servers.text(idx, &["CLUSTER", "NODES"]);
            nodes.contains("->-") || nodes.contains("-<-")
        }) || slot_counts(&servers, 3)
            .get(&servers.port(3))
            .copied()
            .unwrap_or(0)
            < 4096;
        assert!(
            still_moving,
            "{closed}: the move was over before the pipe closed"
        );
        drop(lines);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{closed}: {status:?}");
        assert_balanced(&servers, 0, 4);
        no_open_slots(&servers, &[0, 1, 2, 3]);
        assert_eq!(missing_fill(&servers, 0, 100_000), 0, "{closed}: keys lost");
    }
}

/// `diagnose` while an `apply` drains a member (issue 23 §3): the move's intermediate states
/// (open slots, a member outside the given set being drained) are its progress, shown as
/// CS311, not reported as a stuck migration (CS307) or a foreign cluster (CS310).
#[test]
fn diagnose_during_a_move_shows_the_move_not_faults() {
    const FILL: usize = 300_000;
    let (servers, _) = three_plus_one(&ServerOpts::default(), FILL);
    let nodes = servers.names();
    assert_eq!(apply(&nodes, 4, 0, &[]).status.code(), Some(0));
    let log = servers.path().join("apply.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(with_nodes(
            &[
                "apply",
                "-m",
                "3",
                "-r",
                "0",
                "--remove-unlisted",
                "--timeout",
                "120",
            ],
            &nodes[..3],
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("apply starts moving slots", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("moving slots:")
    });
    let out = clustersmith(
        &with_nodes(
            &["diagnose", "-m", "3", "-r", "0", "--format", "json"],
            &nodes[..3],
        ),
        &[],
    );
    // The premise: the move was still under way when diagnose looked (open slots on the
    // drained member, seen by diagnose itself, and the apply not finished yet).
    let running = child.try_wait().unwrap().is_none();
    let report = json(&out);
    let text = report.to_string();
    assert!(running, "the apply finished before diagnose looked");
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&"CS311"), "{text}");
    assert!(text.contains("clustersmith apply is at work"), "{text}");
    assert!(
        !ids.contains(&"CS307") && !ids.contains(&"CS310"),
        "{ids:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "no fault while the move runs: {text}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Once it is over, nothing is under way.
    let after = json(&clustersmith(
        &with_nodes(
            &["diagnose", "-m", "3", "-r", "0", "--format", "json"],
            &nodes[..3],
        ),
        &[],
    ));
    assert!(!after.to_string().contains("CS311"), "{after}");
}
