//! `clustersmith verify`: the live cluster against the expected topology, criterion by criterion.

use clustersmith_io::operations::verify_once;
use serde_json::json;

use super::{hints_by_node, open, refused_settings};
use crate::args::{Format, TargetArgs};
use crate::exit;
use crate::output::{out, outln};
use crate::render;
use crate::target::{cluster_spec, conn_opts};

pub async fn verify_cmd(args: &TargetArgs) -> anyhow::Result<u8> {
    let spec = cluster_spec(args)?;
    let conn = conn_opts(&args.conn)?;
    let mut session = open(&spec, &conn, args.prefer_ipv6).await?;
    let checked = verify_once(&mut session, &spec).await;
    if refused_settings("verify", args.format, checked.errors.iter().flatten()) {
        return Ok(exit::ERROR);
    }
    let obs = checked.observation;
    let (layout, verdict) = match checked.outcome {
        Ok(found) => found,
        Err(blockers) => {
            match args.format {
                Format::Json => outln!(
                    "{}",
                    json!({
                        "schema_version": render::SCHEMA_VERSION,
                        "command": "verify",
                        "passed": false,
                        "blockers": blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        // Not evaluated: with a blocker there is no target layout to check against.
                        "criteria": render::unchecked_criteria_json("blocked: the live cluster cannot match the spec"),
                    })
                ),
                Format::Human => {
                    outln!("FAIL: the live cluster cannot match the spec:");
                    for blocker in &blockers {
                        outln!("  {blocker}");
                    }
                }
            }
            return Ok(exit::VERIFY_FAILED);
        }
    };
    match args.format {
        Format::Json => outln!(
            "{}",
            json!({
                "schema_version": render::SCHEMA_VERSION,
                "command": "verify",
                "passed": verdict.passed(),
                "topology": render::topology_json(&layout, &session.inventory, &obs),
                "criteria": render::verdict_json(&verdict, &session.inventory),
                "notes": layout.notes,
            })
        ),
        Format::Human => {
            out!(
                "{}",
                render::topology_table(&layout, &session.inventory, &obs)
            );
            out!("{}", render::verdict_text(&verdict, &session.inventory));
            for note in &layout.notes {
                outln!("note: {note}");
            }
            for (hint, nodes) in hints_by_node(checked.errors.iter().flatten()) {
                outln!("hint for {}: {hint}", nodes.join(", "));
            }
            outln!("{}", if verdict.passed() { "PASS" } else { "FAIL" });
        }
    }
    Ok(if verdict.passed() {
        exit::OK
    } else {
        exit::VERIFY_FAILED
    })
}
