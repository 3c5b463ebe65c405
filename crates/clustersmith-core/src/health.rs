//! How fit each replica is to take its primary's role over, from what the snapshot holds: the
//! replica's own link to its primary, what every view says of it, and how far behind its
//! primary's replication offset it is. A planned handoff picks from these, and refuses when
//! none is fit (rule CS360).

use crate::model::NodeFlag;
use crate::snapshot::{NodeKey, NodeRecord, Snapshot};

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
        match self.lag {
            None => Some("its replication offset is unknown".to_owned()),
            Some(lag) if lag > max_lag => Some(format!(
                "it is {lag} bytes behind its primary (more than --max-lag {max_lag})"
            )),
            Some(_) => None,
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
            ReplicaFitness {
                key: replica.key.clone(),
                link_up: view.info.primary_link_status() == Some("up"),
                flagged_by,
                lag,
                same_domain: replica.domain() == primary_record.domain(),
            }
        })
        .collect()
}

fn offset(node: &NodeRecord, field: &str) -> Option<u64> {
    node.view()?.info.get(field)?.parse().ok()
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
