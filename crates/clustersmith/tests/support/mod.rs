//! Test harness: real `redis-server` processes on 127.0.0.1, each test with its own ports and
//! directory, stopped by PID when the test ends (also when it fails).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod netns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use clustersmith_io::conn::Secret;
use clustersmith_io::pki::{CertOptions, TestCa};
use clustersmith_io::sandbox::{
    LocalServer, MAX_SAFE_PORT, SandboxError, ServerConfig, find_server_binary, ports_free,
    start_server, stop_server,
};

/// Next port to try. Tests of this binary run as threads of one process, so a process-wide
/// counter keeps their ports apart; `ports_free` skips ports held by anything else.
static NEXT_PORT: AtomicU16 = AtomicU16::new(20001);

/// A port (with its bus port) free now and handed to no other test of this binary.
pub fn allocate_port() -> u16 {
    loop {
        let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        assert!(port <= MAX_SAFE_PORT, "test ports exhausted");
        if ports_free(port) {
            return port;
        }
    }
}

pub struct Servers {
    pub servers: Vec<LocalServer>,
    pub password: Option<String>,
    /// ACL user the harness itself connects as.
    pub user: Option<String>,
    /// `tls-port` of each server in dual mode.
    pub tls_ports: Vec<Option<u16>>,
    ca: Option<TestCa>,
    dir: tempfile::TempDir,
}

/// Dual mode: a plaintext `port` (what the harness talks to) and a `tls-port`, with
/// `tls-cluster yes` and `tls-replication yes`, so the bus port is `tls-port + 10000` unless
/// `cluster-port` is set.
#[derive(Clone, Copy, Default)]
pub struct DualTls {
    /// Also set `cluster-port` to a port of its own (Redis 7.0+).
    pub cluster_port: bool,
    /// The node certificate's defects.
    pub cert: CertOptions,
    /// Issue node certificates without any subjectAltName (CN only).
    pub no_san: bool,
    /// `tls-replication no`: replicas speak plaintext to their primary's TLS port.
    pub plaintext_replication: bool,
}

#[derive(Default, Clone)]
pub struct ServerOpts {
    /// Server binary; default: found on PATH.
    pub bin: Option<PathBuf>,
    pub password: Option<String>,
    pub user: Option<String>,
    pub directives: Vec<(String, String)>,
    pub tls: Option<DualTls>,
    /// The client port to take (allocated by the caller); default: the next free one.
    pub port: Option<u16>,
}

impl Servers {
    pub fn start(count: usize) -> Servers {
        Servers::start_with(count, &ServerOpts::default())
    }

    pub fn start_with(count: usize, opts: &ServerOpts) -> Servers {
        let bin = find_server_binary(opts.bin.as_deref())
            .expect("redis-server must be installed (see .ci/run)");
        let dir = tempfile::tempdir().unwrap();
        let ca = opts
            .tls
            .map(|_| TestCa::create(&dir.path().join("tls")).unwrap());
        let mut servers = Servers {
            servers: Vec::new(),
            password: opts.password.clone(),
            user: opts.user.clone(),
            tls_ports: Vec::new(),
            ca,
            dir,
        };
        for _ in 0..count {
            servers.add(&bin, opts);
        }
        servers
    }

    pub fn add(&mut self, bin: &Path, opts: &ServerOpts) -> usize {
        // A port found free can be taken by another process before the server binds it:
        // then try fresh ports (bounded).
        let mut port = opts.port;
        for _ in 0..5 {
            match self.try_add(bin, opts, port.take()) {
                Ok(idx) => return idx,
                Err(SandboxError::PortInUse { port }) => {
                    eprintln!("port {port} was taken meanwhile; trying other ports");
                }
                Err(other) => panic!("{other}"),
            }
        }
        panic!("no free ports for a test server after 5 attempts");
    }

