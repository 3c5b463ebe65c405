//! The criteria, one static each, in the order they are checked and shown, each beside its
//! check.

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, Criterion, Failure};
use crate::model::{NodeId, SlotSet};
use crate::parse::NodeEntry;
use crate::snapshot::{NodeKey, NodeView};

pub static CRITERIA: &[&Criterion] = &[
    &REACHABLE,
    &MEMBERSHIP,
    &AGREEMENT,
    &SLOTS,
    &EPOCHS,
    &REPLICATION,
    &STATE,
    &BALANCE,
];

fn fail(node: &NodeKey, detail: String) -> Failure {
    Failure {
        node: node.clone(),
        detail,
    }
}

pub static REACHABLE: Criterion = Criterion {
    id: "reachable",
    title: "every expected node answers",
    warning_only: false,
    check: reachable,
};

fn reachable(cx: &Context) -> Vec<Failure> {
    cx.snapshot
        .spec_nodes()
        .filter_map(|n| match &n.state {
            crate::snapshot::NodeState::Unreachable(why) => Some(fail(&n.key, why.clone())),
            crate::snapshot::NodeState::Seen(_) => None,
        })
        .collect()
}

pub static MEMBERSHIP: Criterion = Criterion {
    id: "membership",
    title: "every node lists exactly the expected members, at the addresses they answer at, none in handshake, noaddr, fail? or fail",
    warning_only: false,
    check: membership,
};

/// A member replaced at its address by a node with a new id is said once, on the node that
/// came back, instead of an "extra node" and a "does not know" on every peer.
fn membership(cx: &Context) -> Vec<Failure> {
    let mut failures: Vec<Failure> = cx.departed.iter().map(|d| departed_line(cx, d)).collect();
    let successors = cx.successors();
    let expected: BTreeSet<NodeId> = cx.key_of.keys().copied().collect();
    let departed_ids: BTreeSet<NodeId> = cx.departed.iter().map(|d| d.id).collect();
    let mut ours = expected.clone();
    ours.extend(departed_ids.iter().copied());
    let foreign: BTreeMap<NodeKey, Vec<&NodeEntry>> = cx
        .snapshot
        .foreign_members(&ours, true)
        .into_iter()
        .map(|f| (f.viewer, f.entries))
        .collect();
    let mut stale = stale_addresses(cx);
    // Probed once per entry of every view.
    let expected_set: std::collections::HashSet<&NodeId> = expected.iter().collect();
    for node in cx.snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
        let mut stale_here = stale.remove(&node.key).unwrap_or_default();
        let mut unhealthy = Vec::new();
        let mut listed = 0;
        for entry in view.nodes.entries() {
            listed += usize::from(expected_set.contains(&entry.id));
            if departed_ids.contains(&entry.id) {
                continue;
            }
            let detail = stale_here
                .remove(&entry.id)
                .or_else(|| unhealthy_entry(cx, entry));
            unhealthy.extend(detail);
        }
        // Who is missing is only worked out when someone is.
        if listed < expected.len() && !successors.contains(&node.key) {
            let missing: Vec<String> = expected
                .iter()
                .zip(view.nodes.get_each(expected.iter()))
                .filter(|(id, entry)| {
                    entry.is_none() && !cx.key_of.get(id).is_some_and(|k| successors.contains(k))
                })
                .map(|(id, _)| cx.label_of(id))
                .collect();
            if !missing.is_empty() {
                failures.push(fail(
                    &node.key,
                    format!("does not know {}", missing.join(", ")),
                ));
            }
        }
        for entry in foreign.get(&node.key).into_iter().flatten() {
            failures.push(fail(&node.key, format!("knows extra node {}", entry.id)));
        }
        failures.extend(unhealthy.into_iter().map(|detail| fail(&node.key, detail)));
    }
    failures
}

/// What each view that lists a spec node at an address it no longer answers at says, by
/// viewer, then the node's id.
fn stale_addresses(cx: &Context) -> BTreeMap<NodeKey, BTreeMap<NodeId, String>> {
    let mut stale: BTreeMap<NodeKey, BTreeMap<NodeId, String>> = BTreeMap::new();
    for s in cx.snapshot.stale_addresses(true) {
        let Some(id) = cx.expected_ids.get(&s.subject) else {
            continue;
        };
        let detail = if s.viewer == s.subject {
            format!(
                "believes its own address is the stale {} (it answers at {})",
                s.listed, s.answers_at
            )
        } else {
            format!(
                "lists {} at the stale address {} (it answers at {}; clients following MOVED are sent there)",
                s.subject, s.listed, s.answers_at
            )
        };
        stale.entry(s.viewer).or_default().insert(*id, detail);
    }
    stale
}

