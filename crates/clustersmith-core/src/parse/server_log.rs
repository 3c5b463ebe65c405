//! Redis / Valkey server logs: `PID:ROLE DD Mon YYYY HH:MM:SS.mmm LEVEL message`, where ROLE
//! is `M` (primary), `S` (replica), `C` (child or startup) or `X` (sentinel) and LEVEL one of
//! `.`, `-`, `*`, `#`. Lines in another shape (the ASCII logo, wrapped text) are reported
//! and skipped, except the block a server prints to stderr when it refuses its config file
//! (`*** FATAL CONFIG FILE ERROR ***`), which is kept as a [`ConfigError`]: it is the one
//! reason such a server gives for not running, and it often lands in the same file.

use std::sync::OnceLock;

use super::{ParseIssue, Parsed};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// 1-based line number.
    pub line: usize,
    pub pid: u32,
    pub role: char,
    /// `03 Jan 2024 15:26:23.047`, as written.
    pub time: String,
    pub level: char,
    pub message: String,
}

/// The reason a server gave for refusing its config file, from the block it prints to stderr:
///
/// ```text
/// *** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***
/// Reading the configuration file, at line 3
/// >>> 'foo-bar 1'
/// Bad directive or wrong number of arguments
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number of the message (the block's last line).
    pub line: usize,
    /// The config file line the server refused, as it reports it.
    pub config_line: Option<usize>,
    /// The refused line, as the server quotes it after `>>>`.
    pub directive: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct ServerLog {
    pub lines: Vec<LogLine>,
    pub config_errors: Vec<ConfigError>,
    /// Lines after the last log line that are not in the log format (nor a config error
    /// block), with their line numbers: what the server wrote to stderr as it exited, when
    /// stderr goes to the same file.
    pub tail_text: Vec<(usize, String)>,
    /// Lines of a long log left out to bound memory: repeats of a message beyond its first
    /// and last few occurrences. The log's last lines are always kept.
    pub omitted: u64,
    /// The warning lines of the last run grouped by the catalog row they matched, filled once
    /// on first use by the diagnosis (a log is matched once however many rules read it); no
    /// part of the log's value.
    pub(crate) catalog_memo: OnceLock<Vec<LineGroup>>,
    /// Every message's occurrences (by its text with numbers masked, see [`masked`]),
    /// counted as the lines go by: what a thinned log still knows of the lines it left out.
    pub(crate) totals: std::collections::HashMap<String, MessageTotal>,
}

/// How often one message occurred: in the whole log, and under the PID that logged it last
/// (that process's run).
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageTotal {
    pub all: usize,
    pub pid: u32,
    pub in_pid: usize,
}

/// The text with every run of digits, and every node id (a word of 16 or more hex digits),
/// as `#`: retries that differ by a counter, a port, a time or the peer they name are one
/// message.
pub(crate) fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    mask_into(text, &mut out);
    out
}