    fn try_add(
        &mut self,
        bin: &Path,
        opts: &ServerOpts,
        port: Option<u16>,
    ) -> Result<usize, SandboxError> {
        let port = port.unwrap_or_else(allocate_port);
        let dir = self.dir.path().join(format!("node-{port}"));
        let mut directives = opts.directives.clone();
        let mut tls_port = None;
        if let (Some(tls), Some(ca)) = (opts.tls, &self.ca) {
            let names: &[&str] = if tls.no_san {
                &[]
            } else {
                &["127.0.0.1", "localhost"]
            };
            let files = ca.issue_with(&dir, "node", names, tls.cert).unwrap();
            let port = allocate_port();
            tls_port = Some(port);
            let path = |p: &Path| p.display().to_string();
            directives.extend([
                ("tls-port".to_owned(), port.to_string()),
                ("tls-cert-file".to_owned(), path(&files.cert)),
                ("tls-key-file".to_owned(), path(&files.key)),
                ("tls-ca-cert-file".to_owned(), path(&ca.ca_cert)),
                ("tls-cluster".to_owned(), "yes".to_owned()),
                (
                    "tls-replication".to_owned(),
                    if tls.plaintext_replication {
                        "no"
                    } else {
                        "yes"
                    }
                    .to_owned(),
                ),
            ]);
            if tls.cluster_port {
                directives.push(("cluster-port".to_owned(), allocate_port().to_string()));
            }
        }
        let server = start_server(&ServerConfig {
            bin: bin.to_owned(),
            dir,
            port,
            password: opts.password.clone().map(Secret::new),
            directives,
        })?;
        self.servers.push(server);
        self.tls_ports.push(tls_port);
        Ok(self.servers.len() - 1)
    }

    /// `--tls --cacert … --cert … --key …` with a client certificate from the servers' CA.
    pub fn tls_args(&self) -> Vec<String> {
        let ca = self.ca.as_ref().expect("servers started with TLS");
        let tls = self.dir.path().join("tls");
        let client = ca.issue(&tls, "client", &["client"]).unwrap();
        [
            "--tls".to_owned(),
            "--cacert".to_owned(),
            ca.ca_cert.display().to_string(),
            "--cert".to_owned(),
            client.cert.display().to_string(),
            "--key".to_owned(),
            client.key.display().to_string(),
        ]
        .into()
    }

