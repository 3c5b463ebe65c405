//! `clustersmith evacuate` on real servers (issue 20 §4, the scale-in): a primary's slots move,
//! keys and all, to the other primaries that serve slots, under an independent write load that
//! loses nothing and fails no write, and its replica is re-homed; a second run and a replica
//! have nothing to evacuate; the last primary that serves slots is refused (CS302) with
//! nothing changed; a run killed while slots are open is finished by the next one.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Six servers formed as 3+3.
fn three_plus_three() -> Servers {
    let servers = Servers::start_with(6, &ServerOpts::default());
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "3", "-r", "1"], &servers.ips()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    servers
}

fn addr(servers: &Servers, idx: usize) -> String {
    format!("127.0.0.1:{}", servers.port(idx))
}

/// The primaries, by index, as their own `INFO replication` says.
fn primaries(servers: &Servers) -> Vec<usize> {
    (0..6)
        .filter(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("master"))
        .collect()
}

/// The slot ranges `viewer` gives to node `idx` (open-slot markers left out).
fn ranges_of(servers: &Servers, viewer: usize, idx: usize) -> Vec<(u16, u16)> {
    let id = servers.myid(idx);
    let text = servers.text(viewer, &["CLUSTER", "NODES"]);
    let line = text.lines().find(|l| l.starts_with(&id)).unwrap();
    line.split_whitespace()
        .skip(8)
        .filter(|w| !w.starts_with('['))
        .map(|w| match w.split_once('-') {
            Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
            None => (w.parse().unwrap(), w.parse().unwrap()),
        })
        .collect()
}

/// How many slots `viewer` gives to node `idx`.
fn slots_of(servers: &Servers, viewer: usize, idx: usize) -> usize {
    ranges_of(servers, viewer, idx)
        .iter()
        .map(|(a, b)| usize::from(b - a) + 1)
        .sum()
}

#[test]
fn a_primary_is_evacuated_under_load_with_no_write_lost() {
    let servers = three_plus_three();
    let load = start_load(&servers, 0, 1000);
    let all = primaries(&servers);
    let (gone, staying) = (all[0], [all[1], all[2]]);
    // The premise: it serves slots, and its shard holds keys.
    assert!(slots_of(&servers, 0, gone) > 5000);
    wait_until("keys reach its shard", Duration::from_secs(10), || {
        servers.text(gone, &["DBSIZE"]).trim() != "0"
    });
    let replica = (0..6)
        .find(|i| {
            servers
                .info_field(*i, "replication", "master_port")
                .as_deref()
                == Some(&servers.port(gone).to_string())
        })
        .unwrap();
    let before: Vec<usize> = staying.iter().map(|p| slots_of(&servers, 0, *p)).collect();

    let out = clustersmith(
        &["evacuate", &addr(&servers, gone), "--format", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["done"], true);
    assert!(doc["slots_moved"].as_u64().unwrap() > 5000, "{doc}");
    assert_eq!(
        doc["rehomed"][0]["replica"],
        addr(&servers, replica),
        "{doc}"
    );

    assert_eq!(slots_of(&servers, 0, gone), 0);
    let after: Vec<usize> = staying.iter().map(|p| slots_of(&servers, 0, *p)).collect();
    assert_eq!(after.iter().sum::<usize>(), 16384);
    assert!(after[0].abs_diff(after[1]) <= 1, "{before:?} -> {after:?}");
    // Re-homed onto a primary that stays, with its link up.
    let home = servers
        .info_field(replica, "replication", "master_port")
        .unwrap();
    assert!(staying.iter().any(|p| servers.port(*p).to_string() == home));
    wait_until(
        "the re-homed replica's link is up",
        Duration::from_secs(10),
        || {
            servers
                .info_field(replica, "replication", "master_link_status")
                .as_deref()
                == Some("up")
        },
    );
    let report = load.finish().unwrap();
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());

    // Again, and a replica: nothing to evacuate, nothing sent.
    for idx in [gone, replica] {
        let before = servers.snapshot();
        let out = clustersmith(&["evacuate", &addr(&servers, idx)], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("nothing to evacuate"),
            "{}",
            stdout(&out)
        );
        before.assert_untouched(&servers.snapshot(), "an evacuation with nothing to do");
    }
    // Down to one primary serving slots: it cannot go.
    let out = clustersmith(&["evacuate", &addr(&servers, staying[0])], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_refused(
        &servers,
        &["evacuate", &addr(&servers, staying[1])],
        &[],
        "no other primary serves slots",
    );
}

/// Killed (SIGKILL) while slots are open on the servers, then run again: the second run
/// finishes the open move first, then the rest; every key is still there.
#[test]
fn an_evacuation_killed_mid_move_is_finished_by_the_next_run() {
    let servers = three_plus_three();
    let gone = primaries(&servers)[0];
    // Enough keys in its slots that moving them takes a while: 60 000, by pipelines.
    let owned = ranges_of(&servers, gone, gone);
    let mut conn = servers.conn(gone);
    let mut written = 0;
    let mut n = 0u64;
    while written < 60_000 {
        let mut pipe = redis::pipe();
        let mut batch = 0;
        while batch < 1000 {
            n += 1;
            let key = format!("k:{n}");
            let slot = clustersmith_load::slot::key_slot(key.as_bytes());
            if owned.iter().any(|(a, b)| (*a..=*b).contains(&slot)) {
                pipe.cmd("SET").arg(&key).arg("v").ignore();
                batch += 1;
            }
        }
        let () = pipe.query(&mut conn).unwrap();
        written += batch;
    }
    let keys_before: u64 = primaries(&servers)
        .iter()
        .map(|p| servers.text(*p, &["DBSIZE"]).trim().parse::<u64>().unwrap())
        .sum();
    let log = servers.path().join("evacuate.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(["evacuate", &addr(&servers, gone)])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The premise: a slot is open on the servers when the run dies.
    wait_until("a slot is open", Duration::from_secs(60), || {
        (0..6).any(|idx| {
            let nodes = servers.text(idx, &["CLUSTER", "NODES"]);
            nodes.contains("->-") || nodes.contains("-<-")
        })
    });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by SIGKILL: {status:?}");
    let out = clustersmith(&["evacuate", &addr(&servers, gone)], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a previous run left open"),
        "the open move is finished first:\n{}",
        stderr(&out)
    );
    assert_eq!(slots_of(&servers, 0, gone), 0);
    for idx in 0..6 {
        let nodes = servers.text(idx, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains("->-") && !nodes.contains("-<-"), "{nodes}");
    }
    let keys_after: u64 = primaries(&servers)
        .iter()
        .map(|p| servers.text(*p, &["DBSIZE"]).trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(keys_after, keys_before);
}
