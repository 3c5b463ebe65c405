//! Evacuating a node before its machine goes away (a scale-in): its slots move, keys and all,
//! to the other primaries that serve slots, then every replica that followed it is re-homed
//! onto a primary that stays. The node itself stays a member, owning nothing: the next
//! `apply --remove-unlisted` (BOSH's post-deploy) forgets it once it is gone.
//!
//! Only the node's own slots move, and only to primaries that already serve slots: never to an
//! empty primary (one evacuated before, or one about to go as well), and no slot moves between
//! the primaries that stay. They are filled from the least loaded up, so that their counts end
//! as even as they can ([`spread`]).
//!
//! Replicas are re-homed by `CLUSTER REPLICATE`. A primary that hands its last slot over makes
//! its replicas follow the node that took it (`cluster-allow-replica-migration`, on by default):
//! they would pile up on one primary. Each goes instead to the primary outside its own zone or
//! host with the fewest replicas, and the evacuation is over once each follows its new primary
//! with its link up.
//!
//! Refused, with nothing sent: the node does not answer (CS331), a slot is open that no earlier
//! evacuation of this node left (CS307), slots have no owner, or no other primary serves slots
//! (CS302). A move this node began and did not finish (an interrupted run) is finished first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{NodeId, SlotSet};
use crate::operation::{Operation, Reads, Round};
use crate::operations::handoff::refusal;
use crate::plan::{Acceptance, Gate, SlotMove, Step, open_moves, spread};
use crate::snapshot::{NodeKey, NodeRecord, Snapshot};
use crate::verify::{Criterion, CriterionResult, Failure, Verdict, judged_by_the_operation};