    /// Nodes as `127.0.0.1:TLS_PORT`.
    pub fn tls_ips(&self) -> Vec<String> {
        self.tls_ports
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.expect("servers started with TLS")))
            .collect()
    }

    pub fn port(&self, idx: usize) -> u16 {
        self.servers[idx].port
    }

    /// Nodes as `localhost:PORT`, so every run goes through name resolution.
    pub fn names(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("localhost:{}", s.port))
            .collect()
    }

    pub fn ips(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    pub fn conn(&self, idx: usize) -> redis::Connection {
        self.conn_as(idx, self.user.as_deref(), self.password.as_deref())
    }

    pub fn conn_as(
        &self,
        idx: usize,
        user: Option<&str>,
        password: Option<&str>,
    ) -> redis::Connection {
        let mut info = redis::RedisConnectionInfo::default();
        if let Some(password) = password {
            info = info.set_password(password);
        }
        if let Some(user) = user {
            info = info.set_username(user);
        }
        let addr = redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port(idx));
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .unwrap()
            .set_redis_settings(info);
        let client = redis::Client::open(info).unwrap();
        // A server may drop a connection it has just accepted (one was reset so in CI right
        // after a CLUSTER RESET of a Valkey 9 replica, under load): try again, bounded; a
        // server that stays away still fails the test.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match client.get_connection() {
                Ok(conn) => return conn,
                Err(e)
                    if (e.is_connection_dropped() || e.is_connection_refusal())
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!(
                    "cannot connect to port {}: {e}; the end of its log:\n{}",
                    self.port(idx),
                    self.log_tail(idx, 20)
                ),
            }
        }
    }

    /// The last `n` lines of node `idx`'s log (why a server went away).
    pub fn log_tail(&self, idx: usize, n: usize) -> String {
        let text = std::fs::read_to_string(self.servers[idx].log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn cmd(&self, idx: usize, args: &[&str]) -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.conn(idx)).unwrap()
    }

    pub fn text(&self, idx: usize, args: &[&str]) -> String {
        redis::from_redis_value(self.cmd(idx, args)).unwrap()
    }

    pub fn myid(&self, idx: usize) -> String {
        self.text(idx, &["CLUSTER", "MYID"])
    }

    /// What every node reports about the cluster and its data, minus the fields that change
    /// on their own (ping/pong times, link state): per node its id, and for every member it
    /// lists the id, address, flags, primary, config epoch and slots (open slots included),
    /// then its `cluster_current_epoch` and `cluster_my_epoch`, and `DBSIZE`. A node with
    /// cluster support disabled is fingerprinted by that and its `DBSIZE`.
    pub fn fingerprint(&self) -> Vec<String> {
        self.fingerprint_of(&(0..self.servers.len()).collect::<Vec<_>>())
    }

    /// [`Servers::fingerprint`] of some nodes (those still running).
    pub fn fingerprint_of(&self, nodes: &[usize]) -> Vec<String> {
        nodes
            .iter()
            .map(|idx| {
                let mut conn = self.conn(*idx);
                let keys: i64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
                let Ok(text) = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query::<String>(&mut conn)
                else {
                    return format!("node {idx}: no cluster; keys={keys}");
                };
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap();
                fingerprint_line(&format!("node {idx}"), &text, &info, Some(keys))
            })
            .collect()
    }

    /// Per node, the attempted calls (`calls` plus `rejected_calls`) of every command that can
    /// change cluster state or roles, from `INFO commandstats`: every `cluster|…` subcommand but
    /// the read-only ones, and replicaof, failover, flush, config set/rewrite, ACL changes.
    /// Redis 6.2 reports `cmdstat_cluster` without subcommands (reads and writes together),
    /// so there the cluster subcommands are not in the snapshot: see
    /// [`Snapshot::cluster_subcommands`].
    pub fn changing_commands(&self, idx: usize) -> (BTreeMap<String, u64>, bool) {
        // Valkey reports redis_version:7.2.4; Redis 6.2 is the one without subcommands.
        let subcommands = self.info_field(idx, "server", "server_name").as_deref()
            == Some("valkey")
            || !self
                .info_field(idx, "server", "redis_version")
                .is_some_and(|v| v.starts_with("6."));
        let text = self.text(idx, &["INFO", "commandstats"]);
        (changing_commands(&text), subcommands)
    }

    /// Fingerprint and changing-command counts of every node.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_of(&(0..self.servers.len()).collect::<Vec<_>>())
    }

    pub fn snapshot_of(&self, nodes: &[usize]) -> Snapshot {
        let mut commands = Vec::new();
        let mut attempts = Vec::new();
        let mut cluster_subcommands = true;
        for idx in nodes {
            let (tried, subcommands) = self.changing_commands(*idx);
            cluster_subcommands &= subcommands;
            let text = self.text(*idx, &["INFO", "commandstats"]);
            commands.push(changing_commands_done(&text));
            attempts.push(tried);
        }
        Snapshot {
            nodes: self.fingerprint_of(nodes),
            commands,
            attempts,
            cluster_subcommands,
        }
    }

    /// The cluster as the servers report it, each from its own mouth: every primary (by its
    /// own `CLUSTER NODES` line) with its slots, and every replica whose own line names that
    /// primary's id, with the `master_port` and `master_link_status` of its `INFO replication`.
    /// Panics when a replica's `master_port` is not its primary's (plaintext or TLS) port.
    pub fn shards(&self) -> Vec<ShardSeen> {
        let ids: Vec<String> = (0..self.servers.len()).map(|i| self.myid(i)).collect();
        let own: Vec<Vec<String>> = (0..self.servers.len())
            .map(|idx| {
                let text = self.text(idx, &["CLUSTER", "NODES"]);
                let line = text.lines().find(|l| l.contains("myself")).unwrap();
                line.split_whitespace().map(str::to_owned).collect()
            })
            .collect();
        let mut shards: Vec<ShardSeen> = own
            .iter()
            .enumerate()
            .filter(|(_, f)| f[2].contains("master"))
            .map(|(idx, f)| ShardSeen {
                primary: idx,
                slots: f[8..].join(" "),
                replicas: Vec::new(),
            })
            .collect();
        for (idx, f) in own
            .iter()
            .enumerate()
            .filter(|(_, f)| f[2].contains("slave"))
        {
            let primary = ids
                .iter()
                .position(|id| *id == f[3])
                .unwrap_or_else(|| panic!("node {idx} replicates {}, which is none of ours", f[3]));
            let port: u16 = self
                .info_field(idx, "replication", "master_port")
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                port == self.port(primary) || Some(port) == self.tls_ports[primary],
                "node {idx}: master_port {port} is not node {primary}'s"
            );
            let link = self
                .info_field(idx, "replication", "master_link_status")
                .unwrap_or_default();
            shards
                .iter_mut()
                .find(|s| s.primary == primary)
                .unwrap_or_else(|| panic!("node {idx} replicates node {primary}, not a primary"))
                .replicas
                .push((idx, link));
        }
        // By first slot; primaries without slots last.
        shards.sort_by_key(|s| {
            s.slots
                .split(['-', ' '])
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        });
        shards
    }

    pub fn info_field(&self, idx: usize, section: &str, key: &str) -> Option<String> {
        let text = self.text(idx, &["INFO", section]);
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_owned())
        })
    }

    pub fn stop(&mut self, idx: usize) {
        stop_server(self.servers[idx].pid);
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for server in &self.servers {
            stop_server(server.pid);
        }
    }
}

