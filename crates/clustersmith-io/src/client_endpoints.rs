//! Where the nodes send clients: every live node's `CLUSTER SLOTS` (its preferred endpoint and
//! client port for each slot range's nodes; redirects name the same), and each endpoint tried
//! as a client would try it — resolved through the system resolver, connected with the run's
//! TLS and credentials, asked `CLUSTER MYID`. An endpoint that is where the session reached
//! that node already is not tried again: a healthy cluster costs one `CLUSTER SLOTS` a node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use clustersmith_core::diagnose::{ClientEndpoint, EndpointAnswer};
use clustersmith_core::model::{NodeId, SlotRange, SlotSet};
use futures::future::join_all;
use redis::Value;

use crate::conn::{Endpoint, value_text};
use crate::session::Session;

/// One node as a `CLUSTER SLOTS` range lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listed {
    /// `None`: NULL (`cluster-preferred-endpoint-type unknown-endpoint`) or empty (a node
    /// that has not learned its own IP yet: alone, or not met yet); clients reuse the address
    /// they used, with this port.
    host: Option<String>,
    port: u16,
    id: NodeId,
    /// The range, when the node is listed as its primary (first).
    primary_of: Option<SlotRange>,
}

/// The nodes of a `CLUSTER SLOTS` reply: `[start, end, [endpoint, port, id, {extra}], replicas…]`
/// per range (Redis 6.2 has no fourth element). Entries that do not have this shape are left
/// out: a server that answers otherwise has nothing to judge here.
fn listed(reply: &Value) -> Vec<Listed> {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(items) = range else { continue };
        let int = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok(),
            _ => None,
        };
        let (Some(start), Some(end)) = (items.first().and_then(int), items.get(1).and_then(int))
        else {
            continue;
        };
        for (i, node) in items.iter().skip(2).enumerate() {
            let Value::Array(fields) = node else { continue };
            let host = match fields.first() {
                Some(Value::Nil) => None,
                Some(v) => match value_text(v) {
                    Some(text) if text.is_empty() => None,
                    Some(text) => Some(text),
                    None => continue,
                },
                None => continue,
            };
            let (Some(port), Some(id)) = (
                fields.get(1).and_then(int),
                fields
                    .get(2)
                    .and_then(value_text)
                    .and_then(|t| NodeId::parse(&t).ok()),
            ) else {
                continue;
            };
            out.push(Listed {
                host,
                port,
                id,
                primary_of: (i == 0).then(|| SlotRange::new(start, end)).flatten(),
            });
        }
    }
    out
}

/// Every endpoint the nodes that answered at the session's last read list, with how it
/// answered. What a node refuses to show (an ACL without CLUSTER SLOTS) is left out.
pub async fn client_endpoints(session: &Session) -> Vec<ClientEndpoint> {
    let reads = session.snapshot().views().map(|(node, _)| async move {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let reply = session
            .handle(&node.key)?
            .query("read CLUSTER SLOTS", &cmd)
            .await
            .ok()?;
        Some((node.key.clone(), listed(&reply)))
    });
    // Each node lists every slot range's nodes: grouped by endpoint and node id.
    let mut grouped: BTreeMap<(String, u16, NodeId), ClientEndpoint> = BTreeMap::new();
    for (key, entries) in join_all(reads).await.into_iter().flatten() {
        for entry in entries {
            let Some(host) = entry.host else { continue };
            let endpoint = grouped
                .entry((host.clone(), entry.port, entry.id))
                .or_insert_with(|| ClientEndpoint {
                    host,
                    port: entry.port,
                    id: entry.id,
                    slots: SlotSet::new(),
                    listed_by: Vec::new(),
                    answer: EndpointAnswer::Reached,
                });
            if let Some(range) = entry.primary_of {
                endpoint.slots.insert_range(range);
            }
            if !endpoint.listed_by.contains(&key) {
                endpoint.listed_by.push(key.clone());
            }
        }
    }
    let mut endpoints: Vec<ClientEndpoint> = grouped.into_values().collect();
    // Where the session reached the listed node, the endpoint is known to work; every other
    // (host, port) is tried once, whichever ids are listed there.
    let reached: BTreeSet<(IpAddr, u16, NodeId)> = session
        .snapshot()
        .views()
        .map(|(node, view)| (node.ip.to_canonical(), node.port, view.id))
        .collect();
    let reached_there = |e: &ClientEndpoint| {
        e.host
            .parse::<IpAddr>()
            .is_ok_and(|ip| reached.contains(&(ip.to_canonical(), e.port, e.id)))
    };
    let to_try: BTreeSet<(&str, u16)> = endpoints
        .iter()
        .filter(|e| !reached_there(e))
        .map(|e| (e.host.as_str(), e.port))
        .collect();
    let tried: BTreeMap<(String, u16), EndpointAnswer> =
        join_all(to_try.into_iter().map(|(host, port)| async move {
            (
                (host.to_owned(), port),
                try_endpoint(session, host, port).await,
            )
        }))
        .await
        .into_iter()
        .collect();
    for endpoint in &mut endpoints {
        if !reached_there(endpoint)
            && let Some(answer) = tried.get(&(endpoint.host.clone(), endpoint.port))
        {
            endpoint.answer = answer.clone();
        }
    }
    endpoints
}

