//! What clients see (CS370–CS373): the cluster bus can be healthy while a primary refuses
//! writes because of its own configuration, or while the nodes send clients to an endpoint
//! they cannot use. Each rule names what clients get, the parameter behind it and its
//! numbers, from `INFO` (memory, persistence, replication), `INFO errorstats`, which counts
//! every refusal the server sent since it started, and `CLUSTER SLOTS` with each endpoint
//! tried as a client would.
//!
//! Written from the servers' source (Redis 7.0 `server.c` `processCommand`):
//! - `-OOM command not allowed when used memory > 'maxmemory'`: `maxmemory` set, the policy
//!   `noeviction` (or nothing left to evict), and a command that may grow memory;
//! - `-MISCONF … Redis is configured to save RDB snapshots, but it's currently unable to
//!   persist to disk`: `stop-writes-on-bgsave-error yes` and the last background save failed;
//! - `-NOREPLICAS Not enough good replicas to write.`: `min-replicas-to-write N` and fewer
//!   than N replicas acknowledged within `min-replicas-max-lag`.
//!
//! And from Redis 7.0 `cluster.c` `addNodeToNodeReply` (Valkey's is the same): a slot's node
//! is listed at the *answering* node's `cluster-preferred-endpoint-type` — the node's IP (its
//! announced one; Valkey 8+ a `cluster-announce-client-ipv4`/`-ipv6` first), its announced
//! hostname or `?` when it has none, or NULL for `unknown-endpoint` — with its client port
//! (`cluster-announce-port`/`-tls-port`; Valkey 9 `cluster-announce-client-port`).

use crate::diagnose::EvidenceKind::{Live, RedisConf, ServerLog};
use crate::diagnose::Severity::Error;
use crate::diagnose::{EndpointAnswer, Evidence, Hit, Inputs, NodeEvidence, Rule, Source, live};
use crate::snapshot::NodeView;

pub static WRITES_REFUSED_OOM: Rule = Rule {
    id: "CS370",
    name: "writes-refused-oom",
    severity: Error,
    detects: "A primary at or above its `maxmemory` with `maxmemory-policy noeviction`: every write that may grow memory is refused with `OOM command not allowed when used memory > 'maxmemory'`. Read from `INFO memory` (used_memory, maxmemory, maxmemory_policy) and `INFO errorstats` (errorstat_OOM: the refusals so far).",
    why: "The cluster looks healthy on the bus, cluster_state is ok, and yet the shard takes no writes: clients see OOM errors for every key in its slots.",
    fix: "Give the node memory for its dataset (raise `maxmemory`, within the machine's RAM), delete or expire keys, spread the data over more shards (`clustersmith apply` with more primaries), or, for a cache, pick an eviction policy (`maxmemory-policy allkeys-lru`).",
    false_positives: "None at the limit itself; a node that refused writes earlier and has since been given room shows only past refusals in errorstats, which is said as such.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_oom,
};

pub static WRITES_REFUSED_MISCONF: Rule = Rule {
    id: "CS371",
    name: "writes-refused-misconf",
    severity: Error,
    detects: "A primary whose last background save failed (`rdb_last_bgsave_status:err` in `INFO persistence`) while it refuses writes with `MISCONF` (`stop-writes-on-bgsave-error yes`, the default): `INFO errorstats` counts the refusals.",
    why: "Every write to the shard fails until a save succeeds again; the cluster bus and cluster_state say nothing about it.",
    fix: "Make the save succeed: the server log says why it failed (disk full, the `dir` unwritable, fork refused for memory); `BGSAVE` once fixed lifts the refusal. `stop-writes-on-bgsave-error no` accepts writes that may not be persisted.",
    false_positives: "A save that failed and was followed by refusals, then fixed without a successful save yet: the refusal still holds, so this is still true.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_misconf,
};

