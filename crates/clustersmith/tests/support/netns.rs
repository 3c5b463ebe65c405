//! A test bed of "hosts" made of Linux network namespaces: each host has its own address in
//! 10.77.0.0/24 (a range that exists only inside the bed), a BOSH-style DNS name served from
//! `/etc/netns/<ns>/hosts` (which `ip netns exec` mounts over `/etc/hosts` in that namespace
//! only), an availability zone, and its own `redis-server` processes on the BOSH ports. The
//! hosts hang off a bridge in a hub namespace; clustersmith and redis-cli run in a client
//! namespace on the same bridge. Everything is removed on drop, also when a test fails.
//!
//! Needs root (CI runs as root); without it `TestBed::new` records a skip (a failure in CI) and
//! returns `None`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clustersmith_io::pki::TestCa;
use clustersmith_io::sandbox::{is_our_server, signal, stop_server};

static BEDS: AtomicUsize = AtomicUsize::new(0);

const NETWORK: &str = "10.77.0";
const DEPLOYMENT: &str = "redis-cluster-6-64134c80";

pub struct Host {
    pub ns: String,
    pub ip: Ipv4Addr,
    /// `<uuid>.node.blacksmith.<deployment>.bosh`, as BOSH DNS names instances.
    pub name: String,
    pub zone: String,
}

pub struct NetServer {
    pub host: usize,
    pub port: u16,
    pub pid: u32,
    pub dir: PathBuf,
    conf: PathBuf,
}