/// How `host:port` answers a client: `?` is no endpoint; a name is resolved first; then
/// `CLUSTER MYID` over a connection with the run's TLS and credentials.
async fn try_endpoint(session: &Session, host: &str, port: u16) -> EndpointAnswer {
    if host == "?" {
        return EndpointAnswer::NoHostname;
    }
    let literal = host.parse::<IpAddr>().ok();
    let ip = match literal {
        Some(ip) => ip,
        None => match crate::resolve::lookup(host, port, false, session.connect_timeout()).await {
            Ok((ip, _)) => ip,
            Err(crate::resolve::ResolveError::Unresolvable { reason, .. }) => {
                return EndpointAnswer::Unresolvable(reason);
            }
            Err(other) => return EndpointAnswer::Unresolvable(other.to_string()),
        },
    };
    let handle = session.client_handle(Endpoint {
        label: format!("{host}:{port}"),
        hostname: literal.is_none().then(|| host.to_owned()),
        ip,
        port,
    });
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("MYID");
    let reply = match handle {
        Ok(handle) => handle.query("read CLUSTER MYID", &cmd).await,
        Err(err) => Err(err),
    };
    match reply {
        Ok(value) => match value_text(&value).and_then(|t| NodeId::parse(t.trim()).ok()) {
            Some(id) => EndpointAnswer::AnswersAs(id),
            None => EndpointAnswer::Unreachable("it answers CLUSTER MYID without a node id".into()),
        },
        Err(err) => EndpointAnswer::Unreachable(err.kind.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// A range of Redis 7.0.15's reply with `cluster-preferred-endpoint-type hostname` (the
    /// primary announces `node-1.invalid`, its replica no hostname), one of Redis 6.2.14's
    /// (three elements a node), one with `unknown-endpoint` (NULL), and one of a node that
    /// knows only itself (an empty IP).
    #[test]
    fn cluster_slots_replies_of_each_shape_list_their_nodes() {
        let primary = "3f1c5d0b6a9e2f4c8d7b1a0e9f8c7d6b5a4e3f21";
        let replica = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b";
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![
                    bulk("node-1.invalid"),
                    Value::Int(20001),
                    bulk(primary),
                    Value::Array(vec![bulk("ip"), bulk("127.0.0.1")]),
                ]),
                Value::Array(vec![
                    bulk("?"),
                    Value::Int(20004),
                    bulk(replica),
                    Value::Array(vec![bulk("ip"), bulk("127.0.0.1")]),
                ]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(20002), bulk(primary)]),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16382),
                Value::Array(vec![Value::Nil, Value::Int(20003), bulk(replica)]),
            ]),
            // A node alone, which has not learned its own IP.
            Value::Array(vec![
                Value::Int(16383),
                Value::Int(16383),
                Value::Array(vec![bulk(""), Value::Int(20005), bulk(primary)]),
            ]),
        ]);
        let found = listed(&reply);
        let id = |t: &str| NodeId::parse(t).unwrap();
        assert_eq!(
            found,
            vec![
                Listed {
                    host: Some("node-1.invalid".into()),
                    port: 20001,
                    id: id(primary),
                    primary_of: SlotRange::new(0, 5460),
                },
                Listed {
                    host: Some("?".into()),
                    port: 20004,
                    id: id(replica),
                    primary_of: None,
                },
                Listed {
                    host: Some("127.0.0.1".into()),
                    port: 20002,
                    id: id(primary),
                    primary_of: SlotRange::new(5461, 10922),
                },
                Listed {
                    host: None,
                    port: 20003,
                    id: id(replica),
                    primary_of: SlotRange::new(10923, 16382),
                },
                Listed {
                    host: None,
                    port: 20005,
                    id: id(primary),
                    primary_of: SlotRange::new(16383, 16383),
                },
            ]
        );
        // Not a reply of that shape: nothing.
        assert_eq!(
            listed(&bulk("ERR This instance has cluster support disabled")),
            Vec::new()
        );
    }
}
