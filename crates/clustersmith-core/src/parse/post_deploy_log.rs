//! A post-deploy log: the output of a formation script, with its own timestamped lines
//! (`[Wed Jan  3 15:26:46 UTC 2024] message`) mixed with raw server replies (`OK`,
//! `ERR …`, `CLUSTER NODES` lines). Every line is kept; nothing in it is malformed as such.

use super::Parsed;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptLine {
    pub line: usize,
    /// The bracketed timestamp of the script's own messages.
    pub timestamp: Option<String>,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostDeployLog {
    pub lines: Vec<ScriptLine>,
}

impl PostDeployLog {
    /// Error replies the script printed (`ERR …`, `NOAUTH …`, `-ERR …`).
    pub fn error_replies(&self) -> impl Iterator<Item = &ScriptLine> {
        self.lines.iter().filter(|l| {
            let t = l.text.trim_start_matches('-');
            l.timestamp.is_none()
                && ["ERR ", "NOAUTH", "WRONGPASS", "NOPERM", "(error)"]
                    .iter()
                    .any(|p| t.starts_with(p))
        })
    }
}

pub fn parse_post_deploy_log(text: &str) -> Parsed<PostDeployLog> {
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, raw)| !raw.trim().is_empty())
        .map(|(idx, raw)| {
            let raw = raw.trim_end();
            let stamped = raw.strip_prefix('[').and_then(|rest| rest.split_once("] "));
            match stamped {
                Some((time, text)) => ScriptLine {
                    line: idx + 1,
                    timestamp: Some(time.to_owned()),
                    text: text.to_owned(),
                },
                None => ScriptLine {
                    line: idx + 1,
                    timestamp: None,
                    text: raw.to_owned(),
                },
            }
        })
        .collect();
    Parsed {
        value: PostDeployLog { lines },
        issues: Vec::new(),
    }
}
