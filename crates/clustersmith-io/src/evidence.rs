//! Gathers diagnosis evidence: files (redis.conf, nodes.conf, server logs, post-deploy
//! logs, the certificates redis.conf names) and live views, and attaches each file to the
//! node it describes. Parsing is the core's; this module only reads and matches.
//!
//! Files are linked before they are attached: a redis.conf names its node's log (`logfile`),
//! nodes.conf (`dir` + `cluster-config-file`) and pid file, so a log that never logged a node
//! id still joins its redis.conf; in the BOSH layout every file of the job is one node's. Each
//! group of linked files is then attached to an expected node by node id (from nodes.conf or
//! the log, or the id the peers list at the node's address), else by port and bind, else, for
//! the one expected node that did not answer and the one group left, by elimination.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use clustersmith_core::diagnose::{
    Answer, AtWork, CaVerdict, CertFacts, CertRejection, Inputs, NodeEvidence, NodeFacts,
    SourceFile, peers_cleared_on_relook,
};
use clustersmith_core::model::NodeId;
use clustersmith_core::operation::Reads;
use clustersmith_core::parse::{
    ClusterNodes, ParseIssue, RedisConf, ServerLog, ServerLogReader, parse_cluster_nodes,
    parse_info, parse_post_deploy_log, parse_redis_conf,
};
use clustersmith_core::snapshot::{NodeKey, NodeState};

use crate::conn::value_text;
use crate::error::{NodeError, NodeErrorKind, TlsProblem};
use crate::session::Session;

/// Evidence files, each optional; several of each kind may be given.
#[derive(Clone, Debug, Default)]
pub struct EvidenceFiles {
    pub redis_conf: Vec<PathBuf>,
    pub nodes_conf: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
    pub post_deploy: Vec<PathBuf>,
    /// Absolute paths inside files (tls-cert-file, dir) are read under this root: a copy of
    /// a VM's file system.
    pub root: PathBuf,
    /// The BOSH job whose layout was read: its files ([`EvidenceFiles::job_files`]) are one
    /// node's, whatever their ports say (every BOSH node listens on 6379).
    pub bosh_job: Option<String>,
    pub job_files: Vec<PathBuf>,
}

impl EvidenceFiles {
    /// The standard BOSH layout of job `job` under `root` (files that do not exist are left
    /// out; the notes say which).
    pub fn bosh(root: &Path, job: &str, notes: &mut Vec<String>) -> EvidenceFiles {
        let mut files = EvidenceFiles {
            root: root.to_owned(),
            bosh_job: Some(job.to_owned()),
            ..Default::default()
        };
        let under = |p: &str| root.join(p.trim_start_matches('/'));
        let mut job_files = Vec::new();
        let mut add = |list: &mut Vec<PathBuf>, path: PathBuf, required: bool| {
            if path.is_file() {
                job_files.push(path.clone());
                list.push(path);
            } else if required {
                notes.push(format!("not found: {}", path.display()));
            }
        };
        add(
            &mut files.redis_conf,
            under(&format!("/var/vcap/jobs/{job}/config/redis.conf")),
            true,
        );
        let conf = files
            .redis_conf
            .first()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse_redis_conf(&text).value);
        let named = |directive: &str, default: Option<&str>| {
            conf.as_ref()
                .and_then(|c| c.file_path(directive, default))
                .map(|p| under(&p.display().to_string()))
        };
        // The job's log, and the server's own `logfile` when redis.conf names another.
        let job_log = under(&format!("/var/vcap/sys/log/{job}/{job}.log"));
        let logfile = named("logfile", None).filter(|p| *p != job_log);
        add(&mut files.logs, job_log, logfile.is_none());
        if let Some(logfile) = logfile {
            add(&mut files.logs, logfile, true);
        }
        add(
            &mut files.post_deploy,
            under(&format!("/var/vcap/sys/log/{job}/post-deploy.stderr.log")),
            true,
        );
        // nodes.conf lives in the job's store dir; redis.conf's `dir` says where exactly.
        let store = named("cluster-config-file", Some("nodes.conf"))
            .unwrap_or_else(|| under(&format!("/var/vcap/store/{job}/nodes.conf")));
        add(&mut files.nodes_conf, store, true);
        files.job_files = job_files;
        files
    }

    fn reroot(&self, path: &str) -> PathBuf {
        if self.root.as_os_str().is_empty() || self.root == Path::new("/") {
            PathBuf::from(path)
        } else {
            self.root.join(path.trim_start_matches('/'))
        }
    }

    /// Every file named that cannot be used, one line each: missing, a directory, not
    /// readable, or not text. A named file that cannot be read must stop diagnose: left out,
    /// it would read as a cluster with nothing wrong.
    pub fn unusable(&self) -> Vec<String> {
        let named = [
            ("--redis-conf", &self.redis_conf),
            ("--nodes-conf", &self.nodes_conf),
            ("--log", &self.logs),
            ("--post-deploy-log", &self.post_deploy),
        ];
        named
            .into_iter()
            .flat_map(|(flag, paths)| paths.iter().map(move |p| (flag, p)))
            .filter_map(|(flag, path)| {
                check_text_file(path)
                    .err()
                    .map(|why| format!("{flag} {why}"))
            })
            .collect()
    }
}

