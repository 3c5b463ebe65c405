//! Every rule fires on a case built from real captured text (the seed write-up's logs and
//! replies, or server output) and stays quiet on its healthy counterpart; the registry is
//! checked for complete, unique, acyclic entries.

use std::collections::BTreeSet;

use super::rules::{environment, identity, server_config, sync_loop};
use super::*;
use crate::model::NodeId;
use crate::parse::{
    parse_cluster_nodes, parse_post_deploy_log, parse_redis_conf, parse_server_log,
};

const SEED_S1_POST_DEPLOY: &str =
    include_str!("../../tests/fixtures/seed/scenario1-post-deploy.stderr.log");
const SEED_S2_POST_DEPLOY: &str =
    include_str!("../../tests/fixtures/seed/scenario2-post-deploy.stderr.log");
const SEED_S1_LOG: &str = include_str!("../../tests/fixtures/seed/scenario1-cluster-6.log");
const SEED_TLS_LOG: &str = include_str!("../../tests/fixtures/seed/tls-primary-cluster-6.log");
const SEED_NOAUTH_LOG: &str =
    include_str!("../../tests/fixtures/seed/noauth-replica-cluster-6.log");
const SEED_SYNC_LOG: &str = include_str!("../../tests/fixtures/seed/sync-replica-cluster-6.log");

// The seed's scenario 1: a primary with every slot that knows only itself.
const S1_NODES: &str = "bfc3177710a27823762881570ce93e62ac6fd751 :6379@16379 myself,master - 0 0 0 connected 0-16383\n";
const S1_INFO: &str = "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_slots_ok:16384\ncluster_slots_pfail:0\ncluster_slots_fail:0\ncluster_known_nodes:1\ncluster_size:1\ncluster_current_epoch:0\ncluster_my_epoch:0\n";
// The seed's outcome for scenario 2, seen from 10.168.17.5.
const FORMED_NODES: &str = "ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.8:6379@16379 slave 5d75611c1b16e9424a79b40c5b624c87e6152166 0 1704797759111 2 connected\n5bbd6f01c134a843db25993fd81cb71e1fc5ca09 10.168.17.7:6379@16379 slave 5be3d949f56e77d5848af97f1d8825e1c29f3270 0 1704797761121 1 connected\n5d75611c1b16e9424a79b40c5b624c87e6152166 10.168.17.6:6379@16379 master - 0 1704797760116 2 connected 8192-16383\n5be3d949f56e77d5848af97f1d8825e1c29f3270 10.168.17.5:6379@16379 myself,master - 0 1704797759000 1 connected 0-8191\n";
const FORMED_INFO: &str = "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_slots_ok:16384\ncluster_known_nodes:4\ncluster_size:2\ncluster_current_epoch:2\ncluster_my_epoch:1\n";

use crate::testing::view;

/// The formed scenario-2 cluster as each of its four nodes reports it.
fn formed() -> Inputs {
    formed_from(FORMED_NODES)
}

/// Four nodes that each report `nodes_text` (with `myself` moved to their own line).
fn formed_from(nodes_text: &str) -> Inputs {
    let lines: Vec<&str> = nodes_text.lines().collect();
    let roles = [
        "role:slave\nmaster_link_status:up\nslave_repl_offset:9000\n",
        "role:slave\nmaster_link_status:up\nslave_repl_offset:9000\n",
        "role:master\nmaster_repl_offset:9000\n",
        "role:master\nmaster_repl_offset:9000\n",
    ];
    let nodes = (0..4)
        .map(|i| {
            let text: String = lines
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    let l = l.replace("myself,", "");
                    if i == j {
                        let mut f: Vec<&str> = l.split(' ').collect();
                        let flags = format!("myself,{}", f[2]);
                        f[2] = &flags;
                        f.join(" ") + "\n"
                    } else {
                        l + "\n"
                    }
                })
                .collect();
            NodeEvidence {
                key: format!("10.168.17.{}:6379", 8 - i).as_str().into(),
                ip: Some(format!("10.168.17.{}", 8 - i).parse().unwrap()),
                port: Some(6379),
                live: Some(view(&text, FORMED_INFO, roles[i])),
                ..Default::default()
            }
        })
        .collect();
    Inputs {
        nodes,
        expected: Some(Expected {
            primaries: 2,
            replicas_per_primary: 1,
        }),
        ..Default::default()
    }
}

