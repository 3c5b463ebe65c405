//! `roll`: a rolling restart or upgrade. Every member is restarted once, replicas first,
//! each primary after handing its role to a fit replica; see [`Roll`].
//!
//! # Resuming
//! The roll's start (each node's `run_id` then, and the primaries then, for `--failback`) is
//! kept in a small state file for as long as the roll is not done: a run killed half-way and
//! started again reads it, and the servers' run ids now say which nodes were restarted since. It is removed once every node is
//! back. Its default place is derived from the cluster's node ids, so a re-run with the same
//! arguments finds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clustersmith_core::model::{NodeId, ServerVersion};
use clustersmith_core::operation::Reads;
use clustersmith_core::operations::roll::{primaries, run_ids};
use clustersmith_core::operations::{Roll, RollPlan};
use clustersmith_core::snapshot::{NodeKey, Snapshot};

use crate::driver::{Cluster as _, Event, Outcome, RunError, RunOptions, claim, run};
use crate::session::{Restarter, Session};

pub struct RollOptions {
    pub timeout: Duration,
    pub failback: bool,
    pub allow_downtime: bool,
    pub max_lag: u64,
    /// The version every node must run at the end (known for a sandbox upgrade).
    pub target: Option<ServerVersion>,
    /// The roll's state file; default: [`default_state_path`].
    pub state: Option<PathBuf>,
    /// Start over, ignoring the state of an earlier, unfinished roll.
    pub fresh: bool,
}

/// What a roll did.
pub struct Rolled {
    pub outcome: Outcome,
    /// When the roll being finished began, if this run resumed it (ms since the epoch).
    pub resumed_from: Option<u64>,
    pub state: PathBuf,
}

/// What is kept between runs of one roll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollState {
    pub started_ms: u64,
    /// Every node when the roll began: its key's label, its id and its `run_id`.
    pub nodes: Vec<(String, NodeId, String)>,
    /// The primaries when the roll began, by node id.
    pub primaries: Vec<NodeId>,
}

impl RollState {
    /// The state of a roll beginning now: every node answers (checked by the caller).
    fn begin(snapshot: &Snapshot) -> RollState {
        let run_ids = run_ids(snapshot);
        RollState {
            started_ms: now_ms(),
            nodes: snapshot
                .views()
                .filter_map(|(node, view)| {
                    let run_id = run_ids.get(&node.key)?;
                    Some((node.key.label().to_owned(), view.id, run_id.clone()))
                })
                .collect(),
            primaries: primaries(snapshot)
                .iter()
                .filter_map(|key| snapshot.get(key)?.id())
                .collect(),
        }
    }

    pub fn render(&self) -> String {
        let mut text = String::from(
            "# clustersmith roll in progress: its start (ms since the epoch), each node's label, id and run_id then, and the primaries then\n",
        );
        text.push_str(&format!("started {}\n", self.started_ms));
        for (label, id, run_id) in &self.nodes {
            text.push_str(&format!("node {label} {id} {run_id}\n"));
        }
        for id in &self.primaries {
            text.push_str(&format!("primary {id}\n"));
        }
        text
    }

    /// `None` when the text is not a roll state (a file to leave alone).
    pub fn parse(text: &str) -> Option<RollState> {
        let mut started_ms = None;
        let mut nodes = Vec::new();
        let mut primaries = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["started", ms] => started_ms = ms.parse().ok(),
                ["node", label, id, run_id] => {
                    nodes.push((
                        (*label).to_owned(),
                        NodeId::parse(id).ok()?,
                        (*run_id).to_owned(),
                    ));
                }
                ["primary", id] => primaries.push(NodeId::parse(id).ok()?),
                _ => {}
            }
        }
        Some(RollState {
            started_ms: started_ms?,
            nodes,
            primaries,
        })
    }

    /// The key a node kept in the state has in this run: the one with its label, else the one
    /// with its id (a re-run given other names).
    fn key_of(snapshot: &Snapshot, label: &str, id: &NodeId) -> Option<NodeKey> {
        snapshot
            .iter()
            .find(|r| r.key.label() == label)
            .or_else(|| snapshot.iter().find(|r| r.id().as_ref() == Some(id)))
            .map(|r| r.key.clone())
    }
}

