//! `clustersmith sandbox up|roll|down`: local clusters of real servers.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use anyhow::Context as _;
use clustersmith_core::spec::{ClusterSpec, NodeSpec, parse_node};
use clustersmith_io::conn::{ConnOpts, Secret, TlsOpts};
use clustersmith_io::operations::{ApplyOptions, apply};
use clustersmith_io::restart::SandboxRestarter;
use clustersmith_io::sandbox::{
    Sandbox, SandboxSpec, binary_version, find_server_binary, generate_password,
};

use super::roll::run_roll;
use super::{Run, open, plural};
use crate::args::{Format, SandboxDirArgs, SandboxRollArgs, SandboxUpArgs};
use crate::exit;
use crate::output::{errln, outln};
use crate::render::errors::report_run_error;
use crate::render::outcome::print_outcome;
use crate::render::progress::with_progress;

impl Run for SandboxUpArgs {
    fn name(&self) -> &'static str {
        "sandbox up"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(sandbox_up(self))
    }
}

impl Run for SandboxDirArgs {
    fn name(&self) -> &'static str {
        "sandbox down"
    }

    fn json(&self) -> bool {
        false
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(async move { sandbox_down(self) })
    }
}

fn sandbox_dir(args: &SandboxDirArgs) -> PathBuf {
    args.dir.clone().unwrap_or_else(|| {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("clustersmith/sandbox")
    })
}

async fn sandbox_up(args: &SandboxUpArgs) -> anyhow::Result<u8> {
    let dir = sandbox_dir(&args.dir);
    if dir.join("sandbox.state").exists() {
        anyhow::bail!(
            "a sandbox already exists in `{}`\nhint: stop it first with `clustersmith sandbox down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    if args.primaries == 0 {
        anyhow::bail!("--primaries must be at least 1 (nothing was started)");
    }
    let count = args.primaries * (1 + args.replicas);
    // The shape is checked on the addresses the servers will have, before any is started: a
    // refused `up` leaves nothing behind.
    let planned: Vec<_> = (0..count)
        .map(|i| {
            parse_node(&format!(
                "127.0.0.1:{}",
                u32::from(args.base_port) + i as u32
            ))
        })
        .collect::<Result<_, _>>()
        .context("sandbox addresses")?;
    ClusterSpec::new(planned, Some(args.primaries), Some(args.replicas))?;
    let bin = find_server_binary(args.server_bin.as_deref())?;
    errln!(
        "starting {} ({}) in `{}`",
        plural(count, "server", "servers"),
        bin.display(),
        dir.display()
    );
    let password = args.auth.then(generate_password).transpose()?;
    let sandbox = Sandbox::up(&SandboxSpec {
        bin,
        dir: dir.clone(),
        base_port: args.base_port,
        count,
        password: password.clone(),
        directives: Vec::new(),
        tls: args.tls,
    })?;
    let tls = sandbox.tls();
    let conn = sandbox_conn(&sandbox, password);
    let spec = ClusterSpec::new(
        sandbox_nodes(&sandbox)?,
        Some(args.primaries),
        Some(args.replicas),
    )?;
    let mut session = open(&spec, &conn, false).await?;
    let options = ApplyOptions::new(args.timeout);
    let result = with_progress(args.format == Format::Json, async |on_event| {
        apply(&mut session, &spec, &options, on_event).await
    })
    .await;
    let code = match result {
        Ok(outcome) => print_outcome(&outcome, args.format, "sandbox up"),
        Err(err) => report_run_error(&err, args.format, "sandbox up"),
    };
    if args.format == Format::Human {
        let first = sandbox.servers[0].port;
        let auth = sandbox.password_file().map_or(String::new(), |f| {
            format!(
                "REDISCLI_AUTH=\"$(cat {})\" ",
                shell_word(&f.display().to_string())
            )
        });
        let tls_flags = tls.as_ref().map_or(String::new(), |t| {
            format!(
                " --tls --cacert {} --cert {} --key {}",
                shell_word(&t.ca_cert.display().to_string()),
                shell_word(&t.client.cert.display().to_string()),
                shell_word(&t.client.key.display().to_string())
            )
        });
        // This very binary, by its path: `clustersmith` need not be on PATH (`cargo run`).
        let me = std::env::current_exe()
            .map(|p| shell_word(&p.display().to_string()))
            .unwrap_or_else(|_| "clustersmith".to_owned());
        outln!("connect:  {auth}redis-cli -c -p {first}{tls_flags}");
        outln!(
            "verify:   {auth}{me} verify --primaries {} {}{tls_flags}",
            args.primaries,
            sandbox.addrs().join(" ")
        );
        outln!(
            "stop:     {me} sandbox down --dir {}",
            shell_word(&dir.display().to_string())
        );
    }
    Ok(code)
}

/// How clustersmith reaches the sandbox's servers: its password and client certificate.
fn sandbox_conn(sandbox: &Sandbox, password: Option<Secret>) -> ConnOpts {
    ConnOpts {
        password,
        tls: sandbox.tls().map(|t| TlsOpts {
            cacert: Some(t.ca_cert),
            cert: Some(t.client.cert),
            key: Some(t.client.key),
            insecure: false,
            skip_hostname_check: false,
        }),
        ..ConnOpts::default()
    }
}

fn sandbox_nodes(sandbox: &Sandbox) -> anyhow::Result<Vec<NodeSpec>> {
    sandbox
        .addrs()
        .iter()
        .map(|a| parse_node(a))
        .collect::<Result<Vec<_>, _>>()
        .context("sandbox addresses")
}

impl Run for SandboxRollArgs {
    fn name(&self) -> &'static str {
        "sandbox roll"
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>> {
        Box::pin(sandbox_roll(self))
    }
}

/// Restarts every sandbox server through the roll (with `--server-bin`, upgrades them). The
/// roll's state is kept in the sandbox's directory.
async fn sandbox_roll(args: &SandboxRollArgs) -> anyhow::Result<u8> {
    let dir = sandbox_dir(&args.dir);
    let sandbox = Sandbox::load(&dir)?;
    // The version the nodes must end with: the new binary's, checked before anything.
    let target = args.server_bin.as_deref().map(binary_version).transpose()?;
    let password = match sandbox.password_file() {
        Some(file) => Some(Secret::new(
            std::fs::read_to_string(&file)
                .with_context(|| format!("read `{}`", file.display()))?
                .trim_end_matches('\n')
                .to_owned(),
        )),
        None => None,
    };
    let conn = sandbox_conn(&sandbox, password);
    let nodes = sandbox_nodes(&sandbox)?;
    let count = nodes.len();
    let spec = ClusterSpec::new(nodes, Some(count), Some(0))?;
    let mut session = open(&spec, &conn, false).await?;
    let state = args
        .roll
        .state
        .clone()
        .unwrap_or_else(|| dir.join("roll.state"));
    let restarter = SandboxRestarter::new(sandbox, args.server_bin.clone());
    run_roll(
        &mut session,
        Box::new(restarter),
        &args.roll,
        target,
        Some(state),
        args.format,
        "sandbox roll",
    )
    .await
}

/// A word the shell reads back as itself: quoted only when it needs to be.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn sandbox_down(args: &SandboxDirArgs) -> anyhow::Result<u8> {
    let dir = sandbox_dir(args);
    let sandbox = Sandbox::load(&dir)?;
    let count = sandbox.servers.len();
    sandbox.down()?;
    errln!(
        "stopped {} and removed `{}`",
        plural(count, "server", "servers"),
        dir.display()
    );
    Ok(exit::OK)
}
