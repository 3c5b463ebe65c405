//! The node-fact rules on text captured from Redis 7.0.15 (replies, logs, stderr on exit),
//! and how the symptoms they cause on peers hang under them.

use super::super::*;
use crate::parse::{RedisConf, parse_redis_conf, parse_server_log};

const A_ID: &str = "5be3d949f56e77d5848af97f1d8825e1c29f3270";
const B_ID: &str = "5d75611c1b16e9424a79b40c5b624c87e6152166";

/// The log of a server that found its port taken (Redis 7.0.15, captured).
const BIND_FAILED_LOG: &str = "28009:C 02 Dec 2026 05:19:04.840 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n28009:C 02 Dec 2026 05:19:04.840 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=28009, just started\n28009:C 02 Dec 2026 05:19:04.840 # Configuration loaded\n28009:M 02 Dec 2026 05:19:04.841 * monotonic clock: POSIX clock_gettime\n28009:M 02 Dec 2026 05:19:04.841 # Warning: Could not create server TCP listening socket 127.0.0.1:20991: bind: Address already in use\n28009:M 02 Dec 2026 05:19:04.841 # Failed listening on port 20991 (TCP), aborting.\n";
/// A server stopped with SIGTERM (captured).
const SIGTERM_LOG: &str = "28001:M 02 Dec 2026 05:19:04.313 * Ready to accept connections\n28001:signal-handler (1796188746) Received SIGTERM scheduling shutdown...\n28001:M 02 Dec 2026 05:19:06.524 # User requested shutdown...\n28001:M 02 Dec 2026 05:19:06.524 * Removing the pid file.\n28001:M 02 Dec 2026 05:19:06.524 # Redis is now ready to exit, bye bye...\n";
/// What `redis-server redis.conf 2>>server.log` leaves for a bad line (captured).
const CONFIG_ERROR_LOG: &str = "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 5\n>>> 'bogus-directive yes'\nBad directive or wrong number of arguments\n";
const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

use crate::testing::view;

fn conf(path: &str, text: &str) -> Option<SourceFile<RedisConf>> {
    Some(SourceFile {
        path: path.into(),
        value: parse_redis_conf(text).value,
    })
}

fn log(path: &str, text: &str) -> Option<SourceFile<crate::parse::ServerLog>> {
    Some(SourceFile {
        path: path.into(),
        value: parse_server_log(text).value,
    })
}

/// A member at 127.0.0.1:20991 with every slot that knows only itself (fresh, never met).
fn lone_member() -> NodeEvidence {
    NodeEvidence {
        key: "127.0.0.1:20991".into(),
        ip: Some("127.0.0.1".parse().unwrap()),
        port: Some(20991),
        live: Some(view(
            &format!("{A_ID} 127.0.0.1:20991@30991 myself,master - 0 0 0 connected 0-16383\n"),
            "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_known_nodes:1\n",
            "role:master\nredis_version:7.0.15\n",
        )),
        facts: Some(NodeFacts {
            answer: Answer::Member,
            reply: "CLUSTER NODES".into(),
            version: Some("Redis 7.0.15".into()),
        }),
        redis_conf: conf(
            "/srv/a/redis.conf",
            "port 20991\nbind 127.0.0.1\ncluster-enabled yes\ndir /srv/a\nlogfile /srv/a/server.log\n",
        ),
        ..Default::default()
    }
}

/// The second expected node, at 127.0.0.1:20992, answering as `answer`.
fn second(answer: Answer, reply: &str) -> NodeEvidence {
    NodeEvidence {
        key: "127.0.0.1:20992".into(),
        ip: Some("127.0.0.1".parse().unwrap()),
        port: Some(20992),
        unreachable: Some(reply.into()),
        facts: Some(NodeFacts {
            answer,
            reply: reply.into(),
            version: None,
        }),
        redis_conf: conf(
            "/srv/b/redis.conf",
            "port 20992\nbind 127.0.0.1\ncluster-enabled yes\ndir /srv/b\nlogfile /srv/b/server.log\n",
        ),
        ..Default::default()
    }
}

