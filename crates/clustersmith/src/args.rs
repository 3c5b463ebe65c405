//! Command-line arguments (clap derive). Only this module knows clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::Run;

/// Form, verify and diagnose Redis / Valkey clusters.
#[derive(Debug, Parser)]
#[command(name = "clustersmith", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `apply` would change; changes nothing. Exit 4 when changes are pending.
    Plan(PlanArgs),
    /// Form the cluster: reconcile live state toward the plan until it verifies.
    Apply(ApplyArgs),
    /// Check the cluster against the expected topology, criterion by criterion.
    Verify(VerifyArgs),
    /// Find root causes from live nodes, redis.conf, nodes.conf and logs. Exit 1 when a
    /// finding reaches --fail-on.
    Diagnose(DiagnoseArgs),
    /// Hand a primary's role to its fittest replica (a coordinated CLUSTER FAILOVER) and wait
    /// until every node agrees; a replica is left as it is. Exit 2 when no replica is fit.
    Handoff(HandoffArgs),
    /// Move a node's slots, keys and all, to the other primaries that serve slots, and re-home
    /// its replicas onto them, before its machine goes away (a scale-in). The node stays a
    /// member owning nothing; `apply --remove-unlisted` forgets it once it is gone.
    Evacuate(EvacuateArgs),
    /// Write one self-contained HTML file showing the cluster: verdict, shards, the slot map,
    /// who sees whom and diagnose's findings, with the data embedded as JSON (`--from`
    /// renders a saved one again). Changes nothing.
    Report(ReportArgs),
    /// A live view in the terminal: shards, roles, links, slot coverage, moves in progress,
    /// and an event log (failovers, nodes failing and recovering, role changes, slots moved,
    /// members joining and forgotten). One read round of every node per interval; sends
    /// nothing that changes anything. `q` quits.
    Watch(WatchArgs),
    /// Restart (or upgrade) every node once, without a writer noticing: replicas first, then
    /// each primary after handing its role to a fit replica. Resumable: a re-run finishes a
    /// roll that was interrupted, restarting no node twice.
    Roll(RollArgs),
    /// Explain a diagnosis rule (or list them all), from the rule registry.
    Explain(ExplainArgs),
    /// Local clusters of real server processes on loopback.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
}

