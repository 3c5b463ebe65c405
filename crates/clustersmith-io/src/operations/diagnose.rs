//! `diagnose`: the evidence gathered from the live nodes and the files, judged by the rule
//! registry. Changes nothing.

use clustersmith_core::diagnose::{Expected, Finding, Inputs, diagnose as judge};
use clustersmith_core::spec::ClusterSpec;

use crate::error::{NodeError, NodeErrorKind, TlsProblem};
use crate::evidence::{EvidenceFiles, gather};
use crate::session::Session;

/// What diagnose found, with what it read.
pub struct Diagnosis {
    pub inputs: Inputs,
    pub findings: Vec<Finding>,
    /// Files that could not be used, parse issues, files attached to no node.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// A named file cannot be read: left out, it would read as a cluster with nothing wrong.
    #[error("cannot diagnose with {}: {}", clustersmith_core::plural(.0.len() as u64, "unusable evidence file", "unusable evidence files"), .0.join("; "))]
    UnusableFiles(Vec<String>),
    /// The connection settings given (TLS, credentials) were refused by every node: they say
    /// nothing about the cluster.
    #[error("cannot diagnose: the nodes refused the connection settings")]
    Settings(Vec<NodeError>),
    /// No live node, file or job to diagnose.
    #[error("nothing to diagnose: give live nodes, evidence files or --bosh-job{}", if .0.is_empty() { String::new() } else { format!(" ({})", .0.join("; ")) })]
    Nothing(Vec<String>),
}

/// Diagnoses the live nodes of `session` (when given) with the evidence files. `expected`
/// is the spec whose shape the cluster is checked against, when the operator gave one.
pub async fn diagnose(
    session: Option<&mut Session>,
    expected: Option<&ClusterSpec>,
    files: &EvidenceFiles,
    mut notes: Vec<String>,
) -> Result<Diagnosis, DiagnoseError> {
    let unusable = files.unusable();
    if !unusable.is_empty() {
        return Err(DiagnoseError::UnusableFiles(unusable));
    }
    let mut gathered = gather(session, files).await;
    // One node speaking the other protocol (CS335) or refusing the credentials (CS338)
    // while others answer with the same settings is a fact about that node; when no node
    // answers, it is the settings given, and diagnose stops as every command does.
    let some_answered = gathered.inputs.nodes.iter().any(|n| n.live.is_some());
    let settings: Vec<NodeError> = gathered
        .errors
        .iter()
        .filter(|e| e.is_input_error())
        .filter(|e| {
            !(some_answered
                && matches!(
                    e.kind,
                    NodeErrorKind::Tls(TlsProblem::PlaintextPort | TlsProblem::TlsOnlyPort)
                        | NodeErrorKind::NoAuth
                        | NodeErrorKind::AuthFailed
                        | NodeErrorKind::NoPermission(_)
                ))
        })
        .cloned()
        .collect();
    if !settings.is_empty() {
        return Err(DiagnoseError::Settings(settings));
    }
    if let Some(spec) = expected {
        gathered.inputs.expected = Some(Expected {
            primaries: spec.primaries,
            replicas_per_primary: spec.replicas_per_primary,
        });
    }
    if gathered.inputs.nodes.is_empty() && gathered.inputs.post_deploy.is_empty() {
        return Err(DiagnoseError::Nothing(notes));
    }
    notes.extend(gathered.notes);
    let findings = judge(&gathered.inputs);
    Ok(Diagnosis {
        inputs: gathered.inputs,
        findings,
        notes,
    })
}
