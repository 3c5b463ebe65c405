//! Parsers for what servers print. Each one reads the whole input, keeps going past bad lines
//! and returns every anomaly with its line number next to the value it could build.

mod cluster_info;
mod cluster_nodes;
mod info;
mod post_deploy_log;
mod redis_conf;
pub(crate) mod server_log;

use std::fmt;

pub use cluster_info::{ClusterInfo, ClusterState, parse_cluster_info};
pub use cluster_nodes::{ClusterNodes, NodeEntry, OpenSlot, OpenSlotKind, parse_cluster_nodes};
pub use info::{ListedReplica, ServerInfo, parse_info};
pub use post_deploy_log::{PostDeployLog, ScriptLine, parse_post_deploy_log};
pub use redis_conf::{Directive, RedisConf, parse_redis_conf};
pub use server_log::{ConfigError, LogLine, ServerLog, ServerLogReader, parse_server_log};

/// A parsed value together with the anomalies met on the way.
#[derive(Clone, Debug)]
pub struct Parsed<T> {
    pub value: T,
    pub issues: Vec<ParseIssue>,
}

/// Something in the input that the parser could not read, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIssue {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}
