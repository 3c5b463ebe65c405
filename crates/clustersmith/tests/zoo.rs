//! The failure zoo: real broken setups, each from a different root cause, built on loopback
//! with real Redis 7.0, Redis 6.2, Valkey 8.1 and Valkey 9.1 servers, and healthy setups
//! beside them. For each broken one `diagnose` (given the live nodes and every node's
//! redis.conf and log, as an operator would) must rank the root cause first, on the right
//! node, with at most one top finding for that node; a healthy one must report nothing at
//! warning or above.
//!
//! One test runs every case (two at a time) and prints the table the README shows; with
//! `CLUSTERSMITH_ZOO_TABLE=FILE` it also writes it there, and `CLUSTERSMITH_ZOO=NAME,…` runs
//! only the cases named.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clustersmith_io::pki::{CertOptions, TestCa};
use clustersmith_io::sandbox::find_server_binary;
use support::*;

/// The servers a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Redis70,
    Redis62,
    Valkey81,
    Valkey91,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Redis70 => "Redis 7.0",
            Server::Redis62 => "Redis 6.2",
            Server::Valkey81 => "Valkey 8.1",
            Server::Valkey91 => "Valkey 9.1",
        }
    }

    /// The binary, or `None` when it is not available here (a recorded skip; CI has all).
    fn bin(self) -> Option<PathBuf> {
        let (flavour, prefix) = match self {
            Server::Redis70 => return find_server_binary(None).ok(),
            Server::Redis62 => ("redis", "6.2."),
            Server::Valkey81 => ("valkey", "8.1."),
            Server::Valkey91 => ("valkey", "9.1."),
        };
        other_servers().into_iter().find(|b| {
            let v = binary_version(b);
            v.flavour == flavour && v.version.starts_with(prefix)
        })
    }
}

/// What a case built: the arguments `diagnose` gets, the node the root cause is on, and
/// whatever must live until diagnose ran (servers, files).
struct Setup {
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The label of the broken node ("" for a finding about the whole cluster).
    node: String,
    _keep: Vec<Box<dyn Send>>,
}

impl Setup {
    /// Keeps `thing` until diagnose ran, dropped after what the setup already keeps.
    fn keeping_after(mut self, thing: impl Send + 'static) -> Setup {
        self._keep.push(Box::new(thing));
        self
    }

    /// Keeps `thing` until diagnose ran, dropped before what the setup already keeps (the
    /// servers).
    fn keeping_before(mut self, thing: impl Send + 'static) -> Setup {
        self._keep.insert(0, Box::new(thing));
        self
    }
}

struct Case {
    name: &'static str,
    class: &'static str,
    server: Server,
    /// The rule the top finding must have; `None` for a healthy setup.
    rule: Option<&'static str>,
    build: fn(&Path) -> Setup,
}

/// What diagnose said about one case.
struct Outcome {
    case: &'static Case,
    /// Top finding's (rule, node), or what went wrong building the case.
    seen: Result<Option<(String, String)>, String>,
    /// What the setup proved about itself before diagnose ran.
    premise: Vec<String>,
    /// Top-level findings at warning or above on the broken node (must be 1).
    tops_on_node: usize,
    /// The expected rule at warning or above on other nodes (must be 0, see
    /// [`RULE_ALSO_ON_PEERS`]).
    elsewhere: usize,
    /// Findings at warning or above anywhere (must be 0 on a healthy setup).
    warnings: usize,
    /// The top finding rests on redis.conf lines alone (lines the case itself wrote).
    from_config: bool,
    /// The symptom [`SYMPTOM_UNDER_TOP`] asks for under the top finding, when it is missing.
    missing_symptom: Option<&'static str>,
    /// Rows of the server log catalog (classified to a rule) that a line of the case's logs
    /// matched while diagnose reported that rule: reproduced live.
    rows: BTreeSet<usize>,
    ok: bool,
    secs: f64,
}

/// The password the harness and diagnose log in with where a case protects its nodes.
const PW: &str = "zoo-harness-pw";

/// How a server refuses a directive it does not know.
const BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";

/// Passwords the cases write into redis.conf: none may appear in what diagnose prints.
const SECRETS: &[&str] = &[
    PW,
    "replpw",
    "not-the-password",
    "odd-one-out",
    "s3cr3t-value",
];

/// The number of broken and healthy cases: a case lost from the table fails the run.
const CASE_COUNTS: (usize, usize) = (60, 6);

/// Cases whose rule rightly fires on other nodes too (at warning or above), and why.
const RULE_ALSO_ON_PEERS: &[(&str, &str)] = &[
    (
        "requirepass-without-masterauth",
        "both nodes lack masterauth: the primary's replication fails the same way after a failover",
    ),
    (
        "replication-user-lacks-psync",
        "both nodes define the same replication user: whichever is primary refuses the other",
    ),
];

/// Cases whose top finding must carry a symptom of another rule under it: what clients see,
/// hung under its cause.
const SYMPTOM_UNDER_TOP: &[(&str, &str)] = &[
    ("dir-too-small-for-the-rdb-save", "CS371"),
    ("fork-refused-at-the-process-limit", "CS371"),
    ("replica-gone-under-min-replicas-to-write", "CS372"),
];

thread_local! {
    /// What the running case proved about its breakage, in order (see [`prove`]).
    static PREMISES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Whether the running case hands its nodes ports in descending order and lists them
    /// to diagnose last first (every other case), so no rule can name the broken node by
    /// its place in port or argument order.
    static REVERSED: Cell<bool> = const { Cell::new(false) };
}

fn reversed() -> bool {
    REVERSED.with(Cell::get)
}

/// Waits until `check` holds, failing the case if it does not within `timeout`, and records
/// `what` as part of the premise the case proved before diagnose runs.
fn prove(what: &str, timeout: Duration, check: impl FnMut() -> bool) {
    wait_until(what, timeout, check);
    PREMISES.with(|p| p.borrow_mut().push(what.to_owned()));
}

/// Proves that a client of node 1 (a replica, without READONLY) asking for a key of node 0's
/// slots is redirected to
/// `endpoint` (once the peers have node 0's announced values, a heartbeat or so).
fn prove_redirected_to(servers: &Servers, endpoint: &str) {
    prove(
        &format!("node 1 redirects a client to `{endpoint}`"),
        Duration::from_secs(10),
        || try_cmd(servers, 1, &["GET", "k"]).is_err_and(|e| e.contains(endpoint)),
    );
}

/// Node 0 (every slot) announcing with `directive` a client endpoint where nothing listens,
/// its replica node 1 linked: proves the replica redirects clients to `endpoint(servers)` and
/// that it refuses them.
fn clients_sent_nowhere(
    bin: &Path,
    directive: (&str, &str),
    endpoint: impl FnOnce(&Servers) -> String,
) -> Setup {
    let servers = start(bin, &[opts(bin, &[directive]), opts(bin, &[])]);
    form(&servers, &[1]);
    prove_link_up(&servers, 1);
    let endpoint = endpoint(&servers);
    prove_redirected_to(&servers, &endpoint);
    prove_refused(&endpoint);
    setup(servers, 1, 1, 0)
}

/// Proves that a TCP connection to `endpoint` is refused.
fn prove_refused(endpoint: &str) {
    let addr: std::net::SocketAddr = endpoint.parse().expect("an IP endpoint");
    prove(
        &format!("`{endpoint}` refuses connections"),
        Duration::from_secs(5),
        || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        },
    );
}