/// Checks that `path` is a readable text file: a directory, a missing file, one without read
/// permission and binary data (a NUL byte, or bytes that are not UTF-8, in its first 64 KiB)
/// are refused with the reason.
pub fn check_text_file(path: &Path) -> Result<(), String> {
    use std::io::Read as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{shown}: is a directory, not a file"));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let mut head = Vec::with_capacity(64 * 1024);
    file.take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let utf8 = match std::str::from_utf8(&head) {
        Ok(_) => true,
        // A character cut at the end of the sample is still text.
        Err(e) => e.error_len().is_none(),
    };
    if head.contains(&0) || !utf8 {
        return Err(format!(
            "{shown}: is not text (binary data): give a redis.conf, nodes.conf or log file"
        ));
    }
    Ok(())
}

/// What was gathered, and what could not be read or matched.
pub struct Gathered {
    pub inputs: Inputs,
    /// Unreadable files, parse issues with their lines, files attached to no live node.
    pub notes: Vec<String>,
    /// Errors met while observing the live nodes. Unreachable nodes are also recorded in
    /// their evidence; errors of the connection settings (auth, TLS) are the caller's to stop on.
    pub errors: Vec<NodeError>,
}

fn read(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Every log read, on as many threads as there are CPUs (parsing the lines is what a
/// diagnosis of many long logs spends its time on), in the order given.
#[expect(
    clippy::type_complexity,
    reason = "one log's index in `paths`, what was read, and its notes"
)]
fn read_logs(paths: &[PathBuf]) -> Vec<(usize, Option<(ServerLog, Vec<ParseIssue>)>, Vec<String>)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Option<(ServerLog, Vec<ParseIssue>)>, Vec<String>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(path) = paths.get(i) else { break };
                            let mut notes = Vec::new();
                            let read = read_log(path, &mut notes);
                            out.push((i, read, notes));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a log reader panicked"))
                .collect()
        });
    done.sort_by_key(|(i, _, _)| *i);
    done
}

/// Reads a server log line by line: a log of any size is held as the core's thinned
/// [`ServerLog`], never as one string.
fn read_log(path: &Path, notes: &mut Vec<String>) -> Option<(ServerLog, Vec<ParseIssue>)> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    let mut input = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut reader = ServerLogReader::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                reader.push(line.trim_end_matches(['\n', '\r']));
            }
            Err(e) => {
                notes.push(format!("cannot read {}: {e}", path.display()));
                return None;
            }
        }
    }
    let parsed = reader.finish();
    if parsed.value.omitted > 0 {
        notes.push(format!(
            "{}: {} repeated lines left out (first and last occurrences of each message kept)",
            path.display(),
            parsed.value.omitted
        ));
    }
    Some((parsed.value, parsed.issues))
}

fn note_issues(path: &Path, issues: &[ParseIssue], notes: &mut Vec<String>) {
    const SHOWN: usize = 5;
    for issue in issues.iter().take(SHOWN) {
        notes.push(format!(
            "{}:{}: {}",
            path.display(),
            issue.line,
            issue.message
        ));
    }
    if issues.len() > SHOWN {
        notes.push(format!(
            "{}: {} more unreadable lines",
            path.display(),
            issues.len() - SHOWN
        ));
    }
}

/// The same file, when both exist; else the same path as written.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Files that describe one node, linked through redis.conf's directives or the BOSH layout.
#[derive(Default)]
struct Group {
    redis_conf: Option<(SourceFile<RedisConf>, Vec<CertFacts>)>,
    nodes_conf: Option<SourceFile<ClusterNodes>>,
    log: Option<SourceFile<ServerLog>>,
    /// The files its redis.conf names (rerooted): log, nodes.conf.
    named_log: Option<PathBuf>,
    named_nodes_conf: Option<PathBuf>,
    /// Plaintext and TLS ports, and bind addresses, from redis.conf (and its includes).
    ports: Vec<u16>,
    bind: Vec<String>,
    /// The IP addresses its certificate (`tls-cert-file`) is issued for: where the node can
    /// be, when several nodes listen on its port (every BOSH node on 6379).
    cert_ips: Vec<std::net::IpAddr>,
    /// The PID in its pid file (`pidfile`), when the file is there: a log whose last run
    /// has that PID is its log (a stale pid file is what a crashed server leaves).
    pid: Option<u32>,
    /// Its `dir` (rerooted), whose file system is read for a node on this machine. Without
    /// the directive the server's working directory holds its files, which the file does not
    /// say: then nothing is read.
    dir: Option<PathBuf>,
    /// The BOSH job's files.
    job: bool,
    first_path: String,
}