fn mask_into(text: &str, out: &mut String) {
    out.clear();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_alphanumeric() {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if word.len() >= 16 && word.chars().all(|c| c.is_ascii_hexdigit()) {
                out.push('#');
            } else {
                for c in word.chars() {
                    if !c.is_ascii_digit() {
                        out.push(c);
                    } else if !out.ends_with('#') {
                        out.push('#');
                    }
                }
            }
            rest = &rest[end..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// Lines that repeat one message (the same text but for its numbers), as indexes into
/// [`ServerLog::lines`], with the catalog row they matched (`u32::MAX`: none).
#[derive(Clone, Debug)]
pub(crate) struct LineGroup {
    pub row: u32,
    pub first: usize,
    pub last: usize,
    pub count: usize,
}

impl PartialEq for ServerLog {
    fn eq(&self, other: &Self) -> bool {
        self.lines == other.lines && self.config_errors == other.config_errors
    }
}

impl Eq for ServerLog {}

impl ServerLog {
    /// Lines whose message contains any of `needles` (Redis and Valkey wordings).
    pub fn find<'a>(&'a self, needles: &'a [&'a str]) -> impl Iterator<Item = &'a LogLine> + 'a {
        self.lines
            .iter()
            .filter(move |l| needles.iter().any(|n| l.message.contains(n)))
    }

    /// The node id the server announced at its last start (`I'm <id>`).
    pub fn node_id(&self) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| {
            l.message
                .split_once("I'm ")
                .map(|(_, id)| id.trim())
                .filter(|id| id.len() == 40)
        })
    }

    /// How many times the process that logged `line` logged its message (numbers masked), as
    /// counted while reading: what a thinned log still knows of the lines it left out. `None`
    /// when another process logged the message since.
    pub fn times_logged_by_its_process(&self, line: &LogLine) -> Option<usize> {
        self.totals
            .get(&masked(&line.message))
            .filter(|t| t.pid == line.pid)
            .map(|t| t.in_pid)
    }

    /// The lines of the server's last run (see [`ServerLog::last_run_start`]): what a rule
    /// judges "since its start" by.
    pub fn last_run(&self) -> &[LogLine] {
        &self.lines[self.last_run_start()..]
    }

    /// Index in [`ServerLog::lines`] where the server's last run starts: the first line of the
    /// process that logged the last start banner (`oO0OoO0OoO0Oo … is starting`). Valkey logs
    /// its config warnings before that banner, under the same PID. 0 without a banner.
    pub fn last_run_start(&self) -> usize {
        let Some(banner) = self
            .lines
            .iter()
            .rposition(|l| l.message.contains("is starting oO0OoO0OoO0Oo"))
        else {
            return 0;
        };
        let pid = self.lines[banner].pid;
        let mut start = banner;
        while start > 0 && self.lines[start - 1].pid == pid {
            start -= 1;
        }
        start
    }

    /// The version from the last start banner (`Redis version=6.2.12,` / `Valkey version=…`).
    pub fn version(&self) -> Option<(&str, &str)> {
        self.lines.iter().rev().find_map(|l| {
            let (name, rest) = l.message.split_once(" version=")?;
            let name = name.rsplit(' ').next()?;
            let version = rest.split(',').next()?;
            Some((name, version))
        })
    }
}

impl ServerLog {
    /// The warning (`#`) lines among the last lines of the last run (the last process's
    /// PID), then what it printed to stderr on exit: why a server that is gone stopped
    /// (`Failed listening on port …, aborting`, `User requested shutdown`, a fatal config
    /// error).
    pub fn ending_warnings(&self) -> Vec<(usize, String)> {
        const LAST: usize = 12;
        let mut found: Vec<(usize, String)> = match self.lines.last() {
            Some(last) => {
                let run: Vec<&LogLine> = self
                    .lines
                    .iter()
                    .rev()
                    .take_while(|l| l.pid == last.pid)
                    .take(LAST)
                    .collect();
                run.into_iter()
                    .rev()
                    .filter(|l| l.level == '#' && !is_start_banner(&l.message))
                    .map(|l| (l.line, l.message.clone()))
                    .collect()
            }
            None => Vec::new(),
        };
        // A refused config file, printed to stderr after the last log line: the quoted line
        // and the reason.
        let last_line = self.lines.last().map_or(0, |l| l.line);
        for error in self.config_errors.iter().filter(|e| e.line > last_line) {
            if let Some(directive) = &error.directive {
                let at = error
                    .config_line
                    .map(|n| format!(" (config line {n})"))
                    .unwrap_or_default();
                found.push((error.line, format!("refused config line{at}: {directive}")));
            }
            found.push((error.line, error.message.clone()));
        }
        found.extend(self.tail_text.iter().cloned());
        found
    }
}

/// The warning-level lines every start writes (Redis 6.2 and 7.x, Valkey): they say
/// nothing about why a server stopped.
fn is_start_banner(message: &str) -> bool {
    message.contains("is starting oO0OoO0OoO0Oo")
        || message.contains(" version=")
        || message == "Configuration loaded"
        || message == "Server initialized"
}

/// Lines kept before a long log is thinned: beyond this, repeats are left out. Thinning keeps
/// the same lines whether it runs once or every few thousand lines (each message's first and
/// last occurrences, the last lines), and reads each line about once either way; a low mark
/// keeps a 10 MB log's lines from taking 10 MB of memory on their way there.
const KEEP_ALL_UP_TO: usize = 5_000;
/// Occurrences of one message kept at each end when a log is thinned.
const KEEP_PER_MESSAGE: usize = 4;
/// Lines at the end of the log always kept.
const KEEP_LAST: usize = 200;
/// Lines a log longer than this is thinned to once read.
const KEEP_AFTER_READING: usize = 5_000;
/// Unreadable lines reported, at most (the rest are counted in the last issue).
const ISSUES_KEPT: usize = 100;
const TAIL_TEXT_KEPT: usize = 20;