/// An entry stuck in handshake, or flagged `fail?`, `fail` or `noaddr`.
fn unhealthy_entry(cx: &Context, entry: &NodeEntry) -> Option<String> {
    if entry.is_handshake() {
        Some(format!(
            "is stuck in handshake with {} (bus port {}): the cluster bus does not connect (a firewall, a wrong cluster-announce-bus-port or MEET bus port, or a TLS bus certificate without clientAuth)",
            entry.addr, entry.addr.bus_port
        ))
    } else if !entry.unhealthy_flags().is_empty() {
        let flags = entry.unhealthy_flags().join(",");
        Some(format!("sees {} as {flags}", cx.label_of(&entry.id)))
    } else {
        None
    }
}

fn departed_line(cx: &Context, d: &crate::snapshot::Departed) -> Failure {
    let owns = if d.slots.is_empty() {
        "owns no slot: apply forgets it and adds the node back in its planned role".to_owned()
    } else {
        format!(
            "still owns slots {}: no replica has taken over (see `clustersmith plan`)",
            d.slots
        )
    };
    fail(
        &d.successor,
        format!(
            "came back with a new id {} (empty: lost disk or nodes.conf?) while {} still list its old id {} ({}), which {owns}",
            cx.expected_ids.get(&d.successor).map_or("?", NodeId::short),
            crate::plural(d.listed_by.len() as u64, "peer", "peers"),
            d.id.short(),
            d.flags
        ),
    )
}

pub static AGREEMENT: Criterion = Criterion {
    id: "agreement",
    title: "all nodes agree on every member's role, primary and slots",
    warning_only: false,
    check: agreement,
};

fn agreement(cx: &Context) -> Vec<Failure> {
    // "a replica of X", or "a primary": both halves, since two views can agree on the role
    // and differ on the primary.
    let role = |entry: &NodeEntry| match (entry.is_replica(), entry.primary_id.as_ref()) {
        (true, Some(id)) => format!("a replica of {}", cx.label_of(id)),
        (true, None) => "a replica".to_owned(),
        (false, _) => "a primary".to_owned(),
    };
    let mut stale: Vec<(NodeKey, NodeKey)> = cx
        .snapshot
        .stale_peer_views(false)
        .into_iter()
        .map(|s| (s.viewer, s.subject))
        .collect();
    // Listed by viewer, as each view is read in turn (a stable sort keeps the subjects in
    // order under each viewer).
    let order: std::collections::HashMap<&NodeKey, usize> = cx
        .snapshot
        .keys()
        .enumerate()
        .map(|(at, key)| (key, at))
        .collect();
    stale.sort_by_key(|(viewer, _)| order.get(viewer).copied().unwrap_or(usize::MAX));
    let mut failures = Vec::new();
    for (viewer, subject) in stale {
        let (Some(view), Some(truth)) = (cx.snapshot.view(&viewer), cx.snapshot.view(&subject))
        else {
            continue;
        };
        let (truth, Some(seen)) = (truth.myself(), view.knows(&truth.id)) else {
            continue;
        };
        let detail =
            if seen.is_replica() != truth.is_replica() || seen.primary_id != truth.primary_id {
                format!("sees {subject} as {} but it is {}", role(seen), role(truth))
            } else {
                format!(
                    "sees {subject} owning slots {} but it owns {}",
                    seen.slots, truth.slots
                )
            };
        failures.push(fail(&viewer, detail));
    }
    failures
}

pub static SLOTS: Criterion = Criterion {
    id: "slots",
    title: "all 16384 slots are owned by the intended primaries, none open",
    warning_only: false,
    check: slots,
};

fn slots(cx: &Context) -> Vec<Failure> {
    let mut failures = open_slots(cx);
    failures.extend(claims(cx));
    failures
}

/// Only a node's own line tells its open slots (servers print them there alone).
fn open_slots(cx: &Context) -> Vec<Failure> {
    let mut failures = Vec::new();
    for node in cx.snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
        let open: Vec<String> = view
            .myself()
            .open_slots()
            .iter()
            .map(|o| o.slot.to_string())
            .collect();
        if !open.is_empty() {
            failures.push(fail(
                &node.key,
                format!("has open slots {}", open.join(",")),
            ));
        }
    }
    failures
}

/// What each node claims for itself against the layout: the primaries their planned slots,
/// nobody else any, and every slot someone.
fn claims(cx: &Context) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut covered = SlotSet::new();
    for shard in &cx.layout.shards {
        let Some(view) = cx.snapshot.view(&shard.primary) else {
            continue;
        };
        let owns = &view.myself().slots;
        covered.union_with(owns);
        if *owns != shard.slots {
            failures.push(fail(
                &shard.primary,
                format!("owns {owns}, intended {}", shard.slots),
            ));
        }
    }
    let primaries: BTreeSet<&NodeKey> = cx.layout.primaries().collect();
    for (node, view) in cx.snapshot.views() {
        let claims = &view.myself().slots;
        if claims.is_empty() || primaries.contains(&node.key) {
            continue;
        }
        // A member on its way out that still claims slots: the others may already have
        // forgotten it, and then no spec view shows the claim, but its clients are still
        // served from it.
        let detail = if node.leaving {
            format!("is leaving the cluster but still claims slots {claims} for itself")
        } else {
            format!("owns {claims} but is not an intended primary")
        };
        failures.push(fail(&node.key, detail));
    }
    // Slots meant for a primary that did not answer are unknown, not unowned.
    let mut uncovered = covered.complement();
    for shard in &cx.layout.shards {
        if cx.snapshot.view(&shard.primary).is_none() {
            uncovered = uncovered.difference(&shard.slots);
        }
    }
    if !uncovered.is_empty()
        && let Some(any_primary) = cx.layout.primaries().next()
    {
        failures.push(fail(
            any_primary,
            format!(
                "{} no owner: {uncovered}",
                crate::plural(uncovered.len() as u64, "slot has", "slots have")
            ),
        ));
    }
    failures
}

