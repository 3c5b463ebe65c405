//! How fit each replica is to take its primary's role over, from what the snapshot holds: the
//! replica's own link to its primary, what every view says of it, and how far behind its
//! primary's replication offset it is. A planned handoff picks from these, and refuses when
//! none is fit (rule CS360).

use std::time::Duration;

use crate::model::{LinkState, NodeFlag};
use crate::snapshot::{NodeKey, NodeRecord, NodeView, Snapshot};

/// How long a primary's replicas may stay unfit (catching up after their own restart, a link
/// coming back, a first acknowledgement after a sync) before a handoff or a roll refuses at
/// that shard (CS360).
pub const FIT_GRACE: Duration = Duration::from_secs(10);

/// One replica of a primary, as fit for a failover as the snapshot shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaFitness {
    pub key: NodeKey,
    /// Its own `master_link_status:up`.
    pub link_up: bool,
    /// Views that flag it `fail?` or `fail`, with the flag.
    pub flagged_by: Vec<(NodeKey, &'static str)>,
    /// Bytes of the primary's replication stream it has not processed yet
    /// (`master_repl_offset` of the primary minus its `slave_repl_offset`).
    pub lag: Option<u64>,
    /// Bytes of the stream the replica has not acknowledged to its primary yet (the primary's
    /// `master_repl_offset` minus the `offset=` it lists for the replica), when the primary
    /// lists it. After a full sync the primary streams a replica nothing until its first
    /// acknowledgement (up to a second): a failover asked meanwhile pauses writers until it
    /// comes, so such a replica is not fit yet, however small `lag` looks.
    pub unacked: Option<u64>,
    /// Cluster-bus links to or from a primary that serves slots that are not proven to work
    /// since the replica last started, each with why: its failover election is carried over
    /// them (the request out, the votes back). A vote sent on a link to the process before a
    /// restart is lost; the election then fails, and the old primary keeps its writers paused
    /// until the servers give the manual failover up (5 s). Checked where the nodes report
    /// `server_time_usec` (Redis 6.2+, Valkey).
    pub bus_unproven: Vec<String>,
    /// It is in the primary's placement domain (its zone, else its host).
    pub same_domain: bool,
}

impl ReplicaFitness {
    /// Why it must not take over, or `None` when it is fit.
    pub fn unfit(&self, max_lag: u64) -> Option<String> {
        if !self.link_up {
            return Some("its link to the primary is down".to_owned());
        }
        if let Some((viewer, flag)) = self.flagged_by.first() {
            return Some(format!("{viewer} sees it as {flag}"));
        }
        if let Some(why) = self.bus_unproven.first() {
            return Some(format!(
                "its cluster-bus links are not proven since it started ({why}): a vote lost on a stale link would leave writers paused for 5 s"
            ));
        }
        match (self.lag, self.unacked) {
            (None, _) => Some("its replication offset is unknown".to_owned()),
            (Some(lag), _) if lag > max_lag => Some(format!(
                "it is {lag} bytes behind its primary (more than --max-lag {max_lag})"
            )),
            (_, Some(unacked)) if unacked > max_lag => Some(format!(
                "its primary has {unacked} bytes it has not acknowledged (a replica that just synced is streamed nothing until its first acknowledgement)"
            )),
            _ => None,
        }
    }
}

