//! The rule registry: every rule, in the order `clustersmith explain` and `docs/rules.md` list
//! them (rendered from this table). Each rule's identity and explanation lives beside its check,
//! in its family's module under `rules/`; ids are stable and never reused.

use super::Rule;
use super::rules::{
    at_work, balance, catalog, clients, cross_node, departed, environment, failover, formation,
    identity, membership, node_facts, replication, server_config,
};

pub static RULES: &[&Rule] = &[
    &formation::MEET_WITH_HOSTNAME,
    &formation::REPLICATE_BEFORE_MEET,
    &formation::SUCCESS_CLAIMED_OVER_BROKEN_CLUSTER,
    &formation::REPLICAS_ON_ONE_PRIMARY,
    &replication::REPLICATION_PLAINTEXT_TO_TLS_PORT,
    &replication::REPLICATION_AUTH_MISSING,
    &replication::REPLICATION_COMMANDS_RENAMED,
    &replication::SYNC_OR_PSYNC_RENAMED,
    &replication::REPLICA_LINK_DOWN,
    &replication::PLAINTEXT_ON_TLS_PORT,
    &membership::NODE_KNOWS_ONLY_ITSELF,
    &membership::SLOTS_NOT_COVERED,
    &membership::BUS_HANDSHAKE_STUCK,
    &membership::TLS_CLUSTER_MISMATCH,
    &membership::BUS_CERT_WITHOUT_CLIENT_AUTH,
    &membership::CONFIG_EPOCH_COLLISION,
    &membership::OPEN_SLOTS,
    &membership::REPLICA_SHARES_HOST_OR_ZONE,
    &membership::STALE_NODE_ADDRESS,
    &membership::FOREIGN_CLUSTER_MEMBER,
    &identity::NODE_ID_CLAIMED_TWICE,
    &at_work::SLOT_MOVES_IN_PROGRESS,
    &failover::NO_FIT_REPLICA,
    &clients::WRITES_REFUSED_OOM,
    &clients::WRITES_REFUSED_MISCONF,
    &clients::WRITES_REFUSED_NOREPLICAS,
    &server_config::IPV6_BIND_ERRNO_97,
    &server_config::DIRECTIVE_UNKNOWN_TO_VERSION,
    &server_config::CONFIG_REFUSED_AT_STARTUP,
    &environment::REPLICA_DISK_TOO_SMALL,
    &departed::NODE_REPLACED_WITH_NEW_ID,
    &cross_node::CERTIFICATE_REJECTED_BY_PEERS,
    &cross_node::ANNOUNCED_ADDRESS_UNREACHABLE,
    &cross_node::REPLICA_OLDER_THAN_PRIMARY,
    &cross_node::CLUSTER_SETTINGS_DISAGREE,
    &cross_node::REPLICATION_CREDENTIALS_UNFIT,
    &balance::SLOTS_UNBALANCED,
    &departed::REPLICA_FLUSHED_BY_EMPTY_PRIMARY,
    &catalog::CONFIG_FILE_REJECTED,
    &catalog::CANNOT_LISTEN,
    &catalog::CLUSTER_CONFIG_FILE_IN_USE,
    &catalog::CLUSTER_CONFIG_FILE_CORRUPT,
    &catalog::CLUSTER_CONFIG_FILE_UNWRITABLE,
    &catalog::DATA_DIR_UNUSABLE,
    &catalog::DATA_LOAD_FAILED,
    &catalog::KEYS_OUTSIDE_DB0,
    &catalog::TLS_SETUP_FAILED,
    &catalog::ACL_LOAD_FAILED,
    &catalog::REPLICATION_CREDENTIALS_REJECTED,
    &catalog::REPLICATION_USER_LACKS_PERMISSION,
    &catalog::FULL_SYNC_FAILING,
    &catalog::PERSISTENCE_WRITE_FAILING,
    &catalog::OPEN_FILES_LIMIT_TOO_LOW,
    &catalog::FATAL_SERVER_ERROR,
    &catalog::FAILOVER_BLOCKED,
    &catalog::STARTED_WITHOUT_CONFIG,
    &catalog::REPLICATION_STREAM_REJECTED,
    &catalog::TLS_HANDSHAKE_REJECTED,
    &catalog::SERVER_WARNING_UNCORROBORATED,
    &catalog::UNRECOGNISED_SERVER_WARNING,
    &node_facts::NODE_NOT_RUNNING,
    &node_facts::NODE_NOT_ANSWERING,
    &node_facts::CLUSTER_SUPPORT_DISABLED,
    &node_facts::PROTECTED_MODE_REFUSAL,
    &node_facts::NODE_LOADING,
    &node_facts::TLS_PLAINTEXT_MISMATCH,
    &node_facts::CLUSTER_COMMANDS_REFUSED,
    &node_facts::SHARED_PORT_OR_FILE,
    &node_facts::NODE_REFUSES_AUTH,
];

/// The rule with this id, or this name.
pub fn rule(key: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.id.eq_ignore_ascii_case(key) || r.name == key)
}
