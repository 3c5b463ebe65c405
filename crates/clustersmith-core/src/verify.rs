//! The criteria a formed cluster must meet, evaluated against the *expected* topology.
//!
//! Each criterion lists every node that fails it and why, so a failing cluster names its
//! culprits. A node that cannot be reached fails `reachable` and cannot pass anything it would
//! have to report itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{NodeId, SlotSet};
use crate::observation::{InventoryNode, NodeState, Observation};
use crate::plan::{Layout, departed_members};

/// Stable criterion ids, in the order they are checked and shown.
pub const CRITERIA: &[(&str, &str)] = &[
    ("reachable", "every expected node answers"),
    (
        "membership",
        "every node lists exactly the expected members, at the addresses they answer at, none in handshake, noaddr, fail? or fail",
    ),
    (
        "agreement",
        "all nodes agree on every member's role, primary and slots",
    ),
    (
        "slots",
        "all 16384 slots are owned by the intended primaries, none open",
    ),
    ("epochs", "config epochs of the primaries are unique"),
    (
        "replication",
        "each intended replica replicates its intended primary with master_link_status:up",
    ),
    ("state", "cluster_state:ok on every node"),
    (
        "balance",
        "the primaries' slot counts differ by at most one (a warning: it does not fail verify)",
    ),
];

/// Criteria that warn without failing the verdict: the cluster works, but is not as intended.
pub const WARNING_ONLY: &[&str] = &["balance"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Inventory position of the node that fails.
    pub node: usize,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriterionResult {
    pub id: &'static str,
    pub title: &'static str,
    pub failures: Vec<Failure>,
    /// Nodes this criterion needed to look at but could not (they did not answer): a
    /// criterion with no failure is only met when this is empty.
    pub unchecked: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Met,
    Failed,
    /// Nothing wrong was seen, but some nodes could not be looked at.
    Unknown,
    /// A warning-only criterion does not hold: shown, but the verdict still passes.
    Warning,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "ok",
            Status::Failed => "fail",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
        }
    }
}

impl CriterionResult {
    pub fn status(&self) -> Status {
        if !self.failures.is_empty() && self.is_warning_only() {
            Status::Warning
        } else if !self.failures.is_empty() {
            Status::Failed
        } else if !self.unchecked.is_empty() {
            Status::Unknown
        } else {
            Status::Met
        }
    }

    /// Met, or only warned about.
    pub fn passed(&self) -> bool {
        matches!(self.status(), Status::Met | Status::Warning)
    }

