//! Sends a command to the owner of a slot, as a cluster client does: the slot map comes from
//! `CLUSTER SLOTS`, `MOVED` updates it (and, as Jedis and Lettuce do, has the whole map read
//! again, at most every `MAP_REFRESH_AFTER_MOVED`: a failover moves every slot of a shard at
//! once), `ASK` is followed once with `ASKING`, and every other
//! error (or a connection that fails) is counted by kind and retried after a short pause until
//! the caller's deadline.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::slot::SLOTS;

/// What one router saw, summed over its calls.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub moved: u64,
    pub ask: u64,
    /// Error replies and connection failures, by kind (`CLUSTERDOWN`, `TRYAGAIN`,
    /// `connection refused`, ...). Each one was retried.
    pub errors: BTreeMap<String, u64>,
    /// The first few errors, each with the node that gave it and when: where to look when
    /// errors appear.
    pub first_errors: Vec<ErrorSample>,
}

/// One error as it happened.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ErrorSample {
    pub kind: String,
    /// The node that gave it (`None`: the slot had no owner in the map).
    pub node: Option<String>,
    pub slot: u16,
    /// When (seconds since the Unix epoch, to line up with the servers' logs).
    pub at_unix_s: f64,
}

impl std::fmt::Display for ErrorSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} from {} for slot {} at {:.3}",
            self.kind,
            self.node.as_deref().unwrap_or("no owner"),
            self.slot,
            self.at_unix_s
        )
    }
}

/// How many errors [`Counters::first_errors`] keeps.
const ERRORS_KEPT: usize = 5;

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.moved += other.moved;
        self.ask += other.ask;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        for error in &other.first_errors {
            if self.first_errors.len() < ERRORS_KEPT {
                self.first_errors.push(error.clone());
            }
        }
    }

    fn error(&mut self, kind: String, addr: Option<&str>, slot: u16) {
        if self.first_errors.len() < ERRORS_KEPT {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.first_errors.push(ErrorSample {
                kind: kind.clone(),
                node: addr.map(str::to_owned),
                slot,
                at_unix_s: at.as_secs_f64(),
            });
        }
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// Credentials and timeouts of every connection.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Connect, read and write timeout of each call.
    pub io_timeout: Duration,
}

pub struct Router {
    settings: ConnSettings,
    /// Addresses to ask for the slot map when the known owners do not answer.
    seeds: Vec<String>,
    /// Owner address of each slot (`None`: not served when last asked).
    owners: Vec<Option<String>>,
    conns: HashMap<String, redis::Connection>,
    /// When the map was last read after a `MOVED`.
    refreshed_after_moved: Option<Instant>,
    pub counters: Counters,
}

/// The least time between two reads of the whole slot map prompted by `MOVED`.
const MAP_REFRESH_AFTER_MOVED: Duration = Duration::from_millis(100);

/// Pause after an error before the next attempt: long enough not to spin on a node that is
/// down, short enough that the write gap measures the cluster, not this client.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

impl Router {
    /// A router with the slot map read from the first seed that answers.
    pub fn new(seeds: &[String], settings: ConnSettings) -> anyhow::Result<Router> {
        let mut router = Router {
            settings,
            seeds: seeds.to_vec(),
            owners: vec![None; SLOTS],
            conns: HashMap::new(),
            refreshed_after_moved: None,
            counters: Counters::default(),
        };
        if !router.refresh() {
            anyhow::bail!("no seed answered CLUSTER SLOTS: {}", seeds.join(", "));
        }
        Ok(router)
    }

    /// The primaries and their slots, by address, as the last slot map has them.
    pub fn shards(&self) -> BTreeMap<String, Vec<u16>> {
        let mut shards: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for (slot, owner) in self.owners.iter().enumerate() {
            if let Some(addr) = owner {
                shards.entry(addr.clone()).or_default().push(slot as u16);
            }
        }
        shards
    }

    /// Reads the slot map again from a node that answers (known owners first, then the
    /// seeds). False when none did.
    pub fn refresh(&mut self) -> bool {
        let mut candidates: Vec<String> = self.owners.iter().flatten().cloned().collect();
        candidates.sort();
        candidates.dedup();
        candidates.extend(self.seeds.iter().cloned());
        for addr in candidates {
            let Ok(conn) = self.conn(&addr) else {
                continue;
            };
            match redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query::<redis::Value>(conn)
            {
                Ok(value) => {
                    if let Some(owners) = parse_slots(&value) {
                        self.owners = owners;
                        // Connections only to the primaries of the map, as a client pools
                        // them: one kept to a node that lost its slots would be found closed
                        // when the node, restarted meanwhile, gets slots back.
                        let owners = &self.owners;
                        self.conns
                            .retain(|addr, _| owners.iter().flatten().any(|o| o == addr));
                        return true;
                    }
                }
                Err(_) => {
                    self.conns.remove(&addr);
                }
            }
        }
        false
    }

