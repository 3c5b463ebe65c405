//! How far a cause reaches: a node that is not a working member (gone, silent, speaking the
//! other protocol, cluster support off, protected mode, loading, refusing the cluster
//! commands) is a finding of its own, and what it breaks on its peers (a peer that knows only
//! itself, slots not covered, a peer stuck in handshake with it, a replica whose primary it
//! is, its primary refusing writes under `min-replicas-to-write`) hangs under it; so does what
//! a node presents that its peers cannot work with (a certificate, an address, a server
//! version, another cluster's slots, a new id). Each rule says which it is ([`Rule::reach`]);
//! [`explains_elsewhere`] decides, symptom by symptom.

use std::net::IpAddr;

use super::rules::clients::WRITES_REFUSED_NOREPLICAS;
use super::rules::formation::REPLICAS_ON_ONE_PRIMARY;
use super::rules::membership::{BUS_HANDSHAKE_STUCK, NODE_KNOWS_ONLY_ITSELF, SLOTS_NOT_COVERED};
use super::rules::replication::REPLICA_LINK_DOWN;
use super::{Finding, Inputs, NodeEvidence, Reach, Rule};

// ---- symptoms elsewhere -----------------------------------------------------------------

/// Whether `cause`, a node that is not a working member or one its peers cannot work with,
/// explains `symptom` on another node (or on the whole cluster): formation cannot complete
/// without the node (a peer that knows only itself, slots not covered, the replicas' layout),
/// a peer stuck in handshake with it (for a node that is not working: only with such nodes),
/// a replica whose primary it is, and a primary of its that refuses writes for want of good
/// replicas.
pub(super) fn explains_elsewhere(inputs: &Inputs, cause: &Finding, symptom: &Finding) -> bool {
    let down_rule = cause.rule.reach == Reach::NodeDown;
    let facing = cause.rule.reach == Reach::PeerFacing;
    if !(down_rule || facing) || !cause.rule.explains_rule(symptom.rule) {
        return false;
    }
    let find = |key: &Option<crate::snapshot::NodeKey>| {
        let key = key.as_ref()?;
        inputs.nodes.iter().find(|n| &n.key == key)
    };
    let Some(down) = find(&cause.node) else {
        return false;
    };
    let Some(seen) = find(&symptom.node) else {
        // A symptom of the whole cluster, the replicas' layout: a node the cluster cannot
        // work with, or an expected node that is not there to be counted.
        return symptom.node.is_none()
            && (facing || std::ptr::eq(symptom.rule, &REPLICAS_ON_ONE_PRIMARY));
    };
    if std::ptr::eq(down, seen) {
        return false;
    }
    let at = |n: &NodeEvidence, ip: Option<IpAddr>, port: u16| {
        n.ip.is_some() && n.ip == ip && n.port == Some(port)
    };
    let down_id = down.live.as_ref().map(|v| &v.id);
    // A node its peers cannot work with is also the one they list where it announces itself
    // (a handshake entry there has an id of its own).
    let announced = down
        .live
        .as_ref()
        .map(|v| (v.myself().addr.ip, v.myself().addr.port));
    let is_down = |e: &crate::parse::NodeEntry| {
        at(down, e.addr.ip, e.addr.port)
            || (facing && (Some(&e.id) == down_id || announced == Some((e.addr.ip, e.addr.port))))
    };
    let is = |rule: &Rule| std::ptr::eq(symptom.rule, rule);
    if is(&NODE_KNOWS_ONLY_ITSELF) || is(&SLOTS_NOT_COVERED) {
        true
    } else if is(&BUS_HANDSHAKE_STUCK) {
        let Some(view) = &seen.live else { return false };
        // The other server answering with the cause's id (CS312): peers that move the id's
        // address to the cause drop their links to it, whichever of the two the flip left.
        if facing && down_id == Some(&view.id) {
            return true;
        }
        let stuck: Vec<_> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| !e.is_myself() && e.bus_unconnected())
            .collect();
        stuck.iter().any(|e| is_down(e))
            && (facing
                || stuck.iter().all(|e| {
                    inputs
                        .nodes
                        .iter()
                        .any(|n| n.not_member().is_some() && at(n, e.addr.ip, e.addr.port))
                }))
    } else if is(&WRITES_REFUSED_NOREPLICAS) {
        // The primary still lists the replica that went away, under its own id.
        let Some(view) = &seen.live else { return false };
        view.nodes
            .entries()
            .iter()
            .any(|e| is_down(e) && e.primary_id.as_ref() == Some(&view.id))
    } else if is(&REPLICA_LINK_DOWN)
        || is(&super::rules::catalog::FULL_SYNC_FAILING)
        || is(&super::rules::catalog::REPLICATION_CREDENTIALS_REJECTED)
        || is(&super::rules::catalog::REPLICATION_USER_LACKS_PERMISSION)
    {
        let Some(view) = &seen.live else { return false };
        view.info
            .primary_addr()
            .is_some_and(|(ip, port)| at(down, Some(ip), port))
            || (facing && down_id.is_some() && view.myself().primary_id.as_ref() == down_id)
    } else {
        false
    }
}

#[cfg(test)]
pub(super) mod tests;
