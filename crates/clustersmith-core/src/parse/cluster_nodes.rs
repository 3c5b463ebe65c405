//! `CLUSTER NODES` (and the node lines of `nodes.conf`, which share the format).
//!
//! # Format
//! ```text
//! <id> <ip:port@cport[,hostname[,aux=value…]]> <flags> <primary-id|-> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>…
//! ```
//! Slots are `N`, `N-M`, or open slots `[N->-<id>]` (migrating) / `[N-<-<id>]` (importing).

use std::net::IpAddr;

use super::{ParseIssue, Parsed};
use crate::model::{
    LinkState, NodeAddr, NodeFlag, NodeFlags, NodeId, SLOT_COUNT, SlotRange, SlotSet,
};

/// One line of `CLUSTER NODES`: how the reporting node sees one member (or itself).
///
/// Kept small: a view of N nodes holds N entries and `apply` holds N views (90 000 entries at
/// 300 nodes, a million at 1000), so what few entries carry (an announced hostname, a flag
/// clustersmith does not know, open slots) sits behind one pointer that is usually empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    pub id: NodeId,
    pub addr: NodeAddr,
    pub flags: NodeFlags,
    /// For a replica, the id of its primary.
    pub primary_id: Option<NodeId>,
    pub config_epoch: u64,
    pub link_state: LinkState,
    /// When the reporting node last had a pong from this one on its own link to it (Unix ms,
    /// on the reporting node's clock; 0 when never): proof the link works, when recent.
    pub pong_recv: u64,
    pub slots: SlotSet,
    rare: Option<Box<RareParts>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RareParts {
    /// Announced hostname (Redis 7.0+ `cluster-announce-hostname`).
    hostname: Option<String>,
    /// Flag words clustersmith does not know, in the order written.
    other_flags: Vec<String>,
    open_slots: Vec<OpenSlot>,
}

impl NodeEntry {
    pub fn has_flag(&self, flag: NodeFlag) -> bool {
        self.flags.contains(flag)
    }

    pub fn is_myself(&self) -> bool {
        self.has_flag(NodeFlag::Myself)
    }

    pub fn is_replica(&self) -> bool {
        self.has_flag(NodeFlag::Replica)
    }

    pub fn is_handshake(&self) -> bool {
        self.has_flag(NodeFlag::Handshake)
    }

    /// Not talking over the bus: still in handshake, or its link down.
    pub fn bus_unconnected(&self) -> bool {
        self.is_handshake() || self.link_state == crate::model::LinkState::Disconnected
    }

    /// The flags that make this entry an unhealthy member, as words.
    pub fn unhealthy_flags(&self) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|f| f.is_unhealthy())
            .map(NodeFlag::as_str)
            .collect()
    }

    /// Every flag word: the known ones in the servers' order, then any other as written.
    pub fn flag_words(&self) -> impl Iterator<Item = &str> + '_ {
        let other = self.rare.iter().flat_map(|r| r.other_flags.iter());
        let known = self.flags.iter().map(|flag| -> &str { flag.as_str() });
        known.chain(other.map(String::as_str))
    }

    /// The flags field as the server prints it (`myself,master`).
    pub fn flags_text(&self) -> String {
        self.flag_words().collect::<Vec<_>>().join(",")
    }

    /// The announced hostname (Redis 7.0+ `cluster-announce-hostname`), if any.
    pub fn hostname(&self) -> Option<&str> {
        self.rare.as_ref()?.hostname.as_deref()
    }

    /// Slots this node is migrating or importing (`[N->-id]`, `[N-<-id]`).
    pub fn open_slots(&self) -> &[OpenSlot] {
        self.rare.as_ref().map_or(&[], |r| &r.open_slots)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenSlotKind {
    Migrating,
    Importing,
}

/// A slot in the middle of a migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSlot {
    pub slot: u16,
    pub kind: OpenSlotKind,
    pub peer: NodeId,
}

