//! How clustersmith connects to one node: address, auth, TLS and timeouts.
//!
//! redis-rs defaults to a 500 ms response timeout (shared/research/rust-deps.md G1), which is
//! too short for a busy node and silently applied; every connection here states both timeouts.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo, RedisFuture, TlsCertificates,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Mutex;

use crate::error::{NodeError, NodeErrorKind, TlsProblem};

/// A password. It is never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The secret itself, for the one place that sends it to a server or writes a config file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TLS settings, named after redis-cli's options.
#[derive(Clone, Debug, Default)]
pub struct TlsOpts {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `--insecure`: no certificate verification at all.
    pub insecure: bool,
    /// Check the chain but not the name, as redis-cli (OpenSSL) does.
    pub skip_hostname_check: bool,
}

/// Connection options shared by every node of a run.
#[derive(Clone, Debug)]
pub struct ConnOpts {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub tls: Option<TlsOpts>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

impl Default for ConnOpts {
    fn default() -> Self {
        ConnOpts {
            user: None,
            password: None,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// Where one node is reached: the name to present for TLS and the IP to connect to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub label: String,
    /// The hostname from the spec, used for TLS name verification; `None` for IP literals.
    pub hostname: Option<String>,
    pub ip: IpAddr,
    pub port: u16,
}

/// Sends every lookup of the node's hostname to the address resolved at the start of the
/// run, so that TLS verifies the name while the socket goes to the same IP that `CLUSTER
/// MEET` is given.
struct PinnedResolver(SocketAddr);

impl redis::io::AsyncDNSResolver for PinnedResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        _host: &'b str,
        _port: u16,
    ) -> RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        let addr = self.0;
        Box::pin(async move {
            Ok(Box::new(std::iter::once(addr)) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// Reads the TLS files once per run.
#[derive(Clone)]
pub struct TlsMaterial {
    certs: TlsCertificates,
    insecure: bool,
    skip_hostname_check: bool,
}

impl TlsMaterial {
    pub fn load(opts: &TlsOpts) -> Result<TlsMaterial, String> {
        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))
        };
        // Checked here, once, so that a wrong file is named as such instead of surfacing as a
        // handshake failure on every node.
        let certs = |what: &str, path: &PathBuf| {
            let pem = read(what, path)?;
            match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
                Ok(found) if !found.is_empty() => Ok(pem),
                Ok(_) => Err(format!(
                    "{what} `{}` holds no PEM certificate",
                    path.display()
                )),
                Err(e) => Err(format!("{what} `{}` is not valid PEM: {e}", path.display())),
            }
        };
        let client_tls = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => {
                let client_key = read("--key", key)?;
                PrivateKeyDer::from_pem_slice(&client_key).map_err(|e| {
                    format!("--key `{}` holds no usable private key: {e}", key.display())
                })?;
                Some(ClientTlsConfig {
                    client_cert: certs("--cert", cert)?,
                    client_key,
                })
            }
            (None, None) => None,
            _ => return Err("--cert and --key must be given together".to_owned()),
        };
        let root_cert = opts
            .cacert
            .as_ref()
            .map(|p| certs("--cacert", p))
            .transpose()?;
        Ok(TlsMaterial {
            certs: TlsCertificates {
                client_tls,
                root_cert,
            },
            insecure: opts.insecure,
            skip_hostname_check: opts.skip_hostname_check,
        })
    }
}

/// Says once per process that the password was not needed, as redis-cli does
/// ("Warning: AUTH failed"), without repeating it for every node and reconnect.
fn warn_no_password_once() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "AUTH failed: the nodes have no password configured, continuing without it (as redis-cli does); unset REDISCLI_AUTH or drop --password-file if that is expected"
        );
    });
}

/// A client for one node: plaintext, or TLS pinned to the resolved IP while the certificate is
/// checked against the hostname the operator gave.
fn build_client(
    endpoint: &Endpoint,
    user: Option<&str>,
    password: Option<&Secret>,
    tls: Option<&TlsMaterial>,
) -> Result<Client, String> {
    let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(password) = password {
        settings = settings.set_password(password.expose());
    }
    if let Some(user) = user {
        settings = settings.set_username(user);
    }
    let Some(material) = tls else {
        let info = ConnectionAddr::Tcp(endpoint.ip.to_string(), endpoint.port)
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(settings);
        return Client::open(info).map_err(|e| e.to_string());
    };
    let host = endpoint
        .hostname
        .clone()
        .unwrap_or_else(|| endpoint.ip.to_string());
    let info = ConnectionAddr::TcpTls {
        host,
        port: endpoint.port,
        insecure: material.insecure,
        tls_params: None,
    }
    .into_connection_info()
    .map_err(|e| e.to_string())?
    .set_redis_settings(settings);
    let client = Client::build_with_tls(info, material.certs.clone()).map_err(|e| e.to_string())?;
    if material.skip_hostname_check && !material.insecure {
        let mut addr = client.get_connection_info().addr().clone();
        addr.set_danger_accept_invalid_hostnames(true);
        Client::open(client.get_connection_info().clone().set_addr(addr)).map_err(|e| e.to_string())
    } else {
        Ok(client)
    }
}

