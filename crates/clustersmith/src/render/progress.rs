//! Progress of a run on stderr: a bar on a terminal, timestamped lines otherwise (post-deploy
//! logs are files), one JSON object per line with `--format json`.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use clustersmith_io::driver::Event;
use indicatif::{ProgressBar, ProgressStyle};

use super::json;
use super::timestamp;
use crate::commands::plural;
use crate::output::{self, errln};

/// Progress on stderr: a bar on a terminal, timestamped lines otherwise (post-deploy logs are
/// files), one JSON object per line with `--format json`. A line is written when something
/// changes, and at least every [`HEARTBEAT`] while nothing does, saying what the run waits for.
pub struct Progress {
    bar: Option<ProgressBar>,
    json: bool,
    last: Option<Vec<&'static str>>,
    /// What the run waits for, since when, and whether it was said.
    waits: std::collections::BTreeMap<String, (Instant, bool)>,
    started: Instant,
    last_line: Instant,
    rounds: usize,
}

/// The longest silence on stderr while `apply` runs: an operator watching a log must be able
/// to tell a run that waits from one that hangs.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Waiting reasons printed at once at most; the rest are counted.
const MAX_WAIT_LINES: usize = 5;

impl Progress {
    pub fn new(json: bool) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(7);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:20} {pos}/{len} criteria {msg}",
                )
                .expect("static template is valid"),
            );
            // Keeps the spinner and the clock moving while a round waits on a silent node.
            bar.enable_steady_tick(Duration::from_millis(200));
            bar.set_message("observing every node");
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            json,
            last: None,
            waits: Default::default(),
            started: now,
            last_line: now,
            rounds: 0,
        }
    }

    /// A timestamped human line, or the JSON event in JSON mode.
    fn say(&mut self, event: json::Event<'_>, text: std::fmt::Arguments<'_>) {
        if self.json {
            output::event(&json::to_text(&event));
        } else {
            errln!("[{}] {text}", timestamp());
        }
        self.last_line = Instant::now();
    }

    pub fn event(&mut self, event: Event) {
        match event {
            Event::Round {
                round,
                elapsed,
                steps,
                failing,
                passed,
                total,
                waiting,
            } => {
                self.rounds = round;
                let failing: Vec<&'static str> = failing.iter().map(|c| c.id).collect();
                let message = if failing.is_empty() {
                    "all criteria met".to_owned()
                } else {
                    format!("waiting for: {}", failing.join(", "))
                };
                let new_waits = self.lasting_waits(&waiting);
                if let Some(bar) = &self.bar {
                    bar.set_length(total as u64);
                    bar.set_position(passed as u64);
                    bar.set_message(message);
                    for wait in &new_waits {
                        bar.println(format!("waiting: {wait}"));
                    }
                } else if steps > 0
                    || self.last.as_ref() != Some(&failing)
                    || !new_waits.is_empty()
                    || self.last_line.elapsed() >= HEARTBEAT
                {
                    self.say(
                        json::Event::Round {
                            round,
                            elapsed_ms: elapsed.as_millis() as u64,
                            commands: steps,
                            failing: failing.clone(),
                            waiting: &waiting,
                        },
                        format_args!(
                            "round {round} (+{:.2}s): {}; {message}",
                            elapsed.as_secs_f64(),
                            plural(steps, "command", "commands")
                        ),
                    );
                    if !self.json {
                        for wait in new_waits.iter().take(MAX_WAIT_LINES) {
                            errln!("[{}]   waiting: {wait}", timestamp());
                        }
                        if new_waits.len() > MAX_WAIT_LINES {
                            errln!(
                                "[{}]   waiting: … and {} more",
                                timestamp(),
                                new_waits.len() - MAX_WAIT_LINES
                            );
                        }
                    }
                }
                self.last = Some(failing);
            }
            Event::StepDeferred { description, error } => {
                tracing::debug!(%description, %error, "step deferred");
            }
            Event::Status(text) => {
                if let Some(bar) = &self.bar {
                    bar.println(&text);
                } else {
                    self.say(json::Event::Status { text: &text }, format_args!("{text}"));
                }
            }
            Event::Acting(action) => {
                if let Some(bar) = &self.bar {
                    bar.println(format!("> {action}"));
                } else {
                    self.say(
                        json::Event::Acting { action: &action },
                        format_args!("> {action}"),
                    );
                }
            }
            Event::MovesStarted {
                slots,
                pairs,
                resumed,
            } => {
                let what = if resumed {
                    "finishing slot moves a previous run left open"
                } else {
                    "moving slots"
                };
                if let Some(bar) = &self.bar {
                    bar.set_length(slots as u64);
                    bar.set_position(0);
                    bar.set_message(what);
                } else {
                    self.say(
                        json::Event::MovesStarted {
                            slots,
                            pairs,
                            resumed,
                        },
                        format_args!(
                            "{what}: {} between {}",
                            plural(slots, "slot", "slots"),
                            plural(pairs, "pair of primaries", "pairs of primaries")
                        ),
                    );
                }
            }
            Event::Moving(progress) => {
                let secs = progress.elapsed.as_secs_f64().max(1e-3);
                let rate = progress.keys_moved as f64 / secs;
                let left = progress.slots_total.saturating_sub(progress.slots_done);
                let eta = secs * left as f64 / progress.slots_done.max(1) as f64;
                let message = format!(
                    "{} keys moved, {:.0} keys/s, ETA {eta:.1}s",
                    progress.keys_moved, rate
                );
                if let Some(bar) = &self.bar {
                    bar.set_position(progress.slots_done as u64);
                    bar.set_message(message);
                } else if self.json
                    || left == 0
                    || self.last_line.elapsed() >= Duration::from_secs(1)
                {
                    self.say(
                        json::Event::Moving {
                            slots_done: progress.slots_done,
                            slots_total: progress.slots_total,
                            keys_moved: progress.keys_moved,
                            keys_per_sec: rate.round() as u64,
                            eta_ms: (eta * 1000.0).round() as u64,
                        },
                        format_args!(
                            "handed over {}/{} slots: {message}",
                            progress.slots_done, progress.slots_total
                        ),
                    );
                }
            }
            Event::MovesSettled { slots, agreed } => {
                let slots_text = plural(slots, "slot", "slots");
                let event = json::Event::MovesSettled { slots, agreed };
                if agreed {
                    self.say(
                        event,
                        format_args!("moved {slots_text}: every node names their new owners"),
                    );
                } else {
                    self.say(
                        event,
                        format_args!(
                            "handed over {slots_text}, but not every node names their new owners yet"
                        ),
                    );
                }
            }
        }
    }

    /// The reasons the run has waited on for at least [`HEARTBEAT`] and not said yet: a
    /// handshake in progress passes in a tick and is not worth a line; a forget ban that holds
    /// slot moves for a minute is.
    fn lasting_waits(&mut self, waiting: &[String]) -> Vec<String> {
        let now = Instant::now();
        self.waits.retain(|wait, _| waiting.contains(wait));
        for wait in waiting {
            self.waits.entry(wait.clone()).or_insert((now, false));
        }
        let mut due = Vec::new();
        for (wait, (since, said)) in &mut self.waits {
            if !*said && now.duration_since(*since) >= HEARTBEAT {
                *said = true;
                due.push(wait.clone());
            }
        }
        due
    }

    /// Called on a timer while a round is in flight (a node that does not answer holds an
    /// observation up to the response timeout): says what is awaited if nothing was said for
    /// a while.
    pub fn heartbeat(&mut self) {
        if self.bar.is_some() || self.last_line.elapsed() < HEARTBEAT {
            return;
        }
        let waiting = match &self.last {
            None => "the first observation of every node".to_owned(),
            Some(failing) if failing.is_empty() => "the confirming observation".to_owned(),
            Some(failing) => failing.join(", "),
        };
        let elapsed = self.started.elapsed();
        let round = self.rounds + 1;
        self.say(
            json::Event::StillWaiting {
                elapsed_ms: elapsed.as_millis() as u64,
                round,
                waiting: waiting.clone(),
            },
            format_args!(
                "still waiting (+{:.2}s, round {round} in flight): {waiting}",
                elapsed.as_secs_f64()
            ),
        );
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs a changing operation with its progress on stderr (a heartbeat while a round waits on a
/// silent node), ignoring SIGHUP while it lasts: a terminal that goes away (an SSH session
/// that dropped) would otherwise end the process, possibly with slots open mid-move; the run
/// finishes, its output dropped.
pub async fn with_progress<T>(json: bool, run: impl AsyncFnOnce(&mut dyn FnMut(Event)) -> T) -> T {
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let progress = std::cell::RefCell::new(Progress::new(json));
    let mut on_event = |event| progress.borrow_mut().event(event);
    let result = {
        let running = run(&mut on_event);
        tokio::pin!(running);
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                result = &mut running => break result,
                _ = ticks.tick() => progress.borrow_mut().heartbeat(),
            }
        }
    };
    progress.borrow().finish();
    result
}