/// Runs a command expected to be refused, and checks exit 2, the message, and that no node
/// changed: every node's fingerprint, and no changing command executed on any node (read from
/// the servers' own counters once the process has exited, so nothing can still be in flight).
pub fn assert_refused(
    servers: &Servers,
    args: &[&str],
    env: &[(&str, &str)],
    message: &str,
) -> Output {
    let before = servers.snapshot();
    assert!(
        before.cluster_subcommands,
        "assert_refused needs servers that count cluster subcommands (7.0+, Valkey)"
    );
    let out = clustersmith(args, env);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(message), "expected `{message}` in:\n{err}");
    before.assert_unchanged(&servers.snapshot(), "a refused run");
    out
}

/// One node's fingerprint from its `CLUSTER NODES` and `CLUSTER INFO` text and `DBSIZE`: for
/// every member it lists the id, address, flags, primary, config epoch and slots (open slots
/// included), then `cluster_current_epoch` and `cluster_my_epoch`, then the key count (left
/// out under a write load).
pub fn fingerprint_line(
    label: &str,
    cluster_nodes: &str,
    cluster_info: &str,
    keys: Option<i64>,
) -> String {
    let mut lines: Vec<String> = cluster_nodes
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // id, address, flags, primary, config epoch, slots.
            let mut kept = vec![f[0], f[1], f[2], f[3], f[6]];
            kept.extend(&f[8..]);
            kept.join(" ")
        })
        .collect();
    lines.sort();
    let epochs: Vec<&str> = cluster_info
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cluster_current_epoch:") || l.starts_with("cluster_my_epoch:"))
        .collect();
    let keys = keys.map_or(String::new(), |k| format!(" keys={k}"));
    format!(
        "{label}: {} | {}{keys}",
        lines.join(" | "),
        epochs.join(" ")
    )
}

/// One primary and its replicas, as the servers report them ([`Servers::shards`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSeen {
    pub primary: usize,
    /// The slot ranges of the primary's own line, as it prints them.
    pub slots: String,
    /// (node, `master_link_status`).
    pub replicas: Vec<(usize, String)>,
}

/// What every node reported before something that must change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// [`Servers::fingerprint`].
    pub nodes: Vec<String>,
    /// Changing commands that ran (calls that did not fail) per node.
    pub commands: Vec<BTreeMap<String, u64>>,
    /// [`Servers::changing_commands`] per node: every attempt, refused ones too.
    pub attempts: Vec<BTreeMap<String, u64>>,
    /// False when a node (Redis 6.2) does not count cluster subcommands apart.
    pub cluster_subcommands: bool,
}

impl Snapshot {
    /// Nothing changed: every node's view and data, and no changing command ran (a refused
    /// run may have tried some: see [`Snapshot::assert_untouched`]).
    pub fn assert_unchanged(&self, after: &Snapshot, what: &str) {
        for (idx, (b, a)) in self.nodes.iter().zip(&after.nodes).enumerate() {
            assert_eq!(b, a, "{what} changed node {idx}");
        }
        for (idx, (b, a)) in self.commands.iter().zip(&after.commands).enumerate() {
            assert_eq!(b, a, "{what} ran changing commands on node {idx}");
        }
        assert_eq!(self.cluster_subcommands, after.cluster_subcommands);
    }

    /// Nothing changed and nothing was even tried: no changing command attempted anywhere,
    /// refused ones counted (what "a re-run sends nothing" claims).
    pub fn assert_untouched(&self, after: &Snapshot, what: &str) {
        self.assert_unchanged(after, what);
        for (idx, (b, a)) in self.attempts.iter().zip(&after.attempts).enumerate() {
            assert_eq!(b, a, "{what} tried changing commands on node {idx}");
        }
    }
}

impl Servers {
    /// Creates, on every node, an ACL user that can observe but not change anything (no
    /// cluster subcommand but the read-only ones, no admin, no writes), and clears the ACL
    /// logs: a run as this user that tried any change is refused and leaves an `ACL LOG`
    /// entry, which works on every version (Redis 6.2's commandstats cannot tell cluster
    /// subcommands apart, and no version shows admin commands to `MONITOR`).
    pub fn add_read_only_user(&self, user: &str, password: &str) {
        let mut rules = vec![
            "ACL".to_owned(),
            "SETUSER".to_owned(),
            user.to_owned(),
            "reset".to_owned(),
            "on".to_owned(),
            format!(">{password}"),
            "~*".to_owned(),
            "-@all".to_owned(),
            "+@connection".to_owned(),
            "+info".to_owned(),
            "+dbsize".to_owned(),
        ];
        rules.extend(
            READ_ONLY_CLUSTER
                .iter()
                .map(|sub| format!("+cluster|{sub}")),
        );
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        for idx in 0..self.servers.len() {
            self.cmd(idx, &rules);
        }
        // The user cannot change anything, and a try is logged.
        let denied = redis::cmd("CLUSTER")
            .arg("SET-CONFIG-EPOCH")
            .arg(999)
            .query::<redis::Value>(&mut self.conn_as(0, Some(user), Some(password)))
            .unwrap_err();
        assert!(
            denied.to_string().to_lowercase().contains("noperm"),
            "{denied}"
        );
        assert_eq!(self.acl_log(0).len(), 1, "{:?}", self.acl_log(0));
        for idx in 0..self.servers.len() {
            self.cmd(idx, &["ACL", "LOG", "RESET"]);
        }
    }