pub struct TestBed {
    tag: String,
    hub: String,
    pub client: String,
    pub hosts: Vec<Host>,
    pub servers: Vec<NetServer>,
    /// TLS-only servers (`port 0`, `tls-cluster`, `tls-replication`) with certificates for
    /// their DNS name and IP.
    pub ca: Option<TestCa>,
    dir: tempfile::TempDir,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` tool")
}

fn must(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

impl TestBed {
    /// `hosts` namespaces on one bridge, plus a client namespace. `None` (and a loud
    /// recorded skip, a failure in CI) when namespaces cannot be made here.
    pub fn new(hosts: usize, tls: bool) -> Option<TestBed> {
        let iproute2 = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !is_root() || !iproute2 {
            super::skip(
                "network namespace tests need root and iproute2 (.ci/run runs them as root)",
                false,
            );
            return None;
        }
        let tag = format!(
            "cs{}x{}",
            std::process::id() % 100_000,
            BEDS.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().unwrap();
        let mut bed = TestBed {
            hub: format!("{tag}-hub"),
            client: format!("{tag}-client"),
            tag,
            hosts: Vec::new(),
            servers: Vec::new(),
            ca: tls.then(|| TestCa::create(&dir.path().join("tls")).unwrap()),
            dir,
        };
        must(&["netns", "add", &bed.hub]);
        must(&["-n", &bed.hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &bed.hub, "link", "set", "br0", "up"]);
        for idx in 0..hosts {
            let host = Host {
                ns: format!("{}-h{idx}", bed.tag),
                ip: Ipv4Addr::new(10, 77, 0, idx as u8 + 1),
                name: format!(
                    "{:08x}-5c58-4d40-907b-{:012x}.node.blacksmith.{DEPLOYMENT}.bosh",
                    0x515c_0000u32 + idx as u32,
                    0x7f2e_1e6d_9997u64 + idx as u64
                ),
                zone: format!("z{}", idx + 1),
            };
            bed.plug(&host.ns, &format!("h{idx}"), host.ip);
            bed.hosts.push(host);
        }
        let client = bed.client.clone();
        bed.plug(&client, "client", Ipv4Addr::new(10, 77, 0, 250));
        bed.write_hosts_files();
        Some(bed)
    }

    /// A namespace with loopback up and `eth0` on the hub's bridge.
    fn plug(&self, ns: &str, hub_end: &str, addr: Ipv4Addr) {
        must(&["netns", "add", ns]);
        must(&["-n", ns, "link", "set", "lo", "up"]);
        must(&[
            "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hub_end, "netns",
            &self.hub,
        ]);
        must(&["-n", &self.hub, "link", "set", hub_end, "master", "br0"]);
        must(&["-n", &self.hub, "link", "set", hub_end, "up"]);
        must(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        must(&["-n", ns, "link", "set", "eth0", "up"]);
    }

    /// Every namespace resolves every host's name (the BOSH DNS of the bed).
    pub fn write_hosts_files(&self) {
        let mut text = String::from("127.0.0.1 localhost\n");
        for host in &self.hosts {
            text.push_str(&format!("{} {}\n", host.ip, host.name));
        }
        for ns in self
            .hosts
            .iter()
            .map(|h| h.ns.as_str())
            .chain([self.client.as_str()])
        {
            let dir = Path::new("/etc/netns").join(ns);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("hosts"), &text).unwrap();
        }
    }

    /// Starts a server on `host` at `port` (BOSH uses 6379; every host has its own ports),
    /// with extra directives; waits (bounded) until it is ready.
    pub fn start_server(&mut self, host: usize, port: u16, directives: &[(&str, &str)]) -> usize {
        let dir = self
            .dir
            .path()
            .join(format!("{}-{port}", self.hosts[host].ns));
        std::fs::create_dir_all(&dir).unwrap();
        let h = &self.hosts[host];
        let mut conf = format!(
            "bind {} 127.0.0.1\nprotected-mode no\ncluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\ndir {d}\nlogfile {d}/server.log\npidfile {d}/server.pid\ndaemonize yes\nappendonly yes\nappendfsync always\nrepl-diskless-sync-delay 0\n",
            h.ip,
            d = dir.display()
        );
        if let Some(ca) = &self.ca {
            let files = ca
                .issue(&dir, "node", &[h.name.as_str(), &h.ip.to_string()])
                .unwrap();
            conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-cluster yes\ntls-replication yes\n",
                files.cert.display(),
                files.key.display(),
                ca.ca_cert.display()
            ));
        } else {
            conf.push_str(&format!("port {port}\n"));
        }
        for (key, value) in directives {
            conf.push_str(&format!("{key} {value}\n"));
        }
        let conf_path = dir.join("redis.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut server = NetServer {
            host,
            port,
            pid: 0,
            dir,
            conf: conf_path,
        };
        self.launch(&mut server);
        self.servers.push(server);
        self.servers.len() - 1
    }

    fn launch(&self, server: &mut NetServer) {
        let _ = std::fs::remove_file(server.dir.join("server.pid"));
        let status = Command::new("ip")
            .args(["netns", "exec", &self.hosts[server.host].ns, "redis-server"])
            .arg(&server.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "redis-server did not start in {}",
            self.hosts[server.host].ns
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = std::fs::read_to_string(server.dir.join("server.pid"))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            if let Some(pid) = pid
                && log.contains("Ready to accept connections")
            {
                server.pid = pid;
                return;
            }
            assert!(Instant::now() < deadline, "server not ready:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One server on each of the first `hosts` hosts at each of `ports`, host by host.
    pub fn start_on_hosts(&mut self, hosts: usize, ports: &[u16]) -> Vec<usize> {
        let mut started = Vec::new();
        for host in 0..hosts {
            for port in ports {
                started.push(self.start_server(host, *port, &[]));
            }
        }
        started
    }

    /// Stops a server (by its PID) and starts it again from the same directory, as a VM
    /// restart does (nodes.conf kept).
    pub fn restart_server(&mut self, idx: usize) {
        stop_server(self.servers[idx].pid);
        let mut server = std::mem::replace(
            &mut self.servers[idx],
            NetServer {
                host: 0,
                port: 0,
                pid: 0,
                dir: PathBuf::new(),
                conf: PathBuf::new(),
            },
        );
        // The log is appended to; the readiness check needs this start's line.
        let _ = std::fs::rename(
            server.dir.join("server.log"),
            server.dir.join("server.log.old"),
        );
        self.launch(&mut server);
        self.servers[idx] = server;
    }

    /// Every server's log lines (this start's and the one before) that contain `pattern`,
    /// prefixed by the server's address: what the servers said when a test's numbers are off.
    pub fn log_lines(&self, pattern: &str) -> Vec<String> {
        let mut found = Vec::new();
        for server in &self.servers {
            let addr = format!("{}:{}", self.hosts[server.host].ip, server.port);
            for name in ["server.log.old", "server.log"] {
                let text = std::fs::read_to_string(server.dir.join(name)).unwrap_or_default();
                found.extend(
                    text.lines()
                        .filter(|l| l.contains(pattern))
                        .map(|l| format!("{addr} {l}")),
                );
            }
        }
        found
    }

    pub fn stop_server(&self, idx: usize) {
        stop_server(self.servers[idx].pid);
    }

    /// SIGKILL, like a crash or a VM lost; returns once the process is gone (bounded).
    pub fn kill_server(&self, idx: usize) {
        let pid = self.servers[idx].pid;
        signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_our_server(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn freeze(&self, idx: usize, frozen: bool) {
        signal(
            self.servers[idx].pid,
            if frozen { libc::SIGSTOP } else { libc::SIGCONT },
        );
    }

    /// Moves a host to a new address; its DNS name follows (every hosts file is rewritten).
    pub fn change_ip(&mut self, host: usize, last_octet: u8) {
        let h = &self.hosts[host];
        let old = format!("{}/24", h.ip);
        let new_ip = Ipv4Addr::new(10, 77, 0, last_octet);
        must(&["-n", &h.ns, "addr", "del", &old, "dev", "eth0"]);
        must(&[
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{new_ip}/24"),
            "dev",
            "eth0",
        ]);
        let old_ip = h.ip.to_string();
        self.hosts[host].ip = new_ip;
        for server in self.servers.iter().filter(|s| s.host == host) {
            let conf = std::fs::read_to_string(&server.conf).unwrap();
            std::fs::write(
                &server.conf,
                conf.replace(&format!("bind {old_ip} "), &format!("bind {new_ip} ")),
            )
            .unwrap();
        }
        self.write_hosts_files();
    }

    /// `name:port,zone=z` per server, as an operator gives them.
    pub fn node_args(&self, servers: &[usize], zones: bool) -> Vec<String> {
        servers
            .iter()
            .map(|idx| {
                let s = &self.servers[*idx];
                let h = &self.hosts[s.host];
                if zones {
                    format!("{}:{},zone={}", h.name, s.port, h.zone)
                } else {
                    format!("{}:{}", h.name, s.port)
                }
            })
            .collect()
    }

    /// TLS client options for clustersmith and redis-cli (they share the flag names): the
    /// bed's CA and one client certificate from it, issued on first use.
    pub fn tls_args(&self) -> Vec<String> {
        let Some(ca) = &self.ca else {
            return Vec::new();
        };
        let tls = self.dir.path().join("tls");
        if !tls.join("client.crt").exists() {
            ca.issue(&tls, "client", &["client"]).unwrap();
        }
        vec![
            "--tls".into(),
            "--cacert".into(),
            ca.ca_cert.display().to_string(),
            "--cert".into(),
            tls.join("client.crt").display().to_string(),
            "--key".into(),
            tls.join("client.key").display().to_string(),
        ]
    }

    /// Runs clustersmith in the client namespace.
    pub fn clustersmith(&self, args: &[String]) -> Output {
        let started = Instant::now();
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                env!("CARGO_BIN_EXE_clustersmith"),
            ])
            .args(args)
            .env_remove("REDISCLI_AUTH")
            .output()
            .unwrap();
        eprintln!(
            "$ [{}] clustersmith {} -> {:?} in {:.2}s\n{}{}",
            self.client,
            args.join(" "),
            out.status.code(),
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// redis-cli in the client namespace against one server, by IP.
    pub fn cli(&self, idx: usize, args: &[&str]) -> String {
        let s = &self.servers[idx];
        let h = &self.hosts[s.host];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.client, "redis-cli", "-h"])
            .arg(h.ip.to_string())
            .args(["-p", &s.port.to_string()]);
        cmd.args(self.tls_args());
        let out = cmd.args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every listed server's cluster view ([`super::fingerprint_line`], without the key count
    /// when `keys` is false, for use under a write load) and the changing commands it has run
    /// (`INFO commandstats`; the bed runs Debian's Redis 7.0, which counts subcommands).
    pub fn snapshot(&self, servers: &[usize], keys: bool) -> super::Snapshot {
        let mut nodes = Vec::new();
        let mut commands = Vec::new();
        let mut attempts = Vec::new();
        for idx in servers {
            let count = keys.then(|| {
                self.cli(*idx, &["DBSIZE"])
                    .trim()
                    .parse::<i64>()
                    .unwrap_or_else(|e| panic!("DBSIZE of server {idx}: {e}"))
            });
            let cluster_nodes = self.cli(*idx, &["CLUSTER", "NODES"]);
            assert!(
                cluster_nodes.contains("myself"),
                "server {idx}: {cluster_nodes}"
            );
            let info = self.cli(*idx, &["CLUSTER", "INFO"]);
            nodes.push(super::fingerprint_line(
                &format!("server {idx}"),
                &cluster_nodes,
                &info,
                count,
            ));
            let stats = self.cli(*idx, &["INFO", "commandstats"]);
            assert!(stats.contains("cmdstat_cluster|"), "server {idx}: {stats}");
            commands.push(super::changing_commands_done(&stats));
            attempts.push(super::changing_commands(&stats));
        }
        super::Snapshot {
            nodes,
            commands,
            attempts,
            cluster_subcommands: true,
        }
    }

    /// Sum of `DBSIZE` over the listed servers.
    pub fn keys(&self, servers: &[usize]) -> i64 {
        servers
            .iter()
            .map(|i| {
                self.cli(*i, &["DBSIZE"])
                    .trim()
                    .parse::<i64>()
                    .unwrap_or_else(|e| panic!("DBSIZE of server {i}: {e}"))
            })
            .sum()
    }

    /// Runs a shell command in the client namespace (a cluster-aware client load).
    pub fn client_shell(&self, script: &str) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.client, "bash", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.hosts.iter().map(|h| h.ns.clone()).collect();
        all.push(self.client.clone());
        all.push(self.hub.clone());
        all
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        for server in &self.servers {
            if server.pid != 0 {
                signal(server.pid, libc::SIGCONT);
                stop_server(server.pid);
            }
        }
        for ns in self.namespaces() {
            let _ = ip(&["netns", "del", &ns]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&ns));
        }
    }
}

/// Namespaces whose names start with `prefix` (to check that a bed left none behind).
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let list = String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).into_owned();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

impl TestBed {
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// PIDs of the bed's servers that are still running.
    pub fn running_pids(&self) -> Vec<u32> {
        self.servers
            .iter()
            .map(|s| s.pid)
            .filter(|p| is_our_server(*p))
            .collect()
    }
}

impl TestBed {
    /// The BOSH layout of job `job` under `root` for server `idx`, as on the VM that runs
    /// it: `/var/vcap/jobs/JOB/config/redis.conf` (the server's own, with VM paths),
    /// `config/tls/redis.{ca,cert,key}` (its CA, certificate and key; BOSH jobs also present
    /// the node certificate as their client certificate), `/var/vcap/sys/log/JOB/JOB.log` and
    /// `/var/vcap/store/JOB/nodes.conf` (links to the live files), and an empty `bin/`.
    /// Returns the job directory.
    pub fn write_bosh_job(&self, root: &Path, job: &str, idx: usize) -> PathBuf {
        let server = &self.servers[idx];
        let job_dir = root.join("var/vcap/jobs").join(job);
        let log_dir = root.join("var/vcap/sys/log").join(job);
        let store = root.join("var/vcap/store").join(job);
        for dir in [
            job_dir.join("bin"),
            job_dir.join("config/tls"),
            log_dir.clone(),
            store.clone(),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let vm_jobs = format!("/var/vcap/jobs/{job}/config");
        let mut conf = String::new();
        for line in std::fs::read_to_string(&server.conf).unwrap().lines() {
            let key = line.split_whitespace().next().unwrap_or_default();
            let vm_path = match key {
                "dir" => Some(format!("/var/vcap/store/{job}")),
                "logfile" => Some(format!("/var/vcap/sys/log/{job}/{job}.log")),
                "pidfile" => Some(format!("/var/vcap/sys/run/{job}/{job}.pid")),
                "tls-cert-file" => Some(format!("{vm_jobs}/tls/redis.cert")),
                "tls-key-file" => Some(format!("{vm_jobs}/tls/redis.key")),
                "tls-ca-cert-file" => Some(format!("{vm_jobs}/tls/redis.ca")),
                _ => None,
            };
            match vm_path {
                Some(path) => conf.push_str(&format!("{key} {path}\n")),
                None => conf.push_str(&format!("{line}\n")),
            }
        }
        std::fs::write(job_dir.join("config/redis.conf"), conf).unwrap();
        if let Some(ca) = &self.ca {
            let tls = job_dir.join("config/tls");
            std::fs::copy(&ca.ca_cert, tls.join("redis.ca")).unwrap();
            std::fs::copy(server.dir.join("node.crt"), tls.join("redis.cert")).unwrap();
            std::fs::copy(server.dir.join("node.key"), tls.join("redis.key")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                tls.join("redis.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let link = |target: PathBuf, at: PathBuf| {
            let _ = std::fs::remove_file(&at);
            std::os::unix::fs::symlink(target, at).unwrap();
        };
        link(
            server.dir.join("server.log"),
            log_dir.join(format!("{job}.log")),
        );
        link(server.dir.join("nodes.conf"), store.join("nodes.conf"));
        job_dir
    }
}

/// An independent write load (`clustersmith-load`) in the bed's client namespace: started
/// from a thread that entered that namespace, whose writer threads inherit it, and read back
/// there by `finish`.
pub struct NsLoad {
    stop: std::sync::mpsc::Sender<()>,
    done: std::thread::JoinHandle<clustersmith_load::LoadReport>,
}

impl NsLoad {
    /// Stops the writers and reads every acknowledged write back.
    pub fn finish(self) -> clustersmith_load::LoadReport {
        let _ = self.stop.send(());
        self.done.join().expect("the load's thread panicked")
    }
}

impl TestBed {
    /// Starts `rate` writes/s through `seeds` (`IP:PORT`), proven to run (100 writes
    /// acknowledged) before this returns.
    pub fn start_load(&self, seeds: Vec<String>, rate: u32) -> NsLoad {
        let ns = self.client.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let done = std::thread::spawn(move || {
            enter_netns(&ns);
            let load =
                clustersmith_load::Load::start(clustersmith_load::LoadOptions::new(seeds, rate))
                    .expect("the load starts");
            let running = load.wait_for_writes(100, Duration::from_secs(10));
            ready_tx.send(running).unwrap();
            // Bounded by the test, which always finishes (or drops) its load.
            let _ = stop_rx.recv();
            load.finish().expect("the load reads back")
        });
        assert!(
            ready_rx.recv().unwrap_or(false),
            "the load did not get going"
        );
        NsLoad {
            stop: stop_tx,
            done,
        }
    }
}

/// Moves the calling thread (only it) into the network namespace `ns`.
fn enter_netns(ns: &str) {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: setns(2) with an open namespace file descriptor; it changes the network
    // namespace of this thread alone and touches no memory of ours.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns into {ns}: {}",
        std::io::Error::last_os_error()
    );
}