impl Group {
    fn ids(&self) -> Vec<NodeId> {
        let mut ids = Vec::new();
        if let Some(me) = self.nodes_conf.as_ref().and_then(|f| f.value.myself()) {
            ids.push(me.id);
        }
        if let Some(id) = self
            .log
            .as_ref()
            .and_then(|f| f.value.node_id())
            .and_then(|id| NodeId::parse(id).ok())
        {
            ids.push(id);
        }
        ids
    }

    /// Ports that say where it listens: redis.conf's, else nodes.conf's own line, else the
    /// log's last start.
    fn ports(&self) -> Vec<u16> {
        if !self.ports.is_empty() {
            return self.ports.clone();
        }
        if let Some(me) = self.nodes_conf.as_ref().and_then(|f| f.value.myself()) {
            return vec![me.addr.port];
        }
        self.log
            .as_ref()
            .and_then(|f| log_port(&f.value))
            .into_iter()
            .collect()
    }

    /// Whether a server with this bind list can be the one reached at `ip`.
    fn binds(&self, ip: std::net::IpAddr) -> bool {
        self.bind.is_empty()
            || self.bind.iter().any(|b| {
                ["*", "0.0.0.0", "::", "::*"].contains(&b.as_str())
                    || b.parse::<std::net::IpAddr>().is_ok_and(|a| a == ip)
            })
    }

    fn label(&self, job: Option<&str>) -> String {
        match (job.filter(|_| self.job), self.ports().first()) {
            (Some(job), _) => format!("files of job {job}"),
            (None, Some(port)) => format!("files of port {port}"),
            (None, None) => format!("files of {}", self.first_path),
        }
    }
}

/// redis.conf with the directives of its `include`s folded in, for finding the node's ports
/// and files only: evidence lines always point at the file itself.
fn with_includes(conf: &RedisConf, files: &EvidenceFiles, notes: &mut Vec<String>) -> RedisConf {
    let mut merged = RedisConf::default();
    for d in &conf.directives {
        if d.name == "include" {
            for arg in &d.args {
                let path = files.reroot(arg);
                match std::fs::read_to_string(&path) {
                    Ok(text) => merged
                        .directives
                        .extend(parse_redis_conf(&text).value.directives),
                    Err(e) => notes.push(format!("cannot read include {}: {e}", path.display())),
                }
            }
        } else {
            merged.directives.push(d.clone());
        }
    }
    merged
}

/// What a node is, from how it answered the observation round.
fn facts_of(err: Option<&NodeError>, reason: &str) -> NodeFacts {
    let answer = match err.map(|e| &e.kind) {
        Some(NodeErrorKind::ConnectionRefused) => Answer::Refused,
        Some(NodeErrorKind::Timeout) => Answer::TimedOut,
        Some(NodeErrorKind::Tls(TlsProblem::TlsOnlyPort)) => {
            Answer::OtherProtocol { wants_tls: true }
        }
        Some(NodeErrorKind::Tls(TlsProblem::PlaintextPort)) => {
            Answer::OtherProtocol { wants_tls: false }
        }
        Some(NodeErrorKind::ClusterDisabled) => Answer::ClusterDisabled,
        Some(NodeErrorKind::ProtectedMode) => Answer::ProtectedMode,
        Some(NodeErrorKind::Reply { code, .. }) if code == "LOADING" => Answer::Loading,
        Some(
            NodeErrorKind::AuthFailed
            | NodeErrorKind::NoAuth
            | NodeErrorKind::NoPasswordConfigured
            | NodeErrorKind::NoPermission(_),
        ) => Answer::AuthRefused,
        Some(NodeErrorKind::Reply { .. }) => Answer::Refusing,
        // It answered, but not with a cluster view (session.rs names these).
        Some(NodeErrorKind::Other(text))
            if text == "reply is not text" || text.contains("no `myself` line") =>
        {
            Answer::Refusing
        }
        Some(NodeErrorKind::ConnectionReset | NodeErrorKind::Tls(_) | NodeErrorKind::Other(_))
        | None => Answer::Reset,
    };
    let reply = match err.map(|e| &e.kind) {
        // The server's own words, the same in Redis and Valkey.
        Some(NodeErrorKind::ClusterDisabled) => {
            "ERR This instance has cluster support disabled".to_owned()
        }
        _ => reason.to_owned(),
    };
    NodeFacts {
        answer,
        reply,
        version: None,
    }
}

