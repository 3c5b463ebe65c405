//! One function per subcommand. Each returns the process exit code; unexpected failures come
//! back as `anyhow` errors and exit 2.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clustersmith_core::model::NodeId;
use clustersmith_core::observation::Observation;
use clustersmith_core::plan::{Layout, MoveEngine, plan};
use clustersmith_core::spec::{ClusterSpec, parse_node};
use clustersmith_core::verify::verify;
use clustersmith_io::apply::{
    ApplyError, ApplyEvent, ApplyOptions, ApplyOutcome, apply, plan_once,
};
use clustersmith_io::conn::{ConnOpts, TlsOpts};
use clustersmith_io::error::{NodeError, SlotStepOutcome};
use clustersmith_io::migrate::{MoveError, count_keys};
use clustersmith_io::sandbox::{Sandbox, SandboxSpec, find_server_binary, generate_password};
use clustersmith_io::session::Session;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::{ApplyArgs, EngineChoice, Format, SandboxDirArgs, SandboxUpArgs, TargetArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::render;
use crate::target::{cluster_spec, conn_opts};

pub async fn open(
    spec: &ClusterSpec,
    conn: &ConnOpts,
    prefer_ipv6: bool,
) -> anyhow::Result<Session> {
    let session = Session::connect(spec, conn, prefer_ipv6).await?;
    for note in &session.notes {
        eprintln!("note: {note}");
    }
    Ok(session)
}

/// Reports the errors that come from clustersmith's own settings (credentials, permissions,
/// TLS); true when there were any. They say nothing about the cluster, so a command that
/// meets them gives no verdict and exits 2.
pub fn refused_settings<'a>(
    command: &str,
    format: Format,
    errors: impl Iterator<Item = &'a NodeError>,
) -> bool {
    let refused: Vec<&NodeError> = errors.filter(|e| e.is_input_error()).collect();
    if refused.is_empty() {
        return false;
    }
    let headline = format!(
        "cannot {command}: {} refused the connection settings",
        plural(refused.len(), "node", "nodes")
    );
    eprintln!("error: {headline}");
    report_node_errors(refused.iter().copied());
    if format == Format::Json {
        outln!(
            "{}",
            render::error_json(command, exit::ERROR, &headline, &node_errors_json(&refused))
        );
    }
    true
}

/// `1 node`, `2 nodes`: counts in messages agree with their noun.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    clustersmith_core::plural(count as u64, one, many)
}

/// Each error on its line, then each distinct hint once, with the nodes it concerns (the same
/// hint for six nodes is one line, not six).
pub fn report_node_errors<'a>(errors: impl Iterator<Item = &'a NodeError>) {
    let errors: Vec<&NodeError> = errors.collect();
    for node_err in &errors {
        eprintln!("  {node_err}");
    }
    for (hint, nodes) in hints_by_node(errors) {
        if nodes.len() == 1 {
            eprintln!("  hint: {hint}");
        } else {
            eprintln!("  hint ({}): {hint}", nodes.join(", "));
        }
    }
}

/// The distinct hints of `errors`, in first-seen order, each with the nodes it concerns.
fn hints_by_node<'a>(
    errors: impl IntoIterator<Item = &'a NodeError>,
) -> Vec<(&'static str, Vec<&'a str>)> {
    let mut hints: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for node_err in errors {
        if let Some(hint) = node_err.hint() {
            match hints.iter_mut().find(|(h, _)| *h == hint) {
                Some((_, nodes)) => nodes.push(&node_err.node),
                None => hints.push((hint, vec![&node_err.node])),
            }
        }
    }
    hints
}

fn node_errors_json(errors: &[&NodeError]) -> serde_json::Value {
    serde_json::Value::Array(
        errors
            .iter()
            .map(|e| {
                json!({
                    "node": e.node,
                    "error": e.to_string(),
                    "hint": e.hint(),
                })
            })
            .collect(),
    )
}

