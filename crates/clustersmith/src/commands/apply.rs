//! `clustersmith apply` (and the reconcile run of `sandbox up`): progress and the result.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use clustersmith_core::plan::MoveEngine;
use clustersmith_core::spec::ClusterSpec;
use clustersmith_io::apply::{ApplyEvent, ApplyOptions, ApplyOutcome, apply};
use clustersmith_io::session::Session;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{open, plural, report_apply_error};
use crate::args::{ApplyArgs, EngineChoice, Format};
use crate::exit;
use crate::output::{self, errln, out, outln};
use crate::render;
use crate::target::{cluster_spec, conn_opts};

/// Progress on stderr: a bar on a terminal, timestamped lines otherwise (post-deploy logs are
/// files), one JSON object per line with `--format json`. A line is written when something
/// changes, and at least every [`HEARTBEAT`] while nothing does, saying what the run waits for.
struct Progress {
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
    fn new(json: bool) -> Progress {
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
    fn say(&mut self, event: serde_json::Value, text: std::fmt::Arguments<'_>) {
        if self.json {
            output::event(&event);
        } else {
            errln!("[{}] {text}", render::timestamp());
        }
        self.last_line = Instant::now();
    }

    fn event(&mut self, event: ApplyEvent) {
        match event {
            ApplyEvent::Round {
                round,
                elapsed,
                steps,
                failing,
                passed,
                total,
                waiting,
            } => {
                self.rounds = round;
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
                        json!({
                            "event": "round",
                            "round": round,
                            "elapsed_ms": elapsed.as_millis() as u64,
                            "commands": steps,
                            "failing": failing,
                            "waiting": waiting,
                        }),
                        format_args!(
                            "round {round} (+{:.2}s): {}; {message}",
                            elapsed.as_secs_f64(),
                            plural(steps, "command", "commands")
                        ),
                    );
                    if !self.json {
                        for wait in new_waits.iter().take(MAX_WAIT_LINES) {
                            errln!("[{}]   waiting: {wait}", render::timestamp());
                        }
                        if new_waits.len() > MAX_WAIT_LINES {
                            errln!(
                                "[{}]   waiting: … and {} more",
                                render::timestamp(),
                                new_waits.len() - MAX_WAIT_LINES
                            );
                        }
                    }
                }
                self.last = Some(failing);
            }
            ApplyEvent::StepDeferred { description, error } => {
                tracing::debug!(%description, %error, "step deferred");
            }
            ApplyEvent::MovesStarted {
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
                        json!({"event": "moves_started", "slots": slots, "pairs": pairs, "resumed": resumed}),
                        format_args!(
                            "{what}: {} between {}",
                            plural(slots, "slot", "slots"),
                            plural(pairs, "pair of primaries", "pairs of primaries")
                        ),
                    );
                }
            }
            ApplyEvent::Moving(progress) => {
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
                        json!({
                            "event": "moving",
                            "slots_done": progress.slots_done,
                            "slots_total": progress.slots_total,
                            "keys_moved": progress.keys_moved,
                            "keys_per_sec": rate.round() as u64,
                            "eta_ms": (eta * 1000.0).round() as u64,
                        }),
                        format_args!(
                            "handed over {}/{} slots: {message}",
                            progress.slots_done, progress.slots_total
                        ),
                    );
                }
            }
            ApplyEvent::MovesSettled { slots, agreed } => {
                let slots_text = plural(slots, "slot", "slots");
                let event = json!({"event": "moves_settled", "slots": slots, "agreed": agreed});
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
    fn heartbeat(&mut self) {
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
            json!({
                "event": "still_waiting",
                "elapsed_ms": elapsed.as_millis() as u64,
                "round": round,
                "waiting": waiting,
            }),
            format_args!(
                "still waiting (+{:.2}s, round {round} in flight): {waiting}",
                elapsed.as_secs_f64()
            ),
        );
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs the reconcile loop and prints its result. Shared by `apply` and `sandbox up`.
pub(super) async fn run_apply(
    spec: &ClusterSpec,
    session: &mut Session,
    options: &ApplyOptions,
    format: Format,
    command: &str,
) -> u8 {
    // A terminal that goes away (an SSH session that dropped) sends SIGHUP, whose default is
    // to end the process, possibly with slots open mid-move. Listening for it replaces that
    // default for as long as the run lasts: the run finishes, its output dropped.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let progress = std::cell::RefCell::new(Progress::new(format == Format::Json));
    let mut on_event = |event| progress.borrow_mut().event(event);
    let result = {
        let run = apply(session, spec, options, &mut on_event);
        tokio::pin!(run);
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                result = &mut run => break result,
                _ = ticks.tick() => progress.borrow_mut().heartbeat(),
            }
        }
    };
    progress.borrow().finish();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => return report_apply_error(&err, format, command),
    };
    print_outcome(&outcome, session, format, command);
    if outcome.converged {
        exit::OK
    } else {
        exit::DEADLINE
    }
}

fn print_outcome(outcome: &ApplyOutcome, session: &Session, format: Format, command: &str) {
    let inventory = &session.inventory;
    match format {
        Format::Json => outln!(
            "{}",
            json!({
                "schema_version": render::SCHEMA_VERSION,
                "command": command,
                "converged": outcome.converged,
                "elapsed_ms": outcome.elapsed.as_millis() as u64,
                "rounds": outcome.rounds,
                "commands_sent": outcome.steps_sent,
                "slots_moved": outcome.slots_moved,
                "topology": render::topology_json(&outcome.layout, inventory, &outcome.observation),
                "criteria": render::verdict_json(&outcome.verdict, inventory),
                "notes": outcome.layout.notes,
                "waiting": outcome.waiting,
            })
        ),
        Format::Human => {
            out!(
                "{}",
                render::topology_table(&outcome.layout, inventory, &outcome.observation)
            );
            for note in &outcome.layout.notes {
                outln!("note: {note}");
            }
            if outcome.converged {
                let moved = if outcome.slots_moved > 0 {
                    format!(
                        ", {} moved with their keys",
                        plural(outcome.slots_moved, "slot", "slots")
                    )
                } else {
                    String::new()
                };
                outln!(
                    "converged in {:.2}s: {}, {} sent{moved}; all {} criteria met",
                    outcome.elapsed.as_secs_f64(),
                    plural(outcome.rounds, "round", "rounds"),
                    plural(outcome.steps_sent, "command", "commands"),
                    outcome.verdict.criteria.len()
                );
            } else {
                outln!(
                    "NOT converged after {:.2}s ({}, {} sent):",
                    outcome.elapsed.as_secs_f64(),
                    plural(outcome.rounds, "round", "rounds"),
                    plural(outcome.steps_sent, "command", "commands")
                );
                out!("{}", render::verdict_text(&outcome.verdict, inventory));
                for wait in &outcome.waiting {
                    outln!("  waiting: {wait}");
                }
            }
        }
    }
}

pub async fn apply_cmd(args: &ApplyArgs) -> anyhow::Result<u8> {
    let spec = cluster_spec(&args.target)?;
    let conn = conn_opts(&args.target.conn)?;
    let mut session = open(&spec, &conn, args.target.prefer_ipv6).await?;
    let options = ApplyOptions {
        timeout: args.timeout,
        remove_unlisted: args.target.remove_unlisted,
        replace: args.replace,
        engine: match args.move_engine {
            EngineChoice::Auto => None,
            EngineChoice::Classic => Some(MoveEngine::Classic),
            EngineChoice::Atomic => Some(MoveEngine::Atomic),
        },
    };
    Ok(run_apply(&spec, &mut session, &options, args.target.format, "apply").await)
}
