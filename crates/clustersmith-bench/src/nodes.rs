//! A set of fresh servers for one measurement, stopped (by PID) and checked gone before the
//! next measurement starts.
//!
//! A server left running from one sample would load the two cores the next sample runs on,
//! and one holding a port would silently shift the next sample onto other ports; so
//! [`Nodes::stop`] does not return until every process we started is gone and every port and
//! bus port is free again, and fails naming what is left otherwise.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use clustersmith_io::sandbox::{
    LocalServer, MAX_SAFE_PORT, ProcStat, ServerConfig, ports_free, signal, start_server,
};

/// How long the servers get to exit on SIGTERM (with `save ""` they exit in milliseconds)
/// before the ones still running get SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long, after SIGKILL, the processes get to be reaped and their ports to be released.
const KILL_GRACE: Duration = Duration::from_secs(5);

pub struct Nodes {
    pub servers: Vec<LocalServer>,
    /// Set once [`Nodes::stop`] has run, so `Drop` does not stop them a second time.
    stopped: bool,
    /// Removed after `drop` has stopped the servers (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl Nodes {
    /// Starts `count` servers on the first free ports from `base_port`, each with the given
    /// `cluster-node-timeout`.
    pub fn start(
        bin: &Path,
        count: usize,
        base_port: u16,
        node_timeout_ms: u64,
    ) -> anyhow::Result<Nodes> {
        let mut nodes = Nodes {
            servers: Vec::with_capacity(count),
            stopped: false,
            dir: tempfile::Builder::new()
                .prefix("clustersmith-bench-")
                .tempdir()?,
        };
        let mut port = base_port;
        while nodes.servers.len() < count {
            anyhow::ensure!(
                port <= MAX_SAFE_PORT,
                "not enough free ports from {base_port} (bus ports must stay below 32768)"
            );
            if ports_free(port) {
                let server = start_server(&ServerConfig {
                    bin: bin.to_owned(),
                    dir: nodes.dir.path().join(format!("node-{port}")),
                    port,
                    password: None,
                    directives: vec![(
                        "cluster-node-timeout".to_owned(),
                        node_timeout_ms.to_string(),
                    )],
                })?;
                nodes.servers.push(server);
            }
            port += 1;
        }
        Ok(nodes)
    }

    pub fn addrs(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// CPU time the servers have used so far (user + system, summed over every server), in
    /// ms, from `/proc/PID/stat`. `None` when one of them is no longer the process we started
    /// (its figure would be missing from the sum). Each server's figure is in whole clock
    /// ticks (10 ms), so the sum reads low by less than two ticks per server.
    pub fn cpu_ms(&self) -> Option<f64> {
        let ticks = clock_ticks_per_second()?;
        let mut total = 0u64;
        for server in &self.servers {
            let stat = ProcStat::read(server.pid)?;
            if Some(stat.start_time) != server.start_time || stat.zombie {
                return None;
            }
            total += stat.utime + stat.stime;
        }
        Some(total as f64 * 1000.0 / ticks as f64)
    }

    /// Stops every server and waits (bounded) until each process we started is gone (no
    /// `/proc/PID`, or a different process under that PID) and each port and bus port is
    /// free. Fails naming the leftovers otherwise, so no sample starts beside the last one's
    /// servers.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stopped = true;
        let started = Instant::now();
        // Signal all first, then wait for all: stopping 100 nodes one by one takes seconds.
        self.signal_running(libc::SIGTERM);
        if !self.wait_clear(TERM_GRACE) {
            self.signal_running(libc::SIGKILL);
            self.wait_clear(KILL_GRACE);
        }
        let leftovers = self.leftovers();
        anyhow::ensure!(
            leftovers.is_empty(),
            "{} of {} servers not cleared {:.1} s after stopping them (the next sample would \
             run beside them): {}",
            leftovers.len(),
            self.servers.len(),
            started.elapsed().as_secs_f64(),
            leftovers.join("; ")
        );
        Ok(())
    }