/// Prints an apply-loop refusal or failure (on stderr, and as the JSON document on stdout
/// with `--format json`) and returns its exit code.
fn report_apply_error(err: &ApplyError, format: Format, command: &str) -> u8 {
    let (headline, details) = match err {
        ApplyError::Preflight(errors) => {
            eprintln!("error: {err}");
            report_node_errors(errors.iter());
            let refs: Vec<&NodeError> = errors.iter().collect();
            (err.to_string(), json!({ "nodes": node_errors_json(&refs) }))
        }
        ApplyError::Blocked { blockers, changed } => {
            let headline = if *changed {
                "refusing to continue (earlier rounds did change the cluster)"
            } else {
                "refusing to change the cluster; nothing was changed"
            };
            eprintln!("error: {headline}");
            for blocker in blockers {
                eprintln!("  {blocker}");
            }
            (
                headline.to_owned(),
                json!({
                    "blockers": blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "changed": changed,
                }),
            )
        }
        ApplyError::Fatal(node_err) => {
            eprintln!("error: {node_err}");
            if let Some(hint) = node_err.hint() {
                eprintln!("  hint: {hint}");
            }
            (
                node_err.to_string(),
                json!({ "nodes": node_errors_json(&[node_err]) }),
            )
        }
        ApplyError::Move(move_err) => return report_move_error(move_err, format, command),
        ApplyError::Concurrent(others) => {
            eprintln!("error: {err}");
            for (node, client) in others {
                eprintln!("  `{node}` lists: {client}");
            }
            eprintln!(
                "  hint: wait for it to finish (or stop it), then run again; a run killed half-way is finished by the next one"
            );
            (
                err.to_string(),
                json!({ "others": others.iter().map(|(node, client)| json!({"node": node, "client": client})).collect::<Vec<_>>() }),
            )
        }
    };
    if format == Format::Json {
        outln!(
            "{}",
            render::error_json(command, exit::ERROR, &headline, &details)
        );
    }
    exit::ERROR
}

/// A slot move that stopped: the slot, the state it is left in, and whether a re-run
/// continues it (exit 3) or the operator must decide first (a key on both sides: exit 2).
fn report_move_error(err: &MoveError, format: Format, command: &str) -> u8 {
    let (code, state, hint) = match err {
        MoveError::Slot { state, error, .. } => {
            if error.slot_step_outcome() == SlotStepOutcome::BusyKey {
                (
                    exit::ERROR,
                    *state,
                    "a key of this slot already exists on the target: compare both copies, delete the one to drop, then run again (or pass --replace to overwrite the target's copy)",
                )
            } else {
                (
                    exit::DEADLINE,
                    *state,
                    "run apply again once the node answers: it finishes the slot from where it stopped",
                )
            }
        }
        MoveError::UnknownNode(_) => (exit::DEADLINE, "unchanged", "run apply again"),
        MoveError::AtomicUnsupported => (
            exit::ERROR,
            "unchanged",
            "use --move-engine auto or classic",
        ),
        // The server hands slots over only when a job succeeds: they stay with the source.
        MoveError::Job { .. } => (
            exit::DEADLINE,
            "with its source (an atomic migration moves nothing unless it completes)",
            "see CLUSTER GETSLOTMIGRATIONS on the source for the job's message, then run apply again",
        ),
        MoveError::Node(err) => (
            if err.is_input_error() {
                exit::ERROR
            } else {
                exit::DEADLINE
            },
            "unchanged, or moving in the servers (run apply again to follow it)",
            err.hint()
                .unwrap_or("run apply again once the node answers"),
        ),
    };
    eprintln!("error: {err}");
    eprintln!("  slot left: {state}");
    eprintln!("  hint: {hint}");
    if format == Format::Json {
        outln!(
            "{}",
            render::error_json(
                command,
                code,
                &err.to_string(),
                &json!({ "slot_state": state, "hint": hint })
            )
        );
    }
    code
}

