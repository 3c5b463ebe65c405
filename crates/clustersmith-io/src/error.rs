//! The one place that looks at Redis errors.
//!
//! Every failure to talk to a node becomes a [`NodeError`] naming the node and the operation,
//! with a [`NodeErrorKind`] that says what happened in the operator's terms; [`Disposition`]
//! says what the apply loop does about a failed step. No other module inspects error text.

use std::fmt;

use redis::{ErrorKind, RedisError, ServerErrorKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeErrorKind {
    ConnectionRefused,
    /// No answer in time: a stopped or frozen node, a firewall, or a TLS client speaking to a
    /// plaintext port (which waits for a TLS reply that never comes).
    Timeout,
    /// The peer closed the connection at once: typically a plaintext client on a TLS port.
    ConnectionReset,
    /// The password (or user + password) was rejected.
    AuthFailed,
    /// The server requires a password and none was given.
    NoAuth,
    /// A password was given but the node has none configured (`AUTH <password> called
    /// without any password configured`): redis-cli warns and carries on without it.
    NoPasswordConfigured,
    /// The ACL user lacks a permission; the server's text names the command.
    NoPermission(String),
    /// `cluster-enabled no`.
    ClusterDisabled,
    /// The node refuses clients from other hosts: protected mode without a password.
    ProtectedMode,
    Tls(TlsProblem),
    /// Any other error reply: the code and the server's text.
    Reply {
        code: String,
        detail: String,
    },
    Other(String),
}

/// Why a TLS connection failed, in the operator's terms; `detail` keeps the library's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsProblem {
    /// The node's certificate chain does not lead to a CA given with `--cacert` (also when a
    /// CA of the same name but another key is given).
    UnknownIssuer,
    /// The node's certificate has expired or is not yet valid.
    Expired,
    /// The certificate names neither the hostname nor the IP used to reach the node.
    NameMismatch,
    /// The node asks for a client certificate (`tls-auth-clients yes`) and none was given.
    ClientCertRequired,
    /// The node rejected the client certificate (wrong CA, expired, wrong usage).
    ClientCertRejected,
    /// The session closed right after the handshake: TLS 1.3 servers check the client
    /// certificate then, but a server refusing the client (protected mode, maxclients) looks
    /// the same from here.
    ClosedAfterHandshake {
        client_cert: bool,
    },
    /// The port answers plaintext RESP: the node has no TLS on this port.
    PlaintextPort,
    /// A plaintext client was cut off and the port does not answer plaintext RESP: it
    /// expects TLS.
    TlsOnlyPort,
    Other(String),
}

impl TlsProblem {
    fn classify(text: &str) -> TlsProblem {
        let lower = text.to_ascii_lowercase();
        // BadSignature: a CA of the same name but another key (a regenerated CA).
        if lower.contains("unknownissuer") || lower.contains("badsignature") {
            TlsProblem::UnknownIssuer
        } else if lower.contains("expired") || lower.contains("notvalidyet") {
            TlsProblem::Expired
        } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
            TlsProblem::NameMismatch
        } else if lower.contains("certificaterequired") {
            TlsProblem::ClientCertRequired
        } else if [
            "alert: unknownca",
            "alert: badcertificate",
            "alert: certificateunknown",
        ]
        .iter()
        .any(|alert| lower.contains(alert))
        {
            TlsProblem::ClientCertRejected
        } else {
            TlsProblem::Other(text.to_owned())
        }
    }

    fn hint(&self) -> Option<&'static str> {
        Some(match self {
            TlsProblem::UnknownIssuer => {
                "pass the CA that signed the node certificates with --cacert (the node's `tls-ca-cert-file`)"
            }
            TlsProblem::Expired => {
                "renew the node's certificate (`tls-cert-file`) and reload it, or check this machine's clock"
            }
            TlsProblem::NameMismatch => {
                "reach the node by a name or IP its certificate carries (a subjectAltName), or pass --tls-skip-hostname-check to check the chain only, as redis-cli does"
            }
            TlsProblem::ClientCertRequired => {
                "the node has `tls-auth-clients yes`: pass a client certificate with --cert and --key"
            }
            TlsProblem::ClientCertRejected => {
                "the node did not accept the client certificate: use one issued by the node's `tls-ca-cert-file` CA, valid now, with clientAuth usage"
            }
            TlsProblem::ClosedAfterHandshake { client_cert: false } => {
                "if the node has `tls-auth-clients yes`, pass --cert and --key; else it refused the client (protected mode without a password, maxclients): see its log"
            }
            TlsProblem::ClosedAfterHandshake { client_cert: true } => {
                "the node may reject the client certificate (use one from its `tls-ca-cert-file` CA, valid now, with clientAuth), or refuse the client (protected mode without a password, maxclients): see its log"
            }
            TlsProblem::PlaintextPort => {
                "this port speaks plaintext: drop --tls, or give the node's `tls-port`"
            }
            TlsProblem::TlsOnlyPort => {
                "pass --tls (with --cacert, --cert and --key as needed), or give the node's plaintext `port`"
            }
            TlsProblem::Other(_) => return None,
        })
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsProblem::UnknownIssuer => "the node's certificate is not signed by a trusted CA",
            TlsProblem::Expired => "the node's certificate has expired or is not yet valid",
            TlsProblem::NameMismatch => {
                "the node's certificate is not valid for the name or IP used to reach it"
            }
            TlsProblem::ClientCertRequired => {
                "the node requires a client certificate (it ended the session after the handshake)"
            }
            TlsProblem::ClientCertRejected => {
                "the node rejected the client certificate (it ended the session after the handshake)"
            }
            TlsProblem::ClosedAfterHandshake { .. } => {
                "the node closed the TLS session right after the handshake"
            }
            TlsProblem::PlaintextPort => {
                "no TLS handshake: the port answers plaintext Redis protocol"
            }
            TlsProblem::TlsOnlyPort => {
                "the port closed a plaintext connection and does not answer plaintext Redis protocol: it expects TLS"
            }
            TlsProblem::Other(text) => text,
        })
    }
}

