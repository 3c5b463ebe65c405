//! A rolling restart or upgrade: every node restarted once, one at a time, so that no writer
//! notices. Replicas first; then, shard by shard, the primary hands its role to a fit replica
//! ([`Handoff`]) and is restarted as a replica. Each node must be back — restarted, listed by
//! every view without a failure flag, its link up and caught up, `cluster_state:ok`
//! everywhere — before the next one goes. With `failback`, the primaries of the roll's start
//! get their role back at the end, through the same handoff.
//!
//! # Deciding from the servers
//! A node counts as rolled when its `run_id` differs from the one it had when the roll began
//! (kept by the caller across runs): every start of a server draws a new one. A roll killed
//! half-way and run again restarts no node twice, and picks up whatever the killed run left
//! (a handoff done, a node down in the middle of its restart) from what the servers show. A
//! member the roll did not know at its start joined since, and counts as rolled. (Uptimes
//! would not do: `uptime_in_seconds` counts whole seconds of the server's clock, so a node
//! restarted within a second of the roll's start reads as started before it.)
//!
//! # Gates
//! Before each node: every slot covered and none open, and, for a primary, a fit replica to
//! take over (CS360), unless `allow_downtime` says its writes may fail while it restarts. A
//! node that comes back older than its primary, or a primary to be handed to an older
//! replica, stops the roll (CS352): a replica must never be older than the primary it syncs
//! from, and a downgrade would break replication.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::health::{FIT_GRACE, fittest, replicas_of};
use crate::model::{ServerVersion, SlotSet};
use crate::operation::{Action, FailoverMode, Operation, Reads, Round};
use crate::operations::handoff::{Handoff, refusal};
use crate::snapshot::{NodeKey, NodeRecord, NodeState, NodeView, Snapshot};
use crate::verify::{Criterion, CriterionResult, Failure, Verdict, judged_by_the_operation};

