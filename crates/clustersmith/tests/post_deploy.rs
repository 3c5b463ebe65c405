//! `contrib/bosh/post-deploy` in the network-namespace bed (see support/netns.rs): each job's
//! files in the BOSH layout under a root directory of its own, the script installed as the
//! job's `bin/post-deploy` and run on the bootstrap instance's host (whose namespace resolves
//! the BOSH names), its stderr appended to `/var/vcap/sys/log/JOB/post-deploy.stderr.log` as
//! BOSH does. What the script claims is checked on the servers: `CLUSTER NODES`,
//! `CLUSTER INFO`, `INFO replication`, `INFO commandstats`. Needs root for the bed; without it
//! those tests say SKIPPED.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::netns::{NsLoad, TestBed};
use support::{changing_commands, clusterdown_blips_explained};

const JOB: &str = "cluster-6";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../contrib/bosh/post-deploy"
);
/// Every variable the script reads: the test sets the ones it needs and no other leaks in.
const SCRIPT_VARS: &[&str] = &[
    "CLUSTERSMITH_ROOT",
    "CLUSTERSMITH_JOB",
    "CLUSTERSMITH_BIN",
    "CLUSTERSMITH_TIMEOUT",
    "CLUSTERSMITH_SPEC",
    "CLUSTERSMITH_TLS_DIR",
    "CLUSTERSMITH_PASSWORD_FILE",
    "CLUSTERSMITH_BOOTSTRAP_FILE",
    "REDISCLI_AUTH",
];

/// One deployment's job on its bootstrap instance: a root directory with the BOSH layout.
struct Job {
    root: tempfile::TempDir,
    servers: Vec<usize>,
    password: Option<String>,
}

impl Job {
    /// Installs the job for `servers` (the first one is the bootstrap instance's): the
    /// layout, the script as `bin/post-deploy`, the spec as the ERB in docs/bosh.md renders
    /// it, and the password file when there is a password.
    fn install(
        bed: &TestBed,
        servers: &[usize],
        primaries: usize,
        replicas: usize,
        password: Option<&str>,
    ) -> Job {
        let root = tempfile::tempdir().unwrap();
        let dir = bed.write_bosh_job(root.path(), JOB, servers[0]);
        let script = dir.join("bin/post-deploy");
        std::fs::copy(SCRIPT, &script).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = format!(
            "# rendered by BOSH from the redis link\nprimaries = {primaries}\nreplicas = {replicas}\nnode = [\n"
        );
        for node in bed.node_args(servers, true) {
            spec.push_str(&format!("  {{ addr = \"{node}\" }},\n"));
        }
        spec.push_str("]\n");
        std::fs::write(dir.join("config/cluster.toml"), spec).unwrap();
        if let Some(password) = password {
            let file = dir.join("config/password");
            std::fs::write(&file, format!("{password}\n")).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Job {
            root,
            servers: servers.to_vec(),
            password: password.map(str::to_owned),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("var/vcap/jobs").join(JOB)
    }

    fn log_path(&self) -> PathBuf {
        self.root
            .path()
            .join("var/vcap/sys/log")
            .join(JOB)
            .join("post-deploy.stderr.log")
    }

    /// Runs `bin/post-deploy` on the bootstrap instance's host as BOSH would (stderr appended
    /// to the job's post-deploy.stderr.log); returns its exit code and this run's part of
    /// the log. The job name comes from the script's own path.
    fn deploy(&self, bed: &TestBed, timeout_secs: u32) -> (Option<i32>, String) {
        let before = std::fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let host = &bed.hosts[bed.servers[self.servers[0]].host];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns])
            .arg(self.dir().join("bin/post-deploy"));
        for var in SCRIPT_VARS {
            cmd.env_remove(var);
        }
        let started = Instant::now();
        let mut child = cmd
            .env("CLUSTERSMITH_ROOT", self.root.path())
            .env("CLUSTERSMITH_BIN", env!("CARGO_BIN_EXE_clustersmith"))
            .env("CLUSTERSMITH_TIMEOUT", timeout_secs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        // Bounded: apply's own timeout, diagnose's connection timeouts, and slack.
        let status = wait_bounded(
            &mut child,
            Duration::from_secs(u64::from(timeout_secs) + 60),
            "post-deploy",
        );
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        let text = std::fs::read_to_string(self.log_path()).unwrap();
        let this_run = text[before..].to_owned();
        eprintln!(
            "--- post-deploy on {} -> {:?} in {:.1}s\n{this_run}---",
            host.ns,
            status.code(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            stdout.is_empty(),
            "the script wrote to stdout, not to the log:\n{stdout}"
        );
        if let Some(password) = &self.password {
            assert!(
                !text.contains(password.as_str()),
                "the password is in the log"
            );
        }
        // The script's own lines carry a UTC timestamp.
        for line in this_run.lines().filter(|l| l.contains("] post-deploy: ")) {
            assert!(
                line.starts_with("[20") && line[1..].split_once("Z] ").is_some(),
                "no timestamp: {line}"
            );
        }
        (status.code(), this_run)
    }

    /// redis-cli from the bed's client namespace, by IP, with the job's TLS client
    /// certificate and password (in the environment, as redis-cli reads it).
    fn cli(&self, bed: &TestBed, idx: usize, args: &[&str]) -> String {
        let s = &bed.servers[idx];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &bed.client, "redis-cli", "-h"])
            .arg(bed.hosts[s.host].ip.to_string())
            .args(["-p", &s.port.to_string()])
            .args(bed.tls_args())
            .args(args);
        match &self.password {
            Some(password) => cmd.env("REDISCLI_AUTH", password),
            None => cmd.env_remove("REDISCLI_AUTH"),
        };
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    }

