//! The engine: every rule's check, the log catalog's lines attached, and the correlation
//! that hangs each symptom under the cause that explains it.

use super::{Finding, Hit, Inputs, RULES, Rule, Severity, log_catalog, reach};

/// Runs every rule and ranks the findings: causes with their symptoms, by severity.
pub fn diagnose(inputs: &Inputs) -> Vec<Finding> {
    inputs.live_snapshot_memo.clear();
    let findings: Vec<Finding> = RULES
        .iter()
        .copied()
        .flat_map(|rule| {
            hits_of(rule, inputs).into_iter().map(move |hit| Finding {
                rule,
                node: hit.node,
                summary: hit.summary,
                evidence: hit.evidence,
                symptoms: Vec::new(),
            })
        })
        .collect();
    correlate(findings, inputs)
}

/// A rule's hits: its check's, with the server log lines the catalog assigns to the rule.
pub fn rule_hits(rule: &Rule, inputs: &Inputs) -> Vec<Hit> {
    inputs.live_snapshot_memo.clear();
    hits_of(rule, inputs)
}

/// [`rule_hits`] within a diagnosis, sharing its live snapshot with the other rules.
pub(super) fn hits_of(rule: &Rule, inputs: &Inputs) -> Vec<Hit> {
    let mut hits = (rule.check)(inputs);
    log_catalog::attach(rule, inputs, &mut hits);
    hits
}

/// Moves each symptom under the cause that explains it, directly or through other symptoms
/// (a hostname given to MEET → a node that knows only itself → slots not covered), on the same
/// node; a cause without a node explains its symptoms everywhere, and a node that is not a
/// working member explains what it breaks on its peers (see `reach`).
fn correlate(findings: Vec<Finding>, inputs: &Inputs) -> Vec<Finding> {
    let explains = |cause: &Finding, symptom: &Finding| {
        !std::ptr::eq(symptom.rule, cause.rule)
            && cause.rule.explains_rule(symptom.rule)
            && (cause.node.is_none()
                || cause.node == symptom.node
                || reach::explains_elsewhere(inputs, cause, symptom))
    };
    let n = findings.len();
    let parent: Vec<Option<usize>> = (0..n)
        .map(|i| (0..n).find(|&j| explains(&findings[j], &findings[i])))
        .collect();
    // Follow explanations up to a finding nothing explains (bounded: the registry has no
    // cycles, which a test checks).
    let root = |mut i: usize| {
        for _ in 0..n {
            match parent[i] {
                Some(p) => i = p,
                None => return i,
            }
        }
        i
    };
    let roots: Vec<usize> = (0..n).map(root).collect();
    let mut causes: Vec<Finding> = Vec::new();
    let mut index_of_root = vec![usize::MAX; n];
    for i in (0..n).filter(|i| roots[*i] == *i) {
        index_of_root[i] = causes.len();
        causes.push(findings[i].clone());
    }
    for i in (0..n).filter(|i| roots[*i] != *i) {
        causes[index_of_root[roots[i]]]
            .symptoms
            .push(findings[i].clone());
    }
    causes.sort_by(|a, b| {
        b.rule
            .severity
            .cmp(&a.rule.severity)
            .then(b.symptoms.len().cmp(&a.symptoms.len()))
            .then(a.rule.id.cmp(b.rule.id))
            .then(a.node.cmp(&b.node))
    });
    causes
}

/// The highest severity among findings and their symptoms.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings
        .iter()
        .flat_map(|f| {
            std::iter::once(f.rule.severity).chain(f.symptoms.iter().map(|s| s.rule.severity))
        })
        .max()
}
