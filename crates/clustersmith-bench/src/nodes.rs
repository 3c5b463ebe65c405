//! A set of fresh servers for one measurement, stopped (by PID) when dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use clustersmith_io::sandbox::{
    LocalServer, MAX_SAFE_PORT, ServerConfig, is_our_server, ports_free, signal, start_server,
    stop_server,
};

pub struct Nodes {
    pub servers: Vec<LocalServer>,
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
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // Signal all first, then wait for each: stopping 100 nodes one by one takes seconds.
        for server in &self.servers {
            if is_our_server(server.pid) {
                signal(server.pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for server in &self.servers {
            while is_our_server(server.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop_server(server.pid);
        }
    }
}