fn with_conf(text: &str) -> Inputs {
    Inputs {
        nodes: vec![NodeEvidence {
            key: "node".into(),
            redis_conf: Some(SourceFile {
                path: "redis.conf".into(),
                value: parse_redis_conf(text).value,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn with_log(text: &str) -> Inputs {
    Inputs {
        nodes: vec![NodeEvidence {
            key: "node".into(),
            log: Some(SourceFile {
                path: "cluster-6.log".into(),
                value: parse_server_log(text).value,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const LOST_DISK_AFTER_FAILOVER: &str =
    include_str!("../../tests/fixtures/lost-disk/after-failover-cluster-nodes.txt");
/// Valkey 9.1.2's replica lines for the same event (captured on a primary/replica pair whose
/// primary came back empty): its flush line reads `RDB signature and version check passed.
/// Flushing old data`, where earlier versions wrote `… sync: Flushing old data`.
const LOST_DISK_FLUSHED_REPLICA_LOG_VALKEY9: &str =
    include_str!("../../tests/fixtures/lost-disk/replica-resynced-from-empty-primary-valkey9.log");

const LOST_DISK_FLUSHED_REPLICA_LOG: &str =
    include_str!("../../tests/fixtures/lost-disk/replica-resynced-from-empty-primary.log");
const LOST_DISK_HEALTHY_REPLICA_LOG: &str =
    include_str!("../../tests/fixtures/lost-disk/healthy-replica.log");

/// Six live nodes from one captured `CLUSTER NODES` text; node 0 answers with `fresh` (its own
/// one-line view) when given.
fn six_live(shared: &str, fresh: Option<&str>) -> Inputs {
    let fresh: Vec<(usize, &str)> = fresh.into_iter().map(|f| (0, f)).collect();
    let snapshot =
        crate::testing::captured(shared, &fresh, &crate::testing::LOST_DISK_ADDRS, &[100; 6]);
    Inputs {
        nodes: snapshot
            .iter()
            .map(|node| NodeEvidence {
                key: node.key.clone(),
                ip: Some(node.ip),
                port: Some(node.port),
                live: node.view().cloned(),
                ..Default::default()
            })
            .collect(),
        expected: Some(Expected {
            primaries: 3,
            replicas_per_primary: 1,
        }),
        ..Default::default()
    }
}

/// A log of warning lines as a server prints them.
fn with_warnings(messages: &[&str]) -> Inputs {
    let text: String = messages
        .iter()
        .map(|m| format!("12345:M 02 Dec 2026 04:51:34.123 # {m}\n"))
        .collect();
    with_log(&text)
}

/// (rule id, warning lines from the servers' catalog that prove it) for the rules whose
/// evidence is the server's own log; the quiet case is the seed's healthy primary log.
const LOGGED: &[(&str, &[&str])] = &[
    (
        "CS501",
        &[
            "Fatal error, can't open config file '/var/vcap/jobs/redis/config/redis.conf': No such file or directory",
        ],
    ),
    (
        "CS502",
        &[
            "Warning: Could not create server TCP listening socket 127.0.0.1:23102: bind: Address already in use",
            "Failed listening on port 23102 (TCP), aborting.",
        ],
    ),
    (
        "CS503",
        &[
            "Sorry, the cluster configuration file nodes.conf is already used by a different Redis Cluster node. Please make sure that different nodes use different cluster configuration files.",
        ],
    ),
    (
        "CS504",
        &["Unrecoverable error: corrupted cluster config file."],
    ),
    (
        "CS505",
        &[
            "Could not rename tmp cluster config file: Permission denied",
            "Fatal: can't update cluster config file.",
        ],
    ),
    (
        "CS506",
        &["Can't chdir to '/var/vcap/store/redis': No such file or directory"],
    ),
    (
        "CS507",
        &[
            "Wrong signature trying to load DB from file",
            "Fatal error loading the DB: Invalid argument. Exiting.",
        ],
    ),
    (
        "CS508",
        &["You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting."],
    ),
    (
        "CS509",
        &[
            "Failed to load certificate: /var/vcap/jobs/redis/tls/node.crt: error:80000002:system library::No such file or directory",
        ],
    ),
    (
        "CS510",
        &[
            "Aborting Redis startup because of ACL errors: /var/vcap/jobs/redis/config/users.acl:2: Unknown command or category name in ACL. ",
        ],
    ),
    (
        "CS511",
        &[
            "Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair or user is disabled.",
        ],
    ),
    (
        "CS512",
        &[
            "Error reply to PING from master: '-NOPERM User repl has no permissions to run the 'ping' command'",
        ],
    ),
    (
        "CS513",
        // Captured: Redis 7.0.15 with `client-output-buffer-limit replica 256kb 256kb 0`,
        // written to while its replica was in full sync.
        &[
            "Client id=4 addr=127.0.0.1:34130 laddr=127.0.0.1:23150 fd=7 name= age=5 idle=5 flags=S db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=52 omem=1066208 tot-mem=1068008 events=r cmd=psync user=default redir=-1 resp=2 scheduled to be closed ASAP for overcoming of output buffer limits.",
        ],
    ),
    (
        "CS514",
        &[
            "Write error saving DB on disk: No space left on device",
            "Background saving error",
        ],
    ),
    (
        "CS515",
        &[
            "Your current 'ulimit -n' of 256 is not enough for the server to start. Please increase your open file limit to at least 10032. Exiting.",
        ],
    ),
    ("CS516", &["Out Of Memory allocating 1048576 bytes!"]),
    (
        "CS517",
        &["Currently unable to failover: Waiting for votes, but majority still not reached."],
    ),
    (
        "CS518",
        &[
            "Warning: no config file specified, using the default config. In order to specify a config file use redis-server /path/to/redis.conf",
        ],
    ),
    (
        "CS519",
        &[
            "== CRITICAL == This replica is sending an error to its master: 'ERR unknown command 'XAUTOCLAIM', with args beginning with: ' after processing the command 'xautoclaim'",
        ],
    ),
    (
        "CS520",
        &[
            "Error accepting a client connection: error:0A000086:SSL routines::certificate verify failed",
        ],
    ),
    (
        "CS598",
        &["Error condition on socket for SYNC: Connection refused"],
    ),
    ("CS599", &["A warning no catalogued server version prints"]),
];

fn with_post_deploy(text: &str) -> Inputs {
    Inputs {
        post_deploy: vec![SourceFile {
            path: "post-deploy.stderr.log".into(),
            value: parse_post_deploy_log(text).value,
        }],
        ..Default::default()
    }
}

fn seed_scenario_1_live() -> Inputs {
    let mut inputs = with_post_deploy(SEED_S1_POST_DEPLOY);
    inputs.nodes = vec![
        NodeEvidence {
            key: "primary".into(),
            live: Some(view(S1_NODES, S1_INFO, "role:master\n")),
            ..Default::default()
        },
        NodeEvidence {
            key: "replica".into(),
            live: Some(view(
                "199e46373e4ad7d6f823dec5461d8f4a44e86248 :6379@16379 myself,master - 0 0 0 connected\n",
                "cluster_state:fail\ncluster_slots_assigned:0\ncluster_known_nodes:1\n",
                "role:master\n",
            )),
            ..Default::default()
        },
    ];
    inputs
}

/// A formed view with one entry rewritten.
fn formed_with(edit: impl Fn(&mut Inputs)) -> Inputs {
    let mut inputs = formed();
    edit(&mut inputs);
    inputs
}

/// The formed cluster with INFO fields set on its primaries (as a primary reports them).
fn with_primary_info(fields: &[(&str, &str)]) -> Inputs {
    formed_with(|i| {
        for node in &mut i.nodes {
            let view = node.live.as_mut().unwrap();
            if !view.myself().is_replica() {
                for (k, v) in fields {
                    view.info.fields.insert((*k).into(), (*v).into());
                }
            }
        }
    })
}

/// The formed cluster whose nodes all list the primary 10.168.17.5 (slots 0-8191) at `host`,
/// which answered as given.
fn with_endpoint(host: &str, answer: EndpointAnswer) -> Inputs {
    formed_with(|i| {
        let listed_by = i.nodes.iter().map(|n| n.key.clone()).collect();
        i.endpoints = vec![ClientEndpoint {
            host: host.into(),
            port: 6379,
            id: NodeId::parse("5be3d949f56e77d5848af97f1d8825e1c29f3270").unwrap(),
            slots: crate::model::SlotSet::from_ranges(&crate::model::SlotRange::new(0, 8191)),
            listed_by,
            answer: answer.clone(),
        }];
    })
}

/// Valkey 8+ shows clients the address a node announces for them (`cluster-announce-client-ipv4`)
/// in CLUSTER NODES too: a node reached at 10.168.17.5 and listed at 10.168.99.5 with its bus
/// link up is not at a stale address when the nodes' CLUSTER SLOTS name 10.168.99.5 as its
/// endpoint; whether clients can use it is CS373's question.
#[test]
fn an_address_announced_for_clients_is_not_a_stale_one() {
    // Every node runs `version` (INFO server as each prints it).
    let running = |inputs: &mut Inputs, version: &[(&str, &str)]| {
        for node in &mut inputs.nodes {
            let info = &mut node.live.as_mut().unwrap().info.fields;
            for (k, v) in version {
                info.insert((*k).into(), (*v).into());
            }
        }
    };
    let valkey = [("server_name", "valkey"), ("valkey_version", "8.1.8")];
    let listed_elsewhere = |answer: Option<EndpointAnswer>| {
        let mut inputs = formed_from(&FORMED_NODES.replace("10.168.17.5:", "10.168.99.5:"));
        running(&mut inputs, &valkey);
        if let Some(answer) = answer {
            inputs.endpoints = with_endpoint("10.168.99.5", answer).endpoints;
        }
        inputs
    };
    let stale = rule("CS309").unwrap();
    let endpoint = rule("CS373").unwrap();
    assert_eq!(rule_hits(stale, &listed_elsewhere(None)).len(), 1);
    let refused = EndpointAnswer::Unreachable("Connection refused (os error 111)".into());
    assert_eq!(
        rule_hits(stale, &listed_elsewhere(Some(refused.clone()))),
        Vec::new()
    );
    assert_eq!(
        rule_hits(endpoint, &listed_elsewhere(Some(refused.clone()))).len(),
        1
    );
    // Listed there with the bus link down: the peers dial an address that does not work,
    // whatever the nodes hand clients (a host back with a new IP lists its old one in both).
    let mut down = formed_from(
        &FORMED_NODES
            .replace("10.168.17.5:", "10.168.99.5:")
            .replace("1704797759000 1 connected", "1704797759000 1 disconnected"),
    );
    running(&mut down, &valkey);
    down.endpoints = with_endpoint("10.168.99.5", refused.clone()).endpoints;
    assert_eq!(rule_hits(stale, &down).len(), 1);
    // Redis has no client address of its own: CLUSTER SLOTS names the bus address, here the
    // stale one, and the peer's link up says nothing against it.
    let mut redis = listed_elsewhere(Some(refused));
    running(
        &mut redis,
        &[("server_name", "redis"), ("redis_version", "7.0.15")],
    );
    for node in &mut redis.nodes {
        node.live
            .as_mut()
            .unwrap()
            .info
            .fields
            .remove("valkey_version");
    }
    assert_eq!(rule_hits(stale, &redis).len(), 1);
}

/// The formed cluster with its primary 10.168.17.5 (slots 0-8191) edited.
fn with_primary_5(edit: impl Fn(&mut NodeEvidence)) -> Inputs {
    formed_with(|i| {
        let node = i
            .nodes
            .iter_mut()
            .find(|n| n.key == "10.168.17.5:6379".into())
            .unwrap();
        edit(node);
    })
}

const DIR_FULL_LOG: &str =
    include_str!("../../tests/fixtures/environment/dir-full-for-rdb-save-redis-7.0.log");

/// The formed cluster whose primary 10.168.17.5 failed its save on a full disk (its captured
/// log, statvfs of its `dir` after the temporary file went, INFO as captured), its last save
/// `status`.
fn saving_to_a_full_disk(status: &str) -> Inputs {
    with_primary_5(|node| {
        let info = &mut node.live.as_mut().unwrap().info.fields;
        info.insert("rdb_last_bgsave_status".into(), status.into());
        info.insert("used_memory_dataset".into(), "13435544".into());
        if status == "err" {
            info.insert("errorstat_MISCONF".into(), "count=1".into());
        }
        node.log = Some(SourceFile {
            path: "server.log".into(),
            value: parse_server_log(DIR_FULL_LOG).value,
        });
        node.disk = Some(DiskFacts {
            dir: "/var/vcap/store/redis".into(),
            total_bytes: 1024 * 1024,
            free_bytes: 1024 * 1024,
        });
    })
}

#[test]
fn a_save_that_does_not_fit_names_the_disk_and_the_refused_writes_hang_under_it() {
    let findings = diagnose(&saving_to_a_full_disk("err"));
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(|n| n.label())),
        ("CS524", Some("10.168.17.5:6379")),
        "{findings:#?}"
    );
    assert!(
        top.summary.contains(
            "/var/vcap/store/redis has 1.0 MiB free of 1.0 MiB; it holds 12.8 MiB of data"
        ),
        "{}",
        top.summary
    );
    let under: Vec<&str> = top.symptoms.iter().map(|s| s.rule.id).collect();
    assert!(
        under.contains(&"CS514") && under.contains(&"CS371"),
        "{under:?}"
    );
}

#[test]
fn a_peer_stuck_only_in_the_first_read_is_not_called_stuck() {
    // Redis 7.0's line for a MEET under way (captured: CLUSTER MEET to a port where nothing
    // listened yet), on 10.168.17.5; the second read is taken a second later.
    const HANDSHAKE: &str = "991cd78acaefd3862e28ebada08f9a3f7010321d 10.168.17.9:6379@16379 handshake - 0 0 0 disconnected\n";
    let first = format!("{FORMED_NODES}{HANDSHAKE}");
    let stuck = |relook: Option<String>| {
        let inputs = formed_with(|i| {
            replace_view(i, 3, &first, "role:master\n");
            i.nodes[3].relook = relook.as_deref().map(|t| parse_cluster_nodes(t).value);
        });
        rule_hits(rule("CS303").unwrap(), &inputs)
    };
    // Not read again (a snapshot from files): the one read decides.
    assert_eq!(stuck(None).len(), 1);
    // The handshake completed: the node at that address has its own id and a link up.
    let joined = format!(
        "{FORMED_NODES}2f0c1a9e6b5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b 10.168.17.9:6379@16379 master - 0 1704797761121 0 connected\n"
    );
    assert_eq!(stuck(Some(joined)), Vec::new());
    // Still in handshake, under a new id (each attempt makes one up): stuck.
    let again = format!(
        "{FORMED_NODES}{}",
        HANDSHAKE.replace("991cd78a", "4d0e6b21")
    );
    let hits = stuck(Some(again));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0]
            .evidence
            .iter()
            .any(|e| e.text.contains("read again a second later")),
        "{:?}",
        hits[0].evidence
    );
    // Dropped when its handshake timed out: not cleared.
    assert_eq!(stuck(Some(FORMED_NODES.to_owned())).len(), 1);
}

#[test]
fn writes_refused_for_want_of_a_replica_hang_under_the_replica_that_is_gone() {
    // 10.168.17.8, the replica of 10.168.17.6, refuses connections; its primary runs with
    // min-replicas-to-write and has no good replica left, before any write was tried.
    let mut inputs = formed_with(|i| {
        let primary = i.nodes[2].live.as_mut().unwrap();
        for (k, v) in [("min_slaves_good_slaves", "0"), ("connected_slaves", "0")] {
            primary.info.fields.insert(k.into(), v.into());
        }
    });
    let alone = rule_hits(rule("CS372").unwrap(), &inputs);
    assert_eq!(alone.len(), 1, "{alone:?}");
    assert!(
        alone[0]
            .summary
            .contains("every write to its slots is refused now"),
        "{}",
        alone[0].summary
    );
    inputs.nodes[0].live = None;
    inputs.nodes[0].facts = Some(NodeFacts {
        answer: Answer::Refused,
        reply: "Connection refused (os error 111)".into(),
        version: None,
    });
    let findings = diagnose(&inputs);
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(ToString::to_string)),
        ("CS330", Some("10.168.17.8:6379".to_owned()))
    );
    assert!(
        top.symptoms
            .iter()
            .any(|s| s.rule.id == "CS372" && s.node == Some("10.168.17.6:6379".into())),
        "{:?}",
        top.symptoms.iter().map(|s| s.rule.id).collect::<Vec<_>>()
    );
}

#[test]
fn maxmemory_is_judged_against_the_machine() {
    let hits =
        |fields: &[(&str, &str)]| rule_hits(rule("CS525").unwrap(), &with_primary_info(fields));
    let over = hits(&[
        ("maxmemory", "214748364800"),
        ("total_system_memory", "25276194816"),
    ]);
    assert_eq!(over.len(), 2, "both primaries: {over:?}");
    assert!(
        over[0]
            .summary
            .contains("maxmemory 200.0 GiB is more than its machine's 23.5 GiB"),
        "{}",
        over[0].summary
    );
    // No maxmemory: judged by what it already takes (over 3/4 of the machine).
    let unbounded = |rss: &str| {
        hits(&[
            ("maxmemory", "0"),
            ("total_system_memory", "25276194816"),
            ("used_memory_rss", rss),
        ])
    };
    assert!(unbounded("20000000000")[0].summary.contains("no maxmemory"));
    assert_eq!(unbounded("6828032"), Vec::new());
}

/// Redis 7.0.15 run as an unprivileged user under `prlimit --nproc=4`: its own threads take
/// the four, and BGSAVE's fork fails (captured).
const FORK_REFUSED_NPROC_LOG: &str =
    include_str!("../../tests/fixtures/environment/fork-refused-nproc-redis-7.0.log");

/// The formed cluster whose primary 10.168.17.5 reports `fields` in INFO and has `log`.
fn primary_5_with(fields: &[(&str, &str)], log: &str) -> Inputs {
    with_primary_5(|node| {
        let info = &mut node.live.as_mut().unwrap().info.fields;
        for (k, v) in fields {
            info.insert((*k).into(), (*v).into());
        }
        node.log = Some(SourceFile {
            path: "server.log".into(),
            value: parse_server_log(log).value,
        });
    })
}

/// The formed cluster whose primary 10.168.17.5 has `log` and its last save failed.
fn forking(log: &str) -> Inputs {
    primary_5_with(
        &[
            ("rdb_last_bgsave_status", "err"),
            ("used_memory_rss", "12935168"),
            ("total_system_memory", "25276194816"),
        ],
        log,
    )
}

#[test]
fn a_refused_fork_is_named_by_the_kernel_s_reason() {
    let (memory, nproc) = (rule("CS526").unwrap(), rule("CS527").unwrap());
    let hits = rule_hits(nproc, &forking(FORK_REFUSED_NPROC_LOG));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].node, Some("10.168.17.5:6379".into()));
    assert!(
        hits[0].summary.contains("process limit"),
        "{}",
        hits[0].summary
    );
    assert_eq!(
        rule_hits(memory, &forking(FORK_REFUSED_NPROC_LOG)),
        Vec::new()
    );
    // The same line with ENOMEM's text (rdb.c prints strerror(errno)): the memory rule, with
    // the machine's numbers and the server's own overcommit warning.
    let enomem = FORK_REFUSED_NPROC_LOG
        .replace("Resource temporarily unavailable", "Cannot allocate memory");
    let hits = rule_hits(memory, &forking(&enomem));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0]
            .summary
            .contains("it takes 12.3 MiB of its machine's 23.5 GiB")
            && hits[0].summary.contains("vm.overcommit_memory is not 1"),
        "{}",
        hits[0].summary
    );
    assert_eq!(rule_hits(nproc, &forking(&enomem)), Vec::new());
    // The failed save's own findings (MISCONF refusals) hang under it.
    let mut inputs = forking(FORK_REFUSED_NPROC_LOG);
    inputs.nodes[3]
        .live
        .as_mut()
        .unwrap()
        .info
        .fields
        .insert("errorstat_MISCONF".into(), "count=2".into());
    let findings = diagnose(&inputs);
    let top = &findings[0];
    assert_eq!(top.rule.id, "CS527");
    let under: Vec<&str> = top.symptoms.iter().map(|s| s.rule.id).collect();
    assert!(
        under.contains(&"CS514") && under.contains(&"CS371"),
        "{under:?}"
    );
}

const MAXCLIENTS_REDUCED_LOG: &str =
    include_str!("../../tests/fixtures/environment/maxclients-reduced-redis-7.0.log");

/// The formed cluster whose primary 10.168.17.5 runs with maxclients cut to 32 by its open
/// files limit (its captured log), having refused `rejected` connections (INFO as captured).
fn refusing_clients(rejected: u64) -> Inputs {
    primary_5_with(
        &[
            ("rejected_connections", &rejected.to_string()),
            ("connected_clients", "1"),
            ("maxclients", "32"),
        ],
        MAXCLIENTS_REDUCED_LOG,
    )
}

#[test]
fn clients_refused_at_maxclients_name_the_open_files_limit_behind_it() {
    let hits = rule_hits(rule("CS374").unwrap(), &refusing_clients(8));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0].summary.contains("refused 8 connection(s)")
            && hits[0]
                .summary
                .contains("open files limit of 64, which cut maxclients to 32"),
        "{}",
        hits[0].summary
    );
    // Without the log: maxclients alone.
    let mut bare = refusing_clients(8);
    for n in &mut bare.nodes {
        n.log = None;
    }
    let hits = rule_hits(rule("CS374").unwrap(), &bare);
    assert!(
        hits[0].summary.contains("maxclients 32 (1 connected now)"),
        "{}",
        hits[0].summary
    );
}