/// The second node as a working member (the quiet counterpart).
fn second_member() -> NodeEvidence {
    let mut node = second(Answer::Member, "CLUSTER NODES");
    node.unreachable = None;
    node.live = Some(view(
        &format!("{B_ID} 127.0.0.1:20992@30992 myself,master - 0 0 0 connected\n"),
        "cluster_state:fail\ncluster_slots_assigned:0\ncluster_known_nodes:1\n",
        "role:master\n",
    ));
    node
}

fn pair(b: NodeEvidence) -> Inputs {
    Inputs {
        nodes: vec![lone_member(), b],
        expected: Some(Expected {
            primaries: 1,
            replicas_per_primary: 1,
        }),
        ..Default::default()
    }
}

fn pair_with(answer: Answer, reply: &str, edit: impl Fn(&mut NodeEvidence)) -> Inputs {
    let mut b = second(answer, reply);
    edit(&mut b);
    pair(b)
}

/// (rule id, a case where it must fire, a case where it must stay quiet), for the registry
/// test in `diagnose::tests`.
pub(in crate::diagnose) fn cases() -> Vec<(&'static str, Inputs, Inputs)> {
    vec![
        (
            "CS330",
            pair_with(Answer::Refused, "connection refused", |b| {
                b.log = log("/srv/b/server.log", SIGTERM_LOG);
            }),
            pair(second_member()),
        ),
        (
            "CS331",
            pair(second(Answer::TimedOut, "timed out")),
            pair(second_member()),
        ),
        (
            "CS332",
            pair(second(Answer::ClusterDisabled, CLUSTER_DISABLED)),
            pair(second_member()),
        ),
        (
            "CS333",
            pair(second(
                Answer::ProtectedMode,
                "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.",
            )),
            pair(second_member()),
        ),
        (
            "CS334",
            pair(second(
                Answer::Loading,
                "LOADING Redis is loading the dataset in memory",
            )),
            pair(second_member()),
        ),
        (
            "CS335",
            pair(second(
                Answer::OtherProtocol { wants_tls: true },
                "the port closed a plaintext connection and does not answer plaintext Redis protocol: it expects TLS",
            )),
            pair(second_member()),
        ),
        (
            "CS336",
            pair_with(
                Answer::Refusing,
                "ERR unknown command 'CLUSTER', with args beginning with: 'NODES' ",
                |b| {
                    b.redis_conf = conf(
                        "/srv/b/redis.conf",
                        "port 20992\nrename-command CLUSTER \"\"\n",
                    );
                },
            ),
            pair(second_member()),
        ),
        (
            "CS338",
            pair_with(
                Answer::AuthRefused,
                "authentication required (NOAUTH)",
                |b| {
                    b.redis_conf =
                        conf("/srv/b/redis.conf", "port 20992\nrequirepass \"s3cret\"\n");
                },
            ),
            pair(second_member()),
        ),
        (
            "CS337",
            pair_with(Answer::Refused, "connection refused", |b| {
                b.redis_conf = conf(
                    "/srv/b/redis.conf",
                    "port 20991\nbind 127.0.0.1\ncluster-enabled yes\ndir /srv/b\nlogfile /srv/b/server.log\n",
                );
                b.log = log("/srv/b/server.log", BIND_FAILED_LOG);
            }),
            pair(second_member()),
        ),
    ]
}

fn top(findings: &[Finding]) -> (&str, Option<&str>) {
    (
        findings[0].rule.id,
        findings[0].node.as_ref().map(|k| k.label()),
    )
}

fn symptoms(finding: &Finding) -> Vec<(&str, Option<&str>)> {
    finding
        .symptoms
        .iter()
        .map(|s| (s.rule.id, s.node.as_ref().map(|k| k.label())))
        .collect()
}