pub static EPOCHS: Criterion = Criterion {
    id: "epochs",
    title: "config epochs of the primaries are unique",
    warning_only: false,
    check: epochs,
};

fn epochs(cx: &Context) -> Vec<Failure> {
    let mut by_epoch: BTreeMap<u64, Vec<&NodeKey>> = BTreeMap::new();
    for primary in cx.layout.primaries() {
        if let Some(view) = cx.snapshot.view(primary) {
            by_epoch
                .entry(view.myself().config_epoch)
                .or_default()
                .push(primary);
        }
    }
    let mut failures = Vec::new();
    for (epoch, holders) in by_epoch.iter().filter(|(_, h)| h.len() > 1) {
        for holder in holders {
            let others: Vec<&str> = holders
                .iter()
                .filter(|h| *h != holder)
                .map(|h| h.label())
                .collect();
            failures.push(fail(
                holder,
                format!("config epoch {epoch} is also held by {}", others.join(", ")),
            ));
        }
    }
    failures
}

pub static REPLICATION: Criterion = Criterion {
    id: "replication",
    title: "each intended replica replicates its intended primary with master_link_status:up",
    warning_only: false,
    check: replication,
};

fn replication(cx: &Context) -> Vec<Failure> {
    let mut failures = Vec::new();
    for shard in &cx.layout.shards {
        let primary_id = cx.expected_ids.get(&shard.primary);
        for replica in &shard.replicas {
            let Some(view) = cx.snapshot.view(replica) else {
                continue;
            };
            let me = view.myself();
            if !me.is_replica() || me.primary_id.as_ref() != primary_id {
                let now = match &me.primary_id {
                    Some(id) => format!("replicates {}", cx.label_of(id)),
                    None => "is a primary".to_owned(),
                };
                failures.push(fail(
                    replica,
                    format!("should replicate {} but {now}", shard.primary),
                ));
            } else if view.info.primary_link_status() != Some("up") {
                failures.push(fail(
                    replica,
                    format!(
                        "master_link_status:{} (primary {})",
                        view.info.primary_link_status().unwrap_or("unknown"),
                        shard.primary
                    ),
                ));
            }
        }
    }
    failures
}

pub static STATE: Criterion = Criterion {
    id: "state",
    title: "cluster_state:ok on every node",
    warning_only: false,
    check: state,
};

fn state(cx: &Context) -> Vec<Failure> {
    cx.snapshot
        .spec_nodes()
        .filter(|n| n.view().is_some_and(|v: &NodeView| !v.cluster_info.is_ok()))
        .map(|n| fail(&n.key, "cluster_state is not ok".to_owned()))
        .collect()
}

pub static BALANCE: Criterion = Criterion {
    id: "balance",
    title: "the primaries' slot counts differ by at most one (a warning: it does not fail verify)",
    warning_only: true,
    check: balance,
};

/// What the primaries own now, whatever the layout plans (a manual reshard or an interrupted
/// move can leave 8192 / 2731 / 5461 until apply evens it out). Weighted shares differ on
/// purpose; `slots` checks them against the layout.
fn balance(cx: &Context) -> Vec<Failure> {
    let owned: Vec<(&NodeKey, usize)> = cx
        .layout
        .primaries()
        .filter_map(|p| cx.snapshot.view(p).map(|v| (p, v.myself().slots.len())))
        .collect();
    let (Some(min), Some(max)) = (
        owned.iter().map(|(_, n)| *n).min(),
        owned.iter().map(|(_, n)| *n).max(),
    ) else {
        return Vec::new();
    };
    if owned.len() != cx.layout.shards.len() || cx.layout.weighted || max - min <= 1 {
        return Vec::new();
    }
    let counts: Vec<String> = owned.iter().map(|(p, n)| format!("{p} {n}")).collect();
    owned
        .iter()
        .filter(|(_, n)| *n == max || *n == min)
        .map(|(p, n)| {
            fail(
                p,
                format!(
                    "owns {n} slots; the primaries own {} (differing by {}); moving slots evens them",
                    counts.join(", "),
                    max - min
                ),
            )
        })
        .collect()
}