pub async fn plan_cmd(args: &TargetArgs) -> anyhow::Result<u8> {
    let spec = cluster_spec(args)?;
    let conn = conn_opts(&args.conn)?;
    let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
    let (planned, obs) = match plan_once(&mut session, &spec, args.remove_unlisted).await {
        Ok(found) => found,
        Err(err) => return Ok(report_apply_error(&err, args.format, "plan")),
    };
    let labels = session.labels();
    match args.format {
        Format::Json => outln!(
            "{}",
            render::plan_json(&planned, &session.inventory, &obs, &labels)
        ),
        Format::Human => {
            if let Some(layout) = &planned.layout {
                outln!("target topology:");
                out!(
                    "{}",
                    render::topology_table(layout, &session.inventory, &obs)
                );
                for note in &layout.notes {
                    outln!("note: {note}");
                }
            }
            for blocker in &planned.blockers {
                outln!("blocked: {blocker}");
            }
            if !planned.blockers.is_empty() {
                // A blocked plan has no steps because it stopped, not because nothing differs.
                outln!("nothing can be planned until the blockers above are resolved");
            } else if !planned.has_changes()
                && planned.layout.as_ref().is_none_or(|l| l.moves.is_empty())
            {
                outln!("no changes: the cluster matches the spec");
            } else {
                if !planned.steps.is_empty() {
                    outln!("{}:", plural(planned.steps.len(), "step", "steps"));
                    for step in &planned.steps {
                        outln!("  {}", step.describe(&labels));
                    }
                }
                if let Some(layout) = &planned.layout {
                    print_moves(&session, layout, &obs).await;
                }
            }
            for wait in &planned.waiting {
                outln!("then: {wait}");
            }
        }
    }
    Ok(if !planned.blockers.is_empty() {
        exit::ERROR
    } else if planned.has_changes() {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

/// The slot moves of the layout, with the keys each carries (counted on the source now).
async fn print_moves(session: &Session, layout: &Layout, obs: &Observation) {
    if layout.moves.is_empty() {
        return;
    }
    let label = |id: &NodeId| {
        obs.index_of(id).map_or_else(
            || id.short().to_owned(),
            |idx| session.inventory[idx].label.clone(),
        )
    };
    let total: usize = layout.moves.iter().map(|m| m.slots.len()).sum();
    outln!(
        "slot moves ({} in all, keys and all):",
        plural(total, "slot", "slots")
    );
    let mut keys_total = 0u64;
    for m in &layout.moves {
        let keys = match obs.index_of(&m.source) {
            Some(idx) => count_keys(&session.handles[idx], &m.slots).await.ok(),
            None => None,
        };
        keys_total += keys.unwrap_or(0);
        let ranges: Vec<String> = m.slots.ranges().iter().map(ToString::to_string).collect();
        outln!(
            "  {} -> {}: {} ({}), {}",
            label(&m.source),
            label(&m.target),
            plural(m.slots.len(), "slot", "slots"),
            ranges.join(","),
            keys.map_or_else(
                || "keys unknown".to_owned(),
                |k| plural(k as usize, "key", "keys")
            )
        );
    }
    outln!(
        "data to move: {} (CLUSTER COUNTKEYSINSLOT on each source)",
        plural(keys_total as usize, "key", "keys")
    );
    outln!("moved by: {}", MoveEngine::for_nodes(obs).describe());
}

/// Progress on stderr: a bar on a terminal, timestamped lines otherwise (post-deploy logs are
/// files). A line is written when something changes, and at least every
/// [`HEARTBEAT`] while nothing does, saying what the run waits for.
struct Progress {
    bar: Option<ProgressBar>,
    json_events: bool,
    last: Option<Vec<&'static str>>,
    started: Instant,
    last_line: Instant,
    rounds: usize,
}

/// The longest silence on stderr while `apply` runs: an operator watching a log must be able
/// to tell a run that waits from one that hangs.
const HEARTBEAT: Duration = Duration::from_secs(2);

impl Progress {
    fn new(json_events: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
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
            json_events,
            last: None,
            started: now,
            last_line: now,
            rounds: 0,
        }
    }

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        eprintln!("[{}] {text}", render::timestamp());
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
            } => {
                self.rounds = round;
                let message = if failing.is_empty() {
                    "all criteria met".to_owned()
                } else {
                    format!("waiting for: {}", failing.join(", "))
                };
                if let Some(bar) = &self.bar {
                    bar.set_length(total as u64);
                    bar.set_position(passed as u64);
                    bar.set_message(message);
                } else if steps > 0
                    || self.last.as_ref() != Some(&failing)
                    || self.last_line.elapsed() >= HEARTBEAT
                {
                    self.line(format_args!(
                        "round {round} (+{:.2}s): {}; {message}",
                        elapsed.as_secs_f64(),
                        plural(steps, "command", "commands")
                    ));
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
                self.emit_json(json!({"event": "moves_started", "slots": slots, "pairs": pairs, "resumed": resumed}));
                if let Some(bar) = &self.bar {
                    bar.set_length(slots as u64);
                    bar.set_position(0);
                    bar.set_message(what);
                } else {
                    self.line(format_args!(
                        "{what}: {} between {}",
                        plural(slots, "slot", "slots"),
                        plural(pairs, "pair of primaries", "pairs of primaries")
                    ));
                }
            }
            ApplyEvent::Moving(progress) => {
                let secs = progress.elapsed.as_secs_f64().max(1e-3);
                let rate = progress.keys_moved as f64 / secs;
                let left = progress.slots_total.saturating_sub(progress.slots_done);
                let eta = secs * left as f64 / progress.slots_done.max(1) as f64;
                self.emit_json(json!({
                    "event": "moving",
                    "slots_done": progress.slots_done,
                    "slots_total": progress.slots_total,
                    "keys_moved": progress.keys_moved,
                    "keys_per_sec": rate.round() as u64,
                    "eta_ms": (eta * 1000.0).round() as u64,
                }));
                let message = format!(
                    "{} keys moved, {:.0} keys/s, ETA {eta:.1}s",
                    progress.keys_moved, rate
                );
                if let Some(bar) = &self.bar {
                    bar.set_position(progress.slots_done as u64);
                    bar.set_message(message);
                } else if left == 0 || self.last_line.elapsed() >= Duration::from_secs(1) {
                    self.line(format_args!(
                        "moved {}/{} slots: {message}",
                        progress.slots_done, progress.slots_total
                    ));
                }
            }
        }
    }

    /// With `--format json`, progress events go to stderr as one JSON object per line (stdout
    /// holds exactly one document, the result).
    fn emit_json(&self, event: serde_json::Value) {
        if self.json_events {
            eprintln!("{event}");
        }
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
        let elapsed = self.started.elapsed().as_secs_f64();
        let round = self.rounds + 1;
        self.line(format_args!(
            "still waiting (+{elapsed:.2}s, round {round} in flight): {waiting}"
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs the reconcile loop and prints its result. Shared by `apply` and `sandbox up`.
async fn run_apply(
    spec: &ClusterSpec,
    session: &mut Session,
    options: &ApplyOptions,
    format: Format,
    command: &str,
) -> u8 {
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

pub async fn verify_cmd(args: &TargetArgs) -> anyhow::Result<u8> {
    let spec = cluster_spec(args)?;
    let conn = conn_opts(&args.conn)?;
    let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
    let observed = session.observe().await;
    if refused_settings("verify", args.format, observed.errors.iter().flatten()) {
        return Ok(exit::ERROR);
    }
    let obs = observed.observation;
    let planned = plan(&spec, &session.inventory, &obs, &session.known_ids);
    let Some(layout) = planned.layout else {
        match args.format {
            Format::Json => outln!(
                "{}",
                json!({
                    "schema_version": render::SCHEMA_VERSION,
                    "command": "verify",
                    "passed": false,
                    "blockers": planned.blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    // Not evaluated: with a blocker there is no target layout to check against.
                    "criteria": render::unchecked_criteria_json("blocked: the live cluster cannot match the spec"),
                })
            ),
            Format::Human => {
                outln!("FAIL: the live cluster cannot match the spec:");
                for blocker in &planned.blockers {
                    outln!("  {blocker}");
                }
            }
        }
        return Ok(exit::VERIFY_FAILED);
    };
    let verdict = verify(&layout, &session.inventory, &obs, &session.known_ids);
    match args.format {
        Format::Json => outln!(
            "{}",
            json!({
                "schema_version": render::SCHEMA_VERSION,
                "command": "verify",
                "passed": verdict.passed(),
                "topology": render::topology_json(&layout, &session.inventory, &obs),
                "criteria": render::verdict_json(&verdict, &session.inventory),
                "notes": layout.notes,
            })
        ),
        Format::Human => {
            out!(
                "{}",
                render::topology_table(&layout, &session.inventory, &obs)
            );
            out!("{}", render::verdict_text(&verdict, &session.inventory));
            for note in &layout.notes {
                outln!("note: {note}");
            }
            for (hint, nodes) in hints_by_node(observed.errors.iter().flatten()) {
                outln!("hint for {}: {hint}", nodes.join(", "));
            }
            outln!("{}", if verdict.passed() { "PASS" } else { "FAIL" });
        }
    }
    Ok(if verdict.passed() {
        exit::OK
    } else {
        exit::VERIFY_FAILED
    })
}

fn sandbox_dir(args: &SandboxDirArgs) -> PathBuf {
    args.dir.clone().unwrap_or_else(|| {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("clustersmith/sandbox")
    })
}

pub async fn sandbox_up(args: &SandboxUpArgs) -> anyhow::Result<u8> {
    let dir = sandbox_dir(&args.dir);
    if dir.join("sandbox.state").exists() {
        anyhow::bail!(
            "a sandbox already exists in `{}`\nhint: stop it first with `clustersmith sandbox down`",
            dir.display()
        );
    }
    let count = args.primaries * (1 + args.replicas);
    let bin = find_server_binary(args.server_bin.as_deref())?;
    eprintln!(
        "starting {} ({}) in `{}`",
        plural(count, "server", "servers"),
        bin.display(),
        dir.display()
    );
    let password = args.auth.then(generate_password).transpose()?;
    let sandbox = Sandbox::up(&SandboxSpec {
        bin,
        dir: dir.clone(),
        base_port: args.base_port,
        count,
        password: password.clone(),
        directives: Vec::new(),
        tls: args.tls,
    })?;
    let tls = sandbox.tls();
    let conn = ConnOpts {
        password,
        tls: tls.as_ref().map(|t| TlsOpts {
            cacert: Some(t.ca_cert.clone()),
            cert: Some(t.client.cert.clone()),
            key: Some(t.client.key.clone()),
            insecure: false,
            skip_hostname_check: false,
        }),
        ..ConnOpts::default()
    };
    let nodes = sandbox
        .addrs()
        .iter()
        .map(|a| parse_node(a))
        .collect::<Result<Vec<_>, _>>()
        .context("sandbox addresses")?;
    let spec = ClusterSpec::new(nodes, Some(args.primaries), Some(args.replicas))?;
    let mut session = open(&spec, &conn, false).await?;
    let code = run_apply(
        &spec,
        &mut session,
        &ApplyOptions::new(args.timeout),
        args.format,
        "sandbox up",
    )
    .await;
    if args.format == Format::Human {
        let first = sandbox.servers[0].port;
        let auth = sandbox.password_file().map_or(String::new(), |f| {
            format!(
                "REDISCLI_AUTH=\"$(cat {})\" ",
                shell_word(&f.display().to_string())
            )
        });
        let tls_flags = tls.as_ref().map_or(String::new(), |t| {
            format!(
                " --tls --cacert {} --cert {} --key {}",
                shell_word(&t.ca_cert.display().to_string()),
                shell_word(&t.client.cert.display().to_string()),
                shell_word(&t.client.key.display().to_string())
            )
        });
        // This very binary, by its path: `clustersmith` need not be on PATH (`cargo run`).
        let me = std::env::current_exe()
            .map(|p| shell_word(&p.display().to_string()))
            .unwrap_or_else(|_| "clustersmith".to_owned());
        outln!("connect:  {auth}redis-cli -c -p {first}{tls_flags}");
        outln!(
            "verify:   {auth}{me} verify --primaries {} {}{tls_flags}",
            args.primaries,
            sandbox.addrs().join(" ")
        );
        outln!(
            "stop:     {me} sandbox down --dir {}",
            shell_word(&dir.display().to_string())
        );
    }
    Ok(code)
}

/// A word the shell reads back as itself: quoted only when it needs to be.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

pub fn sandbox_down(args: &SandboxDirArgs) -> anyhow::Result<u8> {
    let dir = sandbox_dir(args);
    let sandbox = Sandbox::load(&dir)?;
    let count = sandbox.servers.len();
    sandbox.down()?;
    eprintln!(
        "stopped {} and removed `{}`",
        plural(count, "server", "servers"),
        dir.display()
    );
    Ok(exit::OK)
}
