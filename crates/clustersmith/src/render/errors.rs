//! Refusals and failures, for people (stderr) and for scripts (the one JSON document on
//! stdout): node errors with each distinct hint once, a run's refusal, a slot move that
//! stopped.

use clustersmith_io::driver::RunError;
use clustersmith_io::error::{NodeError, SlotStepOutcome};
use clustersmith_io::migrate::MoveError;

use super::json::{self, ErrorDoc, NodeErrorJson, OtherRunJson};
use crate::args::Format;
use crate::commands::plural;
use crate::exit;
use crate::output::{errln, outln};

/// Reports the errors that come from clustersmith's own settings (credentials, permissions,
/// TLS); true when there were any. They say nothing about the cluster, so a command that
/// meets them gives no verdict and exits 2.
pub fn refused_settings<'a>(
    command: &str,
    format: Format,
    errors: impl Iterator<Item = &'a NodeError>,
) -> bool {
    let refused: Vec<&NodeError> = errors.filter(|e| e.is_input_error()).collect();
    if refused.is_empty() {
        return false;
    }
    let headline = format!(
        "cannot {command}: {} refused the connection settings",
        plural(refused.len(), "node", "nodes")
    );
    errln!("error: {headline}");
    report_node_errors(refused.iter().copied());
    if format == Format::Json {
        let mut doc = ErrorDoc::new(command, exit::ERROR, &headline);
        doc.nodes = Some(node_errors_json(&refused));
        outln!("{}", json::to_text(&doc));
    }
    true
}

/// Each error on its line, then each distinct hint once, with the nodes it concerns (the same
/// hint for six nodes is one line, not six).
pub fn report_node_errors<'a>(errors: impl Iterator<Item = &'a NodeError>) {
    let errors: Vec<&NodeError> = errors.collect();
    for node_err in &errors {
        errln!("  {node_err}");
    }
    for (hint, nodes) in hints_by_node(errors) {
        if nodes.len() == 1 {
            errln!("  hint: {hint}");
        } else {
            errln!("  hint ({}): {hint}", nodes.join(", "));
        }
    }
}

/// The distinct hints of `errors`, in first-seen order, each with the nodes it concerns.
pub fn hints_by_node<'a>(
    errors: impl IntoIterator<Item = &'a NodeError>,
) -> Vec<(&'static str, Vec<&'a str>)> {
    let mut hints: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for node_err in errors {
        if let Some(hint) = node_err.hint() {
            match hints.iter_mut().find(|(h, _)| *h == hint) {
                Some((_, nodes)) => nodes.push(&node_err.node),
                None => hints.push((hint, vec![&node_err.node])),
            }
        }
    }
    hints
}

fn node_errors_json(errors: &[&NodeError]) -> Vec<NodeErrorJson> {
    errors
        .iter()
        .map(|e| NodeErrorJson {
            node: e.node.clone(),
            error: e.to_string(),
            hint: e.hint(),
        })
        .collect()
}

/// Prints a run's refusal or failure (on stderr, and as the JSON document on stdout with
/// `--format json`) and returns its exit code.
pub fn report_run_error(err: &RunError, format: Format, command: &str) -> u8 {
    let mut doc = ErrorDoc::new(command, exit::ERROR, "");
    let headline = match err {
        RunError::Preflight(errors) => {
            errln!("error: {err}");
            report_node_errors(errors.iter());
            let refs: Vec<&NodeError> = errors.iter().collect();
            doc.nodes = Some(node_errors_json(&refs));
            err.to_string()
        }
        RunError::Blocked { blockers, changed } => {
            let headline = if *changed {
                "refusing to continue (earlier rounds did change the cluster)"
            } else {
                "refusing to change the cluster; nothing was changed"
            };
            errln!("error: {headline}");
            for blocker in blockers {
                errln!("  {blocker}");
            }
            doc.blockers = Some(blockers.iter().map(ToString::to_string).collect());
            doc.changed = Some(*changed);
            headline.to_owned()
        }
        RunError::Fatal(node_err) => {
            errln!("error: {node_err}");
            if let Some(hint) = node_err.hint() {
                errln!("  hint: {hint}");
            }
            doc.nodes = Some(node_errors_json(&[node_err]));
            node_err.to_string()
        }
        RunError::Move(move_err) => return report_move_error(move_err, format, command),
        RunError::Action { .. } => {
            errln!("error: {err}");
            errln!(
                "  hint: the node is left as the failed step left it; run the same command again once the cause is fixed: it picks up from what the servers show"
            );
            err.to_string()
        }
        RunError::Concurrent(others) => {
            errln!("error: {err}");
            for (node, client) in others {
                errln!("  `{node}` lists: {client}");
            }
            errln!(
                "  hint: wait for it to finish (or stop it), then run again; a run killed half-way is finished by the next one"
            );
            doc.others = Some(
                others
                    .iter()
                    .map(|(node, client)| OtherRunJson {
                        node: node.clone(),
                        client: client.clone(),
                    })
                    .collect(),
            );
            err.to_string()
        }
    };
    if format == Format::Json {
        doc.error = headline;
        outln!("{}", json::to_text(&doc));
    }
    exit::ERROR
}

