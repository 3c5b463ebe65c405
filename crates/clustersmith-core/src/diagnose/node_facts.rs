//! Node facts: what each expected node *is*, established from how it answered before any
//! other rule reads a view. A node that is not a working cluster member (gone, silent,
//! speaking the other protocol, cluster support off, protected mode, loading, refusing the
//! cluster commands) is a finding of its own (the rules in `rules/node_facts.rs`), with the
//! live reply and the warning lines its log ends with; what it breaks on its peers (a peer
//! that knows only itself, slots not covered, a peer stuck in handshake with it, a replica
//! whose primary it is) hangs under it through [`explains_elsewhere`].

use std::net::IpAddr;

use super::rules::formation::REPLICAS_ON_ONE_PRIMARY;
use super::rules::membership::{BUS_HANDSHAKE_STUCK, NODE_KNOWS_ONLY_ITSELF, SLOTS_NOT_COVERED};
use super::rules::node_facts::{
    CLUSTER_COMMANDS_REFUSED, CLUSTER_SUPPORT_DISABLED, NODE_LOADING, NODE_NOT_ANSWERING,
    NODE_NOT_RUNNING, NODE_REFUSES_AUTH, PROTECTED_MODE_REFUSAL, TLS_PLAINTEXT_MISMATCH,
};
use super::rules::replication::REPLICA_LINK_DOWN;
use super::{Finding, Inputs, NodeEvidence, Rule};

/// How an expected node answered diagnose's first request (CLUSTER NODES, CLUSTER INFO,
/// INFO, pipelined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It answered as a cluster member; its view is [`NodeEvidence::live`].
    Member,
    /// Connection refused: nothing listens at the address.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The connection was closed at once, without a reply.
    Reset,
    /// It speaks the other protocol: `wants_tls` when it cut a plaintext connection and
    /// answers no plaintext RESP; otherwise it answered plaintext RESP to a TLS client.
    OtherProtocol { wants_tls: bool },
    /// `-ERR This instance has cluster support disabled` (`cluster-enabled no`).
    ClusterDisabled,
    /// `-DENIED Redis is running in protected mode …`.
    ProtectedMode,
    /// `-LOADING Redis is loading the dataset in memory`.
    Loading,
    /// It refused the credentials (NOAUTH, WRONGPASS, NOPERM) that other nodes accepted.
    AuthRefused,
    /// Any other refusal of the cluster commands (a renamed CLUSTER command, …).
    Refusing,
}

/// What diagnose established about one expected node before any rule ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub answer: Answer,
    /// The reply or connection error, as received.
    pub reply: String,
    /// Server flavour and version (`Redis 7.0.15`, `Valkey 8.1.8`) when it answered INFO.
    pub version: Option<String>,
}

impl NodeFacts {
    pub fn is_member(&self) -> bool {
        self.answer == Answer::Member
    }
}

/// Rules whose finding is a node that is not a working cluster member.
static NOT_MEMBER: &[&Rule] = &[
    &NODE_NOT_RUNNING,
    &NODE_NOT_ANSWERING,
    &CLUSTER_SUPPORT_DISABLED,
    &PROTECTED_MODE_REFUSAL,
    &NODE_LOADING,
    &TLS_PLAINTEXT_MISMATCH,
    &CLUSTER_COMMANDS_REFUSED,
    &NODE_REFUSES_AUTH,
];

pub(super) fn not_member(node: &NodeEvidence) -> Option<&NodeFacts> {
    node.facts.as_ref().filter(|f| !f.is_member())
}

// ---- symptoms elsewhere -----------------------------------------------------------------

/// Rules whose finding is about a node but whose fault shows on its peers: what it presents
/// to them (a certificate, an address, a bus mode, a server version, another cluster's slots,
/// a new id at an old address) is what they cannot work with.
static PEER_FACING: &[&Rule] = &[
    &super::rules::cross_node::CERTIFICATE_REJECTED_BY_PEERS,
    &super::rules::cross_node::ANNOUNCED_ADDRESS_UNREACHABLE,
    &super::rules::cross_node::REPLICA_OLDER_THAN_PRIMARY,
    &super::rules::cross_node::REPLICATION_CREDENTIALS_UNFIT,
    &super::rules::membership::TLS_CLUSTER_MISMATCH,
    &super::rules::membership::BUS_CERT_WITHOUT_CLIENT_AUTH,
    &super::rules::membership::FOREIGN_CLUSTER_MEMBER,
    &super::rules::departed::NODE_REPLACED_WITH_NEW_ID,
];

/// Whether `cause`, a node that is not a working member or one its peers cannot work with,
/// explains `symptom` on another node (or on the whole cluster): formation cannot complete
/// without the node (a peer that knows only itself, slots not covered, the replicas' layout),
/// a peer stuck in handshake with it (for a node that is not working: only with such nodes),
/// and a replica whose primary it is.
pub(super) fn explains_elsewhere(inputs: &Inputs, cause: &Finding, symptom: &Finding) -> bool {
    let is_in = |list: &[&Rule]| list.iter().any(|r| std::ptr::eq(*r, cause.rule));
    let (down_rule, facing) = (is_in(NOT_MEMBER), is_in(PEER_FACING));
    if !(down_rule || facing) || !cause.rule.explains_rule(symptom.rule) {
        return false;
    }
    let find = |label: &Option<String>| {
        let label = label.as_deref()?;
        inputs.nodes.iter().find(|n| n.label == label)
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
    let is_down = |e: &crate::parse::NodeEntry| {
        at(down, e.addr.ip, e.addr.port) || (facing && Some(&e.id) == down_id)
    };
    let is = |rule: &Rule| std::ptr::eq(symptom.rule, rule);
    if is(&NODE_KNOWS_ONLY_ITSELF) || is(&SLOTS_NOT_COVERED) {
        true
    } else if is(&BUS_HANDSHAKE_STUCK) {
        let Some(view) = &seen.live else { return false };
        let stuck: Vec<_> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| {
                !e.is_myself()
                    && (e.is_handshake() || e.link_state == crate::model::LinkState::Disconnected)
            })
            .collect();
        stuck.iter().any(|e| is_down(e))
            && (facing
                || stuck.iter().all(|e| {
                    inputs
                        .nodes
                        .iter()
                        .any(|n| not_member(n).is_some() && at(n, e.addr.ip, e.addr.port))
                }))
    } else if is(&REPLICA_LINK_DOWN)
        || is(&super::rules::catalog::REPLICATION_CREDENTIALS_REJECTED)
        || is(&super::rules::catalog::REPLICATION_USER_LACKS_PERMISSION)
    {
        let Some(view) = &seen.live else { return false };
        let host = view
            .info
            .get("master_host")
            .and_then(|h| h.parse::<IpAddr>().ok());
        let port = view
            .info
            .get("master_port")
            .and_then(|p| p.parse::<u16>().ok());
        port.is_some_and(|p| at(down, host, p))
            || (facing && down_id.is_some() && view.myself().primary_id.as_ref() == down_id)
    } else {
        false
    }
}

#[cfg(test)]
pub(super) mod tests;
