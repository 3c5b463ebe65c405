//! `clustersmith watch NODES`: a live view, redrawn after every read round, until `q`.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clustersmith_io::operations::watch::Watcher;

use super::{Looked, Run};
use crate::args::WatchArgs;
use crate::exit;
use crate::render::timestamp;
use crate::render::watch::{Header, frame};

/// Events kept for the log (the frame shows what fits).
const EVENTS_KEPT: usize = 500;

impl Run for WatchArgs {
    fn name(&self) -> &'static str {
        "watch"
    }

    fn json(&self) -> bool {
        false
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(run(self))
    }
}

/// Reads keys on its own thread (the terminal in raw mode while it waits): a `q` or Escape
/// is sent on the channel. Nothing is read when stdin is not a terminal.
fn quit_keys() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let term = console::Term::stdout();
    if term.is_term() {
        std::thread::spawn(move || {
            while let Ok(key) = term.read_key() {
                if matches!(key, console::Key::Char('q') | console::Key::Escape) {
                    let _ = tx.send(());
                    return;
                }
            }
        });
    }
    rx
}

async fn run(args: &WatchArgs) -> anyhow::Result<u8> {
    let mut looked =
        Looked::open_nodes(&args.nodes, None, None, &args.conn, args.prefer_ipv6).await?;
    let (Some(session), _) = looked.parts() else {
        anyhow::bail!("watch needs at least one node");
    };
    let mut watcher = Watcher::new(session);
    let quit = quit_keys();
    let term = console::Term::stdout();
    let mut events: VecDeque<(String, clustersmith_core::watch::Change)> = VecDeque::new();
    loop {
        let started = Instant::now();
        let tick = watcher.tick().await;
        let at = timestamp();
        let clock = at.get(11..23).unwrap_or(&at).to_owned();
        for change in tick.changes {
            events.push_back((clock.clone(), change));
            if events.len() > EVENTS_KEPT {
                events.pop_front();
            }
        }
        let rows = term
            .size_checked()
            .map_or(40, |(rows, _)| usize::from(rows));
        let text = frame(
            &Header {
                at: &clock,
                interval_s: args.interval.as_secs_f64(),
                read_ms: tick.read.as_millis(),
            },
            &tick.snapshot,
            events.make_contiguous(),
            rows,
        );
        let mut stdout = std::io::stdout().lock();
        if term.is_term() {
            // Home and clear, then the frame: one write, so the view does not flicker.
            let _ = write!(stdout, "\x1b[H\x1b[2J{}", text.replace('\n', "\r\n"));
        } else {
            let _ = writeln!(stdout, "{text}---");
        }
        let _ = stdout.flush();
        drop(stdout);
        let next = started + args.interval;
        while Instant::now() < next {
            if quit.try_recv().is_ok() {
                let _ = writeln!(std::io::stdout(), "\r\nwatch stopped\r");
                return Ok(exit::OK);
            }
            tokio::time::sleep(Duration::from_millis(50).min(next - Instant::now())).await;
        }
    }
}