    /// The node's `ACL LOG` entries (denied commands and failed logins), as text.
    pub fn acl_log(&self, idx: usize) -> Vec<String> {
        match self.cmd(idx, &["ACL", "LOG"]) {
            redis::Value::Array(entries) => entries.iter().map(|e| format!("{e:?}")).collect(),
            other => panic!("ACL LOG: {other:?}"),
        }
    }
}

/// Cluster subcommands that only read.
const READ_ONLY_CLUSTER: &[&str] = &[
    "nodes",
    "info",
    "myid",
    "myshardid",
    "slots",
    "shards",
    "links",
    "keyslot",
    "countkeysinslot",
    "getkeysinslot",
    "count-failure-reports",
    "replicas",
    "slaves",
    "help",
];

/// Read-only subcommands of newer servers only (Valkey 9): not granted to the read-only ACL
/// user (older servers refuse to name them), but not counted as changes either.
const READ_ONLY_CLUSTER_NEWER: &[&str] = &["getslotmigrations", "slot-stats"];

/// Other commands that change a node's role, cluster state or configuration.
const CHANGING: &[&str] = &[
    "replicaof",
    "slaveof",
    "failover",
    "flushall",
    "flushdb",
    "swapdb",
    "config|set",
    "config|rewrite",
    "config|resetstat",
    "acl|setuser",
    "acl|deluser",
    "acl|load",
    "debug",
    "shutdown",
];

/// From `INFO commandstats` text: attempted calls of changing commands.
pub fn changing_commands(text: &str) -> BTreeMap<String, u64> {
    // Every attempt counts, the refused ones too: a command refused before it ran (ACL, wrong
    // arity) is in `rejected_calls`, one that failed while running in `calls` (and
    // `failed_calls`). A run that claims to send nothing must not even have tried.
    changing_counts(text, |calls, rejected, _failed| calls + rejected)
}

/// From `INFO commandstats` text: calls of changing commands that ran without failing.
pub fn changing_commands_done(text: &str) -> BTreeMap<String, u64> {
    changing_counts(text, |calls, _rejected, failed| calls - failed)
}

/// Per changing command, `count(calls, rejected_calls, failed_calls)` where it is above 0.
fn changing_counts(text: &str, count: impl Fn(u64, u64, u64) -> u64) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let Some((name, fields)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let changing = match name.strip_prefix("cluster|") {
            Some(sub) => {
                !READ_ONLY_CLUSTER.contains(&sub) && !READ_ONLY_CLUSTER_NEWER.contains(&sub)
            }
            None => CHANGING.contains(&name),
        };
        let n = count(
            field("calls"),
            field("rejected_calls"),
            field("failed_calls"),
        );
        if changing && n > 0 {
            counts.insert(name.to_owned(), n);
        }
    }
    counts
}