impl Command {
    /// The subcommand to run: one arm per command.
    pub fn runner(&self) -> &dyn Run {
        match self {
            Command::Plan(args) => args,
            Command::Apply(args) => args,
            Command::Verify(args) => args,
            Command::Diagnose(args) => args,
            Command::Handoff(args) => args,
            Command::Evacuate(args) => args,
            Command::Report(args) => args,
            Command::Watch(args) => args,
            Command::Roll(args) => args,
            Command::Explain(args) => args,
            Command::Sandbox(SandboxCommand::Up(args)) => args,
            Command::Sandbox(SandboxCommand::Roll(args)) => args,
            Command::Sandbox(SandboxCommand::Down(args)) => args,
        }
    }
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// The node to hand over, as HOST:PORT; its cluster is found from its own view.
    #[arg(value_name = "HOST:PORT")]
    pub node: String,
    /// The replica to take over (HOST:PORT as the cluster lists it); default: the fittest
    /// (link up, flagged by no node, least behind, outside the primary's zone or host).
    #[arg(long, value_name = "HOST:PORT")]
    pub to: Option<String>,
    /// The most a replica may lag behind its primary's replication stream to take over, in
    /// bytes; also how close the old primary must follow the new one at the end.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_lag: u64,
    /// Give up after this many seconds (exit 3); fractions allowed, at most a week.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// `CLUSTER FAILOVER FORCE`: take over without the primary's agreement (for a primary
    /// that is down). Writes it acknowledged that the replica had not received are lost.
    #[arg(long, conflicts_with = "takeover_without_agreement")]
    pub force_may_lose_writes: bool,
    /// `CLUSTER FAILOVER TAKEOVER`: without the primary's nor the other primaries'
    /// agreement. Unreplicated writes are lost, and two nodes may claim the slots until the
    /// config epochs settle.
    #[arg(long)]
    pub takeover_without_agreement: bool,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct EvacuateArgs {
    /// The node to evacuate, as HOST:PORT; its cluster is found from its own view.
    #[arg(value_name = "HOST:PORT")]
    pub node: String,
    /// Give up after this many seconds (exit 3; a slot move under way is left open and the
    /// next run finishes it); fractions allowed, at most a week.
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RollArgs {
    /// Nodes of the cluster as HOST:PORT (one is enough): the other members are found from
    /// their views.
    #[arg(value_name = "HOST:PORT", required = true)]
    pub nodes: Vec<String>,
    /// How to restart one node's server: a command with {host}, {ip} and {port} filled in,
    /// run without a shell (e.g. `ssh {host} sudo systemctl restart redis@{port}`). It must
    /// return once the server was restarted.
    #[arg(long, value_name = "COMMAND")]
    pub restart_cmd: String,
    /// Run --restart-cmd with `sh -c` (pipes, `&&`): {host} is quoted for the shell.
    #[arg(long)]
    pub restart_shell: bool,
    /// Kill a restart command still running after this many seconds, and stop the roll.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_seconds)]
    pub restart_timeout: Duration,
    #[command(flatten)]
    pub roll: RollFlags,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What `roll` and `sandbox roll` share.
#[derive(Debug, Args)]
pub struct RollFlags {
    /// At the end, hand the primary role back to the nodes that held it when the roll began.
    #[arg(long)]
    pub failback: bool,
    /// Restart a primary that has no fit replica anyway: its slots refuse writes until it is
    /// back (the roll names them). Without it the roll stops before that shard (CS360).
    #[arg(long)]
    pub allow_downtime: bool,
    /// The most a replica may lag behind its primary's replication stream to take over, in
    /// bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_lag: u64,
    /// Give up after this many seconds (exit 3; a re-run resumes); fractions allowed, at most
    /// a week.
    #[arg(long, value_name = "SECS", default_value = "3600", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Where the roll keeps its start while it is not done [default: a file named after the
    /// cluster under $XDG_STATE_HOME/clustersmith; the sandbox's directory for sandbox roll].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Start a new roll, ignoring an unfinished one's state (its nodes are restarted again).
    #[arg(long)]
    pub fresh: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, value_enum, default_value_t = VerifyFormat::Human)]
    pub format: VerifyFormat,
}

/// `verify`'s output: as every command's, or as Prometheus gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Human,
    Json,
    /// Gauges in the text exposition format, for node_exporter's textfile collector
    /// (docs/prometheus.md); errors still go to stderr, and the exit code is verify's.
    Prometheus,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub look: LookArgs,
    /// Exit 1 when a finding has at least this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What `diagnose` and `report` look at: live nodes, the expected shape, evidence files.
#[derive(Debug, Args)]
pub struct LookArgs {
    /// Live nodes as HOST:PORT (optional: files alone can be diagnosed); the cluster's other
    /// members are found from their views.
    #[arg(value_name = "HOST:PORT")]
    pub nodes: Vec<String>,
    /// Expected number of primaries: enables the checks against an expected topology (every
    /// verify criterion, in a report).
    #[arg(long, short = 'm', value_name = "M")]
    pub primaries: Option<usize>,
    /// Expected replicas per primary.
    #[arg(long, short = 'r', value_name = "R")]
    pub replicas: Option<usize>,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Evidence files, as `diagnose` and `report` read them.
#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// A node's redis.conf (repeatable); attached to its node by the ids in the files it
    /// names (logfile, dir + cluster-config-file), else by port and bind.
    #[arg(long, value_name = "FILE")]
    pub redis_conf: Vec<PathBuf>,
    /// A node's nodes.conf (repeatable); attached to the node whose redis.conf names it,
    /// else by id.
    #[arg(long, value_name = "FILE")]
    pub nodes_conf: Vec<PathBuf>,
    /// A server log (repeatable); attached to the node whose redis.conf names it as
    /// `logfile`, else by the id it logged. Read line by line (any size).
    #[arg(long, value_name = "FILE")]
    pub log: Vec<PathBuf>,
    /// A post-deploy (formation script) log (repeatable).
    #[arg(long, value_name = "FILE")]
    pub post_deploy_log: Vec<PathBuf>,
    /// Read the standard BOSH layout of this job: /var/vcap/jobs/NAME/config/redis.conf,
    /// /var/vcap/sys/log/NAME/{NAME.log,post-deploy.stderr.log}, the logfile and nodes.conf
    /// redis.conf names and its TLS files, all as one node's.
    #[arg(long, value_name = "NAME")]
    pub bosh_job: Option<String>,
    /// Read files under this directory instead of / (a copy of a VM's files).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub look: LookArgs,
    /// Render the report from a document saved with `--format json` (or taken out of a
    /// report's `clustersmith-snapshot` script), reading no server.
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub from: Option<PathBuf>,
    /// Where to write the HTML report.
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        default_value = "cluster-report.html"
    )]
    pub out: PathBuf,
    /// `html` writes --out; `json` prints the report's document on stdout instead.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Nodes as HOST:PORT; the cluster's other members are found from their views.
    #[arg(value_name = "HOST:PORT", required = true)]
    pub nodes: Vec<String>,
    /// Seconds between two read rounds (at least 0.2).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_seconds(text)?;
    if interval < Duration::from_millis(200) {
        return Err("at least 0.2 seconds: each interval reads every node".to_owned());
    }
    Ok(interval)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Info,
    Warning,
    Error,
    Never,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule id (CS202) or name (replication-auth-missing); all rules when omitted.
    pub rule: Option<String>,
    #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
    pub format: ExplainFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Human,
    Json,
    /// The rule reference (docs/rules.md is this output).
    Markdown,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Nodes as HOST:PORT (hostname, IPv4 or [IPv6]), optionally `,zone=NAME`.
    #[arg(value_name = "HOST:PORT")]
    pub nodes: Vec<String>,
    /// A TOML spec file with the same content as the flags.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Number of primaries.
    #[arg(long, short = 'm', value_name = "M")]
    pub primaries: Option<usize>,
    /// Replicas per primary.
    #[arg(long, short = 'r', value_name = "R")]
    pub replicas: Option<usize>,
    /// Pick the IPv6 address when a name resolves to both families.
    #[arg(long)]
    pub prefer_ipv6: bool,
    /// Members of the cluster that are not listed here leave it: their slots and keys move to
    /// the listed primaries, then every listed node forgets them. They are left running.
    #[arg(long)]
    pub remove_unlisted: bool,
    /// Reset members removed from the cluster with `CLUSTER RESET HARD`, so that they forget
    /// it too and take a new node id (one that became a replica stops replicating and drops
    /// its copy of the data): with --remove-unlisted, each once every listed node has
    /// forgotten it; and any listed node left over from an earlier removal (it still follows a
    /// primary that no longer lists it) before it joins again. The new id lets a removed node
    /// be added back at once: every node refuses an id it was told to forget for 60 s.
    #[arg(long)]
    pub reset_removed: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Give up after this many seconds (exit 3); fractions allowed, at most a week.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// When a moved key already exists on its new primary, overwrite it there (`MIGRATE …
    /// REPLACE`). Without it, such a slot stops the run (exit 2) and nothing is overwritten.
    #[arg(long)]
    pub replace: bool,
    /// How slots move: `auto` picks `atomic` when every node supports it (Valkey 9+), else
    /// `classic` (SETSLOT + MIGRATE driven by clustersmith).
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
    pub move_engine: EngineChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    Auto,
    Classic,
    Atomic,
}

