//! The servers' own log catalog: what every warning a Redis or Valkey server can log means.
//!
//! `data/server-log-classification.tsv` holds one row per distinct warning-level message (and
//! config-file error) of the cluster, replication, TLS, server, config, networking, ACL, AOF
//! and RDB sources of Redis 6.2 / 7.0 / 7.2 and Valkey 8.0 / 8.1: the message's format string,
//! and either the rule that explains it or `not-cluster`. A format string becomes a pattern:
//! printf conversions are wildcards, the rest is literal text. Valkey renamed words in many
//! messages (`MASTER` → `PRIMARY`, `slave` → `replica`, `Redis` → `Valkey`); patterns and log
//! lines both go through the same renaming and lower-casing, so one row fits both wordings.
//!
//! Matching is by literal segments, not regular expressions: a pattern whose first word is
//! literal is only tried on lines that start with that word (a hash lookup), the few others on
//! every line, and of all patterns that fit, the one with the most literal text wins (so
//! `WARNING *` does not swallow `WARNING: The TCP backlog setting …`). Each log is matched
//! once; its result is kept in the log (see [`ServerLog`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use super::{Evidence, Hit, Inputs, NodeEvidence, Rule, SourceFile, rule};
use crate::parse::server_log::{LineGroup, masked};
use crate::parse::{ConfigError, LogLine, ServerLog};

const CLASSIFICATION: &str = include_str!("../../data/server-log-classification.tsv");

/// Where a message is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A `#` line of the server log.
    Warning = 0,
    /// The message under `*** FATAL CONFIG FILE ERROR ***` (stderr).
    Config = 1,
}

/// How much a line says about its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    /// The line alone raises the rule on its node.
    Proves,
    /// The line joins the rule's finding when other evidence raises it; alone it is info.
    Hints,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Rule(&'static str, Weight),
    NotCluster,
}

/// One row of the classification table.
#[derive(Clone, Debug)]
pub struct Row {
    pub kind: Kind,
    /// The pattern as the table writes it (Valkey wording, `*` for conversions).
    pub pattern: &'static str,
    /// Lower-cased texts one of which the line must contain; empty for a pattern's default row.
    pub when: Vec<String>,
    pub verdict: Verdict,
    /// What the line proves, or why it is not a cluster problem.
    pub note: &'static str,
    /// Line in the table file, for error messages.
    pub table_line: usize,
}

/// A compiled pattern: its literal segments between wildcards, and its rows.
#[derive(Debug)]
struct Pattern {
    kind: Kind,
    /// Literal text between wildcards; `segments.len() - 1` wildcards.
    segments: Vec<String>,
    literal_len: usize,
    /// Refining rows first (in table order), the default row last.
    rows: Vec<usize>,
}

impl Pattern {
    fn matches(&self, line: &str) -> bool {
        let (first, rest) = self.segments.split_first().expect("at least one segment");
        let Some(mut tail) = line.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return tail.is_empty();
        };
        let Some(body) = tail.strip_suffix(last.as_str()) else {
            return false;
        };
        tail = body;
        // Leftmost placement of each middle segment is enough for `*`-only globs.
        for segment in middle {
            match tail.find(segment.as_str()) {
                Some(at) => tail = &tail[at + segment.len()..],
                None => return false,
            }
        }
        true
    }
}

/// The classification table, compiled.
#[derive(Debug)]
pub struct Catalog {
    pub rows: Vec<Row>,
    patterns: Vec<Pattern>,
    /// Patterns by their literal first word: warnings, then config errors.
    by_first_word: [HashMap<String, Vec<usize>>; 2],
    /// Patterns that start with a wildcard or a partial word: tried on every line.
    unanchored: Vec<usize>,
}

/// The table failed to load: only a broken edit of the data file does that (a test loads it).
#[derive(Debug, thiserror::Error)]
#[error("data/server-log-classification.tsv line {line}: {message}")]
pub struct TableError {
    line: usize,
    message: String,
}

/// The compiled catalog (built on first use).
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::parse(CLASSIFICATION).unwrap_or_else(|e| panic!("{e}")))
}