/// Reads a server log one line at a time, so that a file of any size is read in bounded
/// memory: past [`KEEP_ALL_UP_TO`] lines, each message (its text with numbers masked) keeps
/// its first and last few occurrences and the rest are counted in [`ServerLog::omitted`].
#[derive(Debug, Default)]
pub struct ServerLogReader {
    log: ServerLog,
    issues: Vec<ParseIssue>,
    more_issues: u64,
    line: usize,
    keep_until: usize,
    /// Inside a FATAL CONFIG FILE ERROR block: what it said so far.
    config_block: Option<(Option<usize>, Option<String>)>,
    /// The current line's masked text (one buffer for the whole file).
    scratch: String,
}

impl ServerLogReader {
    pub fn new() -> ServerLogReader {
        ServerLogReader {
            keep_until: KEEP_ALL_UP_TO,
            ..Default::default()
        }
    }

    /// The next line of the file (without its line break).
    pub fn push(&mut self, raw: &str) {
        self.line += 1;
        let line = self.line;
        if raw.trim().is_empty() {
            return;
        }
        if raw.starts_with("*** FATAL CONFIG FILE ERROR") {
            self.config_block = Some((None, None));
            return;
        }
        if let Some((config_line, directive)) = &mut self.config_block {
            if let Some(n) = raw.strip_prefix("Reading the configuration file, at line ") {
                *config_line = n.trim().parse().ok();
            } else if let Some(quoted) = raw.strip_prefix(">>> ") {
                // The server quotes the line it refused, password and all.
                *directive = Some(super::redis_conf::redacted(
                    quoted.trim().trim_matches('\''),
                ));
            } else {
                self.log.config_errors.push(ConfigError {
                    line,
                    config_line: *config_line,
                    directive: directive.take(),
                    message: raw.trim().to_owned(),
                });
                self.config_block = None;
            }
            return;
        }
        match parse_line(raw) {
            Some((pid, role, time, level, message)) => {
                self.log.tail_text.clear();
                mask_into(message, &mut self.scratch);
                let total = match self.log.totals.get_mut(self.scratch.as_str()) {
                    Some(total) => total,
                    None => self.log.totals.entry(self.scratch.clone()).or_default(),
                };
                total.all += 1;
                if total.pid == pid && total.in_pid > 0 {
                    total.in_pid += 1;
                } else {
                    total.pid = pid;
                    total.in_pid = 1;
                }
                self.log.lines.push(LogLine {
                    line,
                    pid,
                    role,
                    time: time.to_owned(),
                    level,
                    message: message.to_owned(),
                });
                if self.log.lines.len() > self.keep_until {
                    self.thin();
                }
            }
            None => {
                if self.log.tail_text.len() == TAIL_TEXT_KEPT {
                    self.log.tail_text.remove(0);
                }
                self.log.tail_text.push((line, raw.trim_end().to_owned()));
                if self.issues.len() < ISSUES_KEPT {
                    self.issues.push(ParseIssue {
                        line,
                        message: "not a server log line (PID:ROLE DATE TIME LEVEL MESSAGE)"
                            .to_owned(),
                    });
                } else {
                    self.more_issues += 1;
                }
            }
        }
    }