/// Observes the session's nodes (when given), establishes what each one is, reads every
/// file, links files into groups and attaches each group to the node it describes; groups
/// of no expected node become nodes of their own.
pub async fn gather(session: Option<&mut Session>, files: &EvidenceFiles) -> Gathered {
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    // The logs are read while the live nodes are: a long log is parsing (CPU), the nodes are
    // round trips (waiting).
    let log_paths = files.logs.clone();
    let logs_read = tokio::task::spawn_blocking(move || read_logs(&log_paths));
    let mut nodes: Vec<NodeEvidence> = Vec::new();
    // The id each expected node is known by: its own, or the one its peers list at its address.
    let mut known_ids: Vec<Option<NodeId>> = Vec::new();
    let mut at_work = AtWork::default();
    let mut endpoints = Vec::new();
    if let Some(session) = session {
        let read_errors = session.read_nodes(&Reads::All).await;
        let mut relooks = relook_unconnected(session).await;
        // What clients were refused (CS370-CS372): not in the default INFO; read from every
        // member at once.
        let members: &Session = session;
        let mut refusals: std::collections::BTreeMap<NodeKey, Vec<(String, String)>> =
            futures::future::join_all(members.snapshot().views().map(|(node, _)| async move {
                (node.key.clone(), errorstats(members, &node.key).await)
            }))
            .await
            .into_iter()
            .collect();
        at_work = session.at_work().await;
        endpoints = crate::client_endpoints::client_endpoints(session).await;
        let snapshot = session.snapshot();
        for record in snapshot.iter() {
            let mut node = NodeEvidence {
                key: record.key.clone(),
                ip: Some(record.ip),
                port: Some(record.port),
                zone: record.zone.clone(),
                ..Default::default()
            };
            let err = read_errors.iter().find(|e| e.node == record.label());
            match &record.state {
                NodeState::Seen(view) => {
                    known_ids.push(Some(view.id));
                    node.facts = Some(NodeFacts {
                        answer: Answer::Member,
                        reply: "answered CLUSTER NODES, CLUSTER INFO and INFO".to_owned(),
                        version: view.version().map(|v| v.to_string()),
                    });
                    let mut live = (**view).clone();
                    live.info
                        .fields
                        .extend(refusals.remove(&record.key).unwrap_or_default());
                    node.live = Some(live);
                    node.relook = relooks.remove(&record.key);
                    for peer in peers_cleared_on_relook(&node) {
                        notes.push(format!(
                            "{} listed {} {}; read again {} s later, it was talking over the bus: not counted as stuck",
                            record.key,
                            peer.addr,
                            if peer.is_handshake() {
                                "in handshake"
                            } else {
                                "with its link down"
                            },
                            RELOOK_AFTER.as_secs()
                        ));
                    }
                }
                NodeState::Unreachable(why) => {
                    known_ids.push(snapshot.id_listed_at(record.ip, record.port));
                    let mut facts = facts_of(err, why);
                    // A node that answers but not as a member still says what it is.
                    if matches!(
                        facts.answer,
                        Answer::ClusterDisabled | Answer::Loading | Answer::Refusing
                    ) {
                        facts.version = server_version(session, &record.key).await;
                    }
                    node.facts = Some(facts);
                    node.unreachable = Some(why.clone());
                }
            }
            if let Some(err) = err {
                errors.push(err.clone());
            }
            nodes.push(node);
        }
    }
    let expected_count = nodes.len();

    let mut groups: Vec<Group> = Vec::new();
    let is_job_file = |path: &Path| files.job_files.iter().any(|p| p == path);
    for path in &files.redis_conf {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        let parsed = parse_redis_conf(&text);
        note_issues(path, &parsed.issues, &mut notes);
        let conf = parsed.value;
        let effective = with_includes(&conf, files, &mut notes);
        let named = |directive: &str, default: Option<&str>| {
            effective
                .file_path(directive, default)
                .map(|p| files.reroot(&p.display().to_string()))
        };
        let ports: Vec<u16> = [
            effective.listening_port(),
            effective.port("tls-port").filter(|p| *p > 0),
        ]
        .into_iter()
        .flatten()
        .collect();
        let certs = cert_facts(&conf, files, &mut notes);
        let pid = named("pidfile", None)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse().ok());
        let cert_ips = effective
            .value("tls-cert-file")
            .and_then(|p| std::fs::read(files.reroot(p)).ok())
            .map(|pem| cert_ips(&pem))
            .unwrap_or_default();
        groups.push(Group {
            pid,
            cert_ips,
            dir: effective.value("dir").map(|d| files.reroot(d)),
            named_log: named("logfile", None),
            named_nodes_conf: named("cluster-config-file", Some("nodes.conf")),
            ports,
            bind: effective
                .bind_addresses()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            job: is_job_file(path),
            first_path: path.display().to_string(),
            redis_conf: Some((
                SourceFile {
                    path: path.display().to_string(),
                    value: conf,
                },
                certs,
            )),
            ..Default::default()
        });
    }
    judge_certificates(&mut groups, files);
    // The group a nodes.conf or log belongs to: the one whose redis.conf names it, else the
    // BOSH job's; else a group of its own.
    let home = |groups: &mut Vec<Group>,
                path: &Path,
                named: fn(&Group) -> Option<&PathBuf>,
                taken: fn(&Group) -> bool,
                pid: Option<u32>|
     -> usize {
        let by_name = groups
            .iter()
            .position(|g| !taken(g) && named(g).is_some_and(|n| same_file(n, path)))
            .or_else(|| {
                let pid = pid?;
                groups.iter().position(|g| !taken(g) && g.pid == Some(pid))
            });
        let by_job = || {
            is_job_file(path)
                .then(|| groups.iter().position(|g| g.job && !taken(g)))
                .flatten()
        };
        match by_name.or_else(by_job) {
            Some(idx) => idx,
            None => {
                groups.push(Group {
                    job: is_job_file(path),
                    first_path: path.display().to_string(),
                    ..Default::default()
                });
                groups.len() - 1
            }
        }
    };
    for path in &files.nodes_conf {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        let parsed = parse_cluster_nodes(&text);
        note_issues(path, &parsed.issues, &mut notes);
        let idx = home(
            &mut groups,
            path,
            |g| g.named_nodes_conf.as_ref(),
            |g| g.nodes_conf.is_some(),
            None,
        );
        groups[idx].nodes_conf = Some(SourceFile {
            path: path.display().to_string(),
            value: parsed.value,
        });
    }
    let logs_read = logs_read.await.expect("the log reader panicked");
    for (i, read, log_notes) in logs_read {
        let path = &files.logs[i];
        notes.extend(log_notes);
        let Some((value, issues)) = read else {
            continue;
        };
        note_issues(path, &issues, &mut notes);
        let last_pid = value.lines.last().map(|l| l.pid);
        let idx = home(
            &mut groups,
            path,
            |g| g.named_log.as_ref(),
            |g| g.log.is_some(),
            last_pid,
        );
        groups[idx].log = Some(SourceFile {
            path: path.display().to_string(),
            value,
        });
    }

    // Attach groups to expected nodes: by id, then by a port and bind only one node fits,
    // then by elimination. An id that two answering servers share (a cloned data dir) names
    // neither: their ports decide.
    let mut owner: Vec<Option<usize>> = vec![None; groups.len()];
    let claimed = |owner: &[Option<usize>], node: usize| owner.contains(&Some(node));
    for (g, group) in groups.iter().enumerate() {
        let ids = group.ids();
        let by_id: Vec<usize> = (0..expected_count)
            .filter(|n| known_ids[*n].as_ref().is_some_and(|id| ids.contains(id)))
            .collect();
        owner[g] = match by_id[..] {
            [n] => Some(n),
            _ => None,
        };
    }
    let fits: Vec<Vec<usize>> = groups
        .iter()
        .map(|group| {
            let ports = group.ports();
            let by_port: Vec<usize> = (0..expected_count)
                .filter(|n| {
                    nodes[*n].port.is_some_and(|p| ports.contains(&p))
                        && nodes[*n].ip.is_some_and(|ip| group.binds(ip))
                })
                .collect();
            // Several nodes on its port (one port on every VM): the certificate says which.
            if by_port.len() > 1 && !group.cert_ips.is_empty() {
                by_port
                    .into_iter()
                    .filter(|n| nodes[*n].ip.is_some_and(|ip| group.cert_ips.contains(&ip)))
                    .collect()
            } else {
                by_port
            }
        })
        .collect();
    for g in 0..groups.len() {
        if owner[g].is_some() {
            continue;
        }
        let free: Vec<usize> = fits[g]
            .iter()
            .copied()
            .filter(|n| !claimed(&owner, *n))
            .collect();
        // Only when no other unattached group fits that node as well.
        if let [n] = free[..]
            && !(0..groups.len()).any(|o| o != g && owner[o].is_none() && fits[o].contains(&n))
        {
            owner[g] = Some(n);
        }
    }
    let left: Vec<usize> = (0..groups.len()).filter(|g| owner[*g].is_none()).collect();
    let silent: Vec<usize> = (0..expected_count)
        .filter(|n| nodes[*n].live.is_none() && !claimed(&owner, *n))
        .collect();
    if let ([g], [n]) = (&left[..], &silent[..])
        && groups[*g].redis_conf.is_some()
    {
        owner[*g] = Some(*n);
        notes.push(format!(
            "{} attached to {} by elimination: it is the one node that did not answer and the one redis.conf that fits no other node",
            groups[*g].first_path, nodes[*n].key
        ));
    }

    let job = files.bosh_job.as_deref();
    for (g, group) in groups.into_iter().enumerate() {
        let idx = match owner[g] {
            Some(n) => n,
            None => {
                // Files of no expected node: joined with others of the same port when they
                // fill different kinds (a log and a redis.conf given apart), else a node of
                // their own named by their first file.
                let mut label = group.label(job);
                let fits = |n: &NodeEvidence| {
                    !(group.redis_conf.is_some() && n.redis_conf.is_some()
                        || group.nodes_conf.is_some() && n.nodes_conf.is_some()
                        || group.log.is_some() && n.log.is_some())
                };
                let existing = nodes[expected_count..]
                    .iter()
                    .position(|n| n.key.label() == label);
                match existing {
                    Some(i) if fits(&nodes[expected_count + i]) => expected_count + i,
                    other => {
                        if other.is_some() {
                            label = format!("files of {}", group.first_path);
                        }
                        nodes.push(NodeEvidence {
                            key: NodeKey::named(&label),
                            port: group.ports().first().copied(),
                            ..Default::default()
                        });
                        nodes.len() - 1
                    }
                }
            }
        };
        let node = &mut nodes[idx];
        let mut extra = Vec::new();
        if let Some((conf, certs)) = group.redis_conf {
            if node.redis_conf.is_none() {
                node.redis_conf = Some(conf);
                node.certs = certs;
                // Where the node runs is where its disk is: only then is statvfs of its dir
                // about the node (a copy of a VM's files under --root is not).
                let here = node.ip.is_some_and(|ip| ip.is_loopback())
                    || (job.is_some() && files.root == Path::new("/"));
                if here {
                    node.disk = group.dir.as_deref().and_then(disk_facts);
                }
            } else {
                extra.push(conf.path);
            }
        }
        if let Some(file) = group.nodes_conf {
            if node.nodes_conf.is_none() {
                node.nodes_conf = Some(file);
            } else {
                extra.push(file.path);
            }
        }
        if let Some(file) = group.log {
            if node.log.is_none() {
                node.log = Some(file);
            } else {
                extra.push(file.path);
            }
        }
        for path in extra {
            notes.push(format!(
                "{path} describes {} too, which already has a file of that kind: left out",
                node.key
            ));
        }
    }

    let mut post_deploy = Vec::new();
    for path in &files.post_deploy {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        post_deploy.push(SourceFile {
            path: path.display().to_string(),
            value: parse_post_deploy_log(&text).value,
        });
    }
    Gathered {
        inputs: Inputs {
            nodes,
            post_deploy,
            expected: None,
            at_work,
            endpoints,
            live_snapshot_memo: Default::default(),
        },
        notes,
        errors,
    }
}