/// Nothing answering at a node's endpoint is CS373 while the node answers where diagnose
/// reached it, and the node's own business (down) when it answers nowhere.
#[test]
fn an_endpoint_of_a_node_that_is_down_is_not_blamed_on_the_endpoint() {
    let refused = EndpointAnswer::Unreachable("Connection refused (os error 111)".into());
    let rule = rule("CS373").unwrap();
    let hits = rule_hits(rule, &with_endpoint("127.0.0.2", refused.clone()));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].node, Some("10.168.17.5:6379".into()));
    assert!(
        hits[0].summary.contains("slots 0-8191")
            && hits[0]
                .summary
                .contains("nothing answers at `127.0.0.2:6379`"),
        "{}",
        hits[0].summary
    );
    let mut down = with_endpoint("127.0.0.2", refused);
    down.nodes.retain(|n| n.key != "10.168.17.5:6379".into());
    assert_eq!(rule_hits(rule, &down), Vec::new());
}

fn replace_view(inputs: &mut Inputs, idx: usize, nodes: &str, info: &str) {
    let old = inputs.nodes[idx].live.take().unwrap();
    inputs.nodes[idx].live = Some(view(
        nodes,
        &format!(
            "cluster_state:ok\ncluster_slots_assigned:{}\ncluster_known_nodes:{}\n",
            old.cluster_info.slots_assigned, old.cluster_info.known_nodes
        ),
        info,
    ));
}

