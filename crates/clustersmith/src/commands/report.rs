//! `clustersmith report`: the cluster in one self-contained HTML file, or the document behind
//! it as JSON; `--from` renders a saved document again without any server.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context as _;
use clustersmith_io::operations::diagnose::DiagnoseError;
use clustersmith_io::operations::report::report;

use super::{Looked, Run};
use crate::args::{Format, ReportArgs, ReportFormat};
use crate::exit;
use crate::output::{errln, outln};
use crate::render::errors::refused_settings;
use crate::render::report::doc::{REPORT_SCHEMA, ReportDoc, build};
use crate::render::report::html::render;
use crate::render::timestamp;
use crate::target::evidence_files;

impl Run for ReportArgs {
    fn name(&self) -> &'static str {
        "report"
    }

    fn json(&self) -> bool {
        self.format == ReportFormat::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(run(self))
    }
}

async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let doc = match &args.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let doc: ReportDoc = serde_json::from_str(&text).with_context(|| {
                format!("{} is not a clustersmith report document", path.display())
            })?;
            if doc.schema_version > REPORT_SCHEMA {
                anyhow::bail!(
                    "{} has schema_version {}; this clustersmith reads up to {REPORT_SCHEMA}",
                    path.display(),
                    doc.schema_version
                );
            }
            doc
        }
        None => match observe(args).await? {
            Some(doc) => doc,
            None => return Ok(exit::ERROR),
        },
    };
    let json = serde_json::to_string(&doc)?;
    match args.format {
        ReportFormat::Json => outln!("{json}"),
        ReportFormat::Html => {
            let html = render(&doc, &json);
            std::fs::write(&args.out, &html)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
            errln!(
                "wrote {} ({} bytes): {} nodes, {} findings",
                args.out.display(),
                html.len(),
                doc.nodes.len(),
                doc.findings.len()
            );
        }
    }
    Ok(exit::OK)
}

/// Reads the live nodes and the evidence files; `None` when the connection settings were
/// refused (already reported).
async fn observe(args: &ReportArgs) -> anyhow::Result<Option<ReportDoc>> {
    let mut notes = Vec::new();
    let files = evidence_files(&args.look.evidence, &mut notes);
    let mut looked = Looked::open(&args.look).await?;
    let (session, spec) = looked.parts();
    let generated_at = timestamp();
    let observed = match report(session, spec, &files, notes).await {
        Ok(observed) => observed,
        Err(DiagnoseError::Settings(errors)) => {
            let format = if args.format == ReportFormat::Json {
                Format::Json
            } else {
                Format::Human
            };
            refused_settings("report", format, errors.iter());
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    Ok(Some(build(
        generated_at,
        &observed.snapshot,
        &observed.diagnosis.inputs.nodes,
        observed.verdict.as_ref(),
        &observed.diagnosis.findings,
        observed.diagnosis.notes.clone(),
    )))
}
