//! `clustersmith diagnose`: gather evidence, run the rule registry, render the findings
//! (human and JSON) with their causes and symptoms.

use std::fmt::Write as _;

use clustersmith_core::diagnose::{
    Answer, Evidence, Expected, Finding, Severity, Source, diagnose, worst,
};
use clustersmith_core::spec::{ClusterSpec, parse_node};
use clustersmith_io::error::{NodeErrorKind, TlsProblem};
use clustersmith_io::evidence::{EvidenceFiles, gather};
use serde_json::{Value, json};

use super::{open, plural, refused_settings};
use crate::args::{DiagnoseArgs, FailOn, Format};
use crate::exit;
use crate::output::{out, outln};
use crate::render::SCHEMA_VERSION;
use crate::target::conn_opts;

pub async fn diagnose_cmd(args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let mut notes = Vec::new();
    let mut files = match &args.bosh_job {
        Some(job) => EvidenceFiles::bosh(&args.root, job, &mut notes),
        None => EvidenceFiles {
            root: args.root.clone(),
            ..Default::default()
        },
    };
    files.redis_conf.extend(args.redis_conf.iter().cloned());
    files.nodes_conf.extend(args.nodes_conf.iter().cloned());
    files.logs.extend(args.log.iter().cloned());
    files
        .post_deploy
        .extend(args.post_deploy_log.iter().cloned());

    // A named file that cannot be read stops the run before any node is asked: left out,
    // it would read as a cluster with nothing wrong.
    let unusable = files.unusable();
    if !unusable.is_empty() {
        anyhow::bail!(
            "cannot diagnose with {}: {}",
            plural(
                unusable.len(),
                "unusable evidence file",
                "unusable evidence files"
            ),
            unusable.join("; ")
        );
    }

    let expected = match (args.primaries, args.replicas) {
        (None, None) => None,
        (primaries, replicas) => Some((primaries, replicas)),
    };
    let mut session = if args.nodes.is_empty() {
        None
    } else {
        let nodes = args
            .nodes
            .iter()
            .map(|n| parse_node(n))
            .collect::<Result<Vec<_>, _>>()?;
        // Without an expected shape the nodes are only observed; any valid shape does.
        let count = nodes.len();
        let spec = match expected {
            Some((m, r)) => ClusterSpec::new(nodes, m, r)?,
            None => ClusterSpec::new(nodes, Some(count), None)?,
        };
        let conn = conn_opts(&args.conn)?;
        Some((open(&spec, &conn, args.prefer_ipv6).await?, spec))
    };
    let mut gathered = gather(session.as_mut().map(|(s, _)| s), &files).await;
    // One node speaking the other protocol (CS335) or refusing the credentials (CS338)
    // while others answer with the same settings is a fact about that node; when no node
    // answers, it is the settings given, and diagnose stops as every command does.
    let some_answered = gathered.inputs.nodes.iter().any(|n| n.live.is_some());
    let settings_errors = gathered.errors.iter().filter(|e| {
        !(some_answered
            && matches!(
                e.kind,
                NodeErrorKind::Tls(TlsProblem::PlaintextPort | TlsProblem::TlsOnlyPort)
                    | NodeErrorKind::NoAuth
                    | NodeErrorKind::AuthFailed
                    | NodeErrorKind::NoPermission(_)
            ))
    });
    if refused_settings("diagnose", args.format, settings_errors) {
        return Ok(exit::ERROR);
    }
    if let (Some((_, spec)), Some(_)) = (&session, expected) {
        gathered.inputs.expected = Some(Expected {
            primaries: spec.primaries,
            replicas_per_primary: spec.replicas_per_primary,
        });
    }
    if gathered.inputs.nodes.is_empty() && gathered.inputs.post_deploy.is_empty() {
        anyhow::bail!(
            "nothing to diagnose: give live nodes, evidence files or --bosh-job{}",
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        );
    }
    notes.extend(gathered.notes);
    let findings = diagnose(&gathered.inputs);
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Never => None,
    };
    let worst = worst(&findings);
    let failed = matches!((worst, threshold), (Some(w), Some(t)) if w >= t);
    match args.format {
        Format::Json => outln!(
            "{}",
            json!({
                "schema_version": SCHEMA_VERSION,
                "command": "diagnose",
                "nodes": gathered.inputs.nodes.iter().map(|n| json!({
                    "node": n.label,
                    "live": n.live.is_some(),
                    "unreachable": n.unreachable,
                    "answer": n.facts.as_ref().map(|f| answer_name(&f.answer)),
                    "version": n.facts.as_ref().and_then(|f| f.version.clone()),
                    "redis_conf": n.redis_conf.as_ref().map(|f| &f.path),
                    "nodes_conf": n.nodes_conf.as_ref().map(|f| &f.path),
                    "log": n.log.as_ref().map(|f| &f.path),
                })).collect::<Vec<_>>(),
                "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
                "worst": worst.map(Severity::as_str),
                "fail_on": format!("{:?}", args.fail_on).to_lowercase(),
                "failed": failed,
                "notes": notes,
            })
        ),
        Format::Human => {
            out!("{}", findings_text(&findings));
            for note in &notes {
                outln!("note: {note}");
            }
            let count = |s: Severity| findings.iter().filter(|f| f.rule.severity == s).count();
            outln!(
                "{} root cause(s): {}{} error, {} warning, {} info",
                findings.len(),
                match count(Severity::Critical) {
                    0 => String::new(),
                    n => format!("{n} critical (data loss), "),
                },
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info)
            );
        }
    }
    Ok(if failed {
        exit::VERIFY_FAILED
    } else {
        exit::OK
    })
}