/// `$XDG_STATE_HOME/clustersmith/roll-<cluster>.state` (else under `~/.local/state`), named
/// after the node ids the cluster lists (FNV-1a of the sorted ids): the same cluster finds
/// the same file from any of its nodes.
pub fn default_state_path(snapshot: &Snapshot) -> PathBuf {
    let mut ids: Vec<String> = snapshot
        .views()
        .flat_map(|(_, view)| {
            std::iter::once(view.id.to_string()).chain(
                view.nodes
                    .peers()
                    .filter(|p| !p.is_handshake())
                    .map(|p| p.id.to_string()),
            )
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ids.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("clustersmith/roll-{hash:016x}.state"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn state_error(path: &Path, what: &str, error: std::io::Error) -> RunError {
    RunError::Action {
        action: format!("{what} the roll's state `{}`", path.display()),
        error: error.to_string(),
    }
}

/// Rolls the cluster the session's nodes belong to (members found from their views),
/// restarting each through `restarter`.
pub async fn roll(
    session: &mut Session,
    restarter: Box<dyn Restarter>,
    options: &RollOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Rolled, RunError> {
    session
        .discover_members()
        .await
        .map_err(|e| RunError::Preflight(vec![e]))?;
    claim(session).await?;
    session.set_restarter(restarter);
    let path = options
        .state
        .clone()
        .unwrap_or_else(|| default_state_path(session.snapshot()));
    let kept = if options.fresh {
        None
    } else {
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(RollState::parse(&text).ok_or_else(|| {
                RunError::Action {
                    action: format!("read the roll's state `{}`", path.display()),
                    error: "not a clustersmith roll state; remove it or give --state another file"
                        .to_owned(),
                }
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(state_error(&path, "read", e)),
        }
    };
    let resumed_from = kept.as_ref().map(|s| s.started_ms);
    let state = match kept {
        Some(state) => state,
        None => {
            // A roll starts from every node's run id: one that does not answer now could not
            // be told apart later from one restarted since.
            let down = session.read(&Reads::All).await;
            if !down.is_empty() {
                return Err(RunError::Preflight(down));
            }
            let state = RollState::begin(session.snapshot());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| state_error(&path, "create", e))?;
            }
            std::fs::write(&path, state.render()).map_err(|e| state_error(&path, "write", e))?;
            state
        }
    };
    if let Some(started) = resumed_from {
        on_event(Event::Status(format!(
            "resuming the roll begun {} s ago (state in `{}`; --fresh starts over)",
            now_ms().saturating_sub(started) / 1000,
            path.display()
        )));
    }
    let snapshot = session.snapshot();
    let run_ids: BTreeMap<NodeKey, String> = state
        .nodes
        .iter()
        .filter_map(|(label, id, run_id)| {
            Some((RollState::key_of(snapshot, label, id)?, run_id.clone()))
        })
        .collect();
    let primaries: Vec<NodeKey> = state
        .primaries
        .iter()
        .filter_map(|id| {
            let label = state.nodes.iter().find(|(_, i, _)| i == id)?.0.as_str();
            RollState::key_of(snapshot, label, id)
        })
        .collect();
    let mut operation = Roll::new(RollPlan {
        run_ids,
        primaries,
        failback: options.failback,
        allow_downtime: options.allow_downtime,
        max_lag: options.max_lag,
        target: options.target,
    });
    let outcome = run(
        session,
        &mut operation,
        &RunOptions::new(options.timeout),
        on_event,
    )
    .await?;
    if outcome.converged {
        std::fs::remove_file(&path).map_err(|e| state_error(&path, "remove", e))?;
    }
    Ok(Rolled {
        outcome,
        resumed_from,
        state: path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reads_back_what_was_written() {
        let id = |text: &str| NodeId::parse(text).unwrap();
        let state = RollState {
            started_ms: 1_765_000_000_123,
            nodes: vec![(
                "redis-1.internal:6379".to_owned(),
                id("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"),
                "8a1c7f1b8e2f4f0b9d3c6a5e4b3a2f1e0d9c8b7a".to_owned(),
            )],
            primaries: vec![
                id("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"),
                id("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"),
            ],
        };
        assert_eq!(RollState::parse(&state.render()), Some(state));
        assert_eq!(RollState::parse("bind 127.0.0.1\n"), None);
    }
}