/// Two TLS nodes trusting /ca.crt; with `foreign`, the second one's certificate comes from
/// another CA (as the shell judges it).
fn two_tls_nodes(foreign: bool) -> Inputs {
    let node = |n: usize, rejected: Option<CertRejection>| {
        NodeEvidence {
        key: format!("127.0.0.1:700{n}").as_str().into(),
        redis_conf: Some(SourceFile {
            path: format!("{n}/redis.conf"),
            value: parse_redis_conf(&format!(
                "tls-port 700{n}\ntls-cluster yes\ntls-ca-cert-file /ca.crt\ntls-cert-file /n{n}.crt\n"
            ))
            .value,
        }),
        certs: vec![CertFacts {
            path: format!("/n{n}.crt"),
            directive: "tls-cert-file".into(),
            line: 4,
            server_auth: true,
            client_auth: true,
            expired: false,
            verdicts: vec![CaVerdict {
                ca: "/ca.crt".into(),
                as_server: rejected.clone(),
                as_client: rejected,
            }],
        }],
        ..Default::default()
    }
    };
    Inputs {
        nodes: vec![
            node(1, None),
            node(2, foreign.then_some(CertRejection::UnknownIssuer)),
        ],
        ..Default::default()
    }
}

/// The replica 10.168.17.8 runs Redis `replica_version` with its link `link`; its primary
/// 10.168.17.6 runs 7.0.15.
fn versions(inputs: &mut Inputs, replica_version: &str, link: &str) {
    let set = |inputs: &mut Inputs, idx: usize, text: String| {
        inputs.nodes[idx].live.as_mut().unwrap().info = crate::parse::parse_info(&text).value;
    };
    set(
        inputs,
        0,
        format!("role:slave\nmaster_link_status:{link}\nredis_version:{replica_version}\n"),
    );
    set(inputs, 2, "role:master\nredis_version:7.0.15\n".to_owned());
}

/// Three nodes' redis.conf: two with `common`, the third with `odd`.
fn three_confs(common: &str, odd: &str) -> Inputs {
    let nodes = [common, common, odd]
        .iter()
        .enumerate()
        .map(|(i, text)| NodeEvidence {
            key: format!("127.0.0.1:700{i}").as_str().into(),
            redis_conf: Some(SourceFile {
                path: format!("{i}/redis.conf"),
                value: parse_redis_conf(text).value,
            }),
            ..Default::default()
        })
        .collect();
    Inputs {
        nodes,
        ..Default::default()
    }
}

