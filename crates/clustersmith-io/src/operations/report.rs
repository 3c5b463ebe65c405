//! `report`: what `verify` and `diagnose` read, together: every member's live view (the nodes
//! given and the members their views list), the verdict against the expected shape when one
//! is given, and diagnose's findings. Changes nothing.

use clustersmith_core::operation::Reads;
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
    let mut snapshot = Snapshot::new(Vec::new());
    let mut verdict = None;
    if let Some(session) = session.as_deref_mut() {
        // Members the given nodes list are shown too; one that cannot be reached is shown as
        // such, and the rest of the report still made.
        if let Err(err) = session.discover_members().await {
            notes.push(format!(
                "members beyond the nodes given could not all be found: {err}"
            ));
        }
        session.read_nodes(&Reads::All).await;
        snapshot = session.snapshot().clone();
        if let Some(spec) = expected {
            match plan(spec, &snapshot).layout {
                Some(layout) => verdict = Some(verify(&layout, &snapshot)),
                None => notes.push(
                    "the live cluster cannot be laid out against the expected shape: no verdict (see the findings)"
                        .to_owned(),
                ),
            }
        }
    }
    let diagnosis = diagnose(session, expected, files, notes).await?;
    Ok(Observed {
        snapshot,
        verdict,
        diagnosis,
    })
}