/// Lower-cases `text` and applies Valkey's renames, so that Redis and Valkey wordings meet.
/// Applied alike to patterns and to log lines.
pub fn canonical(text: &str) -> String {
    let mut out = text.to_ascii_lowercase();
    for (redis, valkey) in [
        ("master", "primary"),
        ("slave", "replica"),
        ("redis", "valkey"),
    ] {
        // Most lines hold none of them: no copy then.
        if out.contains(redis) {
            out = out.replace(redis, valkey);
        }
    }
    out
}

/// A C format string as the server would print it, with `*` for each conversion (`%s`,
/// `%.40s`, `%lld`, `%.*s`; `%%` is a literal `%`) and C escapes (`\"`, `\n`) resolved.
pub fn format_to_pattern(format: &str) -> String {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '%' => {
                if chars.peek() == Some(&'%') {
                    chars.next();
                    out.push('%');
                    continue;
                }
                // flags, width, precision, length, then the conversion letter.
                while chars
                    .peek()
                    .is_some_and(|c| "-+ #0123456789.*hlzjtLq".contains(*c))
                {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| "diouxXeEfgGcsp".contains(*c)) {
                    chars.next();
                }
                out.push('*');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The key two format strings share when they are the same message: conversions as `*`,
/// escapes resolved, lower-cased and renamed.
pub fn message_key(format: &str) -> String {
    canonical(&format_to_pattern(format))
}

impl Catalog {
    pub fn parse(text: &'static str) -> Result<Catalog, TableError> {
        let mut rows = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut by_key: HashMap<(Kind, String), usize> = HashMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            if raw.starts_with('#') || raw.starts_with("kind\t") || raw.trim().is_empty() {
                continue;
            }
            let err = |message: String| TableError { line, message };
            let cols: Vec<&'static str> = raw.split('\t').collect();
            let [kind, pattern, when, verdict, weight, note] = cols[..] else {
                return Err(err(format!("{} columns, want 6", cols.len())));
            };
            let kind = match kind {
                "warning" => Kind::Warning,
                "config" => Kind::Config,
                other => return Err(err(format!("unknown kind `{other}`"))),
            };
            let verdict = match (verdict, weight) {
                ("not-cluster", "-") => Verdict::NotCluster,
                (id, "proves") => Verdict::Rule(id, Weight::Proves),
                (id, "hints") => Verdict::Rule(id, Weight::Hints),
                (v, w) => return Err(err(format!("bad verdict `{v}` / weight `{w}`"))),
            };
            if note.trim().is_empty() {
                return Err(err("no note".into()));
            }
            let when: Vec<String> = when
                .split('|')
                .filter(|w| !w.is_empty())
                .map(canonical)
                .collect();
            let key = message_key(pattern);
            let row = rows.len();
            rows.push(Row {
                kind,
                pattern,
                when,
                verdict,
                note,
                table_line: line,
            });
            let at = *by_key.entry((kind, key.clone())).or_insert_with(|| {
                patterns.push(compile(kind, &key));
                patterns.len() - 1
            });
            let p = &mut patterns[at];
            if rows[row].when.is_empty() {
                if p.rows.last().is_some_and(|r| rows[*r].when.is_empty()) {
                    return Err(err(format!("a second default row for `{pattern}`")));
                }
                p.rows.push(row);
            } else {
                // Refinements go before the default row, in table order.
                let default_at = p
                    .rows
                    .iter()
                    .position(|r| rows[*r].when.is_empty())
                    .unwrap_or(p.rows.len());
                p.rows.insert(default_at, row);
            }
        }
        let mut by_first_word: [HashMap<String, Vec<usize>>; 2] = Default::default();
        let mut unanchored = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if p.rows.iter().all(|r| !rows[*r].when.is_empty()) {
                return Err(TableError {
                    line: rows[p.rows[0]].table_line,
                    message: "a refinement without a default row".into(),
                });
            }
            // Too little literal text to tell a message apart (a bare `%s`): such a pattern
            // keeps its row in the table but matches nothing.
            if p.literal_len < 4 {
                continue;
            }
            // Indexed by first word only when that word is wholly literal: a line then fits
            // only if it starts with that word and a space, or is the whole literal.
            if p.segments[0].contains(' ') || p.segments.len() == 1 {
                by_first_word[p.kind as usize]
                    .entry(first_word(&p.segments[0]).to_owned())
                    .or_default()
                    .push(i);
            } else {
                unanchored.push(i);
            }
        }
        Ok(Catalog {
            rows,
            patterns,
            by_first_word,
            unanchored,
        })
    }

    /// The row that classifies `message` (a warning line's text, or a config error), if any.
    pub fn classify(&self, kind: Kind, message: &str) -> Option<usize> {
        let line = canonical(message.trim());
        let line = line.trim_end();
        let anchored = self.by_first_word[kind as usize]
            .get(first_word(line))
            .into_iter()
            .flatten();
        let best = anchored
            .chain(&self.unanchored)
            .map(|i| &self.patterns[*i])
            .filter(|p| p.kind == kind && p.matches(line))
            // The most literal text wins; on a tie, an anchored pattern, then table order.
            .min_by_key(|p| std::cmp::Reverse(p.literal_len))?;
        best.rows.iter().copied().find(|r| {
            let when = &self.rows[*r].when;
            when.is_empty() || when.iter().any(|w| line.contains(w.as_str()))
        })
    }

    /// Distinct patterns in the table (a pattern and its refinements count once).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }
}