#[test]
fn a_stopped_node_of_a_pair_is_the_cause_and_its_peer_alone_is_the_symptom() {
    let inputs = pair_with(Answer::Refused, "connection refused", |b| {
        b.log = log("/srv/b/server.log", SIGTERM_LOG);
    });
    let findings = diagnose(&inputs);
    assert_eq!(
        top(&findings),
        ("CS330", Some("127.0.0.1:20992")),
        "{findings:#?}"
    );
    assert_eq!(symptoms(&findings[0]), [("CS301", Some("127.0.0.1:20991"))]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0].summary.contains("User requested shutdown"),
        "{}",
        findings[0].summary
    );
    let texts: Vec<&str> = findings[0]
        .evidence
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert!(texts.contains(&"connection refused"), "{texts:?}");
    assert!(
        texts.contains(&"Redis is now ready to exit, bye bye..."),
        "{texts:?}"
    );
}

#[test]
fn a_node_that_could_not_bind_its_port_is_traced_to_the_node_holding_it() {
    let (_, inputs, _) = cases().into_iter().find(|c| c.0 == "CS337").unwrap();
    let findings = diagnose(&inputs);
    assert_eq!(
        top(&findings),
        ("CS337", Some("127.0.0.1:20992")),
        "{findings:#?}"
    );
    assert!(
        findings[0].summary.contains("port"),
        "{}",
        findings[0].summary
    );
    // Its failed listen (the log catalog's CS502), its not running, and its peer left
    // alone, hang under it: one top finding for the broken node.
    let mut found = symptoms(&findings[0]);
    found.sort();
    assert_eq!(
        found,
        [
            ("CS301", Some("127.0.0.1:20991")),
            ("CS330", Some("127.0.0.1:20992")),
            ("CS502", Some("127.0.0.1:20992"))
        ]
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let down: Vec<&Finding> = findings[0]
        .symptoms
        .iter()
        .filter(|s| s.rule.id == "CS330")
        .collect();
    assert!(
        down[0].summary.contains("Failed listening on port 20991"),
        "{}",
        down[0].summary
    );
    // Its redis.conf says the port of another node, not the one it is expected at.
    assert!(
        down[0]
            .evidence
            .iter()
            .any(|e| e.text == "port 20991 (expected at port 20992)"),
        "{:#?}",
        down[0].evidence
    );
}

#[test]
fn the_odd_password_is_named_without_showing_it() {
    let (_, inputs, _) = cases().into_iter().find(|c| c.0 == "CS338").unwrap();
    let findings = diagnose(&inputs);
    assert_eq!(top(&findings), ("CS338", Some("127.0.0.1:20992")));
    let text = format!("{findings:?}");
    assert!(
        text.contains("requirepass is set") && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn a_config_error_printed_on_exit_is_the_reason() {
    let inputs = pair_with(Answer::Refused, "connection refused", |b| {
        b.log = log("/srv/b/server.log", CONFIG_ERROR_LOG);
    });
    let findings = diagnose(&inputs);
    // The catalog's rule for the refused line is the cause; the node not running (with the
    // same lines as its reason) and its lonely peer hang under it.
    assert_eq!(top(&findings), ("CS501", Some("127.0.0.1:20992")));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let mut found = symptoms(&findings[0]);
    found.sort();
    assert_eq!(
        found,
        [
            ("CS301", Some("127.0.0.1:20991")),
            ("CS330", Some("127.0.0.1:20992"))
        ]
    );
    let down = findings[0]
        .symptoms
        .iter()
        .find(|s| s.rule.id == "CS330")
        .unwrap();
    assert!(
        down.summary
            .ends_with("Bad directive or wrong number of arguments"),
        "{}",
        down.summary
    );
    assert!(
        down.evidence
            .iter()
            .any(|e| e.text == "refused config line (config line 5): bogus-directive yes")
    );
}

#[test]
fn peers_in_handshake_with_a_standalone_node_hang_under_it() {
    let mut inputs = pair_with(Answer::ClusterDisabled, CLUSTER_DISABLED, |b| {
        b.redis_conf = conf("/srv/b/redis.conf", "port 20992\ncluster-enabled no\n");
    });
    // The member sent MEET to the standalone node: a handshake entry that never completes.
    inputs.nodes[0].live = Some(view(
        &format!(
            "{A_ID} 127.0.0.1:20991@30991 myself,master - 0 0 0 connected 0-16383\n0123456789abcdef0123456789abcdef01234567 127.0.0.1:20992@30992 handshake - 1764652744000 0 0 disconnected\n"
        ),
        "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_known_nodes:2\n",
        "role:master\n",
    ));
    let findings = diagnose(&inputs);
    assert_eq!(
        top(&findings),
        ("CS332", Some("127.0.0.1:20992")),
        "{findings:#?}"
    );
    assert_eq!(symptoms(&findings[0]), [("CS303", Some("127.0.0.1:20991"))]);
    // The redis.conf line that disables it is evidence.
    assert!(
        findings[0]
            .evidence
            .iter()
            .any(|e| e.text == "cluster-enabled no")
    );
}

#[test]
fn a_replica_of_a_primary_that_is_gone_hangs_under_it() {
    let mut inputs = pair(second(Answer::Refused, "connection refused"));
    inputs.nodes[0].live = Some(view(
        &format!(
            "{A_ID} 127.0.0.1:20991@30991 myself,slave {B_ID} 0 0 1 connected\n{B_ID} 127.0.0.1:20992@30992 master,fail - 1764652744000 1764652743000 1 disconnected 0-16383\n"
        ),
        "cluster_state:fail\ncluster_slots_assigned:16384\ncluster_known_nodes:2\n",
        "role:slave\nmaster_host:127.0.0.1\nmaster_port:20992\nmaster_link_status:down\n",
    ));
    let findings = diagnose(&inputs);
    assert_eq!(
        top(&findings),
        ("CS330", Some("127.0.0.1:20992")),
        "{findings:#?}"
    );
    let mut found = symptoms(&findings[0]);
    found.sort();
    assert_eq!(
        found,
        [
            ("CS204", Some("127.0.0.1:20991")),
            ("CS303", Some("127.0.0.1:20991"))
        ]
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn nodes_on_different_hosts_may_use_the_same_port_and_paths() {
    // The BOSH layout: every VM has port 6379 and /var/vcap/store/<job>/nodes.conf.
    let text = "port 6379\ndir /var/vcap/store/cluster-6\nlogfile /var/vcap/sys/log/cluster-6/cluster-6.log\n";
    let node = |ip: &str| NodeEvidence {
        key: format!("{ip}:6379").as_str().into(),
        ip: Some(ip.parse().unwrap()),
        port: Some(6379),
        redis_conf: conf("/var/vcap/jobs/cluster-6/config/redis.conf", text),
        ..Default::default()
    };
    let mut inputs = Inputs {
        nodes: vec![node("10.0.0.5"), node("10.0.0.6")],
        ..Default::default()
    };
    assert!(crate::diagnose::rules::node_facts::shared_between_nodes(&inputs).is_empty());
    // On one host, the same files are a finding; so is one port on two binds that overlap.
    inputs.nodes[1].ip = inputs.nodes[0].ip;
    inputs.nodes[1].redis_conf.as_mut().unwrap().path = "/other/redis.conf".into();
    let hits = crate::diagnose::rules::node_facts::shared_between_nodes(&inputs);
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0]
            .summary
            .contains("port, nodes.conf, log file, RDB file"),
        "{}",
        hits[0].summary
    );
    // Distinct binds on one port do not collide.
    inputs.nodes[0].redis_conf = conf("/a/redis.conf", "port 6379\nbind 127.0.0.1\n");
    inputs.nodes[1].redis_conf = conf("/b/redis.conf", "port 6379\nbind 127.0.0.2\n");
    assert!(crate::diagnose::rules::node_facts::shared_between_nodes(&inputs).is_empty());
}
