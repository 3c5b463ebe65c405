//! `clustersmith diagnose`: evidence from live nodes and files, judged by the rule registry;
//! the findings rendered with their causes and symptoms.

use std::future::Future;
use std::pin::Pin;

use clustersmith_core::diagnose::{Severity, worst};
use clustersmith_io::operations::diagnose::{DiagnoseError, diagnose};

use super::{Looked, Run};
use crate::args::{DiagnoseArgs, FailOn, Format};
use crate::exit;
use crate::output::{out, outln};
use crate::render::errors::refused_settings;
use crate::render::findings::{findings_text, summary_line};
use crate::render::json::{self, DiagnoseDoc, DiagnosedNodeJson, FindingJson, SCHEMA_VERSION};
use crate::target::evidence_files;

impl Run for DiagnoseArgs {
    fn name(&self) -> &'static str {
        "diagnose"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(run(self))
    }
}

async fn run(args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let mut notes = Vec::new();
    let files = evidence_files(&args.look.evidence, &mut notes);
    let mut looked = Looked::open(&args.look).await?;
    let (session, spec) = looked.parts();
    let diagnosis = match diagnose(session, spec, &files, notes).await {
        Ok(diagnosis) => diagnosis,
        Err(DiagnoseError::Settings(errors)) => {
            refused_settings("diagnose", args.format, errors.iter());
            return Ok(exit::ERROR);
        }
        Err(err) => return Err(err.into()),
    };
    let findings = &diagnosis.findings;
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Never => None,
    };
    let worst = worst(findings);
    let failed = matches!((worst, threshold), (Some(w), Some(t)) if w >= t);
    match args.format {
        Format::Json => {
            let doc = DiagnoseDoc {
                schema_version: SCHEMA_VERSION,
                command: "diagnose",
                nodes: diagnosis
                    .inputs
                    .nodes
                    .iter()
                    .map(DiagnosedNodeJson::new)
                    .collect(),
                findings: findings.iter().map(|f| FindingJson::new(f, None)).collect(),
                worst: DiagnoseDoc::worst_name(worst),
                fail_on: format!("{:?}", args.fail_on).to_lowercase(),
                failed,
                notes: diagnosis.notes.clone(),
            };
            outln!("{}", json::to_text(&doc));
        }
        Format::Human => {
            out!("{}", findings_text(findings));
            for note in &diagnosis.notes {
                outln!("note: {note}");
            }
            outln!("{}", summary_line(findings));
        }
    }
    Ok(if failed {
        exit::VERIFY_FAILED
    } else {
        exit::OK
    })
}
