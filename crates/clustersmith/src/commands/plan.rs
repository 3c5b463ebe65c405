//! `clustersmith plan`: the target topology, the steps and slot moves, against live state.

use clustersmith_core::model::NodeId;
use clustersmith_core::observation::Observation;
use clustersmith_core::plan::{Layout, MoveEngine};
use clustersmith_io::apply::plan_once;
use clustersmith_io::migrate::count_keys;
use clustersmith_io::session::Session;

use super::{open, plural, report_apply_error};
use crate::args::{Format, TargetArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::render;
use crate::target::{cluster_spec, conn_opts};

pub async fn plan_cmd(args: &TargetArgs) -> anyhow::Result<u8> {
    let spec = cluster_spec(args)?;
    let conn = conn_opts(&args.conn)?;
    let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
    let (planned, obs) = match plan_once(&mut session, &spec, args.remove_unlisted).await {
        Ok(found) => found,
        Err(err) => return Ok(report_apply_error(&err, args.format, "plan")),
    };
    let labels = session.labels();
    match args.format {
        Format::Json => outln!(
            "{}",
            render::plan_json(&planned, &session.inventory, &obs, &labels)
        ),
        Format::Human => {
            if let Some(layout) = &planned.layout {
                outln!("target topology:");
                out!(
                    "{}",
                    render::topology_table(layout, &session.inventory, &obs)
                );
                for note in &layout.notes {
                    outln!("note: {note}");
                }
            }
            for blocker in &planned.blockers {
                outln!("blocked: {blocker}");
            }
            if !planned.blockers.is_empty() {
                // A blocked plan has no steps because it stopped, not because nothing differs.
                outln!("nothing can be planned until the blockers above are resolved");
            } else if !planned.has_changes() {
                outln!("no changes: the cluster matches the spec");
            } else {
                if !planned.steps.is_empty() {
                    outln!("{}:", plural(planned.steps.len(), "step", "steps"));
                    for step in &planned.steps {
                        outln!("  {}", step.describe(&labels));
                    }
                }
                if let Some(layout) = &planned.layout {
                    print_moves(&session, layout, &obs).await;
                }
            }
            for wait in &planned.waiting {
                outln!("then: {wait}");
            }
        }
    }
    Ok(if !planned.blockers.is_empty() {
        exit::ERROR
    } else if planned.has_changes() {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

/// The slot moves of the layout, with the keys each carries (counted on the source now).
async fn print_moves(session: &Session, layout: &Layout, obs: &Observation) {
    if layout.moves.is_empty() {
        return;
    }
    let label = |id: &NodeId| obs.label_of(id, &session.inventory);
    let total: usize = layout.moves.iter().map(|m| m.slots.len()).sum();
    outln!(
        "slot moves ({} in all, keys and all):",
        plural(total, "slot", "slots")
    );
    let mut keys_total = 0u64;
    for m in &layout.moves {
        let keys = match obs.index_of(&m.source) {
            Some(idx) => count_keys(&session.handles[idx], &m.slots).await.ok(),
            None => None,
        };
        keys_total += keys.unwrap_or(0);
        let ranges: Vec<String> = m.slots.ranges().iter().map(ToString::to_string).collect();
        outln!(
            "  {} -> {}: {} ({}), {}",
            label(&m.source),
            label(&m.target),
            plural(m.slots.len(), "slot", "slots"),
            ranges.join(","),
            keys.map_or_else(
                || "keys unknown".to_owned(),
                |k| plural(k as usize, "key", "keys")
            )
        );
    }
    outln!(
        "data to move: {} (CLUSTER COUNTKEYSINSLOT on each source)",
        plural(keys_total as usize, "key", "keys")
    );
    outln!("moved by: {}", MoveEngine::for_nodes(obs).describe());
}