pub static WRITES_REFUSED_NOREPLICAS: Rule = Rule {
    id: "CS372",
    name: "writes-refused-noreplicas",
    severity: Error,
    detects: "A primary with `min-replicas-to-write` set (`INFO replication` shows `min_slaves_good_slaves` only then) that has fewer good replicas than it needs: none good while it serves slots (every write is refused now, whether or not one was tried yet), or fewer good than connected while it has refused writes with `NOREPLICAS` (`INFO errorstats`).",
    why: "The shard takes no writes while its replicas are down or lagging beyond `min-replicas-max-lag`: the replica being down is the cause an operator sees first, the refused writes are what clients see.",
    fix: "Bring the shard's replicas back (see their own findings), or lower `min-replicas-to-write` for the time being.",
    false_positives: "Refusals counted while replicas were away that have since come back: the count stays, the good replicas are enough again, and the rule does not fire then. The setting's value is not in INFO: with some replicas good and some not, the rule fires only once writes were refused.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_noreplicas,
};

/// `errorstat_CODE:count=N` as N.
fn refusals(view: &NodeView, code: &str) -> u64 {
    view.info
        .get(&format!("errorstat_{code}"))
        .and_then(|v| v.strip_prefix("count="))
        .and_then(|n| n.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Live primaries (by their own view).
fn primaries(inputs: &Inputs) -> impl Iterator<Item = (&NodeEvidence, &NodeView)> {
    inputs
        .nodes
        .iter()
        .filter_map(|n| Some((n, n.live.as_ref()?)))
        .filter(|(_, v)| !v.myself().is_replica())
}

pub fn writes_refused_oom(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            let max = view.info.number("maxmemory").filter(|m| *m > 0)?;
            let used = view.info.number("used_memory")?;
            let policy = view.info.get("maxmemory_policy").unwrap_or("");
            let refused = refusals(view, "OOM");
            let at_limit = used >= max && policy == "noeviction";
            if !at_limit && refused == 0 {
                return None;
            }
            let now = if at_limit {
                format!("used_memory {used} ≥ maxmemory {max} with maxmemory-policy noeviction: writes are refused now")
            } else {
                format!("used_memory {used} of maxmemory {max} (policy {policy}): below the limit now, writes were refused earlier")
            };
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!("writes refused with OOM ({refused} so far): {now}"),
                evidence: vec![
                    live(
                        node,
                        "INFO memory",
                        format!("used_memory:{used} maxmemory:{max} maxmemory_policy:{policy}"),
                    ),
                    live(node, "INFO errorstats", format!("errorstat_OOM:count={refused}")),
                ],
            })
        })
        .collect()
}

pub fn writes_refused_misconf(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            let failed = view.info.get("rdb_last_bgsave_status") == Some("err");
            let refused = refusals(view, "MISCONF");
            if !failed || refused == 0 {
                return None;
            }
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "writes refused with MISCONF ({refused} so far): the last background save failed and stop-writes-on-bgsave-error holds writes until one succeeds"
                ),
                evidence: vec![
                    live(node, "INFO persistence", "rdb_last_bgsave_status:err"),
                    live(
                        node,
                        "INFO errorstats",
                        format!("errorstat_MISCONF:count={refused}"),
                    ),
                ],
            })
        })
        .collect()
}

pub fn writes_refused_noreplicas(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            // The field is there only while min-replicas-to-write is set; its value is not in
            // INFO, but any value refuses every write when no replica is good.
            let good = view.info.number("min_slaves_good_slaves")?;
            let connected = view.info.number("connected_slaves").unwrap_or(0);
            let refused = refusals(view, "NOREPLICAS");
            let summary = if good == 0 && !view.myself().slots.is_empty() {
                format!(
                    "writes refused with NOREPLICAS ({refused} so far): min-replicas-to-write is set and none of its replicas is good ({connected} connected), so every write to its slots is refused now"
                )
            } else if refused > 0 && good < connected {
                format!(
                    "writes refused with NOREPLICAS ({refused} so far): {good} good replica(s) of {connected} connected, fewer than min-replicas-to-write asks"
                )
            } else {
                return None;
            };
            Some(Hit {
                node: Some(node.key.clone()),
                summary,
                evidence: vec![
                    live(
                        node,
                        "INFO replication",
                        format!("min_slaves_good_slaves:{good} connected_slaves:{connected}"),
                    ),
                    live(
                        node,
                        "INFO errorstats",
                        format!("errorstat_NOREPLICAS:count={refused}"),
                    ),
                ],
            })
        })
        .collect()
}