    /// `field:value` from an INFO section or CLUSTER INFO.
    fn field(&self, bed: &TestBed, idx: usize, command: &[&str], key: &str) -> String {
        self.cli(bed, idx, command)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {key} in {command:?} of server {idx}"))
    }
}

/// Waits for a script the test started; kills it and fails the test after `limit`.
fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {:?}", started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `CLUSTER NODES` line.
#[derive(Clone, Debug)]
struct Entry {
    id: String,
    ip: String,
    port: u16,
    flags: BTreeSet<String>,
    primary: String,
    epoch: String,
    link: String,
    slots: Vec<String>,
}

fn cluster_nodes(text: &str) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() >= 8, "not a CLUSTER NODES line: {line}");
            let addr = f[1].split(['@', ',']).next().unwrap();
            let (ip, port) = addr.rsplit_once(':').unwrap();
            Entry {
                id: f[0].to_owned(),
                ip: ip.to_owned(),
                port: port.parse().unwrap(),
                flags: f[2].split(',').map(str::to_owned).collect(),
                primary: f[3].to_owned(),
                epoch: f[6].to_owned(),
                link: f[7].to_owned(),
                slots: f[8..].iter().map(|s| (*s).to_owned()).collect(),
            }
        })
        .collect()
}

fn slot_count(slots: &[String]) -> usize {
    slots
        .iter()
        .map(|s| {
            assert!(!s.starts_with('['), "open slot {s}");
            match s.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            }
        })
        .sum()
}

/// Every member's role (primary or not), primary and slots, by id: what all views must share.
type View = BTreeMap<String, (bool, String, Vec<String>)>;

/// The cluster as the servers report it, checked against the shape: every node lists
/// exactly the job's nodes, all connected and agreeing; `primaries` primaries own all 16384
/// slots with `replicas` replicas each, none on its primary's host (one zone per host); every
/// replica's link is up (`INFO replication`); `cluster_state:ok` everywhere.
fn assert_formed(bed: &TestBed, job: &Job, primaries: usize, replicas: usize) {
    let expected: BTreeSet<(String, u16)> = job
        .servers
        .iter()
        .map(|i| {
            let s = &bed.servers[*i];
            (bed.hosts[s.host].ip.to_string(), s.port)
        })
        .collect();
    let mut first_view: Option<View> = None;
    let mut entries_of_view = Vec::new();
    for idx in &job.servers {
        let text = job.cli(bed, *idx, &["CLUSTER", "NODES"]);
        let entries = cluster_nodes(&text);
        let addrs: BTreeSet<(String, u16)> =
            entries.iter().map(|e| (e.ip.clone(), e.port)).collect();
        assert_eq!(addrs, expected, "server {idx} lists other members:\n{text}");
        assert_eq!(entries.len(), expected.len(), "{text}");
        let me: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.flags.contains("myself"))
            .collect();
        let s = &bed.servers[*idx];
        assert_eq!(me.len(), 1, "{text}");
        assert_eq!(
            (me[0].ip.clone(), me[0].port),
            (bed.hosts[s.host].ip.to_string(), s.port)
        );
        for e in &entries {
            for bad in ["handshake", "fail", "fail?", "noaddr"] {
                assert!(!e.flags.contains(bad), "server {idx}: {bad}:\n{text}");
            }
            assert_eq!(e.link, "connected", "server {idx}:\n{text}");
        }
        let view: View = entries
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    (
                        e.flags.contains("master"),
                        e.primary.clone(),
                        e.slots.clone(),
                    ),
                )
            })
            .collect();
        match &first_view {
            Some(first) => assert_eq!(&view, first, "views disagree (server {idx})"),
            None => {
                first_view = Some(view);
                entries_of_view = entries;
            }
        }
        let info = |key: &str| job.field(bed, *idx, &["CLUSTER", "INFO"], key);
        assert_eq!(info("cluster_state"), "ok", "server {idx}");
        assert_eq!(info("cluster_slots_assigned"), "16384");
        assert_eq!(info("cluster_known_nodes"), expected.len().to_string());
    }
    let by_id: BTreeMap<&str, &Entry> =
        entries_of_view.iter().map(|e| (e.id.as_str(), e)).collect();
    let owners: Vec<&Entry> = entries_of_view
        .iter()
        .filter(|e| e.flags.contains("master"))
        .collect();
    assert_eq!(owners.len(), primaries, "primaries");
    assert_eq!(
        owners.iter().map(|e| slot_count(&e.slots)).sum::<usize>(),
        16384
    );
    for primary in &owners {
        assert!(!primary.slots.is_empty(), "a primary without slots");
        let own: Vec<&&Entry> = by_id
            .values()
            .filter(|e| e.flags.contains("slave") && e.primary == primary.id)
            .collect();
        assert_eq!(own.len(), replicas, "replicas of {}", primary.id);
        for replica in own {
            assert_ne!(replica.ip, primary.ip, "a replica on its primary's host");
        }
    }
    // Replication, as each server reports it.
    for idx in &job.servers {
        let s = &bed.servers[*idx];
        let me = entries_of_view
            .iter()
            .find(|e| e.ip == bed.hosts[s.host].ip.to_string() && e.port == s.port)
            .unwrap();
        let repl = |key: &str| job.field(bed, *idx, &["INFO", "replication"], key);
        if me.flags.contains("slave") {
            let primary = by_id[me.primary.as_str()];
            assert_eq!(repl("role"), "slave");
            assert_eq!(repl("master_host"), primary.ip);
            assert_eq!(repl("master_port"), primary.port.to_string());
            assert_eq!(repl("master_link_status"), "up", "server {idx}");
        } else {
            assert_eq!(repl("role"), "master");
            assert_eq!(repl("connected_slaves"), replicas.to_string());
        }
    }
}

