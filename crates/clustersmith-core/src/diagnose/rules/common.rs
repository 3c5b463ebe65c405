//! Helpers the checks of several families share.

use crate::diagnose::Evidence;
use crate::model::NodeId;
use crate::parse::NodeEntry;

/// At most this many evidence lines of one kind per finding; the rest are counted.
const EVIDENCE_CAP: usize = 6;

pub fn capped(mut evidence: Vec<Evidence>, what: &str) -> Vec<Evidence> {
    if evidence.len() > EVIDENCE_CAP {
        let more = evidence.len() - EVIDENCE_CAP;
        let source = evidence[0].source.clone();
        evidence.truncate(EVIDENCE_CAP);
        evidence.push(Evidence {
            source,
            text: format!("… and {more} more {what}"),
        });
    }
    evidence
}

/// One `CLUSTER NODES` entry, as the server prints it (slots summarised).
pub fn entry_text(entry: &NodeEntry) -> String {
    let primary = entry.primary_id.as_ref().map_or("-", NodeId::as_str);
    format!(
        "{} {} {} {} epoch {} slots {}",
        entry.id,
        entry.addr,
        entry.flags_text(),
        primary,
        entry.config_epoch,
        entry.slots
    )
}

/// `1.9 MiB`, `512 KiB`, `37 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