/// How long diagnose waits before it reads again a node that lists a peer in handshake or with
/// its link down: on a working bus a handshake completes within a few of the servers' 100 ms
/// cron ticks, and a dropped link is dialled again on the next one.
const RELOOK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// `CLUSTER NODES` again, [`RELOOK_AFTER`] later, of each node that lists a peer not talking
/// over the bus (nothing is read, nor waited for, when none does).
async fn relook_unconnected(
    session: &Session,
) -> std::collections::BTreeMap<NodeKey, ClusterNodes> {
    let keys: Vec<NodeKey> = session
        .snapshot()
        .views()
        .filter(|(_, view)| {
            view.nodes
                .entries()
                .iter()
                .any(|e| !e.is_myself() && e.bus_unconnected())
        })
        .map(|(node, _)| node.key.clone())
        .collect();
    if keys.is_empty() {
        return Default::default();
    }
    tokio::time::sleep(RELOOK_AFTER).await;
    let reads = keys.into_iter().map(|key| async move {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let value = session
            .handle(&key)?
            .query("read CLUSTER NODES again", &cmd)
            .await
            .ok()?;
        Some((key, parse_cluster_nodes(&value_text(&value)?).value))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `INFO errorstats` (`errorstat_OOM:count=3`, …): the refusals the node sent since it started.
/// Empty when it cannot be read (Redis before 6.2 has no such section).
async fn errorstats(session: &Session, key: &NodeKey) -> Vec<(String, String)> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("errorstats");
    let Some(handle) = session.handle(key) else {
        return Vec::new();
    };
    match handle.query("read INFO errorstats", &cmd).await {
        Ok(value) => value_text(&value)
            .map(|text| parse_info(&text).value.fields.into_iter().collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// `Redis 7.0.15` / `Valkey 8.1.8` from a node that answers INFO but not as a member.
async fn server_version(session: &Session, key: &NodeKey) -> Option<String> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server");
    let value = session
        .handle(key)?
        .query("read INFO server", &cmd)
        .await
        .ok()?;
    let info = parse_info(&value_text(&value)?).value;
    info.version().map(|v| v.to_string())
}

/// The file system under `dir`: its size and what an unprivileged user may still write.
fn disk_facts(dir: &Path) -> Option<clustersmith_core::diagnose::DiskFacts> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is NUL-terminated and outlives the call; `stat` is a plain C struct
    // statvfs(3) fills in.
    #[expect(
        unsafe_code,
        reason = "statvfs(3) is how a process learns the free space of a file system"
    )]
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0).then_some(stat)
    }?;
    let block = stat.f_frsize;
    Some(clustersmith_core::diagnose::DiskFacts {
        dir: dir.display().to_string(),
        total_bytes: stat.f_blocks.saturating_mul(block),
        free_bytes: stat.f_bavail.saturating_mul(block),
    })
}

