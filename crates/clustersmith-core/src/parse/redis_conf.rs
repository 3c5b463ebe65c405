//! `redis.conf`: one directive per line, arguments split the way the server splits them
//! (double quotes with escapes, single quotes literal). Later directives win, as in the
//! server; every directive keeps its line so that findings can point at it.

use super::{ParseIssue, Parsed};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    /// Lower-cased, as the server compares names.
    pub name: String,
    pub args: Vec<String>,
}

impl Directive {
    /// The line as evidence may show it: a secret's value replaced (see [`redacted`]).
    pub fn shown(&self) -> String {
        redacted(&format!("{} {}", self.name, self.args.join(" ")))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisConf {
    pub directives: Vec<Directive>,
}

impl RedisConf {
    /// The directive that takes effect: the last one of that name.
    pub fn get(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().rev().find(|d| d.name == name)
    }

    /// The first argument of the effective directive.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name)?.args.first().map(String::as_str)
    }

    /// `yes` / `no` of a boolean directive; `None` when absent or not a boolean.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.value(name)?.to_ascii_lowercase().as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }

    pub fn port(&self, name: &str) -> Option<u16> {
        self.value(name)?.parse().ok()
    }

    /// The `rename-command` that renames `command` away or to another name.
    pub fn renamed(&self, command: &str) -> Option<&Directive> {
        self.directives.iter().rev().find(|d| {
            d.name == "rename-command"
                && d.args
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case(command))
        })
    }

    /// Whether a password is required from clients (`requirepass`, or an ACL default user
    /// with a password).
    pub fn requires_password(&self) -> Option<&Directive> {
        self.get("requirepass")
            .filter(|d| d.args.first().is_some_and(|p| !p.is_empty()))
    }

    /// The password a replica gives its primary: `masterauth`, or Valkey's `primaryauth`.
    pub fn replication_auth(&self) -> Option<&Directive> {
        let master = self.get("masterauth");
        let primary = self.get("primaryauth");
        match (master, primary) {
            (Some(a), Some(b)) => Some(if a.line > b.line { a } else { b }),
            (a, b) => a.or(b),
        }
        .filter(|d| d.args.first().is_some_and(|p| !p.is_empty()))
    }
}

impl RedisConf {
    /// Where a file directive (`logfile`, `cluster-config-file`, `pidfile`, `dbfilename`,
    /// `appendfilename`) points, with `default` when the directive is absent. The server
    /// `chdir`s into `dir` while loading its config, and opens these files afterwards, so a
    /// relative name is relative to `dir`. `None` when the file is not written at all (an
    /// empty `logfile` means stdout) or when a relative name has no absolute `dir` to anchor
    /// it (then it depends on the directory the server was started from).
    pub fn file_path(&self, directive: &str, default: Option<&str>) -> Option<std::path::PathBuf> {
        let name = self.value(directive).or(default)?;
        if name.is_empty() {
            return None;
        }
        let path = std::path::Path::new(name);
        if path.is_absolute() {
            return Some(path.to_owned());
        }
        let dir = std::path::Path::new(self.value("dir")?);
        dir.is_absolute().then(|| dir.join(path))
    }

    /// The addresses of the effective `bind` (every argument; a leading `-` marks an
    /// optional address). Empty when absent: the server then listens on every interface.
    pub fn bind_addresses(&self) -> Vec<&str> {
        self.get("bind")
            .map(|d| d.args.iter().map(|a| a.trim_start_matches('-')).collect())
            .unwrap_or_default()
    }

    /// The plaintext port the server listens on: `port`, 6379 when absent, `None` for
    /// `port 0` (TLS only).
    pub fn listening_port(&self) -> Option<u16> {
        match self.get("port") {
            None => Some(6379),
            Some(_) => self.port("port").filter(|p| *p > 0),
        }
    }
}