/// (rule id, a case where it must fire, a case where it must stay quiet).
fn cases() -> Vec<(&'static str, Inputs, Inputs)> {
    let conf_tls_only = "port 0\ntls-port 6379\ntls-cluster yes\ntls-cert-file /c\n";
    let logged = LOGGED
        .iter()
        .map(|(id, lines)| (*id, with_warnings(lines), with_log(SEED_S1_LOG)));
    let mut cases = vec![
        (
            "CS101",
            with_post_deploy(SEED_S2_POST_DEPLOY),
            with_post_deploy(
                "[x] introducing nodes\nOK\nERR Invalid node address specified: 10.0.0.999:6379\n",
            ),
        ),
        (
            "CS102",
            with_post_deploy(SEED_S2_POST_DEPLOY),
            with_post_deploy("[x] configuration set\nOK\nOK\n"),
        ),
        ("CS103", seed_scenario_1_live(), {
            let mut f = formed();
            f.post_deploy =
                with_post_deploy("[x] introducing nodes\nOK\n[x] cluster settled\n").post_deploy;
            f
        }),
        (
            "CS104",
            formed_with(|i| {
                // Both replicas on the first primary (the seed's old template).
                let text = FORMED_NODES.replace(
                    "slave 5d75611c1b16e9424a79b40c5b624c87e6152166",
                    "slave 5be3d949f56e77d5848af97f1d8825e1c29f3270",
                );
                let own = text.replace("myself,", "").replace(
                    "ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.8:6379@16379 slave",
                    "ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.8:6379@16379 myself,slave",
                );
                replace_view(i, 0, &own, "role:slave\nmaster_link_status:up\n");
            }),
            formed(),
        ),
        (
            "CS201",
            with_conf(conf_tls_only),
            with_conf(&format!("{conf_tls_only}tls-replication yes\n")),
        ),
        (
            "CS202",
            with_log(SEED_NOAUTH_LOG),
            with_conf("requirepass s\nmasterauth s\n"),
        ),
        (
            "CS203",
            with_conf("rename-command PSYNC \"\"\nrename-command SYNC \"\"\n"),
            with_conf("rename-command PSYNC \"\"\n"),
        ),
        (
            "CS206",
            with_conf("rename-command SYNC \"\"\n"),
            with_conf("rename-command CONFIG \"\"\n"),
        ),
        (
            "CS204",
            formed_with(|i| {
                replace_view(
                    i,
                    0,
                    &FORMED_NODES
                        .replace("myself,", "")
                        .replacen("slave", "myself,slave", 1),
                    "role:slave\nmaster_link_status:down\nmaster_host:10.168.17.6\n",
                )
            }),
            formed(),
        ),
        ("CS205", with_log(SEED_TLS_LOG), with_log(SEED_S1_LOG)),
        ("CS301", seed_scenario_1_live(), formed()),
        ("CS302", seed_scenario_1_live(), formed()),
        (
            "CS303",
            formed_with(|i| {
                let text = FORMED_NODES.replace(
                    "master - 0 1704797760116 2 connected 8192-16383",
                    "master - 0 1704797760116 2 disconnected 8192-16383",
                );
                replace_view(i, 3, &text, "role:master\n");
            }),
            formed(),
        ),
        (
            "CS304",
            {
                let mut a = with_conf("tls-cluster yes\n");
                a.nodes.extend(with_conf("tls-cluster no\n").nodes);
                a
            },
            {
                let mut a = with_conf("tls-cluster yes\n");
                a.nodes.extend(with_conf("tls-cluster yes\n").nodes);
                a
            },
        ),
        (
            "CS305",
            {
                let mut i = with_conf("tls-cluster yes\ntls-cert-file /node.crt\n");
                i.nodes[0].certs.push(CertFacts {
                    path: "/node.crt".into(),
                    directive: "tls-cert-file".into(),
                    line: 2,
                    server_auth: true,
                    client_auth: false,
                    expired: false,
                    verdicts: Vec::new(),
                });
                i
            },
            {
                let mut i = with_conf("tls-cluster yes\ntls-cert-file /node.crt\n");
                i.nodes[0].certs.push(CertFacts {
                    path: "/node.crt".into(),
                    directive: "tls-cert-file".into(),
                    line: 2,
                    server_auth: true,
                    client_auth: true,
                    expired: false,
                    verdicts: Vec::new(),
                });
                i
            },
        ),
        (
            "CS306",
            formed_with(|i| {
                let text = FORMED_NODES.replace("myself,", "").replace("5d75611c1b16e9424a79b40c5b624c87e6152166 10.168.17.6:6379@16379 master - 0 1704797760116 2", "5d75611c1b16e9424a79b40c5b624c87e6152166 10.168.17.6:6379@16379 myself,master - 0 1704797760116 1");
                replace_view(i, 2, &text, "role:master\n");
            }),
            formed(),
        ),
        (
            "CS307",
            formed_with(|i| {
                let text = FORMED_NODES.replace(
                    "connected 0-8191",
                    "connected 0-8191 [93->-5d75611c1b16e9424a79b40c5b624c87e6152166]",
                );
                replace_view(i, 3, &text, "role:master\n");
            }),
            // The same open slot while an apply is at work: its progress, not a stuck move.
            formed_with(|i| {
                let text = FORMED_NODES.replace(
                    "connected 0-8191",
                    "connected 0-8191 [93->-5d75611c1b16e9424a79b40c5b624c87e6152166]",
                );
                replace_view(i, 3, &text, "role:master\n");
                i.at_work.applies = vec![("10.168.17.5:6379".into(), "clustersmith-apply:4242".into())];
            }),
        ),
        (
            "CS360",
            formed_with(|i| {
                // A replica 3 MB behind its primary: the primaries' offsets jump ahead.
                for node in &mut i.nodes {
                    let view = node.live.as_mut().unwrap();
                    if !view.myself().is_replica() {
                        view.info
                            .fields
                            .insert("master_repl_offset".into(), "3000000".into());
                    }
                }
            }),
            formed(),
        ),
        // What clients see, from INFO fields as Redis 7.0 prints them (`INFO memory`,
        // `INFO persistence`, `INFO replication`, `INFO errorstats`). Each also has a live
        // case in the zoo (CS371 and CS372 under their causes).
        (
            "CS370",
            with_primary_info(&[
                ("used_memory", "2201184"),
                ("maxmemory", "2097152"),
                ("maxmemory_policy", "noeviction"),
                ("errorstat_OOM", "count=12"),
            ]),
            // The same memory with an eviction policy: writes evict, nothing is refused.
            with_primary_info(&[
                ("used_memory", "2201184"),
                ("maxmemory", "2097152"),
                ("maxmemory_policy", "allkeys-lru"),
            ]),
        ),
        (
            "CS371",
            with_primary_info(&[
                ("rdb_last_bgsave_status", "err"),
                ("errorstat_MISCONF", "count=3"),
            ]),
            // A failed save with stop-writes-on-bgsave-error no: nothing refused.
            with_primary_info(&[("rdb_last_bgsave_status", "err")]),
        ),
        (
            "CS372",
            with_primary_info(&[
                ("min_slaves_good_slaves", "0"),
                ("connected_slaves", "0"),
                ("errorstat_NOREPLICAS", "count=7"),
            ]),
            // Refused once while the replica was away; it is back and good.
            with_primary_info(&[
                ("min_slaves_good_slaves", "1"),
                ("connected_slaves", "1"),
                ("errorstat_NOREPLICAS", "count=7"),
            ]),
        ),
        // The formed cluster's primary 10.168.17.5 (slots 0-8191) listed at a hostname that
        // does not resolve (the resolver's words for a `.invalid` name), then where diagnose
        // reached it.
        (
            "CS373",
            with_endpoint(
                "node-5.invalid",
                EndpointAnswer::Unresolvable(
                    "failed to lookup address information: Name or service not known".into(),
                ),
            ),
            with_endpoint("10.168.17.5", EndpointAnswer::Reached),
        ),
        // The primary 10.168.17.5 started under `ulimit -n 64` (captured on Redis 7.0.15, run
        // with prlimit and without CAP_SYS_RESOURCE), 40 connections opened at once.
        (
            "CS374",
            refusing_clients(8),
            // The same limit, nothing refused (yet).
            refusing_clients(0),
        ),
        // Captured on Redis 7.0.15: `dir` on a 1 MiB tmpfs, 100000 keys of 100 bytes, BGSAVE.
        (
            "CS524",
            saving_to_a_full_disk("err"),
            // Saved since: the space was found.
            saving_to_a_full_disk("ok"),
        ),
        // INFO memory as Redis 7.0.15 printed it on this 23.54 GiB machine, after CONFIG SET
        // A refused fork, by the kernel's reason (the captured EAGAIN line, and the same line
        // with ENOMEM's text); quiet on the other reason, and once a save finished since.
        (
            "CS526",
            forking(&FORK_REFUSED_NPROC_LOG.replace(
                "Resource temporarily unavailable",
                "Cannot allocate memory",
            )),
            forking(FORK_REFUSED_NPROC_LOG),
        ),
        (
            "CS527",
            forking(FORK_REFUSED_NPROC_LOG),
            forking(&format!(
                "{FORK_REFUSED_NPROC_LOG}10425:M 07 Dec 2026 03:09:47.819 * Background saving terminated with success\n"
            )),
        ),
        // maxmemory 200gb.
        (
            "CS525",
            with_primary_info(&[
                ("maxmemory", "214748364800"),
                ("total_system_memory", "25276194816"),
                ("used_memory_rss", "6828032"),
            ]),
            // The same machine with maxmemory 2gb: room left.
            with_primary_info(&[
                ("maxmemory", "2147483648"),
                ("total_system_memory", "25276194816"),
                ("used_memory_rss", "6828032"),
            ]),
        ),
        (
            "CS523",
            replica_timing_out(Some("repl-timeout 1\n"), "down"),
            // Synced since: the pause is over.
            replica_timing_out(Some("repl-timeout 1\n"), "up"),
        ),
        (
            "CS403",
            refused_with_conf("port 7000\ncluster-enabled yes\nbogus-directive yes\n"),
            // Every line is one the servers take.
            refused_with_conf(
                "port 7000\ncluster-enabled yes\nmaxmemory 2GB\nslave-read-only yes\nkey-load-delay 100\n",
            ),
        ),
        (
            "CS522",
            primary_cutting_its_replica("down"),
            // The replica synced since (the writes eased): nothing looping now.
            primary_cutting_its_replica("up"),
        ),
        (
            "CS521",
            replica_on_a_full_disk(REPLICA_DISK_FULL_LOG, "down"),
            // The same log once the link came up: the disk was made room on.
            replica_on_a_full_disk(REPLICA_DISK_FULL_LOG, "up"),
        ),
        (
            "CS312",
            cloned_replica(&[0, 1, 2], None),
            // The primary and the original replica: one server per id.
            cloned_replica(&[0, 1], None),
        ),
        (
            "CS311",
            formed_with(|i| {
                let text = FORMED_NODES.replace(
                    "connected 0-8191",
                    "connected 0-8191 [93->-5d75611c1b16e9424a79b40c5b624c87e6152166]",
                );
                replace_view(i, 3, &text, "role:master\n");
                i.at_work.applies = vec![("10.168.17.5:6379".into(), "clustersmith-apply:4242".into())];
            }),
            formed(),
        ),
        (
            "CS308",
            formed_with(|i| {
                // The replica of 10.168.17.5 sits on that host.
                i.nodes[1].ip = i.nodes[3].ip;
            }),
            formed(),
        ),
        (
            "CS309",
            formed_with(|i| {
                // 10.168.17.6 came back as 10.168.17.9; its peers still list the old address.
                i.nodes[2].ip = Some("10.168.17.9".parse().unwrap());
            }),
            formed(),
        ),
        (
            "CS310",
            formed_with(|i| {
                let text = format!(
                    "{FORMED_NODES}0123456789abcdef0123456789abcdef01234567 10.9.9.9:6379@16379 master - 0 0 7 connected\n"
                );
                replace_view(i, 3, &text, "role:master\n");
            }),
            formed(),
        ),
        (
            "CS320",
            six_live(
                LOST_DISK_AFTER_FAILOVER,
                Some("6118e6395770fcc9f1f64e9c02226278a3f91e06 127.0.0.1:22201@32201 myself,master - 0 0 0 connected"),
            ),
            // The same cluster once repaired: the old id forgotten, 22201 known to all.
            six_live(
                &LOST_DISK_AFTER_FAILOVER.replace(
                    "90966ed5ff870c1321d0e0a1813b0058eea38b84 :0@0 master,fail,noaddr - 1796188461119 1796188458606 1 disconnected",
                    "6118e6395770fcc9f1f64e9c02226278a3f91e06 127.0.0.1:22201@32201 slave 4d3fa3354ffc4abb9e6235c47da8415d872fa7a0 0 1796188461119 7 connected",
                ),
                None,
            ),
        ),
        (
            "CS322",
            // The seed's 2+2 with 0-10000 / 10001-16383: 10001 against 6383 slots.
            formed_from(
                &FORMED_NODES
                    .replace("connected 8192-16383", "connected 10001-16383")
                    .replace("connected 0-8191", "connected 0-10000"),
            ),
            formed(),
        ),
        (
            "CS321",
            with_log(LOST_DISK_FLUSHED_REPLICA_LOG),
            with_log(LOST_DISK_HEALTHY_REPLICA_LOG),
        ),
        ("CS401", with_log(SEED_S1_LOG), with_log(SEED_NOAUTH_LOG)),
        (
            "CS402",
            {
                let mut i = with_conf("cluster-port 16379\nprimaryauth x\n");
                i.nodes[0].log = with_log(SEED_S1_LOG).nodes.remove(0).log;
                i
            },
            {
                let mut i = with_conf("masterauth x\n");
                i.nodes[0].log = with_log(SEED_S1_LOG).nodes.remove(0).log;
                i
            },
        ),
        ("CS350", two_tls_nodes(true), two_tls_nodes(false)),
        (
            "CS354",
            three_confs(
                "user repl on >replpw +psync +replconf +ping\nmasteruser repl\nmasterauth replpw\n",
                "user repl on >replpw ~* +@all -psync\nmasteruser repl\nmasterauth replpw\n",
            ),
            three_confs(
                "user repl on >replpw +psync +replconf +ping\nmasteruser repl\nmasterauth replpw\n",
                "user repl on >replpw ~* +@all\nmasteruser repl\nmasterauth replpw\n",
            ),
        ),
        (
            "CS353",
            three_confs("cluster-node-timeout 5000\n", "cluster-node-timeout 15000\n"),
            three_confs("", "cluster-node-timeout 15000\n"),
        ),
        (
            "CS351",
            // The replica 10.168.17.8 announces .99: every peer lists it failing there.
            formed_from(&FORMED_NODES.replace(
                "ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.8:6379@16379 slave 5d75611c1b16e9424a79b40c5b624c87e6152166 0 1704797759111 2 connected",
                "ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.99:6379@16379 slave,fail 5d75611c1b16e9424a79b40c5b624c87e6152166 0 1704797759111 2 disconnected",
            )),
            formed(),
        ),
        (
            "CS352",
            formed_with(|i| versions(i, "6.2.14", "down")),
            formed_with(|i| versions(i, "7.0.15", "up")),
        ),
    ];
    cases.extend(logged);
    // The node-fact rules' cases live beside them.
    cases.extend(super::reach::tests::cases());
    cases
}