/// The replicas of `primary` (nodes that say they replicate it), each with its fitness.
pub fn replicas_of(snapshot: &Snapshot, primary: &NodeKey) -> Vec<ReplicaFitness> {
    let Some(primary_record) = snapshot.get(primary) else {
        return Vec::new();
    };
    let Some(primary_view) = primary_record.view() else {
        return Vec::new();
    };
    let primary_offset = offset(primary_record, "master_repl_offset");
    snapshot
        .views()
        .filter(|(_, v)| {
            v.myself().is_replica() && v.myself().primary_id.as_ref() == Some(&primary_view.id)
        })
        .map(|(replica, view)| {
            let flagged_by = snapshot
                .views()
                .filter(|(viewer, _)| viewer.key != replica.key)
                .filter_map(|(viewer, other)| {
                    let entry = other.knows(&view.id)?;
                    let flag = if entry.has_flag(NodeFlag::Fail) {
                        "fail"
                    } else if entry.has_flag(NodeFlag::PossibleFail) {
                        "fail?"
                    } else {
                        return None;
                    };
                    Some((viewer.key.clone(), flag))
                })
                .collect();
            let lag = primary_offset
                .zip(offset(replica, "slave_repl_offset"))
                .map(|(p, r)| p.saturating_sub(r));
            let unacked = primary_view
                .info
                .listed_replicas()
                .into_iter()
                .find(|listed| listed.port == replica.port && listed.ip.parse() == Ok(replica.ip))
                .and_then(|listed| listed.acked_offset)
                .zip(primary_offset)
                .map(|(acked, p)| p.saturating_sub(acked));
            ReplicaFitness {
                key: replica.key.clone(),
                link_up: view.info.primary_link_status() == Some("up"),
                flagged_by,
                lag,
                unacked,
                bus_unproven: bus_unproven(snapshot, replica, view),
                same_domain: replica.domain() == primary_record.domain(),
            }
        })
        .collect()
}

/// Each primary serving slots whose cluster-bus exchange with `replica` is not proven since
/// the replica started: the primary's own link to it down, or no pong on it since then (both
/// judged on the primary's clock: how long ago the pong came, against the replica's uptime),
/// or the replica's link to the primary down or never answered.
fn bus_unproven(snapshot: &Snapshot, replica: &NodeRecord, view: &NodeView) -> Vec<String> {
    let field = |view: &NodeView, name: &str| view.info.number(name);
    let Some(uptime_ms) = field(view, "uptime_in_seconds").map(|s| s * 1000) else {
        return Vec::new();
    };
    let replica_clock = field(view, "server_time_usec").is_some();
    let mut unproven = Vec::new();
    for (primary, other) in snapshot.views() {
        let me = other.myself();
        if primary.key == replica.key || me.is_replica() || me.slots.is_empty() {
            continue;
        }
        match other.knows(&view.id) {
            None => unproven.push(format!("{} does not list it", primary.key)),
            Some(entry) if entry.link_state != LinkState::Connected => {
                unproven.push(format!("{}'s link to it is down", primary.key));
            }
            Some(entry) => {
                if let Some(now_ms) = field(other, "server_time_usec").map(|us| us / 1000)
                    && (entry.pong_recv == 0 || now_ms.saturating_sub(entry.pong_recv) > uptime_ms)
                {
                    unproven.push(format!(
                        "{} has had no pong from it since it started",
                        primary.key
                    ));
                }
            }
        }
        match view.knows(&other.id) {
            Some(entry) if entry.link_state == LinkState::Connected => {
                if replica_clock && entry.pong_recv == 0 {
                    unproven.push(format!("it has had no pong from {} yet", primary.key));
                }
            }
            _ => unproven.push(format!("its link to {} is down", primary.key)),
        }
    }
    unproven
}

fn offset(node: &NodeRecord, field: &str) -> Option<u64> {
    node.view()?.info.number(field)
}

/// The fittest replica: fit, then outside the primary's domain, then the least lag, then by
/// key (the same choice on every run). `None` with every replica's reason when none is fit.
pub fn fittest(replicas: &[ReplicaFitness], max_lag: u64) -> Result<&ReplicaFitness, String> {
    replicas
        .iter()
        .filter(|r| r.unfit(max_lag).is_none())
        .min_by_key(|r| (r.same_domain, r.lag, &r.key))
        .ok_or_else(|| {
            if replicas.is_empty() {
                "it has no replica".to_owned()
            } else {
                let reasons: Vec<String> = replicas
                    .iter()
                    .map(|r| {
                        format!(
                            "{}: {}",
                            r.key,
                            r.unfit(max_lag).unwrap_or_else(|| "fit".to_owned())
                        )
                    })
                    .collect();
                format!("no replica is fit to take over ({})", reasons.join("; "))
            }
        })
}
