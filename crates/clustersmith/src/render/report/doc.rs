//! The report's document: everything the HTML shows, as one serde value. `report --format
//! json` prints it, the HTML embeds it, and `report --from FILE` renders it again with no
//! server, so a support engineer sees what the user saw.
//!
//! Built from what `verify` and `diagnose` read (one snapshot of the live nodes, the verdict
//! when a shape was given, the findings); every field is plain data, so that the document
//! outlives the version that wrote it (`schema_version`).

use serde::{Deserialize, Serialize};

use clustersmith_core::diagnose::{Finding, NodeEvidence};
use clustersmith_core::health::replicas_of;
use clustersmith_core::model::{LinkState, NodeFlag, SLOT_COUNT};
use clustersmith_core::parse::OpenSlotKind;
use clustersmith_core::snapshot::{NodeRecord, Snapshot};
use clustersmith_core::verify::Verdict;

pub const REPORT_SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportDoc {
    pub schema_version: u32,
    pub command: String,
    /// When the nodes were read (RFC 3339, UTC).
    pub generated_at: String,
    /// The verify criteria against the expected shape, when one was given.
    pub verdict: Option<VerdictDoc>,
    pub nodes: Vec<NodeDoc>,
    /// The slot map in runs of one owner (as the owners themselves claim their slots), in
    /// slot order, covering all 16384 slots; `owner: null` is a run no node claims.
    pub slots: Vec<SlotRunDoc>,
    /// Slots open on a node (a move in progress or left half-done).
    pub open_slots: Vec<OpenSlotDoc>,
    /// Who sees whom: `cells[i][j]` is how node `i` (in `nodes` order) lists node `j`.
    pub matrix: Vec<Vec<String>>,
    pub findings: Vec<FindingDoc>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VerdictDoc {
    pub passed: bool,
    pub criteria: Vec<CriterionDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CriterionDoc {
    pub id: String,
    pub title: String,
    /// `ok`, `fail`, `warning` or `unknown` (a node it needed did not answer).
    pub status: String,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeDoc {
    /// The address as given (or as the cluster lists a member found through it).
    pub node: String,
    pub id: Option<String>,
    /// Why it could not be read, when it could not.
    pub unreachable: Option<String>,
    /// `primary` or `replica`; `null` when it did not answer.
    pub role: Option<String>,
    /// The node it replicates (an address when known, else its id).
    pub primary: Option<String>,
    pub zone: Option<String>,
    pub host: String,
    pub version: Option<String>,
    pub config_epoch: Option<u64>,
    pub current_epoch: Option<u64>,
    pub cluster_state: Option<String>,
    pub slots: usize,
    pub keys: Option<u64>,
    pub used_memory_bytes: Option<u64>,
    /// A replica's `master_link_status`.
    pub link: Option<String>,
    /// A replica's distance behind its primary's replication stream.
    pub lag_bytes: Option<u64>,
    /// A replica's `master_last_io_seconds_ago`.
    pub last_io_seconds: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SlotRunDoc {
    pub start: u16,
    pub end: u16,
    pub owner: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OpenSlotDoc {
    pub slot: u16,
    pub node: String,
    /// `migrating` (to `peer`) or `importing` (from `peer`).
    pub kind: String,
    pub peer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingDoc {
    pub rule: String,
    pub name: String,
    pub severity: String,
    pub node: Option<String>,
    pub summary: String,
    pub evidence: Vec<String>,
    pub fix: String,
    /// What the rule detects and why it matters (`clustersmith explain RULE`).
    pub detects: String,
    pub why: String,
    pub symptoms: Vec<FindingDoc>,
}

/// How node `viewer` lists `subject` in the matrix (`records` in snapshot order).
fn cell(snapshot: &Snapshot, records: &[&NodeRecord], viewer: usize, subject: usize) -> String {
    if viewer == subject {
        return "self".to_owned();
    }
    let Some(view) = records[viewer].view() else {
        return "unread".to_owned();
    };
    let subject_id = records[subject]
        .id()
        .or_else(|| snapshot.id_listed_at(records[subject].ip, records[subject].port));
    let Some(entry) = subject_id.and_then(|id| view.nodes.get(&id)) else {
        return "unknown".to_owned();
    };
    if entry.is_handshake() {
        "handshake"
    } else if entry.has_flag(NodeFlag::Fail) {
        "fail"
    } else if entry.has_flag(NodeFlag::PossibleFail) {
        "pfail"
    } else if entry.link_state != LinkState::Connected {
        "disconnected"
    } else {
        "ok"
    }
    .to_owned()
}

/// The document for what was read: `evidence` are the nodes as diagnose gathered them (for
/// why one did not answer), `snapshot` their live views.
pub fn build(
    generated_at: String,
    snapshot: &Snapshot,
    evidence: &[NodeEvidence],
    verdict: Option<&Verdict>,
    findings: &[Finding],
    notes: Vec<String>,
) -> ReportDoc {
    let records: Vec<_> = snapshot.iter().collect();
    let nodes = records
        .iter()
        .map(|record| {
            let view = record.view();
            let me = view.map(|v| v.myself());
            let primary_key = me
                .filter(|m| m.is_replica())
                .and_then(|m| m.primary_id.as_ref())
                .map(|id| snapshot.label_of(id));
            let lag_bytes = me.filter(|m| m.is_replica()).and_then(|m| {
                let primary = m
                    .primary_id
                    .as_ref()
                    .and_then(|id| snapshot.answering_as(id))?;
                replicas_of(snapshot, &primary.key)
                    .into_iter()
                    .find(|r| r.key == record.key)?
                    .lag
            });
            let unreachable = view.is_none().then(|| {
                evidence
                    .iter()
                    .find(|e| e.key == record.key)
                    .and_then(|e| e.unreachable.clone())
                    .unwrap_or_else(|| "it did not answer".to_owned())
            });
            NodeDoc {
                node: record.label().to_owned(),
                id: record.id().map(|id| id.to_string()),
                unreachable,
                role: me.map(|m| if m.is_replica() { "replica" } else { "primary" }.to_owned()),
                primary: primary_key,
                zone: record.zone.clone(),
                host: record.ip.to_string(),
                version: view.and_then(|v| v.version()).map(|v| v.to_string()),
                config_epoch: me.map(|m| m.config_epoch),
                current_epoch: view.map(|v| v.cluster_info.current_epoch),
                cluster_state: view
                    .map(|v| if v.cluster_info.is_ok() { "ok" } else { "fail" }.to_owned()),
                slots: me.map_or(0, |m| m.slots.len()),
                keys: view.map(|v| v.info.key_count()),
                used_memory_bytes: view.and_then(|v| v.info.get("used_memory")?.parse().ok()),
                link: view
                    .and_then(|v| v.info.primary_link_status())
                    .map(str::to_owned),
                lag_bytes,
                last_io_seconds: view
                    .and_then(|v| v.info.get("master_last_io_seconds_ago")?.parse().ok()),
            }
        })
        .collect();

    // Each slot's owner as the owners claim it: the first claim wins (two claims are a
    // conflict verify and diagnose report on their own).
    let mut owner: Vec<Option<String>> = vec![None; SLOT_COUNT as usize];
    for record in &records {
        if let Some(me) = record
            .view()
            .map(|v| v.myself())
            .filter(|m| !m.is_replica())
        {
            for slot in me.slots.iter() {
                owner[usize::from(slot)].get_or_insert_with(|| record.label().to_owned());
            }
        }
    }
    let mut slots: Vec<SlotRunDoc> = Vec::new();
    for (slot, who) in owner.into_iter().enumerate() {
        match slots.last_mut() {
            Some(run) if run.owner == who => run.end = slot as u16,
            _ => slots.push(SlotRunDoc {
                start: slot as u16,
                end: slot as u16,
                owner: who,
            }),
        }
    }
    let mut open_slots = Vec::new();
    for record in &records {
        if let Some(view) = record.view() {
            for open in view.myself().open_slots() {
                open_slots.push(OpenSlotDoc {
                    slot: open.slot,
                    node: record.label().to_owned(),
                    kind: match open.kind {
                        OpenSlotKind::Migrating => "migrating",
                        OpenSlotKind::Importing => "importing",
                    }
                    .to_owned(),
                    peer: snapshot.label_of(&open.peer),
                });
            }
        }
    }
    let matrix = (0..records.len())
        .map(|viewer| {
            (0..records.len())
                .map(|subject| cell(snapshot, &records, viewer, subject))
                .collect()
        })
        .collect();
    ReportDoc {
        schema_version: REPORT_SCHEMA,
        command: "report".to_owned(),
        generated_at,
        verdict: verdict.map(|v| VerdictDoc {
            passed: v.passed(),
            criteria: v
                .criteria
                .iter()
                .map(|c| CriterionDoc {
                    id: c.id().to_owned(),
                    title: c.title().to_owned(),
                    status: c.status().as_str().to_owned(),
                    failures: c
                        .failures
                        .iter()
                        .map(|f| format!("{}: {}", f.node, f.detail))
                        .chain(c.unchecked.iter().map(|n| format!("{n}: not checked")))
                        .collect(),
                })
                .collect(),
        }),
        nodes,
        slots,
        open_slots,
        matrix,
        findings: findings.iter().map(finding).collect(),
        notes,
    }
}

fn finding(f: &Finding) -> FindingDoc {
    FindingDoc {
        rule: f.rule.id.to_owned(),
        name: f.rule.name.to_owned(),
        severity: f.rule.severity.as_str().to_owned(),
        node: f.node.as_ref().map(ToString::to_string),
        summary: f.summary.clone(),
        evidence: f
            .evidence
            .iter()
            .map(|e| format!("{}: {}", e.source, e.text))
            .collect(),
        fix: f.rule.fix.to_owned(),
        detects: f.rule.detects.to_owned(),
        why: f.rule.why.to_owned(),
        symptoms: f.symptoms.iter().map(finding).collect(),
    }
}