    /// Signals every server that still runs as the process we started (same PID and start
    /// time, not a zombie): never a PID that was reused by someone else.
    fn signal_running(&self, sig: i32) {
        for server in self.servers.iter().filter(|s| s.is_running()) {
            signal(server.pid, sig);
        }
    }

    /// Waits until nothing is left, up to `limit`; true when nothing is.
    fn wait_clear(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.leftovers().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What is left of the servers: processes not reaped, ports still bound.
    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for server in &self.servers {
            let mut what = String::new();
            match ProcStat::read(server.pid) {
                // A zombie has exited (its sockets are closed) but was not reaped yet: it is
                // still a leftover, as its PID is still ours.
                Some(stat) if Some(stat.start_time) == server.start_time => {
                    let state = if stat.zombie {
                        "exited, not reaped"
                    } else {
                        "running"
                    };
                    let _ = write!(what, "pid {} {state}", server.pid);
                }
                // Gone, or the PID now belongs to another process: ours was reaped.
                _ => {}
            }
            // Checked separately for each: the bus port outlives the port in some shutdowns.
            for port in [server.port, server.port + 10000] {
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                    if !what.is_empty() {
                        what.push_str(", ");
                    }
                    let _ = write!(what, "port {port} in use");
                }
            }
            if !what.is_empty() {
                out.push(format!("node {}: {what}", server.port));
            }
        }
        out
    }
}

impl Drop for Nodes {
    /// Best effort when a measurement failed before [`Nodes::stop`]: the servers are still
    /// ours to stop, and the error that got us here is the one worth reporting.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.signal_running(libc::SIGTERM);
        if !self.wait_clear(TERM_GRACE) {
            self.signal_running(libc::SIGKILL);
            self.wait_clear(KILL_GRACE);
        }
    }
}

/// The unit of `/proc/PID/stat`'s times (100 on Linux, but asked, not assumed).
#[allow(
    unsafe_code,
    reason = "sysconf is the only interface that reports the clock tick of /proc times"
)]
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_servers_are_checked_gone_and_ports_free() {
        let bin = clustersmith_io::sandbox::find_server_binary(None).unwrap();
        let nodes = Nodes::start(&bin, 2, 22601, 5000).unwrap();
        assert!(nodes.cpu_ms().is_some());
        assert!(
            nodes.leftovers().len() == 2,
            "running servers are leftovers"
        );
        let servers = nodes.servers.clone();
        nodes.stop().unwrap();
        for server in servers {
            let now = ProcStat::read(server.pid);
            assert!(now.is_none_or(|s| Some(s.start_time) != server.start_time));
            assert!(ports_free(server.port));
        }
    }

    #[test]
    fn leftovers_name_the_process_and_the_ports_still_held() {
        // A stand-in "server": this very process, holding a port (never signalled here).
        // From the safe range (an ephemeral port + 10000 could overflow).
        let (port, _held) = (22650..MAX_SAFE_PORT)
            .filter(|&p| ports_free(p))
            .find_map(|p| Some((p, std::net::TcpListener::bind(("127.0.0.1", p)).ok()?)))
            .unwrap();
        let me = ProcStat::read(std::process::id()).unwrap();
        let nodes = Nodes {
            servers: vec![LocalServer {
                port,
                pid: std::process::id(),
                start_time: Some(me.start_time),
                dir: std::env::temp_dir(),
            }],
            // Nothing of ours to stop when it drops.
            stopped: true,
            dir: tempfile::tempdir().unwrap(),
        };
        let left = nodes.leftovers();
        assert_eq!(left.len(), 1);
        assert!(left[0].contains(&format!("pid {} running", std::process::id())));
        assert!(left[0].contains(&format!("port {port} in use")));
    }

    #[test]
    fn this_process_has_cpu_time_and_a_start_time() {
        let me = ProcStat::read(std::process::id()).unwrap();
        assert!(!me.zombie && me.start_time > 0);
        assert!(clock_ticks_per_second().is_some());
    }
}
