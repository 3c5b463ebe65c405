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

fn allocate_port() -> u16 {
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
        for _ in 0..5 {
            match self.try_add(bin, opts) {
                Ok(idx) => return idx,
                Err(SandboxError::PortInUse { port }) => {
                    eprintln!("port {port} was taken meanwhile; trying other ports");
                }
                Err(other) => panic!("{other}"),
            }
        }
        panic!("no free ports for a test server after 5 attempts");
    }

    fn try_add(&mut self, bin: &Path, opts: &ServerOpts) -> Result<usize, SandboxError> {
        let port = allocate_port();
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
        let mut info = redis::RedisConnectionInfo::default();
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        if let Some(user) = &self.user {
            info = info.set_username(user);
        }
        let addr = redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port(idx));
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .unwrap()
            .set_redis_settings(info);
        redis::Client::open(info).unwrap().get_connection().unwrap()
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

    /// What a node reports, minus the fields that change on their own (ping/pong times, link
    /// state): used to prove a refused run changed nothing.
    pub fn fingerprint(&self) -> Vec<String> {
        (0..self.servers.len())
            .map(|idx| {
                let mut lines: Vec<String> = self
                    .text(idx, &["CLUSTER", "NODES"])
                    .lines()
                    .map(|line| {
                        let f: Vec<&str> = line.split_whitespace().collect();
                        let mut kept = vec![f[0], f[2], f[3], f[6]];
                        kept.extend(&f[8..]);
                        kept.join(" ")
                    })
                    .collect();
                lines.sort();
                let keys: i64 = redis::from_redis_value(self.cmd(idx, &["DBSIZE"])).unwrap();
                format!("{} keys={keys}", lines.join(" | "))
            })
            .collect()
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
/// changed.
pub fn assert_refused(
    servers: &Servers,
    args: &[&str],
    env: &[(&str, &str)],
    message: &str,
) -> Output {
    let before = servers.fingerprint();
    let out = clustersmith(args, env);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(message), "expected `{message}` in:\n{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        servers.fingerprint(),
        before,
        "a refused run changed a node"
    );
    out
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
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
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

/// Other server binaries to test against, from `CLUSTERSMITH_TEST_SERVERS` (colon-separated;
/// `.ci/run` fetches Redis 6.2.14 and Valkey 8.1.8). Says so loudly when there are none.
pub fn other_servers() -> Vec<PathBuf> {
    let found: Vec<PathBuf> = std::env::var_os("CLUSTERSMITH_TEST_SERVERS")
        .map(|v| std::env::split_paths(&v).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    if found.is_empty() {
        eprintln!(
            "SKIPPED: CLUSTERSMITH_TEST_SERVERS names no server binary; run .ci/fetch-alt-servers.sh DIR and export it"
        );
        println!("SKIPPED: no Redis 6.2 / Valkey binaries given (CLUSTERSMITH_TEST_SERVERS)");
    }
    found
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
