//! `clustersmith watch` in a real terminal (issue 22 §2): run in tmux, read with
//! `capture-pane`, driven with `send-keys`. It shows the formed cluster; a failover made while it
//! runs is in its event log, stamped within two intervals of the handoff's end; it changes
//! nothing on the servers; `q` quits it.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const INTERVAL_S: f64 = 0.5;

struct Tmux {
    session: String,
}

impl Tmux {
    /// A detached session running `command`; `None` without tmux.
    fn start(command: &str) -> Option<Tmux> {
        let session = format!("cs-watch-{}", std::process::id());
        let out = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "160",
                "-y",
                "45",
                command,
            ])
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Tmux { session })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// Seconds of the day of a `HH:MM:SS.mmm` stamp.
fn seconds_of_day(stamp: &str) -> f64 {
    let mut parts = stamp.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn watch_shows_a_failover_within_two_intervals_changes_nothing_and_quits_on_q() {
    let servers = Servers::start_with(6, &ServerOpts::default());
    let nodes = servers.ips();
    let out = clustersmith(&with_nodes(&["apply", "-m", "3", "-r", "1"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let command = format!(
        "{} watch {} --interval {INTERVAL_S}",
        env!("CARGO_BIN_EXE_clustersmith"),
        nodes[0]
    );
    let Some(tmux) = Tmux::start(&command) else {
        skip("tmux is not installed (apt-get install tmux)", false);
        return;
    };
    wait_until(
        "watch shows the formed cluster",
        Duration::from_secs(15),
        || {
            let screen = tmux.screen();
            screen.contains("slots covered 16384/16384") && screen.contains("nodes answering 6/6")
        },
    );
    let screen = tmux.screen();
    assert_eq!(
        screen
            .lines()
            .filter(|l| l.contains(" up 0 B") || l.contains(" up "))
            .count(),
        3,
        "three primaries, each with its replica's link up:\n{screen}"
    );

    // Read only: four rounds change no counter of a changing command.
    let before: Vec<_> = (0..6).map(|i| servers.changing_commands(i)).collect();
    std::thread::sleep(Duration::from_secs_f64(INTERVAL_S * 4.0));
    let after: Vec<_> = (0..6).map(|i| servers.changing_commands(i)).collect();
    assert_eq!(before, after, "watch sent a changing command");

    // A failover while it watches.
    let primary = (0..6)
        .find(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("master"))
        .unwrap();
    let out = clustersmith(
        &["handoff", &format!("127.0.0.1:{}", servers.port(primary))],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 86_400.0;
    let from = format!("from 127.0.0.1:{}", servers.port(primary));
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let screen = tmux.screen();
        if let Some(line) = screen
            .lines()
            .find(|l| l.contains("failover:") && l.contains(&from))
        {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no failover event:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stamped = seconds_of_day(line.split_whitespace().next().unwrap());
    assert!(
        stamped - done <= 2.0 * INTERVAL_S,
        "the event was read {:.3} s after the handoff ended: {line}",
        stamped - done
    );

    tmux.keys("q");
    wait_until("q quits watch", Duration::from_secs(5), || !tmux.alive());
}
