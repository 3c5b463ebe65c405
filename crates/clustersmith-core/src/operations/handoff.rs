//! A planned handoff: a primary hands its role to its fittest replica (see [`crate::health`])
//! with a coordinated `CLUSTER FAILOVER` — the primary stops its writers until the replica has
//! every write, so nothing acknowledged is lost — and the operation waits until every node
//! names the new primary, and the old one follows it with its link up and its offset caught
//! up. A node that is a replica already is left as it is.
//!
//! When no replica is fit (link down, flagged by a peer, or further behind than the allowed
//! lag), or the one named is not fit, it waits for one to be, for [`FIT_GRACE`], then refuses
//! with rule CS360 and sends nothing. Fitness is transient right after a restart: a peer that
//! has not had a pong from the restarted node yet pings it only every half node timeout.

use std::time::Duration;

use crate::health::{FIT_GRACE, fittest, replicas_of};
use crate::operation::{Action, FailoverMode, Operation, Reads, Round};
use crate::plan::Blocker;
use crate::snapshot::{NodeKey, Snapshot};
use crate::verify::{Criterion, CriterionResult, Failure, Verdict, judged_by_the_operation};

pub static HANDED_OVER: Criterion = Criterion {
    id: "handed-over",
    title: "the primary role is with the chosen replica",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static ROLES_AGREED: Criterion = Criterion {
    id: "roles-agreed",
    title: "every node names the new primary, and the old one as its replica",
    warning_only: false,
    check: judged_by_the_operation,
};

pub static CAUGHT_UP: Criterion = Criterion {
    id: "caught-up",
    title: "the old primary follows the new one with its link up and its offset caught up",
    warning_only: false,
    check: judged_by_the_operation,
};

/// A coordinated failover the replica did not carry out is given up by the servers after
/// `CLUSTER_MF_TIMEOUT` (5 s); the handoff asks again after this long.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(6);

pub struct Handoff {
    node: NodeKey,
    /// The replica the operator named (`--to`).
    to: Option<NodeKey>,
    /// The most a replica may lag behind (bytes) to be chosen; also how close the old primary
    /// must follow the new one for the handoff to be over.
    max_lag: u64,
    mode: FailoverMode,
    /// The replica asked to take over, and when it was last asked.
    asked: Option<(NodeKey, Duration)>,
    /// Since when no replica has been fit (while some replica exists).
    unfit_since: Option<Duration>,
}

impl Handoff {
    pub fn new(node: NodeKey, to: Option<NodeKey>, max_lag: u64, mode: FailoverMode) -> Handoff {
        Handoff {
            node,
            to,
            max_lag,
            mode,
            asked: None,
            unfit_since: None,
        }
    }

    /// The replica that took (or is taking) the role over.
    pub fn successor(&self) -> Option<&NodeKey> {
        self.asked.as_ref().map(|(key, _)| key)
    }
}

fn round_of(verdict: Verdict, done: bool) -> Round {
    Round {
        steps: Vec::new(),
        moves: Vec::new(),
        actions: Vec::new(),
        status: None,
        blockers: Vec::new(),
        waiting: Vec::new(),
        verdict,
        layout: None,
        done,
        confirm: false,
        reads: Reads::All,
    }
}

/// A round that refuses, with the rule that describes why.
pub fn refusal(rule: &'static str, node: &NodeKey, reason: String) -> Round {
    let mut round = round_of(
        Verdict {
            criteria: Vec::new(),
        },
        false,
    );
    round.blockers.push(Blocker::Refused {
        rule,
        node: node.clone(),
        reason,
    });
    round
}

impl Operation for Handoff {
    fn round(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        let Some(view) = snapshot.view(&self.node) else {
            if self.asked.is_some() && self.mode != FailoverMode::Coordinated {
                // Forced over a primary that is down: it is the new primary's alone.
                return self.progress(snapshot, now);
            }
            return refusal("CS331", &self.node, "it does not answer".to_owned());
        };
        match &self.asked {
            Some(_) => self.progress(snapshot, now),
            None if view.myself().is_replica() => {
                let mut round = round_of(self.judge(snapshot, None), true);
                round.status = Some(format!(
                    "`{}` is a replica: nothing to hand over",
                    self.node
                ));
                round
            }
            None => self.ask(snapshot, now),
        }
    }
}

impl Handoff {
    /// Chooses the replica and asks it to take over.
    fn ask(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        let replicas = replicas_of(snapshot, &self.node);
        let chosen = match &self.to {
            Some(to) => match replicas.iter().find(|r| &r.key == to) {
                None => {
                    return refusal(
                        "CS360",
                        &self.node,
                        format!("`{to}` is not one of its replicas"),
                    );
                }
                Some(r) => match r.unfit(self.max_lag) {
                    Some(why) => Err(format!("`{to}` cannot take over: {why}")),
                    None => Ok(r),
                },
            },
            None => fittest(&replicas, self.max_lag),
        };
        let chosen = match chosen {
            Ok(chosen) => chosen,
            // Replicas that are unfit for now (catching up after a restart, a link coming
            // back, a first acknowledgement after a sync) are waited for, bounded; the one
            // named too (a failback asks for the primary that just restarted).
            Err(reason) if !replicas.is_empty() => {
                let since = *self.unfit_since.get_or_insert(now);
                if now.saturating_sub(since) >= FIT_GRACE {
                    return refusal(
                        "CS360",
                        &self.node,
                        format!("{reason} for {} s", FIT_GRACE.as_secs()),
                    );
                }
                let mut round = round_of(self.judge(snapshot, None), false);
                round.waiting.push(format!("a fit replica: {reason}"));
                return round;
            }
            Err(reason) => return refusal("CS360", &self.node, reason),
        };
        let replica = chosen.key.clone();
        let mut round = round_of(self.judge(snapshot, Some(&replica)), false);
        round.status = Some(format!(
            "handing `{}` over to `{replica}` ({} bytes behind)",
            self.node,
            chosen.lag.unwrap_or(0)
        ));
        round.actions.push(Action::Failover {
            replica: replica.clone(),
            mode: self.mode,
        });
        self.asked = Some((replica, now));
        round
    }

    /// Waits for the new roles to settle; asks again when the servers gave the failover up.
    fn progress(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        let (replica, at) = self.asked.clone().expect("asked before");
        let verdict = self.judge(snapshot, Some(&replica));
        let done = verdict.passed();
        let mut round = round_of(verdict, done);
        let still_primary = snapshot
            .view(&self.node)
            .is_some_and(|v| !v.myself().is_replica());
        if !done && still_primary && now.saturating_sub(at) >= ASK_AGAIN_AFTER {
            round.waiting.push(format!(
                "`{replica}` did not take over within {} s (the servers give a manual failover up after 5 s); asking again",
                ASK_AGAIN_AFTER.as_secs()
            ));
            round.actions.push(Action::Failover {
                replica: replica.clone(),
                mode: self.mode,
            });
            self.asked = Some((replica, now));
        }
        round
    }

    /// The three criteria, as the snapshot stands (`replica`: the one asked to take over).
    fn judge(&self, snapshot: &Snapshot, replica: Option<&NodeKey>) -> Verdict {
        let mut handed = Vec::new();
        let mut agreed = Vec::new();
        let mut caught_up = Vec::new();
        let fail = |node: &NodeKey, detail: String| Failure {
            node: node.clone(),
            detail,
        };
        let old = snapshot.view(&self.node);
        let new = replica.and_then(|r| snapshot.view(r));
        match (replica, old, new) {
            // A replica from the start: nothing to hand over.
            (None, Some(old), _) if old.myself().is_replica() => {}
            (None, _, _) => handed.push(fail(&self.node, "not handed over yet".to_owned())),
            (Some(replica), _, None) => {
                handed.push(fail(replica, "does not answer".to_owned()));
            }
            (Some(replica), old, Some(new)) => {
                if new.myself().is_replica() {
                    handed.push(fail(replica, "is still a replica".to_owned()));
                }
                for (viewer, view) in snapshot.views() {
                    let sees_new = view.knows(&new.id).is_some_and(|e| !e.is_replica());
                    let sees_old = old.is_none_or(|old| {
                        view.knows(&old.id).is_none_or(|e| {
                            e.is_replica() && e.primary_id.as_ref() == Some(&new.id)
                        })
                    });
                    if !(sees_new && sees_old) {
                        agreed.push(fail(
                            &viewer.key,
                            format!(
                                "does not see `{replica}` as the primary of `{}` yet",
                                self.node
                            ),
                        ));
                    }
                }
                match old {
                    // Forced over a primary that is down: nothing left to follow.
                    None => {}
                    Some(old_view) => {
                        let follows = old_view.myself().is_replica()
                            && old_view.myself().primary_id.as_ref() == Some(&new.id);
                        let link_up = old_view.info.primary_link_status() == Some("up");
                        let lag = replicas_of(snapshot, replica)
                            .into_iter()
                            .find(|r| r.key == self.node)
                            .and_then(|r| r.lag);
                        if !follows || !link_up {
                            caught_up.push(fail(
                                &self.node,
                                format!("does not follow `{replica}` with its link up yet"),
                            ));
                        } else if lag.is_none_or(|lag| lag > self.max_lag) {
                            caught_up.push(fail(
                                &self.node,
                                format!("is {} bytes behind `{replica}`", lag.unwrap_or(0)),
                            ));
                        }
                    }
                }
            }
        }
        let result = |criterion: &'static Criterion, failures| CriterionResult {
            criterion,
            failures,
            unchecked: Vec::new(),
        };
        Verdict {
            criteria: vec![
                result(&HANDED_OVER, handed),
                result(&ROLES_AGREED, agreed),
                result(&CAUGHT_UP, caught_up),
            ],
        }
    }
}
