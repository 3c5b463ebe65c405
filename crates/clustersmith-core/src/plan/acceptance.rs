//! Whether the peers accept a node as a member, watched over the rounds of one run: the gate
//! every slot move towards that node must pass.
//!
//! A node that one view lists is not yet a member the cluster will keep. A node told to
//! `CLUSTER FORGET` an id refuses that id for 60 s (the forget ban), and Redis 7+ and Valkey
//! spread the ban to every node with each ping: a peer that learns the id again through a
//! direct `MEET` drops it as soon as it hears from a node that holds the ban. A node removed
//! and added back inside that minute is therefore listed and dropped in turn, and slots moved
//! to it in between end up owned by a node the others forget: writes to them stall, and with
//! Valkey 9's atomic migration acknowledged writes were lost (issue 23).
//!
//! So a move towards a node starts only when:
//! - every observed view that lists any member lists it as a healthy member (past the handshake, with an address,
//!   no `fail?`/`fail` flag);
//! - no view was seen dropping it within [`BAN`] of the first such drop (the ban began before
//!   that drop, so it has surely ended by then);
//! - every view has listed it for at least [`SETTLE`] without a break (long enough for a
//!   banning peer's ping to have reached every view that lists it), unless it was beyond doubt
//!   when this run first saw it: it had never joined any cluster (it knew nobody and its
//!   current epoch was 0, so no node can have been told to forget it), or it served slots (a
//!   member the others had been following).
//!
//! Time comes in as a [`Duration`] since the run began: the core reads no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{NodeFlag, NodeId};
use crate::snapshot::{NodeKey, NodeView, Snapshot};

/// How long a node refuses an id it was told to forget (`CLUSTER_BLACKLIST_TTL`, 60 s in every
/// Redis and Valkey version), plus one second for the servers' whole-second clock.
pub const BAN: Duration = Duration::from_secs(61);

/// How long every view must list a node that has been a member before, without a break,
/// before slots move to it. Peers exchange pings with several others every second (one chosen
/// ping a second, plus the replies to everyone else's); a node that holds the ban tells each
/// of them within about a second.
pub const SETTLE: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, Default)]
pub struct Acceptance {
    /// What each viewer listed as healthy members at its last observation.
    listed: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Nodes a view was seen to drop without this run forgetting them: when first seen.
    dropped: BTreeMap<NodeId, Duration>,
    /// Since when every view has listed the node, without a break.
    listed_by_all_since: BTreeMap<NodeId, Duration>,
    /// Nodes beyond doubt when first seen: they knew nobody with current epoch 0, or served
    /// slots.
    established: BTreeSet<NodeId>,
    seen: BTreeSet<NodeId>,
}

/// Whether a node may receive slots now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Not yet, and why, in the operator's words.
    Wait(String),
}

impl Acceptance {
    /// Takes in one round's views. `forgotten` holds the ids this run itself sent `CLUSTER
    /// FORGET` for: their drops are expected.
    pub fn observe(&mut self, now: Duration, snapshot: &Snapshot, forgotten: &BTreeSet<NodeId>) {
        let views: Vec<&NodeView> = snapshot.views().map(|(_, v)| v).collect();
        for view in &views {
            let never_joined =
                view.nodes.peers().next().is_none() && view.cluster_info.current_epoch == 0;
            let serves_slots = !view.myself().slots.is_empty();
            if self.seen.insert(view.id) && (never_joined || serves_slots) {
                self.established.insert(view.id);
            }
        }
        for view in &views {
            let now_listed: BTreeSet<NodeId> = view
                .nodes
                .peers()
                .filter(|e| is_healthy_member(e))
                .map(|e| e.id)
                .collect();
            if let Some(before) = self.listed.get(&view.id) {
                for gone in before.difference(&now_listed) {
                    if !forgotten.contains(gone) {
                        self.dropped.entry(*gone).or_insert(now);
                    }
                }
            }
            self.listed.insert(view.id, now_listed);
        }
        // A node that lists nobody (a removed member reset by this run, a newcomer not yet
        // introduced) is not part of the cluster whose acceptance counts.
        let members: Vec<&NodeId> = views
            .iter()
            .map(|v| &v.id)
            .filter(|id| self.listed.get(*id).is_some_and(|l| !l.is_empty()))
            .collect();
        for subject in &views {
            let by_all = members.iter().filter(|id| ***id != subject.id).all(|id| {
                self.listed
                    .get(*id)
                    .is_some_and(|l| l.contains(&subject.id))
            });
            if by_all {
                self.listed_by_all_since.entry(subject.id).or_insert(now);
            } else {
                self.listed_by_all_since.remove(&subject.id);
            }
        }
    }