/// Connection options; names follow redis-cli where it has them. The password comes from
/// `REDISCLI_AUTH`, `--password-file` or `--askpass`, never from an argument.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// ACL user name.
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password from this file (first line).
    #[arg(long, value_name = "FILE", conflicts_with = "askpass")]
    pub password_file: Option<PathBuf>,
    /// Prompt for the password on the terminal (not echoed).
    #[arg(long)]
    pub askpass: bool,
    /// Connect with TLS.
    #[arg(long)]
    pub tls: bool,
    /// CA certificate file to verify the nodes' certificates.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (for `tls-auth-clients`).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Do not verify certificates at all.
    #[arg(long)]
    pub insecure: bool,
    /// Verify the certificate chain but not the name in it (redis-cli's behaviour).
    #[arg(long)]
    pub tls_skip_hostname_check: bool,
    /// Connect timeout per node, in milliseconds (1 to 3600000).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub connect_timeout: u64,
    /// Response timeout per command, in milliseconds (1 to 3600000).
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub response_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start servers on 127.0.0.1, form them into a cluster and verify it.
    Up(SandboxUpArgs),
    /// Stop the sandbox's servers (by recorded PID) and remove its directory.
    Down(SandboxDirArgs),
    /// Restart every sandbox server through `roll` (with --server-bin: upgrade them).
    Roll(SandboxRollArgs),
}

#[derive(Debug, Args)]
pub struct SandboxRollArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// Restart the servers with this binary (an upgrade); default: the one they run.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    #[command(flatten)]
    pub roll: RollFlags,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SandboxUpArgs {
    #[arg(long, short = 'm', default_value_t = 3)]
    pub primaries: usize,
    #[arg(long, short = 'r', default_value_t = 1)]
    pub replicas: usize,
    /// First client port; bus ports are +10000 and must stay below 32768.
    #[arg(long, default_value_t = 21001)]
    pub base_port: u16,
    /// Server binary (redis-server or valkey-server); default: found on PATH.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// TLS-only nodes (tls-cluster, tls-replication) with certificates from a throwaway CA.
    #[arg(long)]
    pub tls: bool,
    /// Protect the nodes with a generated password (requirepass + masterauth), kept in a
    /// 0600 file in the sandbox directory, never on a command line.
    #[arg(long)]
    pub auth: bool,
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// Give up forming after this many seconds; fractions allowed, at most a week.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SandboxDirArgs {
    /// Sandbox state directory [default: $XDG_STATE_HOME/clustersmith/sandbox].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The longest per-call timeout: an hour. Longer only hides a dead node.
const MAX_MS: u64 = 3_600_000;

/// The longest `--timeout`: a week, far beyond any formation, and far from the overflow of
/// `Instant + Duration` that an `inf` or `1e20` would cause.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Seconds as a finite, non-negative number up to a week (`1.5`, `60`); `inf`, `nan` and
/// negative values are refused here, with the flag named by clap.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=MAX_SECONDS).contains(&secs) {
        return Err(format!(
            "`{text}` is out of range: give seconds from 0 to {MAX_SECONDS} (a week)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_finite_and_bounded() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        for bad in [
            "inf", "-inf", "nan", "NaN", "1e20", "-1", "", "ten", "604801",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
