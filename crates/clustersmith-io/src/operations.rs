//! The operations the CLI runs, each over a connected [`Session`]: the CLI renders their
//! results and never calls the core's planner or verifier itself.
//!
//! - [`plan_once`]: one observation, one plan (what `apply` would do first).
//! - [`verify_once`]: one observation, checked against the layout the spec asks for.
//! - [`apply`]: the reconcile loop (see [`crate::apply`]).

use clustersmith_core::observation::Observation;
use clustersmith_core::plan::{Blocker, Layout, plan};
use clustersmith_core::spec::ClusterSpec;
use clustersmith_core::verify::{Verdict, verify};

pub use crate::apply::{apply, plan_once};
use crate::error::NodeError;
use crate::session::Session;

/// What `verify` found: the live state, the nodes that did not answer and why, and either the
/// verdict against the intended layout or the blockers that leave no layout to check against.
pub struct Checked {
    pub observation: Observation,
    /// One per spec node: why it could not be observed.
    pub errors: Vec<Option<NodeError>>,
    pub outcome: Result<(Layout, Verdict), Vec<Blocker>>,
}

/// Observes every spec node once and checks it against the layout the spec asks for. Changes
/// nothing.
pub async fn verify_once(session: &mut Session, spec: &ClusterSpec) -> Checked {
    let observed = session.observe().await;
    let observation = observed.observation;
    let planned = plan(spec, &session.inventory, &observation, &session.known_ids);
    let outcome = match planned.layout {
        Some(layout) => {
            let verdict = verify(
                &layout,
                &session.inventory,
                &observation,
                &session.known_ids,
            );
            Ok((layout, verdict))
        }
        None => Err(planned.blockers),
    };
    Checked {
        observation,
        errors: observed.errors,
        outcome,
    }
}