    /// Whether a view was seen dropping either of these nodes.
    pub fn was_dropped(&self, snapshot: &Snapshot, a: &NodeKey, b: &NodeKey) -> bool {
        [a, b]
            .into_iter()
            .filter_map(|key| snapshot.view(key))
            .any(|v| self.dropped.contains_key(&v.id))
    }

    /// Nodes the peers were seen dropping within the ban, with the latest it can end (since
    /// the run began).
    pub fn banned(&self, now: Duration) -> impl Iterator<Item = (&NodeId, Duration)> {
        self.dropped
            .iter()
            .filter(move |(_, first)| now < **first + BAN)
            .map(|(id, first)| (id, *first + BAN))
    }

    /// Whether slots may move to `target` now.
    pub fn gate(&self, target: &NodeId, now: Duration) -> Gate {
        let Some(since) = self.listed_by_all_since.get(target) else {
            return Gate::Wait("once every node lists it as a member".to_owned());
        };
        if let Some((_, ends)) = self.banned(now).find(|(id, _)| *id == target) {
            return Gate::Wait(format!("once {}", ban_text(ends)));
        }
        if !self.established.contains(target) && now.saturating_sub(*since) < SETTLE {
            return Gate::Wait(format!(
                "once every node has listed it for {} s without a break (it was a member of a cluster before, and a peer that was told to forget it would drop it again)",
                SETTLE.as_secs()
            ));
        }
        Gate::Open
    }
}

/// Why a node the peers keep dropping waits, and until when at the latest (run time, as the
/// progress lines count it: a fixed text, not a countdown).
pub fn ban_text(ends: Duration) -> String {
    format!(
        "the forget ban on it has ended: peers drop it again after each introduction, as nodes do for 60 s with an id they were told to forget (CLUSTER FORGET: it was removed from this cluster moments ago, and kept its id); it ends by +{}s at the latest",
        ends.as_secs()
    )
}