pub static ROLLED: Criterion = Criterion {
    id: "rolled",
    title: "every node was restarted during this roll",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static SERVING: Criterion = Criterion {
    id: "serving",
    title: "every node is back: listed without failure flags, replicas' links up, every slot covered, cluster_state:ok",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static FAILED_BACK: Criterion = Criterion {
    id: "failed-back",
    title: "the primaries of the roll's start hold their role again (--failback)",
    warning_only: false,
    check: judged_by_the_operation,
};

/// What the roll is given.
#[derive(Clone, Debug)]
pub struct RollPlan {
    /// Each node's `run_id` when the roll began (its first run): a node with another one now
    /// has been restarted since.
    pub run_ids: BTreeMap<NodeKey, String>,
    /// The primaries when the roll began, for `failback`.
    pub primaries: Vec<NodeKey>,
    pub failback: bool,
    /// Restart a primary with no fit replica anyway (its slots' writes fail meanwhile).
    pub allow_downtime: bool,
    /// The most a replica may lag behind to take over, in bytes.
    pub max_lag: u64,
    /// The version the nodes are upgraded to, when known before (a sandbox upgrade).
    pub target: Option<ServerVersion>,
}

/// The node being worked on, and where it stands.
enum Turn {
    /// Its primary role goes to a replica first.
    HandingOver(NodeKey, Box<Handoff>),
    /// Asked to restart; waiting for it to be back.
    Restarting(NodeKey),
    /// Failing back to a primary of the roll's start.
    FailingBack(NodeKey, Box<Handoff>),
}

pub struct Roll {
    plan: RollPlan,
    turn: Option<Turn>,
    /// How long each node took, for the ETA.
    took: Vec<Duration>,
    turn_began: Duration,
    /// The primary whose replicas were last found unfit, and since when.
    unfit_since: Option<(NodeKey, Duration)>,
}

impl Roll {
    pub fn new(plan: RollPlan) -> Roll {
        Roll {
            plan,
            turn: None,
            took: Vec::new(),
            turn_began: Duration::ZERO,
            unfit_since: None,
        }
    }

    /// Whether the node was restarted since the roll began (or joined since).
    fn rolled(&self, node: &NodeRecord) -> bool {
        match self.plan.run_ids.get(&node.key) {
            None => true,
            Some(then) => node
                .view()
                .and_then(|v| v.info.get("run_id"))
                .is_some_and(|now| now != then),
        }
    }
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

impl Operation for Roll {
    fn round(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        let verdict = self.judge(snapshot);
        match self.turn.take() {
            Some(Turn::HandingOver(node, mut handoff)) => {
                let mut round = handoff.round(snapshot, now);
                if !round.blockers.is_empty() || !round.done {
                    round.status = Some(self.status(snapshot, &node, "handing over"));
                    round.verdict = verdict;
                    self.turn = Some(Turn::HandingOver(node, handoff));
                    return round;
                }
                self.restart(snapshot, node, verdict)
            }
            Some(Turn::Restarting(node)) => {
                let restarted = snapshot.get(&node).is_some_and(|n| self.rolled(n));
                if restarted {
                    // Only once it runs what it was restarted with.
                    if let Some(refused) = self.older_than_primary(snapshot, &node) {
                        return refused;
                    }
                    if snapshot
                        .get(&node)
                        .is_some_and(|n| self.back(snapshot, n).is_none())
                    {
                        self.took.push(now.saturating_sub(self.turn_began));
                        return self.next(snapshot, now, verdict);
                    }
                }
                let mut round = round_of(verdict, self.status(snapshot, &node, "coming back"));
                if let Some(why) = snapshot.get(&node).and_then(|n| self.back(snapshot, n)) {
                    round.waiting.push(format!("`{node}` {why}"));
                }
                self.turn = Some(Turn::Restarting(node));
                round
            }
            Some(Turn::FailingBack(node, mut handoff)) => {
                let mut round = handoff.round(snapshot, now);
                if round.done {
                    return self.next(snapshot, now, verdict);
                }
                round.status = Some(self.status(snapshot, &node, "failing back"));
                round.verdict = verdict;
                self.turn = Some(Turn::FailingBack(node, handoff));
                round
            }
            None => self.next(snapshot, now, verdict),
        }
    }
}

impl Roll {
    /// Picks the next node (a pending replica first, then a pending primary), or the next
    /// failback, or says the roll is done.
    fn next(&mut self, snapshot: &Snapshot, now: Duration, verdict: Verdict) -> Round {
        if let Some(refused) = self.gate(snapshot) {
            return refused;
        }
        self.turn_began = now;
        let pending: Vec<&NodeRecord> = snapshot.spec_nodes().filter(|n| !self.rolled(n)).collect();
        // A node that is down (a run killed while it restarted it, a crash) serves nothing
        // now that the gate found every slot served by another: restarting it first loses
        // nothing. One still loading its data is left to finish.
        if let Some(down) = pending.iter().find(|n| n.view().is_none()) {
            if let NodeState::Unreachable(why) = &down.state
                && why.contains("LOADING")
            {
                let mut round = round_of(verdict, self.status(snapshot, &down.key, "loading"));
                round
                    .waiting
                    .push(format!("`{}` is loading its data", down.key));
                return round;
            }
            return self.restart(snapshot, down.key.clone(), verdict);
        }
        // One node at a time: the next one goes only once every node is back, whoever
        // restarted it (a node started by hand between two runs is still syncing).
        if let Some((node, why)) = snapshot
            .spec_nodes()
            .find_map(|n| Some((n.key.clone(), self.back(snapshot, n)?)))
        {
            let mut round = round_of(verdict, self.status(snapshot, &node, "waiting for it"));
            round.waiting.push(format!("`{node}` {why}"));
            return round;
        }
        let is_replica = |n: &&&NodeRecord| n.view().is_some_and(|v| v.myself().is_replica());
        if let Some(replica) = pending.iter().find(is_replica) {
            return self.restart(snapshot, replica.key.clone(), verdict);
        }
        if let Some(primary) = pending.first() {
            return self.hand_over(snapshot, now, primary.key.clone(), verdict);
        }
        if self.plan.failback
            && let Some((node, current)) = self.to_fail_back(snapshot)
        {
            let mut handoff = Box::new(Handoff::new(
                current,
                Some(node.clone()),
                self.plan.max_lag,
                FailoverMode::Coordinated,
            ));
            let mut round = handoff.round(snapshot, now);
            round.status = Some(self.status(snapshot, &node, "failing back"));
            round.verdict = verdict;
            self.turn = Some(Turn::FailingBack(node, handoff));
            return round;
        }
        let done = verdict.passed();
        let mut round = round_of(verdict, "every node rolled".to_owned());
        round.done = done;
        round
    }

    /// A primary's turn: its role goes to its fittest replica, or, with `allow_downtime` and
    /// no fit replica, it is restarted as it is.
    fn hand_over(
        &mut self,
        snapshot: &Snapshot,
        now: Duration,
        node: NodeKey,
        verdict: Verdict,
    ) -> Round {
        let replicas = replicas_of(snapshot, &node);
        let fit = fittest(&replicas, self.plan.max_lag);
        if fit.is_ok() {
            self.unfit_since = None;
        }
        match fit {
            Err(reason) if !replicas.is_empty() && !self.plan.allow_downtime => {
                let since = match &self.unfit_since {
                    Some((key, since)) if *key == node => *since,
                    _ => {
                        self.unfit_since = Some((node.clone(), now));
                        now
                    }
                };
                if now.saturating_sub(since) < FIT_GRACE {
                    let mut round = round_of(
                        verdict,
                        self.status(snapshot, &node, "waiting for a fit replica"),
                    );
                    round
                        .waiting
                        .push(format!("a replica of `{node}` to be fit: {reason}"));
                    return round;
                }
                refusal(
                    "CS360",
                    &node,
                    format!(
                        "{reason} for {} s; the roll stops before this shard (--allow-downtime takes it anyway)",
                        FIT_GRACE.as_secs()
                    ),
                )
            }
            Ok(chosen) => {
                if let Some(refused) = self.newer_than(snapshot, &node, &chosen.key) {
                    return refused;
                }
                let mut handoff = Box::new(Handoff::new(
                    node.clone(),
                    Some(chosen.key.clone()),
                    self.plan.max_lag,
                    FailoverMode::Coordinated,
                ));
                let mut round = handoff.round(snapshot, now);
                round.status = Some(self.status(snapshot, &node, "handing over"));
                round.verdict = verdict;
                self.turn = Some(Turn::HandingOver(node, handoff));
                round
            }
            Err(reason) if self.plan.allow_downtime => {
                let slots = snapshot
                    .view(&node)
                    .map(|v| v.myself().slots.clone())
                    .unwrap_or_default();
                let mut round = self.restart(snapshot, node.clone(), verdict);
                round.waiting.push(format!(
                    "`{node}` restarts as a primary ({reason}): writes to slots {slots} fail until it is back (--allow-downtime)"
                ));
                round
            }
            Err(reason) => refusal(
                "CS360",
                &node,
                format!(
                    "{reason}; the roll stops before this shard (--allow-downtime takes it anyway)"
                ),
            ),
        }
    }

    fn restart(&mut self, snapshot: &Snapshot, node: NodeKey, verdict: Verdict) -> Round {
        let mut round = round_of(verdict, self.status(snapshot, &node, "restarting"));
        round.actions.push(Action::Restart { node: node.clone() });
        self.turn = Some(Turn::Restarting(node));
        round
    }

    /// Why the node is not back yet, or `None` when it is.
    fn back(&self, snapshot: &Snapshot, node: &NodeRecord) -> Option<String> {
        let Some(view) = node.view() else {
            return Some("does not answer yet".to_owned());
        };
        for (viewer, other) in snapshot.views() {
            match other.knows(&view.id) {
                None if viewer.key != node.key => {
                    return Some(format!("is not listed by `{}` yet", viewer.key));
                }
                Some(entry) if !entry.unhealthy_flags().is_empty() => {
                    return Some(format!(
                        "is seen as {} by `{}`",
                        entry.unhealthy_flags().join(","),
                        viewer.key
                    ));
                }
                _ => {}
            }
        }
        if view.myself().is_replica() {
            if view.info.primary_link_status() != Some("up") {
                return Some("has its link to its primary down".to_owned());
            }
            if view.info.get("master_sync_in_progress") == Some("1") {
                return Some("is still syncing with its primary".to_owned());
            }
        }
        if let Some((other, _)) = snapshot.views().find(|(_, v)| !v.cluster_info.is_ok()) {
            return Some(format!("(cluster_state is not ok on `{}`)", other.key));
        }
        None
    }

    /// The gate before each node: no downgrade asked for, every slot covered, none open.
    fn gate(&self, snapshot: &Snapshot) -> Option<Round> {
        if let Some(target) = &self.plan.target
            && let Some((node, running)) = snapshot
                .views()
                .filter_map(|(n, v)| Some((n, v.version()?)))
                .find(|(_, running)| target.cannot_follow(running))
        {
            return Some(refusal(
                "CS352",
                &node.key,
                format!(
                    "it runs {running}, newer than {target}: a node restarted with {target} could not follow it; a downgrade breaks replication, and the roll does not start"
                ),
            ));
        }
        let mut covered = SlotSet::new();
        for (node, view) in snapshot.views() {
            covered.union_with(&view.myself().slots);
            if let Some(open) = view.myself().open_slots().first() {
                return Some(refusal(
                    "CS307",
                    &node.key,
                    format!(
                        "slot {} is open: finish the move first (`clustersmith apply`)",
                        open.slot
                    ),
                ));
            }
        }
        if !covered.is_full() {
            let any = snapshot.spec_nodes().next()?;
            return Some(refusal(
                "CS302",
                &any.key,
                format!(
                    "slots {} have no owner: the cluster is down for them",
                    covered.complement()
                ),
            ));
        }
        None
    }

    /// A restarted replica older than its primary stops the roll (CS352).
    fn older_than_primary(&self, snapshot: &Snapshot, node: &NodeKey) -> Option<Round> {
        let view = snapshot.view(node)?;
        let primary_id = view.myself().primary_id?;
        let primary = snapshot.answering_as(&primary_id)?;
        self.newer_than(snapshot, &primary.key, node)
    }

    /// Refuses to make `replica` follow (or take over from) a newer `primary`: the older one
    /// cannot read the newer one's replication stream or RDB.
    fn newer_than(
        &self,
        snapshot: &Snapshot,
        primary: &NodeKey,
        replica: &NodeKey,
    ) -> Option<Round> {
        let version = |key: &NodeKey| snapshot.view(key).and_then(NodeView::version);
        let (p, r) = (version(primary)?, version(replica)?);
        r.cannot_follow(&p).then(|| {
            refusal(
                "CS352",
                replica,
                format!(
                    "it runs {r}, older than `{primary}` ({p}): a replica must never be older than its primary; this looks like a downgrade, and the roll stops here"
                ),
            )
        })
    }

    /// A primary of the roll's start that is a replica now, with the node holding its role.
    fn to_fail_back(&self, snapshot: &Snapshot) -> Option<(NodeKey, NodeKey)> {
        self.plan.primaries.iter().find_map(|key| {
            let view = snapshot.view(key)?;
            let primary = view.myself().primary_id?;
            Some((key.clone(), snapshot.answering_as(&primary)?.key.clone()))
        })
    }

    /// `roll 3/6: \`10.0.0.3:6379\` (a primary): handing over, about 12 s left`.
    fn status(&self, snapshot: &Snapshot, node: &NodeKey, phase: &str) -> String {
        let total = snapshot.spec_nodes().count();
        let rolled = snapshot.spec_nodes().filter(|n| self.rolled(n)).count();
        let role = match snapshot.view(node) {
            Some(v) if v.myself().is_replica() => "a replica",
            Some(_) => "a primary",
            None => "not answering",
        };
        let eta = if self.took.is_empty() {
            String::new()
        } else {
            let each = self.took.iter().sum::<Duration>() / self.took.len() as u32;
            let left = each * (total - rolled) as u32;
            format!(", about {} s left", left.as_secs())
        };
        format!(
            "roll {}/{total}: `{node}` ({role}): {phase}{eta}",
            (rolled + 1).min(total)
        )
    }

    fn judge(&self, snapshot: &Snapshot) -> Verdict {
        let fail = |node: &NodeKey, detail: String| Failure {
            node: node.clone(),
            detail,
        };
        let mut rolled = Vec::new();
        let mut serving = Vec::new();
        for node in snapshot.spec_nodes() {
            if !self.rolled(node) {
                rolled.push(fail(&node.key, "not restarted yet".to_owned()));
            }
            if let Some(why) = self.back(snapshot, node) {
                serving.push(fail(&node.key, why));
            }
            if let Some(target) = &self.plan.target
                && node
                    .view()
                    .and_then(NodeView::version)
                    .is_some_and(|v| v != *target)
                && self.rolled(node)
            {
                rolled.push(fail(&node.key, format!("does not run {target}")));
            }
        }
        let mut criteria = vec![
            CriterionResult {
                criterion: &ROLLED,
                failures: rolled,
                unchecked: Vec::new(),
            },
            CriterionResult {
                criterion: &SERVING,
                failures: serving,
                unchecked: Vec::new(),
            },
        ];
        if self.plan.failback {
            let back: Vec<Failure> = self
                .plan
                .primaries
                .iter()
                .filter(|key| snapshot.view(key).is_none_or(|v| v.myself().is_replica()))
                .map(|key| fail(key, "does not hold its primary role again yet".to_owned()))
                .collect();
            criteria.push(CriterionResult {
                criterion: &FAILED_BACK,
                failures: back,
                unchecked: Vec::new(),
            });
        }
        Verdict { criteria }
    }
}

/// The primaries now, to be kept with the roll's start (for `failback`).
pub fn primaries(snapshot: &Snapshot) -> Vec<NodeKey> {
    let mut found: BTreeMap<&NodeKey, ()> = BTreeMap::new();
    for (node, view) in snapshot.views() {
        if !node.leaving && !view.myself().is_replica() && !view.myself().slots.is_empty() {
            found.insert(&node.key, ());
        }
    }
    found.into_keys().cloned().collect()
}

/// Each answering node's `run_id` now, to be kept as the roll's start.
pub fn run_ids(snapshot: &Snapshot) -> BTreeMap<NodeKey, String> {
    snapshot
        .views()
        .filter_map(|(node, view)| Some((node.key.clone(), view.info.get("run_id")?.to_owned())))
        .collect()
}