/// Runs the clustersmith binary; `env` adds variables (REDISCLI_AUTH is removed unless given).
pub fn clustersmith(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clustersmith"));
    cmd.args(args).env_remove("REDISCLI_AUTH");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let started = Instant::now();
    let output = cmd.output().unwrap();
    eprintln!(
        "$ clustersmith {} -> {:?} in {:.2}s\n{}{}",
        args.join(" "),
        output.status.code(),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs clustersmith on a pseudo-terminal (`script` from util-linux gives it one, as an
/// operator's shell would), types `password` once the prompt is on the terminal, and returns
/// the exit code and everything the terminal showed (stdout and stderr both go there).
/// Bounded: the run is killed after 60 s.
pub fn clustersmith_on_tty(args: &[&str], password: &str) -> (Option<i32>, String) {
    use std::io::{Read as _, Write as _};
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let mut line = quote(env!("CARGO_BIN_EXE_clustersmith"));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("REDISCLI_AUTH")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut typed = false;
    let mut stdin = child.stdin.take();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => seen.extend(chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !typed
            && String::from_utf8_lossy(&seen).contains("password: ")
            && echo_is_off(child.id())
        {
            // The prompt is shown and the terminal no longer echoes (the prompt is written
            // just before echo is turned off: typing at once would race it, as typing ahead
            // of any prompt does); what is typed now must not come back.
            let input = stdin.as_mut().unwrap();
            input.write_all(format!("{password}\r").as_bytes()).unwrap();
            input.flush().unwrap();
            typed = true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "clustersmith on a tty did not finish:\n{}",
                String::from_utf8_lossy(&seen)
            );
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).into_owned();
    eprintln!(
        "$ [tty] clustersmith {} -> {:?}\n{text}",
        args.join(" "),
        status.code()
    );
    assert!(typed, "no password prompt on the terminal:\n{text}");
    (status.code(), text)
}

/// Writes a file that holds a secret, readable by its owner only (created 0600, never
/// widened), as the harness's redis.conf files are.
pub fn write_secret_file(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes()).unwrap();
}

/// True once the clustersmith process under `script` (PID `script_pid`) has turned echo off
/// on its terminal (`stty -a` on the pty its stdin is).
fn echo_is_off(script_pid: u32) -> bool {
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_clustersmith")).unwrap();
    // script's descendants (script, maybe a shell, then clustersmith).
    let mut pending = vec![script_pid];
    while let Some(pid) = pending.pop() {
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe) {
            let Ok(tty) = std::fs::read_link(format!("/proc/{pid}/fd/0")) else {
                return false;
            };
            let out = Command::new("stty").arg("-a").arg("-F").arg(&tty).output();
            return out.is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == "-echo")
            });
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        pending.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    false
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// `args` followed by every node address.
pub fn with_nodes<'a>(args: &[&'a str], nodes: &'a [String]) -> Vec<&'a str> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(nodes.iter().map(String::as_str));
    all
}

/// Waits (bounded) until `check` holds.
pub fn wait_until(what: &str, timeout: Duration, check: impl FnMut() -> bool) {
    assert!(eventually(timeout, check), "timed out waiting for {what}");
}

/// Whether `check` holds within `timeout` (polled every 50 ms); unlike [`wait_until`], for
/// states a broken setup may never reach.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Primary id -> replica ids, from one node's CLUSTER NODES.
pub fn replicas_by_primary(nodes_text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in nodes_text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[2].contains("slave") {
            map.entry(f[3].to_owned())
                .or_default()
                .push(f[0].to_owned());
        }
    }
    map
}

/// True in CI (`CI=true`; `.ci/run` sets it): skips that only a misconfigured machine
/// causes are failures there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Records that the calling test (or part of it) did not run: prints `SKIPPED`, and appends a
/// line to the file named by `CLUSTERSMITH_SKIP_LOG` (which `.ci/run` counts and lists at the
/// end, since the test runner shows a skipped test as `ok`). A skip that CI must never see
/// (`allowed_in_ci: false`: not root, alternative servers missing) fails the test when
/// [`in_ci`].
pub fn skip(reason: &str, allowed_in_ci: bool) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed)")
        .to_owned();
    let line = format!("{}::{test}: {reason}", env!("CARGO_CRATE_NAME"));
    if in_ci() && !allowed_in_ci {
        panic!("not allowed in CI (CI=true): {line}");
    }
    eprintln!("SKIPPED: {line}");
    println!("SKIPPED: {line}");
    if let Some(log) = std::env::var_os("CLUSTERSMITH_SKIP_LOG") {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("CLUSTERSMITH_SKIP_LOG {log:?}: {e}"));
        // One write of one short line: O_APPEND keeps lines from parallel tests whole.
        file.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

/// Other server binaries to test against, from `CLUSTERSMITH_TEST_SERVERS` (colon-separated;
/// `.ci/run` fetches Redis 6.2.14, Valkey 8.1.8 and Valkey 9.1.2). Each one missing is a
/// recorded skip, and in CI a failure, as is a list that lacks one of those three.
pub fn other_servers() -> Vec<PathBuf> {
    let named: Vec<PathBuf> = std::env::var_os("CLUSTERSMITH_TEST_SERVERS")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if named.is_empty() {
        skip(
            "CLUSTERSMITH_TEST_SERVERS names no server binary (Redis 6.2 / Valkey 8.1 untested); run .ci/fetch-alt-servers.sh DIR and export it",
            false,
        );
    }
    let mut found = Vec::new();
    for bin in named {
        if bin.is_file() {
            found.push(bin);
        } else {
            skip(
                &format!(
                    "CLUSTERSMITH_TEST_SERVERS names {}, which is not a file",
                    bin.display()
                ),
                false,
            );
        }
    }
    if in_ci() {
        let versions: Vec<BinaryVersion> = found.iter().map(|b| binary_version(b)).collect();
        for (flavour, prefix) in [("redis", "6.2."), ("valkey", "8.1."), ("valkey", "9.1.")] {
            assert!(
                versions
                    .iter()
                    .any(|v| v.flavour == flavour && v.version.starts_with(prefix)),
                "CI needs a {flavour} {prefix}x server in CLUSTERSMITH_TEST_SERVERS; found {versions:?}"
            );
        }
    }
    found
}

