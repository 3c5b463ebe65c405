//! A resolved and connected set of nodes: the snapshot of them, kept current by reads, and
//! the verbs the driver uses on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clustersmith_core::diagnose::{AtWork, SlotMigration};
use clustersmith_core::model::NodeId;
use clustersmith_core::operation::{FailoverMode, Reads};
use clustersmith_core::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use clustersmith_core::plan::{MoveEngine, SlotMove, Step, Unlisted};
use clustersmith_core::snapshot::{NodeKey, NodeRecord, NodeState, NodeView, Snapshot};
use clustersmith_core::spec::ClusterSpec;
use futures::future::join_all;

use crate::conn::{ConnOpts, Endpoint, NodeHandle, TlsMaterial, value_text};
use crate::driver::Cluster;
use crate::error::{NodeError, NodeErrorKind};
use crate::migrate::{MigrateAuth, MoveError, MoveNode, MoveOptions, MoveProgress, run_moves};
use crate::resolve::{ResolveError, resolve};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("failed to load TLS material: {0}")]
    Tls(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// How a run restarts a node's server (a roll): the operator's command, or the sandbox's own.
pub trait Restarter {
    /// Restarts the server of `node`; returns once it was (re)started, or why it failed.
    fn restart<'a>(
        &'a self,
        node: &'a NodeRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 'a>>;
}

pub struct Session {
    snapshot: Snapshot,
    handles: HashMap<NodeKey, Arc<NodeHandle>>,
    restarter: Option<Box<dyn Restarter>>,
    /// Resolution notes (names with several addresses).
    pub notes: Vec<String>,
    opts: ConnOpts,
    tls: Option<TlsMaterial>,
}

impl Session {
    pub async fn connect(
        spec: &ClusterSpec,
        opts: &ConnOpts,
        prefer_ipv6: bool,
    ) -> Result<Session, SessionError> {
        let resolved = resolve(
            spec,
            prefer_ipv6,
            opts.connect_timeout.max(Duration::from_secs(5)),
        )
        .await?;
        let tls = opts
            .tls
            .as_ref()
            .map(TlsMaterial::load)
            .transpose()
            .map_err(SessionError::Tls)?;
        let mut handles = HashMap::new();
        for (record, endpoint) in resolved.records.iter().zip(resolved.endpoints) {
            let handle = NodeHandle::new(endpoint, opts, tls.as_ref())?;
            handles.insert(record.key.clone(), Arc::new(handle));
        }
        Ok(Session {
            snapshot: Snapshot::new(resolved.records),
            handles,
            restarter: None,
            notes: resolved.notes,
            opts: opts.clone(),
            tls,
        })
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Gives the run a way to restart nodes (a roll).
    pub fn set_restarter(&mut self, restarter: Box<dyn Restarter>) {
        self.restarter = Some(restarter);
    }

    /// The connection to a node.
    pub fn handle(&self, key: &NodeKey) -> Option<&Arc<NodeHandle>> {
        self.handles.get(key)
    }

    /// A connection to an endpoint that is none of the session's nodes, with the session's
    /// TLS, credentials and timeouts (where clients are sent, tried as they would).
    pub(crate) fn client_handle(&self, endpoint: Endpoint) -> Result<NodeHandle, NodeError> {
        NodeHandle::new(endpoint, &self.opts, self.tls.as_ref())
    }

    /// How long a connection or a name lookup may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.opts.connect_timeout
    }

    /// Every node with a view, as the migration engine needs it.
    fn move_nodes(&self) -> Vec<MoveNode> {
        self.snapshot
            .views()
            .filter_map(|(node, view)| {
                Some(MoveNode {
                    key: node.key.clone(),
                    id: view.id,
                    handle: Arc::clone(self.handles.get(&node.key)?),
                    ip: node.ip,
                    port: node.port,
                })
            })
            .collect()
    }

    /// Reads the nodes, then adds every member they list (past the handshake, with an
    /// address) that is not one of them, keyed by the address it is listed at, and reads
    /// those: for the operations that take one node and find its cluster (a handoff, a drain).
    pub async fn discover_members(&mut self) -> Result<(), NodeError> {
        self.read_nodes(&Reads::All).await;
        self.add_listed_members().await
    }

    /// Adds the members the last read views list that are not nodes of the session yet, and
    /// reads just those (nothing when there are none): a watch that reads every node each
    /// round finds members joining without a second round.
    pub async fn add_listed_members(&mut self) -> Result<(), NodeError> {
        let mut found: Vec<(std::net::IpAddr, u16)> = Vec::new();
        for (_, view) in self.snapshot.views() {
            for entry in view.nodes.peers() {
                let Some(ip) = entry.addr.ip else { continue };
                let known = self
                    .snapshot
                    .iter()
                    .any(|r| r.ip == ip && r.port == entry.addr.port);
                if entry.is_handshake() || known || found.contains(&(ip, entry.addr.port)) {
                    continue;
                }
                found.push((ip, entry.addr.port));
            }
        }
        let mut added = std::collections::BTreeSet::new();
        for (ip, port) in found {
            let label = std::net::SocketAddr::new(ip, port).to_string();
            let key = NodeKey::named(&label);
            let endpoint = Endpoint {
                label,
                hostname: None,
                ip,
                port,
            };
            let handle = NodeHandle::new(endpoint, &self.opts, self.tls.as_ref())?;
            self.handles.insert(key.clone(), Arc::new(handle));
            self.snapshot
                .add(NodeRecord::spec(key.clone(), ip, port, None, 1));
            added.insert(key);
        }
        if !added.is_empty() {
            self.read_nodes(&Reads::Some(added)).await;
        }
        Ok(())
    }

    /// Reads `CLUSTER NODES`, `CLUSTER INFO` and `INFO` from the nodes `reads` names, at once,
    /// in one pipelined round trip per node; the others keep their last views. Returns the
    /// errors of the nodes that could not be read.
    pub async fn read_nodes(&mut self, reads: &Reads) -> Vec<NodeError> {
        let wanted: Vec<(NodeKey, Arc<NodeHandle>)> = self
            .snapshot
            .keys()
            .filter(|key| reads.includes(key))
            .filter_map(|key| Some((key.clone(), Arc::clone(self.handles.get(key)?))))
            .collect();
        let results = join_all(wanted.iter().map(|(_, handle)| observe_node(handle))).await;
        let mut errors = Vec::new();
        for ((key, _), result) in wanted.into_iter().zip(results) {
            let Some(record) = self.snapshot.get_mut(&key) else {
                continue;
            };
            match result {
                Ok(view) => record.set_state(NodeState::Seen(Box::new(view))),
                Err(err) => {
                    record.set_state(NodeState::Unreachable(err.kind.to_string()));
                    errors.push(err);
                }
            }
        }
        errors
    }

    /// Work under way on the cluster, from the nodes that answered at the last read: every
    /// `clustersmith-apply:<pid>` connection (other than this session's), and, on servers with
    /// atomic slot migration, the active export jobs. What a node refuses to show (an ACL
    /// without CLIENT LIST) is left out.
    pub async fn at_work(&self) -> AtWork {
        let reads = self.snapshot.views().map(|(node, view)| async move {
            let handle = self.handles.get(&node.key)?;
            let mut applies = Vec::new();
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("LIST").arg("TYPE").arg("normal");
            if let Ok(list) = handle.query("list clients", &cmd).await {
                let text = value_text(&list).unwrap_or_default();
                for line in text.lines() {
                    if let Some(name) = line
                        .split(' ')
                        .find_map(|f| f.strip_prefix("name="))
                        .filter(|n| n.starts_with(crate::driver::RUN_CLIENT_PREFIX))
                    {
                        applies.push((handle.label().to_owned(), name.to_owned()));
                    }
                }
            }
            let mut migrations = Vec::new();
            if view
                .version()
                .is_some_and(|v| v.has_atomic_slot_migration())
                && let Ok(jobs) = crate::migrate::jobs(handle).await
            {
                migrations.extend(
                    jobs.into_iter()
                        .filter(|j| j.operation == "EXPORT" && j.is_active())
                        .map(|j| SlotMigration {
                            node: handle.label().to_owned(),
                            slots: j.slot_ranges,
                            target: j.target_node,
                            state: j.state,
                        }),
                );
            }
            Some((applies, migrations))
        });
        let mut at_work = AtWork::default();
        for (applies, migrations) in join_all(reads).await.into_iter().flatten() {
            at_work.applies.extend(applies);
            at_work.migrations.extend(migrations);
        }
        at_work
    }
}

/// The real cluster the driver drives.
impl Cluster for Session {
    fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    async fn read(&mut self, reads: &Reads) -> Vec<NodeError> {
        self.read_nodes(reads).await
    }

    /// Sends steps: every phase-0 step (epochs, slots) on all nodes before any phase-1 step
    /// (meet, replicate); within a phase, nodes run concurrently, each as pipelines of at most
    /// `CHUNK` commands, with at most `IN_FLIGHT` commands of the run on the wire at once. The
    /// first round at 300 nodes sends 45 000 MEETs: built and sent all at once, their
    /// commands, packed copies and replies were a third of `apply`'s peak heap. At 100 nodes
    /// (under 5 000 MEETs) everything still goes at once.
    async fn execute(&self, steps: &[Step]) -> Vec<(usize, NodeError)> {
        let mut failed = Vec::new();
        let in_flight = tokio::sync::Semaphore::new(IN_FLIGHT);
        for phase in [0, 1] {
            let mut per_node: HashMap<&NodeKey, Vec<usize>> = HashMap::new();
            for (at, step) in steps.iter().enumerate().filter(|(_, s)| s.phase() == phase) {
                per_node.entry(step.node()).or_default().push(at);
            }
            let in_flight = &in_flight;
            let runs = per_node.into_iter().map(|(key, at)| {
                let handle = self.handles.get(key);
                async move {
                    let Some(handle) = handle else {
                        return Vec::new();
                    };
                    let mut failed = Vec::new();
                    let mut chunks = at.chunks(CHUNK);
                    while let Some(chunk) = chunks.next() {
                        let permits = u32::try_from(chunk.len()).expect("CHUNK fits in u32");
                        let _permit = in_flight.acquire_many(permits).await;
                        let mut pipe = redis::pipe();
                        for step in chunk {
                            pipe.add_command(command(&steps[*step]));
                        }
                        match handle.pipeline("send steps", &pipe).await {
                            Ok(replies) => {
                                for (step, reply) in chunk.iter().zip(replies) {
                                    if let Err(mut err) = reply {
                                        err.op = steps[*step].operation();
                                        failed.push((*step, err));
                                    }
                                }
                            }
                            Err(err) => {
                                // The node did not answer at all: its other chunks fail the
                                // same way now, not after a connect timeout each.
                                let rest = chunks.by_ref().flatten();
                                failed.extend(
                                    chunk.iter().chain(rest).map(|step| (*step, err.clone())),
                                );
                            }
                        }
                    }
                    failed
                }
            });
            for batch in join_all(runs).await {
                failed.extend(batch);
            }
        }
        failed.sort_unstable_by_key(|(at, _)| *at);
        failed
    }

    async fn move_slots(
        &self,
        engine: MoveEngine,
        moves: &[SlotMove],
        options: &MoveOptions,
        progress: &mut dyn FnMut(&MoveProgress),
    ) -> Result<MoveProgress, MoveError> {
        // `SETSLOT NODE` goes to every primary of the spec, not to leaving ones.
        let primaries: Vec<NodeId> = self
            .snapshot
            .spec_nodes()
            .filter_map(|n| n.view())
            .filter(|v| !v.myself().is_replica())
            .map(|v| v.id)
            .collect();
        let nodes = self.move_nodes();
        run_moves(engine, moves, &nodes, &primaries, options, progress).await
    }

    async fn failover(&self, replica: &NodeKey, mode: FailoverMode) -> Result<(), NodeError> {
        let handle = self.handles.get(replica).ok_or_else(|| NodeError {
            node: replica.to_string(),
            op: "fail over",
            kind: NodeErrorKind::Other("not a node of this run".to_owned()),
        })?;
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("FAILOVER");
        if let Some(word) = mode.argument() {
            cmd.arg(word);
        }
        handle.query("fail over", &cmd).await.map(|_| ())
    }

    async fn restart(&self, node: &NodeKey) -> Result<(), String> {
        let record = self
            .snapshot
            .get(node)
            .ok_or_else(|| format!("`{node}` is not a node of this run"))?;
        match &self.restarter {
            Some(restarter) => restarter.restart(record).await,
            None => Err("this run was given no way to restart nodes".to_owned()),
        }
    }

    /// Names this run's connection on every spec node `name` (`CLIENT SETNAME`), then lists
    /// the clients of each (`CLIENT LIST TYPE normal`) and returns the other clients whose
    /// name starts with `prefix`, as (node, client line): another run at work on the same
    /// cluster. A node that refuses either command (an ACL without `client`) is skipped, and
    /// said in the log: the guard is a courtesy, not a lock.
    async fn others_named(&self, name: &str, prefix: &str) -> Vec<(String, String)> {
        let checks = self
            .snapshot
            .spec_nodes()
            .filter_map(|n| self.handles.get(&n.key))
            .map(|handle| async move {
                let mut pipe = redis::pipe();
                pipe.cmd("CLIENT").arg("SETNAME").arg(name);
                pipe.cmd("CLIENT").arg("LIST").arg("TYPE").arg("normal");
                let replies = match handle.pipeline("look for another apply", &pipe).await {
                    Ok(replies) => replies,
                    Err(err) => return Err(err),
                };
                let mut replies = replies.into_iter();
                replies.next().transpose()?;
                let list = replies
                    .next()
                    .transpose()?
                    .as_ref()
                    .and_then(value_text)
                    .unwrap_or_default();
                Ok(list
                    .lines()
                    .filter(|line| {
                        line.split(' ').any(|field| {
                            field
                                .strip_prefix("name=")
                                .is_some_and(|n| n.starts_with(prefix) && n != name)
                        })
                    })
                    .map(|line| (handle.label().to_owned(), line.to_owned()))
                    .collect::<Vec<_>>())
            });
        let mut found = Vec::new();
        for result in join_all(checks).await {
            match result {
                Ok(lines) => found.extend(lines),
                Err(err) => tracing::warn!(%err, "cannot check for another apply on this node"),
            }
        }
        found
    }

    /// Adds members to remove, reached at the address their peers list.
    fn add_leaving(&mut self, found: &[Unlisted]) -> Result<(), NodeError> {
        for member in found {
            let record = member.record();
            let label = std::net::SocketAddr::new(member.ip, member.port).to_string();
            let endpoint = Endpoint {
                label,
                hostname: None,
                ip: member.ip,
                port: member.port,
            };
            let handle = NodeHandle::new(endpoint, &self.opts, self.tls.as_ref())?;
            self.handles.insert(record.key.clone(), Arc::new(handle));
            self.snapshot.add(record);
        }
        Ok(())
    }

    /// The run's credentials, for `MIGRATE` to present to the target.
    fn migrate_auth(&self) -> MigrateAuth {
        MigrateAuth {
            user: self.opts.user.clone(),
            password: self.opts.password.clone(),
        }
    }
}

async fn observe_node(handle: &NodeHandle) -> Result<NodeView, NodeError> {
    let mut pipe = redis::pipe();
    pipe.cmd("CLUSTER").arg("NODES");
    pipe.cmd("CLUSTER").arg("INFO");
    pipe.cmd("INFO");
    let replies = handle.pipeline("observe", &pipe).await?;
    let mut texts = Vec::with_capacity(3);
    for reply in replies {
        let value = reply?;
        texts.push(value_text(&value).ok_or_else(|| unreadable(handle, "reply is not text"))?);
    }
    let nodes = parse_cluster_nodes(&texts[0]);
    for issue in &nodes.issues {
        tracing::warn!(node = handle.label(), %issue, "CLUSTER NODES");
    }
    let id = nodes
        .value
        .myself()
        .map(|me| me.id)
        .ok_or_else(|| unreadable(handle, "CLUSTER NODES has no `myself` line"))?;
    Ok(NodeView {
        id,
        nodes: nodes.value,
        cluster_info: parse_cluster_info(&texts[1]).value,
        info: parse_info(&texts[2]).value,
    })
}

fn unreadable(handle: &NodeHandle, why: &str) -> NodeError {
    NodeError {
        node: handle.label().to_owned(),
        op: "observe",
        kind: NodeErrorKind::Other(why.to_owned()),
    }
}

/// Most commands in one pipeline to one node.
const CHUNK: usize = 128;
/// Most commands of one round on the wire at once, over all nodes.
const IN_FLIGHT: usize = 8192;

/// The redis-rs command of a step (the words come from the step itself).
fn command(step: &Step) -> redis::Cmd {
    let words = step.command();
    let mut cmd = redis::cmd(&words[0]);
    for word in &words[1..] {
        cmd.arg(word);
    }
    cmd
}