/// Directives whose value is a secret.
const SECRET_DIRECTIVES: &[&str] = &[
    "requirepass",
    "masterauth",
    "primaryauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// A config line fit to show: a secret directive's value, and a `user` line's passwords
/// (`>pw`, `<pw`, `#hash`, `!hash`), replaced by `(not shown)`.
pub fn redacted(line: &str) -> String {
    let mut words = line.split_whitespace();
    let Some(name) = words.next() else {
        return String::new();
    };
    let lower = name.to_ascii_lowercase();
    if SECRET_DIRECTIVES.contains(&lower.as_str()) {
        return format!("{name} (not shown)");
    }
    if lower != "user" {
        return line.to_owned();
    }
    std::iter::once(name)
        .chain(words.map(|w| {
            if w.starts_with(['>', '<', '#', '!']) {
                "(not shown)"
            } else {
                w
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn parse_redis_conf(text: &str) -> Parsed<RedisConf> {
    let mut conf = RedisConf::default();
    let mut issues = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match split_args(trimmed) {
            Ok(mut words) if !words.is_empty() => {
                let name = words.remove(0).to_ascii_lowercase();
                conf.directives.push(Directive {
                    line,
                    name,
                    args: words,
                });
            }
            Ok(_) => {}
            Err(message) => issues.push(ParseIssue { line, message }),
        }
    }
    Parsed {
        value: conf,
        issues,
    }
}

/// Splits one line like the server's `sdssplitargs`.
fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        match first {
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("unbalanced double quotes".to_owned()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('r') => word.push('\r'),
                            Some('t') => word.push('\t'),
                            Some(other) => word.push(other),
                            None => return Err("unbalanced double quotes".to_owned()),
                        },
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("unbalanced single quotes".to_owned()),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
            }
        }
        if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err("a closing quote must be followed by a space".to_owned());
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn secrets_are_redacted_from_a_quoted_line() {
        assert_eq!(redacted("masterauth hunter2"), "masterauth (not shown)");
        assert_eq!(redacted("primaryauth \"a b\""), "primaryauth (not shown)");
        assert_eq!(
            redacted("user repl on >hunter2 #abc123 ~* +@all"),
            "user repl on (not shown) (not shown) ~* +@all"
        );
        assert_eq!(redacted("cluster-port 16379"), "cluster-port 16379");
    }

    use super::*;

    #[test]
    fn directives_keep_lines_and_the_last_one_wins() {
        let text = "# comment\nport 6379\ntls-port 0\n\nrename-command SYNC \"\"\nport 6380\nrequirepass \"a \\\"b\\\"\"\nbad \"open\n";
        let parsed = parse_redis_conf(text);
        let conf = &parsed.value;
        assert_eq!(conf.port("port"), Some(6380));
        assert_eq!(conf.get("port").unwrap().line, 6);
        let renamed = conf.renamed("sync").unwrap();
        assert_eq!((renamed.line, renamed.args[1].as_str()), (5, ""));
        assert_eq!(conf.value("requirepass"), Some("a \"b\""));
        assert!(conf.replication_auth().is_none());
        assert_eq!(parsed.issues.len(), 1);
        assert_eq!(parsed.issues[0].line, 8);
    }

    #[test]
    fn file_directives_are_relative_to_dir() {
        let conf =
            parse_redis_conf("dir /var/vcap/store/r\nlogfile r.log\npidfile /run/r.pid\n").value;
        let path = |d, def| conf.file_path(d, def).map(|p| p.display().to_string());
        assert_eq!(
            path("logfile", None).as_deref(),
            Some("/var/vcap/store/r/r.log")
        );
        assert_eq!(path("pidfile", None).as_deref(), Some("/run/r.pid"));
        assert_eq!(
            path("cluster-config-file", Some("nodes.conf")).as_deref(),
            Some("/var/vcap/store/r/nodes.conf")
        );
        let stdout = parse_redis_conf("logfile \"\"\n").value;
        assert_eq!(stdout.file_path("logfile", None), None);
        assert_eq!(stdout.listening_port(), Some(6379));
        assert_eq!(parse_redis_conf("port 0\n").value.listening_port(), None);
        let bind = parse_redis_conf("bind 127.0.0.1 -::1\n").value;
        assert_eq!(bind.bind_addresses(), ["127.0.0.1", "::1"]);
    }

    #[test]
    fn primaryauth_counts_as_replication_auth() {
        let conf = parse_redis_conf("requirepass x\nprimaryauth x\n").value;
        assert_eq!(conf.replication_auth().unwrap().name, "primaryauth");
        let empty = parse_redis_conf("requirepass x\nmasterauth \"\"\n").value;
        assert!(empty.replication_auth().is_none());
    }
}
