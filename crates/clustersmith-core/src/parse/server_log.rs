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
    /// The warning lines of the last run grouped by the catalog row they matched, filled once
    /// on first use by the diagnosis (a log is matched once however many rules read it); no
    /// part of the log's value.
    pub(crate) catalog_memo: OnceLock<Vec<LineGroup>>,
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

pub fn parse_server_log(text: &str) -> Parsed<ServerLog> {
    let mut log = ServerLog::default();
    let mut issues = Vec::new();
    // Inside a FATAL CONFIG FILE ERROR block: what it said so far.
    let mut block: Option<(Option<usize>, Option<String>)> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if raw.starts_with("*** FATAL CONFIG FILE ERROR") {
            block = Some((None, None));
            continue;
        }
        if let Some((config_line, directive)) = &mut block {
            if let Some(n) = raw.strip_prefix("Reading the configuration file, at line ") {
                *config_line = n.trim().parse().ok();
            } else if let Some(quoted) = raw.strip_prefix(">>> ") {
                *directive = Some(quoted.trim().trim_matches('\'').to_owned());
            } else {
                log.config_errors.push(ConfigError {
                    line,
                    config_line: *config_line,
                    directive: directive.take(),
                    message: raw.trim().to_owned(),
                });
                block = None;
            }
            continue;
        }
        match parse_line(raw) {
            Some((pid, role, time, level, message)) => log.lines.push(LogLine {
                line,
                pid,
                role,
                time: time.to_owned(),
                level,
                message: message.to_owned(),
            }),
            None => issues.push(ParseIssue {
                line,
                message: "not a server log line (PID:ROLE DATE TIME LEVEL MESSAGE)".to_owned(),
            }),
        }
    }
    Parsed { value: log, issues }
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
}
