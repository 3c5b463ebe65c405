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

pub fn parse_server_log(text: &str) -> Parsed<ServerLog> {
    let mut log = ServerLog::default();
    let mut issues = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
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
}