pub static CLIENT_ENDPOINT_UNUSABLE: Rule = Rule {
    id: "CS373",
    name: "client-endpoint-unusable",
    severity: Error,
    detects: "An endpoint the nodes send clients to (`CLUSTER SLOTS`, and the same in `MOVED`/`ASK` redirects: each node's preferred endpoint and client port) that clients cannot use: the name does not resolve, nothing answers there, it answers as another node, or it is `?` (hostnames preferred while the node announces none). Diagnose connects to each endpoint that is not where it reached the node already, as a client would, and asks `CLUSTER MYID`.",
    why: "The cluster bus and replication use the nodes' bus addresses, so `cluster_state:ok` and every link up say nothing about this: clients are sent away for every key in the node's slots and fail there (or bounce between two nodes), while every check run against the node's own address passes.",
    fix: "Make what the node announces for clients reachable from them: `cluster-announce-hostname` a name they resolve (it is used with `cluster-preferred-endpoint-type hostname`), Valkey's `cluster-announce-client-ipv4`/`-ipv6` an address they reach, `cluster-announce-port`/`-tls-port` (Valkey 9: `cluster-announce-client-port`/`-tls-port`) the port the node serves clients on; or remove the setting, or set `cluster-preferred-endpoint-type ip`. Each can be set with CONFIG SET; the peers hand out the new value after the node's next heartbeat.",
    false_positives: "Diagnose run from another network than the clients' (a hostname that resolves only inside the clients' network, an address behind a NAT or a load balancer meant for them): then the endpoint works for them and not from here. Run diagnose where the clients run to tell.",
    evidence: &[Live, RedisConf],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: client_endpoint_unusable,
};

pub static CLIENTS_REFUSED_AT_MAXCLIENTS: Rule = Rule {
    id: "CS374",
    name: "clients-refused-at-maxclients",
    severity: Error,
    detects: "A node that refused connections with `max number of clients reached` (`max number of clients + cluster connections reached` in cluster mode since Redis 7.0: the bus links count too) (`rejected_connections` in `INFO stats`, counted since its start), against `maxclients` (`INFO clients`, Redis 7.0+ and Valkey) and, when its log says so, the open files limit that lowered maxclients at startup (`Current maximum open files is N. maxclients has been reduced to M to compensate for low ulimit`).",
    why: "Each client connection takes a file descriptor. A server started under a low open-files limit (`ulimit -n`, systemd `LimitNOFILE`, a container's) lowers maxclients to fit and says so once, at startup; from then on every connection past it is refused, clients and operators' tools alike, while the cluster bus and cluster_state look healthy.",
    fix: "Raise the open files limit of the server's process to maxclients + 32 (the BOSH job's limits, systemd `LimitNOFILE`, `ulimit -n` in the start script) and restart it: the server fits maxclients to the limit once, at startup. When maxclients itself is what was reached, raise it (`CONFIG SET maxclients`) or find the clients that hold connections (`CLIENT LIST`).",
    false_positives: "Refusals during a burst of connections that is over: the count stays until a restart or `CONFIG RESETSTAT`; the summary says how many are connected now.",
    evidence: &[Live, ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: clients_refused_at_maxclients,
};

/// The server's words when it fits maxclients to the open files limit at startup.
const MAXCLIENTS_REDUCED: &str = "maxclients has been reduced to";

pub fn clients_refused_at_maxclients(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let Some(rejected) = view.info.number("rejected_connections").filter(|n| *n > 0) else {
            continue;
        };
        let connected = view.info.number("connected_clients").unwrap_or(0);
        let max = view.info.number("maxclients");
        let mut evidence = vec![
            live(
                node,
                "INFO stats",
                format!("rejected_connections:{rejected}"),
            ),
            live(
                node,
                "INFO clients",
                format!(
                    "connected_clients:{connected} maxclients:{}",
                    max.map_or("?".to_owned(), |m| m.to_string())
                ),
            ),
        ];
        // `Current maximum open files is 64. maxclients has been reduced to 32 …`, since the
        // last start (an older run's limit says nothing of this one).
        let reduced = node.log.as_ref().and_then(|log| {
            let line = log
                .value
                .last_run()
                .iter()
                .rev()
                .find(|l| l.message.contains(MAXCLIENTS_REDUCED))?;
            let after = |text: &str| -> Option<u64> {
                let rest = line.message.split_once(text)?.1.trim_start();
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            let nofile = after("open files is ")?;
            let to = after(MAXCLIENTS_REDUCED)?;
            Some((log.at(line.line, line.message.clone()), nofile, to))
        });
        let summary = match reduced {
            Some((line, nofile, to)) => {
                evidence.push(line);
                format!(
                    "refused {rejected} connection(s) with `max number of clients … reached` since its start: it started under an open files limit of {nofile}, which cut maxclients to {to} ({connected} connected now)"
                )
            }
            None => format!(
                "refused {rejected} connection(s) with `max number of clients … reached` since its start: maxclients {} ({connected} connected now)",
                max.map_or("(not in INFO)".to_owned(), |m| m.to_string())
            ),
        };
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary,
            evidence,
        });
    }
    hits
}