/// What a server binary says it is (`--version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryVersion {
    /// `redis` or `valkey`.
    pub flavour: String,
    pub version: String,
}

/// `Redis server v=6.2.14 sha=…` / `Valkey server v=8.1.8 sha=…`.
pub fn binary_version(bin: &Path) -> BinaryVersion {
    let out = Command::new(bin).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let flavour = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or_else(|| panic!("no version in `{} --version`: {text}", bin.display()))
        .to_owned();
    assert!(
        flavour == "redis" || flavour == "valkey",
        "`{} --version`: {text}",
        bin.display()
    );
    BinaryVersion { flavour, version }
}

impl Servers {
    /// Asserts, from every node's `INFO server`, that the servers are the binary's flavour and
    /// version (`redis_version`; on Valkey `server_name:valkey` and `valkey_version`), and
    /// returns it.
    pub fn assert_running(&self, bin: &Path) -> BinaryVersion {
        let expected = binary_version(bin);
        for idx in 0..self.servers.len() {
            let field = |key: &str| self.info_field(idx, "server", key);
            let seen = match field("server_name").as_deref() {
                Some("valkey") => BinaryVersion {
                    flavour: "valkey".into(),
                    version: field("valkey_version").unwrap_or_default(),
                },
                _ => BinaryVersion {
                    flavour: "redis".into(),
                    version: field("redis_version").unwrap_or_default(),
                },
            };
            assert_eq!(
                seen,
                expected,
                "node {idx} is not what {} says it is",
                bin.display()
            );
        }
        eprintln!("running against {} {}", expected.flavour, expected.version);
        expected
    }
}

/// The first port from `start` (in steps of 8) where `count` consecutive ports and their bus
/// ports are free: for sandboxes, which take consecutive ports.
pub fn free_port_block(start: u16, count: u16) -> u16 {
    (0..)
        .map(|k| start + k * 8)
        .take_while(|base| *base + count <= MAX_SAFE_PORT)
        .find(|base| (0..count).all(|i| ports_free(base + i)))
        .expect("no free block of ports")
}

/// The PIDs recorded in a sandbox's state file (`port pid start-time` per server line).
pub fn sandbox_pids(state: &Path) -> Vec<u32> {
    std::fs::read_to_string(state.join("sandbox.state"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect()
}

pub fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `--redis-conf` and `--log` for every server.
pub fn files_of(servers: &Servers) -> Vec<String> {
    servers
        .servers
        .iter()
        .flat_map(|s| {
            [
                "--redis-conf".to_owned(),
                path(&s.dir.join("redis.conf")),
                "--log".to_owned(),
                path(&s.log_path()),
            ]
        })
        .collect()
}

/// A redis.conf in `dir` for a server that will not start (or is expected not to): cluster
/// mode on `port`, its log `dir/server.log`, then `extra`.
pub fn broken_conf(dir: &Path, port: u16, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "bind 127.0.0.1\nport {port}\ncluster-enabled yes\ndir {d}\nlogfile {d}/server.log\npidfile {d}/server.pid\nsave \"\"\n{extra}",
            d = dir.display()
        ),
    )
    .unwrap();
    conf
}

/// Runs `bin conf` in the foreground, its stdout and stderr appended to `output` (as a BOSH
/// ctl script or a service manager does), and waits (bounded) for it to exit: for servers
/// that must fail to start. Panics, after stopping it, if it keeps running.
pub fn run_to_exit(bin: &Path, conf: &Path, output: &Path) -> i32 {
    run_command_to_exit(Command::new(bin), conf, output)
}

/// `bin` under an open-files limit of `nofile` it cannot raise: `prlimit` lowers it, and for
/// root (CI) `setpriv` also drops CAP_SYS_RESOURCE, with which the server would raise it
/// again. The limit is the process's own; nothing else on the machine changes.
pub fn under_open_files_limit(bin: &Path, nofile: u32) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}:{nofile}"));
    // SAFETY: geteuid(2) reads the caller's effective user id and cannot fail.
    #[expect(
        unsafe_code,
        reason = "geteuid(2) is how a process learns it runs as root"
    )]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        cmd.args([
            "setpriv",
            "--bounding-set=-sys_resource",
            "--inh-caps=-sys_resource",
        ]);
    }
    cmd.arg(bin);
    cmd
}

