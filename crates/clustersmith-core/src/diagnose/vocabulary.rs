//! The vocabulary of diagnosis: severities, rules, evidence and where it comes from, what is
//! known of each node, and the findings a diagnosis returns.

use std::fmt;
use std::net::IpAddr;

use crate::model::NodeId;
use crate::parse::{ClusterNodes, PostDeployLog, RedisConf, ServerLog};
use crate::snapshot::{NodeKey, NodeView};

use super::log_catalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
    /// Data is lost: ranked above every other cause.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of evidence a rule can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceKind {
    Live,
    RedisConf,
    NodesConf,
    ServerLog,
    PostDeployLog,
    Certificate,
    Spec,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Live => "live",
            EvidenceKind::RedisConf => "redis.conf",
            EvidenceKind::NodesConf => "nodes.conf",
            EvidenceKind::ServerLog => "server log",
            EvidenceKind::PostDeployLog => "post-deploy log",
            EvidenceKind::Certificate => "certificate",
            EvidenceKind::Spec => "expected topology",
        }
    }
}

/// A rule: its identity and explanation are data; `check` finds its hits.
pub struct Rule {
    /// Stable, never reused: `CS` and three digits.
    pub id: &'static str,
    /// The problem, in a few words, kebab-case.
    pub name: &'static str,
    pub severity: Severity,
    /// What it detects.
    pub detects: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// When it may fire although nothing is wrong.
    pub false_positives: &'static str,
    /// Evidence it can use (any one suffices unless the text says otherwise).
    pub evidence: &'static [EvidenceKind],
    /// Symptom rules whose findings on the same node this cause accounts for.
    pub explains: &'static [&'static Rule],
    /// Whether the cause also accounts for those symptoms on other nodes.
    pub reach: Reach,
    pub check: fn(&Inputs) -> Vec<Hit>,
}

/// Where a rule's finding can account for the symptoms it explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// On its own node (a finding about the whole cluster: everywhere).
    OwnNode,
    /// Its node is not a working member: what that breaks on its peers hangs under it.
    NodeDown,
    /// Its node presents something its peers cannot work with (a certificate, an address, a
    /// server version, another cluster's slots, a new id): what they fail on hangs under it.
    PeerFacing,
}

/// Where one piece of evidence comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A live node's reply.
    Live { node: String, reply: &'static str },
    /// A line of a file (or the whole file when `line` is `None`).
    File { path: String, line: Option<usize> },
    /// The expected topology given to diagnose.
    Spec,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Live { node, reply } => write!(f, "{node} ({reply})"),
            Source::File {
                path,
                line: Some(line),
            } => write!(f, "{path}:{line}"),
            Source::File { path, line: None } => f.write_str(path),
            Source::Spec => f.write_str("expected topology"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub source: Source,
    pub text: String,
}

/// What a check returns: one occurrence of its problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The node it concerns (a key of [`Inputs::nodes`]); `None` for the whole cluster.
    pub node: Option<NodeKey>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

/// A hit with its rule, and the symptoms it explains.
#[derive(Clone, Debug)]
pub struct Finding {
    pub rule: &'static Rule,
    pub node: Option<NodeKey>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub symptoms: Vec<Finding>,
}

impl Rule {
    /// Whether `symptom` is one of the rules this one explains.
    pub fn explains_rule(&self, symptom: &Rule) -> bool {
        self.explains.iter().any(|r| std::ptr::eq(*r, symptom))
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({} {})", self.id, self.name)
    }
}

/// Evidence from a live node's reply.
pub(crate) fn live(node: &NodeEvidence, reply: &'static str, text: impl Into<String>) -> Evidence {
    Evidence {
        source: Source::Live {
            node: node.key.to_string(),
            reply,
        },
        text: text.into(),
    }
}

/// A file and what was parsed from it.
#[derive(Clone, Debug)]
pub struct SourceFile<T> {
    pub path: String,
    pub value: T,
}

impl<T> SourceFile<T> {
    pub fn at(&self, line: usize, text: impl Into<String>) -> Evidence {
        self.evidence(Some(line), text)
    }

    /// Evidence about the file as a whole (something it lacks).
    pub fn whole(&self, text: impl Into<String>) -> Evidence {
        self.evidence(None, text)
    }

    fn evidence(&self, line: Option<usize>, text: impl Into<String>) -> Evidence {
        Evidence {
            source: Source::File {
                path: self.path.clone(),
                line,
            },
            text: text.into(),
        }
    }
}

impl SourceFile<ServerLog> {
    /// The log lines containing any of `needles`, as evidence; a line repeated (a retry every
    /// second) is shown once with its count and first and last time.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<Evidence> {
        log_catalog::counted(self, self.value.find(needles))
    }
}

