//! The JSON documents, as explicit wire structs: what scripts read is this module, never an
//! internal type. Every command prints exactly one document on stdout (a refusal prints an
//! [`ErrorDoc`]); with `--format json`, progress goes to stderr as one [`Event`] per line.

use clustersmith_core::diagnose::{Evidence, Finding, NodeEvidence, Rule, Severity, Source};
use clustersmith_core::plan::{Layout, Plan, SlotMove};
use clustersmith_core::snapshot::{NodeKey, Snapshot};
use clustersmith_core::verify::{CRITERIA, CriterionResult, Verdict};
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct ShardJson {
    pub primary: String,
    pub node_id: Option<String>,
    pub zone: Option<String>,
    pub slots: String,
    pub slot_count: usize,
    pub observed: bool,
    pub observed_slots: Option<String>,
    pub replicas: Vec<ReplicaJson>,
}

#[derive(Serialize)]
pub struct ReplicaJson {
    pub node: String,
    pub node_id: Option<String>,
    pub zone: Option<String>,
    pub observed: bool,
    pub link: Option<String>,
}

pub fn topology(layout: &Layout, snapshot: &Snapshot) -> Vec<ShardJson> {
    let node_id = |key: &NodeKey| snapshot.view(key).map(|v| v.id.to_string());
    let zone = |key: &NodeKey| snapshot.get(key).and_then(|n| n.zone.clone());
    layout
        .shards
        .iter()
        .map(|shard| ShardJson {
            primary: shard.primary.to_string(),
            node_id: node_id(&shard.primary),
            zone: zone(&shard.primary),
            slots: shard.slots.to_string(),
            slot_count: shard.slots.len(),
            observed: snapshot.view(&shard.primary).is_some(),
            observed_slots: snapshot
                .view(&shard.primary)
                .map(|v| v.myself().slots.to_string()),
            replicas: shard
                .replicas
                .iter()
                .map(|r| ReplicaJson {
                    node: r.to_string(),
                    node_id: node_id(r),
                    zone: zone(r),
                    observed: snapshot.view(r).is_some(),
                    link: snapshot
                        .view(r)
                        .and_then(|v| v.info.primary_link_status().map(str::to_owned)),
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
pub struct CriterionJson {
    pub id: &'static str,
    pub title: &'static str,
    pub passed: bool,
    pub status: &'static str,
    pub failures: Vec<FailureJson>,
    pub unchecked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct FailureJson {
    pub node: String,
    pub detail: String,
}

fn criterion(c: &CriterionResult) -> CriterionJson {
    CriterionJson {
        id: c.id(),
        title: c.title(),
        passed: c.passed(),
        status: c.status().as_str(),
        failures: c
            .failures
            .iter()
            .map(|f| FailureJson {
                node: f.node.to_string(),
                detail: f.detail.clone(),
            })
            .collect(),
        unchecked: c.unchecked.iter().map(ToString::to_string).collect(),
        reason: None,
    }
}

pub fn criteria(verdict: &Verdict) -> Vec<CriterionJson> {
    verdict.criteria.iter().map(criterion).collect()
}

/// Every criterion, marked unknown with the reason: for a verdict that could not be reached.
pub fn unchecked_criteria(reason: &str) -> Vec<CriterionJson> {
    CRITERIA
        .iter()
        .map(|c| CriterionJson {
            id: c.id,
            title: c.title,
            passed: false,
            status: "unknown",
            failures: Vec::new(),
            unchecked: Vec::new(),
            reason: Some(reason.to_owned()),
        })
        .collect()
}

#[derive(Serialize)]
pub struct VerifyDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<Vec<ShardJson>>,
    pub criteria: Vec<CriterionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct StepJson {
    pub kind: &'static str,
    pub node: String,
    pub description: String,
}

#[derive(Serialize)]
pub struct MoveJson {
    pub source: String,
    pub target: String,
    pub slots: usize,
    pub ranges: String,
    /// Keys on the source now (`null`: not counted).
    pub keys: Option<u64>,
}

#[derive(Serialize)]
pub struct PlanDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub changes_pending: bool,
    pub steps: Vec<StepJson>,
    pub blockers: Vec<String>,
    pub waiting: Vec<String>,
    pub topology: Option<Vec<ShardJson>>,
    pub notes: Vec<String>,
    pub moves: Vec<MoveJson>,
    pub move_engine: &'static str,
}

impl PlanDoc {
    pub fn new(
        plan: &Plan,
        snapshot: &Snapshot,
        moves: &[(SlotMove, Option<u64>)],
        engine: &'static str,
    ) -> PlanDoc {
        PlanDoc {
            schema_version: SCHEMA_VERSION,
            command: "plan",
            changes_pending: plan.has_changes(),
            steps: plan
                .steps
                .iter()
                .map(|s| StepJson {
                    kind: s.kind(),
                    node: s.node().to_string(),
                    description: s.describe(),
                })
                .collect(),
            blockers: plan.blockers.iter().map(ToString::to_string).collect(),
            waiting: plan.waiting.clone(),
            topology: plan.layout.as_ref().map(|l| topology(l, snapshot)),
            notes: plan
                .layout
                .as_ref()
                .map(|l| l.notes.clone())
                .unwrap_or_default(),
            moves: moves
                .iter()
                .map(|(m, keys)| MoveJson {
                    source: m.source.to_string(),
                    target: m.target.to_string(),
                    slots: m.slots.len(),
                    ranges: m.slots.to_string(),
                    keys: *keys,
                })
                .collect(),
            move_engine: engine,
        }
    }
}

#[derive(Serialize)]
pub struct ApplyDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub converged: bool,
    pub elapsed_ms: u64,
    pub rounds: usize,
    pub commands_sent: usize,
    pub slots_moved: usize,
    pub topology: Vec<ShardJson>,
    pub criteria: Vec<CriterionJson>,
    pub notes: Vec<String>,
    pub waiting: Vec<String>,
}

#[derive(Serialize)]
pub struct HandoffDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub node: String,
    /// The replica that took over; `null` when the node was a replica already.
    pub successor: Option<String>,
    pub done: bool,
    pub elapsed_ms: u64,
    pub criteria: Vec<CriterionJson>,
    pub waiting: Vec<String>,
}

#[derive(Serialize)]
pub struct EvacuateDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub node: String,
    pub done: bool,
    pub elapsed_ms: u64,
    /// Slots this run moved off the node (with their keys).
    pub slots_moved: usize,
    /// Each re-homed replica and the primary it follows now.
    pub rehomed: Vec<RehomedJson>,
    pub criteria: Vec<CriterionJson>,
    pub waiting: Vec<String>,
}

#[derive(Serialize)]
pub struct RehomedJson {
    pub replica: String,
    pub primary: String,
}

#[derive(Serialize)]
pub struct RollDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub done: bool,
    pub elapsed_ms: u64,
    pub nodes: usize,
    /// When the roll this run finished began, if it resumed one (ms since the epoch).
    pub resumed_from_ms: Option<u64>,
    /// The state file a re-run resumes from; `null` once the roll is done (it is removed).
    pub state: Option<String>,
    pub criteria: Vec<CriterionJson>,
    pub waiting: Vec<String>,
}

#[derive(Serialize)]
pub struct NodeErrorJson {
    pub node: String,
    pub error: String,
    pub hint: Option<&'static str>,
}

#[derive(Serialize)]
pub struct OtherRunJson {
    pub node: String,
    pub client: String,
}

/// The one document a command prints on stdout when it stops with an error, so that
/// `--format json` always yields exactly one document. Only the fields that apply are present.
#[derive(Serialize, Default)]
pub struct ErrorDoc {
    pub schema_version: u32,
    pub command: String,
    pub ok: bool,
    pub exit_code: u8,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeErrorJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub others: Option<Vec<OtherRunJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

impl ErrorDoc {
    pub fn new(command: &str, exit_code: u8, error: &str) -> ErrorDoc {
        ErrorDoc {
            schema_version: SCHEMA_VERSION,
            command: command.to_owned(),
            ok: false,
            exit_code,
            error: error.to_owned(),
            ..ErrorDoc::default()
        }
    }
}

#[derive(Serialize)]
pub struct DiagnosedNodeJson {
    pub node: String,
    pub live: bool,
    pub unreachable: Option<String>,
    pub answer: Option<&'static str>,
    pub version: Option<String>,
    pub redis_conf: Option<String>,
    pub nodes_conf: Option<String>,
    pub log: Option<String>,
}

impl DiagnosedNodeJson {
    pub fn new(n: &NodeEvidence) -> DiagnosedNodeJson {
        DiagnosedNodeJson {
            node: n.key.to_string(),
            live: n.live.is_some(),
            unreachable: n.unreachable.clone(),
            answer: n.facts.as_ref().map(|f| f.answer.name()),
            version: n.facts.as_ref().and_then(|f| f.version.clone()),
            redis_conf: n.redis_conf.as_ref().map(|f| f.path.clone()),
            nodes_conf: n.nodes_conf.as_ref().map(|f| f.path.clone()),
            log: n.log.as_ref().map(|f| f.path.clone()),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum EvidenceJson {
    Live {
        node: String,
        reply: &'static str,
        text: String,
    },
    File {
        path: String,
        line: Option<usize>,
        text: String,
    },
    Spec {
        text: String,
    },
}

impl EvidenceJson {
    fn new(e: &Evidence) -> EvidenceJson {
        match &e.source {
            Source::Live { node, reply } => EvidenceJson::Live {
                node: node.clone(),
                reply,
                text: e.text.clone(),
            },
            Source::File { path, line } => EvidenceJson::File {
                path: path.clone(),
                line: *line,
                text: e.text.clone(),
            },
            Source::Spec => EvidenceJson::Spec {
                text: e.text.clone(),
            },
        }
    }
}

/// A root cause (`explained_by` null) with its symptoms, each naming the cause that explains
/// it; a cause lists what it explains as `rule@node` keys.
#[derive(Serialize)]
pub struct FindingJson {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: &'static str,
    pub node: Option<String>,
    pub summary: String,
    pub evidence: Vec<EvidenceJson>,
    pub fix: &'static str,
    pub explains: Vec<String>,
    pub explained_by: Option<String>,
    pub symptoms: Vec<FindingJson>,
}

fn finding_key(f: &Finding) -> String {
    format!(
        "{}@{}",
        f.rule.id,
        f.node.as_ref().map(|k| k.label()).unwrap_or("cluster")
    )
}

impl FindingJson {
    pub fn new(f: &Finding, cause: Option<&Finding>) -> FindingJson {
        FindingJson {
            id: f.rule.id,
            name: f.rule.name,
            severity: f.rule.severity.as_str(),
            node: f.node.as_ref().map(ToString::to_string),
            summary: f.summary.clone(),
            evidence: f.evidence.iter().map(EvidenceJson::new).collect(),
            fix: f.rule.fix,
            explains: f.symptoms.iter().map(finding_key).collect(),
            explained_by: cause.map(finding_key),
            symptoms: f
                .symptoms
                .iter()
                .map(|s| FindingJson::new(s, Some(f)))
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct DiagnoseDoc {
    pub schema_version: u32,
    pub command: &'static str,
    pub nodes: Vec<DiagnosedNodeJson>,
    pub findings: Vec<FindingJson>,
    pub worst: Option<&'static str>,
    pub fail_on: String,
    pub failed: bool,
    pub notes: Vec<String>,
}

impl DiagnoseDoc {
    pub fn worst_name(worst: Option<Severity>) -> Option<&'static str> {
        worst.map(Severity::as_str)
    }
}

#[derive(Serialize)]
pub struct RuleJson {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: &'static str,
    pub detects: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    pub false_positives: &'static str,
    pub evidence: Vec<&'static str>,
    pub explains: Vec<&'static str>,
}

impl RuleJson {
    pub fn new(r: &Rule) -> RuleJson {
        RuleJson {
            id: r.id,
            name: r.name,
            severity: r.severity.as_str(),
            detects: r.detects,
            why: r.why,
            fix: r.fix,
            false_positives: r.false_positives,
            evidence: r.evidence.iter().map(|k| k.as_str()).collect(),
            explains: r.explains.iter().map(|e| e.id).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct ExplainDoc {
    pub schema_version: u32,
    pub rules: Vec<RuleJson>,
}

/// A progress event on stderr (`--format json`).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    Round {
        round: usize,
        elapsed_ms: u64,
        commands: usize,
        failing: Vec<&'static str>,
        waiting: &'a [String],
    },
    MovesStarted {
        slots: usize,
        pairs: usize,
        resumed: bool,
    },
    Moving {
        slots_done: usize,
        slots_total: usize,
        keys_moved: u64,
        keys_per_sec: u64,
        eta_ms: u64,
    },
    MovesSettled {
        slots: usize,
        agreed: bool,
    },
    StillWaiting {
        elapsed_ms: u64,
        round: usize,
        waiting: String,
    },
    Message {
        text: &'a str,
    },
    Status {
        text: &'a str,
    },
    Acting {
        action: &'a str,
    },
}

/// Serializes a document; the wire structs hold nothing that can fail to serialize.
pub fn to_text<T: Serialize>(doc: &T) -> String {
    serde_json::to_string(doc).expect("wire structs serialize")
}