/// Proves that `file` (a server's log or output) comes to hold one of `texts`; the case
/// fails with the file's last lines when it does not within `timeout`.
fn prove_file_says(file: &Path, texts: &[&str], timeout: Duration) {
    prove_says(file, texts, timeout, || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        format!(
            "its last lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    });
}

/// Proves that node `idx`'s log says one of `texts` within 10 s; the case fails with every
/// node's last warnings when it does not.
fn prove_log(servers: &Servers, idx: usize, texts: &[&str]) {
    let log = servers.servers[idx].log_path();
    prove_says(&log, texts, Duration::from_secs(10), || {
        let warnings: Vec<String> = servers
            .servers
            .iter()
            .map(|s| {
                let text = std::fs::read_to_string(s.log_path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().filter(|l| l.contains(" # ")).collect();
                format!(
                    "node {}:\n{}",
                    s.port,
                    tail[tail.len().saturating_sub(6)..].join("\n")
                )
            })
            .collect();
        format!("every node's last warnings:\n{}", warnings.join("\n"))
    });
}

/// Waits until `file` holds one of `texts` and records it as premise; otherwise fails the
/// case with what `context` says about the state.
fn prove_says(file: &Path, texts: &[&str], timeout: Duration, context: impl FnOnce() -> String) {
    let mut said = None;
    let found = eventually(timeout, || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        said = texts.iter().find(|t| text.contains(*t)).copied();
        said.is_some()
    });
    if !found {
        panic!(
            "{} never said any of {texts:?} within {timeout:?}; {}",
            file.display(),
            context()
        );
    }
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    PREMISES.with(|p| {
        p.borrow_mut()
            .push(format!("{name} says `{}`", said.unwrap_or_default()))
    });
}

/// Proves replica `idx`'s link to its primary is up.
fn prove_link_up(servers: &Servers, idx: usize) {
    prove_link(servers, idx, "up", Duration::from_secs(10));
}

/// Proves replica `idx`'s `master_link_status` is `status` within `timeout`.
fn prove_link(servers: &Servers, idx: usize, status: &str, timeout: Duration) {
    prove(&format!("the replica's link is {status}"), timeout, || {
        servers
            .info_field(idx, "replication", "master_link_status")
            .as_deref()
            == Some(status)
    });
}

const CLASSES: &[&str] = &[
    "process will not start",
    "not a usable cluster member",
    "bus cannot connect / announced wrong",
    "TLS trust, key usage, mode",
    "replication auth and ACLs",
    "versions that do not fit",
    "slot and epoch states",
    "addresses after restarts",
    "formation-script mistakes",
    "the node's environment",
    "why a sync loops",
    "what clients see",
    "node identity",
    "config the server refuses",
    "healthy",
];

fn run_case(case: &'static Case) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        case,
        seen: Err(String::new()),
        premise: Vec::new(),
        tops_on_node: 0,
        elsewhere: 0,
        warnings: 0,
        from_config: false,
        missing_symptom: None,
        rows: BTreeSet::new(),
        ok: false,
        secs: 0.0,
    };
    let Some(bin) = case.server.bin() else {
        outcome.seen = Err(format!("{} not available", case.server.label()));
        return outcome;
    };
    let index = CASES.iter().position(|c| std::ptr::eq(c, case)).unwrap();
    // CLUSTERSMITH_ZOO_ORDER=ascending|descending puts every case one way (to see whether a
    // case's outcome depends on it).
    let descending = match std::env::var("CLUSTERSMITH_ZOO_ORDER").as_deref() {
        Ok("ascending") => false,
        Ok("descending") => true,
        _ => index % 2 == 1,
    };
    REVERSED.with(|r| r.set(descending));
    PREMISES.with(|p| p.borrow_mut().clear());
    let built = std::panic::catch_unwind(|| (case.build)(&bin));
    outcome.premise = PREMISES.with(|p| p.take());
    let setup = match built {
        Ok(setup) => setup,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            outcome.seen = Err(format!("setup failed: {text}"));
            return outcome;
        }
    };
    if outcome.premise.is_empty() {
        outcome.seen = Err("the setup proved nothing about itself".to_owned());
        return outcome;
    }
    let mut args = vec!["diagnose", "--format", "json", "--fail-on", "never"];
    args.extend(setup.args.iter().map(String::as_str));
    let env: Vec<(&str, &str)> = setup
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = clustersmith(&args, &env);
    outcome.secs = started.elapsed().as_secs_f64();
    if out.status.code() != Some(0) {
        outcome.seen = Err(format!(
            "diagnose exit {:?}: {}",
            out.status.code(),
            stderr(&out).trim()
        ));
        return outcome;
    }
    // The cases' passwords: in the files diagnose reads, never in what it prints.
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    if let Some(secret) = SECRETS.iter().find(|s| printed.contains(*s)) {
        outcome.seen = Err(format!("the output shows the password `{secret}`"));
        return outcome;
    }
    let report = json(&out);
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let at_least_warning = |f: &serde_json::Value| {
        matches!(
            f["severity"].as_str(),
            Some("warning" | "error" | "critical")
        )
    };
    outcome.warnings = findings
        .iter()
        .flat_map(|f| std::iter::once(f).chain(f["symptoms"].as_array().into_iter().flatten()))
        .filter(|f| at_least_warning(f))
        .count();
    outcome.tops_on_node = findings
        .iter()
        .filter(|f| at_least_warning(f) && f["node"].as_str().unwrap_or("") == setup.node)
        .count();
    outcome.elsewhere = findings
        .iter()
        .flat_map(|f| std::iter::once(f).chain(f["symptoms"].as_array().into_iter().flatten()))
        .filter(|f| {
            at_least_warning(f)
                && f["id"].as_str() == case.rule
                && !setup.node.is_empty()
                && f["node"].as_str().unwrap_or("") != setup.node
        })
        .count();
    let first = findings.first().filter(|f| at_least_warning(f));
    outcome.from_config = first.is_some_and(|f| {
        let evidence = f["evidence"].as_array().cloned().unwrap_or_default();
        !evidence.is_empty()
            && evidence.iter().all(|e| {
                e["source"] == "file"
                    && e["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("redis.conf"))
            })
    });
    let top = first.map(|f| {
        (
            f["id"].as_str().unwrap_or("").to_owned(),
            f["node"].as_str().unwrap_or("").to_owned(),
        )
    });
    outcome.missing_symptom = SYMPTOM_UNDER_TOP
        .iter()
        .find(|(name, _)| *name == case.name)
        .map(|(_, symptom)| *symptom)
        .filter(|symptom| {
            !first
                .and_then(|f| f["symptoms"].as_array())
                .is_some_and(|s| s.iter().any(|s| s["id"] == *symptom))
        });
    outcome.rows = rows_reproduced(&setup.args, &findings);
    let elsewhere_allowed = RULE_ALSO_ON_PEERS
        .iter()
        .any(|(name, _)| *name == case.name);
    outcome.ok = match case.rule {
        None => outcome.warnings == 0,
        Some(rule) => {
            top.as_ref() == Some(&(rule.to_owned(), setup.node.clone()))
                && outcome.tops_on_node == 1
                && (outcome.elsewhere == 0 || elsewhere_allowed)
                && outcome.missing_symptom.is_none()
        }
    };
    outcome.seen = Ok(top);
    outcome
}

#[test]
fn the_zoo() {
    let only: Option<Vec<String>> = std::env::var("CLUSTERSMITH_ZOO")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let cases: Vec<&'static Case> = CASES
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let outcome = run_case(case);
                    eprintln!(
                        "zoo: {} -> {} ({:.1} s)",
                        case.name,
                        if outcome.ok { "ok" } else { "WRONG" },
                        outcome.secs
                    );
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|o| (CLASSES.iter().position(|c| *c == o.case.class), o.case.name));
    let mut table = render_table(&outcomes);
    let mut unexplained = Vec::new();
    if only.is_none() {
        let (coverage, missing) = render_coverage(&outcomes);
        table.push('\n');
        table.push_str(&coverage);
        unexplained = missing;
    }
    println!("{table}");
    eprintln!("{table}");
    if let Some(path) = std::env::var_os("CLUSTERSMITH_ZOO_TABLE") {
        std::fs::write(path, &table).unwrap();
    }
    let unavailable: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(&o.seen, Err(e) if e.ends_with("not available")))
        .collect();
    for o in &unavailable {
        skip(
            &format!(
                "zoo case {}: {} not available",
                o.case.name,
                o.case.server.label()
            ),
            false,
        );
    }
    let wrong: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok && !unavailable.iter().any(|u| std::ptr::eq(*u, *o)))
        .map(|o| format!("{}: {}", o.case.name, describe(o)))
        .collect();
    if only.is_none() {
        let broken = CASES.iter().filter(|c| c.rule.is_some()).count();
        let healthy = CASES.len() - broken;
        assert_eq!(
            (broken, healthy),
            CASE_COUNTS,
            "(broken, healthy) cases; update CASE_COUNTS with the table"
        );
    }
    assert!(wrong.is_empty(), "wrong cases:\n{}", wrong.join("\n"));
    assert!(
        unexplained.is_empty(),
        "rules with no catalog row reproduced live and no reason in NOT_LIVE: {unexplained:?}"
    );
}

/// The catalog rows, classified to a rule, that lines of the logs given to diagnose (`--log`)
/// match, where diagnose reported that rule (as a cause or a symptom, at any severity).
fn rows_reproduced(args: &[String], findings: &[serde_json::Value]) -> BTreeSet<usize> {
    use clustersmith_core::diagnose::log_catalog::{Kind, Verdict, catalog};
    let reported: BTreeSet<&str> = findings
        .iter()
        .flat_map(|f| std::iter::once(f).chain(f["symptoms"].as_array().into_iter().flatten()))
        .filter_map(|f| f["id"].as_str())
        .collect();
    let logs = args
        .windows(2)
        .filter(|w| w[0] == "--log")
        .filter_map(|w| std::fs::read_to_string(&w[1]).ok());
    let mut rows = BTreeSet::new();
    for text in logs {
        let log = clustersmith_core::parse::parse_server_log(&text).value;
        let warnings = log
            .lines
            .iter()
            .map(|l| (Kind::Warning, l.message.as_str()));
        let refusals = log
            .config_errors
            .iter()
            .map(|e| (Kind::Config, e.message.as_str()));
        for (kind, message) in warnings.chain(refusals) {
            if let Some(row) = catalog().classify(kind, message)
                && let Verdict::Rule(rule, _) = catalog().rows[row].verdict
                && reported.contains(rule)
            {
                rows.insert(row);
            }
        }
    }
    rows
}

/// Why a rule's catalog rows are not (all) reproduced live: the rest are covered by the unit
/// test on the servers' own format strings (`every_row_classified_to_a_cause_…` in
/// clustersmith-core). Every rule with a row the zoo did not reproduce must be here.
const NOT_LIVE: &[(&str, &str)] = &[
    (
        "CS303",
        "its rows are malformed bus packets (bad length or signature, unknown type, invalid gossip) that stock servers do not send; the zoo's stuck-bus cases raise CS303 from CLUSTER NODES instead",
    ),
    (
        "CS307",
        "logged when a node finds keys of a slot it does not own at startup; the zoo's open slot is set live",
    ),
    (
        "CS401",
        "needs a host without IPv6 (errno 97); this machine has ::1",
    ),
    (
        "CS505",
        "needs nodes.conf to become unwritable under a running node; not built yet (a read-only bind mount would do it)",
    ),
    (
        "CS517",
        "needs a failover that cannot proceed; tests/hardening.rs makes failovers, the zoo does not yet",
    ),
    ("CS518", "the zoo's servers always get a config file"),
    (
        "CS519",
        "needs a primary whose stream the replica rejects (a module command, stream corruption): not reproducible with stock servers",
    ),
    (
        "CS520",
        "needs a connection reset or a failed TLS accept on the client port at warning level; not built yet",
    ),
];

/// What the rows a rule has that no case reproduced are, when some are: the same failure in
/// other releases' words.
const OTHER_WORDINGS: &str = "the rows not seen live are the same failures in other releases' or libraries' words (Redis and Valkey, MASTER and PRIMARY, OpenSSL), or other causes of the rule's family";

/// The catalog's coverage: per rule, its rows (classified to it) and those the zoo reproduced
/// live; the rest are covered by the unit test on the servers' own format strings. Also the
/// rules with no row reproduced live and no reason given in [`NOT_LIVE`].
fn render_coverage(outcomes: &[Outcome]) -> (String, Vec<&'static str>) {
    use clustersmith_core::diagnose::log_catalog::{Verdict, catalog};
    let live: BTreeSet<usize> = outcomes
        .iter()
        .filter(|o| o.ok)
        .flat_map(|o| o.rows.iter().copied())
        .collect();
    let mut by_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, row) in catalog().rows.iter().enumerate() {
        if let Verdict::Rule(rule, _) = row.verdict {
            let entry = by_rule.entry(rule).or_default();
            entry.0 += 1;
            entry.1 += usize::from(live.contains(&i));
        }
    }
    let total: usize = by_rule.values().map(|v| v.0).sum();
    // The unit test instantiates every row but a format that spans lines (the banner of a
    // block the server prints across lines).
    let multi_line = catalog()
        .rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Rule(..)))
        .filter(|r| r.pattern.trim_end_matches("\\n").contains("\\n") || r.pattern.starts_with('<'))
        .count();
    let mut text = format!(
        "Server log catalog: {total} rows classified to a cause; {} reproduced live by the zoo \
         (a case's log held the line and diagnose reported its rule); {} covered by the unit \
         test on the servers' own format strings (not instantiated: {multi_line} format(s) spanning \
         lines, the banner of a block).\n\n\
         | rule | rows | live in the zoo | why not all live |\n|---|---|---|---|\n",
        live.len(),
        total - multi_line,
    );
    let mut unexplained = Vec::new();
    for (rule, (rows, seen)) in &by_rule {
        if *seen == 0 && !NOT_LIVE.iter().any(|(r, _)| r == rule) {
            unexplained.push(*rule);
        }
        let why = match NOT_LIVE.iter().find(|(r, _)| r == rule) {
            Some((_, why)) => why,
            None if seen < rows => OTHER_WORDINGS,
            None => "",
        };
        text.push_str(&format!("| {rule} | {rows} | {seen} | {why} |\n"));
    }
    (text, unexplained)
}

fn describe(o: &Outcome) -> String {
    match &o.seen {
        Ok(Some((rule, node))) => format!(
            "top {rule} on {}{}",
            if node.is_empty() { "the cluster" } else { node },
            if o.case.rule.is_some() && o.tops_on_node != 1 {
                format!(", {} top findings on the node", o.tops_on_node)
            } else if o.elsewhere > 0 {
                format!(", and {} more on other nodes", o.elsewhere)
            } else if let Some(symptom) = o.missing_symptom {
                format!(", without {symptom} under it")
            } else {
                String::new()
            }
        ),
        Ok(None) if o.warnings > 0 => format!("{} warning(s), none on top", o.warnings),
        Ok(None) => "nothing at warning or above".to_owned(),
        Err(e) => e.clone(),
    }
}