/// What a certificate named in `redis.conf` allows (read by the shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    pub path: String,
    /// The `redis.conf` directive that names it (`tls-cert-file`, …) and its line.
    pub directive: String,
    pub line: usize,
    pub server_auth: bool,
    pub client_auth: bool,
    pub expired: bool,
    /// How each CA file named by a `tls-ca-cert-file` of the nodes given judges this
    /// certificate, one entry per CA file (what the nodes trusting it will say).
    pub verdicts: Vec<CaVerdict>,
}

/// One CA file's judgement of a certificate, for each side of a TLS link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaVerdict {
    /// The CA file as redis.conf names it.
    pub ca: String,
    /// Presented by a node a peer connects to (serverAuth).
    pub as_server: Option<CertRejection>,
    /// Presented by a node connecting to a peer (clientAuth).
    pub as_client: Option<CertRejection>,
}

/// Why a CA file does not accept a certificate. Redis checks no host name on bus and
/// replication links, so a name mismatch is no rejection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertRejection {
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// The extended key usage lacks what this side needs.
    Usage,
    Other(String),
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRejection::UnknownIssuer => f.write_str("not issued by that CA"),
            CertRejection::Expired => f.write_str("expired"),
            CertRejection::NotYetValid => f.write_str("not valid yet"),
            CertRejection::Usage => f.write_str("lacks the key usage this side needs"),
            CertRejection::Other(text) => f.write_str(text),
        }
    }
}

/// Everything known about one node. Files are attached to the node they describe (by port or
/// node id); a node may have files only, or a live view only.
#[derive(Clone, Debug, Default)]
pub struct NodeEvidence {
    /// Its key: the address as given, or a description for a node known from files only.
    pub key: NodeKey,
    /// Where it was reached (after name resolution).
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub zone: Option<String>,
    pub live: Option<NodeView>,
    /// Its `CLUSTER NODES` read again a moment after `live`, taken only when `live` lists a
    /// peer in handshake or with its link down: what cleared meanwhile was still connecting.
    pub relook: Option<ClusterNodes>,
    /// Why it could not be observed, when it was given but did not answer.
    pub unreachable: Option<String>,
    /// What the node is, from how it answered (expected nodes only; `None` for a node known
    /// from files only).
    pub facts: Option<NodeFacts>,
    pub redis_conf: Option<SourceFile<RedisConf>>,
    pub nodes_conf: Option<SourceFile<ClusterNodes>>,
    pub log: Option<SourceFile<ServerLog>>,
    pub certs: Vec<CertFacts>,
    /// The file system under its `dir`, when diagnose runs on the node's own machine.
    pub disk: Option<DiskFacts>,
}

/// The file system holding a node's `dir`, read with statvfs where the node runs (the shell
/// reads it only for a node on this machine: loopback, or the BOSH job's own VM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFacts {
    pub dir: String,
    pub total_bytes: u64,
    /// Free to the server's (unprivileged) user.
    pub free_bytes: u64,
}

impl NodeEvidence {
    /// What it is when it did not answer as a cluster member.
    pub fn not_member(&self) -> Option<&NodeFacts> {
        self.facts.as_ref().filter(|f| !f.is_member())
    }
}

/// The expected topology, when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub primaries: usize,
    pub replicas_per_primary: usize,
}

/// Work a tool had under way on the cluster when diagnose looked: a clustersmith apply (it
/// names its connections `clustersmith-apply:<pid>`) and Valkey 9's atomic slot migrations.
/// Their intermediate states (open slots, a member being drained) are not faults.
#[derive(Clone, Debug, Default)]
pub struct AtWork {
    /// Every `clustersmith-apply:<pid>` connection seen: (node label, client name).
    pub applies: Vec<(String, String)>,
    /// Slot migration jobs not yet finished, as their source lists them.
    pub migrations: Vec<SlotMigration>,
}

/// One active job of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMigration {
    /// The source's label.
    pub node: String,
    pub slots: String,
    /// The target's node id.
    pub target: String,
    pub state: String,
}