/// The first space-separated word (the whole text without a space).
fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

/// Splits a canonical pattern into literal segments around its wildcards. A message printed
/// over several lines is matched on its first line, which is all a log line holds.
fn compile(kind: Kind, key: &str) -> Pattern {
    let first_line = key.split('\n').next().unwrap_or("").trim_end();
    let mut segments: Vec<String> = Vec::new();
    for (i, part) in first_line.split('*').enumerate() {
        // `**` is one wildcard: drop empty middle segments.
        if i > 0 && part.is_empty() && segments.last().is_some_and(String::is_empty) {
            continue;
        }
        segments.push(part.to_owned());
    }
    let literal_len = segments.iter().map(String::len).sum();
    Pattern {
        kind,
        segments,
        literal_len,
        rows: Vec::new(),
    }
}

/// A memo row: no catalog row matched.
const UNRECOGNISED: u32 = u32::MAX;

/// The warning lines of the log's last run, matched and grouped once per log.
fn grouped(log: &ServerLog) -> &[LineGroup] {
    log.catalog_memo.get_or_init(|| {
        let catalog = catalog();
        // A long log mostly repeats a few messages: match each distinct text once.
        let mut seen: HashMap<&str, u32> = HashMap::new();
        let mut index: HashMap<(u32, String), usize> = HashMap::new();
        let mut out: Vec<LineGroup> = Vec::new();
        let start = log.last_run_start();
        for (i, l) in log.lines.iter().enumerate().skip(start) {
            if l.level != '#' || l.message.trim().is_empty() {
                continue;
            }
            let row = *seen.entry(l.message.as_str()).or_insert_with(|| {
                catalog
                    .classify(Kind::Warning, &l.message)
                    .map_or(UNRECOGNISED, |r| r as u32)
            });
            match index.entry((row, masked(&l.message))) {
                Entry::Occupied(at) => {
                    let g = &mut out[*at.get()];
                    g.count += 1;
                    g.last = i;
                }
                Entry::Vacant(slot) => {
                    slot.insert(out.len());
                    out.push(LineGroup {
                        row,
                        first: i,
                        last: i,
                        count: 1,
                    });
                }
            }
        }
        // A thinned log left lines out: its counts say how many there were in that run.
        if log.omitted > 0 {
            for g in &mut out {
                if let Some(times) = log.times_logged_by_its_process(&log.lines[g.first]) {
                    g.count = g.count.max(times);
                }
            }
        }
        out
    })
}

/// Repeated lines, counted once: the same row and the same text with its numbers masked.
#[derive(Debug)]
struct Group<'a> {
    row: Option<usize>,
    first: &'a LogLine,
    last: &'a LogLine,
    count: usize,
}