    /// Keeps the first and last occurrences of each message and the last lines.
    fn thin(&mut self) {
        use std::collections::HashMap;
        let lines = std::mem::take(&mut self.log.lines);
        let total = lines.len();
        let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
        for (idx, l) in lines.iter().enumerate() {
            mask_into(&l.message, &mut self.scratch);
            match seen.get_mut(self.scratch.as_str()) {
                Some(idxs) => idxs.push(idx),
                None => {
                    seen.insert(self.scratch.clone(), vec![idx]);
                }
            }
        }
        let mut keep = vec![false; total];
        for idxs in seen.values() {
            for &i in idxs.iter().take(KEEP_PER_MESSAGE) {
                keep[i] = true;
            }
            for &i in idxs.iter().rev().take(KEEP_PER_MESSAGE) {
                keep[i] = true;
            }
        }
        for k in keep.iter_mut().skip(total.saturating_sub(KEEP_LAST)) {
            *k = true;
        }
        self.log.lines = lines
            .into_iter()
            .zip(keep)
            .filter_map(|(l, k)| k.then_some(l))
            .collect();
        self.log.omitted += (total - self.log.lines.len()) as u64;
        // Thin again only once as many lines came in as are kept now (amortised).
        self.keep_until = (self.log.lines.len() * 2).max(KEEP_ALL_UP_TO);
    }

    pub fn finish(mut self) -> Parsed<ServerLog> {
        // A long log keeps only what the diagnosis reads (first and last lines of each
        // message, the last lines, the counts), so that many logs fit in memory together.
        if self.log.lines.len() > KEEP_AFTER_READING {
            self.thin();
            // Collecting in place keeps the allocation of every line read since the last
            // thinning: give it back.
            self.log.lines.shrink_to_fit();
        }
        // What the server printed on exit is read as such, not as unreadable lines.
        let tail = &self.log.tail_text;
        self.issues
            .retain(|issue| !tail.iter().any(|(line, _)| *line == issue.line));
        if self.more_issues > 0 {
            self.issues.push(ParseIssue {
                line: self.line,
                message: format!("and {} more lines not in the log format", self.more_issues),
            });
        }
        Parsed {
            value: self.log,
            issues: self.issues,
        }
    }
}

pub fn parse_server_log(text: &str) -> Parsed<ServerLog> {
    let mut reader = ServerLogReader::new();
    for raw in text.lines() {
        reader.push(raw);
    }
    reader.finish()
}

