//! Tables for people: the topology as observed against the plan, and the verdict.

use std::fmt::Write as _;

use clustersmith_core::model::SlotSet;
use clustersmith_core::plan::Layout;
use clustersmith_core::snapshot::{NodeKey, Snapshot};
use clustersmith_core::verify::{Status, Verdict};

/// The replica's own `master_link_status`, as observed; `??` when the replica did not answer,
/// and flagged when its primary did not answer (the replica may not have noticed yet).
fn link_status(snapshot: &Snapshot, replica: &NodeKey, primary: &NodeKey) -> String {
    match snapshot.view(replica) {
        Some(view) => {
            let status = view.info.primary_link_status().unwrap_or("-");
            if snapshot.view(primary).is_none() {
                format!("{status} (primary not observed)")
            } else {
                status.to_owned()
            }
        }
        None => "??".to_owned(),
    }
}

/// A node's label with what was observed of it when that differs from the plan: the table
/// shows the live state, never the target alone.
fn node_cell(snapshot: &Snapshot, key: &NodeKey, planned_primary: Option<&NodeKey>) -> String {
    let Some(view) = snapshot.view(key) else {
        return format!("{key} (not observed)");
    };
    let me = view.myself();
    match planned_primary {
        None if me.is_replica() => format!("{key} (is a replica)"),
        None => key.to_string(),
        Some(primary) => {
            let planned_id = snapshot.view(primary).map(|v| &v.id);
            match (&me.primary_id, me.is_replica()) {
                // An unobserved primary cannot be compared: the replica's word stands.
                (Some(id), true) if planned_id.is_none_or(|p| p == id) => key.to_string(),
                (Some(id), true) => format!("{key} (replicates {})", snapshot.label_of(id)),
                _ => format!("{key} (is a primary)"),
            }
        }
    }
}

/// The primary's slots as it reports them, with the plan's when they differ.
fn slots_cell(snapshot: &Snapshot, key: &NodeKey, planned: &SlotSet) -> String {
    match snapshot.view(key) {
        Some(view) if view.myself().slots == *planned => format!("{planned} ({})", planned.len()),
        Some(view) => {
            let owns = &view.myself().slots;
            format!("{owns} ({}; planned {planned})", owns.len())
        }
        None => format!("?? (planned {planned})"),
    }
}

fn zone(snapshot: &Snapshot, key: &NodeKey) -> String {
    snapshot
        .get(key)
        .and_then(|n| n.zone.clone())
        .unwrap_or_else(|| "-".to_owned())
}

pub fn topology_table(layout: &Layout, snapshot: &Snapshot) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "PRIMARY".into(),
        "SLOTS".into(),
        "REPLICAS".into(),
        "ZONE".into(),
        "LINK".into(),
    ]];
    for shard in &layout.shards {
        let primary = &shard.primary;
        // With zones in use, the primary's zone is shown next to its first replica's.
        let zoned = snapshot.get(primary).is_some_and(|n| n.zone.is_some());
        let zone_cell = match shard.replicas.first() {
            Some(first) if zoned => {
                format!("{} / {}", zone(snapshot, primary), zone(snapshot, first))
            }
            _ => zone(snapshot, primary),
        };
        let replica_cell = |r: &NodeKey| node_cell(snapshot, r, Some(primary));
        rows.push([
            node_cell(snapshot, primary, None),
            slots_cell(snapshot, primary, &shard.slots),
            shard.replicas.first().map_or("-".into(), replica_cell),
            zone_cell,
            shard
                .replicas
                .first()
                .map_or("-".into(), |r| link_status(snapshot, r, primary)),
        ]);
        for replica in shard.replicas.iter().skip(1) {
            rows.push([
                String::new(),
                String::new(),
                replica_cell(replica),
                String::new(),
                link_status(snapshot, replica, primary),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
    out
}

pub fn verdict_text(verdict: &Verdict) -> String {
    let mut out = String::new();
    for criterion in &verdict.criteria {
        let mark = match criterion.status() {
            Status::Met => "ok  ",
            Status::Failed => "FAIL",
            Status::Unknown => "??  ",
            Status::Warning => "WARN",
        };
        let _ = writeln!(out, "  {mark} {:<12} {}", criterion.id(), criterion.title());
        for failure in &criterion.failures {
            let _ = writeln!(out, "         {}: {}", failure.node, failure.detail);
        }
        if !criterion.unchecked.is_empty() {
            let labels: Vec<String> = criterion
                .unchecked
                .iter()
                .map(ToString::to_string)
                .collect();
            let _ = writeln!(out, "         not checked on {}", labels.join(", "));
        }
    }
    out
}

/// UTC timestamp `YYYY-MM-DDTHH:MM:SS.mmmZ` for progress lines written to log files.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