/// `Running mode=cluster, port=6379.` from the last start.
fn log_port(log: &ServerLog) -> Option<u16> {
    log.lines.iter().rev().find_map(|l| {
        l.message
            .split_once("port=")
            .and_then(|(_, rest)| rest.trim_end_matches('.').split([',', '.']).next())
            .and_then(|p| p.trim().parse().ok())
    })
}

/// Reads the certificates redis.conf names: what usage they allow and whether they expired.
fn cert_facts(conf: &RedisConf, files: &EvidenceFiles, notes: &mut Vec<String>) -> Vec<CertFacts> {
    ["tls-cert-file", "tls-client-cert-file"]
        .iter()
        .filter_map(|directive| {
            let d = conf.get(directive)?;
            let named = d.args.first()?;
            let path = files.reroot(named);
            let pem = match std::fs::read(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    notes.push(format!("cannot read {directive} {}: {e}", path.display()));
                    return None;
                }
            };
            match parse_cert(&pem) {
                Ok((server_auth, client_auth, expired)) => Some(CertFacts {
                    path: named.clone(),
                    directive: (*directive).to_owned(),
                    line: d.line,
                    server_auth,
                    client_auth,
                    expired,
                    verdicts: Vec::new(),
                }),
                Err(e) => {
                    notes.push(format!("cannot parse {directive} {}: {e}", path.display()));
                    None
                }
            }
        })
        .collect()
}

