//! Root-cause diagnosis: rules, as data, over every piece of evidence about a cluster (live
//! views, `redis.conf`, `nodes.conf`, server logs, post-deploy logs).
//!
//! Each [`Rule`] has a stable id, a name for the problem, a severity, an explanation (what it
//! detects, why it matters, how to fix it, known false positives) and a check. A check only
//! reads [`Inputs`] and returns hits with their evidence. Rules live one family per module
//! under `rules/`, each rule's static beside its check; [`RULES`] (in `registry.rs`) lists
//! them all, in order. [`diagnose`] runs every rule and then correlates: a finding whose rule
//! *explains* another rule's finding on the same node (a missing `masterauth` explains that
//! node's replica link being down) takes that finding in as a symptom, so the report leads
//! with causes. A rule names the rules it explains by reference, so the links are checked by
//! the compiler.
//!
//! Besides the checks, every warning line of a node's server log is looked up in the servers'
//! own message catalog ([`log_catalog`]): a line that proves a rule raises it on its node, a
//! line that only hints at one joins that rule's finding when other evidence raises it, and a
//! line the catalog does not know is reported at info rather than dropped.

pub mod log_catalog;
mod node_facts;
mod registry;
mod rules;

use std::fmt;
use std::net::IpAddr;

pub use node_facts::{Answer, NodeFacts};
pub use registry::{RULES, rule};

use crate::observation::NodeView;
use crate::parse::{ClusterNodes, PostDeployLog, RedisConf, ServerLog};

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
    pub check: fn(&Inputs) -> Vec<Hit>,
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
    /// The node it concerns (a label of [`Inputs::nodes`]); `None` for the whole cluster.
    pub node: Option<String>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

/// A hit with its rule, and the symptoms it explains.
#[derive(Clone, Debug)]
pub struct Finding {
    pub rule: &'static Rule,
    pub node: Option<String>,
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
            node: node.label.clone(),
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
    pub label: String,
    /// Where it was reached (after name resolution).
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub zone: Option<String>,
    pub live: Option<NodeView>,
    /// Why it could not be observed, when it was given but did not answer.
    pub unreachable: Option<String>,
    /// What the node is, from how it answered (expected nodes only; `None` for a node known
    /// from files only).
    pub facts: Option<NodeFacts>,
    pub redis_conf: Option<SourceFile<RedisConf>>,
    pub nodes_conf: Option<SourceFile<ClusterNodes>>,
    pub log: Option<SourceFile<ServerLog>>,
    pub certs: Vec<CertFacts>,
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
}

impl Inputs {
    /// Nodes with a live view.
    pub fn live(&self) -> impl Iterator<Item = (&NodeEvidence, &NodeView)> {
        self.nodes
            .iter()
            .filter_map(|n| n.live.as_ref().map(|view| (n, view)))
    }

    /// How many nodes the cluster should have: from the spec, else the nodes given.
    pub fn expected_size(&self) -> usize {
        self.expected.map_or(self.nodes.len(), |e| {
            e.primaries * (1 + e.replicas_per_primary)
        })
    }
}

/// Runs every rule and ranks the findings: causes with their symptoms, by severity.
pub fn diagnose(inputs: &Inputs) -> Vec<Finding> {
    let findings: Vec<Finding> = RULES
        .iter()
        .copied()
        .flat_map(|rule| {
            rule_hits(rule, inputs).into_iter().map(move |hit| Finding {
                rule,
                node: hit.node,
                summary: hit.summary,
                evidence: hit.evidence,
                symptoms: Vec::new(),
            })
        })
        .collect();
    correlate(findings, inputs)
}

/// A rule's hits: its check's, with the server log lines the catalog assigns to the rule.
pub fn rule_hits(rule: &Rule, inputs: &Inputs) -> Vec<Hit> {
    let mut hits = (rule.check)(inputs);
    log_catalog::attach(rule, inputs, &mut hits);
    hits
}

/// Moves each symptom under the cause that explains it, directly or through other symptoms
/// (a hostname given to MEET → a node that knows only itself → slots not covered), on the same
/// node; a cause without a node explains its symptoms everywhere, and a node that is not a
/// working member explains what it breaks on its peers (see `node_facts`).
fn correlate(findings: Vec<Finding>, inputs: &Inputs) -> Vec<Finding> {
    let explains = |cause: &Finding, symptom: &Finding| {
        !std::ptr::eq(symptom.rule, cause.rule)
            && cause.rule.explains_rule(symptom.rule)
            && (cause.node.is_none()
                || cause.node == symptom.node
                || node_facts::explains_elsewhere(inputs, cause, symptom))
    };
    let n = findings.len();
    let parent: Vec<Option<usize>> = (0..n)
        .map(|i| (0..n).find(|&j| explains(&findings[j], &findings[i])))
        .collect();
    // Follow explanations up to a finding nothing explains (bounded: the registry has no
    // cycles, which a test checks).
    let root = |mut i: usize| {
        for _ in 0..n {
            match parent[i] {
                Some(p) => i = p,
                None => return i,
            }
        }
        i
    };
    let roots: Vec<usize> = (0..n).map(root).collect();
    let mut causes: Vec<Finding> = Vec::new();
    let mut index_of_root = vec![usize::MAX; n];
    for i in (0..n).filter(|i| roots[*i] == *i) {
        index_of_root[i] = causes.len();
        causes.push(findings[i].clone());
    }
    for i in (0..n).filter(|i| roots[*i] != *i) {
        causes[index_of_root[roots[i]]]
            .symptoms
            .push(findings[i].clone());
    }
    causes.sort_by(|a, b| {
        b.rule
            .severity
            .cmp(&a.rule.severity)
            .then(b.symptoms.len().cmp(&a.symptoms.len()))
            .then(a.rule.id.cmp(b.rule.id))
            .then(a.node.cmp(&b.node))
    });
    causes
}

/// The highest severity among findings and their symptoms.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings
        .iter()
        .flat_map(|f| {
            std::iter::once(f.rule.severity).chain(f.symptoms.iter().map(|s| s.rule.severity))
        })
        .max()
}

#[cfg(test)]
mod tests;
