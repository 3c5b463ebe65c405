//! Human and JSON output. JSON goes through explicit wire shapes (`serde_json::json!`) with a
//! `schema_version`, never through internal types.

use std::fmt::Write as _;

use clustersmith_core::observation::{InventoryNode, Observation};
use clustersmith_core::plan::{Layout, MoveEngine, Plan};
use clustersmith_core::verify::{Status, Verdict};
use serde_json::{Value, json};

pub const SCHEMA_VERSION: u32 = 1;

/// The replica's own `master_link_status`, as observed; `??` when the replica did not answer,
/// and flagged when its primary did not answer (the replica may not have noticed yet).
fn link_status(obs: &Observation, replica: usize, primary: usize) -> String {
    match obs.view(replica) {
        Some(view) => {
            let status = view.info.primary_link_status().unwrap_or("-");
            if obs.view(primary).is_none() {
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
fn node_cell(
    inventory: &[InventoryNode],
    obs: &Observation,
    idx: usize,
    planned_primary: Option<usize>,
) -> String {
    let label = &inventory[idx].label;
    let Some(view) = obs.view(idx) else {
        return format!("{label} (not observed)");
    };
    let me = view.myself();
    match planned_primary {
        None if me.is_replica() => format!("{label} (is a replica)"),
        None => label.clone(),
        Some(primary) => {
            let planned_id = obs.view(primary).map(|v| &v.id);
            match (&me.primary_id, me.is_replica()) {
                // An unobserved primary cannot be compared: the replica's word stands.
                (Some(id), true) if planned_id.is_none_or(|p| p == id) => label.clone(),
                (Some(id), true) => {
                    let now = (0..inventory.len())
                        .find(|i| obs.view(*i).is_some_and(|v| &v.id == id))
                        .map_or_else(|| id.short().to_owned(), |i| inventory[i].label.clone());
                    format!("{label} (replicates {now})")
                }
                _ => format!("{label} (is a primary)"),
            }
        }
    }
}

/// The primary's slots as it reports them, with the plan's when they differ.
fn slots_cell(
    obs: &Observation,
    idx: usize,
    planned: &clustersmith_core::model::SlotSet,
) -> String {
    match obs.view(idx) {
        Some(view) if view.myself().slots == *planned => format!("{planned} ({})", planned.len()),
        Some(view) => {
            let owns = &view.myself().slots;
            format!("{owns} ({}; planned {planned})", owns.len())
        }
        None => format!("?? (planned {planned})"),
    }
}

fn zone(inventory: &[InventoryNode], idx: usize) -> String {
    inventory[idx]
        .zone
        .clone()
        .unwrap_or_else(|| "-".to_owned())
}

pub fn topology_table(layout: &Layout, inventory: &[InventoryNode], obs: &Observation) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "PRIMARY".into(),
        "SLOTS".into(),
        "REPLICAS".into(),
        "ZONE".into(),
        "LINK".into(),
    ]];
    for shard in &layout.shards {
        // With zones in use, the primary's zone is shown next to its first replica's.
        let zone_cell = match shard.replicas.first() {
            Some(first) if inventory[shard.primary].zone.is_some() => format!(
                "{} / {}",
                zone(inventory, shard.primary),
                zone(inventory, *first)
            ),
            _ => zone(inventory, shard.primary),
        };
        let replica_cell = |r: usize| node_cell(inventory, obs, r, Some(shard.primary));
        rows.push([
            node_cell(inventory, obs, shard.primary, None),
            slots_cell(obs, shard.primary, &shard.slots),
            shard
                .replicas
                .first()
                .map_or("-".into(), |r| replica_cell(*r)),
            zone_cell,
            shard
                .replicas
                .first()
                .map_or("-".into(), |r| link_status(obs, *r, shard.primary)),
        ]);
        for replica in shard.replicas.iter().skip(1) {
            rows.push([
                String::new(),
                String::new(),
                replica_cell(*replica),
                String::new(),
                link_status(obs, *replica, shard.primary),
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

pub fn verdict_text(verdict: &Verdict, inventory: &[InventoryNode]) -> String {
    let mut out = String::new();
    for criterion in &verdict.criteria {
        let mark = match criterion.status() {
            Status::Met => "ok  ",
            Status::Failed => "FAIL",
            Status::Unknown => "??  ",
            Status::Warning => "WARN",
        };
        let _ = writeln!(out, "  {mark} {:<12} {}", criterion.id, criterion.title);
        for failure in &criterion.failures {
            let _ = writeln!(
                out,
                "         {}: {}",
                inventory[failure.node].label, failure.detail
            );
        }
        if !criterion.unchecked.is_empty() {
            let labels: Vec<&str> = criterion
                .unchecked
                .iter()
                .map(|idx| inventory[*idx].label.as_str())
                .collect();
            let _ = writeln!(out, "         not checked on {}", labels.join(", "));
        }
    }
    out
}

pub fn topology_json(layout: &Layout, inventory: &[InventoryNode], obs: &Observation) -> Value {
    let node_id = |i: usize| obs.view(i).map(|v| v.id.to_string());
    Value::Array(
        layout
            .shards
            .iter()
            .map(|shard| {
                json!({
                    "primary": inventory[shard.primary].label,
                    "node_id": node_id(shard.primary),
                    "zone": inventory[shard.primary].zone,
                    "slots": shard.slots.to_string(),
                    "slot_count": shard.slots.len(),
                    "observed": obs.view(shard.primary).is_some(),
                    "observed_slots": obs.view(shard.primary).map(|v| v.myself().slots.to_string()),
                    "replicas": shard.replicas.iter().map(|r| json!({
                        "node": inventory[*r].label,
                        "node_id": node_id(*r),
                        "zone": inventory[*r].zone,
                        "observed": obs.view(*r).is_some(),
                        "link": obs.view(*r).and_then(|v| v.info.primary_link_status().map(str::to_owned)),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

pub fn verdict_json(verdict: &Verdict, inventory: &[InventoryNode]) -> Value {
    Value::Array(
        verdict
            .criteria
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "title": c.title,
                    "passed": c.passed(),
                    "status": c.status().as_str(),
                    "failures": c.failures.iter().map(|f| json!({
                        "node": inventory[f.node].label,
                        "detail": f.detail,
                    })).collect::<Vec<_>>(),
                    "unchecked": c.unchecked.iter().map(|idx| &inventory[*idx].label).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

pub fn plan_json(
    plan: &Plan,
    inventory: &[InventoryNode],
    obs: &Observation,
    labels: &[String],
) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "command": "plan",
        "changes_pending": plan.has_changes(),
        "steps": plan.steps.iter().map(|s| json!({
            "kind": s.kind(),
            "node": labels[s.node()],
            "description": s.describe(labels),
        })).collect::<Vec<_>>(),
        "blockers": plan.blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "waiting": plan.waiting,
        "topology": plan.layout.as_ref().map(|l| topology_json(l, inventory, obs)),
        "notes": plan.layout.as_ref().map(|l| l.notes.clone()).unwrap_or_default(),
        "moves": plan.layout.as_ref().map(|l| l.moves.iter().map(|m| json!({
            "source": obs.label_of(&m.source, inventory),
            "target": obs.label_of(&m.target, inventory),
            "slots": m.slots.len(),
            "ranges": m.slots.to_string(),
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "move_engine": MoveEngine::for_nodes(obs).describe(),
    })
}

/// The one JSON document a command prints on stdout when it stops with an error, so that
/// `--format json` always yields exactly one document.
pub fn error_json(command: &str, exit_code: u8, error: &str, details: &Value) -> Value {
    let mut doc = json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "ok": false,
        "exit_code": exit_code,
        "error": error,
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), details.as_object()) {
        for (key, value) in extra {
            doc.insert(key.clone(), value.clone());
        }
    }
    doc
}

/// Every criterion, marked unknown with the reason: for a verdict that could not be reached.
pub fn unchecked_criteria_json(reason: &str) -> Value {
    Value::Array(
        clustersmith_core::verify::CRITERIA
            .iter()
            .map(|(id, title)| {
                json!({
                    "id": id,
                    "title": title,
                    "passed": false,
                    "status": "unknown",
                    "failures": [],
                    "unchecked": [],
                    "reason": reason,
                })
            })
            .collect(),
    )
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