/// How a node answered, for JSON: `member`, `refused`, `cluster-disabled`, …
fn answer_name(answer: &Answer) -> &'static str {
    match answer {
        Answer::Member => "member",
        Answer::Refused => "refused",
        Answer::TimedOut => "timed-out",
        Answer::Reset => "reset",
        Answer::OtherProtocol { wants_tls: true } => "tls-only",
        Answer::OtherProtocol { wants_tls: false } => "plaintext-only",
        Answer::ClusterDisabled => "cluster-disabled",
        Answer::ProtectedMode => "protected-mode",
        Answer::Loading => "loading",
        Answer::Refusing => "refusing-cluster-commands",
        Answer::AuthRefused => "auth-refused",
    }
}

fn evidence_line(e: &Evidence) -> String {
    format!("{}: {}", e.source, e.text)
}

/// ` on <node>` for a finding about one node, nothing for one about the whole cluster.
fn on_node(node: Option<&str>) -> String {
    node.map(|n| format!(" on {n}")).unwrap_or_default()
}

fn findings_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let on = on_node(f.node.as_deref());
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
            let on = on_node(s.node.as_deref());
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

fn evidence_json(e: &Evidence) -> Value {
    match &e.source {
        Source::Live { node, reply } => {
            json!({"source": "live", "node": node, "reply": reply, "text": e.text})
        }
        Source::File { path, line } => {
            json!({"source": "file", "path": path, "line": line, "text": e.text})
        }
        Source::Spec => json!({"source": "spec", "text": e.text}),
    }
}

/// A root cause (`explained_by` null) with its symptoms, each naming the cause that explains
/// it; a cause lists what it explains as `rule@node` keys.
fn finding_json(f: &Finding) -> Value {
    finding_json_under(f, None)
}

fn finding_key(f: &Finding) -> String {
    format!("{}@{}", f.rule.id, f.node.as_deref().unwrap_or("cluster"))
}

fn finding_json_under(f: &Finding, cause: Option<&Finding>) -> Value {
    json!({
        "id": f.rule.id,
        "name": f.rule.name,
        "severity": f.rule.severity.as_str(),
        "node": f.node,
        "summary": f.summary,
        "evidence": f.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        "fix": f.rule.fix,
        "explains": f.symptoms.iter().map(finding_key).collect::<Vec<_>>(),
        "explained_by": cause.map(finding_key),
        "symptoms": f.symptoms.iter().map(|s| finding_json_under(s, Some(f))).collect::<Vec<_>>(),
    })
}