    fn conn(&mut self, addr: &str) -> redis::RedisResult<&mut redis::Connection> {
        if !self.conns.contains_key(addr) {
            let info = connection_info(addr, &self.settings)?;
            let client = redis::Client::open(info)?;
            let conn = client.get_connection_with_timeout(self.settings.io_timeout)?;
            conn.set_read_timeout(Some(self.settings.io_timeout))?;
            conn.set_write_timeout(Some(self.settings.io_timeout))?;
            self.conns.insert(addr.to_owned(), conn);
        }
        Ok(self.conns.get_mut(addr).expect("inserted above"))
    }

    /// Sends `cmd` (about a key of `slot`) until it is answered without error or `deadline`
    /// passes; `None` then.
    pub fn call(&mut self, slot: u16, cmd: &redis::Cmd, deadline: Instant) -> Option<redis::Value> {
        let mut ask_to: Option<String> = None;
        loop {
            let addr = match ask_to.take() {
                Some(addr) => Some((addr, true)),
                None => self.owners[usize::from(slot)].clone().map(|a| (a, false)),
            };
            let outcome = match &addr {
                None => Err("slot not served".to_owned()),
                Some((addr, asking)) => self.send(addr, cmd, *asking),
            };
            match outcome {
                Ok(Reply::Value(value)) => return Some(value),
                Ok(Reply::Moved(owner)) => {
                    self.counters.moved += 1;
                    if self
                        .refreshed_after_moved
                        .is_none_or(|at| at.elapsed() >= MAP_REFRESH_AFTER_MOVED)
                    {
                        self.refreshed_after_moved = Some(Instant::now());
                        self.refresh();
                    }
                    self.owners[usize::from(slot)] = Some(owner);
                    continue;
                }
                Ok(Reply::Ask(owner)) => {
                    self.counters.ask += 1;
                    ask_to = Some(owner);
                    continue;
                }
                Err(kind) => {
                    self.counters
                        .error(kind, addr.as_ref().map(|(a, _)| a.as_str()), slot);
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(RETRY_PAUSE);
                    self.refresh();
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    fn send(&mut self, addr: &str, cmd: &redis::Cmd, asking: bool) -> Result<Reply, String> {
        let conn = self.conn(addr).map_err(|e| error_kind(&e))?;
        let result = if asking {
            let mut pipe = redis::pipe();
            pipe.cmd("ASKING").ignore().add_command(cmd.clone());
            pipe.query::<Vec<redis::Value>>(conn)
                .map(|mut v| v.pop().unwrap_or(redis::Value::Nil))
        } else {
            cmd.query::<redis::Value>(conn)
        };
        match result {
            Ok(value) => Ok(Reply::Value(value)),
            Err(err) => {
                if let Some((owner, _)) = err.redirect_node() {
                    let owner = owner.to_owned();
                    return Ok(match err.kind() {
                        redis::ErrorKind::Server(redis::ServerErrorKind::Ask) => Reply::Ask(owner),
                        _ => Reply::Moved(owner),
                    });
                }
                if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
                    self.conns.remove(addr);
                }
                Err(error_kind(&err))
            }
        }
    }
}

enum Reply {
    Value(redis::Value),
    Moved(String),
    Ask(String),
}

/// A short, stable name for an error: the server's code (`CLUSTERDOWN`, `TRYAGAIN`,
/// `READONLY`, `LOADING`, ...) or the kind of connection failure.
fn error_kind(err: &redis::RedisError) -> String {
    if let Some(code) = err.code() {
        return code.to_owned();
    }
    if err.is_timeout() {
        return "timeout".to_owned();
    }
    if err.is_connection_refusal() {
        return "connection refused".to_owned();
    }
    if err.is_io_error() || err.is_connection_dropped() {
        return "connection lost".to_owned();
    }
    format!("{:?}", err.kind())
}

fn connection_info(
    addr: &str,
    settings: &ConnSettings,
) -> redis::RedisResult<redis::ConnectionInfo> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "address without port",
        ))
    })?;
    let port: u16 = port.parse().map_err(|_| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad port"))
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut redis_settings = redis::RedisConnectionInfo::default();
    if let Some(user) = &settings.user {
        redis_settings = redis_settings.set_username(user);
    }
    if let Some(password) = &settings.password {
        redis_settings = redis_settings.set_password(password);
    }
    Ok(redis::ConnectionAddr::Tcp(host.to_owned(), port)
        .into_connection_info()?
        .set_redis_settings(redis_settings))
}

use redis::IntoConnectionInfo as _;

/// `CLUSTER SLOTS`: `[[start, end, [ip, port, id, ...], replicas...], ...]` into the owner
/// of each slot. `None` when the reply is not of that shape.
fn parse_slots(value: &redis::Value) -> Option<Vec<Option<String>>> {
    let redis::Value::Array(ranges) = value else {
        return None;
    };
    let mut owners = vec![None; SLOTS];
    for range in ranges {
        let redis::Value::Array(fields) = range else {
            return None;
        };
        let (Some(start), Some(end), Some(redis::Value::Array(primary))) =
            (int(fields.first()?), int(fields.get(1)?), fields.get(2))
        else {
            return None;
        };
        let ip = text(primary.first()?)?;
        let port = int(primary.get(1)?)?;
        let addr = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        for slot in start..=end.min(SLOTS as i64 - 1) {
            owners[slot as usize] = Some(addr.clone());
        }
    }
    Some(owners)
}

fn int(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    }
}

fn text(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