/// Every node's certificates judged by every CA file the nodes name (`tls-ca-cert-file`):
/// what each peer's TLS library will say of them, for both sides of a link.
fn judge_certificates(groups: &mut [Group], files: &EvidenceFiles) {
    let mut cas: Vec<(String, Vec<u8>)> = Vec::new();
    for group in groups.iter() {
        let Some((conf, _)) = &group.redis_conf else {
            continue;
        };
        let Some(named) = conf.value.value("tls-ca-cert-file") else {
            continue;
        };
        if cas.iter().any(|(n, _)| n == named) {
            continue;
        }
        if let Ok(pem) = std::fs::read(files.reroot(named)) {
            cas.push((named.to_owned(), pem));
        }
    }
    for group in groups.iter_mut() {
        let Some((_, certs)) = &mut group.redis_conf else {
            continue;
        };
        for cert in certs.iter_mut() {
            let Ok(pem) = std::fs::read(files.reroot(&cert.path)) else {
                continue;
            };
            cert.verdicts = cas
                .iter()
                .filter_map(|(ca, ca_pem)| {
                    let (as_server, as_client) = judge(&pem, ca_pem)?;
                    Some(CaVerdict {
                        ca: ca.clone(),
                        as_server,
                        as_client,
                    })
                })
                .collect();
        }
    }
}

/// How a CA (PEM) judges a certificate (PEM) as a server's and as a client's, with the
/// same checks (chain, validity, extended key usage) the servers' TLS library makes; `None`
/// when either file holds no certificate.
fn judge(cert_pem: &[u8], ca_pem: &[u8]) -> Option<(Option<CertRejection>, Option<CertRejection>)> {
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let der = |pem: &[u8]| {
        x509_parser::pem::parse_x509_pem(pem)
            .ok()
            .map(|(_, p)| CertificateDer::from(p.contents))
    };
    let (cert, ca) = (der(cert_pem)?, der(ca_pem)?);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).ok()?;
    let roots = std::sync::Arc::new(roots);
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let now = UnixTime::now();
    let rejection = |e: rustls::Error| {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::NotValidForName | C::NotValidForNameContext { .. } => None,
                // A CA of the same name but another key fails on the signature.
                C::UnknownIssuer | C::BadSignature => Some(CertRejection::UnknownIssuer),
                C::Expired | C::ExpiredContext { .. } => Some(CertRejection::Expired),
                C::NotValidYet | C::NotValidYetContext { .. } => Some(CertRejection::NotYetValid),
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => Some(CertRejection::Usage),
                other => Some(CertRejection::Other(format!("{other:?}"))),
            },
            other => Some(CertRejection::Other(other.to_string())),
        }
    };
    let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .ok()?;
    // Any name: the servers check none on these links (NotValidForName is ignored above).
    let name = ServerName::try_from("clustersmith.invalid").ok()?;
    let as_server = server
        .verify_server_cert(&cert, &[], &name, &[], now)
        .err()
        .and_then(rejection);
    let client = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .ok()?;
    let as_client = client
        .verify_client_cert(&cert, &[], now)
        .err()
        .and_then(rejection);
    Some((as_server, as_client))
}