/// The log's groups, in order of first appearance, for the rows `keep` accepts (`None`:
/// unrecognised lines).
fn groups<'a>(log: &'a ServerLog, keep: impl Fn(Option<usize>) -> bool) -> Vec<Group<'a>> {
    grouped(log)
        .iter()
        .map(|g| ((g.row != UNRECOGNISED).then_some(g.row as usize), g))
        .filter(|(row, _)| keep(*row))
        .map(|(row, g)| Group {
            row,
            first: &log.lines[g.first],
            last: &log.lines[g.last],
            count: g.count,
        })
        .collect()
}

/// `lines` as evidence, repeats (the same text but for its numbers) counted and shown once,
/// in order of first appearance.
pub(crate) fn counted<'a>(
    file: &'a SourceFile<ServerLog>,
    lines: impl Iterator<Item = &'a LogLine>,
) -> Vec<Evidence> {
    let mut order: Vec<(usize, usize, usize)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let all = &file.value.lines;
    for line in lines {
        // Lines come from the log itself: find each one's index by its line number.
        let Ok(i) = all.binary_search_by_key(&line.line, |l| l.line) else {
            continue;
        };
        match index.entry(masked(&line.message)) {
            Entry::Occupied(at) => {
                let g = &mut order[*at.get()];
                g.1 = i;
                g.2 += 1;
            }
            Entry::Vacant(slot) => {
                slot.insert(order.len());
                order.push((i, i, 1));
            }
        }
    }
    order
        .into_iter()
        .map(|(first, last, count)| {
            // A thinned log left repeats out: the log's own count of the message says how
            // many there were.
            let total = (file.value.omitted > 0)
                .then(|| file.value.totals.get(&masked(&all[first].message)))
                .flatten()
                .map_or(0, |t| t.all);
            let g = Group {
                row: None,
                first: &all[first],
                last: &all[last],
                count: count.max(total),
            };
            group_evidence(file, &g)
        })
        .collect()
}

fn group_evidence(file: &SourceFile<ServerLog>, g: &Group) -> Evidence {
    let text = if g.count == 1 {
        g.first.message.clone()
    } else {
        format!(
            "{} (×{}, {} … {}, last at line {})",
            g.first.message, g.count, g.first.time, g.last.time, g.last.line
        )
    };
    file.at(g.first.line, text)
}

/// The config errors of the last run (a server refusing its config file at start).
fn config_errors(log: &ServerLog) -> impl Iterator<Item = &ConfigError> {
    let from = log.lines.get(log.last_run_start()).map_or(0, |l| l.line);
    log.config_errors.iter().filter(move |e| e.line >= from)
}

/// A refused config line as evidence; `repeats` more identical blocks (a supervisor restarting
/// the server into the same error) are counted, the last one's line given.
fn config_evidence(
    file: &SourceFile<ServerLog>,
    e: &ConfigError,
    repeats: &[&ConfigError],
) -> Evidence {
    let at = match (&e.config_line, &e.directive) {
        (Some(n), Some(d)) => format!(" at config line {n} `{d}`"),
        (Some(n), None) => format!(" at config line {n}"),
        _ => String::new(),
    };
    let count = match repeats.last() {
        Some(last) => format!(" (×{}, last at line {})", repeats.len() + 1, last.line),
        None => String::new(),
    };
    file.at(
        e.line,
        format!("FATAL CONFIG FILE ERROR{at}: {}{count}", e.message),
    )
}