/// What to do with a failed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Not yet possible (gossip has not arrived, the node is briefly away): re-observe and
    /// re-plan.
    Retry,
    /// The effect is already in place.
    AlreadyDone,
    /// Re-trying cannot help; stop.
    Fatal,
}

/// What a failed step of a slot move means for that slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotStepOutcome {
    /// The slot already changed hands: `IMPORTING` on a target that owns it, `MIGRATING` on a
    /// source that no longer does (a run killed after the hand-over, resumed).
    AlreadyMoved,
    /// A key of the slot already exists on the target (`BUSYKEY`): moving it would overwrite
    /// it, which only `--replace` allows.
    BusyKey,
    /// Anything else: the slot stops where it is.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NodeError {
    pub node: String,
    pub op: &'static str,
    pub kind: NodeErrorKind,
}

impl NodeError {
    pub fn new(node: &str, op: &'static str, err: &RedisError) -> NodeError {
        NodeError {
            node: node.to_owned(),
            op,
            kind: classify(err),
        }
    }

    /// Errors in what the operator gave clustersmith (credentials, permissions, TLS files):
    /// no retry and no verification can get past them, so every command stops with exit 2.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self.kind,
            NodeErrorKind::AuthFailed
                | NodeErrorKind::NoAuth
                | NodeErrorKind::NoPasswordConfigured
                | NodeErrorKind::NoPermission(_)
                | NodeErrorKind::Tls(_)
        )
    }

    /// Errors of the connection itself, after which the connection is re-established.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.kind,
            NodeErrorKind::ConnectionRefused
                | NodeErrorKind::Timeout
                | NodeErrorKind::ConnectionReset
                | NodeErrorKind::Other(_)
                | NodeErrorKind::Tls(_)
        )
    }

    /// How the apply loop treats this error when a step fails; `unknown_node_means_done` is
    /// the step's own answer (`Step::unknown_node_means_done`).
    pub fn disposition(&self, unknown_node_means_done: bool) -> Disposition {
        match &self.kind {
            NodeErrorKind::Reply { detail, .. } => {
                if detail.starts_with("Unknown node") && unknown_node_means_done {
                    // The node had already forgotten it (or never knew it).
                    Disposition::AlreadyDone
                } else if detail.starts_with("Unknown node")
                    || detail.contains("is already busy")
                    || detail.contains("forget my master")
                {
                    // Gossip has not caught up with the plan, or another round got there first.
                    Disposition::Retry
                } else if detail
                    .contains("config epoch only when the node does not know any other node")
                    || detail.contains("config epoch is already non-zero")
                {
                    // The node met someone first: the server resolves the epoch itself.
                    Disposition::AlreadyDone
                } else {
                    Disposition::Fatal
                }
            }
            NodeErrorKind::ConnectionRefused
            | NodeErrorKind::Timeout
            | NodeErrorKind::ConnectionReset
            | NodeErrorKind::Other(_) => Disposition::Retry,
            NodeErrorKind::AuthFailed
            | NodeErrorKind::NoAuth
            | NodeErrorKind::NoPasswordConfigured
            | NodeErrorKind::NoPermission(_)
            | NodeErrorKind::ClusterDisabled
            | NodeErrorKind::ProtectedMode
            | NodeErrorKind::Tls(_) => Disposition::Fatal,
        }
    }

    /// How a failed `SETSLOT` or `MIGRATE` of a slot move is treated.
    pub fn slot_step_outcome(&self) -> SlotStepOutcome {
        match &self.kind {
            NodeErrorKind::Reply { detail, .. }
                if detail.starts_with("I'm already the owner of hash slot")
                    || detail.starts_with("I'm not the owner of hash slot")
                    // A source that handed over its last slot became a replica of the node
                    // that took it (cluster-allow-replica-migration).
                    || detail.starts_with("Please use SETSLOT only with masters")
                    // CLUSTER MIGRATESLOTS (Valkey 9) on a source that no longer owns them.
                    || detail.starts_with("Slots are not served by this node") =>
            {
                SlotStepOutcome::AlreadyMoved
            }
            NodeErrorKind::Reply { code, detail }
                if code == "BUSYKEY" || detail.contains("BUSYKEY") =>
            {
                SlotStepOutcome::BusyKey
            }
            _ => SlotStepOutcome::Failed,
        }
    }

    /// A hint on its own line, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.kind {
            NodeErrorKind::ConnectionRefused => {
                "is the server running and listening on this address?"
            }
            NodeErrorKind::Timeout => {
                "the node did not answer in time: is it stopped or frozen, is a firewall dropping packets, or is this a TLS client talking to a plaintext port?"
            }
            NodeErrorKind::ConnectionReset => {
                "the node closed the connection at once: if it listens with TLS only, pass --tls"
            }
            NodeErrorKind::AuthFailed => {
                "check the password (REDISCLI_AUTH, --password-file or --askpass) and --user"
            }
            NodeErrorKind::NoAuth => {
                "the node requires a password: set REDISCLI_AUTH, or use --password-file or --askpass"
            }
            NodeErrorKind::NoPermission(_) => {
                "grant the ACL user the cluster, info and config-free commands clustersmith sends (e.g. +@admin +cluster +info +ping)"
            }
            NodeErrorKind::ClusterDisabled => {
                "set `cluster-enabled yes` in the node's redis.conf and restart it"
            }
            NodeErrorKind::ProtectedMode => {
                "give the nodes a password (requirepass + masterauth) or set `protected-mode no` where the network is trusted; the node accepts only loopback clients now"
            }
            NodeErrorKind::Tls(ref problem) => return problem.hint(),
            _ => return None,
        })
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} on `{}`: {}", self.op, self.node, self.kind)
    }
}

