//! Slot counts that differ between primaries by more than one (CS322): the cluster serves
//! every slot, but one primary carries more keys and traffic than the others.

use crate::diagnose::EvidenceKind::Live;
use crate::diagnose::Severity::Warning;
use crate::diagnose::{Evidence, Hit, Inputs, Rule, Source};

pub static SLOTS_UNBALANCED: Rule = Rule {
    id: "CS322",
    name: "slots-unbalanced",
    severity: Warning,
    detects: "Primaries whose own `CLUSTER NODES` lines give them slot counts that differ by more than one (e.g. 8192 / 2731 / 5461).",
    why: "Keys and traffic follow slots: the fullest primary runs out of memory and CPU first, and its failover moves the most data. Such layouts come from two formation runs with different shapes, an interrupted reshard, or primaries added without moving slots.",
    fix: "`clustersmith plan` with the cluster's nodes and shape lists the fewest slot moves that even the counts, with the keys each carries; `clustersmith apply` makes them (keys move with MIGRATE, resumable). Plan it in a quiet hour: it moves keys.",
    false_positives: "A deliberately weighted layout (bigger primaries on bigger machines).",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: slots_unbalanced,
};

pub fn slots_unbalanced(inputs: &Inputs) -> Vec<Hit> {
    // Each primary's own word on what it owns (its `myself` line), one entry per node.
    let owned: Vec<(&str, usize)> = inputs
        .live()
        .filter(|(_, view)| !view.myself().is_replica() && !view.myself().slots.is_empty())
        .map(|(node, view)| (node.key.label(), view.myself().slots.len()))
        .collect();
    let (Some(min), Some(max)) = (
        owned.iter().map(|(_, n)| *n).min(),
        owned.iter().map(|(_, n)| *n).max(),
    ) else {
        return Vec::new();
    };
    if max - min <= 1 {
        return Vec::new();
    }
    let evidence: Vec<Evidence> = owned
        .iter()
        .map(|(label, n)| Evidence {
            source: Source::Live {
                node: (*label).to_owned(),
                reply: "CLUSTER NODES",
            },
            text: format!("myself owns {n} slots"),
        })
        .collect();
    vec![Hit {
        node: None,
        summary: format!(
            "the primaries own between {min} and {max} slots (differing by {}): the fullest carries about {:.1}× the keys and traffic of the emptiest",
            max - min,
            max as f64 / min as f64
        ),
        evidence,
    }]
}