/// All entries of one node's `CLUSTER NODES` reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterNodes {
    entries: Vec<NodeEntry>,
    /// (first 8 characters of the id as a number, position in `entries`), ordered by id: the
    /// planner and the verifier look ids up for every entry of every view, N² lookups per
    /// round, which a scan per lookup made N³. 12 bytes an entry, searched without touching
    /// the entries themselves until the last step.
    by_id: Vec<(u64, u32)>,
    myself: Option<usize>,
}

impl ClusterNodes {
    /// Indexes parsed entries; the only way to build one, so the index always fits.
    fn new(entries: Vec<NodeEntry>) -> ClusterNodes {
        let mut by_id: Vec<(u64, u32)> = entries
            .iter()
            .enumerate()
            .map(|(pos, e)| (e.id.head(), pos as u32))
            .collect();
        // Stable: of two lines with one id, the first is found, as a scan would.
        // The prefix decides almost every comparison without touching the entries.
        by_id.sort_by(|(head_a, pos_a), (head_b, pos_b)| {
            head_a.cmp(head_b).then_with(|| {
                entries[*pos_a as usize]
                    .id
                    .cmp(&entries[*pos_b as usize].id)
            })
        });
        let myself = entries.iter().position(NodeEntry::is_myself);
        ClusterNodes {
            entries,
            by_id,
            myself,
        }
    }

    /// Every line, in reply order.
    pub fn entries(&self) -> &[NodeEntry] {
        &self.entries
    }

    /// The reporting node's own line.
    pub fn myself(&self) -> Option<&NodeEntry> {
        self.myself.map(|pos| &self.entries[pos])
    }

    pub fn get(&self, id: &NodeId) -> Option<&NodeEntry> {
        let head = id.head();
        let from = self.by_id.partition_point(|(h, _)| *h < head);
        self.by_id[from..]
            .iter()
            .take_while(|(h, _)| *h == head)
            .map(|(_, pos)| &self.entries[*pos as usize])
            .find(|entry| entry.id == *id)
    }

    /// What `get` finds for each of `ids`, which must be in ascending order, in one merge walk
    /// of the index. Checks that look every node up in every view (N² lookups a round) walk
    /// each view once in order instead of searching it per id.
    pub fn get_each<'a>(
        &'a self,
        ids: impl IntoIterator<Item = &'a NodeId> + 'a,
    ) -> impl Iterator<Item = Option<&'a NodeEntry>> + 'a {
        let mut next = 0;
        ids.into_iter().map(move |id| {
            let head = id.head();
            // The entries are touched only where the prefixes match: in id order they are
            // scattered through the view, and reading each missed the cache.
            while let Some((h, pos)) = self.by_id.get(next) {
                if *h < head {
                    next += 1;
                    continue;
                }
                if *h > head {
                    return None;
                }
                let entry = &self.entries[*pos as usize];
                if entry.id < *id {
                    next += 1;
                } else {
                    return (entry.id == *id).then_some(entry);
                }
            }
            None
        })
    }

    /// Entries other than the reporting node's own.
    pub fn peers(&self) -> impl Iterator<Item = &NodeEntry> {
        self.entries.iter().filter(|e| !e.is_myself())
    }
}

pub fn parse_cluster_nodes(text: &str) -> Parsed<ClusterNodes> {
    // One entry a line, allocated once: grown by doubling, the views of a 300-node cluster
    // held 40% unused capacity (14 MB of a 74 MB `verify`, measured with massif).
    let mut entries = Vec::with_capacity(text.bytes().filter(|b| *b == b'\n').count() + 1);
    let mut issues = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        // `nodes.conf` ends with a `vars …` line; it carries epochs, not a node.
        if line.is_empty() || line.starts_with("vars ") {
            continue;
        }
        match parse_line(line) {
            Ok((entry, mut slot_issues)) => {
                issues.extend(slot_issues.drain(..).map(|message| ParseIssue {
                    line: idx + 1,
                    message,
                }));
                entries.push(entry);
            }
            Err(message) => issues.push(ParseIssue {
                line: idx + 1,
                message,
            }),
        }
    }
    let myself_count = entries.iter().filter(|e| e.is_myself()).count();
    if !entries.is_empty() && myself_count != 1 {
        issues.push(ParseIssue {
            line: 0,
            message: format!("expected exactly one `myself` line, found {myself_count}"),
        });
    }
    Parsed {
        value: ClusterNodes::new(entries),
        issues,
    }
}

