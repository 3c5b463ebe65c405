//! Work under way: a slot move that a clustersmith apply or the servers themselves (Valkey 9's
//! atomic migration) are carrying out while diagnose looks. Its intermediate states (open
//! slots, a member being drained, unbalanced counts) are its progress, not faults, and advice
//! to close open slots by hand would fight it.

use std::collections::BTreeMap;

use super::membership::OPEN_SLOTS;
use crate::diagnose::EvidenceKind::Live;
use crate::diagnose::Severity::Info;
use crate::diagnose::{Evidence, Hit, Inputs, Rule, Source, live};
use crate::model::NodeId;
use crate::plural;

pub static SLOT_MOVES_IN_PROGRESS: Rule = Rule {
    id: "CS311",
    name: "slot-moves-in-progress",
    severity: Info,
    detects: "A slot move under way while diagnose looked: a running `clustersmith apply` (its connections are named `clustersmith-apply:<pid>`) or an active atomic slot migration (Valkey 9, `CLUSTER GETSLOTMIGRATIONS`).",
    why: "Slots open between two primaries, a member being drained of its slots and uneven slot counts are what a move looks like half-way; they are not faults. Closing its open slots by hand (`redis-cli --cluster fix`, `CLUSTER SETSLOT … STABLE`) would fight the move.",
    fix: "Let it finish, and diagnose again afterwards. If the apply was killed, run it again with the same spec: it finishes the moves it left open, always toward their target.",
    false_positives: "A `clustersmith apply` that only reads (its first observation) is counted too; it moves nothing.",
    evidence: &[Live],
    explains: &[&OPEN_SLOTS],
    reach: crate::diagnose::Reach::OwnNode,
    check: slot_moves_in_progress,
};

pub fn slot_moves_in_progress(inputs: &Inputs) -> Vec<Hit> {
    let at_work = &inputs.at_work;
    if !at_work.is_active() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let mut evidence = Vec::new();
    let mut pids: Vec<&str> = at_work
        .applies
        .iter()
        .filter_map(|(_, name)| name.strip_prefix("clustersmith-apply:"))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if !pids.is_empty() {
        parts.push(format!(
            "a clustersmith apply is at work (pid {})",
            pids.join(", ")
        ));
    }
    for (node, name) in &at_work.applies {
        evidence.push(Evidence {
            source: Source::Live {
                node: node.clone(),
                reply: "CLIENT LIST",
            },
            text: format!("name={name}"),
        });
    }
    let open: usize = inputs
        .live()
        .map(|(_, view)| view.myself().open_slots().len())
        .sum();
    if open > 0 {
        parts.push(format!(
            "{} open (migrating or importing)",
            plural(open as u64, "slot", "slots")
        ));
        for (node, view) in inputs.live() {
            let slots = view.myself().open_slots();
            if !slots.is_empty() {
                let listed: Vec<String> = slots
                    .iter()
                    .take(5)
                    .map(|o| format!("{} {:?} {}", o.slot, o.kind, o.peer.short()))
                    .collect();
                evidence.push(live(
                    node,
                    "CLUSTER NODES",
                    format!("{} open: {}", slots.len(), listed.join(", ")),
                ));
            }
        }
    }
    if !at_work.migrations.is_empty() {
        parts.push(format!(
            "{} (atomic slot migration)",
            plural(
                at_work.migrations.len() as u64,
                "migration job active",
                "migration jobs active"
            )
        ));
        let labels = labels_by_id(inputs);
        for job in &at_work.migrations {
            let target = NodeId::parse(&job.target)
                .ok()
                .and_then(|id| labels.get(&id).cloned())
                .unwrap_or_else(|| job.target.clone());
            evidence.push(Evidence {
                source: Source::Live {
                    node: job.node.clone(),
                    reply: "CLUSTER GETSLOTMIGRATIONS",
                },
                text: format!("slots {} to {target}: {}", job.slots, job.state),
            });
        }
    }
    // Where the slots are now: the move's progress, as the first live view has it.
    if let Some((node, view)) = inputs.live().next() {
        let labels = labels_by_id(inputs);
        let owners: Vec<String> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| !e.slots.is_empty())
            .map(|e| {
                let who = labels
                    .get(&e.id)
                    .cloned()
                    .unwrap_or_else(|| format!("{} (not given)", e.id.short()));
                format!("{who} {}", e.slots.len())
            })
            .collect();
        evidence.push(live(
            node,
            "CLUSTER NODES",
            format!("slots per primary now: {}", owners.join(", ")),
        ));
    }
    vec![Hit {
        node: None,
        summary: format!("a slot move is under way: {}", parts.join("; ")),
        evidence,
    }]
}

fn labels_by_id(inputs: &Inputs) -> BTreeMap<NodeId, String> {
    inputs
        .live()
        .map(|(node, view)| (view.id, node.key.to_string()))
        .collect()
}