/// The IP addresses in the subjectAltName of the first certificate in a PEM file.
fn cert_ips(pem: &[u8]) -> Vec<std::net::IpAddr> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem) else {
        return Vec::new();
    };
    let Ok(cert) = pem.parse_x509() else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// (serverAuth allowed, clientAuth allowed, expired) of the first certificate in a PEM file.
/// No extended key usage extension means any usage.
fn parse_cert(pem: &[u8]) -> Result<(bool, bool, bool), String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let (server, client) = match cert.extended_key_usage().map_err(|e| e.to_string())? {
        Some(eku) => (
            eku.value.any || eku.value.server_auth,
            eku.value.any || eku.value.client_auth,
        ),
        None => (true, true),
    };
    let expired = !cert.validity().is_valid();
    Ok((server, client, expired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertOptions, TestCa};

    /// Two servers' files on one port, told apart by what their redis.conf names: the log
    /// named by `logfile`, the nodes.conf in `dir`, and a log given apart whose last run has
    /// the PID in the pid file (named in an included file).
    #[tokio::test]
    async fn files_are_linked_through_the_directives_of_their_redis_conf() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        let a_conf = write(
            "a/redis.conf",
            "port 6379\ndir /a\nlogfile /logs/a-server.log\ncluster-config-file a-nodes.conf\n",
        );
        let b_conf = write(
            "b/redis.conf",
            "include /b/common.conf\ndir /b\nlogfile \"\"\n",
        );
        write("b/common.conf", "port 6379\npidfile /run/b.pid\n");
        write("run/b.pid", "4242\n");
        let a_nodes = write(
            "a/a-nodes.conf",
            "5be3d949f56e77d5848af97f1d8825e1c29f3270 :6379@16379 myself,master - 0 0 0 connected 0-16383\nvars currentEpoch 0 lastVoteEpoch 0\n",
        );
        let a_log = write(
            "logs/a-server.log",
            "17:M 02 Dec 2026 05:40:01.100 * Ready to accept connections\n",
        );
        let b_log = write(
            "captured/stdout.log",
            "4242:M 02 Dec 2026 05:40:01.100 # Warning: Could not create server TCP listening socket *:6379: bind: Address already in use\n",
        );
        let files = EvidenceFiles {
            redis_conf: vec![a_conf.clone(), b_conf.clone()],
            nodes_conf: vec![a_nodes.clone()],
            logs: vec![b_log.clone(), a_log.clone()],
            root: root.to_owned(),
            ..Default::default()
        };
        let gathered = gather(None, &files).await;
        let nodes = &gathered.inputs.nodes;
        assert_eq!(nodes.len(), 2, "{:?}", gathered.notes);
        let shown = |p: &Path| p.display().to_string();
        let of = |conf: &Path| {
            nodes
                .iter()
                .find(|n| n.redis_conf.as_ref().map(|c| c.path.clone()) == Some(shown(conf)))
                .unwrap()
        };
        let a = of(&a_conf);
        assert_eq!(a.log.as_ref().map(|f| f.path.clone()), Some(shown(&a_log)));
        assert_eq!(
            a.nodes_conf.as_ref().map(|f| f.path.clone()),
            Some(shown(&a_nodes))
        );
        let b = of(&b_conf);
        assert_eq!(b.log.as_ref().map(|f| f.path.clone()), Some(shown(&b_log)));
        assert_ne!(a.key, b.key);
        assert!(gathered.notes.is_empty(), "{:?}", gathered.notes);
    }

    #[test]
    fn certificate_usage_and_expiry_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let ca = TestCa::create(&dir).unwrap();
        let good = ca.issue(&dir, "good", &["127.0.0.1"]).unwrap();
        let server_only = ca
            .issue_with(
                &dir,
                "server",
                &["127.0.0.1"],
                CertOptions {
                    server_auth_only: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let old = ca
            .issue_with(
                &dir,
                "old",
                &["127.0.0.1"],
                CertOptions {
                    expired: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let read = |p: &Path| parse_cert(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(read(&good.cert), (true, true, false));
        assert_eq!(read(&server_only.cert), (true, false, false));
        assert_eq!(read(&old.cert), (true, true, true));
        let ips = cert_ips(&std::fs::read(&good.cert).unwrap());
        assert_eq!(ips, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    }
}