/// The rule a config error is evidence for: its row's; else, by the refused directive, the
/// rule for what it configures (Valkey checks `dir` while reading the file and prints only
/// the OS error, `No such file or directory`); else config-file-rejected.
fn config_error_row(e: &ConfigError) -> (&'static str, &'static str) {
    let catalog = catalog();
    if let Some(r) = catalog.classify(Kind::Config, &e.message)
        && let Verdict::Rule(id, _) = catalog.rows[r].verdict
        && id != "CS501"
    {
        return (id, catalog.rows[r].note);
    }
    let directive = e
        .directive
        .as_deref()
        .and_then(|d| d.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_lowercase();
    match directive.as_str() {
        "dir" => (
            "CS506",
            "the working directory (dir) does not exist or is not accessible: the server did not start",
        ),
        d if d.starts_with("tls-") => (
            "CS509",
            "a TLS setting was refused (a file it cannot read, or a server built without TLS): the server did not start",
        ),
        "aclfile" | "user" => (
            "CS510",
            "the users could not be loaded from the config file: the server did not start",
        ),
        _ => (
            "CS501",
            "the server rejected a line of its config file and exited without starting",
        ),
    }
}

/// Failures that a later line of the same run shows were overcome: a replica whose credentials
/// or disk were fixed (`CONFIG SET masterauth`, space freed) and then synced, a save that
/// succeeded after a disk-full episode, a failover that went through in the end. Such lines
/// are history, not the state now: they only hint. (rule ids, texts of the clearing lines in
/// Redis and Valkey wording).
const CLEARED_BY: &[(&[&str], &[&str])] = &[
    (
        &["CS202", "CS511", "CS512", "CS513"],
        &[
            "sync: Finished with success",
            "Successful partial resynchronization with",
            "Synchronization with replica",
        ],
    ),
    (
        &["CS514"],
        &[
            "Background saving terminated with success",
            "DB saved on disk",
            "Background AOF rewrite terminated with success",
            "Background AOF rewrite finished successfully",
            "AOF write error looks solved",
        ],
    ),
    (
        &["CS517"],
        &["Failover election won", "Cluster state changed: ok"],
    ),
];

/// The log line number of the last line of the run that clears `id`'s failures.
fn last_clearing_line(log: &ServerLog, id: &str) -> Option<usize> {
    let (_, clearing) = CLEARED_BY.iter().find(|(ids, _)| ids.contains(&id))?;
    log.lines[log.last_run_start()..]
        .iter()
        .rev()
        .find(|l| clearing.iter().any(|c| l.message.contains(c)))
        .map(|l| l.line)
}

/// What a group of lines says about its rule: its row's weight, except that a failure a later
/// line cleared only hints.
fn weight(log: &ServerLog, g: &Group, row: &Row) -> Option<(&'static str, Weight)> {
    let Verdict::Rule(id, w) = row.verdict else {
        return None;
    };
    let cleared =
        w == Weight::Proves && last_clearing_line(log, id).is_some_and(|at| at > g.last.line);
    Some((id, if cleared { Weight::Hints } else { w }))
}

/// Evidence the node's log holds for `rule`: (what it proves, evidence) for proving lines, and
/// evidence for hinting lines.
fn log_evidence(
    node: &NodeEvidence,
    rule: &Rule,
) -> (Option<&'static str>, Vec<Evidence>, Vec<Evidence>) {
    let Some(file) = &node.log else {
        return (None, Vec::new(), Vec::new());
    };
    let catalog = catalog();
    let mut summary = None;
    let mut proving = Vec::new();
    let mut hinting = Vec::new();
    let mut refused: Vec<(&ConfigError, Vec<&ConfigError>)> = Vec::new();
    for e in config_errors(&file.value) {
        let (id, note) = config_error_row(e);
        if id != rule.id {
            continue;
        }
        summary.get_or_insert(note);
        let same = |f: &&ConfigError| {
            (f.config_line, &f.directive, &f.message) == (e.config_line, &e.directive, &e.message)
        };
        match refused.iter_mut().find(|(first, _)| same(first)) {
            Some((_, repeats)) => repeats.push(e),
            None => refused.push((e, Vec::new())),
        }
    }
    proving.extend(
        refused
            .iter()
            .map(|(e, repeats)| config_evidence(file, e, repeats)),
    );
    let is_rule = |row: Option<usize>| {
        row.is_some_and(
            |r| matches!(catalog.rows[r].verdict, Verdict::Rule(id, _) if id == rule.id),
        )
    };
    for g in groups(&file.value, is_rule) {
        let row = &catalog.rows[g.row.expect("kept rows are classified")];
        match weight(&file.value, &g, row) {
            Some((_, Weight::Proves)) => {
                summary.get_or_insert(row.note);
                proving.push(group_evidence(file, &g));
            }
            _ => hinting.push(group_evidence(file, &g)),
        }
    }
    (summary, proving, hinting)
}

/// At most this many log groups per finding; the rest are counted.
const GROUP_CAP: usize = 8;

fn capped(mut evidence: Vec<Evidence>, what: &str) -> Vec<Evidence> {
    if evidence.len() > GROUP_CAP {
        let more = evidence.len() - GROUP_CAP;
        let source = evidence[GROUP_CAP].source.clone();
        evidence.truncate(GROUP_CAP);
        evidence.push(Evidence {
            source,
            text: format!("… and {more} more {what}"),
        });
    }
    evidence
}

/// Adds the server's own log lines to `rule`'s hits: lines that prove the rule raise it on
/// their node (joining the check's hit there, if any), lines that hint at it join a hit the
/// rule has on that node. A line a check already cites is not repeated.
pub fn attach(rule: &Rule, inputs: &Inputs, hits: &mut Vec<Hit>) {
    for node in &inputs.nodes {
        let (summary, proving, hinting) = log_evidence(node, rule);
        if proving.is_empty() && hinting.is_empty() {
            continue;
        }
        let at = hits.iter().position(|h| h.node.as_ref() == Some(&node.key));
        let hit = match (at, summary) {
            (Some(at), _) => &mut hits[at],
            (None, Some(summary)) => {
                hits.push(Hit {
                    node: Some(node.key.clone()),
                    summary: format!("the server's log says so: {summary}"),
                    evidence: Vec::new(),
                });
                hits.last_mut().expect("just pushed")
            }
            // Hints alone do not raise a rule (see `uncorroborated`).
            (None, None) => continue,
        };
        let new: Vec<Evidence> = proving
            .into_iter()
            .chain(hinting)
            .filter(|e| !hit.evidence.iter().any(|c| c.source == e.source))
            .collect();
        hit.evidence.extend(capped(new, "server warnings"));
    }
}

/// CS598: warning lines that point at a rule no other evidence raises on their node.
pub fn uncorroborated(inputs: &Inputs) -> Vec<Hit> {
    let catalog = catalog();
    // The hinted rules' own hits, computed once per rule.
    let mut fired: BTreeMap<&'static str, Vec<Hit>> = BTreeMap::new();
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(file) = &node.log else { continue };
        let mut by_rule: BTreeMap<&'static str, Vec<Evidence>> = BTreeMap::new();
        let mut notes: BTreeMap<&'static str, &'static str> = BTreeMap::new();
        for g in groups(&file.value, |row| row.is_some()) {
            let row = &catalog.rows[g.row.expect("kept rows are classified")];
            let Some((id, Weight::Hints)) = weight(&file.value, &g, row) else {
                continue;
            };
            let Some(target) = rule(id) else { continue };
            let raised = fired
                .entry(id)
                .or_insert_with(|| super::engine::hits_of(target, inputs))
                .iter()
                // A finding about the whole cluster covers this node too.
                .any(|h| h.node.is_none() || h.node.as_ref() == Some(&node.key));
            if !raised {
                notes.entry(id).or_insert(row.note);
                by_rule
                    .entry(id)
                    .or_default()
                    .push(group_evidence(file, &g));
            }
        }
        for (id, evidence) in by_rule {
            let target = rule(id).expect("looked up above");
            hits.push(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "server warning(s) that may point at {id} {} (no other evidence of it): {}",
                    target.name, notes[id]
                ),
                evidence: capped(evidence, "server warnings"),
            });
        }
    }
    hits
}

/// CS599: warning lines of the last run that no catalog row matches, counted and shown once.
pub fn unrecognised(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let file = node.log.as_ref()?;
            let evidence: Vec<Evidence> = groups(&file.value, |row| row.is_none())
                .iter()
                .map(|g| group_evidence(file, g))
                .collect();
            (!evidence.is_empty()).then(|| Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "{} distinct server warning(s) that no rule recognises",
                    evidence.len()
                ),
                evidence: capped(evidence, "unrecognised warnings"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
