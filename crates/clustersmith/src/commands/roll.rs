//! `clustersmith roll NODES… --restart-cmd CMD`: a rolling restart or upgrade; and what
//! `sandbox roll` shares with it (running the roll and reporting it).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use anyhow::Context as _;
use clustersmith_core::model::ServerVersion;
use clustersmith_core::spec::{ClusterSpec, parse_node};
use clustersmith_io::operations::roll::{RollOptions, roll};
use clustersmith_io::restart::CommandRestarter;
use clustersmith_io::session::{Restarter, Session};

use super::{Run, open, plural};
use crate::args::{Format, RollArgs, RollFlags};
use crate::exit;
use crate::output::{out, outln};
use crate::render::errors::report_run_error;
use crate::render::json::{self, RollDoc, SCHEMA_VERSION};
use crate::render::progress::with_progress;
use crate::render::verdict_text;
use crate::target::conn_opts;

impl Run for RollArgs {
    fn name(&self) -> &'static str {
        "roll"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            // Checked before any connection: a template that names no node would restart the
            // same server N times.
            let restarter =
                CommandRestarter::new(&self.restart_cmd, self.restart_shell, self.restart_timeout)
                    .map_err(|e| anyhow::anyhow!("--restart-cmd: {e}"))?;
            let nodes = self
                .nodes
                .iter()
                .map(|n| parse_node(n))
                .collect::<Result<Vec<_>, _>>()
                .context("node list")?;
            let count = nodes.len();
            let spec = ClusterSpec::new(nodes, Some(count), Some(0))?;
            let conn = conn_opts(&self.conn)?;
            let mut session = open(&spec, &conn, self.prefer_ipv6).await?;
            run_roll(
                &mut session,
                Box::new(restarter),
                &self.roll,
                None,
                self.roll.state.clone(),
                self.format,
                self.name(),
            )
            .await
        })
    }
}

/// Runs the roll over an open session and reports it; returns the exit code.
pub(super) async fn run_roll(
    session: &mut Session,
    restarter: Box<dyn Restarter>,
    flags: &RollFlags,
    target: Option<ServerVersion>,
    state: Option<PathBuf>,
    format: Format,
    name: &'static str,
) -> anyhow::Result<u8> {
    let options = RollOptions {
        timeout: flags.timeout,
        failback: flags.failback,
        allow_downtime: flags.allow_downtime,
        max_lag: flags.max_lag,
        target,
        state,
        fresh: flags.fresh,
    };
    let result = with_progress(format == Format::Json, async |on_event| {
        roll(session, restarter, &options, on_event).await
    })
    .await;
    let rolled = match result {
        Ok(rolled) => rolled,
        Err(err) => return Ok(report_run_error(&err, format, name)),
    };
    let outcome = &rolled.outcome;
    let nodes = outcome.snapshot.spec_nodes().count();
    match format {
        Format::Json => {
            let doc = RollDoc {
                schema_version: SCHEMA_VERSION,
                command: name,
                done: outcome.converged,
                elapsed_ms: outcome.elapsed.as_millis() as u64,
                nodes,
                resumed_from_ms: rolled.resumed_from,
                state: (!outcome.converged).then(|| rolled.state.display().to_string()),
                criteria: json::criteria(&outcome.verdict),
                waiting: outcome.waiting.clone(),
            };
            outln!("{}", json::to_text(&doc));
        }
        Format::Human if outcome.converged => {
            outln!(
                "rolled {} in {:.1}s{}: each restarted once, back and serving",
                plural(nodes, "node", "nodes"),
                outcome.elapsed.as_secs_f64(),
                if rolled.resumed_from.is_some() {
                    " (resumed)"
                } else {
                    ""
                }
            );
            out!("{}", verdict_text(&outcome.verdict));
        }
        Format::Human => {
            outln!("NOT rolled after {:.1}s:", outcome.elapsed.as_secs_f64());
            out!("{}", verdict_text(&outcome.verdict));
            for wait in &outcome.waiting {
                outln!("  waiting: {wait}");
            }
            outln!(
                "the roll's start is kept in `{}`: run the same command again to finish it",
                rolled.state.display()
            );
        }
    }
    Ok(if outcome.converged {
        exit::OK
    } else {
        exit::DEADLINE
    })
}
