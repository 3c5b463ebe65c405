//! `clustersmith handoff NODE`: a primary hands its role to its fittest replica.

use std::future::Future;
use std::pin::Pin;

use clustersmith_core::operation::FailoverMode;
use clustersmith_core::snapshot::NodeKey;
use clustersmith_io::operations::handoff::{HandoffOptions, handoff};

use super::{Run, open_one};
use crate::args::{Format, HandoffArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::render::errors::report_run_error;
use crate::render::json::{self, HandoffDoc, SCHEMA_VERSION};
use crate::render::progress::with_progress;
use crate::render::verdict_text;

impl Run for HandoffArgs {
    fn name(&self) -> &'static str {
        "handoff"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            let (key, mut session) = open_one(&self.node, &self.conn, self.prefer_ipv6).await?;
            let mode = if self.force_may_lose_writes {
                FailoverMode::Force
            } else if self.takeover_without_agreement {
                FailoverMode::Takeover
            } else {
                FailoverMode::Coordinated
            };
            let options = HandoffOptions {
                timeout: self.timeout,
                to: self.to.as_deref().map(NodeKey::named),
                max_lag: self.max_lag,
                mode,
            };
            let result = with_progress(self.json(), async |on_event| {
                handoff(&mut session, &key, &options, on_event).await
            })
            .await;
            let handed = match result {
                Ok(handed) => handed,
                Err(err) => return Ok(report_run_error(&err, self.format, self.name())),
            };
            let outcome = &handed.outcome;
            match self.format {
                Format::Json => {
                    let doc = HandoffDoc {
                        schema_version: SCHEMA_VERSION,
                        command: "handoff",
                        node: key.to_string(),
                        successor: handed.successor.as_ref().map(ToString::to_string),
                        done: outcome.converged,
                        elapsed_ms: outcome.elapsed.as_millis() as u64,
                        criteria: json::criteria(&outcome.verdict),
                        waiting: outcome.waiting.clone(),
                    };
                    outln!("{}", json::to_text(&doc));
                }
                Format::Human => match (&handed.successor, outcome.converged) {
                    (None, true) => outln!("`{key}` is a replica: nothing to hand over"),
                    (Some(successor), true) => outln!(
                        "handed over in {:.2}s: `{successor}` is the primary, and `{key}` follows it with its link up",
                        outcome.elapsed.as_secs_f64()
                    ),
                    (_, false) => {
                        outln!(
                            "NOT handed over after {:.2}s:",
                            outcome.elapsed.as_secs_f64()
                        );
                        out!("{}", verdict_text(&outcome.verdict));
                        for wait in &outcome.waiting {
                            outln!("  waiting: {wait}");
                        }
                    }
                },
            }
            Ok(if outcome.converged {
                exit::OK
            } else {
                exit::DEADLINE
            })
        })
    }
}