    pub fn is_warning_only(&self) -> bool {
        WARNING_ONLY.contains(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub criteria: Vec<CriterionResult>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(CriterionResult::passed)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CriterionResult> {
        self.criteria.iter().filter(|c| !c.passed())
    }
}

pub fn verify(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    known_ids: &[Option<NodeId>],
) -> Verdict {
    let mut failures: BTreeMap<&'static str, Vec<Failure>> = BTreeMap::new();
    let mut fail = |id: &'static str, node: usize, detail: String| {
        failures
            .entry(id)
            .or_default()
            .push(Failure { node, detail });
    };
    let label = |idx: usize| inventory[idx].label.as_str();
    let expected_ids: Vec<Option<NodeId>> = (0..inventory.len())
        .map(|i| {
            obs.view(i)
                .map(|v| v.id.clone())
                .or_else(|| known_ids.get(i).cloned().flatten())
                .or_else(|| obs.id_listed_at(inventory[i].ip, inventory[i].port))
        })
        .collect();
    // Inventory position of every expected id, built once: the per-entry lookups below run
    // for every entry of every view (N² per round in apply).
    let mut index_of: BTreeMap<&NodeId, usize> = BTreeMap::new();
    for (i, id) in expected_ids.iter().enumerate() {
        if let Some(id) = id {
            index_of.entry(id).or_insert(i);
        }
    }
    let expected: BTreeSet<&NodeId> = index_of.keys().copied().collect();
    let label_of = |id: &NodeId| -> String {
        index_of
            .get(id)
            .map_or_else(|| id.short().to_owned(), |i| label(*i).to_owned())
    };

    // Members replaced at their address by a node with a new id (lost disk, recreated VM):
    // one line on the node that came back says it all, instead of an "extra node" and a
    // "does not know" on every peer.
    let departed = departed_members(inventory, obs, &|id| expected.contains(id));
    let departed_ids: BTreeSet<&NodeId> = departed.iter().map(|d| &d.id).collect();
    let successors: BTreeSet<usize> = departed.iter().map(|d| d.successor).collect();
    for d in &departed {
        let owns = if d.slots.is_empty() {
            "owns no slot: apply forgets it and adds the node back in its planned role".to_owned()
        } else {
            format!(
                "still owns slots {}: no replica has taken over (see `clustersmith plan`)",
                d.slots
            )
        };
        fail(
            "membership",
            d.successor,
            format!(
                "came back with a new id {} (empty: lost disk or nodes.conf?) while {} still list its old id {} ({}), which {owns}",
                expected_ids[d.successor]
                    .as_ref()
                    .map_or("?", |id| id.short()),
                crate::plural(d.listed_by.len() as u64, "peer", "peers"),
                d.id.short(),
                d.flags
            ),
        );
    }

    for (idx, state) in obs.nodes.iter().enumerate() {
        let view = match state {
            NodeState::Seen(view) => view,
            NodeState::Unreachable(why) => {
                fail("reachable", idx, why.clone());
                continue;
            }
        };

        // membership
        let listed: BTreeSet<&NodeId> = view.nodes.entries.iter().map(|e| &e.id).collect();
        let missing: Vec<String> = expected
            .iter()
            .filter(|id| !listed.contains(*id))
            .filter(|id| {
                !index_of
                    .get(*id)
                    .is_some_and(|pos| successors.contains(pos))
            })
            .map(|id| label_of(id))
            .collect();
        if !missing.is_empty() && !successors.contains(&idx) {
            fail(
                "membership",
                idx,
                format!("does not know {}", missing.join(", ")),
            );
        }
        for entry in &view.nodes.entries {
            if departed_ids.contains(&entry.id) {
                continue;
            }
            if !expected.contains(&entry.id) && !entry.is_handshake() {
                fail("membership", idx, format!("knows extra node {}", entry.id));
            }
            let bad = entry.unhealthy_flags();
            // A member listed at another IP than the one it answers at: it came back with a new
            // address and this node still dials the old one (or the cluster announces
            // addresses its clients cannot use).
            let answers_at = index_of
                .get(&entry.id)
                .filter(|pos| obs.view(**pos).is_some())
                .map(|pos| inventory[*pos].ip);
            if let (Some(ip), Some(listed_ip)) = (answers_at, entry.addr.ip)
                && ip != listed_ip
            {
                let detail = if entry.is_myself() {
                    format!(
                        "believes its own address is the stale {} (it answers at {ip})",
                        entry.addr
                    )
                } else {
                    format!(
                        "lists {} at the stale address {} (it answers at {ip}; clients following MOVED are sent there)",
                        label_of(&entry.id),
                        entry.addr
                    )
                };
                fail("membership", idx, detail);
                continue;
            }
            if entry.is_handshake() {
                fail(
                    "membership",
                    idx,
                    format!(
                        "is stuck in handshake with {} (bus port {}): the cluster bus does not connect (a firewall, a wrong cluster-announce-bus-port or MEET bus port, or a TLS bus certificate without clientAuth)",
                        entry.addr, entry.addr.bus_port
                    ),
                );
            } else if !bad.is_empty() {
                fail(
                    "membership",
                    idx,
                    format!("sees {} as {}", label_of(&entry.id), bad.join(",")),
                );
            }
        }

        // agreement
        for (other, other_state) in obs.nodes.iter().enumerate() {
            let Some(other_view) = other_state.view() else {
                continue;
            };
            if other == idx {
                continue;
            }
            let truth = other_view.myself();
            let Some(seen) = view.knows(&other_view.id) else {
                continue;
            };
            let role = |replica: bool| if replica { "replica" } else { "primary" };
            if seen.is_replica() != truth.is_replica() || seen.primary_id != truth.primary_id {
                fail(
                    "agreement",
                    idx,
                    format!(
                        "sees {} as {} but it is a {}",
                        label(other),
                        role(seen.is_replica()),
                        role(truth.is_replica())
                    ),
                );
            } else if seen.slots != truth.slots {
                fail(
                    "agreement",
                    idx,
                    format!(
                        "sees {} owning slots {} but it owns {}",
                        label(other),
                        seen.slots,
                        truth.slots
                    ),
                );
            }
        }

        // state
        if !view.cluster_info.is_ok() {
            fail("state", idx, "cluster_state is not ok".to_owned());
        }
        let open: Vec<String> = view
            .myself()
            .open_slots
            .iter()
            .map(|o| o.slot.to_string())
            .collect();
        if !open.is_empty() {
            fail("slots", idx, format!("has open slots {}", open.join(",")));
        }
    }

    // slots
    let mut covered = SlotSet::new();
    for shard in &layout.shards {
        let Some(view) = obs.view(shard.primary) else {
            continue;
        };
        let owns = &view.myself().slots;
        covered.union_with(owns);
        if *owns != shard.slots {
            fail(
                "slots",
                shard.primary,
                format!("owns {owns}, intended {}", shard.slots),
            );
        }
    }
    for (idx, state) in obs.nodes.iter().enumerate() {
        let Some(view) = state.view() else { continue };
        let is_primary = layout.shards.iter().any(|s| s.primary == idx);
        if !is_primary && !view.myself().slots.is_empty() {
            fail(
                "slots",
                idx,
                format!(
                    "owns {} but is not an intended primary",
                    view.myself().slots
                ),
            );
        }
    }
    // Slots meant for a primary that did not answer are unknown, not unowned.
    let mut uncovered = covered.complement();
    for shard in &layout.shards {
        if obs.view(shard.primary).is_none() {
            uncovered = uncovered.difference(&shard.slots);
        }
    }
    if !uncovered.is_empty() {
        let any_primary = layout.shards.first().map_or(0, |s| s.primary);
        fail(
            "slots",
            any_primary,
            format!(
                "{} no owner: {uncovered}",
                crate::plural(uncovered.len() as u64, "slot has", "slots have")
            ),
        );
    }

    // epochs
    let mut by_epoch: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for shard in &layout.shards {
        if let Some(view) = obs.view(shard.primary) {
            by_epoch
                .entry(view.myself().config_epoch)
                .or_default()
                .push(shard.primary);
        }
    }
    for (epoch, holders) in by_epoch.iter().filter(|(_, h)| h.len() > 1) {
        for holder in holders {
            let others: Vec<&str> = holders
                .iter()
                .filter(|h| *h != holder)
                .map(|h| label(*h))
                .collect();
            fail(
                "epochs",
                *holder,
                format!("config epoch {epoch} is also held by {}", others.join(", ")),
            );
        }
    }

    // replication
    for shard in &layout.shards {
        let primary_id = expected_ids[shard.primary].as_ref();
        for replica in &shard.replicas {
            let Some(view) = obs.view(*replica) else {
                continue;
            };
            let me = view.myself();
            if !me.is_replica() || me.primary_id.as_ref() != primary_id {
                let now = match &me.primary_id {
                    Some(id) => format!("replicates {}", label_of(id)),
                    None => "is a primary".to_owned(),
                };
                fail(
                    "replication",
                    *replica,
                    format!("should replicate {} but {now}", label(shard.primary)),
                );
            } else if view.info.primary_link_status() != Some("up") {
                fail(
                    "replication",
                    *replica,
                    format!(
                        "master_link_status:{} (primary {})",
                        view.info.primary_link_status().unwrap_or("unknown"),
                        label(shard.primary)
                    ),
                );
            }
        }
    }

    // balance: what the primaries own now (a layout keeps slots where they are, so two runs
    // with different shapes, or a manual reshard, can leave 8192 / 2731 / 5461).
    let owned: Vec<(usize, usize)> = layout
        .shards
        .iter()
        .filter_map(|s| {
            obs.view(s.primary)
                .map(|v| (s.primary, v.myself().slots.len()))
        })
        .collect();
    if owned.len() == layout.shards.len()
        && let (Some(min), Some(max)) = (
            owned.iter().map(|(_, n)| *n).min(),
            owned.iter().map(|(_, n)| *n).max(),
        )
        && max - min > 1
    {
        let counts: Vec<String> = owned
            .iter()
            .map(|(idx, n)| format!("{} {n}", label(*idx)))
            .collect();
        for (idx, n) in &owned {
            if *n == max || *n == min {
                fail(
                    "balance",
                    *idx,
                    format!(
                        "owns {n} slots; the primaries own {} (differing by {}); moving slots evens them",
                        counts.join(", "),
                        max - min
                    ),
                );
            }
        }
    }

    let unreachable: Vec<usize> = (0..obs.nodes.len())
        .filter(|idx| obs.view(*idx).is_none())
        .collect();
    Verdict {
        criteria: CRITERIA
            .iter()
            .map(|(id, title)| CriterionResult {
                id,
                title,
                failures: failures.remove(id).unwrap_or_default(),
                unchecked: if *id == "reachable" {
                    Vec::new()
                } else {
                    unreachable.clone()
                },
            })
            .collect(),
    }
}
