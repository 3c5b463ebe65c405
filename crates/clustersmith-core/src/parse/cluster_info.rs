//! `CLUSTER INFO`: `key:value` lines. Known fields are typed; the rest is kept.

use super::{ParseIssue, Parsed};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Ok,
    Fail,
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub state: ClusterState,
    pub slots_assigned: u32,
    pub known_nodes: u32,
    pub size: u32,
    pub current_epoch: u64,
    pub my_epoch: u64,
    /// Every field, known or not, in order.
    pub fields: Vec<(String, String)>,
}

impl Default for ClusterInfo {
    fn default() -> Self {
        ClusterInfo {
            state: ClusterState::Fail,
            slots_assigned: 0,
            known_nodes: 0,
            size: 0,
            current_epoch: 0,
            my_epoch: 0,
            fields: Vec::new(),
        }
    }
}

impl ClusterInfo {
    pub fn is_ok(&self) -> bool {
        self.state == ClusterState::Ok
    }
}

pub fn parse_cluster_info(text: &str) -> Parsed<ClusterInfo> {
    let mut info = ClusterInfo::default();
    let mut issues = Vec::new();
    let mut saw_state = false;
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            issues.push(ParseIssue {
                line: idx + 1,
                message: format!("expected `key:value`, found `{line}`"),
            });
            continue;
        };
        let mut number = |target: &mut u64| match value.parse::<u64>() {
            Ok(n) => *target = n,
            Err(_) => issues.push(ParseIssue {
                line: idx + 1,
                message: format!("`{key}` is not a number: `{value}`"),
            }),
        };
        let mut as_u64 = 0u64;
        match key {
            "cluster_state" => {
                saw_state = true;
                info.state = match value {
                    "ok" => ClusterState::Ok,
                    "fail" => ClusterState::Fail,
                    other => ClusterState::Other(other.to_owned()),
                };
            }
            "cluster_slots_assigned" => {
                number(&mut as_u64);
                info.slots_assigned = as_u64 as u32;
            }
            "cluster_known_nodes" => {
                number(&mut as_u64);
                info.known_nodes = as_u64 as u32;
            }
            "cluster_size" => {
                number(&mut as_u64);
                info.size = as_u64 as u32;
            }
            "cluster_current_epoch" => number(&mut info.current_epoch),
            "cluster_my_epoch" => number(&mut info.my_epoch),
            _ => {}
        }
        info.fields.push((key.to_owned(), value.to_owned()));
    }
    if !saw_state {
        issues.push(ParseIssue {
            line: 0,
            message: "no `cluster_state` field".to_owned(),
        });
    }
    Parsed {
        value: info,
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The seed's scenario 2 before the fix (Redis 6.2.12).
    const SEED_FAIL: &str = "cluster_state:fail\r\ncluster_slots_assigned:8192\r\ncluster_slots_ok:8192\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n";

    #[test]
    fn parses_the_seed_failing_cluster() {
        let parsed = parse_cluster_info(SEED_FAIL);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let info = parsed.value;
        assert_eq!(info.state, ClusterState::Fail);
        assert_eq!(info.slots_assigned, 8192);
        assert_eq!(info.known_nodes, 1);
        assert_eq!(info.fields.len(), 11);
    }

    #[test]
    fn reports_bad_numbers_and_lines() {
        let parsed = parse_cluster_info("cluster_state:ok\ncluster_known_nodes:many\nnonsense\n");
        assert!(parsed.value.is_ok());
        let lines: Vec<usize> = parsed.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 3]);
    }
}