/// A lazily (re)connected handle to one node.
pub struct NodeHandle {
    pub endpoint: Endpoint,
    client: Client,
    /// The same client without the password, for a node that has none configured.
    without_password: Option<Client>,
    config: AsyncConnectionConfig,
    tls: bool,
    /// A client certificate is presented.
    client_cert: bool,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl NodeHandle {
    pub fn new(
        endpoint: Endpoint,
        opts: &ConnOpts,
        tls: Option<&TlsMaterial>,
    ) -> Result<NodeHandle, NodeError> {
        let fail = |text: String| NodeError {
            node: endpoint.label.clone(),
            op: "configure the connection",
            kind: NodeErrorKind::Other(text),
        };
        let mut config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout));
        if tls.is_some() {
            config = config
                .set_dns_resolver(PinnedResolver(SocketAddr::new(endpoint.ip, endpoint.port)));
        }
        let client = build_client(&endpoint, opts.user.as_deref(), opts.password.as_ref(), tls)
            .map_err(fail)?;
        // A password without a user, to a node that has none: redis-cli warns and goes on
        // unauthenticated, and so does clustersmith (a stray REDISCLI_AUTH must not stop it).
        let without_password = match (&opts.password, &opts.user) {
            (Some(_), None) => Some(build_client(&endpoint, None, None, tls).map_err(fail)?),
            _ => None,
        };
        Ok(NodeHandle {
            endpoint,
            client,
            without_password,
            config,
            tls: tls.is_some(),
            client_cert: tls.is_some_and(|m| m.certs.client_tls.is_some()),
            conn: Mutex::new(None),
        })
    }

    pub fn label(&self) -> &str {
        &self.endpoint.label
    }

    async fn connection(&self) -> Result<MultiplexedConnection, NodeError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let mut result = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| NodeError::new(self.label(), "connect", &e));
        // redis-rs reports a refused AUTH without the server's reason, so a node that has no
        // password at all is told apart from a wrong password by asking it: PING without
        // AUTH succeeds only where no password is required.
        if let (Err(err), Some(open)) = (&result, &self.without_password)
            && matches!(
                err.kind,
                NodeErrorKind::AuthFailed | NodeErrorKind::NoPasswordConfigured
            )
            && let Ok(mut conn) = open
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
            && redis::cmd("PING")
                .query_async::<redis::Value>(&mut conn)
                .await
                .is_ok()
        {
            warn_no_password_once();
            result = Ok(conn);
        }
        let conn = match result {
            Ok(conn) => conn,
            Err(err) => return Err(self.explain(err).await),
        };
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Tells a TLS/plaintext mismatch apart from a node that is away, by probing the port
    /// with a plaintext `PING`.
    async fn explain(&self, mut err: NodeError) -> NodeError {
        let addr = SocketAddr::new(self.endpoint.ip, self.endpoint.port);
        match (self.tls, &err.kind) {
            // A plaintext server takes a TLS ClientHello for the start of an inline command
            // and waits for the rest: the handshake only times out.
            (true, NodeErrorKind::Timeout) if plaintext_reply(addr).await.is_some() => {
                err.kind = NodeErrorKind::Tls(TlsProblem::PlaintextPort);
            }
            // A plaintext connection cut at once: a TLS port (no RESP reply to a probe), or a
            // server in protected mode (which says DENIED, then closes).
            (false, NodeErrorKind::ConnectionReset) => match plaintext_reply(addr).await {
                None => err.kind = NodeErrorKind::Tls(TlsProblem::TlsOnlyPort),
                Some(reply) if reply.starts_with("-DENIED") => {
                    err.kind = NodeErrorKind::ProtectedMode;
                }
                Some(_) => {}
            },
            // In TLS 1.3 the server checks the client certificate after the client considers
            // the handshake done: its alert often arrives as a reset on the first command.
            (true, NodeErrorKind::ConnectionReset) => {
                err.kind = NodeErrorKind::Tls(TlsProblem::ClosedAfterHandshake {
                    client_cert: self.client_cert,
                });
            }
            _ => {}
        }
        err
    }

    /// Runs a pipeline and returns one result per command, so one failing command does not
    /// hide the others. A connection-level failure drops the connection for the next call.
    pub async fn pipeline(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<Result<redis::Value, NodeError>>, NodeError> {
        let mut conn = self.connection().await?;
        let values: Result<Vec<redis::Value>, _> =
            pipe.clone().ignore_errors().query_async(&mut conn).await;
        match values {
            Ok(values) => Ok(values
                .into_iter()
                .map(|value| match value {
                    redis::Value::ServerError(err) => {
                        let err: redis::RedisError = err.into();
                        Err(NodeError::new(self.label(), op, &err))
                    }
                    other => Ok(other),
                })
                .collect()),
            Err(err) => {
                let err = NodeError::new(self.label(), op, &err);
                if err.is_connection_error() {
                    *self.conn.lock().await = None;
                }
                Err(self.explain(err).await)
            }
        }
    }

    /// Runs one command.
    pub async fn query(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<redis::Value, NodeError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone());
        self.pipeline(op, &pipe).await?.pop().unwrap_or_else(|| {
            Err(NodeError {
                node: self.label().to_owned(),
                op,
                kind: NodeErrorKind::Other("empty reply".to_owned()),
            })
        })
    }
}

/// The first reply line when `addr` answers a plaintext `PING` with RESP (`+PONG`, or an
/// error such as `-NOAUTH` or `-DENIED`), within a short bound.
async fn plaintext_reply(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        matches!(text.as_bytes().first(), Some(b'+' | b'-')).then_some(text)
    };
    tokio::time::timeout(Duration::from_millis(500), probe)
        .await
        .ok()
        .flatten()
}

/// Text out of a bulk, simple or verbatim string reply.
pub fn value_text(value: &redis::Value) -> Option<String> {
    redis::from_redis_value_ref::<String>(value).ok()
}

pub type SharedHandle = Arc<NodeHandle>;
