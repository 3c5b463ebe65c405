//! Rules raised by the server's own log (CS5xx): the lines the servers' message catalog
//! ([`log_catalog`]) assigns to a rule prove or hint at it; CS598 and CS599 keep the warning
//! lines no other evidence confirms or the catalog does not know.

use crate::diagnose::EvidenceKind::{Certificate, Live, NodesConf, RedisConf, ServerLog};
use crate::diagnose::Severity::{Error, Info, Warning};
use crate::diagnose::{Hit, Inputs, Rule, log_catalog};

/// The check of a rule whose only evidence is the server's own log: it finds nothing by
/// itself, the log catalog attaches the lines that prove the rule (see `log_catalog`).
pub fn server_log_only(_inputs: &Inputs) -> Vec<Hit> {
    Vec::new()
}

pub static CONFIG_FILE_REJECTED: Rule = Rule {
    id: "CS501",
    name: "config-file-rejected",
    severity: Error,
    detects: "`*** FATAL CONFIG FILE ERROR ***` (the server's stderr) with the refused line and its reason, or `Fatal error, can't open config file` in a server log.",
    why: "The server read its config file, refused a line (a typo, a directive or value this version does not know, `replicaof` with cluster-enabled) and exited before opening its port: the node is simply absent, and every peer reports it unreachable.",
    fix: "Fix the line the error names (`Reading the configuration file, at line N`), check it against the running version's redis.conf, and start the server again.",
    false_positives: "An old block in a stderr file that is never truncated: the evidence is limited to the server's last run when the file also holds its start banner.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static CANNOT_LISTEN: Rule = Rule {
    id: "CS502",
    name: "cannot-listen",
    severity: Error,
    detects: "`Failed listening on port <port> (tcp|tls|cluster), aborting.`, `Configured to not listen anywhere`, `port number too high` (bus port above 65535), no bind address for the cluster bus, or a unix socket that cannot be opened; `Could not create server TCP listening socket` lines join it.",
    why: "The server could not bind its client port or its cluster bus port (another process holds it, the bind address is not on this host, port + 10000 is out of range) and exited.",
    fix: "Find what holds the port (`ss -ltnp`), or fix `bind` / `port` / `tls-port` / `cluster-port` so every address exists on the host and every port (and port + 10000) is free and below 65536.",
    false_positives: "A bind failure on an optional address (`bind * -::*`) is logged without the fatal line and only joins this finding when the fatal line is there too.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static CLUSTER_CONFIG_FILE_IN_USE: Rule = Rule {
    id: "CS503",
    name: "cluster-config-file-in-use",
    severity: Error,
    detects: "`Sorry, the cluster configuration file <file> is already used by a different … Cluster node`, or nodes.conf that cannot be opened or locked.",
    why: "Each cluster node locks its cluster-config-file. A second server with the same `dir` and `cluster-config-file` (a copied redis.conf, two instances on one host) cannot take the lock and exits.",
    fix: "Give every node on a host its own `dir` or `cluster-config-file`, then start the node again.",
    false_positives: "None known: the server only says it when the lock is held by another process.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static CLUSTER_CONFIG_FILE_CORRUPT: Rule = Rule {
    id: "CS504",
    name: "cluster-config-file-corrupt",
    severity: Error,
    detects: "`Unrecoverable error: corrupted cluster config file`, or nodes.conf that cannot be read or stat-ed, in a server log.",
    why: "At start a cluster node reads nodes.conf; a truncated or hand-edited file (a disk that filled up, a copy from another node) stops it from starting.",
    fix: "Restore nodes.conf from a backup or a healthy copy of this node's own file; as a last resort move it away and re-introduce the node (it then starts with a new id and must be MEET again and given its role).",
    false_positives: "None known.",
    evidence: &[ServerLog, NodesConf],
    // The server panics on a corrupt file (Valkey 9 prints a crash report after it).
    explains: &[&super::node_facts::NODE_NOT_RUNNING, &FATAL_SERVER_ERROR],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static CLUSTER_CONFIG_FILE_UNWRITABLE: Rule = Rule {
    id: "CS505",
    name: "cluster-config-file-unwritable",
    severity: Error,
    detects: "`Fatal: can't update cluster config file` or a failure to write, sync or rename the temporary cluster config file, in a server log.",
    why: "A cluster node rewrites nodes.conf on every change of the cluster state; when it cannot (dir not writable, disk full) it exits, so the node dies at the first MEET, failover or slot change.",
    fix: "Make `dir` writable by the server's user and give it free space; then start the node again.",
    false_positives: "None known: the server exits right after the line.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static DATA_DIR_UNUSABLE: Rule = Rule {
    id: "CS506",
    name: "data-dir-unusable",
    severity: Error,
    detects: "`Can't chdir to '<dir>'`, or an append-only file or directory that cannot be created in dir, in a server log; a pidfile that cannot be written joins it.",
    why: "Redis changes into `dir` before anything else and writes nodes.conf, the RDB and the AOF there. A missing directory or one the server's user cannot write stops it at start, or as soon as it saves.",
    fix: "Create `dir` and give the server's user write access to it (on BOSH, the persistent disk mount), then start the node again.",
    false_positives: "None known.",
    evidence: &[ServerLog, RedisConf],
    explains: &[
        &CLUSTER_CONFIG_FILE_UNWRITABLE,
        &PERSISTENCE_WRITE_FAILING,
        &super::node_facts::NODE_NOT_RUNNING,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static DATA_LOAD_FAILED: Rule = Rule {
    id: "CS507",
    name: "data-load-failed",
    severity: Error,
    detects: "An RDB or AOF the server could not load at start (`Fatal error loading the DB`, `Wrong signature trying to load DB`, `Bad file format reading the append only file`, `Can't handle RDB format version`, a checksum or short read), in a server log.",
    why: "The server loads its data before serving; a corrupt or truncated file, an RDB written by a newer version, or a module it does not have makes it exit, so the node never comes up.",
    fix: "Check the file (`redis-check-rdb`, `redis-check-aof --fix` after a backup), use a server version at least as new as the one that wrote it, or move the file away and let the node resync from its primary.",
    false_positives: "None known: every such line is followed by the server exiting.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static KEYS_OUTSIDE_DB0: Rule = Rule {
    id: "CS508",
    name: "keys-outside-db0",
    severity: Error,
    detects: "`You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting.` (or an RDB made with more databases than the server allows) in a server log.",
    why: "Cluster mode has a single database. A node that loads data from a standalone server (an RDB or AOF copied in, a node that ran without cluster-enabled) with keys in db 1 and above refuses to start.",
    fix: "Move the keys into db 0 (MOVE, or a migration tool) on a standalone server before copying the data, or start the node without that data file.",
    false_positives: "None known.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static TLS_SETUP_FAILED: Rule = Rule {
    id: "CS509",
    name: "tls-setup-failed",
    severity: Error,
    detects: "A TLS setting the server could not apply: `Failed to load certificate`, `Failed to load private key`, `Failed to configure CA certificate(s)`, `No tls-cert-file configured!`, `Failed to configure TLS`, in a server log.",
    why: "With a tls-port, tls-cluster or tls-replication, the server loads its certificate, key and CA at start; an unreadable file (permissions, wrong path), a key that does not match the certificate or a missing CA makes it exit.",
    fix: "Check the tls-cert-file, tls-key-file and tls-ca-cert-file paths and permissions for the server's user, that the key matches the certificate, and that the files are PEM; then start the node again.",
    false_positives: "None known: the server does not start, or (CONFIG SET) keeps its previous TLS settings.",
    evidence: &[ServerLog, RedisConf, Certificate],
    explains: &[&CANNOT_LISTEN, &super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static ACL_LOAD_FAILED: Rule = Rule {
    id: "CS510",
    name: "acl-load-failed",
    severity: Error,
    detects: "`Aborting … startup because of ACL errors`, `Error loading ACL rule`, `Critical error while loading ACLs`, or users defined both in redis.conf and in an aclfile, in a server log.",
    why: "The server loads its users at start; a bad rule, an unreadable aclfile, or `user` directives mixed with `aclfile` make it exit.",
    fix: "Fix the rule the line names (or the aclfile's path and permissions); define users either in redis.conf or in the aclfile, not both.",
    false_positives: "None known.",
    evidence: &[ServerLog, RedisConf],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static REPLICATION_CREDENTIALS_REJECTED: Rule = Rule {
    id: "CS511",
    name: "replication-credentials-rejected",
    severity: Error,
    detects: "The primary rejects the replica's login during the replication handshake: `-WRONGPASS`, `invalid password`, or `Unable to AUTH to MASTER` (Valkey: `PRIMARY`) in the replica's log.",
    why: "The replica logs in with masteruser / masterauth (Valkey: primaryuser / primaryauth). A wrong password or unknown user makes every sync attempt fail, and the replica never holds a copy.",
    fix: "Set masterauth (and masteruser with ACL users) on the replica to credentials the primary accepts; every node needs them, since any node can become a replica after a failover.",
    false_positives: "A password rotation in progress, while the nodes disagree for a moment.",
    evidence: &[ServerLog, RedisConf],
    explains: &[&super::replication::REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static REPLICATION_USER_LACKS_PERMISSION: Rule = Rule {
    id: "CS512",
    name: "replication-user-lacks-permission",
    severity: Error,
    detects: "`-NOPERM` in the replica's replication handshake (PING, REPLCONF, PSYNC / SYNC refused) in its log.",
    why: "The replica's masteruser exists and logs in, but its ACL does not allow the commands replication runs (PSYNC, SYNC, REPLCONF, PING), so the sync is refused.",
    fix: "Give the replication user `+psync +sync +replconf +ping` (or `+@all`) on every node, e.g. `ACL SETUSER repl on >… +psync +sync +replconf +ping`.",
    false_positives: "None known.",
    evidence: &[ServerLog],
    explains: &[&super::replication::REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static FULL_SYNC_FAILING: Rule = Rule {
    id: "CS513",
    name: "full-sync-failing",
    severity: Error,
    detects: "A full resynchronisation that fails: the primary cannot produce or send the RDB (`BGSAVE for replication failed`, the replica's output buffer overflowing with `flags=S`), or the replica cannot store or load it (`Failed trying to load the MASTER synchronization DB`, `Timeout receiving bulk data`), in a server log.",
    why: "A replica that cannot complete a full sync starts over and over: it never holds a copy, and each attempt costs the primary a fork and a transfer.",
    fix: "The evidence given does not name the cause: when it does, the cause's own finding (a replica's disk, the primary's buffer for replicas, repl-timeout, a refused fork) carries this one. Look next at both sides of the link: give diagnose the primary's and the replica's logs and run it on their machines, where it reads the free space under `dir`. The line shown says which side failed: `BGSAVE for replication failed` is the primary's save, `flags=S` its buffer for replicas, `Timeout receiving bulk data` the replica's wait, a failed load the replica's disk or the RDB itself.",
    false_positives: "A single failed attempt that a later one completed: check the replica's live link status.",
    evidence: &[ServerLog, Live],
    explains: &[&super::replication::REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static PERSISTENCE_WRITE_FAILING: Rule = Rule {
    id: "CS514",
    name: "persistence-write-failing",
    severity: Error,
    detects: "Saving the RDB or writing the AOF fails (`Background saving error`, `Write error saving DB on disk`, `Failed opening the RDB file … for saving`, `Error writing to the AOF file`, a fork that fails), in a server log.",
    why: "With `stop-writes-on-bgsave-error yes` (the default) a primary refuses writes with MISCONF after a failed save; with `appendfsync always` an AOF write error stops the server. A full sync needs the same save.",
    fix: "The evidence given does not name the cause: when it does, the cause's own finding (a full disk, a fork refused for memory or at the process limit) carries this one. Look next at the line shown and its errno text (`No space left on device`, `Permission denied` on `dir`, `fork: …`), and run diagnose on the node's machine, where it reads the free space under `dir`; once fixed, `BGSAVE` confirms it, and a successful save lifts the MISCONF refusal.",
    false_positives: "A save killed on purpose (a SHUTDOWN NOSAVE during a save).",
    evidence: &[ServerLog],
    explains: &[&FULL_SYNC_FAILING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static OPEN_FILES_LIMIT_TOO_LOW: Rule = Rule {
    id: "CS515",
    name: "open-files-limit-too-low",
    severity: Error,
    detects: "`Your current 'ulimit -n' of <n> is not enough for the server to start` in a server log.",
    why: "The server needs a file descriptor per client plus its own; below the minimum it exits at start.",
    fix: "Raise the process's open files limit (`ulimit -n`, systemd `LimitNOFILE`, the BOSH job's limits) or lower maxclients.",
    false_positives: "None known.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static FATAL_SERVER_ERROR: Rule = Rule {
    id: "CS516",
    name: "fatal-server-error",
    severity: Error,
    detects: "A fatal error the server logs before it exits: `Out Of Memory allocating`, `Failed creating the event loop`, too many I/O threads, an invalid locale, a kernel bug it refuses to run on; or its crash report (`Guru Meditation`, `crashed by signal`, `ASSERTION FAILED`).",
    why: "The process is gone; the node is absent until it is restarted, and it fails the same way again unless the cause is removed.",
    fix: "Act on the line: memory limits (maxmemory, container limits), maxclients against the event loop, io-threads, the locale of the environment, a kernel upgrade.",
    false_positives: "None known.",
    evidence: &[ServerLog],
    explains: &[&super::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static FAILOVER_BLOCKED: Rule = Rule {
    id: "CS517",
    name: "failover-blocked",
    severity: Warning,
    detects: "`Currently unable to failover: …` (waiting for votes, data too old) or a manual failover that timed out, in a replica's log.",
    why: "The replica's primary is failing but it cannot take over: a majority of primaries does not vote (they are down or cannot reach it on the bus), or its data is older than cluster-replica-validity-factor allows. The primary's slots stay down.",
    fix: "Bring back the failed primary, or restore the bus between the replica and a majority of primaries; with stale data, `CLUSTER FAILOVER FORCE` on the replica accepts the loss.",
    false_positives: "A failover in its first seconds; the server only logs the reason once it persists.",
    evidence: &[ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static STARTED_WITHOUT_CONFIG: Rule = Rule {
    id: "CS518",
    name: "started-without-config",
    severity: Error,
    detects: "`Warning: no config file specified, using the default config` in a server log.",
    why: "The server was started without its redis.conf: it runs with built-in defaults, so cluster-enabled is off, it listens on 6379, and no password or TLS applies. It is not a cluster member.",
    fix: "Start the server with its config file as the first argument (`redis-server /path/to/redis.conf`); check the service or BOSH job's command line.",
    false_positives: "A standalone helper server started on purpose without a config.",
    evidence: &[ServerLog],
    explains: &[
        &super::node_facts::NODE_NOT_RUNNING,
        &super::node_facts::CLUSTER_SUPPORT_DISABLED,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static REPLICATION_STREAM_REJECTED: Rule = Rule {
    id: "CS519",
    name: "replication-stream-rejected",
    severity: Error,
    detects: "`== CRITICAL == This replica is sending an error to its master` (a command of the replication stream failed) or inline protocol from the primary, in a server log.",
    why: "A replica applies every write its primary sends; when one fails on the replica (a command an older replica does not know, a missing module or function, maxmemory on the replica) the replica's data silently diverges from its primary.",
    fix: "Run the same server version (and modules) on primaries and replicas, upgrading replicas first; do not set a lower maxmemory on replicas.",
    false_positives: "None known: a primary's stream never fails on a replica that matches it.",
    evidence: &[ServerLog],
    explains: &[&super::replication::REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static TLS_HANDSHAKE_REJECTED: Rule = Rule {
    id: "CS520",
    name: "tls-handshake-rejected",
    severity: Warning,
    detects: "A TLS handshake refused on certificate trust (`certificate verify failed`, `unknown ca`, `certificate expired`, `peer did not return a certificate`, `unsupported certificate purpose`) in a server log.",
    why: "On the TLS port, replication and cluster bus links present and check certificates both ways. A certificate from another CA, an expired one, or one without the key usage its direction needs (clientAuth for the connecting side) is refused, and the link never comes up.",
    fix: "Issue every node's certificate from the CA all nodes trust (tls-ca-cert-file), with serverAuth and clientAuth, and within its validity.",
    false_positives: "A client or probe with a wrong certificate, not a cluster node: the line names the peer address on Redis 7.2 and later.",
    evidence: &[ServerLog, Certificate],
    explains: &[
        &super::replication::REPLICA_LINK_DOWN,
        &super::membership::BUS_HANDSHAKE_STUCK,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: server_log_only,
};

pub static SERVER_WARNING_UNCORROBORATED: Rule = Rule {
    id: "CS598",
    name: "server-warning-uncorroborated",
    severity: Info,
    detects: "Server warning lines the catalog assigns to a rule that needs more evidence than the line (a replication link error, a bus packet it cannot read) when no other evidence raises that rule on the node.",
    why: "Such lines are often transient (a primary restarting, a failover) but may be the first sign of a problem live state no longer shows; they are kept, counted, instead of dropped.",
    fix: "Read the lines with the rule they point at (`clustersmith explain <id>`); if they keep repeating, give diagnose the live nodes or configs that can confirm it.",
    false_positives: "Transient errors from a restart or a failover that has since completed.",
    evidence: &[ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: log_catalog::uncorroborated,
};

pub static UNRECOGNISED_SERVER_WARNING: Rule = Rule {
    id: "CS599",
    name: "unrecognised-server-warning",
    severity: Info,
    detects: "A warning (`#`) line of the server's last run that matches no message of the servers' catalog (Redis 6.2 to Valkey 8.1), shown once with its count and first and last time.",
    why: "A line the catalog does not know may still state the cause (a newer server's message, a module's); it is reported rather than silently dropped.",
    fix: "Read the line; if it names the cause, the catalog (data/server-log-classification.tsv) should learn it.",
    false_positives: "Warnings of modules and of server versions newer than the catalog.",
    evidence: &[ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: log_catalog::unrecognised,
};
