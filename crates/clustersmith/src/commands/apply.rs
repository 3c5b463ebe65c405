//! `clustersmith apply`: formation and reshaping until the cluster matches the spec.

use std::future::Future;
use std::pin::Pin;

use clustersmith_core::plan::MoveEngine;
use clustersmith_io::operations::{ApplyOptions, apply};

use super::{Run, open};
use crate::args::{ApplyArgs, EngineChoice, Format};
use crate::render::errors::report_run_error;
use crate::render::outcome::print_outcome;
use crate::render::progress::with_progress;
use crate::target::{cluster_spec, conn_opts};

impl Run for ApplyArgs {
    fn name(&self) -> &'static str {
        "apply"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move {
            let spec = cluster_spec(&self.target)?;
            let conn = conn_opts(&self.target.conn)?;
            let mut session = open(&spec, &conn, self.target.prefer_ipv6).await?;
            let options = ApplyOptions {
                timeout: self.timeout,
                remove_unlisted: self.target.remove_unlisted,
                replace: self.replace,
                engine: match self.move_engine {
                    EngineChoice::Auto => None,
                    EngineChoice::Classic => Some(MoveEngine::Classic),
                    EngineChoice::Atomic => Some(MoveEngine::Atomic),
                },
            };
            let result = with_progress(self.json(), async |on_event| {
                apply(&mut session, &spec, &options, on_event).await
            })
            .await;
            Ok(match result {
                Ok(outcome) => print_outcome(&outcome, self.format, self.name()),
                Err(err) => report_run_error(&err, self.format, self.name()),
            })
        })
    }
}