fn parse_line(line: &str) -> Result<(NodeEntry, Vec<String>), String> {
    let mut fields = line.split_ascii_whitespace();
    let mut field = |what: usize| {
        fields
            .next()
            .ok_or_else(|| format!("expected at least 8 fields, found {what}: `{line}`"))
    };
    let (id, addr, flag_field, primary, _ping, pong, epoch, link) = (
        field(0)?,
        field(1)?,
        field(2)?,
        field(3)?,
        field(4)?,
        field(5)?,
        field(6)?,
        field(7)?,
    );
    let id = NodeId::parse(id).map_err(|e| e.to_string())?;
    let (addr, hostname) = parse_addr(addr)?;
    let mut rare = RareParts {
        hostname,
        ..RareParts::default()
    };
    let mut flags = NodeFlags::default();
    for word in flag_field.split(',') {
        match NodeFlag::parse(word) {
            Some(flag) => flags.insert(flag),
            None => rare.other_flags.push(word.to_owned()),
        }
    }
    let primary_id = match primary {
        "-" => None,
        other => Some(NodeId::parse(other).map_err(|e| format!("primary id: {e}"))?),
    };
    let config_epoch = epoch
        .parse::<u64>()
        .map_err(|_| format!("config epoch `{epoch}` is not a number"))?;
    // Unreadable only in a malformed line; 0 (never) is what a doubt should mean.
    let pong_recv = pong.parse::<u64>().unwrap_or(0);
    let link_state = match link {
        "connected" => LinkState::Connected,
        "disconnected" => LinkState::Disconnected,
        other => return Err(format!("unknown link state `{other}`")),
    };
    let mut slots = SlotSet::new();
    let mut slot_issues = Vec::new();
    for token in fields {
        if let Some(inner) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            match parse_open_slot(inner) {
                Some(open) => rare.open_slots.push(open),
                None => slot_issues.push(format!("unreadable open slot `{token}`")),
            }
        } else {
            match parse_slot_range(token) {
                Some(range) => slots.insert_range(range),
                None => slot_issues.push(format!("unreadable slot range `{token}`")),
            }
        }
    }
    let rare = (rare != RareParts::default()).then(|| Box::new(rare));
    Ok((
        NodeEntry {
            id,
            addr,
            flags,
            primary_id,
            config_epoch,
            link_state,
            pong_recv,
            slots,
            rare,
        },
        slot_issues,
    ))
}

/// The address, and the announced hostname written after it.
fn parse_addr(field: &str) -> Result<(NodeAddr, Option<String>), String> {
    let mut parts = field.split(',');
    let ip_ports = parts.next().unwrap_or_default();
    // Whatever follows the address is the announced hostname, then `key=value` aux fields
    // (nodes.conf since 7.2); an empty hostname means none was announced.
    let hostname = parts
        .next()
        .filter(|h| !h.is_empty() && !h.contains('='))
        .map(str::to_owned);
    let (ip_port, bus) = ip_ports
        .split_once('@')
        .ok_or_else(|| format!("address `{field}` has no `@busport`"))?;
    let bus_port = bus
        .parse::<u16>()
        .map_err(|_| format!("bus port in `{field}` is not a number"))?;
    let (ip_text, port_text) = ip_port
        .rsplit_once(':')
        .ok_or_else(|| format!("address `{field}` has no port"))?;
    let port = port_text
        .parse::<u16>()
        .map_err(|_| format!("port in `{field}` is not a number"))?;
    let ip_text = ip_text.trim_start_matches('[').trim_end_matches(']');
    let ip = if ip_text.is_empty() {
        None
    } else {
        Some(
            ip_text
                .parse::<IpAddr>()
                .map_err(|_| format!("`{ip_text}` in `{field}` is not an IP address"))?,
        )
    };
    Ok((NodeAddr { ip, port, bus_port }, hostname))
}