/// Everything a change would show, node by node: the `CLUSTER NODES` entries without their
/// ping/pong times, the epochs, the replication ids, full and partial syncs served, the key
/// count, and the calls of every changing command.
fn snapshot(bed: &TestBed, job: &Job) -> Vec<String> {
    job.servers
        .iter()
        .map(|idx| {
            let mut entries: Vec<String> =
                cluster_nodes(&job.cli(bed, *idx, &["CLUSTER", "NODES"]))
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}:{} {:?} {} {} {} {:?}",
                            e.id, e.ip, e.port, e.flags, e.primary, e.epoch, e.link, e.slots
                        )
                    })
                    .collect();
            entries.sort();
            let f = |cmd: &[&str], key: &str| format!("{key}:{}", job.field(bed, *idx, cmd, key));
            format!(
                "server {idx}: {entries:?} {} {} {} {} {} {} dbsize:{} {:?}",
                f(&["CLUSTER", "INFO"], "cluster_current_epoch"),
                f(&["CLUSTER", "INFO"], "cluster_my_epoch"),
                f(&["INFO", "replication"], "role"),
                f(&["INFO", "replication"], "master_replid"),
                f(&["INFO", "stats"], "sync_full"),
                f(&["INFO", "stats"], "sync_partial_ok"),
                job.cli(bed, *idx, &["DBSIZE"]).trim(),
                changing_commands(&job.cli(bed, *idx, &["INFO", "commandstats"])),
            )
        })
        .collect()
}

