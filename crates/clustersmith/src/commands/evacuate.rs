//! `clustersmith evacuate NODE`: a node's slots and replicas moved to the primaries that stay.

use std::future::Future;
use std::pin::Pin;

use clustersmith_io::operations::evacuate::{EvacuateOptions, evacuate};

use super::{Run, open_one, plural};
use crate::args::{EvacuateArgs, Format};
use crate::exit;
use crate::output::{out, outln};
use crate::render::errors::report_run_error;
use crate::render::json::{self, EvacuateDoc, RehomedJson, SCHEMA_VERSION};
use crate::render::progress::with_progress;
use crate::render::verdict_text;

impl Run for EvacuateArgs {
    fn name(&self) -> &'static str {
        "evacuate"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            let (key, mut session) = open_one(&self.node, &self.conn, self.prefer_ipv6).await?;
            let options = EvacuateOptions {
                timeout: self.timeout,
            };
            let result = with_progress(self.json(), async |on_event| {
                evacuate(&mut session, &key, &options, on_event).await
            })
            .await;
            let evacuated = match result {
                Ok(evacuated) => evacuated,
                Err(err) => return Ok(report_run_error(&err, self.format, self.name())),
            };
            let outcome = &evacuated.outcome;
            match self.format {
                Format::Json => {
                    let doc = EvacuateDoc {
                        schema_version: SCHEMA_VERSION,
                        command: "evacuate",
                        node: key.to_string(),
                        done: outcome.converged,
                        elapsed_ms: outcome.elapsed.as_millis() as u64,
                        slots_moved: outcome.slots_moved,
                        rehomed: evacuated
                            .homes
                            .iter()
                            .map(|(replica, primary)| RehomedJson {
                                replica: replica.to_string(),
                                primary: primary.to_string(),
                            })
                            .collect(),
                        criteria: json::criteria(&outcome.verdict),
                        waiting: outcome.waiting.clone(),
                    };
                    outln!("{}", json::to_text(&doc));
                }
                Format::Human if outcome.converged => {
                    if outcome.slots_moved == 0 && evacuated.homes.is_empty() {
                        outln!(
                            "`{key}` owns no slot and no replica follows it: nothing to evacuate"
                        );
                    } else {
                        outln!(
                            "evacuated in {:.2}s: `{key}` owns no slot ({} moved off it this run)",
                            outcome.elapsed.as_secs_f64(),
                            plural(outcome.slots_moved, "slot", "slots")
                        );
                    }
                    for (replica, primary) in &evacuated.homes {
                        outln!("  replica `{replica}` follows `{primary}`");
                    }
                }
                Format::Human => {
                    outln!("NOT evacuated after {:.2}s:", outcome.elapsed.as_secs_f64());
                    out!("{}", verdict_text(&outcome.verdict));
                    for wait in &outcome.waiting {
                        outln!("  waiting: {wait}");
                    }
                }
            }
            Ok(if outcome.converged {
                exit::OK
            } else {
                exit::DEADLINE
            })
        })
    }
}