fn parse_line(raw: &str) -> Option<(u32, char, &str, char, &str)> {
    let (pid, rest) = raw.split_once(':')?;
    let pid = pid.trim().parse().ok()?;
    let mut chars = rest.chars();
    let role = chars.next().filter(|c| "MSCX".contains(*c))?;
    let rest = chars.as_str().strip_prefix(' ')?;
    // "03 Jan 2024 15:26:23.047": four space-separated words.
    let mut end = 0;
    for _ in 0..4 {
        let next = rest[end..].find(' ')?;
        end += next + 1;
    }
    let time = rest[..end - 1].trim();
    let rest = &rest[end..];
    let mut chars = rest.chars();
    let level = chars.next().filter(|c| ".-*#".contains(*c))?;
    let message = chars.as_str().strip_prefix(' ').unwrap_or(chars.as_str());
    Some((pid, role, time, level, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the seed write-up (Redis 6.2.12 on BOSH).
    const SEED: &str = "9830:C 03 Jan 2024 15:26:23.021 # Redis version=6.2.12, bits=64, commit=00000000, modified=0, pid=9830, just started\n9830:M 03 Jan 2024 15:26:23.033 # Warning: Could not create server TCP listening socket ::*:6379: unable to bind socket, errno: 97\n9830:M 03 Jan 2024 15:26:23.034 * No cluster configuration found, I'm bfc3177710a27823762881570ce93e62ac6fd751\n                _._\n9830:M 03 Jan 2024 15:26:51.553 # Cluster state changed: ok\n";

    #[test]
    fn seed_log_lines_parse_with_their_line_numbers() {
        let parsed = parse_server_log(SEED);
        let log = &parsed.value;
        assert_eq!(log.lines.len(), 4);
        assert_eq!(log.lines[1].line, 2);
        assert_eq!(log.lines[1].level, '#');
        assert_eq!(log.lines[0].role, 'C');
        assert_eq!(log.lines[3].message, "Cluster state changed: ok");
        assert_eq!(
            log.node_id(),
            Some("bfc3177710a27823762881570ce93e62ac6fd751")
        );
        assert_eq!(log.version(), Some(("Redis", "6.2.12")));
        assert_eq!(parsed.issues.len(), 1);
        assert_eq!(parsed.issues[0].line, 4);
        assert_eq!(log.find(&["errno: 97"]).count(), 1);
    }

    // Captured from Redis 7.0.15 started with `redis-server ./bad.conf > log 2>&1`; Valkey
    // 8.1.8 prints the same block with `(Version 8.1.8)`.
    const FATAL_CONFIG: &str = "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 3\n>>> 'foo-bar 1'\nBad directive or wrong number of arguments\n";

    #[test]
    fn a_refused_config_file_is_kept_with_its_line_and_reason() {
        let parsed = parse_server_log(FATAL_CONFIG);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        assert_eq!(
            parsed.value.config_errors,
            [ConfigError {
                line: 5,
                config_line: Some(3),
                directive: Some("foo-bar 1".into()),
                message: "Bad directive or wrong number of arguments".into(),
            }]
        );
    }

    #[test]
    fn the_last_run_starts_with_the_banner_process_first_line() {
        // Valkey 8.1.8 logs config warnings before its banner, under the same PID.
        let text = format!(
            "{SEED}11101:M 02 Dec 2026 04:57:14.632 # WARNING: Changing databases number from 16 to 1 since we are in cluster mode\n11101:M 02 Dec 2026 04:57:14.632 * oO0OoO0OoO0Oo Valkey is starting oO0OoO0OoO0Oo\n11101:M 02 Dec 2026 04:57:14.645 # Failed listening on port 23102 (tcp), aborting.\n"
        );
        let log = parse_server_log(&text).value;
        assert_eq!(log.last_run_start(), 4);
        assert_eq!(log.lines[4].pid, 11101);
        assert_eq!(parse_server_log(SEED).value.last_run_start(), 0);
    }

    // Redis 7.0.15 refusing a port another server holds (its log), and refusing a config
    // line (stderr, appended to the same file).
    const BIND_FAILED: &str = "1415:C 02 Dec 2026 05:40:01.100 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n1415:C 02 Dec 2026 05:40:01.100 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=1415, just started\n1415:M 02 Dec 2026 05:40:01.101 * monotonic clock: POSIX clock_gettime\n1415:M 02 Dec 2026 05:40:01.101 # Warning: Could not create server TCP listening socket 127.0.0.1:20001: bind: Address already in use\n1415:M 02 Dec 2026 05:40:01.101 # Failed listening on port 20001 (TCP), aborting.\n";
    const CONFIG_ERROR: &str = "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 4\n>>> 'bogus-directive \"yes\"'\nBad directive or wrong number of arguments\n";

    #[test]
    fn a_server_that_exited_leaves_its_reason_at_the_end() {
        let log = parse_server_log(BIND_FAILED).value;
        let ending: Vec<String> = log.ending_warnings().into_iter().map(|l| l.1).collect();
        assert_eq!(ending.len(), 2, "{ending:?}");
        assert!(ending[1].starts_with("Failed listening on port 20001"));
        let log = parse_server_log(&format!("{SEED}{CONFIG_ERROR}")).value;
        let ending = log.ending_warnings();
        assert_eq!(
            ending.last().unwrap().1,
            "Bad directive or wrong number of arguments"
        );
        assert!(
            ending
                .iter()
                .any(|l| l.1 == "refused config line (config line 4): bogus-directive \"yes\""),
            "{ending:?}"
        );
        let parsed = parse_server_log(&format!("{SEED}{CONFIG_ERROR}"));
        // Only the logo line of the seed is unreadable; the exit text is understood.
        assert_eq!(parsed.issues.len(), 1, "{:?}", parsed.issues);
    }

    #[test]
    fn a_long_log_is_thinned_to_first_and_last_occurrences() {
        let mut reader = ServerLogReader::new();
        for i in 0..120_000u32 {
            reader.push(&format!(
                "1:M 02 Dec 2026 05:40:01.{:03} * Connection with replica 10.0.0.{}:6379 lost.",
                i % 1000,
                i % 250
            ));
        }
        reader.push("1:M 02 Dec 2026 05:41:00.000 # Cluster state changed: fail");
        let log = reader.finish().value;
        assert!(log.lines.len() < 2 * KEEP_ALL_UP_TO, "{}", log.lines.len());
        assert_eq!(log.omitted as usize + log.lines.len(), 120_001);
        assert_eq!(log.lines[0].line, 1);
        assert_eq!(log.lines.last().unwrap().line, 120_001);
    }
}
