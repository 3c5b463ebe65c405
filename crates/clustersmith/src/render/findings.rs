//! `diagnose`'s findings for people: each root cause with its evidence, its symptoms and its
//! fix, then the count by severity.

use std::fmt::Write as _;

use clustersmith_core::diagnose::{Evidence, Finding, Severity};

fn evidence_line(e: &Evidence) -> String {
    format!("{}: {}", e.source, e.text)
}

/// ` on <node>` for a finding about one node, nothing for one about the whole cluster.
fn on_node(node: Option<&str>) -> String {
    node.map(|n| format!(" on {n}")).unwrap_or_default()
}

pub fn findings_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let on = on_node(f.node.as_ref().map(|k| k.label()));
        let _ = writeln!(
            out,
            "{} {} {}{on}",
            f.rule.severity.as_str().to_uppercase(),
            f.rule.id,
            f.rule.name
        );
        let _ = writeln!(out, "  {}", f.summary);
        for e in &f.evidence {
            let _ = writeln!(out, "    {}", evidence_line(e));
        }
        for s in &f.symptoms {
            let on = on_node(s.node.as_ref().map(|k| k.label()));
            let _ = writeln!(
                out,
                "  symptom {} {}{on}: {}",
                s.rule.id, s.rule.name, s.summary
            );
            for e in &s.evidence {
                let _ = writeln!(out, "      {}", evidence_line(e));
            }
        }
        let _ = writeln!(out, "  fix: {}", f.rule.fix);
        let _ = writeln!(out);
    }
    out
}

/// `3 root cause(s): 1 error, 2 warning, 0 info` (critical ones first when there are any).
pub fn summary_line(findings: &[Finding]) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.rule.severity == s).count();
    format!(
        "{} root cause(s): {}{} error, {} warning, {} info",
        findings.len(),
        match count(Severity::Critical) {
            0 => String::new(),
            n => format!("{n} critical (data loss), "),
        },
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    )
}
