//! How a roll restarts a node's server: the operator's command (`--restart-cmd`), or the
//! sandbox's own processes. Either returns once the server was restarted, or says why not;
//! whether it is *back* (listed, caught up, serving) is the roll's to judge from the servers.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clustersmith_core::snapshot::NodeRecord;

use crate::sandbox::Sandbox;
use crate::session::Restarter;

/// The operator's restart command, with `{host}`, `{ip}` and `{port}` filled in for each
/// node. Run without a shell unless `shell` (then as `sh -c`, placeholders filled in with
/// their values quoted for the shell), with stdin closed and a deadline: a command that
/// hangs is killed, and the roll stops there.
pub struct CommandRestarter {
    template: String,
    /// The template's words, split once (without a shell).
    words: Vec<String>,
    shell: bool,
    timeout: Duration,
}

impl CommandRestarter {
    pub fn new(template: &str, shell: bool, timeout: Duration) -> Result<CommandRestarter, String> {
        let words = if shell {
            Vec::new()
        } else {
            shlex::split(template)
                .filter(|w| !w.is_empty())
                .ok_or_else(|| {
                    format!("cannot split `{template}` into words (an unclosed quote?)")
                })?
        };
        if !template.contains("{host}")
            && !template.contains("{ip}")
            && !template.contains("{port}")
        {
            return Err(format!(
                "`{template}` names no node: use {{host}}, {{ip}} or {{port}} so each node's own server is restarted"
            ));
        }
        Ok(CommandRestarter {
            template: template.to_owned(),
            words,
            shell,
            timeout,
        })
    }

    /// The program and its arguments for `node`.
    pub fn command_for(&self, node: &NodeRecord) -> Vec<String> {
        let host = host_of(node);
        let ip = node.ip.to_string();
        let port = node.port.to_string();
        if self.shell {
            let fill = |text: &str| {
                text.replace("{host}", &shlex::try_quote(&host).unwrap_or_default())
                    .replace("{ip}", &ip)
                    .replace("{port}", &port)
            };
            vec!["sh".to_owned(), "-c".to_owned(), fill(&self.template)]
        } else {
            let fill = |word: &String| {
                word.replace("{host}", &host)
                    .replace("{ip}", &ip)
                    .replace("{port}", &port)
            };
            self.words.iter().map(fill).collect()
        }
    }

    async fn run(&self, node: &NodeRecord) -> Result<(), String> {
        let argv = self.command_for(node);
        let shown = argv.join(" ");
        let (program, args) = argv.split_first().ok_or("the restart command is empty")?;
        tracing::info!(node = %node.key, command = %shown, "restart");
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("`{shown}` could not be started: {e}"))?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(output) => output.map_err(|e| format!("`{shown}`: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "`{shown}` did not finish within {} s; it was killed",
                    self.timeout.as_secs()
                ));
            }
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            tracing::debug!(node = %node.key, "restart stdout: {line}");
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return Ok(());
        }
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "`{shown}` exited with {}{}",
            output.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", tail.join(" / "))
            }
        ))
    }
}

/// The host part of a node's spec address (`redis-1.internal` of `redis-1.internal:6379`,
/// `::1` of `[::1]:6379`), or its IP for a member found through its peers.
fn host_of(node: &NodeRecord) -> String {
    let label = node.key.label();
    match label.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        _ => node.ip.to_string(),
    }
}

impl Restarter for CommandRestarter {
    fn restart<'a>(
        &'a self,
        node: &'a NodeRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        Box::pin(self.run(node))
    }
}

/// Restarts sandbox servers (its own processes, by PID), with another binary for an upgrade.
pub struct SandboxRestarter {
    sandbox: Arc<Mutex<Sandbox>>,
    bin: Option<PathBuf>,
}

impl SandboxRestarter {
    pub fn new(sandbox: Sandbox, bin: Option<PathBuf>) -> SandboxRestarter {
        SandboxRestarter {
            sandbox: Arc::new(Mutex::new(sandbox)),
            bin,
        }
    }
}

impl Restarter for SandboxRestarter {
    fn restart<'a>(
        &'a self,
        node: &'a NodeRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        let (sandbox, bin, port) = (Arc::clone(&self.sandbox), self.bin.clone(), node.port);
        Box::pin(async move {
            // The stop waits for the server to save and exit (up to 30 s): on a blocking
            // thread, so that the runtime's own go on meanwhile.
            tokio::task::spawn_blocking(move || {
                let mut sandbox = sandbox.lock().map_err(|_| "sandbox state poisoned")?;
                sandbox
                    .restart(port, bin.as_deref())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clustersmith_core::snapshot::NodeKey;

    fn node(label: &str, ip: &str, port: u16) -> NodeRecord {
        NodeRecord::spec(NodeKey::named(label), ip.parse().unwrap(), port, None, 1)
    }

    #[test]
    fn placeholders_are_filled_per_word_without_a_shell() {
        let restarter = CommandRestarter::new(
            "ssh {host} 'sudo systemctl restart redis@{port}'",
            false,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            restarter.command_for(&node("redis-1.internal:6379", "10.0.0.1", 6379)),
            [
                "ssh",
                "redis-1.internal",
                "sudo systemctl restart redis@6379"
            ]
        );
        assert_eq!(
            restarter.command_for(&node("[::1]:7000", "::1", 7000)),
            ["ssh", "::1", "sudo systemctl restart redis@7000"]
        );
    }

    #[test]
    fn a_shell_command_gets_its_host_quoted() {
        let restarter =
            CommandRestarter::new("echo {host} {ip}", true, Duration::from_secs(5)).unwrap();
        assert_eq!(
            restarter.command_for(&node("a b:6379", "10.0.0.1", 6379)),
            ["sh", "-c", "echo 'a b' 10.0.0.1"]
        );
    }

    #[test]
    fn a_command_naming_no_node_is_refused() {
        let err = CommandRestarter::new("systemctl restart redis", false, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(err.contains("names no node"), "{err}");
        assert!(CommandRestarter::new("ssh '{host}", false, Duration::from_secs(5)).is_err());
    }
}
