//! Redis / Valkey server logs: `PID:ROLE DD Mon YYYY HH:MM:SS.mmm LEVEL message`, where ROLE
//! is `M` (primary), `S` (replica), `C` (child or startup) or `X` (sentinel) and LEVEL one of
//! `.`, `-`, `*`, `#`. Lines in another shape (the ASCII logo, wrapped text) are reported
//! and skipped.

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

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerLog {
    pub lines: Vec<LogLine>,
    /// Lines after the last log line that are not in the log format, with their line
    /// numbers: what the server wrote to stderr as it exited, when stderr goes to the same
    /// file (`*** FATAL CONFIG FILE ERROR ***`, the offending line and the reason). The
    /// server writes config errors there, never to its `logfile`.
    pub tail_text: Vec<(usize, String)>,
    /// Lines of a long log left out to bound memory: repeats of a message beyond its first
    /// and last few occurrences. The log's last lines are always kept.
    pub omitted: u64,
}

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

/// Lines kept before a long log is thinned: beyond this, repeats are left out.
const KEEP_ALL_UP_TO: usize = 50_000;
/// Occurrences of one message kept at each end when a log is thinned.
const KEEP_PER_MESSAGE: usize = 4;
/// Lines at the end of the log always kept.
const KEEP_LAST: usize = 200;
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
        match parse_line(raw) {
            Some((pid, role, time, level, message)) => {
                self.log.tail_text.clear();
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
            let shape: String = l.message.chars().filter(|c| !c.is_ascii_digit()).collect();
            seen.entry(shape).or_default().push(idx);
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
        assert!(log.tail_text.is_empty());
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
                .any(|l| l.1.contains("FATAL CONFIG FILE ERROR"))
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