pub static EVACUATED: Criterion = Criterion {
    id: "evacuated",
    title: "the node owns no slot, in every node's view",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static COVERED: Criterion = Criterion {
    id: "covered",
    title: "every slot has an owner that stays",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static REHOMED: Criterion = Criterion {
    id: "rehomed",
    title: "the node's replicas follow primaries that stay, with their link up, as every node sees it",
    warning_only: false,
    check: judged_by_the_operation,
};

pub struct Evacuate {
    node: NodeKey,
    acceptance: Acceptance,
    /// Replicas seen following the node since the run began: each is re-homed.
    homeless: BTreeSet<NodeId>,
    /// The primary each of them goes to, chosen once the node owns no slot.
    homes: BTreeMap<NodeId, NodeId>,
    /// Whether the snapshot the next round gets was read from every node.
    complete: bool,
}

impl Evacuate {
    pub fn new(node: NodeKey) -> Evacuate {
        Evacuate {
            node,
            acceptance: Acceptance::default(),
            homeless: BTreeSet::new(),
            homes: BTreeMap::new(),
            complete: true,
        }
    }

    /// Each re-homed replica and the primary it went to.
    pub fn homes(&self) -> &BTreeMap<NodeId, NodeId> {
        &self.homes
    }
}

/// Primaries that serve slots, other than `except`: the only nodes that may receive slots or
/// replicas.
fn serving(snapshot: &Snapshot, except: &NodeKey) -> Vec<(NodeId, NodeKey, usize)> {
    snapshot
        .views()
        .filter(|(record, view)| {
            &record.key != except && !view.myself().is_replica() && !view.myself().slots.is_empty()
        })
        .map(|(record, view)| (view.id, record.key.clone(), view.myself().slots.len()))
        .collect()
}

fn round_of(verdict: Verdict, status: String) -> Round {
    Round {
        steps: Vec::new(),
        moves: Vec::new(),
        actions: Vec::new(),
        status: Some(status),
        blockers: Vec::new(),
        waiting: Vec::new(),
        verdict,
        layout: None,
        done: false,
        confirm: false,
        reads: Reads::All,
    }
}

impl Operation for Evacuate {
    fn round(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        self.acceptance.observe(now, snapshot, &BTreeSet::new());
        let complete = std::mem::replace(&mut self.complete, true);
        let Some(view) = snapshot.view(&self.node) else {
            return refusal(
                "CS331",
                &self.node,
                "it does not answer: its slots can only move from it, and its replicas are found from the views".to_owned(),
            );
        };
        let id = view.id;
        let owned = view.myself().slots.clone();
        for (_, other) in snapshot.views() {
            if other.myself().is_replica() && other.myself().primary_id == Some(id) {
                self.homeless.insert(other.id);
            }
        }
        let open = open_moves(snapshot);
        if let Some(other) = open.iter().find(|m| m.source != self.node) {
            return refusal(
                "CS307",
                &other.source,
                format!(
                    "{other} is open and not this evacuation's: finish it first (`clustersmith apply`)"
                ),
            );
        }
        let mut covered = SlotSet::new();
        for (_, other) in snapshot.views() {
            covered.union_with(&other.myself().slots);
        }
        if !covered.is_full() {
            return refusal(
                "CS302",
                &self.node,
                format!(
                    "slots {} have no owner: the cluster is down for them; evacuating now could strand more",
                    covered.complement()
                ),
            );
        }
        let receivers = serving(snapshot, &self.node);
        if receivers.is_empty() && !owned.is_empty() {
            return refusal(
                "CS302",
                &self.node,
                format!(
                    "no other primary serves slots: its {} slots would have no owner",
                    owned.len()
                ),
            );
        }
        let verdict = self.judge(snapshot, id);
        if !open.is_empty() || !owned.is_empty() {
            let mut round = round_of(
                verdict,
                format!(
                    "evacuating `{}`: {} to move to {}",
                    self.node,
                    crate::plural(owned.len() as u64, "slot", "slots"),
                    crate::plural(receivers.len() as u64, "primary", "primaries")
                ),
            );
            let moves = if open.is_empty() {
                self.moves(snapshot, now, id, &owned, &receivers, &mut round.waiting)
            } else {
                open
            };
            // Slots move on what every node says now, never on a view carried over.
            if !moves.is_empty() {
                if complete {
                    round.moves = moves;
                } else {
                    round.confirm = true;
                }
            }
            return round;
        }
        self.choose_homes(snapshot, id);
        let steps = self.rehome(snapshot);
        let done = steps.is_empty() && verdict.passed();
        let status = if self.homeless.is_empty() {
            format!("`{}` owns no slot and no replica follows it", self.node)
        } else {
            format!(
                "`{}` owns no slot; re-homing {} that followed it",
                self.node,
                crate::plural(self.homeless.len() as u64, "replica", "replicas")
            )
        };
        let mut round = round_of(verdict, status);
        round.confirm = done && !complete;
        round.done = done && complete;
        round.steps = steps;
        round
    }

    fn sent(&mut self, _steps: &[Step], _snapshot: &Snapshot, _now: Duration) {
        self.complete = false;
    }
}

impl Evacuate {
    /// The node's slots spread over the receivers, once each of them is a member every view
    /// keeps (otherwise `waiting` says which is not yet).
    fn moves(
        &self,
        snapshot: &Snapshot,
        now: Duration,
        id: NodeId,
        owned: &SlotSet,
        receivers: &[(NodeId, NodeKey, usize)],
        waiting: &mut Vec<String>,
    ) -> Vec<SlotMove> {
        for (receiver, key, _) in receivers {
            if let Gate::Wait(why) = self.acceptance.gate(receiver, now) {
                waiting.push(format!("slots move to `{key}` {why}"));
            }
        }
        if !waiting.is_empty() {
            return Vec::new();
        }
        let counts: Vec<(NodeId, usize)> = receivers.iter().map(|(id, _, n)| (*id, *n)).collect();
        spread(id, owned, &counts)
            .into_iter()
            .map(|t| SlotMove {
                source: self.node.clone(),
                target: snapshot.key_for(&t.target),
                slots: t.slots,
                resumed: false,
            })
            .collect()
    }

    /// Chooses a primary for each homeless replica that has none yet: outside the replica's
    /// own zone or host first, then the fewest replicas (not counting the node itself, which
    /// follows the last slot's new owner, nor the replicas still to place), then by key.
    fn choose_homes(&mut self, snapshot: &Snapshot, id: NodeId) {
        let unplaced: Vec<NodeId> = self
            .homeless
            .iter()
            .filter(|h| !self.homes.contains_key(h))
            .copied()
            .collect();
        if unplaced.is_empty() {
            return;
        }
        let mut counts: BTreeMap<NodeId, usize> = serving(snapshot, &self.node)
            .into_iter()
            .map(|(primary, _, _)| (primary, 0))
            .collect();
        for (_, view) in snapshot.views() {
            let me = view.myself();
            if view.id == id || self.homeless.contains(&view.id) || !me.is_replica() {
                continue;
            }
            if let Some(count) = me.primary_id.as_ref().and_then(|p| counts.get_mut(p)) {
                *count += 1;
            }
        }
        for replica in unplaced {
            let domain = snapshot.answering_as(&replica).map(NodeRecord::domain);
            let home = counts
                .iter()
                .min_by_key(|(primary, count)| {
                    let same = snapshot.answering_as(primary).map(NodeRecord::domain) == domain;
                    (same, **count, snapshot.key_for(primary))
                })
                .map(|(primary, _)| *primary);
            if let Some(home) = home {
                *counts.get_mut(&home).expect("chosen from it") += 1;
                self.homes.insert(replica, home);
            }
        }
    }

    /// `CLUSTER REPLICATE` for each homeless replica that does not follow its new primary yet.
    fn rehome(&self, snapshot: &Snapshot) -> Vec<Step> {
        self.homes
            .iter()
            .filter_map(|(replica, home)| {
                let record = snapshot.answering_as(replica)?;
                let me = record.view()?.myself();
                (me.primary_id.as_ref() != Some(home)).then(|| Step::Replicate {
                    node: record.key.clone(),
                    primary: snapshot.key_for(home),
                    primary_id: *home,
                })
            })
            .collect()
    }

    /// The three criteria, as the snapshot stands.
    fn judge(&self, snapshot: &Snapshot, id: NodeId) -> Verdict {
        let fail = |node: &NodeKey, detail: String| Failure {
            node: node.clone(),
            detail,
        };
        let mut evacuated = Vec::new();
        let mut covered = Vec::new();
        let mut rehomed = Vec::new();
        for (viewer, view) in snapshot.views() {
            let listed = if view.id == id {
                Some(view.myself())
            } else {
                view.knows(&id)
            };
            if let Some(entry) = listed.filter(|e| !e.slots.is_empty()) {
                evacuated.push(fail(
                    &viewer.key,
                    format!(
                        "names `{}` the owner of {} slots",
                        self.node,
                        entry.slots.len()
                    ),
                ));
            }
            let mut owned = SlotSet::new();
            for entry in view.nodes.entries() {
                if entry.id != id {
                    owned.union_with(&entry.slots);
                }
            }
            if !owned.is_full() {
                covered.push(fail(
                    &viewer.key,
                    format!("gives slots {} no owner that stays", owned.complement()),
                ));
            }
        }
        for replica in &self.homeless {
            let Some(record) = snapshot.answering_as(replica) else {
                rehomed.push(fail(
                    &snapshot.key_for(replica),
                    "does not answer".to_owned(),
                ));
                continue;
            };
            let view = record.view().expect("answering");
            let home = match self.homes.get(replica) {
                Some(home) if view.myself().primary_id.as_ref() == Some(home) => home,
                _ => {
                    rehomed.push(fail(&record.key, "is not re-homed yet".to_owned()));
                    continue;
                }
            };
            if view.info.primary_link_status() != Some("up") {
                rehomed.push(fail(
                    &record.key,
                    format!("follows `{}`, its link not up yet", snapshot.label_of(home)),
                ));
            } else if let Some((viewer, _)) = snapshot.views().find(|(_, v)| {
                v.knows(replica)
                    .is_some_and(|e| e.primary_id.as_ref() != Some(home))
            }) {
                rehomed.push(fail(
                    &viewer.key,
                    format!("does not see `{}` follow its new primary yet", record.key),
                ));
            }
        }
        let result = |criterion: &'static Criterion, failures| CriterionResult {
            criterion,
            failures,
            unchecked: Vec::new(),
        };
        Verdict {
            criteria: vec![
                result(&EVACUATED, evacuated),
                result(&COVERED, covered),
                result(&REHOMED, rehomed),
            ],
        }
    }
}