fn parse_slot_range(token: &str) -> Option<SlotRange> {
    match token.split_once('-') {
        Some((start, end)) => SlotRange::new(start.parse().ok()?, end.parse().ok()?),
        None => {
            let slot: u16 = token.parse().ok()?;
            (slot < SLOT_COUNT).then_some(SlotRange {
                start: slot,
                end: slot,
            })
        }
    }
}

fn parse_open_slot(inner: &str) -> Option<OpenSlot> {
    let (slot, kind, peer) = if let Some((slot, peer)) = inner.split_once("->-") {
        (slot, OpenSlotKind::Migrating, peer)
    } else {
        let (slot, peer) = inner.split_once("-<-")?;
        (slot, OpenSlotKind::Importing, peer)
    };
    Some(OpenSlot {
        slot: slot.parse().ok().filter(|s| *s < SLOT_COUNT)?,
        kind,
        peer: NodeId::parse(peer).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the seed write-up, scenario 2 after the fix (Redis 6.2.12).
    const SEED_FORMED: &str = "\
ae16bca025bfa992a5e0c9ec2fbdda10fac6af44 10.168.17.8:6379@16379 slave 5d75611c1b16e9424a79b40c5b624c87e6152166 0 1704797759111 2 connected
5bbd6f01c134a843db25993fd81cb71e1fc5ca09 10.168.17.7:6379@16379 slave 5be3d949f56e77d5848af97f1d8825e1c29f3270 0 1704797761121 1 connected
5d75611c1b16e9424a79b40c5b624c87e6152166 10.168.17.6:6379@16379 master - 0 1704797760116 2 connected 8192-16383
5be3d949f56e77d5848af97f1d8825e1c29f3270 10.168.17.5:6379@16379 myself,master - 0 1704797759000 1 connected 0-8191
";

    // Captured from the seed write-up, scenario 1 before the fix: a node that met nobody.
    const SEED_ALONE: &str = "bfc3177710a27823762881570ce93e62ac6fd751 :6379@16379 myself,master - 0 0 0 connected 0-16383\n";

    #[test]
    fn parses_the_seed_formed_cluster() {
        let parsed = parse_cluster_nodes(SEED_FORMED);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let nodes = parsed.value;
        assert_eq!(nodes.entries().len(), 4);
        let me = nodes.myself().unwrap();
        assert_eq!(me.id.short(), "5be3d949");
        assert_eq!(me.slots.to_string(), "0-8191");
        assert_eq!(me.addr.to_string(), "10.168.17.5:6379");
        assert_eq!(me.addr.bus_port, 16379);
        let replica = &nodes.entries()[0];
        assert!(replica.is_replica());
        assert_eq!(replica.primary_id.as_ref().unwrap().short(), "5d75611c");
        assert_eq!(replica.config_epoch, 2);
    }

    #[test]
    fn a_node_that_met_nobody_has_no_ip() {
        let parsed = parse_cluster_nodes(SEED_ALONE);
        assert!(parsed.issues.is_empty());
        let me = parsed.value.myself().unwrap().clone();
        assert_eq!(me.addr.ip, None);
        assert!(me.slots.is_full());
    }

    #[test]
    fn reads_ipv6_hostnames_handshake_and_open_slots() {
        let text = "\
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001,redis-1.test myself,master - 0 0 1 connected 0-5460 [77->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
0123456789abcdef0123456789abcdef01234567 ::1:22002@32002 handshake - 0 0 0 disconnected
";
        let parsed = parse_cluster_nodes(text);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let me = parsed.value.myself().unwrap();
        assert_eq!(me.hostname(), Some("redis-1.test"));
        assert_eq!(me.open_slots().len(), 2);
        assert_eq!(me.open_slots()[0].kind, OpenSlotKind::Migrating);
        assert_eq!(me.open_slots()[1].slot, 93);
        let shake = &parsed.value.entries()[1];
        assert!(shake.is_handshake());
        assert_eq!(shake.addr.ip, Some("::1".parse().unwrap()));
        assert_eq!(shake.link_state, LinkState::Disconnected);
    }

    #[test]
    fn keeps_going_and_reports_bad_lines_with_their_number() {
        let text = format!("{SEED_ALONE}garbage line\n0123 1.2.3.4:1@2 master - 0 0 0 connected\n");
        let parsed = parse_cluster_nodes(&text);
        assert_eq!(parsed.value.entries().len(), 1);
        let lines: Vec<usize> = parsed.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn nodes_conf_aux_fields_and_vars_line() {
        let text = "\
6a1b2c3d4e5f60718293a4b5c6d7e8f901234567 127.0.0.1:21001@31001,,tls-port=0,shard-id=8f1c myself,master - 0 0 1 connected 0-5461
vars currentEpoch 6 lastVoteEpoch 0
";
        let parsed = parse_cluster_nodes(text);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        assert_eq!(parsed.value.myself().unwrap().hostname(), None);
    }

    #[test]
    fn keeps_flag_words_it_does_not_know_in_order() {
        let text = "6a1b2c3d4e5f60718293a4b5c6d7e8f901234567 127.0.0.1:21001@31001 myself,master,nofailover,shiny - 0 0 1 connected 0-10 12\n";
        let parsed = parse_cluster_nodes(text);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let me = parsed.value.myself().unwrap();
        assert_eq!(me.flags_text(), "myself,master,nofailover,shiny");
        assert!(me.has_flag(NodeFlag::NoFailover));
        assert_eq!(me.slots.ranges().len(), 2);
        assert_eq!(me.open_slots(), []);
    }

    /// A million of these make a 1000-node observation: what an entry holds inline is its
    /// cost, and what it holds on the heap is none in the common case.
    #[test]
    fn an_entry_stays_compact() {
        let size = std::mem::size_of::<NodeEntry>();
        // 160: `pong_recv` (8 bytes) is what proves a link works since a restart (handoff's
        // fitness); 8 MB more at a million entries.
        assert!(size <= 160, "NodeEntry grew to {size} bytes");
        let parsed = parse_cluster_nodes(SEED_FORMED);
        for entry in parsed.value.entries() {
            assert!(entry.rare.is_none(), "{entry:?}");
        }
    }

    #[test]
    fn get_each_finds_what_get_finds() {
        let nodes = parse_cluster_nodes(SEED_FORMED).value;
        let mut ids: Vec<NodeId> = nodes.entries().iter().map(|e| e.id).collect();
        ids.push(NodeId::parse("0000000000000000000000000000000000000000").unwrap());
        ids.push(NodeId::parse("5d75611c1b16e9424a79b40c5b624c87e6152165").unwrap());
        ids.push(NodeId::parse("ffffffffffffffffffffffffffffffffffffffff").unwrap());
        ids.push(ids[2]);
        ids.sort();
        let walked: Vec<Option<&NodeEntry>> = nodes.get_each(&ids).collect();
        let searched: Vec<Option<&NodeEntry>> = ids.iter().map(|id| nodes.get(id)).collect();
        assert_eq!(walked, searched);
        assert_eq!(walked.iter().filter(|e| e.is_some()).count(), 5);
    }
}
