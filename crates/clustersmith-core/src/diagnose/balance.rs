//! Slot counts that differ between primaries by more than one: the cluster serves every slot,
//! but one primary carries more keys and traffic than the others.

use super::{Evidence, Hit, Inputs, Source};

pub fn slots_unbalanced(inputs: &Inputs) -> Vec<Hit> {
    // Each primary's own word on what it owns (its `myself` line), one entry per node.
    let owned: Vec<(&str, usize)> = inputs
        .live()
        .filter(|(_, view)| !view.myself().is_replica() && !view.myself().slots.is_empty())
        .map(|(node, view)| (node.label.as_str(), view.myself().slots.len()))
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