/// An entry the viewer treats as a working member: past the handshake, with an address, not
/// failing.
fn is_healthy_member(entry: &crate::parse::NodeEntry) -> bool {
    !entry.is_handshake()
        && !entry.has_flag(NodeFlag::NoAddr)
        && !entry.has_flag(NodeFlag::Fail)
        && !entry.has_flag(NodeFlag::PossibleFail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{snapshot_of, states_of, view_of};

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const X: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn line(id: &str, port: u16, myself: bool, flags: &str) -> String {
        let me = if myself { "myself," } else { "" };
        format!(
            "{id} 127.0.0.1:{port}@{} {me}master{flags} - 0 0 1 connected",
            port + 10000
        )
    }

    /// A and B, each listing the others given; X listing both.
    fn round(a_lists_x: bool, b_lists_x: bool, x_epoch: u64) -> Snapshot {
        let a = [line(A, 7001, true, ""), line(B, 7002, false, "")]
            .into_iter()
            .chain(a_lists_x.then(|| line(X, 7003, false, "")))
            .collect::<Vec<_>>();
        let b = [line(B, 7002, true, ""), line(A, 7001, false, "")]
            .into_iter()
            .chain(b_lists_x.then(|| line(X, 7003, false, "")))
            .collect::<Vec<_>>();
        let x = [
            line(X, 7003, true, ""),
            line(A, 7001, false, ""),
            line(B, 7002, false, ""),
        ];
        snapshot_of(vec![
            view_of(&a.join("\n"), 1),
            view_of(&b.join("\n"), 1),
            view_of(&x.join("\n"), x_epoch),
        ])
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).unwrap()
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_member_listed_by_all_for_the_settle_time_is_open() {
        let mut acceptance = Acceptance::default();
        acceptance.observe(S(0), &round(true, true, 5), &BTreeSet::new());
        assert!(matches!(acceptance.gate(&id(X), S(1)), Gate::Wait(_)));
        acceptance.observe(S(3), &round(true, true, 5), &BTreeSet::new());
        assert_eq!(acceptance.gate(&id(X), S(3)), Gate::Open);
    }

    #[test]
    fn a_node_serving_slots_when_first_seen_needs_no_settle_time() {
        let mut acceptance = Acceptance::default();
        let mut states = states_of(round(true, true, 5));
        let x = [
            format!("{} 0-99", line(X, 7003, true, "")),
            line(A, 7001, false, ""),
            line(B, 7002, false, ""),
        ];
        states[2] = view_of(&x.join("\n"), 5);
        acceptance.observe(S(0), &snapshot_of(states), &BTreeSet::new());
        assert_eq!(acceptance.gate(&id(X), S(0)), Gate::Open);
    }

    #[test]
    fn a_node_that_lists_nobody_does_not_count() {
        let mut acceptance = Acceptance::default();
        let mut states = states_of(round(true, true, 5));
        // A removed member reset by the run: it knows only itself.
        states.push(view_of(
            &line("dddddddddddddddddddddddddddddddddddddddd", 7004, true, ""),
            0,
        ));
        let obs = snapshot_of(states);
        acceptance.observe(S(0), &obs, &BTreeSet::new());
        acceptance.observe(S(3), &obs, &BTreeSet::new());
        assert_eq!(acceptance.gate(&id(X), S(3)), Gate::Open);
    }

    #[test]
    fn a_node_that_never_joined_needs_no_settle_time() {
        let mut acceptance = Acceptance::default();
        let fresh = snapshot_of(vec![view_of(&line(X, 7003, true, ""), 0)]);
        acceptance.observe(S(0), &fresh, &BTreeSet::new());
        acceptance.observe(S(1), &round(true, true, 0), &BTreeSet::new());
        assert_eq!(acceptance.gate(&id(X), S(1)), Gate::Open);
    }

    #[test]
    fn a_node_dropped_by_a_peer_waits_out_the_ban_from_the_first_drop() {
        let mut acceptance = Acceptance::default();
        acceptance.observe(S(0), &round(true, false, 5), &BTreeSet::new());
        acceptance.observe(S(1), &round(false, true, 5), &BTreeSet::new());
        acceptance.observe(S(2), &round(true, true, 5), &BTreeSet::new());
        // Listed by all since 2 s, settled at 5 s, but dropped at 1 s: closed until 62 s.
        let Gate::Wait(why) = acceptance.gate(&id(X), S(10)) else {
            panic!("open inside the ban");
        };
        assert!(
            why.contains("forget ban") && why.contains("ends by +62s"),
            "{why}"
        );
        acceptance.observe(S(62), &round(true, true, 5), &BTreeSet::new());
        assert_eq!(acceptance.gate(&id(X), S(62)), Gate::Open);
    }

    #[test]
    fn a_break_in_the_listing_restarts_the_settle_time() {
        let mut acceptance = Acceptance::default();
        acceptance.observe(S(0), &round(true, true, 5), &BTreeSet::new());
        acceptance.observe(S(2), &round(true, false, 5), &BTreeSet::new());
        acceptance.observe(S(70), &round(true, true, 5), &BTreeSet::new());
        assert!(matches!(acceptance.gate(&id(X), S(71)), Gate::Wait(_)));
        assert_eq!(acceptance.gate(&id(X), S(73)), Gate::Open);
    }

    #[test]
    fn drops_of_ids_this_run_forgot_are_expected() {
        let mut acceptance = Acceptance::default();
        acceptance.observe(S(0), &round(true, true, 5), &BTreeSet::new());
        acceptance.observe(S(1), &round(false, true, 5), &[id(X)].into());
        acceptance.observe(S(2), &round(true, true, 5), &BTreeSet::new());
        let Gate::Wait(why) = acceptance.gate(&id(X), S(4)) else {
            panic!("open before the settle time");
        };
        assert!(!why.contains("forget ban"), "{why}");
        assert_eq!(acceptance.gate(&id(X), S(5)), Gate::Open);
    }
}
