//! One frame of `watch`: the cluster as the last read round saw it, and the event log, as
//! plain text (the command clears the screen and prints it).

use std::fmt::Write as _;

use clustersmith_core::health::replicas_of;
use clustersmith_core::model::{NodeFlag, SlotSet};
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::watch::Change;

/// What the frame says about the watch itself.
pub struct Header<'a> {
    /// The read round's time (UTC, `HH:MM:SS.mmm`).
    pub at: &'a str,
    pub interval_s: f64,
    pub read_ms: u128,
}

/// A frame at most `rows` lines high (the event log takes what is left).
pub fn frame(
    header: &Header,
    snapshot: &Snapshot,
    events: &[(String, Change)],
    rows: usize,
) -> String {
    let mut out = String::new();
    let answering = snapshot.views().count();
    let ok = snapshot
        .views()
        .filter(|(_, v)| v.cluster_info.is_ok())
        .count();
    let mut covered = SlotSet::new();
    let mut open = 0usize;
    for (_, view) in snapshot.views() {
        let me = view.myself();
        if !me.is_replica() {
            covered.union_with(&me.slots);
        }
        open += me.open_slots().len();
    }
    let _ = writeln!(
        out,
        "clustersmith watch · {} · every {:.1} s · read in {} ms · q quits",
        header.at, header.interval_s, header.read_ms
    );
    let _ = writeln!(
        out,
        "nodes answering {answering}/{} · cluster_state ok on {ok}/{answering} · slots covered {}/16384 · open slots {open}",
        snapshot.len(),
        covered.len()
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<24} {:>6} {:>9}  REPLICAS (link, lag)",
        "PRIMARY", "SLOTS", "KEYS"
    );
    let mut primaries: Vec<_> = snapshot
        .views()
        .filter(|(_, v)| !v.myself().is_replica())
        .collect();
    primaries.sort_by_key(|(_, v)| v.myself().slots.iter().next().unwrap_or(u16::MAX));
    for (record, view) in &primaries {
        let me = view.myself();
        let flagged = flags_of(snapshot, &view.id);
        let replicas: Vec<String> = replicas_of(snapshot, &record.key)
            .iter()
            .map(|r| {
                format!(
                    "{} {}{}",
                    r.key,
                    if r.link_up { "up" } else { "DOWN" },
                    r.lag.map_or(String::new(), |l| format!(" {l} B"))
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:>9}  {}{}",
            record.key.to_string(),
            me.slots.len(),
            view.info.key_count(),
            if replicas.is_empty() {
                "(none)".to_owned()
            } else {
                replicas.join(", ")
            },
            flagged
        );
        // Moves in progress, one line per peer: how many slots are open, and how many this
        // primary still owns (it falls as a resize goes on).
        let mut moving: std::collections::BTreeMap<(String, String), usize> =
            std::collections::BTreeMap::new();
        for open in me.open_slots() {
            let kind = match open.kind {
                clustersmith_core::parse::OpenSlotKind::Migrating => "to",
                clustersmith_core::parse::OpenSlotKind::Importing => "from",
            };
            *moving
                .entry((kind.to_owned(), snapshot.label_of(&open.peer)))
                .or_default() += 1;
        }
        for ((kind, peer), count) in moving {
            let _ = writeln!(
                out,
                "    moving: {count} slot(s) open {kind} {peer}; {} slots owned here now",
                me.slots.len()
            );
        }
    }
    for record in snapshot.iter().filter(|r| r.view().is_none()) {
        let _ = writeln!(out, "{:<24} not answering", record.key.to_string());
    }
    out.push_str("\nEVENTS\n");
    let used = out.lines().count();
    let room = rows.saturating_sub(used + 1).max(3);
    if events.is_empty() {
        out.push_str("(none since the watch began)\n");
    }
    for (at, change) in events
        .iter()
        .rev()
        .take(room)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let _ = writeln!(out, "{at} {change}");
    }
    out
}

/// ` [fail by 2]`-style notes when peers flag the node.
fn flags_of(snapshot: &Snapshot, id: &clustersmith_core::model::NodeId) -> String {
    let count = |flag| {
        snapshot
            .views()
            .filter(|(_, v)| v.id != *id)
            .filter(|(_, v)| v.knows(id).is_some_and(|e| e.has_flag(flag)))
            .count()
    };
    match (count(NodeFlag::Fail), count(NodeFlag::PossibleFail)) {
        (0, 0) => String::new(),
        (0, p) => format!("  [fail? by {p}]"),
        (f, _) => format!("  [FAIL by {f}]"),
    }
}