impl AtWork {
    pub fn is_active(&self) -> bool {
        !self.applies.is_empty() || !self.migrations.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub nodes: Vec<NodeEvidence>,
    pub post_deploy: Vec<SourceFile<PostDeployLog>>,
    pub expected: Option<Expected>,
    pub at_work: AtWork,
    /// Where the live nodes send clients, each endpoint with how it answered.
    pub endpoints: Vec<ClientEndpoint>,
    /// [`Inputs::live_snapshot`], made once per diagnosis.
    pub live_snapshot_memo: SnapshotMemo,
}

/// The live snapshot of a diagnosis, made on first use: several rules ask it, and each copy
/// holds every view again (at 100 nodes, megabytes and milliseconds a copy). The engine
/// empties it when a diagnosis starts, so inputs changed between two runs are never judged on
/// an old copy; a clone of the inputs starts empty.
#[derive(Default)]
pub struct SnapshotMemo(std::sync::Mutex<Option<std::sync::Arc<crate::snapshot::Snapshot>>>);

impl SnapshotMemo {
    pub(crate) fn clear(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Clone for SnapshotMemo {
    fn clone(&self) -> Self {
        SnapshotMemo::default()
    }
}

impl fmt::Debug for SnapshotMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SnapshotMemo")
    }
}

/// An endpoint the nodes send clients to: one node's entry in their `CLUSTER SLOTS` (its
/// preferred endpoint and client port; `MOVED` and `ASK` redirects name the same), with how
/// it answered when diagnose connected there as a client would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEndpoint {
    /// As listed: an IP, a hostname, or `?` (hostnames preferred, and the node announces none).
    pub host: String,
    pub port: u16,
    /// The node it is listed for.
    pub id: NodeId,
    /// The slots it is listed for as their primary (empty for a replica's entry).
    pub slots: crate::model::SlotSet,
    /// The nodes whose `CLUSTER SLOTS` lists it.
    pub listed_by: Vec<NodeKey>,
    pub answer: EndpointAnswer,
}

/// How a client endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointAnswer {
    /// It is where diagnose reached that node: it answers as it.
    Reached,
    /// Connected there, `CLUSTER MYID` answered this id.
    AnswersAs(NodeId),
    /// `?`: no endpoint a client can use.
    NoHostname,
    /// The name does not resolve here (the resolver's words).
    Unresolvable(String),
    /// Resolved (or an IP), but nothing answered there (why).
    Unreachable(String),
}

impl Inputs {
    /// Nodes with a live view.
    pub fn live(&self) -> impl Iterator<Item = (&NodeEvidence, &NodeView)> {
        self.nodes
            .iter()
            .filter_map(|n| n.live.as_ref().map(|view| (n, view)))
    }

    /// The given nodes that answered, with an address, as a snapshot keyed by their labels:
    /// what the questions shared with plan and verify are asked of.
    pub fn live_snapshot(
        &self,
    ) -> (
        Vec<&NodeEvidence>,
        std::sync::Arc<crate::snapshot::Snapshot>,
    ) {
        use crate::snapshot::{NodeRecord, NodeState, Snapshot};
        let given: Vec<&NodeEvidence> = self
            .nodes
            .iter()
            .filter(|n| n.live.is_some() && n.ip.is_some() && n.port.is_some())
            .collect();
        let mut memo = self
            .live_snapshot_memo
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(snapshot) = memo.as_ref() {
            return (given, std::sync::Arc::clone(snapshot));
        }
        let records = given
            .iter()
            .map(|n| {
                let mut record = NodeRecord::spec(
                    n.key.clone(),
                    n.ip.expect("filtered"),
                    n.port.expect("filtered"),
                    n.zone.clone(),
                    1,
                );
                record.set_state(NodeState::Seen(Box::new(n.live.clone().expect("filtered"))));
                record
            })
            .collect();
        let snapshot = std::sync::Arc::new(Snapshot::new(records));
        *memo = Some(std::sync::Arc::clone(&snapshot));
        (given, snapshot)
    }

    /// How many nodes the cluster should have: from the spec, else the nodes given.
    pub fn expected_size(&self) -> usize {
        self.expected.map_or(self.nodes.len(), |e| {
            e.primaries * (1 + e.replicas_per_primary)
        })
    }
}

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

impl Answer {
    /// Its name in JSON documents: `member`, `refused`, `cluster-disabled`, …
    pub fn name(&self) -> &'static str {
        match self {
            Answer::Member => "member",
            Answer::Refused => "refused",
            Answer::TimedOut => "timed-out",
            Answer::Reset => "reset",
            Answer::OtherProtocol { wants_tls: true } => "tls-only",
            Answer::OtherProtocol { wants_tls: false } => "plaintext-only",
            Answer::ClusterDisabled => "cluster-disabled",
            Answer::ProtectedMode => "protected-mode",
            Answer::Loading => "loading",
            Answer::Refusing => "refusing-cluster-commands",
            Answer::AuthRefused => "auth-refused",
        }
    }
}

impl NodeFacts {
    pub fn is_member(&self) -> bool {
        self.answer == Answer::Member
    }
}
