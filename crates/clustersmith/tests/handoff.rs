//! `clustersmith handoff` on real servers (issue 20 §1): a primary hands its role to a fit
//! replica under an independent write load that loses nothing and fails no write; a replica
//! handed over is left as it is; a primary with no fit replica is refused (CS360) with
//! nothing changed.

mod support;

use std::time::Duration;

use support::*;

/// Six servers formed as 3+3; returns them.
fn three_plus_three(opts: &ServerOpts) -> Servers {
    let servers = Servers::start_with(6, opts);
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "3", "-r", "1"], &servers.ips()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    servers
}

fn role(servers: &Servers, idx: usize) -> String {
    servers.info_field(idx, "replication", "role").unwrap()
}

/// `CLUSTER FAILOVER` calls a node has run (`INFO commandstats`), rejected ones included.
fn failovers(servers: &Servers, idx: usize) -> u64 {
    let stats = servers.text(idx, &["INFO", "commandstats"]);
    stats
        .lines()
        .find(|l| l.starts_with("cmdstat_cluster|failover:"))
        .map_or(0, |line| {
            let field = |name: &str| -> u64 {
                line.split([':', ','])
                    .find_map(|kv| kv.strip_prefix(&format!("{name}="))?.parse().ok())
                    .unwrap_or(0)
            };
            field("calls") + field("rejected_calls")
        })
}

#[test]
fn a_primary_hands_its_role_to_a_replica_with_no_write_lost() {
    let servers = three_plus_three(&ServerOpts::default());
    let load = start_load(&servers, 0, 1000);
    let primary = (0..6).find(|i| role(&servers, *i) == "master").unwrap();
    let addr = format!("127.0.0.1:{}", servers.port(primary));
    let out = clustersmith(&["handoff", &addr], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The premise held: it was a primary, and now it is a replica of the new primary.
    assert_eq!(role(&servers, primary), "slave");
    let successor = (0..6)
        .find(|i| {
            stdout(&out).contains(&format!("`127.0.0.1:{}` is the primary", servers.port(*i)))
        })
        .unwrap_or_else(|| panic!("{}", stdout(&out)));
    assert_eq!(role(&servers, successor), "master");
    assert!(load.wait_for_writes(500, Duration::from_secs(10)));
    let report = load.finish().unwrap();
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
    // A coordinated handoff pauses writers for a moment, nothing like a failover by timeout.
    assert!(report.longest_gap_ms() < 2000.0, "{}", report.summary());
    // Handing the same node over again: it is a replica now, nothing is sent.
    let before: u64 = (0..6).map(|i| failovers(&servers, i)).sum();
    let again = clustersmith(&["handoff", &addr], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to hand over"),
        "{}",
        stdout(&again)
    );
    let after: u64 = (0..6).map(|i| failovers(&servers, i)).sum();
    assert_eq!(
        before, after,
        "a replica handed over sends no CLUSTER FAILOVER"
    );
}

#[test]
fn a_primary_without_a_fit_replica_is_refused_and_nothing_changes() {
    let mut servers = three_plus_three(&ServerOpts::default());
    let primary = (0..6).find(|i| role(&servers, *i) == "master").unwrap();
    let primary_id = servers.myid(primary);
    let replica = (0..6)
        .find(|i| {
            servers
                .text(*i, &["CLUSTER", "NODES"])
                .lines()
                .any(|l| l.contains("myself,slave") && l.contains(&primary_id))
        })
        .unwrap();
    servers.stop(replica);
    // The premise: its only replica is gone, as its primary sees it.
    wait_until(
        "the primary sees its replica gone",
        Duration::from_secs(10),
        || {
            servers
                .info_field(primary, "replication", "connected_slaves")
                .as_deref()
                == Some("0")
        },
    );
    let before = servers.snapshot_of(
        &[0, 1, 2, 3, 4, 5]
            .into_iter()
            .filter(|i| *i != replica)
            .collect::<Vec<_>>(),
    );
    let addr = format!("127.0.0.1:{}", servers.port(primary));
    let out = clustersmith(&["handoff", &addr, "--timeout", "10"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CS360"), "{}", stderr(&out));
    assert_eq!(role(&servers, primary), "master");
    before.assert_unchanged(
        &servers.snapshot_of(
            &[0, 1, 2, 3, 4, 5]
                .into_iter()
                .filter(|i| *i != replica)
                .collect::<Vec<_>>(),
        ),
        "a refused handoff",
    );
    let explained = clustersmith(&["explain", "CS360"], &[]);
    assert!(stdout(&explained).contains("no-fit-replica"));
}