#[test]
fn every_rule_fires_on_its_case_and_stays_quiet_on_the_healthy_one() {
    for (id, firing, quiet) in cases() {
        let rule = rule(id).unwrap_or_else(|| panic!("no rule {id}"));
        let hits = rule_hits(rule, &firing);
        assert!(!hits.is_empty(), "{id} did not fire");
        assert!(
            hits.iter()
                .all(|h| !h.evidence.is_empty() && !h.summary.is_empty()),
            "{id}: a hit without evidence"
        );
        assert_eq!(
            rule_hits(rule, &quiet),
            Vec::new(),
            "{id} fired on the quiet case"
        );
    }
}

#[test]
fn registry_is_complete_unique_and_acyclic() {
    let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    let names: BTreeSet<&str> = RULES.iter().map(|r| r.name).collect();
    assert_eq!(ids.len(), RULES.len(), "duplicate rule id");
    assert_eq!(names.len(), RULES.len(), "duplicate rule name");
    let tested: BTreeSet<&str> = cases().iter().map(|c| c.0).collect();
    for rule in RULES {
        assert!(
            rule.id.len() == 5 && rule.id.starts_with("CS"),
            "{}",
            rule.id
        );
        for text in [rule.detects, rule.why, rule.fix, rule.false_positives] {
            assert!(text.len() > 10, "{}: incomplete explanation", rule.id);
        }
        assert!(!rule.evidence.is_empty(), "{}", rule.id);
        assert!(
            tested.contains(rule.id),
            "{} has no firing/quiet case",
            rule.id
        );
    }
    // A rule linked from another but missing from the registry would never run.
    for rule in RULES {
        for explained in rule.explains {
            assert!(
                RULES.iter().any(|r| std::ptr::eq(*r, *explained)),
                "{} explains {}, which is not in RULES",
                rule.id,
                explained.id
            );
        }
    }
    // No rule explains itself through a chain.
    for start in RULES {
        let mut frontier: Vec<&Rule> = start.explains.to_vec();
        for _ in 0..RULES.len() {
            assert!(
                !frontier.iter().any(|r| std::ptr::eq(*r, *start)),
                "{} explains itself",
                start.id
            );
            frontier = frontier
                .iter()
                .flat_map(|r| r.explains.iter().copied())
                .collect();
        }
    }
}

#[test]
fn the_seed_scenario_one_names_its_causes_and_ranks_symptoms_under_them() {
    let findings = diagnose(&seed_scenario_1_live());
    let top: Vec<&str> = findings.iter().map(|f| f.rule.id).collect();
    // The hostname MEET, with what it caused under it: the early REPLICATE (the replica
    // could not know a primary it never met), the script's false claim of success over
    // those errors, both nodes knowing only themselves, the replica-to-be owning no slot.
    assert_eq!(top, ["CS101"], "{top:?}");
    let symptoms: Vec<&str> = findings[0].symptoms.iter().map(|s| s.rule.id).collect();
    assert_eq!(
        symptoms,
        ["CS102", "CS103", "CS301", "CS301", "CS302"],
        "{symptoms:?}"
    );
}

#[test]
fn noauth_from_config_log_and_live_is_one_finding_with_three_kinds_of_evidence() {
    let replica_nodes = FORMED_NODES
        .replace("myself,", "")
        .replacen("slave", "myself,slave", 1);
    let mut inputs = formed();
    replace_view(
        &mut inputs,
        0,
        &replica_nodes,
        "role:slave\nmaster_link_status:down\n",
    );
    inputs.nodes[0].redis_conf = with_conf("requirepass s3cret\n").nodes.remove(0).redis_conf;
    inputs.nodes[0].log = with_log(SEED_NOAUTH_LOG).nodes.remove(0).log;
    let findings = diagnose(&inputs);
    let auth = findings
        .iter()
        .find(|f| f.rule.id == "CS202")
        .expect("CS202");
    assert_eq!(
        auth.node.as_ref().map(|k| k.label()),
        Some("10.168.17.8:6379")
    );
    assert_eq!(auth.symptoms.len(), 1);
    assert_eq!(auth.symptoms[0].rule.id, "CS204");
    let sources: BTreeSet<&str> = auth
        .evidence
        .iter()
        .chain(&auth.symptoms[0].evidence)
        .map(|e| match &e.source {
            Source::Live { .. } => "live",
            Source::File { path, .. } if path.ends_with(".conf") => "conf",
            Source::File { .. } => "log",
            Source::Spec => "spec",
        })
        .collect();
    assert_eq!(sources, ["conf", "live", "log"].into_iter().collect());
    assert!(
        findings.iter().all(|f| f.rule.id != "CS204"),
        "the symptom is not ranked on its own"
    );
    // The password itself never becomes evidence text.
    assert!(auth.evidence.iter().all(|e| !e.text.contains("s3cret")));
}

#[test]
fn a_reset_during_ping_is_not_blamed_on_sync_without_evidence() {
    let findings = diagnose(&with_log(SEED_SYNC_LOG));
    assert!(
        findings
            .iter()
            .all(|f| f.rule.id != "CS206" && f.rule.id != "CS203"),
        "{:?}",
        findings.iter().map(|f| f.rule.id).collect::<Vec<_>>()
    );
}

#[test]
fn a_formed_cluster_has_no_warning_or_error() {
    let findings = diagnose(&formed());
    assert_eq!(worst(&findings), None, "{findings:?}");
    let _ = NodeId::parse("5be3d949f56e77d5848af97f1d8825e1c29f3270").unwrap();
}

#[test]
fn a_node_back_with_a_new_id_is_the_cause_not_a_foreign_member_or_a_broken_bus() {
    let inputs = six_live(
        LOST_DISK_AFTER_FAILOVER,
        Some(
            "6118e6395770fcc9f1f64e9c02226278a3f91e06 127.0.0.1:22201@32201 myself,master - 0 0 0 connected",
        ),
    );
    let findings = diagnose(&inputs);
    assert_eq!(findings[0].rule.id, "CS320", "{findings:#?}");
    assert_eq!(
        findings[0].node.as_ref().map(|k| k.label()),
        Some("127.0.0.1:22201")
    );
    assert!(findings[0].summary.contains("owns no slot"));
    let ids: Vec<&str> = findings.iter().map(|f| f.rule.id).collect();
    assert!(
        !ids.contains(&"CS310") && !ids.contains(&"CS303"),
        "{ids:?}"
    );
}

