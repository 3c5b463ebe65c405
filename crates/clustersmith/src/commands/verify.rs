//! `clustersmith verify`: the live cluster against the expected topology, criterion by criterion.

use std::future::Future;
use std::pin::Pin;

use clustersmith_io::operations::verify;

use super::{Run, open};
use crate::args::{Format, VerifyArgs, VerifyFormat};
use crate::exit;
use crate::output::{errln, out, outln};
use crate::render::errors::{hints_by_node, refused_settings};
use crate::render::json::{self, SCHEMA_VERSION, VerifyDoc};
use crate::render::prometheus::exposition;
use crate::render::{topology_table, verdict_text};
use crate::target::{cluster_spec, conn_opts};

impl Run for VerifyArgs {
    fn name(&self) -> &'static str {
        "verify"
    }

    fn json(&self) -> bool {
        self.format == VerifyFormat::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            let args = &self.target;
            let spec = cluster_spec(args)?;
            let conn = conn_opts(&args.conn)?;
            let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
            let checked = verify(&mut session, &spec).await;
            // Refusals go to stderr in every format but JSON, whose one document says it.
            let errors_format = if self.json() {
                Format::Json
            } else {
                Format::Human
            };
            if refused_settings(self.name(), errors_format, checked.errors.iter()) {
                return Ok(exit::ERROR);
            }
            let snapshot = &checked.snapshot;
            let (layout, verdict) = match checked.outcome {
                Ok(found) => found,
                Err(blockers) => {
                    match self.format {
                        VerifyFormat::Prometheus => {
                            out!("{}", exposition(None, snapshot, unix_now()));
                            for blocker in &blockers {
                                errln!("FAIL: {blocker}");
                            }
                        }
                        VerifyFormat::Json => {
                            let doc = VerifyDoc {
                                schema_version: SCHEMA_VERSION,
                                command: "verify",
                                passed: false,
                                topology: None,
                                // Not evaluated: with a blocker there is no target layout to
                                // check against.
                                criteria: json::unchecked_criteria(
                                    "blocked: the live cluster cannot match the spec",
                                ),
                                notes: None,
                                blockers: Some(blockers.iter().map(ToString::to_string).collect()),
                            };
                            outln!("{}", json::to_text(&doc));
                        }
                        VerifyFormat::Human => {
                            outln!("FAIL: the live cluster cannot match the spec:");
                            for blocker in &blockers {
                                outln!("  {blocker}");
                            }
                        }
                    }
                    return Ok(exit::VERIFY_FAILED);
                }
            };
            match self.format {
                VerifyFormat::Prometheus => {
                    out!("{}", exposition(Some(&verdict), snapshot, unix_now()));
                }
                VerifyFormat::Json => {
                    let doc = VerifyDoc {
                        schema_version: SCHEMA_VERSION,
                        command: "verify",
                        passed: verdict.passed(),
                        topology: Some(json::topology(&layout, snapshot)),
                        criteria: json::criteria(&verdict),
                        notes: Some(layout.notes.clone()),
                        blockers: None,
                    };
                    outln!("{}", json::to_text(&doc));
                }
                VerifyFormat::Human => {
                    out!("{}", topology_table(&layout, snapshot));
                    out!("{}", verdict_text(&verdict));
                    for note in &layout.notes {
                        outln!("note: {note}");
                    }
                    for (hint, nodes) in hints_by_node(checked.errors.iter()) {
                        outln!("hint for {}: {hint}", nodes.join(", "));
                    }
                    outln!("{}", if verdict.passed() { "PASS" } else { "FAIL" });
                }
            }
            Ok(if verdict.passed() {
                exit::OK
            } else {
                exit::VERIFY_FAILED
            })
        })
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
