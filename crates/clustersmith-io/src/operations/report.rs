//! `report`: what `verify` and `diagnose` read, together: every member's live view (the nodes
//! given and the members their views list), the verdict against the expected shape when one
//! is given, and diagnose's findings. Changes nothing.

use clustersmith_core::plan::plan;
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::spec::ClusterSpec;
use clustersmith_core::verify::{Verdict, verify};

use crate::evidence::EvidenceFiles;
use crate::operations::diagnose::{DiagnoseError, Diagnosis, diagnose};
use crate::session::Session;

pub struct Observed {
    /// Every member, as read (empty without live nodes).
    pub snapshot: Snapshot,
    /// Against the expected shape, when one was given and the live state can be laid out
    /// against it.
    pub verdict: Option<Verdict>,
    pub diagnosis: Diagnosis,
}

pub async fn report(
    mut session: Option<&mut Session>,
    expected: Option<&ClusterSpec>,
    files: &EvidenceFiles,
    mut notes: Vec<String>,
) -> Result<Observed, DiagnoseError> {
    if let Some(session) = session.as_deref_mut() {
        // Members the given nodes list are shown too; one that cannot be reached is shown as
        // such, and the rest of the report still made.
        if let Err(err) = session.discover_members().await {
            notes.push(format!(
                "members beyond the nodes given could not all be found: {err}"
            ));
        }
    }
    // Diagnose reads every node once more; the report's views and verdict are that read's.
    let mut diagnosis = diagnose(session.as_deref_mut(), expected, files, notes).await?;
    let mut verdict = None;
    let mut snapshot = Snapshot::new(Vec::new());
    if let Some(session) = session {
        snapshot = session.snapshot().clone();
        if let Some(spec) = expected {
            verdict = plan(spec, &snapshot)
                .layout
                .map(|layout| verify(&layout, &snapshot));
        }
    }
    if expected.is_some() && verdict.is_none() && !snapshot.is_empty() {
        diagnosis.notes.push(
            "the live cluster cannot be laid out against the expected shape: no verdict (see the findings)"
                .to_owned(),
        );
    }
    Ok(Observed {
        snapshot,
        verdict,
        diagnosis,
    })
}