#[test]
fn data_loss_is_named_first_in_valkey_9_wording_too() {
    let mut inputs = with_log(LOST_DISK_FLUSHED_REPLICA_LOG_VALKEY9);
    inputs.nodes[0].key = "127.0.0.1:22204".into();
    let findings = diagnose(&inputs);
    assert_eq!(findings[0].rule.id, "CS321", "{findings:#?}");
    let evidence: Vec<&str> = findings[0]
        .evidence
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(evidence.len(), 4, "{evidence:?}");
    assert!(evidence[2].ends_with("RDB signature and version check passed. Flushing old data"));
}

#[test]
fn data_loss_is_named_first() {
    let mut inputs = with_log(LOST_DISK_FLUSHED_REPLICA_LOG);
    inputs.nodes[0].key = "127.0.0.1:22204".into();
    let findings = diagnose(&inputs);
    assert_eq!(findings[0].rule.id, "CS321");
    assert_eq!(findings[0].rule.severity, Severity::Critical);
    assert!(
        findings[0]
            .evidence
            .iter()
            .any(|e| e.text.contains("Flushing old data"))
    );
    assert!(
        findings[0]
            .evidence
            .iter()
            .any(|e| e.text.contains("keys loaded: 0"))
    );
}

// ---- node identity: a data dir copied from a replica (captured on Valkey 8.1.8 and Redis
// 7.0.15: primary, replica, and a third server started on a copy of the replica's dir).

const ID_PRIMARY_LOG_VALKEY: &str =
    include_str!("../../tests/fixtures/identity/primary-valkey-8.1.log");
const ID_PRIMARY_LOG_REDIS: &str =
    include_str!("../../tests/fixtures/identity/primary-redis-7.0.log");
const ID_VIEWS: [(&str, u16, u64); 3] = [
    (
        include_str!("../../tests/fixtures/identity/cluster-nodes-23911.txt"),
        23911,
        19,
    ),
    (
        include_str!("../../tests/fixtures/identity/cluster-nodes-23912.txt"),
        23912,
        19,
    ),
    (
        include_str!("../../tests/fixtures/identity/cluster-nodes-23913.txt"),
        23913,
        16,
    ),
];

/// The captured servers `given` (indexes of [`ID_VIEWS`]), live, the primary with `log`.
fn cloned_replica(given: &[usize], log: Option<&str>) -> Inputs {
    let nodes = given
        .iter()
        .map(|&i| {
            let (nodes, port, uptime) = ID_VIEWS[i];
            NodeEvidence {
                key: format!("127.0.0.1:{port}").as_str().into(),
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(port),
                live: Some(view(
                    nodes,
                    "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_known_nodes:2\n",
                    &format!("valkey_version:8.1.8\nuptime_in_seconds:{uptime}\n"),
                )),
                log: (i == 0).then_some(log).flatten().map(|text| SourceFile {
                    path: "primary.log".into(),
                    value: parse_server_log(text).value,
                }),
                ..Default::default()
            }
        })
        .collect();
    Inputs {
        nodes,
        expected: Some(Expected {
            primaries: 1,
            replicas_per_primary: 2,
        }),
        ..Default::default()
    }
}

#[test]
fn two_servers_with_one_id_name_the_later_started_one_first() {
    let findings = diagnose(&cloned_replica(&[0, 1, 2], Some(ID_PRIMARY_LOG_VALKEY)));
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(|n| n.label())),
        ("CS312", Some("127.0.0.1:23913")),
        "{findings:#?}"
    );
    // The original replica is not blamed, and what the flipping breaks hangs under it.
    let all: Vec<&Finding> = findings
        .iter()
        .flat_map(|f| std::iter::once(f).chain(&f.symptoms))
        .collect();
    assert_eq!(all.iter().filter(|f| f.rule.id == "CS312").count(), 1);
    assert!(
        findings[1..]
            .iter()
            .all(|f| f.rule.severity < Severity::Warning),
        "{findings:#?}"
    );
    assert!(
        top.evidence.iter().any(|e| e.text.contains("6 times")),
        "the primary's log shows the flips: {:#?}",
        top.evidence
    );
}

/// The flip caught the other way round: the original replica's link to the primary down
/// (the primary last moved the id's address to the copy). Its stuck bus is the copy's doing
/// and hangs under CS312, which stays the only finding at warning or above.
#[test]
fn the_original_s_broken_link_hangs_under_the_copy() {
    let mut inputs = cloned_replica(&[0, 1, 2], Some(ID_PRIMARY_LOG_VALKEY));
    let original = inputs.nodes[1].live.as_mut().unwrap();
    *original = view(
        &ID_VIEWS[1]
            .0
            .replace("1796592110189 1 connected", "1796592110189 1 disconnected"),
        "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_known_nodes:2\n",
        "valkey_version:8.1.8\nuptime_in_seconds:19\n",
    );
    let findings = diagnose(&inputs);
    assert_eq!(findings[0].rule.id, "CS312", "{findings:#?}");
    assert!(
        findings[0]
            .symptoms
            .iter()
            .any(|s| s.rule.id == "CS303" && s.node == Some("127.0.0.1:23912".into())),
        "{findings:#?}"
    );
    assert!(
        findings[1..]
            .iter()
            .all(|f| f.rule.severity < Severity::Warning),
        "{findings:#?}"
    );
}

#[test]
fn a_peer_log_that_moves_an_id_back_and_forth_names_it_when_the_copy_is_not_given() {
    // Only the primary (with its log) and the original replica given.
    let inputs = cloned_replica(&[0, 1], Some(ID_PRIMARY_LOG_VALKEY));
    let hits = (identity::NODE_ID_CLAIMED_TWICE.check)(&inputs);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].node.as_ref().unwrap().label(), "127.0.0.1:23912");
    assert!(
        hits[0].evidence.iter().any(|e| e
            .text
            .contains("between 127.0.0.1:23912 and 127.0.0.1:23913")),
        "{hits:#?}"
    );
    // Without the log, one server with the id is nothing to report.
    let quiet = cloned_replica(&[0, 1], None);
    assert!((identity::NODE_ID_CLAIMED_TWICE.check)(&quiet).is_empty());
}

#[test]
fn an_address_that_changes_once_is_a_move_not_a_second_server() {
    // The Redis capture up to its first address update: the id moved once.
    let first = ID_PRIMARY_LOG_REDIS
        .lines()
        .take_while(|l| !l.contains("Address updated"))
        .chain(
            ID_PRIMARY_LOG_REDIS
                .lines()
                .filter(|l| l.contains("Address updated"))
                .take(1),
        )
        .collect::<Vec<_>>()
        .join("\n");
    let flips = identity::address_flips(&with_log(&first));
    assert!(flips.is_empty(), "{flips:#?}");
    let all = identity::address_flips(&with_log(ID_PRIMARY_LOG_REDIS));
    assert_eq!(all.len(), 1, "the Redis wording: {all:#?}");
}

/// A node nothing listens at, with this redis.conf and no log.
fn refused_with_conf(conf: &str) -> Inputs {
    let mut inputs = with_conf(conf);
    inputs.nodes[0].facts = Some(NodeFacts {
        answer: Answer::Refused,
        reply: "Connection refused (os error 111)".into(),
        version: None,
    });
    inputs
}

#[test]
fn a_config_every_server_refuses_is_named_from_the_file_alone() {
    let inputs = refused_with_conf(
        "port 7000\ncluster-enabled yes\nmaxmemory lots\nappendonly sure\nmaxmemory-policy lru\ncluster-enabeld yes\nsave \"\"\nrename-command CONFIG \"\"\n",
    );
    let findings = diagnose(&inputs);
    assert_eq!(findings[0].rule.id, "CS403", "{findings:#?}");
    let lines: Vec<(String, &str)> = findings[0]
        .evidence
        .iter()
        .map(|e| (e.source.to_string(), e.text.as_str()))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[0].0, "redis.conf:3");
    assert!(lines[0].1.contains("memory amount"), "{lines:?}");
    assert!(lines[1].1.contains("yes or no"), "{lines:?}");
    assert!(lines[2].1.contains("noeviction"), "{lines:?}");
    assert!(lines[3].1.contains("not a directive"), "{lines:?}");
    // The same file on a running node, or with the refusal in its log: not this rule's.
    let mut running = inputs.clone();
    running.nodes[0].facts = None;
    assert!((server_config::CONFIG_REFUSED_AT_STARTUP.check)(&running).is_empty());
}