impl fmt::Display for NodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeErrorKind::ConnectionRefused => f.write_str("connection refused"),
            NodeErrorKind::Timeout => f.write_str("timed out"),
            NodeErrorKind::ConnectionReset => f.write_str("connection reset by peer"),
            NodeErrorKind::AuthFailed => f.write_str("authentication failed"),
            NodeErrorKind::NoAuth => f.write_str("authentication required (NOAUTH)"),
            NodeErrorKind::NoPasswordConfigured => {
                f.write_str("a password was given but the node has none configured")
            }
            NodeErrorKind::NoPermission(text) => write!(f, "permission denied: {text}"),
            NodeErrorKind::ClusterDisabled => {
                f.write_str("cluster support is disabled on this node")
            }
            NodeErrorKind::ProtectedMode => {
                f.write_str("DENIED: the node is in protected mode (no password set)")
            }
            NodeErrorKind::Tls(text) => write!(f, "TLS: {text}"),
            NodeErrorKind::Reply { code, detail } => write!(f, "{code} {detail}"),
            NodeErrorKind::Other(text) => f.write_str(text),
        }
    }
}

/// Maps a redis-rs error to what happened. Server texts are matched only here.
pub fn classify(err: &RedisError) -> NodeErrorKind {
    if err.is_connection_refusal() {
        return NodeErrorKind::ConnectionRefused;
    }
    if err.is_timeout() {
        return NodeErrorKind::Timeout;
    }
    let code = err.code().unwrap_or_default().to_owned();
    let detail = err.detail().unwrap_or_default().to_owned();
    if err.to_string().contains("without any password configured") {
        return NodeErrorKind::NoPasswordConfigured;
    }
    match err.kind() {
        ErrorKind::AuthenticationFailed => return NodeErrorKind::AuthFailed,
        ErrorKind::Server(ServerErrorKind::NoPerm) => return NodeErrorKind::NoPermission(detail),
        _ => {}
    }
    match code.as_str() {
        "DENIED" => return NodeErrorKind::ProtectedMode,
        "NOAUTH" => return NodeErrorKind::NoAuth,
        "WRONGPASS" => return NodeErrorKind::AuthFailed,
        "NOPERM" => return NodeErrorKind::NoPermission(detail),
        _ => {}
    }
    let text = err.to_string();
    if text.contains("cluster support disabled") || detail.contains("cluster support disabled") {
        return NodeErrorKind::ClusterDisabled;
    }
    if matches!(err.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
        return NodeErrorKind::Reply { code, detail };
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("connection reset") || lower.contains("broken pipe") {
        return NodeErrorKind::ConnectionReset;
    }
    // rustls reports certificate and alert problems through io errors or as plain client
    // errors, depending on the handshake stage.
    if ["certificate", "peer sent", "TLS", "alert"]
        .iter()
        .any(|needle| text.contains(needle))
    {
        return NodeErrorKind::Tls(TlsProblem::classify(&text));
    }
    NodeErrorKind::Other(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: &str, detail: &str) -> NodeError {
        NodeError {
            node: "n".into(),
            op: "test",
            kind: NodeErrorKind::Reply {
                code: code.into(),
                detail: detail.into(),
            },
        }
    }

    // Replies to SETSLOT, MIGRATE and MIGRATESLOTS as the servers sent them in the reshape
    // tests (Redis 7.0.15, Valkey 9.1.2).
    #[test]
    fn slot_move_replies_are_classified() {
        for done in [
            "I'm already the owner of hash slot 4748",
            "I'm not the owner of hash slot 4748",
            "Please use SETSLOT only with masters.",
            "Slots are not served by this node.",
        ] {
            assert_eq!(
                reply("ERR", done).slot_step_outcome(),
                SlotStepOutcome::AlreadyMoved,
                "{done}"
            );
        }
        assert_eq!(
            reply(
                "ERR",
                "Target instance replied with error: BUSYKEY Target key name already exists."
            )
            .slot_step_outcome(),
            SlotStepOutcome::BusyKey
        );
        assert_eq!(
            reply(
                "ERR",
                "Target instance replied with error: CLUSTERDOWN Hash slot not served"
            )
            .slot_step_outcome(),
            SlotStepOutcome::Failed
        );
    }

    // Reply texts as Redis 6.2 / 7.0 / Valkey 8.1 send them (shared/research/baseline-measurements.md).
    #[test]
    fn step_replies_are_classified() {
        assert_eq!(
            reply(
                "ERR",
                "Unknown node 0123456789abcdef0123456789abcdef01234567"
            )
            .disposition(false),
            Disposition::Retry
        );
        // To a FORGET (the step says so), `Unknown node` means it is forgotten already.
        assert_eq!(
            reply(
                "ERR",
                "Unknown node 0123456789abcdef0123456789abcdef01234567"
            )
            .disposition(true),
            Disposition::AlreadyDone
        );
        assert_eq!(
            reply("ERR", "Slot 5 is already busy").disposition(false),
            Disposition::Retry
        );
        assert_eq!(
            reply(
                "ERR",
                "The user can assign a config epoch only when the node does not know any other node."
            )
            .disposition(false),
            Disposition::AlreadyDone
        );
        assert_eq!(
            reply("ERR", "Invalid node address specified: localhost:22002").disposition(false),
            Disposition::Fatal
        );
    }

    // Texts as rustls 0.23 reported them in this repository's TLS tests.
    #[test]
    fn tls_failures_are_told_apart() {
        for (text, problem) in [
            (
                "invalid peer certificate: UnknownIssuer",
                TlsProblem::UnknownIssuer,
            ),
            (
                "invalid peer certificate: BadSignature",
                TlsProblem::UnknownIssuer,
            ),
            (
                "received fatal alert: CertificateRequired",
                TlsProblem::ClientCertRequired,
            ),
            (
                "received fatal alert: UnknownCA",
                TlsProblem::ClientCertRejected,
            ),
        ] {
            assert_eq!(TlsProblem::classify(text), problem, "{text}");
        }
        assert!(matches!(
            TlsProblem::classify("peer sent no certificates"),
            TlsProblem::Other(_)
        ));
    }
}
