//! `INFO`: `# Section` headers and `key:value` lines. The few fields the planner needs are
//! typed; every field is kept by name.

use std::collections::BTreeMap;

use super::{ParseIssue, Parsed};
use crate::model::{ServerFlavour, ServerVersion};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Every `key:value` field, by key.
    pub fields: BTreeMap<String, String>,
}

impl ServerInfo {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A counter or size field (`used_memory`, `uptime_in_seconds`, `rejected_connections`
    /// …) as a number; `None` when absent or not a whole number.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// Valkey reports `server_name:valkey` and its own `valkey_version`, but also a
    /// compatibility `redis_version` (7.2.4 on Valkey 8.1), so Valkey is checked first.
    pub fn version(&self) -> Option<ServerVersion> {
        if self.get("server_name") == Some("valkey") || self.get("valkey_version").is_some() {
            return ServerVersion::parse(ServerFlavour::Valkey, self.get("valkey_version")?);
        }
        ServerVersion::parse(ServerFlavour::Redis, self.get("redis_version")?)
    }

    /// The replicas a primary lists in `INFO replication` (`slave0:ip=…,port=…,state=…`), as
    /// (ip, port) in the order listed.
    pub fn connected_replicas(&self) -> Vec<(String, u16)> {
        self.listed_replicas()
            .into_iter()
            .map(|r| (r.ip, r.port))
            .collect()
    }

    /// The replicas a primary lists in `INFO replication`, with what it knows of each.
    pub fn listed_replicas(&self) -> Vec<ListedReplica> {
        (0..)
            .map_while(|n| self.get(&format!("slave{n}")))
            .filter_map(|line| {
                let field = |key: &str| {
                    line.split(',')
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                };
                Some(ListedReplica {
                    ip: field("ip")?.to_owned(),
                    port: field("port")?.parse().ok()?,
                    state: field("state").unwrap_or_default().to_owned(),
                    acked_offset: field("offset").and_then(|o| o.parse().ok()),
                })
            })
            .collect()
    }

    pub fn cluster_enabled(&self) -> bool {
        self.get("cluster_enabled") == Some("1")
    }

    /// Keys over all databases, from the `# Keyspace` section (`db0:keys=3,expires=0,…`).
    pub fn key_count(&self) -> u64 {
        self.fields
            .iter()
            .filter(|(k, _)| k.starts_with("db") && k[2..].bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|(_, v)| {
                v.split(',')
                    .find_map(|kv| kv.strip_prefix("keys="))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .sum()
    }

    /// `master_link_status` of a replica (`up` / `down`); `None` on a primary.
    pub fn primary_link_status(&self) -> Option<&str> {
        self.get("master_link_status")
    }

    /// Where a replica connects to its primary: `master_host` (an IP) and `master_port`.
    /// `None` on a primary, or when the host is a name.
    pub fn primary_addr(&self) -> Option<(std::net::IpAddr, u16)> {
        let host = self.get("master_host")?.parse().ok()?;
        let port = self.get("master_port")?.parse().ok()?;
        Some((host, port))
    }

    /// `role` from the replication section: `master` or `slave`.
    pub fn role(&self) -> Option<&str> {
        self.get("role")
    }
}

pub fn parse_info(text: &str) -> Parsed<ServerInfo> {
    let mut info = ServerInfo::default();
    let mut issues = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((key, value)) => {
                info.fields.insert(key.to_owned(), value.to_owned());
            }
            None => issues.push(ParseIssue {
                line: idx + 1,
                message: format!("expected `key:value`, found `{line}`"),
            }),
        }
    }
    Parsed {
        value: info,
        issues,
    }
}

/// One replica as its primary lists it (`slave0:ip=…,port=…,state=…,offset=…,lag=…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedReplica {
    pub ip: String,
    pub port: u16,
    /// `online`, `wait_bgsave`, `send_bulk`, …
    pub state: String,
    /// The offset the replica last acknowledged (`REPLCONF ACK`, once a second): 0 after a
    /// full sync until its first acknowledgement, during which the primary streams it nothing.
    pub acked_offset: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valkey_is_told_apart_from_its_compatibility_version() {
        let text = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n# Cluster\r\ncluster_enabled:1\r\n";
        let info = parse_info(text).value;
        let version = info.version().unwrap();
        assert_eq!(version.to_string(), "valkey 8.1.8");
        assert!(version.has_addslotsrange());
        assert!(info.cluster_enabled());
    }

    #[test]
    fn counts_keys_over_databases_and_reads_replication() {
        let text = "# Server\nredis_version:6.2.14\n# Replication\nrole:slave\nmaster_link_status:down\n# Keyspace\ndb0:keys=3,expires=0,avg_ttl=0\ndb2:keys=4,expires=1,avg_ttl=0\nbroken\n";
        let parsed = parse_info(text);
        assert_eq!(parsed.issues.len(), 1);
        assert_eq!(parsed.issues[0].line, 9);
        let info = parsed.value;
        assert_eq!(info.key_count(), 7);
        assert_eq!(info.role(), Some("slave"));
        assert_eq!(info.primary_link_status(), Some("down"));
        assert!(!info.version().unwrap().has_addslotsrange());
    }

    /// Redis 7.0.15's `INFO replication` on a primary with two replicas.
    #[test]
    fn lists_the_replicas_a_primary_serves() {
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=21004,state=online,offset=2842,lag=1\r\nslave1:ip=10.0.0.7,port=6379,state=wait_bgsave,offset=0,lag=0\r\nmaster_failover_state:no-failover\r\n";
        let info = parse_info(text).value;
        assert_eq!(
            info.connected_replicas(),
            vec![
                ("127.0.0.1".to_owned(), 21004),
                ("10.0.0.7".to_owned(), 6379)
            ]
        );
    }
}