#[test]
fn is_memory_reads_what_the_servers_take() {
    for ok in ["0", "100", "100mb", "2GB", "512k", "1b"] {
        assert!(super::rules::server_config::is_memory(ok), "{ok}");
    }
    for bad in ["lots", "", "1.5gb", "10tb", "-1", "mb"] {
        assert!(!super::rules::server_config::is_memory(bad), "{bad}");
    }
}

// ---- the node's environment: a replica whose dir is a 2 MiB tmpfs, its primary holding about
// 60 MB (captured on Redis 7.0.15).

const REPLICA_DISK_FULL_LOG: &str =
    include_str!("../../tests/fixtures/environment/replica-disk-full-redis-7.0.log");

/// The captured primary (127.0.0.1:23951, every slot) and replica (23952) with the replica's
/// log, its link `link`, and its disk as statvfs read it after the failed attempt.
fn replica_on_a_full_disk(log: &str, link: &str) -> Inputs {
    let primary_id = "57c90a97706e111b78c785aca772d93b9f7a51d2";
    let replica_id = "1eeaab4d35f0691978fda4d099b070172b97e392";
    let primary = format!("{primary_id} 127.0.0.1:23951@33951 master - 0 0 1 connected 0-16383");
    let replica = format!("{replica_id} 127.0.0.1:23952@33952 slave {primary_id} 0 0 1 connected");
    let mine = |line: &str, role: &str| {
        line.replacen(&format!(" {role} "), &format!(" myself,{role} "), 1)
    };
    let info = "cluster_state:ok\ncluster_slots_assigned:16384\ncluster_known_nodes:2\n";
    Inputs {
        nodes: vec![
            NodeEvidence {
                key: "127.0.0.1:23951".into(),
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(23951),
                live: Some(view(
                    &format!("{}\n{replica}\n", mine(&primary, "master")),
                    info,
                    "role:master\nconnected_slaves:1\nused_memory:62914560\nused_memory_dataset:58720256\n",
                )),
                ..Default::default()
            },
            NodeEvidence {
                key: "127.0.0.1:23952".into(),
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(23952),
                live: Some(view(
                    &format!("{primary}\n{}\n", mine(&replica, "slave")),
                    info,
                    &format!(
                        "role:slave\nmaster_host:127.0.0.1\nmaster_port:23951\nmaster_link_status:{link}\nmaster_sync_in_progress:1\n"
                    ),
                )),
                log: Some(SourceFile {
                    path: "replica.log".into(),
                    value: parse_server_log(log).value,
                }),
                disk: Some(DiskFacts {
                    dir: "/var/vcap/store/redis".into(),
                    total_bytes: 2 * 1024 * 1024,
                    free_bytes: 2 * 1024 * 1024 - 4096,
                }),
                ..Default::default()
            },
        ],
        expected: Some(Expected {
            primaries: 1,
            replicas_per_primary: 1,
        }),
        ..Default::default()
    }
}

#[test]
fn a_short_write_of_the_sync_file_names_the_full_disk_with_its_numbers() {
    let findings = diagnose(&replica_on_a_full_disk(REPLICA_DISK_FULL_LOG, "down"));
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(|n| n.label())),
        ("CS521", Some("127.0.0.1:23952")),
        "{findings:#?}"
    );
    assert!(
        top.summary
            .contains("/var/vcap/store/redis has 2.0 MiB free of 2.0 MiB")
            && top.summary.contains("its primary holds 56.0 MiB of data"),
        "{}",
        top.summary
    );
    // The catch-all (a full sync failing) and the link down hang under it.
    let under: Vec<&str> = top.symptoms.iter().map(|s| s.rule.id).collect();
    assert!(
        under.contains(&"CS513") && under.contains(&"CS204"),
        "{under:?}"
    );
    // Without the statvfs facts (diagnose not on the node's machine) it still names the disk.
    let mut remote = replica_on_a_full_disk(REPLICA_DISK_FULL_LOG, "down");
    remote.nodes[1].disk = None;
    let hits = (environment::REPLICA_DISK_TOO_SMALL.check)(&remote);
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0].summary.contains("file system is full"),
        "{}",
        hits[0].summary
    );
}

// ---- why a sync loops: a primary whose replica's output buffer overflows during every full
// sync (captured on Redis 7.0.15: `client-output-buffer-limit replica 1mb 512kb 5`, a sync
// slowed with rdb-key-save-delay, a writer of 100 KB values).

const OUTPUT_BUFFER_PRIMARY_LOG: &str =
    include_str!("../../tests/fixtures/sync-loop/primary-output-buffer-redis-7.0.log");

/// The captured primary (with its log and redis.conf) and its replica, whose link is `link`.
fn primary_cutting_its_replica(link: &str) -> Inputs {
    let mut inputs = replica_on_a_full_disk("", link);
    inputs.nodes[1].log = None;
    inputs.nodes[1].disk = None;
    inputs.nodes[0].log = Some(SourceFile {
        path: "primary.log".into(),
        value: parse_server_log(OUTPUT_BUFFER_PRIMARY_LOG).value,
    });
    inputs.nodes[0].redis_conf = Some(SourceFile {
        path: "redis.conf".into(),
        value: parse_redis_conf(
            "port 23951\ncluster-enabled yes\nclient-output-buffer-limit replica 1mb 512kb 5\n",
        )
        .value,
    });
    inputs
}

// ---- why a sync loops: a replica whose repl-timeout cuts every full sync (captured on Redis
// 7.0.15: a diskless primary with rdb-key-save-delay 3000000 and five keys, the replica with
// `repl-timeout 1`).

const REPL_TIMEOUT_REPLICA_LOG: &str =
    include_str!("../../tests/fixtures/sync-loop/replica-repl-timeout-redis-7.0.log");

/// The captured replica (with its log and, when given, its redis.conf's extra lines) and its
/// primary; the replica's link is `link`.
fn replica_timing_out(conf: Option<&str>, link: &str) -> Inputs {
    let mut inputs = replica_on_a_full_disk(REPL_TIMEOUT_REPLICA_LOG, link);
    inputs.nodes[1].disk = None;
    inputs.nodes[1].redis_conf = conf.map(|extra| SourceFile {
        path: "redis.conf".into(),
        value: parse_redis_conf(&format!("port 23952\ncluster-enabled yes\n{extra}")).value,
    });
    inputs
}

#[test]
fn a_replica_whose_repl_timeout_cuts_its_sync_names_the_timeout() {
    let findings = diagnose(&replica_timing_out(Some("repl-timeout 1\n"), "down"));
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(|n| n.label())),
        ("CS523", Some("127.0.0.1:23952")),
        "{findings:#?}"
    );
    assert!(
        top.summary.contains("1 attempt(s)") && top.summary.contains("repl-timeout 1 s"),
        "{}",
        top.summary
    );
    // The replica's own link down hangs under it.
    let under: Vec<&str> = top.symptoms.iter().map(|s| s.rule.id).collect();
    assert!(under.contains(&"CS204"), "{under:?}");
    // A redis.conf without the directive: the default, named as such; none: said so.
    let hits =
        (sync_loop::REPL_TIMEOUT_BELOW_TRANSFER_PAUSE.check)(&replica_timing_out(Some(""), "down"));
    assert!(
        hits[0].summary.contains("repl-timeout 60 s (the default)"),
        "{}",
        hits[0].summary
    );
    let hits =
        (sync_loop::REPL_TIMEOUT_BELOW_TRANSFER_PAUSE.check)(&replica_timing_out(None, "down"));
    assert!(
        hits[0].summary.contains("60 s unless set"),
        "{}",
        hits[0].summary
    );
}

#[test]
fn a_replica_cut_for_its_output_buffer_names_the_limit_and_the_buffer() {
    let findings = diagnose(&primary_cutting_its_replica("down"));
    let top = &findings[0];
    assert_eq!(
        (top.rule.id, top.node.as_ref().map(|n| n.label())),
        ("CS522", Some("127.0.0.1:23951")),
        "{findings:#?}"
    );
    assert!(
        top.summary.contains(
            "client-output-buffer-limit replica allows hard 1.0 MiB, soft 512.0 KiB for 5 s"
        ),
        "{}",
        top.summary
    );
    // The replica's link down hangs under it.
    let under: Vec<(&str, &str)> = top
        .symptoms
        .iter()
        .map(|s| (s.rule.id, s.node.as_ref().map_or("", |n| n.label())))
        .collect();
    assert!(under.contains(&("CS204", "127.0.0.1:23952")), "{under:?}");
    // Without a redis.conf: the default limits, named as such.
    let mut bare = primary_cutting_its_replica("down");
    bare.nodes[0].redis_conf = None;
    let hits = (sync_loop::REPLICA_OUTPUT_BUFFER_TOO_SMALL.check)(&bare);
    assert!(
        hits[0].summary.contains("(the default)"),
        "{}",
        hits[0].summary
    );
}
