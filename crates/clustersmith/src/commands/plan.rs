//! `clustersmith plan`: the target topology, the steps and slot moves, against live state.

use std::future::Future;
use std::pin::Pin;

use clustersmith_io::operations::{Planned, plan};

use super::{Run, open, plural};
use crate::args::{Format, PlanArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::render::errors::report_run_error;
use crate::render::json::{self, PlanDoc};
use crate::render::topology_table;
use crate::target::{cluster_spec, conn_opts};

impl Run for PlanArgs {
    fn name(&self) -> &'static str {
        "plan"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            let args = &self.target;
            let spec = cluster_spec(args)?;
            let conn = conn_opts(&args.conn)?;
            let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
            let planned = match plan(&mut session, &spec, args.remove_unlisted).await {
                Ok(planned) => planned,
                Err(err) => return Ok(report_run_error(&err, self.format, self.name())),
            };
            match self.format {
                Format::Json => {
                    let doc = PlanDoc::new(
                        &planned.plan,
                        &planned.snapshot,
                        &planned.moves,
                        planned.engine.describe(),
                    );
                    outln!("{}", json::to_text(&doc));
                }
                Format::Human => print_plan(&planned),
            }
            let plan = &planned.plan;
            Ok(if !plan.blockers.is_empty() {
                exit::ERROR
            } else if plan.has_changes() {
                exit::CHANGES_PENDING
            } else {
                exit::OK
            })
        })
    }
}

fn print_plan(planned: &Planned) {
    let plan = &planned.plan;
    if let Some(layout) = &plan.layout {
        outln!("target topology:");
        out!("{}", topology_table(layout, &planned.snapshot));
        for note in &layout.notes {
            outln!("note: {note}");
        }
    }
    for blocker in &plan.blockers {
        outln!("blocked: {blocker}");
    }
    if !plan.blockers.is_empty() {
        // A blocked plan has no steps because it stopped, not because nothing differs.
        outln!("nothing can be planned until the blockers above are resolved");
    } else if !plan.has_changes() {
        outln!("no changes: the cluster matches the spec");
    } else {
        if !plan.steps.is_empty() {
            outln!("{}:", plural(plan.steps.len(), "step", "steps"));
            for step in &plan.steps {
                outln!("  {}", step.describe());
            }
        }
        print_moves(planned);
    }
    for wait in &plan.waiting {
        outln!("then: {wait}");
    }
}

/// The slot moves of the layout, with the keys each carries (counted on the source).
fn print_moves(planned: &Planned) {
    if planned.moves.is_empty() {
        return;
    }
    let total: usize = planned.moves.iter().map(|(m, _)| m.slots.len()).sum();
    outln!(
        "slot moves ({} in all, keys and all):",
        plural(total, "slot", "slots")
    );
    let mut keys_total = 0u64;
    for (m, keys) in &planned.moves {
        keys_total += keys.unwrap_or(0);
        let ranges: Vec<String> = m.slots.ranges().iter().map(ToString::to_string).collect();
        outln!(
            "  {} -> {}: {} ({}), {}",
            m.source,
            m.target,
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
    outln!("moved by: {}", planned.engine.describe());
}