/// The README's table: per class the cases and top-1 accuracy, then every case.
fn render_table(outcomes: &[Outcome]) -> String {
    let mut text = String::from("| class | cases | top-1 right | servers |\n|---|---|---|---|\n");
    for class in CLASSES {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.class == *class).collect();
        if of.is_empty() {
            continue;
        }
        let mut servers: Vec<&str> = of.iter().map(|o| o.case.server.label()).collect();
        servers.sort_unstable();
        servers.dedup();
        let right = of.iter().filter(|o| o.ok).count();
        let what = if *class == "healthy" {
            format!("{} without a warning", right)
        } else {
            format!("{right}")
        };
        text.push_str(&format!(
            "| {class} | {} | {what} | {} |\n",
            of.len(),
            servers.join(", ")
        ));
    }
    let broken: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.rule.is_some()).collect();
    let healthy: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.rule.is_none()).collect();
    let (from_config, from_state): (Vec<&Outcome>, Vec<&Outcome>) =
        broken.iter().partition(|o| o.from_config);
    let right = |of: &[&Outcome]| of.iter().filter(|o| o.ok).count();
    text.push_str(&format!(
        "\nTop-1 accuracy: {}/{} broken setups; false positives: {}/{} healthy setups.\n\
         Of the broken setups, {}/{} were decided from redis.conf lines alone (lines the case \
         itself wrote) and {}/{} from live state or logs.\n\n",
        right(&broken),
        broken.len(),
        healthy.iter().filter(|o| !o.ok).count(),
        healthy.len(),
        right(&from_config),
        from_config.len(),
        right(&from_state),
        from_state.len(),
    ));
    text.push_str(
        "| case | server | premise proven first | expected | diagnose's top finding | decided from | right |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            o.case.name,
            o.case.server.label(),
            o.premise.join("; ").replace('|', "\\|"),
            o.case.rule.unwrap_or("nothing ≥ warning"),
            describe(o).replace("127.0.0.1:", ":"),
            match (o.case.rule, o.from_config) {
                (None, _) => "",
                (Some(_), true) => "redis.conf",
                (Some(_), false) => "live state, logs",
            },
            if o.ok { "yes" } else { "**no**" }
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------
// Building blocks.

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn opts(bin: &Path, directives: &[(&str, &str)]) -> ServerOpts {
    ServerOpts {
        bin: Some(bin.to_owned()),
        directives: directives
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Servers with per-node options (the first node's options decide TLS and the CA), their
/// ports ascending, or descending in a reversed case.
fn start(bin: &Path, nodes: &[ServerOpts]) -> Servers {
    let mut ports: Vec<u16> = nodes.iter().map(|_| allocate_port()).collect();
    if reversed() {
        ports.reverse();
    }
    let with_port = |node: &ServerOpts, port: u16| ServerOpts {
        port: Some(port),
        ..node.clone()
    };
    let mut servers = Servers::start_with(1, &with_port(&nodes[0], ports[0]));
    for (node, port) in nodes[1..].iter().zip(&ports[1..]) {
        servers.add(bin, &with_port(node, *port));
    }
    servers
}

/// The nodes in the order diagnose gets them: last first in a reversed case.
fn listed(mut nodes: Vec<String>) -> Vec<String> {
    if reversed() {
        nodes.reverse();
    }
    nodes
}

/// A command whose failure is part of the breakage: its reply, or the error's text.
fn try_cmd(servers: &Servers, idx: usize, args: &[&str]) -> Result<redis::Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut servers.conn(idx)).map_err(|e| e.to_string())
}

/// Node 0, alone, takes every slot and is waited for until it serves them.
fn serve_every_slot(servers: &Servers) {
    all_slots(servers, 0, 0..16384);
    wait_until("the node serves its slots", Duration::from_secs(10), || {
        cluster_info(servers, 0, "cluster_state") == "ok"
    });
}

fn all_slots(servers: &Servers, idx: usize, range: std::ops::Range<u16>) {
    let slots: Vec<String> = range.map(|s| s.to_string()).collect();
    let mut args = vec!["CLUSTER", "ADDSLOTS"];
    args.extend(slots.iter().map(String::as_str));
    servers.cmd(idx, &args);
}

/// A field of `CLUSTER INFO` ("" when absent).
fn cluster_info(servers: &Servers, idx: usize, field: &str) -> String {
    servers
        .text(idx, &["CLUSTER", "INFO"])
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Whether node `idx` lists node `other` as a peer past the handshake.
fn knows(servers: &Servers, idx: usize, other: &str) -> bool {
    try_cmd(servers, idx, &["CLUSTER", "NODES"])
        .ok()
        .and_then(|v| redis::from_redis_value::<String>(v).ok())
        .is_some_and(|t| {
            t.lines()
                .any(|l| l.starts_with(other) && !l.contains("handshake") && !l.contains("noaddr"))
        })
}

/// The port peers reach a node's bus through (its TLS port in dual mode).
fn meet_port(servers: &Servers, idx: usize) -> u16 {
    servers.tls_ports[idx].unwrap_or(servers.port(idx))
}

/// Node 0 owns every slot, every other node meets it, and `replicas` replicate it: what a
/// formation step does. The meeting is given a few seconds (a broken bus never completes
/// it); what each case's setup reached is for the case to prove.
fn form(servers: &Servers, replicas: &[usize]) {
    all_slots(servers, 0, 0..16384);
    let id0 = servers.myid(0);
    let port0 = meet_port(servers, 0).to_string();
    for idx in 1..servers.servers.len() {
        let _ = try_cmd(servers, idx, &["CLUSTER", "MEET", "127.0.0.1", &port0]);
    }
    for idx in 1..servers.servers.len() {
        let id = servers.myid(idx);
        eventually(Duration::from_secs(5), || {
            knows(servers, idx, &id0) && knows(servers, 0, &id)
        });
    }
    for idx in replicas {
        let _ = try_cmd(servers, *idx, &["CLUSTER", "REPLICATE", &id0]);
    }
}

/// diagnose's arguments for `servers`: every node's files, the topology, the nodes.
fn args_for(servers: &Servers, m: usize, r: usize) -> Vec<String> {
    let mut args = files_of(servers);
    args.extend(strings(&["-m", &m.to_string(), "-r", &r.to_string()]));
    args.extend(listed(servers.ips()));
    args
}

fn setup(servers: Servers, m: usize, r: usize, node: usize) -> Setup {
    let node = servers.ips()[node].clone();
    Setup {
        args: args_for(&servers, m, r),
        env: password_env(&servers),
        node,
        _keep: vec![Box::new(servers)],
    }
}

fn password_env(servers: &Servers) -> Vec<(String, String)> {
    servers
        .password
        .iter()
        .map(|p| ("REDISCLI_AUTH".to_owned(), p.clone()))
        .collect()
}

/// Node 0 owning every slot, and a second node started with one directive of its own that
/// makes it no usable member; the broken node is the second, and `premise` proves how.
fn beside_a_primary(bin: &Path, directive: (&str, &str), premise: impl FnOnce(&Servers)) -> Setup {
    let servers = start(bin, &[opts(bin, &[]), opts(bin, &[directive])]);
    all_slots(&servers, 0, 0..16384);
    premise(&servers);
    setup(servers, 1, 1, 1)
}

/// A healthy node owning every slot, and the port for a node that will fail to start
/// beside it (below the healthy node's port in a reversed case).
fn healthy_and_a_port(bin: &Path) -> (Servers, u16) {
    let early = reversed().then(allocate_port);
    let servers = start(bin, &[opts(bin, &[])]);
    all_slots(&servers, 0, 0..16384);
    (servers, early.unwrap_or_else(allocate_port))
}

/// A healthy node 0 owning every slot, and a second node that must fail to start with
/// `extra` in its redis.conf (`$DIR` is its directory), after `prepare` put files there,
/// saying one of `says`.
fn beside_a_failed_start(
    bin: &Path,
    extra: &str,
    prepare: impl FnOnce(&Path),
    says: &[&str],
) -> Setup {
    let (servers, port) = healthy_and_a_port(bin);
    failed_start_at(bin, servers, port, extra, prepare, says)
}

/// A primary (node 0, every slot) and its replica (node 1), each with its own directives,
/// proven linked.
fn pair(bin: &Path, primary: &[(&str, &str)], replica: &[(&str, &str)]) -> Servers {
    let servers = start(bin, &[opts(bin, primary), opts(bin, replica)]);
    form(&servers, &[1]);
    prove_link_up(&servers, 1);
    servers
}

/// Two dual-mode TLS nodes (not formed), the second with `odd` settings when given.
fn tls_pair(bin: &Path, odd: Option<DualTls>) -> Servers {
    let base = ServerOpts {
        bin: Some(bin.to_owned()),
        tls: Some(DualTls::default()),
        ..Default::default()
    };
    let mut servers = Servers::start_with(1, &base);
    let second = ServerOpts {
        tls: Some(odd.unwrap_or_default()),
        ..base
    };
    servers.add(bin, &second);
    servers
}

/// A TLS 1+1 whose replica (node 1) has `odd` TLS settings, formed: the broken node is it,
/// and `premise` proves how.
fn odd_tls_replica(bin: &Path, odd: DualTls, premise: impl FnOnce(&Servers)) -> Setup {
    let servers = tls_pair(bin, Some(odd));
    form(&servers, &[1]);
    premise(&servers);
    setup(servers, 1, 1, 1)
}

/// A password-protected 1+1 (the harness and diagnose log in with [`PW`]) with each node's
/// directives, formed (node 1 replicates node 0); `broken` is the node the cause is on, and
/// `premise` proves what the setup reached.
fn protected_pair(
    bin: &Path,
    primary: &[(&str, &str)],
    replica: &[(&str, &str)],
    broken: usize,
    premise: impl FnOnce(&Servers),
) -> Setup {
    let mut servers = start(bin, &[opts(bin, primary), opts(bin, replica)]);
    servers.password = Some(PW.into());
    form(&servers, &[1]);
    premise(&servers);
    setup(servers, 1, 1, broken)
}

// ---------------------------------------------------------------------------------------
// The cases.

static CASES: &[Case] = &[
    // --- a process that will not start
    Case {
        name: "unknown-directive",
        class: "process will not start",
        server: Server::Redis70,
        rule: Some("CS501"),
        build: |bin| beside_a_failed_start(bin, "bogus-directive yes\n", |_| {}, &[BAD_DIRECTIVE]),
    },
    Case {
        name: "invalid-value",
        class: "process will not start",
        server: Server::Valkey81,
        rule: Some("CS501"),
        build: |bin| beside_a_failed_start(bin, "maxmemory lots\n", |_| {}, &["memory value"]),
    },
    Case {
        name: "bus-port-held-by-another-process",
        class: "process will not start",
        server: Server::Valkey91,
        rule: Some("CS502"),
        build: |bin| {
            // The bus port is port + 10000: something else listens there.
            let (servers, port) = healthy_and_a_port(bin);
            let holder = std::net::TcpListener::bind(("127.0.0.1", port + 10000)).unwrap();
            failed_start_at(bin, servers, port, "", |_| {}, &["Address already in use"])
                .keeping_after(holder)
        },
    },
    Case {
        name: "open-files-limit-below-the-minimum",
        class: "process will not start",
        server: Server::Redis70,
        rule: Some("CS515"),
        build: |bin| {
            // Started under `ulimit -n 16` that it cannot raise: below the descriptors the
            // server reserves for itself, it exits.
            let (servers, port) = healthy_and_a_port(bin);
            failed_launch_at(
                under_open_files_limit(bin, 16),
                servers,
                port,
                "",
                |_| {},
                &["is not enough for the server to start"],
            )
        },
    },
    Case {
        name: "bind-address-not-on-host",
        class: "process will not start",
        server: Server::Redis62,
        rule: Some("CS502"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "bind 192.0.2.1\n",
                |_| {},
                &["Cannot assign requested address"],
            )
        },
    },
    Case {
        name: "data-dir-missing",
        class: "process will not start",
        server: Server::Redis62,
        rule: Some("CS506"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "dir $DIR/does-not-exist\n",
                |_| {},
                &["No such file or directory"],
            )
        },
    },
    Case {
        name: "nodes-conf-corrupt",
        class: "process will not start",
        server: Server::Valkey91,
        rule: Some("CS504"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "",
                |dir| {
                    std::fs::write(dir.join("nodes.conf"), "this is not a nodes.conf line\n")
                        .unwrap();
                },
                &["corrupted cluster config file"],
            )
        },
    },
    Case {
        name: "rdb-file-corrupt",
        class: "process will not start",
        server: Server::Redis70,
        rule: Some("CS507"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "",
                |dir| {
                    std::fs::write(dir.join("dump.rdb"), b"REDIS0009\xfa\x09redis-ver\x05")
                        .unwrap();
                },
                &["Short read", "Internal error in RDB"],
            )
        },
    },
    Case {
        name: "tls-cert-file-missing",
        class: "process will not start",
        server: Server::Redis70,
        rule: Some("CS509"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "tls-port 0\ntls-cluster no\ntls-cert-file $DIR/missing.crt\ntls-key-file $DIR/missing.key\ntls-ca-cert-file $DIR/missing-ca.crt\ntls-replication yes\n",
                |_| {},
                &["Failed to configure TLS"],
            )
        },
    },
    Case {
        name: "acl-file-bad-line",
        class: "process will not start",
        server: Server::Valkey91,
        rule: Some("CS510"),
        build: |bin| {
            beside_a_failed_start(
                bin,
                "aclfile $DIR/users.acl\n",
                |dir| {
                    std::fs::write(
                        dir.join("users.acl"),
                        "user default on nopass ~* +@all\nuser repl on >replpw +bogus-command\n",
                    )
                    .unwrap();
                },
                &["bogus-command"],
            )
        },
    },
    Case {
        name: "keys-outside-db0",
        class: "process will not start",
        server: Server::Valkey81,
        rule: Some("CS508"),
        build: |bin| {
            let bin_owned = bin.to_owned();
            beside_a_failed_start(
                bin,
                "",
                move |dir| write_rdb_with_db1_key(&bin_owned, dir),
                &["more than 1 databases"],
            )
        },
    },
    // --- not a usable cluster member
    Case {
        name: "process-stopped",
        class: "not a usable cluster member",
        server: Server::Redis70,
        rule: Some("CS330"),
        build: |bin| {
            let mut servers = pair(bin, &[], &[]);
            servers.stop(1);
            prove_refuses_connections(&servers, 1);
            setup(servers, 1, 1, 1)
        },
    },
    Case {
        name: "process-frozen",
        class: "not a usable cluster member",
        server: Server::Valkey81,
        rule: Some("CS331"),
        build: |bin| {
            let servers = pair(bin, &[], &[]);
            let frozen = Frozen::new(servers.servers[1].pid);
            prove(
                "the node does not answer PING",
                Duration::from_secs(5),
                || !answers_ping(&servers, 1),
            );
            let mut setup = setup(servers, 1, 1, 1);
            setup.args.extend(strings(&[
                "--connect-timeout",
                "500",
                "--response-timeout",
                "1000",
            ]));
            // Dropped before the servers: SIGCONT, then the stop.
            setup.keeping_before(frozen)
        },
    },
    Case {
        name: "cluster-enabled-no",
        class: "not a usable cluster member",
        server: Server::Redis62,
        rule: Some("CS332"),
        build: |bin| {
            beside_a_primary(bin, ("cluster-enabled", "no"), |servers| {
                prove("INFO says cluster_enabled:0", Duration::ZERO, || {
                    servers
                        .info_field(1, "cluster", "cluster_enabled")
                        .as_deref()
                        == Some("0")
                })
            })
        },
    },
    Case {
        name: "cluster-command-renamed",
        class: "not a usable cluster member",
        server: Server::Valkey91,
        rule: Some("CS336"),
        build: |bin| {
            beside_a_primary(bin, ("rename-command", "CLUSTER \"\""), |servers| {
                prove("CLUSTER is an unknown command", Duration::ZERO, || {
                    try_cmd(servers, 1, &["CLUSTER", "INFO"]).is_err_and(|e| e.contains("unknown"))
                })
            })
        },
    },
    Case {
        name: "password-differs",
        class: "not a usable cluster member",
        server: Server::Valkey81,
        rule: Some("CS338"),
        build: |bin| {
            beside_a_primary(bin, ("requirepass", "odd-one-out"), |servers| {
                prove(
                    "the node refuses commands without AUTH",
                    Duration::ZERO,
                    || try_cmd(servers, 1, &["PING"]).is_err_and(|e| e.contains("NOAUTH")),
                )
            })
        },
    },
    Case {
        name: "member-of-another-cluster",
        class: "not a usable cluster member",
        server: Server::Redis70,
        rule: Some("CS310"),
        build: |bin| {
            // Nodes 0+1 are one cluster; node 2 owns every slot of a cluster of its own.
            let mut servers = pair(bin, &[], &[]);
            servers.add(bin, &opts(bin, &[]));
            all_slots(&servers, 2, 0..16384);
            servers.cmd(2, &["CLUSTER", "SET-CONFIG-EPOCH", "7"]);
            let id0 = servers.myid(0);
            prove(
                "the node serves every slot and knows no peer",
                Duration::from_secs(5),
                || cluster_info(&servers, 2, "cluster_state") == "ok" && !knows(&servers, 2, &id0),
            );
            setup(servers, 1, 2, 2)
        },
    },
    // --- replication auth and ACLs
    Case {
        name: "requirepass-without-masterauth",
        class: "replication auth and ACLs",
        server: Server::Redis70,
        rule: Some("CS202"),
        build: |bin| {
            protected_pair(
                bin,
                &[("requirepass", PW)],
                &[("requirepass", PW)],
                1,
                |s| prove_log(s, 1, &["NOAUTH"]),
            )
        },
    },
    Case {
        name: "masterauth-wrong",
        class: "replication auth and ACLs",
        server: Server::Valkey81,
        rule: Some("CS511"),
        build: |bin| {
            protected_pair(
                bin,
                &[("requirepass", PW), ("primaryauth", PW)],
                &[("requirepass", PW), ("primaryauth", "not-the-password")],
                1,
                |s| prove_log(s, 1, &["WRONGPASS", "invalid password"]),
            )
        },
    },
    Case {
        name: "replication-user-lacks-psync",
        class: "replication auth and ACLs",
        server: Server::Redis70,
        rule: Some("CS354"),
        build: |bin| {
            let user = ("user", "repl on >replpw ~* +@all -psync -sync");
            let node = [
                ("requirepass", PW),
                user,
                ("masteruser", "repl"),
                ("masterauth", "replpw"),
            ];
            protected_pair(bin, &node, &node, 0, |s| prove_log(s, 1, &["NOPERM"]))
        },
    },
    Case {
        name: "replication-user-disabled",
        class: "replication auth and ACLs",
        server: Server::Valkey91,
        rule: Some("CS354"),
        build: |bin| {
            protected_pair(
                bin,
                // The primary logs in as the default user when it is a replica.
                &[
                    ("requirepass", PW),
                    ("primaryauth", PW),
                    ("user", "repl off >replpw ~* +@all"),
                ],
                &[
                    ("requirepass", PW),
                    ("user", "repl off >replpw ~* +@all"),
                    ("primaryuser", "repl"),
                    ("primaryauth", "replpw"),
                ],
                0,
                |s| prove_log(s, 1, &["WRONGPASS", "user is disabled"]),
            )
        },
    },
    Case {
        name: "psync-and-sync-renamed",
        class: "replication auth and ACLs",
        server: Server::Redis62,
        rule: Some("CS203"),
        build: |bin| {
            let renamed = [
                ("rename-command", "PSYNC psync-x"),
                ("rename-command", "SYNC sync-x"),
            ];
            let servers = start(bin, &[opts(bin, &renamed), opts(bin, &[])]);
            form(&servers, &[1]);
            prove_log(&servers, 1, &["unknown command"]);
            setup(servers, 1, 1, 0)
        },
    },
    // --- TLS
    Case {
        name: "tls-cluster-on-one-node-only",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS304"),
        build: |bin| {
            let servers = Servers::start_with(
                3,
                &ServerOpts {
                    bin: Some(bin.to_owned()),
                    tls: Some(DualTls::default()),
                    ..Default::default()
                },
            );
            // Node 2 runs its bus in plaintext.
            servers.cmd(2, &["CONFIG", "SET", "tls-cluster", "no"]);
            servers.cmd(2, &["CONFIG", "REWRITE"]);
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            prove_bus_not_connected(&servers);
            setup(servers, 1, 2, 2)
        },
    },
    Case {
        name: "bus-cert-without-client-auth",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS305"),
        build: |bin| {
            let odd = DualTls {
                cert: CertOptions {
                    server_auth_only: true,
                    ..Default::default()
                },
                ..Default::default()
            };
            odd_tls_replica(bin, odd, prove_bus_not_connected)
        },
    },
    Case {
        name: "replication-plaintext-to-tls-port",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS201"),
        build: |bin| {
            let odd = DualTls {
                plaintext_replication: true,
                ..Default::default()
            };
            odd_tls_replica(bin, odd, |s| {
                // The bus is fine (only replication is broken): proven connected first, or a
                // link still connecting would be a second finding on the node.
                prove_healthy(s);
                prove_log(s, 1, &["did not respond to command during SYNC handshake"]);
            })
        },
    },
    Case {
        name: "cert-from-another-ca",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS350"),
        build: |bin| {
            let servers = tls_pair(bin, None);
            // Node 1 presents a certificate of a CA its peer does not trust.
            let other = tempfile::tempdir().unwrap();
            let ca = TestCa::create(other.path()).unwrap();
            let cert = ca
                .issue(other.path(), "node", &["127.0.0.1", "localhost"])
                .unwrap();
            servers.cmd(
                1,
                &[
                    "CONFIG",
                    "SET",
                    "tls-cert-file",
                    &path(&cert.cert),
                    "tls-key-file",
                    &path(&cert.key),
                ],
            );
            servers.cmd(1, &["CONFIG", "REWRITE"]);
            form(&servers, &[1]);
            prove_bus_not_connected(&servers);
            setup(servers, 1, 1, 1).keeping_after(other)
        },
    },
    Case {
        name: "expired-node-cert",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS350"),
        build: |bin| {
            let odd = DualTls {
                cert: CertOptions {
                    expired: true,
                    ..Default::default()
                },
                ..Default::default()
            };
            odd_tls_replica(bin, odd, prove_bus_not_connected)
        },
    },
    // --- slot and epoch states
    Case {
        name: "slot-left-importing",
        class: "slot and epoch states",
        server: Server::Valkey81,
        rule: Some("CS307"),
        build: |bin| {
            let servers = start(bin, &[opts(bin, &[]), opts(bin, &[])]);
            all_slots(&servers, 0, 0..8192);
            all_slots(&servers, 1, 8192..16384);
            let port0 = servers.port(0).to_string();
            servers.cmd(1, &["CLUSTER", "MEET", "127.0.0.1", &port0]);
            let id0 = servers.myid(0);
            wait_until("meet", Duration::from_secs(10), || {
                servers.text(1, &["CLUSTER", "NODES"]).contains(&id0)
            });
            wait_until("both see every slot", Duration::from_secs(10), || {
                (0..2).all(|i| cluster_info(&servers, i, "cluster_state") == "ok")
            });
            servers.cmd(1, &["CLUSTER", "SETSLOT", "100", "IMPORTING", &id0]);
            prove(
                "CLUSTER NODES shows slot 100 importing",
                Duration::ZERO,
                || servers.text(1, &["CLUSTER", "NODES"]).contains("[100-<-"),
            );
            setup(servers, 2, 0, 1)
        },
    },
    Case {
        name: "slots-deleted",
        class: "slot and epoch states",
        server: Server::Redis70,
        rule: Some("CS302"),
        build: |bin| {
            let servers = start(bin, &[opts(bin, &[]), opts(bin, &[])]);
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            servers.cmd(0, &["CLUSTER", "DELSLOTSRANGE", "1000", "1999"]);
            prove("15384 slots assigned", Duration::from_secs(5), || {
                cluster_info(&servers, 0, "cluster_slots_assigned") == "15384"
            });
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "replicas-piled-on-one-primary",
        class: "slot and epoch states",
        server: Server::Redis62,
        rule: Some("CS104"),
        build: |bin| {
            let o = opts(bin, &[]);
            let servers = start(bin, &[o.clone(), o.clone(), o.clone(), o]);
            all_slots(&servers, 0, 0..8192);
            all_slots(&servers, 1, 8192..16384);
            let port0 = servers.port(0).to_string();
            for idx in 1..4 {
                servers.cmd(idx, &["CLUSTER", "MEET", "127.0.0.1", &port0]);
            }
            let id0 = servers.myid(0);
            for idx in [2, 3] {
                wait_until("meet", Duration::from_secs(10), || {
                    servers.text(idx, &["CLUSTER", "NODES"]).contains(&id0)
                });
                servers.cmd(idx, &["CLUSTER", "REPLICATE", &id0]);
            }
            let id1 = servers.myid(1);
            wait_until("all meet", Duration::from_secs(10), || {
                (0..4).all(|i| {
                    let t = servers.text(i, &["CLUSTER", "NODES"]);
                    t.lines().count() == 4 && t.contains(&id1) && !t.contains("handshake")
                })
            });
            prove_link_up(&servers, 3);
            prove(
                "both replicas follow one primary, none the other",
                Duration::from_secs(5),
                || {
                    let by = replicas_by_primary(&servers.text(1, &["CLUSTER", "NODES"]));
                    by.get(&id0).map(Vec::len) == Some(2) && !by.contains_key(&id1)
                },
            );
            let mut s = setup(servers, 2, 1, 1);
            // The layout is the cluster's, not one node's.
            s.node = String::new();
            s
        },
    },
    Case {
        name: "nodes-conf-shared-with-a-running-node",
        class: "process will not start",
        server: Server::Redis70,
        rule: Some("CS337"),
        build: |bin| {
            // Node b's redis.conf points `dir` at node a's: the same nodes.conf, locked.
            let (servers, port) = healthy_and_a_port(bin);
            let shared = servers.servers[0].dir.clone();
            failed_start_at(
                bin,
                servers,
                port,
                &format!("dir {}\n", shared.display()),
                |_| {},
                &[
                    "already used by a different",
                    "Impossible to lock",
                    "acquire a lock",
                ],
            )
        },
    },
    Case {
        name: "loading-a-large-dataset",
        class: "not a usable cluster member",
        server: Server::Redis70,
        rule: Some("CS334"),
        build: |bin| {
            let mut servers = pair(bin, &[("enable-debug-command", "yes")], &[]);
            // 100000 keys loaded at 100 µs each: the node loads for about 10 s after its
            // restart, answering (LOADING) between small chunks of the file.
            servers.cmd(0, &["DEBUG", "POPULATE", "100000"]);
            // The replica's first sync may still hold the fork (a diskless transfer), and
            // SAVE is refused meanwhile ("Background save already in progress").
            assert!(
                eventually(Duration::from_secs(30), || try_cmd(&servers, 0, &["SAVE"])
                    .is_ok()),
                "SAVE did not succeed within 30 s"
            );
            restart(&mut servers, bin, 0, |dir| {
                append(
                    &dir.join("redis.conf"),
                    "key-load-delay 100\nloading-process-events-interval-bytes 1024\n",
                );
            });
            prove("INFO says loading:1", Duration::from_secs(5), || {
                servers.info_field(0, "persistence", "loading").as_deref() == Some("1")
            });
            setup(servers, 1, 1, 0)
        },
    },
    // --- bus cannot connect / announced wrong
    Case {
        name: "announce-ip-not-answering",
        class: "bus cannot connect / announced wrong",
        server: Server::Redis70,
        rule: Some("CS351"),
        build: |bin| {
            // Node 1 announces an address it does not listen on.
            let servers = start(
                bin,
                &[
                    opts(bin, &[]),
                    opts(bin, &[("cluster-announce-ip", "127.0.0.99")]),
                ],
            );
            form(&servers, &[1]);
            prove_peer_listed_at(&servers, 0, "127.0.0.99:");
            setup(servers, 1, 1, 1)
        },
    },
    Case {
        name: "announce-bus-port-wrong",
        class: "bus cannot connect / announced wrong",
        server: Server::Valkey91,
        rule: Some("CS351"),
        build: |bin| {
            let nowhere = allocate_port().to_string();
            let servers = start(
                bin,
                &[
                    opts(bin, &[]),
                    opts(bin, &[("cluster-announce-bus-port", &nowhere)]),
                ],
            );
            form(&servers, &[1]);
            prove_peer_listed_at(&servers, 0, &format!("@{nowhere}"));
            setup(servers, 1, 1, 1)
        },
    },
    Case {
        name: "announce-port-wrong-on-primary",
        class: "bus cannot connect / announced wrong",
        server: Server::Valkey81,
        rule: Some("CS351"),
        build: |bin| {
            // The primary announces a client port nothing listens on: its replica, which
            // connects where the primary says, never syncs.
            let nowhere = allocate_port().to_string();
            let servers = start(
                bin,
                &[
                    opts(bin, &[("cluster-announce-port", &nowhere)]),
                    opts(bin, &[]),
                ],
            );
            form(&servers, &[1]);
            prove(
                "the replica connects to the announced port",
                Duration::from_secs(10),
                || {
                    servers
                        .info_field(1, "replication", "master_port")
                        .as_deref()
                        == Some(nowhere.as_str())
                },
            );
            setup(servers, 1, 1, 0)
        },
    },
    // --- versions that do not fit together
    Case {
        name: "replica-older-than-primary",
        class: "versions that do not fit",
        server: Server::Redis62,
        rule: Some("CS352"),
        build: |bin| {
            // A Redis 7.0 primary and a Redis 6.2 replica: 6.2 cannot load 7.0's RDB.
            let newer = find_server_binary(None).unwrap();
            let mut servers = start(&newer, &[opts(&newer, &[])]);
            servers.add(bin, &opts(bin, &[]));
            form(&servers, &[1]);
            prove_log(&servers, 1, &["Can't handle RDB format version"]);
            setup(servers, 1, 1, 1)
        },
    },
    Case {
        name: "directive-of-a-newer-version",
        class: "versions that do not fit",
        server: Server::Redis62,
        rule: Some("CS402"),
        build: |bin| {
            let (servers, port) = healthy_and_a_port(bin);
            failed_start_at(
                bin,
                servers,
                port,
                &format!("cluster-port {}\n", port + 10000),
                |_| {},
                &[BAD_DIRECTIVE],
            )
        },
    },
    Case {
        name: "valkey-directive-on-redis",
        class: "versions that do not fit",
        server: Server::Redis70,
        rule: Some("CS402"),
        build: |bin| {
            beside_a_failed_start(bin, "primaryauth s3cr3t-value\n", |_| {}, &[BAD_DIRECTIVE])
        },
    },
    // --- replication auth and ACLs
    Case {
        name: "replication-user-missing-on-primary",
        class: "replication auth and ACLs",
        server: Server::Redis62,
        rule: Some("CS354"),
        build: |bin| {
            protected_pair(
                bin,
                &[("requirepass", PW), ("masterauth", PW)],
                &[
                    ("requirepass", PW),
                    ("masteruser", "repl"),
                    ("masterauth", "replpw"),
                ],
                0,
                |s| prove_log(s, 1, &["WRONGPASS", "invalid username-password"]),
            )
        },
    },
    // --- addresses after restarts
    Case {
        name: "replica-back-with-a-lost-disk",
        class: "addresses after restarts",
        server: Server::Redis70,
        rule: Some("CS320"),
        build: |bin| {
            let mut servers = pair(bin, &[], &[]);
            let before = servers.myid(1);
            restart(&mut servers, bin, 1, |dir| {
                std::fs::remove_file(dir.join("nodes.conf")).unwrap();
            });
            prove(
                "the node is back with a new id",
                Duration::from_secs(5),
                || servers.myid(1) != before,
            );
            setup(servers, 1, 1, 1)
        },
    },
    // --- the seed's formation-script mistakes, with the servers' real replies
    Case {
        name: "meet-given-a-hostname",
        class: "formation-script mistakes",
        server: Server::Redis70,
        rule: Some("CS101"),
        build: |bin| {
            let servers = start(bin, &[opts(bin, &[]), opts(bin, &[])]);
            let meet = format!("localhost:{}", servers.port(1));
            let (host, port) = meet.split_once(':').unwrap();
            let steps = [
                (0, vec!["CLUSTER", "MEET", host, port]),
                (0, vec!["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
            ];
            let mut log = script_log(&servers, &steps);
            let id0 = servers.myid(0);
            log.push_str(&script_log(
                &servers,
                &[(1, vec!["CLUSTER", "REPLICATE", &id0])],
            ));
            log.push_str("[Wed Dec  2 10:00:00 UTC 2026] cluster settled\n");
            prove("MEET was refused the name", Duration::ZERO, || {
                log.contains("Invalid node address")
            });
            with_post_deploy_log(servers, &log, "")
        },
    },
    Case {
        name: "replicate-before-meet",
        class: "formation-script mistakes",
        server: Server::Valkey81,
        rule: Some("CS102"),
        build: |bin| {
            let servers = start(bin, &[opts(bin, &[]), opts(bin, &[])]);
            let port0 = servers.port(0).to_string();
            let id0 = servers.myid(0);
            let steps = [
                (0, vec!["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
                // Sent right after the MEET: the replica does not know its primary yet.
                (1, vec!["CLUSTER", "MEET", "127.0.0.1", &port0]),
                (1, vec!["CLUSTER", "REPLICATE", &id0]),
            ];
            let mut log = script_log(&servers, &steps);
            log.push_str("[Wed Dec  2 10:00:00 UTC 2026] cluster settled\n");
            let id1 = servers.myid(1);
            prove(
                "REPLICATE was refused: unknown node",
                Duration::ZERO,
                || log.contains("Unknown node"),
            );
            wait_until("the nodes meet", Duration::from_secs(10), || {
                knows(&servers, 1, &id0) && knows(&servers, 0, &id1)
            });
            with_post_deploy_log(servers, &log, "")
        },
    },
    Case {
        name: "ca-file-of-another-ca",
        class: "TLS trust, key usage, mode",
        server: Server::Redis70,
        rule: Some("CS350"),
        build: |bin| {
            let servers = tls_pair(bin, None);
            // Node 1 trusts a CA that issued none of the nodes' certificates.
            let other = tempfile::tempdir().unwrap();
            let ca = TestCa::create(other.path()).unwrap();
            servers.cmd(
                1,
                &["CONFIG", "SET", "tls-ca-cert-file", &path(&ca.ca_cert)],
            );
            servers.cmd(1, &["CONFIG", "REWRITE"]);
            form(&servers, &[1]);
            prove_bus_not_connected(&servers);
            setup(servers, 1, 1, 1).keeping_after(other)
        },
    },
    Case {
        name: "cluster-node-timeout-differs",
        class: "bus cannot connect / announced wrong",
        server: Server::Valkey91,
        rule: Some("CS353"),
        build: |bin| {
            let o = opts(bin, &[]);
            let servers = start(
                bin,
                &[o.clone(), o, opts(bin, &[("cluster-node-timeout", "2000")])],
            );
            form(&servers, &[1, 2]);
            prove_link_up(&servers, 1);
            prove_link_up(&servers, 2);
            prove(
                "the node runs with a 2000 ms node timeout",
                Duration::ZERO,
                || {
                    try_cmd(&servers, 2, &["CONFIG", "GET", "cluster-node-timeout"])
                        .is_ok_and(|v| format!("{v:?}").contains("2000"))
                },
            );
            setup(servers, 1, 2, 2)
        },
    },
    Case {
        name: "primary-stopped",
        class: "not a usable cluster member",
        server: Server::Valkey81,
        rule: Some("CS330"),
        build: |bin| {
            let mut servers = pair(bin, &[], &[]);
            servers.stop(0);
            prove_refuses_connections(&servers, 0);
            prove_link(&servers, 1, "down", Duration::from_secs(5));
            setup(servers, 1, 1, 0)
        },
    },
    // --- what clients see
    Case {
        name: "writes-refused-at-maxmemory",
        class: "what clients see",
        server: Server::Redis70,
        rule: Some("CS370"),
        build: |bin| {
            let servers = start(
                bin,
                &[opts(
                    bin,
                    &[("maxmemory", "2mb"), ("maxmemory-policy", "noeviction")],
                )],
            );
            serve_every_slot(&servers);
            // Writes until the server refuses one with OOM: the premise, shown by the server
            // (bounded: 2 MB fill up long before 4000 writes of 4 KB).
            let value = "x".repeat(4096);
            let mut n = 0;
            prove(
                "a write is refused with OOM",
                Duration::from_secs(20),
                || {
                    (0..100).any(|_| {
                        n += 1;
                        try_cmd(&servers, 0, &["SET", &format!("k:{n}"), &value])
                            .is_err_and(|e| e.contains("OOM"))
                    })
                },
            );
            setup(servers, 1, 0, 0)
        },
    },
    Case {
        name: "replica-gone-under-min-replicas-to-write",
        class: "what clients see",
        server: Server::Redis62,
        rule: Some("CS330"),
        build: |bin| {
            // The primary takes a write only with one good replica, and its only replica
            // stops: the replica is the cause, the refused writes what clients see.
            let mut servers = pair(bin, &[("min-replicas-to-write", "1")], &[]);
            prove(
                "a write is taken while the replica is up",
                Duration::from_secs(10),
                || try_cmd(&servers, 0, &["SET", "k", "v"]).is_ok(),
            );
            servers.stop(1);
            prove_refuses_connections(&servers, 1);
            prove(
                "a write is refused with NOREPLICAS",
                Duration::from_secs(10),
                || {
                    try_cmd(&servers, 0, &["SET", "k", "v"])
                        .is_err_and(|e| e.contains("NOREPLICAS"))
                },
            );
            setup(servers, 1, 1, 1)
        },
    },
    // Where clients are sent: node 0 owns every slot and announces a client endpoint that
    // clients cannot use, while its bus address is right; node 1, its replica (its link up:
    // replication goes to the bus address), redirects clients to it. Each proves the
    // redirect and the endpoint's failure before diagnose.
    Case {
        name: "announced-hostname-does-not-resolve",
        class: "what clients see",
        server: Server::Redis70,
        rule: Some("CS373"),
        build: |bin| {
            let servers = start(
                bin,
                &[
                    opts(
                        bin,
                        &[
                            ("cluster-announce-hostname", "node-0.invalid"),
                            ("cluster-preferred-endpoint-type", "hostname"),
                        ],
                    ),
                    // A name that resolves here, or the replica's entry would be `?`.
                    opts(
                        bin,
                        &[
                            ("cluster-announce-hostname", "localhost"),
                            ("cluster-preferred-endpoint-type", "hostname"),
                        ],
                    ),
                ],
            );
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            let endpoint = format!("node-0.invalid:{}", servers.port(0));
            prove_redirected_to(&servers, &endpoint);
            prove(
                "`node-0.invalid` does not resolve",
                Duration::from_secs(5),
                || std::net::ToSocketAddrs::to_socket_addrs(&("node-0.invalid", 1)).is_err(),
            );
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "announced-client-ip-not-listening",
        class: "what clients see",
        server: Server::Valkey81,
        rule: Some("CS373"),
        build: |bin| {
            // The servers bind 127.0.0.1 only: nothing listens on 127.0.0.2.
            clients_sent_nowhere(bin, ("cluster-announce-client-ipv4", "127.0.0.2"), |s| {
                format!("127.0.0.2:{}", s.port(0))
            })
        },
    },
    Case {
        name: "announced-client-port-not-listening",
        class: "what clients see",
        server: Server::Valkey91,
        rule: Some("CS373"),
        build: |bin| {
            let nowhere = allocate_port().to_string();
            clients_sent_nowhere(bin, ("cluster-announce-client-port", &nowhere), |_| {
                format!("127.0.0.1:{nowhere}")
            })
        },
    },
    // --- the node's environment
    Case {
        name: "replica-started-under-a-low-open-files-limit",
        class: "the node's environment",
        server: Server::Redis70,
        rule: Some("CS374"),
        build: |bin| {
            // The replica runs under `ulimit -n 64` it cannot raise: the server cuts
            // maxclients to 32 at startup; 40 clients connecting at once find it full.
            let early = reversed().then(allocate_port);
            let servers = start(bin, &[opts(bin, &[])]);
            all_slots(&servers, 0, 0..16384);
            let port = early.unwrap_or_else(allocate_port);
            let dir = tempfile::tempdir().unwrap();
            let conf = broken_conf(dir.path(), port, "");
            let replica = Launched::spawn(under_open_files_limit(bin, 64).arg(&conf));
            let conn = || {
                redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .and_then(|c| c.get_connection())
            };
            prove_file_says(
                &dir.path().join("server.log"),
                &["maxclients has been reduced to 32"],
                Duration::from_secs(5),
            );
            wait_until("the replica answers", Duration::from_secs(5), || {
                conn().is_ok()
            });
            let query = |args: &[&str]| -> Result<String, String> {
                let mut cmd = redis::cmd(args[0]);
                cmd.arg(&args[1..]);
                let mut c = conn().map_err(|e| e.to_string())?;
                cmd.query::<String>(&mut c).map_err(|e| e.to_string())
            };
            query(&["CLUSTER", "MEET", "127.0.0.1", &servers.port(0).to_string()]).unwrap();
            let id0 = servers.myid(0);
            wait_until(
                "the replica knows the primary",
                Duration::from_secs(5),
                || query(&["CLUSTER", "NODES"]).is_ok_and(|t| t.contains(&id0)),
            );
            query(&["CLUSTER", "REPLICATE", &id0]).unwrap();
            prove("the replica's link is up", Duration::from_secs(10), || {
                query(&["INFO", "replication"]).is_ok_and(|t| t.contains("master_link_status:up"))
            });
            prove(
                "the 40th of 40 clients connecting at once is refused: max number of clients",
                Duration::from_secs(5),
                || {
                    let held: Vec<std::net::TcpStream> = (0..40)
                        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
                        .collect();
                    let Some(mut last) = held.last() else {
                        return false;
                    };
                    let _ = last.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut reply = [0u8; 128];
                    let n = std::io::Read::read(&mut last, &mut reply).unwrap_or(0);
                    String::from_utf8_lossy(&reply[..n]).contains("max number of clients")
                },
            );
            let log = dir.path().join("server.log");
            let (args, node) = beside_node_0(&servers, port, &conf, &log);
            Setup {
                args,
                env: Vec::new(),
                node,
                // The replica stops before its directory goes, the primary last.
                _keep: vec![Box::new(replica), Box::new(dir), Box::new(servers)],
            }
        },
    },
    Case {
        name: "dir-too-small-for-the-rdb-save",
        class: "the node's environment",
        server: Server::Redis70,
        rule: Some("CS524"),
        build: |bin| {
            // The primary's `dir` is a 1 MiB tmpfs (its nodes.conf lives elsewhere: a cluster
            // config it cannot save would stop it), with save points set (MISCONF needs them)
            // and about 13 MB of keys: BGSAVE fails, and writes are refused.
            let mount = Tmpfs::mount("1m");
            let elsewhere = tempfile::tempdir().unwrap();
            let nodes_conf = path(&elsewhere.path().join("nodes.conf"));
            let small_disk = path(mount.path());
            let servers = start(
                bin,
                &[opts(
                    bin,
                    &[
                        ("dir", &small_disk),
                        ("cluster-config-file", &nodes_conf),
                        ("save", "3600 1"),
                        ("enable-debug-command", "yes"),
                    ],
                )],
            );
            serve_every_slot(&servers);
            servers.cmd(0, &["DEBUG", "POPULATE", "100000", "key", "100"]);
            servers.cmd(0, &["BGSAVE"]);
            prove_log(&servers, 0, &["No space left on device"]);
            prove(
                "a write is refused with MISCONF",
                Duration::from_secs(10),
                || try_cmd(&servers, 0, &["SET", "k", "v"]).is_err_and(|e| e.contains("MISCONF")),
            );
            // Dropped after the server: unmounted once nothing writes there.
            setup(servers, 1, 0, 0)
                .keeping_after(mount)
                .keeping_after(elsewhere)
        },
    },
    Case {
        name: "fork-refused-at-the-process-limit",
        class: "the node's environment",
        server: Server::Redis70,
        rule: Some("CS527"),
        build: |bin| {
            // A lone primary run as an unprivileged user allowed 4 processes, where its own
            // threads count (Redis 7.0 runs 4 or 5): the fork of every background save fails,
            // and with a save point set, writes are then refused with MISCONF.
            let port = allocate_port();
            let dir = tempfile::tempdir().unwrap();
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
            let conf = broken_conf(dir.path(), port, "save 3600 1\n");
            let node = Launched::spawn(as_nobody_under_process_limit(bin, 4).arg(&conf));
            let query = |args: &[&str]| -> Result<String, String> {
                let mut cmd = redis::cmd(args[0]);
                cmd.arg(&args[1..]);
                redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| cmd.query::<redis::Value>(&mut c))
                    .map(|v| format!("{v:?}"))
                    .map_err(|e| e.to_string())
            };
            wait_until("the node answers", Duration::from_secs(5), || {
                query(&["PING"]).is_ok()
            });
            query(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).unwrap();
            wait_until("the node serves its slots", Duration::from_secs(10), || {
                query(&["SET", "k", "v"]).is_ok()
            });
            // Refused (`ERR`) when the fork fails; the log says why.
            let _ = query(&["BGSAVE"]);
            let log = dir.path().join("server.log");
            prove_file_says(
                &log,
                &["fork: Resource temporarily unavailable"],
                Duration::from_secs(5),
            );
            prove(
                "a write is refused with MISCONF",
                Duration::from_secs(5),
                || query(&["SET", "k", "v"]).is_err_and(|e| e.contains("MISCONF")),
            );
            let node_label = format!("127.0.0.1:{port}");
            let mut args = strings(&["--redis-conf", &path(&conf), "--log", &path(&log)]);
            args.extend(strings(&["-m", "1", "-r", "0", &node_label]));
            Setup {
                args,
                env: Vec::new(),
                node: node_label,
                // The server stops before its directory goes.
                _keep: vec![Box::new(node), Box::new(dir)],
            }
        },
    },
    Case {
        name: "maxmemory-above-the-machine",
        class: "the node's environment",
        server: Server::Valkey91,
        rule: Some("CS525"),
        build: |bin| {
            // maxmemory set live to four times what the machine has (a value sized for
            // another VM type): whatever this machine has, the setting cannot be reached.
            let servers = start(bin, &[opts(bin, &[])]);
            serve_every_slot(&servers);
            let field = |name: &str| -> u64 {
                servers
                    .info_field(0, "memory", name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let machine = field("total_system_memory");
            servers.cmd(
                0,
                &["CONFIG", "SET", "maxmemory", &(machine * 4).to_string()],
            );
            prove(
                "INFO says maxmemory is above total_system_memory",
                Duration::from_secs(5),
                || machine > 0 && field("maxmemory") > machine,
            );
            setup(servers, 1, 0, 0)
        },
    },
    Case {
        name: "replica-disk-smaller-than-the-dataset",
        class: "the node's environment",
        server: Server::Redis70,
        rule: Some("CS521"),
        build: |bin| {
            // The replica's `dir` is a 2 MiB tmpfs (its nodes.conf and log live beside, on
            // the test's disk); the primary holds tens of MB of keys.
            let mount = Tmpfs::mount("2m");
            let mut ports = [allocate_port(), allocate_port()];
            if reversed() {
                ports.reverse();
            }
            let primary = ServerOpts {
                port: Some(ports[0]),
                ..opts(
                    bin,
                    &[
                        ("enable-debug-command", "yes"),
                        ("repl-diskless-sync-delay", "0"),
                    ],
                )
            };
            let mut servers = Servers::start_with(1, &primary);
            let node_dir = servers.path().join(format!("node-{}", ports[1]));
            let nodes_conf = path(&node_dir.join("nodes.conf"));
            let small_disk = path(mount.path());
            servers.add(
                bin,
                &ServerOpts {
                    port: Some(ports[1]),
                    ..opts(
                        bin,
                        &[("dir", &small_disk), ("cluster-config-file", &nodes_conf)],
                    )
                },
            );
            servers.cmd(0, &["DEBUG", "POPULATE", "300000", "key", "100"]);
            form(&servers, &[1]);
            prove_log(&servers, 1, &["short write"]);
            prove_link(&servers, 1, "down", Duration::ZERO);
            // Dropped after the servers: unmounted once nothing writes there.
            setup(servers, 1, 1, 1).keeping_after(mount)
        },
    },
    // --- why a sync loops
    Case {
        name: "replica-output-buffer-below-the-write-rate",
        class: "why a sync loops",
        server: Server::Redis70,
        rule: Some("CS522"),
        build: |bin| {
            // A disk-based sync slowed to seconds (20 µs a key), a 1 MB hard limit for the
            // replica class, and a writer of 100 KB values: each sync's buffer overflows.
            let primary = [
                ("enable-debug-command", "yes"),
                ("repl-diskless-sync", "no"),
                ("rdb-key-save-delay", "20"),
                ("client-output-buffer-limit", "replica 1mb 512kb 5"),
            ];
            let servers = start(bin, &[opts(bin, &primary), opts(bin, &[])]);
            servers.cmd(0, &["DEBUG", "POPULATE", "100000"]);
            form(&servers, &[1]);
            let writes = BackgroundWrites::start(servers.port(0), 100 * 1024);
            prove_log(&servers, 0, &["for overcoming of output buffer limits"]);
            prove_link(&servers, 1, "down", Duration::ZERO);
            // Dropped first: the writer stops before the servers do.
            setup(servers, 1, 1, 0).keeping_before(writes)
        },
    },
    Case {
        name: "repl-timeout-below-the-transfer-pauses",
        class: "why a sync loops",
        server: Server::Redis70,
        rule: Some("CS523"),
        build: |bin| {
            // A diskless sync whose child pauses 3 s before each key (rdb-key-save-delay
            // counts microseconds), and a replica that gives up after 1 s without data.
            let primary = [
                ("enable-debug-command", "yes"),
                ("repl-diskless-sync", "yes"),
                ("repl-diskless-sync-delay", "0"),
                ("rdb-key-save-delay", "3000000"),
            ];
            let servers = start(
                bin,
                &[opts(bin, &primary), opts(bin, &[("repl-timeout", "1")])],
            );
            servers.cmd(0, &["DEBUG", "POPULATE", "5"]);
            form(&servers, &[1]);
            prove_log(&servers, 1, &["Timeout receiving bulk data"]);
            prove_link(&servers, 1, "down", Duration::ZERO);
            setup(servers, 1, 1, 1)
        },
    },
    // --- config the server refuses, with no log to say so
    Case {
        name: "typo-in-a-directive-stderr-discarded",
        class: "config the server refuses",
        server: Server::Redis62,
        rule: Some("CS403"),
        build: |bin| failed_start_unlogged(bin, "cluster-node-timout 5000\n", BAD_DIRECTIVE),
    },
    Case {
        name: "bad-boolean-stderr-discarded",
        class: "config the server refuses",
        server: Server::Valkey91,
        rule: Some("CS403"),
        build: |bin| {
            failed_start_unlogged(bin, "appendonly true\n", "argument must be 'yes' or 'no'")
        },
    },
    // --- node identity
    Case {
        name: "data-dir-cloned-from-a-replica",
        class: "node identity",
        server: Server::Valkey81,
        rule: Some("CS312"),
        build: |bin| {
            // A 1+1, then a third server started on a copy of the replica's data dir (a
            // restored backup, a cloned disk): it answers with the replica's node id.
            let early = reversed().then(allocate_port);
            let mut servers = pair(bin, &[], &[]);
            let port = early.unwrap_or_else(allocate_port);
            // A copy is made after its original ran (uptime counts whole seconds).
            std::thread::sleep(Duration::from_millis(1100));
            let dir = servers.path().join(format!("node-{port}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(
                servers.servers[1].dir.join("nodes.conf"),
                dir.join("nodes.conf"),
            )
            .unwrap();
            let clone = servers.add(
                bin,
                &ServerOpts {
                    port: Some(port),
                    ..opts(bin, &[])
                },
            );
            let id = servers.myid(1);
            prove(
                "the new server answers with the replica's id",
                Duration::ZERO,
                || servers.myid(clone) == id,
            );
            // The primary hears the id from two addresses: it moves it back and forth.
            let updated = format!("Address updated for node {id}");
            let log = servers.servers[0].log_path();
            prove(
                "the primary moved the id's address at least twice",
                Duration::from_secs(15),
                || {
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .matches(&updated)
                        .count()
                        >= 2
                },
            );
            setup(servers, 1, 2, clone)
        },
    },
    // --- healthy
    Case {
        name: "healthy-plain",
        class: "healthy",
        server: Server::Redis70,
        rule: None,
        build: |bin| {
            let servers = pair(bin, &[], &[]);
            prove_healthy(&servers);
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "healthy-password",
        class: "healthy",
        server: Server::Redis62,
        rule: None,
        build: |bin| {
            let mut o = opts(bin, &[]);
            o.password = Some(PW.into());
            let servers = start(bin, &[o.clone(), o]);
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            prove_healthy(&servers);
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "healthy-dual-mode-tls",
        class: "healthy",
        server: Server::Redis70,
        rule: None,
        build: |bin| {
            let servers = tls_pair(bin, None);
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            prove_healthy(&servers);
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "healthy-acl-replication-user",
        class: "healthy",
        server: Server::Valkey91,
        rule: None,
        build: |bin| {
            let node = [
                ("requirepass", PW),
                ("user", "repl on >replpw +psync +replconf +ping"),
                ("primaryuser", "repl"),
                ("primaryauth", "replpw"),
            ];
            protected_pair(bin, &node, &node, 0, |s| {
                prove_link_up(s, 1);
                prove_healthy(s);
            })
        },
    },
    Case {
        name: "healthy-replica-newer-than-primary",
        class: "healthy",
        server: Server::Valkey81,
        rule: None,
        build: |bin| {
            // A Valkey 8.1 primary and a Valkey 9.1 replica (the order of a rolling upgrade).
            let newer = Server::Valkey91
                .bin()
                .expect("Valkey 9.1 beside Valkey 8.1");
            let mut servers = start(bin, &[opts(bin, &[])]);
            servers.add(&newer, &opts(&newer, &[]));
            form(&servers, &[1]);
            prove_link_up(&servers, 1);
            prove_healthy(&servers);
            setup(servers, 1, 1, 0)
        },
    },
    Case {
        name: "healthy-tls-only-sandbox",
        class: "healthy",
        server: Server::Redis70,
        rule: None,
        build: |bin| tls_only_sandbox(bin),
    },
];

/// Proves node `idx` refuses connections (its process is gone).
fn prove_refuses_connections(servers: &Servers, idx: usize) {
    let port = servers.port(idx);
    prove(
        "the node refuses connections",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
    );
}

/// Whether node `idx` answers PING within half a second.
fn answers_ping(servers: &Servers, idx: usize) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", servers.port(idx))) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 64];
    stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut reply).is_ok_and(|n| n > 0)
}

/// Proves node `idx` lists a node (under any id: a handshake has a random one) at
/// `address`, which no node listens on.
fn prove_peer_listed_at(servers: &Servers, idx: usize, address: &str) {
    prove(
        &format!("its peer dials the announced `{address}`"),
        Duration::from_secs(10),
        || {
            servers
                .text(idx, &["CLUSTER", "NODES"])
                .lines()
                .any(|l| l.contains(address))
        },
    );
}

/// Proves the bus does not connect: 3 s after the MEET (a healthy one completes within
/// milliseconds) some node still lists no connected peer.
fn prove_bus_not_connected(servers: &Servers) {
    let since = Instant::now();
    let views = || -> Vec<String> {
        (0..servers.servers.len())
            .map(|i| servers.text(i, &["CLUSTER", "NODES"]))
            .collect()
    };
    let alone = |view: &String| {
        !view
            .lines()
            .any(|l| !l.contains("myself") && l.contains(" connected") && !l.contains("handshake"))
    };
    let stuck = eventually(Duration::from_secs(10), || {
        since.elapsed() > Duration::from_secs(3) && views().iter().any(alone)
    });
    assert!(
        stuck,
        "every node has a connected peer; the views:\n{}",
        views().join("\n")
    );
    prove(
        "a node has no connected peer 3 s after the MEET",
        Duration::ZERO,
        || stuck,
    );
}

/// Proves every node sees the cluster ok and every other node connected.
fn prove_healthy(servers: &Servers) {
    let ids: Vec<String> = (0..servers.servers.len())
        .map(|i| servers.myid(i))
        .collect();
    prove(
        "every node ok and connected to every other",
        Duration::from_secs(10),
        || {
            (0..ids.len()).all(|i| {
                let nodes = servers.text(i, &["CLUSTER", "NODES"]);
                cluster_info(servers, i, "cluster_state") == "ok"
                    && ids.iter().all(|id| {
                        nodes
                            .lines()
                            .any(|l| l.starts_with(id.as_str()) && l.contains(" connected"))
                    })
            })
        },
    );
}

/// Runs a formation script's steps with `redis-cli` and returns its log as the seed's
/// script writes it: a timestamped line per step, then what redis-cli printed.
fn script_log(servers: &Servers, steps: &[(usize, Vec<&str>)]) -> String {
    let mut log = String::new();
    for (idx, args) in steps {
        log.push_str(&format!(
            "[Wed Dec  2 10:00:00 UTC 2026] running {} on node {idx}\n",
            args[..2].join(" ")
        ));
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &servers.port(*idx).to_string()])
            .args(args)
            .output()
            .expect("redis-cli (redis-tools) must be installed");
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    log
}

/// diagnose's arguments for a 1+1 of `servers` with a post-deploy log.
fn with_post_deploy_log(servers: Servers, log: &str, node: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("post-deploy.stderr.log");
    std::fs::write(&file, log).unwrap();
    let mut args = args_for(&servers, 1, 1);
    args.extend(strings(&["--post-deploy-log", &path(&file)]));
    Setup {
        args,
        env: Vec::new(),
        node: node.to_owned(),
        _keep: vec![Box::new(servers), Box::new(dir)],
    }
}

fn append(file: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Stops node `idx`, lets `between` change its directory, and starts the same binary on
/// the same redis.conf (which daemonizes): the harness then stops the new process.
fn restart(servers: &mut Servers, bin: &Path, idx: usize, between: impl FnOnce(&Path)) {
    let server = servers.servers[idx].clone();
    servers.stop(idx);
    wait_until("the node to exit", Duration::from_secs(10), || {
        clustersmith_io::sandbox::process_start_time(server.pid).is_none()
    });
    let _ = std::fs::remove_file(server.dir.join("server.pid"));
    between(&server.dir);
    let status = Command::new(bin)
        .arg(server.dir.join("redis.conf"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut pid = None;
    wait_until("the node to come back", Duration::from_secs(10), || {
        pid = std::fs::read_to_string(server.dir.join("server.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        pid.is_some()
    });
    let pid = pid.unwrap();
    servers.servers[idx].pid = pid;
    servers.servers[idx].start_time = clustersmith_io::sandbox::process_start_time(pid);
    wait_until("the node to accept", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok()
    });
}

/// Runs a node on `port` that must fail to start, in the foreground, its output appended
/// to its log as a service manager would; diagnose gets it and `servers` as a 1+1.
fn failed_start_at(
    bin: &Path,
    servers: Servers,
    port: u16,
    extra: &str,
    prepare: impl FnOnce(&Path),
    says: &[&str],
) -> Setup {
    failed_launch_at(Command::new(bin), servers, port, extra, prepare, says)
}

/// [`failed_start_at`] with the server started by `launcher` (the server binary, or a
/// command that execs it under limits).
fn failed_launch_at(
    launcher: Command,
    servers: Servers,
    port: u16,
    extra: &str,
    prepare: impl FnOnce(&Path),
    says: &[&str],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("b");
    std::fs::create_dir_all(&node_dir).unwrap();
    prepare(&node_dir);
    let extra = extra.replace("$DIR", &node_dir.display().to_string());
    let conf = broken_conf(&node_dir, port, &extra);
    let log = node_dir.join("server.log");
    let code = run_command_to_exit(launcher, &conf, &log);
    prove(
        &format!("the server exited with status {code}"),
        Duration::ZERO,
        || code != 0,
    );
    prove_file_says(&log, says, Duration::ZERO);
    let (args, node) = beside_node_0(&servers, port, &conf, &log);
    Setup {
        args,
        env: Vec::new(),
        node,
        _keep: vec![Box::new(servers), Box::new(dir)],
    }
}

/// diagnose's arguments for node 0 of `servers` and a node the case started itself at
/// `port` with `conf` and `log` (a 1+1), and that node's label.
fn beside_node_0(servers: &Servers, port: u16, conf: &Path, log: &Path) -> (Vec<String>, String) {
    let b = format!("127.0.0.1:{port}");
    let mut args = files_of(servers);
    args.extend(strings(&["--redis-conf", &path(conf), "--log", &path(log)]));
    args.extend(strings(&["-m", "1", "-r", "1"]));
    args.extend(listed(vec![servers.ips()[0].clone(), b.clone()]));
    (args, b)
}

/// A healthy node owning every slot, and a second node that fails to start with `extra` in
/// its redis.conf, its stderr (which says `says`) going where nobody keeps it: the server
/// exits before it opens its logfile, so diagnose gets the redis.conf alone.
fn failed_start_unlogged(bin: &Path, extra: &str, says: &str) -> Setup {
    let (servers, port) = healthy_and_a_port(bin);
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("b");
    let conf = broken_conf(&node_dir, port, extra);
    let discarded = dir.path().join("stderr-nobody-keeps");
    let code = run_to_exit(bin, &conf, &discarded);
    prove(
        &format!("the server exited with status {code}"),
        Duration::ZERO,
        || code != 0,
    );
    prove_file_says(&discarded, &[says], Duration::ZERO);
    // Redis 6.2 creates its logfile while reading the config (to test it): empty.
    prove("its log is absent or empty", Duration::ZERO, || {
        std::fs::metadata(node_dir.join("server.log")).map_or(true, |m| m.len() == 0)
    });
    let b = format!("127.0.0.1:{port}");
    let mut args = files_of(&servers);
    args.extend(strings(&["--redis-conf", &path(&conf)]));
    args.extend(strings(&["-m", "1", "-r", "1"]));
    args.extend(listed(vec![servers.ips()[0].clone(), b.clone()]));
    Setup {
        args,
        env: Vec::new(),
        node: b,
        _keep: vec![Box::new(servers), Box::new(dir)],
    }
}

/// A dump.rdb with a key in database 1, written by a standalone server of the same binary.
fn write_rdb_with_db1_key(bin: &Path, dir: &Path) {
    let port = allocate_port();
    let mut child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &path(dir),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/1")).unwrap();
    let mut conn = None;
    eventually(Duration::from_secs(5), || {
        conn = client.get_connection().ok();
        conn.is_some()
    });
    let mut conn = conn.expect("standalone server for the dump");
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut conn)
        .unwrap();
    redis::cmd("SAVE").query::<()>(&mut conn).unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

/// `clustersmith sandbox up --tls` (TLS-only nodes, no plaintext port), diagnosed over TLS
/// with the sandbox's files.
fn tls_only_sandbox(bin: &Path) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sb");
    // Two consecutive ports (the sandbox's), handed to no other case.
    let base = loop {
        let first = allocate_port();
        if allocate_port() == first + 1 {
            break first;
        }
    };
    let up = clustersmith(
        &[
            "sandbox",
            "up",
            "-m",
            "1",
            "-r",
            "1",
            "--tls",
            "--server-bin",
            &path(bin),
            "--base-port",
            &base.to_string(),
            "--dir",
            &path(&state),
        ],
        &[],
    );
    let guard = SandboxGuard(state.clone());
    // `sandbox up` verifies the cluster it formed before it exits 0.
    prove(
        "`sandbox up` formed and verified it",
        Duration::ZERO,
        || up.status.code() == Some(0),
    );
    let tls = state.join("tls");
    let mut args = strings(&[
        "--tls",
        "--cacert",
        &path(&tls.join("ca.crt")),
        "--cert",
        &path(&tls.join("client.crt")),
        "--key",
        &path(&tls.join("client.key")),
        "-m",
        "1",
        "-r",
        "1",
    ]);
    for port in [base, base + 1] {
        let node_dir = state.join(format!("node-{port}"));
        if node_dir.join("redis.conf").exists() {
            args.extend(strings(&[
                "--redis-conf",
                &path(&node_dir.join("redis.conf")),
            ]));
            args.extend(strings(&["--log", &path(&node_dir.join("server.log"))]));
        }
        args.push(format!("127.0.0.1:{port}"));
    }
    Setup {
        args,
        env: Vec::new(),
        node: String::new(),
        _keep: vec![Box::new(guard), Box::new(dir)],
    }
}

/// A client writing values of `size` bytes to a node (every key in one slot the node owns
/// alone: the test's primary owns all) as fast as it answers, until dropped.
struct BackgroundWrites {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundWrites {
    fn start(port: u16, size: usize) -> BackgroundWrites {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let value = "v".repeat(size);
            let Ok(mut conn) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection())
            else {
                return;
            };
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                // Bounded by the flag. A refusal (CLUSTERDOWN until the node's slots are
                // writable) is waited out.
                let key = format!("{{w}}:{}", n % 64);
                let written = redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .query::<()>(&mut conn)
                    .is_ok();
                std::thread::sleep(Duration::from_millis(if written { 5 } else { 50 }));
            }
        });
        BackgroundWrites {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BackgroundWrites {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A tmpfs of a given size (the test runs as root, as CI does), unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8)");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Takes a sandbox down when dropped.
struct SandboxGuard(PathBuf);

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        let _ = clustersmith(&["sandbox", "down", "--dir", &path(&self.0)], &[]);
    }
}