/// Sum over the job's servers of one command's calls.
fn calls(bed: &TestBed, job: &Job, command: &str) -> u64 {
    job.servers
        .iter()
        .map(|idx| {
            changing_commands(&job.cli(bed, *idx, &["INFO", "commandstats"]))
                .get(command)
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn post_deploy_forms_the_seed_shapes_and_three_plus_three_by_bosh_names_over_tls_and_redeploy_changes_nothing()
 {
    let Some(mut bed) = TestBed::new(3, true) else {
        return;
    };
    let password = format!("pd-{:x}-secret", std::process::id() * 7919);
    let auth = [
        ("requirepass", password.as_str()),
        ("masterauth", password.as_str()),
    ];
    // The seed's scenario 1 (1+1 on two VMs) and 2 (2+2, two per VM), and a 3+3 over three
    // hosts, every server on the BOSH port range, TLS-only, with a password, as in the seed.
    let s1 = vec![
        bed.start_server(0, 6379, &auth),
        bed.start_server(1, 6379, &auth),
    ];
    let s2 = vec![
        bed.start_server(0, 6380, &auth),
        bed.start_server(1, 6380, &auth),
        bed.start_server(0, 6381, &auth),
        bed.start_server(1, 6381, &auth),
    ];
    let mut s3 = Vec::new();
    for host in 0..3 {
        for port in [6382, 6383] {
            s3.push(bed.start_server(host, port, &auth));
        }
    }
    for (servers, primaries) in [(&s1, 1), (&s2, 2), (&s3, 3)] {
        let job = Job::install(&bed, servers, primaries, 1, Some(&password));
        let (code, log) = job.deploy(&bed, 60);
        assert_eq!(
            code,
            Some(0),
            "first deploy of {primaries}+{primaries}:\n{log}"
        );
        assert!(log.contains("post-deploy: start: job cluster-6"), "{log}");
        assert!(log.contains("TLS with "), "{log}");
        assert!(log.contains("password from "), "{log}");
        assert!(log.contains("post-deploy: done in "), "{log}");
        // The last line is the one docs/bosh.md says a successful run ends with (issue 23
        // §7: the docs had named the failure line only).
        let last = log.lines().last().unwrap_or_default();
        let documented = "every criterion holds (exit 0)";
        assert!(
            last.contains("post-deploy: done in ") && last.ends_with(documented),
            "{log}"
        );
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bosh.md"))
                .unwrap();
        assert!(
            docs.contains(&format!("{documented}`")),
            "docs/bosh.md omits the success line"
        );
        // clustersmith's own progress reaches the same log, timestamped.
        assert!(
            log.lines()
                .any(|l| l.starts_with('[') && l.contains("] round 1 ")),
            "{log}"
        );
        assert_formed(&bed, &job, primaries, 1);
        // The servers recorded the formation: the no-op check below can see a change.
        assert!(calls(&bed, &job, "cluster|meet") > 0);
        assert!(
            calls(&bed, &job, "cluster|addslotsrange") + calls(&bed, &job, "cluster|addslots") > 0
        );
        assert!(calls(&bed, &job, "cluster|replicate") >= primaries as u64);

        // Re-deploy: the same script again changes nothing on any server.
        let before = snapshot(&bed, &job);
        let (code, log) = job.deploy(&bed, 60);
        assert_eq!(
            code,
            Some(0),
            "re-deploy of {primaries}+{primaries}:\n{log}"
        );
        assert!(log.contains("post-deploy: done in "), "{log}");
        assert_eq!(
            snapshot(&bed, &job),
            before,
            "re-deploy changed the {primaries}+{primaries} cluster"
        );
        assert_formed(&bed, &job, primaries, 1);
    }
}

#[test]
fn post_deploy_on_a_broken_deployment_exits_non_zero_with_the_diagnosis_in_its_log() {
    let Some(mut bed) = TestBed::new(2, true) else {
        return;
    };
    let password = format!("pd-{:x}-secret", std::process::id() * 104_729);

    // 1. The seed's replication failure: requirepass without masterauth.
    let no_masterauth = [("requirepass", password.as_str())];
    let servers = vec![
        bed.start_server(0, 6379, &no_masterauth),
        bed.start_server(1, 6379, &no_masterauth),
    ];
    let job = Job::install(&bed, &servers, 1, 1, Some(&password));
    let (code, log) = job.deploy(&bed, 8);
    // The servers say the replica cannot sync: what the script's exit code must reflect.
    let replica = *servers
        .iter()
        .find(|i| job.field(&bed, **i, &["INFO", "replication"], "role") == "slave")
        .expect("apply made one node a replica");
    assert_eq!(
        job.field(
            &bed,
            replica,
            &["INFO", "replication"],
            "master_link_status"
        ),
        "down"
    );
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("apply failed with exit 3"), "{log}");
    let diagnosis = log.split_once("; diagnosing").expect("no diagnosis").1;
    // diagnose gets the job's files, and the live nodes and shape read from the spec.
    let root = job.root.path().display().to_string();
    assert!(
        diagnosis.contains(&format!(
            "clustersmith diagnose --bosh-job cluster-6 --root {root} --primaries 1 --replicas 1 (2 live nodes)"
        )),
        "{log}"
    );
    assert_eq!(
        top_finding(diagnosis).as_deref(),
        Some("CS202"),
        "the root cause is not the top finding:\n{log}"
    );
    assert!(diagnosis.contains("masterauth"), "{log}");
    assert!(
        log.trim_end()
            .ends_with("post-deploy: end: exit 3 (see the diagnosis above)")
    );
    // A wrong password in the job: apply is refused, diagnose cannot read the live nodes
    // either, and the script falls back to the files, which still name the cause.
    let wrong = format!("{password}-wrong");
    std::fs::write(job.dir().join("config/password"), format!("{wrong}\n")).unwrap();
    let (code, log) = job.deploy(&bed, 8);
    assert_eq!(code, Some(2), "{log}");
    assert!(!log.contains(&wrong), "the password is in the log");
    let (_, files_only) = log
        .split_once("diagnosing from the files alone")
        .expect("no files-only diagnosis");
    assert_eq!(top_finding(files_only).as_deref(), Some("CS202"), "{log}");

    // 2. Not the bootstrap instance: nothing is touched. Then one server of the job is
    //    killed: the script stops before changing anything, exits non-zero and the log names
    //    the node.
    let auth = [
        ("requirepass", password.as_str()),
        ("masterauth", password.as_str()),
    ];
    let servers = vec![
        bed.start_server(0, 6380, &auth),
        bed.start_server(1, 6380, &auth),
    ];
    let job = Job::install(&bed, &servers, 1, 1, Some(&password));
    std::fs::write(job.dir().join("config/bootstrap"), "false\n").unwrap();
    let (code, log) = job.deploy(&bed, 8);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("not the bootstrap instance"), "{log}");
    for idx in &servers {
        assert_eq!(
            job.field(&bed, *idx, &["CLUSTER", "INFO"], "cluster_known_nodes"),
            "1"
        );
        assert!(
            changing_commands(&job.cli(&bed, *idx, &["INFO", "commandstats"])).is_empty(),
            "a non-bootstrap instance sent commands"
        );
    }
    std::fs::write(job.dir().join("config/bootstrap"), "true\n").unwrap();
    bed.kill_server(servers[1]);
    let killed = bed.node_args(&servers[1..], false).remove(0);
    let (code, log) = job.deploy(&bed, 8);
    assert_eq!(code, Some(2), "{log}");
    // apply names the node it cannot reach; then the diagnosis follows. (diagnose itself
    // has no finding for an expected node that does not answer: it only reports the live
    // one as never introduced.)
    let (_, failure) = log
        .split_once("post-deploy: clustersmith apply")
        .expect("apply did not run");
    let (failure, diagnosis) = failure
        .split_once("apply failed with exit 2")
        .expect("no failure line");
    assert!(
        failure.contains(&killed) && failure.contains("connection refused"),
        "the log does not name {killed}:\n{log}"
    );
    assert!(
        diagnosis.contains("clustersmith diagnose --bosh-job cluster-6"),
        "{log}"
    );
    assert!(diagnosis.contains("root cause(s)"), "no diagnosis:\n{log}");
    // The live node was left as it was.
    assert_eq!(
        job.field(
            &bed,
            servers[0],
            &["CLUSTER", "INFO"],
            "cluster_known_nodes"
        ),
        "1"
    );
    assert_eq!(
        job.field(
            &bed,
            servers[0],
            &["CLUSTER", "INFO"],
            "cluster_slots_assigned"
        ),
        "0"
    );
}

/// No bed needed: the script refuses to start without what it needs, naming it, and is
/// shellcheck-clean where shellcheck is installed.
#[test]
fn post_deploy_names_what_it_misses_and_passes_shellcheck() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("var/vcap/jobs/redis-7/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(SCRIPT, bin.join("post-deploy")).unwrap();
    let run = |script: &Path, env: &[(&str, &str)]| {
        let mut cmd = Command::new("bash");
        cmd.arg(script);
        for var in SCRIPT_VARS {
            cmd.env_remove(var);
        }
        cmd.env("CLUSTERSMITH_ROOT", root.path())
            .env("CLUSTERSMITH_BIN", env!("CARGO_BIN_EXE_clustersmith"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&bin.join("post-deploy"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The job name came from the script's path.
    assert!(err.contains("start: job redis-7,"), "{err}");
    assert!(
        err.contains("cannot read the spec")
            && err.contains("var/vcap/jobs/redis-7/config/cluster.toml"),
        "{err}"
    );
    // Outside /var/vcap/jobs/JOB/bin the job must be named.
    let out = run(Path::new(SCRIPT), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set CLUSTERSMITH_JOB"));
    let out = run(
        &bin.join("post-deploy"),
        &[("CLUSTERSMITH_BIN", "/nonexistent/clustersmith")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clustersmith not found"));

    match Command::new("shellcheck")
        .args([SCRIPT, DRAIN, PRE_STOP])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => {
            eprintln!("SKIPPED: shellcheck is not installed (apt-get install shellcheck)");
            println!("SKIPPED: shellcheck is not installed");
        }
    }
}

const DRAIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/bosh/drain");
const PRE_STOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/bosh/pre-stop");
/// The variables drain and pre-stop read beyond post-deploy's.
const DRAIN_VARS: &[&str] = &[
    "CLUSTERSMITH_NODE",
    "CLUSTERSMITH_DRAIN_TIMEOUT",
    "CLUSTERSMITH_EVACUATE_TIMEOUT",
    "CLUSTERSMITH_ALLOW_DOWNTIME",
    "CLUSTERSMITH_LOG_DIR",
    "CLUSTERSMITH_REMOVE_UNLISTED",
    "BOSH_INSTANCE_NEXT_STATE",
];

/// One server's job on its own host, as BOSH lays it out, with the drain and pre-stop scripts
/// installed and `config/node` rendered (this instance's address as the cluster lists it).
struct DrainJob {
    root: tempfile::TempDir,
    name: String,
    idx: usize,
}

impl DrainJob {
    fn install(bed: &TestBed, idx: usize) -> DrainJob {
        let root = tempfile::tempdir().unwrap();
        let name = format!("redis-{}", bed.servers[idx].port);
        let dir = bed.write_bosh_job(root.path(), &name, idx);
        for (source, hook) in [(DRAIN, "drain"), (PRE_STOP, "pre-stop")] {
            let script = dir.join("bin").join(hook);
            std::fs::copy(source, &script).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let s = &bed.servers[idx];
        std::fs::write(
            dir.join("config/node"),
            format!("{}:{}\n", bed.hosts[s.host].ip, s.port),
        )
        .unwrap();
        DrainJob { root, name, idx }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("var/vcap/jobs").join(&self.name)
    }

    /// Starts `bin/HOOK` on the server's host as BOSH does (job state "running"), with
    /// `env` on top.
    fn spawn(&self, bed: &TestBed, hook: &str, env: &[(&str, &str)]) -> std::process::Child {
        let host = &bed.hosts[bed.servers[self.idx].host];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns])
            .arg(self.dir().join("bin").join(hook));
        for var in SCRIPT_VARS.iter().chain(DRAIN_VARS) {
            cmd.env_remove(var);
        }
        cmd.env("CLUSTERSMITH_ROOT", self.root.path())
            .env("CLUSTERSMITH_BIN", env!("CARGO_BIN_EXE_clustersmith"))
            .env("BOSH_JOB_STATE", "{\"persistent_disk\":0}")
            .env("BOSH_JOB_NEXT_STATE", "{\"persistent_disk\":0}")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for a hook `spawn` started (bounded); returns its exit code, its stdout and its
    /// log. Nothing may reach stderr: BOSH's hooks log to the job's log directory.
    fn wait(
        &self,
        mut child: std::process::Child,
        hook: &str,
        limit: Duration,
    ) -> (Option<i32>, String, String) {
        let started = Instant::now();
        let status = wait_bounded(&mut child, limit, hook);
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.is_empty(),
            "{hook} wrote to stderr, not to its log:\n{stderr}"
        );
        let log = std::fs::read_to_string(
            self.root
                .path()
                .join("var/vcap/sys/log")
                .join(&self.name)
                .join(format!("{hook}.log")),
        )
        .unwrap_or_default();
        eprintln!(
            "--- {hook} of server {} -> {:?} after {:.1}s more, stdout {stdout:?}\n{log}---",
            self.idx,
            status.code(),
            started.elapsed().as_secs_f64()
        );
        (status.code(), stdout, log)
    }

    /// Runs `bin/drain` (static drain); returns its exit code, its stdout and the drain log.
    fn drain(&self, bed: &TestBed) -> (Option<i32>, String, String) {
        let child = self.spawn(bed, "drain", &[("CLUSTERSMITH_DRAIN_TIMEOUT", "30")]);
        self.wait(child, "drain", Duration::from_secs(90))
    }

    /// Starts `bin/pre-stop` with `BOSH_INSTANCE_NEXT_STATE` set to `next`.
    fn pre_stop(&self, bed: &TestBed, next: &str) -> std::process::Child {
        self.spawn(
            bed,
            "pre-stop",
            &[
                ("BOSH_INSTANCE_NEXT_STATE", next),
                ("CLUSTERSMITH_EVACUATE_TIMEOUT", "120"),
            ],
        )
    }
}

/// Two servers on each of the bed's three hosts, formed 3+3 by post-deploy (checked on the
/// servers), under 1000 writes/s from the independent client, each server's job with its
/// drain and pre-stop installed.
fn three_hosts_under_load(bed: &mut TestBed) -> (Vec<usize>, Job, NsLoad, Vec<DrainJob>) {
    let mut servers = Vec::new();
    for host in 0..3 {
        for port in [6379, 6380] {
            servers.push(bed.start_server(host, port, &[]));
        }
    }
    let job = Job::install(bed, &servers, 3, 1, None);
    let (code, log) = job.deploy(bed, 60);
    assert_eq!(code, Some(0), "{log}");
    assert_formed(bed, &job, 3, 1);
    let seeds: Vec<String> = servers
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                bed.hosts[bed.servers[*i].host].ip, bed.servers[*i].port
            )
        })
        .collect();
    let load = bed.start_load(seeds, 1000);
    let hooks = servers.iter().map(|i| DrainJob::install(bed, *i)).collect();
    (servers, job, load, hooks)
}

/// A simulated BOSH rolling update over the bed's three hosts, under 1000 writes/s from the
/// independent client: for each host in turn, every job's drain (stdout exactly `0`), the
/// host's servers stopped and started again, post-deploy. No acknowledged write is lost, none
/// fails, and each shard's longest write gap stays far below the node timeout (5 s) that an
/// unplanned stop of a primary costs. Then: a second drain of a drained node prints 0 and
/// sends nothing; a primary whose replica is down makes drain fail (exit 1, nothing on
/// stdout), unless the job allows downtime.
#[test]
fn a_bosh_rolling_update_with_drain_is_not_noticed_by_writers() {
    let Some(mut bed) = TestBed::new(3, false) else {
        return;
    };
    let (servers, job, load, drains) = three_hosts_under_load(&mut bed);
    let role = |bed: &TestBed, idx: usize| job.field(bed, idx, &["INFO", "replication"], "role");
    let mut handed_over = 0;
    for host in 0..3 {
        let on_host: Vec<&DrainJob> = drains
            .iter()
            .filter(|d| bed.servers[d.idx].host == host)
            .collect();
        for drain in &on_host {
            let was_primary = role(&bed, drain.idx) == "master";
            let (code, stdout, log) = drain.drain(&bed);
            assert_eq!(code, Some(0), "{log}");
            assert_eq!(stdout, "0\n", "BOSH reads exactly one integer");
            // The premise: a primary was handed over, not just stopped.
            if was_primary {
                handed_over += 1;
                assert!(log.contains("done in "), "{log}");
            }
            assert_eq!(role(&bed, drain.idx), "slave", "drained to a replica");
        }
        for drain in &on_host {
            bed.restart_server(drain.idx);
        }
        let (code, log) = job.deploy(&bed, 60);
        assert_eq!(code, Some(0), "post-deploy after host {host}:\n{log}");
    }
    assert!(handed_over >= 3, "{handed_over} primaries handed over");
    let report = load.finish();
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
    // No client error, except the servers' own blip that Redis 7.0 shows on some failovers
    // (see clusterdown_blips_explained): at most a few, each one explained by the log of
    // the node that gave it.
    if report.errors_total() > 0 {
        for line in bed.log_lines("") {
            eprintln!("{line}");
        }
        assert!(report.errors_total() <= 5, "{}", report.summary());
        let explained = clusterdown_blips_explained(
            &report.first_errors,
            &bed.log_lines("Cluster state changed"),
        );
        assert_eq!(explained, Ok(()), "{}", report.summary());
    }
    assert!(report.longest_gap_ms() < 1000.0, "{}", report.summary());
    assert_formed(&bed, &job, 3, 1);

    // Safe twice: a drained node (a replica now) prints 0 and sends no failover.
    let replica = drains
        .iter()
        .find(|d| role(&bed, d.idx) == "slave")
        .unwrap();
    let before = calls(&bed, &job, "cluster|failover");
    let (code, stdout, _) = replica.drain(&bed);
    assert_eq!((code, stdout.as_str()), (Some(0), "0\n"));
    assert_eq!(calls(&bed, &job, "cluster|failover"), before);

    // No safe handoff: a primary whose only replica is down.
    let primary = drains
        .iter()
        .find(|d| role(&bed, d.idx) == "master")
        .unwrap();
    let primary_id = job
        .cli(&bed, primary.idx, &["CLUSTER", "MYID"])
        .trim()
        .to_owned();
    let its_replica = servers
        .iter()
        .copied()
        .find(|i| {
            job.cli(&bed, *i, &["CLUSTER", "NODES"])
                .lines()
                .any(|l| l.contains("myself,slave") && l.contains(&primary_id))
        })
        .unwrap();
    bed.stop_server(its_replica);
    let deadline = Instant::now() + Duration::from_secs(10);
    while job.field(
        &bed,
        primary.idx,
        &["INFO", "replication"],
        "connected_slaves",
    ) != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the primary still sees its replica"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, stdout, log) = primary.drain(&bed);
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(
        stdout, "",
        "nothing on stdout when the server must not stop"
    );
    assert!(log.contains("CS360"), "{log}");
    assert_eq!(role(&bed, primary.idx), "master");
    std::fs::write(primary.dir().join("config/drain_allow_downtime"), "true\n").unwrap();
    let (code, stdout, log) = primary.drain(&bed);
    assert_eq!((code, stdout.as_str()), (Some(0), "0\n"), "{log}");
    assert!(log.contains("allow-downtime is set"), "{log}");
}

/// `CLUSTER NODES` as the server at `idx` sees it.
fn nodes_seen_by(bed: &TestBed, job: &Job, idx: usize) -> Vec<Entry> {
    cluster_nodes(&job.cli(bed, idx, &["CLUSTER", "NODES"]))
}

/// A BOSH scale-in from 3+3 to 2+2 under 1000 writes/s from the independent client: the third
/// host's two instances are deleted. Their pre-stop runs (both at once, as BOSH does with
/// max_in_flight 2: one evacuation waits for the other) moves the primary's slots and keys to
/// the primaries that stay and re-homes its replica; their drain then finds replicas and prints
/// 0; the servers stop and the VM goes; the next post-deploy, with the job's new spec, forgets
/// them once `remove_unlisted` is set (and refuses without it). At the end: 16384 slots
/// covered, none on the deleted host, every acknowledged write read back. A pre-stop on an
/// instance that is kept (an update) sends nothing.
#[test]
fn a_bosh_scale_in_through_pre_stop_moves_every_slot_off_the_deleted_host_and_loses_no_key() {
    let Some(mut bed) = TestBed::new(3, false) else {
        return;
    };
    let (servers, job, load, hooks) = three_hosts_under_load(&mut bed);
    let (staying, deleted): (Vec<usize>, Vec<usize>) = servers
        .iter()
        .copied()
        .partition(|i| bed.servers[*i].host != 2);
    let id_of = |idx: usize| job.cli(&bed, idx, &["CLUSTER", "MYID"]).trim().to_owned();
    let deleted_ids: Vec<String> = deleted.iter().map(|i| id_of(*i)).collect();
    let slots_of = |viewer: usize, id: &str| -> usize {
        nodes_seen_by(&bed, &job, viewer)
            .iter()
            .find(|e| e.id == id)
            .map_or(0, |e| slot_count(&e.slots))
    };

    // The premise: the deleted host serves slots, with keys in them.
    let doomed_primary = *deleted
        .iter()
        .find(|i| job.field(&bed, **i, &["INFO", "replication"], "role") == "master")
        .expect("the third host runs a primary (one per host, as post-deploy spreads them)");
    assert!(slots_of(staying[0], &id_of(doomed_primary)) > 5000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while job.cli(&bed, doomed_primary, &["DBSIZE"]).trim() == "0" {
        assert!(Instant::now() < deadline, "no key reached the third host");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An update (the instance is kept): pre-stop leaves it to drain and sends nothing.
    let moves_before = calls(&bed, &job, "cluster|setslot");
    let kept = hooks.iter().find(|h| h.idx == staying[0]).unwrap();
    let (code, stdout, log) = kept.wait(
        kept.pre_stop(&bed, "keep"),
        "pre-stop",
        Duration::from_secs(30),
    );
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{log}");
    assert!(log.contains("not being deleted"), "{log}");
    assert_eq!(calls(&bed, &job, "cluster|setslot"), moves_before);

    // The scale-in: both deleted instances' pre-stop at once, then their drain.
    let doomed: Vec<&DrainJob> = hooks.iter().filter(|h| deleted.contains(&h.idx)).collect();
    let running: Vec<std::process::Child> =
        doomed.iter().map(|h| h.pre_stop(&bed, "delete")).collect();
    for (hook, child) in doomed.iter().zip(running) {
        let (code, _, log) = hook.wait(child, "pre-stop", Duration::from_secs(180));
        assert_eq!(code, Some(0), "{log}");
    }
    for viewer in &staying {
        for id in &deleted_ids {
            assert_eq!(slots_of(*viewer, id), 0, "server {viewer} gives {id} slots");
        }
        let followers_of_deleted = nodes_seen_by(&bed, &job, *viewer)
            .iter()
            .filter(|e| !deleted_ids.contains(&e.id))
            .filter(|e| deleted_ids.contains(&e.primary))
            .count();
        assert_eq!(
            followers_of_deleted, 0,
            "a replica still follows the deleted host"
        );
    }
    for hook in &doomed {
        let (code, stdout, log) = hook.drain(&bed);
        assert_eq!((code, stdout.as_str()), (Some(0), "0\n"), "{log}");
    }
    for idx in &deleted {
        bed.stop_server(*idx);
    }

    // The next deploy: the job's spec lists the four instances that stay.
    let smaller = Job::install(&bed, &staying, 2, 1, None);
    let (code, log) = smaller.deploy(&bed, 60);
    assert_eq!(
        code,
        Some(2),
        "members left out of the spec are refused:\n{log}"
    );
    assert!(log.contains("--remove-unlisted"), "{log}");
    std::fs::write(smaller.dir().join("config/remove_unlisted"), "true\n").unwrap();
    let (code, log) = smaller.deploy(&bed, 90);
    assert_eq!(code, Some(0), "{log}");
    assert_formed(&bed, &smaller, 2, 1);

    let report = load.finish();
    eprintln!("load: {}", report.summary());
    assert_eq!(report.lost, 0, "{:?}", report.lost_keys);
    assert_eq!(report.failed, 0, "{}", report.summary());
}

/// The rule id of the first finding at warning or above in diagnose's human output (a line
/// `ERROR CS202 name on node`, whatever prefix the script's log gives it).
fn top_finding(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).find_map(|w| {
            (matches!(w[0], "CRITICAL" | "ERROR" | "WARNING")
                && w[1].len() == 5
                && w[1].starts_with("CS"))
            .then(|| w[1].to_owned())
        })
    })
}

#[test]
fn top_finding_reads_the_first_finding_line() {
    let text = "post-deploy: diagnosing\nINFO CS360 no-fit-replica on a\nERROR CS204 replica-link-down on b\n  symptom CS202 x\nERROR CS202 y on c\n";
    assert_eq!(top_finding(text).as_deref(), Some("CS204"));
    assert_eq!(top_finding("no findings\n"), None);
}

/// The blip check on what a real run logged (a rolling update on Redis 7.0 in the bed): the
/// error it recorded is explained by its node's log; the same error from another node, three
/// seconds later, or with a state that stayed `fail`, is not.
#[test]
fn a_clusterdown_is_accepted_only_where_its_node_logged_the_blip() {
    let lines = [
        "10.77.0.3:6379 9591:M 06 Dec 2026 19:10:29.946 # Cluster state changed: ok".to_owned(),
        "10.77.0.3:6379 9591:M 06 Dec 2026 19:10:30.622 # Cluster state changed: fail".to_owned(),
        "10.77.0.3:6379 9591:M 06 Dec 2026 19:10:30.626 # Cluster state changed: ok".to_owned(),
        "10.77.0.2:6379 9588:M 06 Dec 2026 19:10:30.622 # Cluster state changed: fail".to_owned(),
        "10.77.0.2:6379 9588:M 06 Dec 2026 19:10:35.000 # Cluster state changed: ok".to_owned(),
    ];
    let error = |node: &str, at: f64| clustersmith_load::ErrorSample {
        kind: "CLUSTERDOWN".into(),
        node: Some(node.into()),
        slot: 11879,
        at_unix_s: at,
    };
    let seen = 1_796_584_230.623;
    assert_eq!(
        clusterdown_blips_explained(&[error("10.77.0.3:6379", seen)], &lines),
        Ok(())
    );
    for unexplained in [
        error("10.77.0.1:6379", seen),
        error("10.77.0.3:6379", seen + 3.0),
        error("10.77.0.2:6379", seen),
    ] {
        assert!(clusterdown_blips_explained(&[unexplained], &lines).is_err());
    }
    let mut timeout = error("10.77.0.3:6379", seen);
    timeout.kind = "timeout".into();
    assert!(clusterdown_blips_explained(&[timeout], &lines).is_err());
}