/// What to do after a move step failed, from how it failed: a node that did not answer is
/// waited for; a node that answered with a refusal saw the cluster change under the move (a
/// failover gives the slot's owner away: `MOVED`; a forgotten node: `Unknown node`), and
/// a new run plans from the cluster as it is now.
fn resume_hint(error: &NodeError) -> &'static str {
    if error.is_connection_error() {
        "run apply again once the node answers: it finishes the slot from where it stopped"
    } else {
        "the node answered, but the cluster changed under the move (a failover moves a slot's owner, a forgotten node is unknown to its peers): run apply again, which plans from the cluster as it is now and finishes the slot"
    }
}

/// A slot move that stopped: the slot, the state it is left in, and whether a re-run
/// continues it (exit 3) or the operator must decide first (a key on both sides: exit 2).
fn report_move_error(err: &MoveError, format: Format, command: &str) -> u8 {
    let (code, state, hint) = match err {
        MoveError::Slot { state, error, .. } => {
            if error.slot_step_outcome() == SlotStepOutcome::BusyKey {
                (
                    exit::ERROR,
                    *state,
                    "a key of this slot already exists on the target: compare both copies, delete the one to drop, then run again (or pass --replace to overwrite the target's copy)",
                )
            } else {
                (exit::DEADLINE, *state, resume_hint(error))
            }
        }
        MoveError::UnknownNode(_) => (exit::DEADLINE, "unchanged", "run apply again"),
        MoveError::AtomicUnsupported => (
            exit::ERROR,
            "unchanged",
            "use --move-engine auto or classic",
        ),
        // The server hands slots over only when a job succeeds: they stay with the source.
        MoveError::Job { .. } => (
            exit::DEADLINE,
            "with its source (an atomic migration moves nothing unless it completes)",
            "see CLUSTER GETSLOTMIGRATIONS on the source for the job's message, then run apply again",
        ),
        MoveError::Node(err) => (
            if err.is_input_error() {
                exit::ERROR
            } else {
                exit::DEADLINE
            },
            "unchanged, or moving in the servers (run apply again to follow it)",
            err.hint().unwrap_or_else(|| resume_hint(err)),
        ),
    };
    errln!("error: {err}");
    errln!("  slot left: {state}");
    errln!("  hint: {hint}");
    if format == Format::Json {
        let mut doc = ErrorDoc::new(command, code, &err.to_string());
        doc.slot_state = Some(state);
        doc.hint = Some(hint);
        outln!("{}", json::to_text(&doc));
    }
    code
}

#[cfg(test)]
mod tests {
    use clustersmith_io::error::NodeErrorKind;

    use super::*;

    fn failed(kind: NodeErrorKind) -> NodeError {
        NodeError {
            node: "10.0.0.1:6379".to_owned(),
            op: "migrate keys",
            kind,
        }
    }

    /// Issue 23 §4: "once the node answers" only when it did not answer.
    #[test]
    fn the_resume_hint_says_what_happened() {
        assert!(resume_hint(&failed(NodeErrorKind::Timeout)).contains("once the node answers"));
        assert!(
            resume_hint(&failed(NodeErrorKind::ConnectionRefused))
                .contains("once the node answers")
        );
        for (code, detail) in [
            ("MOVED", "3999 10.0.0.2:6379"),
            ("ERR", "Unknown node 1a2b3c4d5e6f"),
        ] {
            let hint = resume_hint(&failed(NodeErrorKind::Reply {
                code: code.to_owned(),
                detail: detail.to_owned(),
            }));
            assert!(hint.contains("the node answered"), "{code}: {hint}");
            assert!(!hint.contains("once the node answers"), "{code}: {hint}");
        }
    }
}
