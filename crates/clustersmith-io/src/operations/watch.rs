//! `watch`: the cluster read again and again, one read round per interval (each node's replies
//! pipelined), with what changed since the last read. Sends nothing that changes anything.

use std::time::{Duration, Instant};

use clustersmith_core::operation::Reads;
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::watch::{Change, changes};

use crate::error::NodeError;
use crate::session::Session;

pub struct Watcher<'a> {
    session: &'a mut Session,
    last: Option<Snapshot>,
}

/// One read round.
pub struct Tick {
    pub snapshot: Snapshot,
    /// What changed since the previous round (nothing on the first).
    pub changes: Vec<Change>,
    pub errors: Vec<NodeError>,
    /// How long the round took.
    pub read: Duration,
}

impl<'a> Watcher<'a> {
    pub fn new(session: &'a mut Session) -> Watcher<'a> {
        Watcher {
            session,
            last: None,
        }
    }

    /// Reads every node once (members joining are found through the views).
    pub async fn tick(&mut self) -> Tick {
        let started = Instant::now();
        let errors = self.session.read_nodes(&Reads::All).await;
        // A member that joined since is found in these views (and read once, on its own);
        // one that cannot be reached is shown so.
        let _ = self.session.add_listed_members().await;
        let snapshot = self.session.snapshot().clone();
        let found = self
            .last
            .as_ref()
            .map(|last| changes(last, &snapshot))
            .unwrap_or_default();
        self.last = Some(snapshot.clone());
        Tick {
            snapshot,
            changes: found,
            errors,
            read: started.elapsed(),
        }
    }
}
