//! What a run that changes the cluster ended with (`apply`, `sandbox up`): the topology, the
//! notes, and converged or not with what it still waits for.

use clustersmith_io::driver::Outcome;

use super::json::{self, ApplyDoc, SCHEMA_VERSION};
use super::{topology_table, verdict_text};
use crate::args::Format;
use crate::commands::plural;
use crate::exit;
use crate::output::{out, outln};

/// Prints the outcome and returns the exit code: 0 converged, 3 not by the deadline.
pub fn print_outcome(outcome: &Outcome, format: Format, command: &'static str) -> u8 {
    let notes = outcome
        .layout
        .as_ref()
        .map(|l| l.notes.clone())
        .unwrap_or_default();
    match format {
        Format::Json => {
            let doc = ApplyDoc {
                schema_version: SCHEMA_VERSION,
                command,
                converged: outcome.converged,
                elapsed_ms: outcome.elapsed.as_millis() as u64,
                rounds: outcome.rounds,
                commands_sent: outcome.steps_sent,
                slots_moved: outcome.slots_moved,
                topology: outcome
                    .layout
                    .as_ref()
                    .map(|l| json::topology(l, &outcome.snapshot))
                    .unwrap_or_default(),
                criteria: json::criteria(&outcome.verdict),
                notes,
                waiting: outcome.waiting.clone(),
            };
            outln!("{}", json::to_text(&doc));
        }
        Format::Human => {
            if let Some(layout) = &outcome.layout {
                out!("{}", topology_table(layout, &outcome.snapshot));
            }
            for note in &notes {
                outln!("note: {note}");
            }
            if outcome.converged {
                let moved = if outcome.slots_moved > 0 {
                    format!(
                        ", {} moved with their keys",
                        plural(outcome.slots_moved, "slot", "slots")
                    )
                } else {
                    String::new()
                };
                outln!(
                    "converged in {:.2}s: {}, {} sent{moved}; all {} criteria met",
                    outcome.elapsed.as_secs_f64(),
                    plural(outcome.rounds, "round", "rounds"),
                    plural(outcome.steps_sent, "command", "commands"),
                    outcome.verdict.criteria.len()
                );
            } else {
                outln!(
                    "NOT converged after {:.2}s ({}, {} sent):",
                    outcome.elapsed.as_secs_f64(),
                    plural(outcome.rounds, "round", "rounds"),
                    plural(outcome.steps_sent, "command", "commands")
                );
                out!("{}", verdict_text(&outcome.verdict));
                for wait in &outcome.waiting {
                    outln!("  waiting: {wait}");
                }
            }
        }
    }
    if outcome.converged {
        exit::OK
    } else {
        exit::DEADLINE
    }
}