/// `bin` run as the unprivileged `nobody` (uid and gid 65534) under a limit of `nproc`
/// processes, where every thread counts: `prlimit` lowers the limit, `setpriv` switches the
/// user (the kernel never holds root to it). Needs root, as CI runs; the limit is the
/// process's own, and the server's directory must be nobody's.
pub fn as_nobody_under_process_limit(bin: &Path, nproc: u32) -> Command {
    // SAFETY: geteuid(2) reads the caller's effective user id and cannot fail.
    #[expect(
        unsafe_code,
        reason = "geteuid(2) is how a process learns it runs as root"
    )]
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "running a server as another user needs root");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nproc={nproc}:{nproc}"));
    cmd.args([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]);
    cmd.arg(bin);
    cmd
}

/// [`run_to_exit`] for a prepared command (the server binary, or a launcher that execs it).
pub fn run_command_to_exit(mut cmd: Command, conf: &Path, output: &Path) -> i32 {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .unwrap();
    let mut child = cmd
        .arg(conf)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server at {} did not exit", conf.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server process a test started itself (under a launcher such as [`under_open_files_limit`]),
/// killed and reaped when dropped, also when the test fails.
pub struct Launched(std::process::Child);

impl Launched {
    pub fn spawn(cmd: &mut Command) -> Launched {
        Launched(
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGSTOP now, SIGCONT when dropped (also when the test fails).
pub struct Frozen(u32);

impl Frozen {
    pub fn new(pid: u32) -> Frozen {
        clustersmith_io::sandbox::signal(pid, libc::SIGSTOP);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        clustersmith_io::sandbox::signal(self.0, libc::SIGCONT);
    }
}

/// An independent write load on the cluster (`clustersmith-load`: one writer per shard,
/// every acknowledged write read back by `finish`), started through node `idx` and proven to
/// run: it has acknowledged writes before this returns.
pub fn start_load(servers: &Servers, idx: usize, rate: u32) -> clustersmith_load::Load {
    let mut options =
        clustersmith_load::LoadOptions::new(vec![format!("127.0.0.1:{}", servers.port(idx))], rate);
    options.user = servers.user.clone();
    options.password = servers.password.clone();
    let load = clustersmith_load::Load::start(options).unwrap();
    assert!(
        load.wait_for_writes(u64::from(rate / 10).max(20), Duration::from_secs(10)),
        "the load did not get going"
    );
    load
}

/// Checks that every error the load recorded is a `CLUSTERDOWN` that the node which gave it
/// explains in its own log: `Cluster state changed: fail` at most a second before the error,
/// then `ok` within 200 ms (a blip, not an outage). Redis up to 7.2 unassigns a shard's slots
/// for a moment when its old primary's "I am a replica now" reaches a node before the new
/// primary's claim does (`clusterDelNodeSlots` on a primary turned replica; Redis 7.4 and
/// Valkey 8 keep the slots with the shard), and a node whose state is `fail` answers every
/// key command with `CLUSTERDOWN`, whichever shard it is for. `state_lines` are server log
/// lines prefixed by the server's address (`TestBed::log_lines`); times are UTC.
pub fn clusterdown_blips_explained(
    errors: &[clustersmith_load::ErrorSample],
    state_lines: &[String],
) -> Result<(), String> {
    // (address, "fail"/"ok", seconds of the day)
    let changes: Vec<(&str, &str, f64)> = state_lines
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let state = line.rsplit("Cluster state changed: ").next()?.trim();
            let time = words.get(5)?;
            let mut parts = time.split(':');
            let (h, m, s): (f64, f64, f64) = (
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            );
            Some((words[0], state, h * 3600.0 + m * 60.0 + s))
        })
        .collect();
    for error in errors {
        if error.kind != "CLUSTERDOWN" {
            return Err(format!("not a CLUSTERDOWN: {error}"));
        }
        let node = error.node.as_deref().unwrap_or("");
        let at = error.at_unix_s % 86_400.0;
        let blip = changes.iter().enumerate().any(|(i, (addr, state, t))| {
            *addr == node
                && *state == "fail"
                && *t <= at + 0.05
                && at - *t <= 1.0
                && changes[i + 1..]
                    .iter()
                    .find(|(a, _, _)| a == addr)
                    .is_some_and(|(_, next, t_ok)| *next == "ok" && t_ok - t <= 0.2)
        });
        if !blip {
            return Err(format!(
                "{error}: the node logged no state blip (fail, then ok within 200 ms) around it"
            ));
        }
    }
    Ok(())
}