/// The announce settings that shape a node's client endpoint, as its redis.conf may set them.
const CLIENT_ENDPOINT_DIRECTIVES: &[&str] = &[
    "cluster-announce-hostname",
    "cluster-announce-client-ipv4",
    "cluster-announce-client-ipv6",
    "cluster-announce-ip",
    "cluster-announce-client-port",
    "cluster-announce-client-tls-port",
    "cluster-announce-port",
    "cluster-announce-tls-port",
];

pub fn client_endpoint_unusable(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for endpoint in &inputs.endpoints {
        let (host, port) = (&endpoint.host, endpoint.port);
        let subject = inputs.live().find(|(_, v)| v.id == endpoint.id);
        // Nothing answering at the endpoint of a node that answers nowhere else either is
        // that node being down (listed until its peers flag it failing): its own finding.
        if subject.is_none() && matches!(endpoint.answer, EndpointAnswer::Unreachable(_)) {
            continue;
        }
        let failure = match &endpoint.answer {
            EndpointAnswer::Reached => continue,
            EndpointAnswer::AnswersAs(id) if *id == endpoint.id => continue,
            EndpointAnswer::AnswersAs(id) => format!(
                "`{host}:{port}` answers as node {}: clients sent there get redirected again",
                id.short()
            ),
            EndpointAnswer::NoHostname => format!(
                "it is `?`: hostnames are the preferred endpoint and node {} announces none",
                endpoint.id.short()
            ),
            EndpointAnswer::Unresolvable(why) => format!("`{host}` does not resolve ({why})"),
            EndpointAnswer::Unreachable(why) => {
                format!("nothing answers at `{host}:{port}` ({why})")
            }
        };
        let what = if endpoint.slots.is_empty() {
            "its replica entry".to_owned()
        } else {
            format!("slots {}", endpoint.slots)
        };
        let mut evidence: Vec<Evidence> = inputs
            .nodes
            .iter()
            .filter(|n| endpoint.listed_by.contains(&n.key))
            .map(|n| {
                live(
                    n,
                    "CLUSTER SLOTS",
                    format!("{what} of {} at `{host}:{port}`", endpoint.id.short()),
                )
            })
            .collect();
        evidence.push(Evidence {
            source: Source::Live {
                node: format!("{host}:{port}"),
                reply: "a client's connection",
            },
            text: failure.clone(),
        });
        // The settings behind it: the node's announce lines, and, for `?`, the preferred
        // endpoint type of the nodes that list it.
        if let Some(conf) = subject.and_then(|(n, _)| n.redis_conf.as_ref()) {
            for name in CLIENT_ENDPOINT_DIRECTIVES {
                if let Some(d) = conf.value.get(name) {
                    evidence.push(conf.at(d.line, d.shown()));
                }
            }
        }
        if endpoint.answer == EndpointAnswer::NoHostname {
            for node in inputs
                .nodes
                .iter()
                .filter(|n| endpoint.listed_by.contains(&n.key))
            {
                if let Some(conf) = &node.redis_conf
                    && let Some(d) = conf.value.get("cluster-preferred-endpoint-type")
                {
                    evidence.push(conf.at(d.line, d.shown()));
                }
            }
        }
        let where_reached = subject
            .map(|(n, _)| format!("; the node answers where diagnose reached it ({})", n.key))
            .unwrap_or_default();
        hits.push(Hit {
            node: subject.map(|(n, _)| n.key.clone()),
            summary: format!(
                "clients are sent to `{host}:{port}` for {what}, and {failure}{where_reached}"
            ),
            evidence,
        });
    }
    hits
}
