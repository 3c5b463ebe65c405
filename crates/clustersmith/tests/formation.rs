//! Formation on real servers: the seed's scenarios, idempotence, interruption, repair, and
//! every refusal leaving all nodes unchanged.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn assert_formed(servers: &Servers, nodes: &[String], primaries: &str, env: &[(&str, &str)]) {
    let out = clustersmith(
        &with_nodes(
            &["verify", "--format", "json", "--primaries", primaries],
            nodes,
        ),
        env,
    );
    assert_eq!(out.status.code(), Some(0), "verify failed");
    let verdict = json(&out);
    assert_eq!(verdict["passed"], true);
    for criterion in verdict["criteria"].as_array().unwrap() {
        assert_eq!(criterion["passed"], true, "{criterion}");
    }
    // Independent of clustersmith's own verdict: every node says ok and knows everyone.
    for idx in 0..servers.servers.len() {
        let info = servers.text(idx, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(
            info.contains(&format!("cluster_known_nodes:{}", nodes.len())),
            "{info}"
        );
    }
}

#[test]
fn seed_scenario_1_one_primary_one_replica_by_hostname() {
    let servers = Servers::start(2);
    let nodes = servers.names();
    let out = clustersmith(
        &with_nodes(&["apply", "--primaries", "1", "--timeout", "30"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("converged"));
    assert_formed(&servers, &nodes, "1", &[]);
    let replica_role = servers.info_field(1, "replication", "role").unwrap();
    let primary_role = servers.info_field(0, "replication", "role").unwrap();
    assert_eq!(
        (primary_role.as_str(), replica_role.as_str()),
        ("master", "slave")
    );
    assert_eq!(
        servers
            .info_field(1, "replication", "master_link_status")
            .as_deref(),
        Some("up")
    );
}

#[test]
fn seed_scenario_2_two_primaries_each_with_its_own_replica() {
    let servers = Servers::start(4);
    let nodes = servers.names();
    let out = clustersmith(
        &with_nodes(&["apply", "--replicas", "1", "--timeout", "30"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_formed(&servers, &nodes, "2", &[]);
    // The seed's template attached every replica to one primary; here each primary has one.
    let by_primary = replicas_by_primary(&servers.text(0, &["CLUSTER", "NODES"]));
    assert_eq!(by_primary.len(), 2, "{by_primary:?}");
    assert!(by_primary.values().all(|r| r.len() == 1));
}

/// Asserts, from the servers, three primaries with the balanced ranges and one replica each
/// with its link up.
fn assert_three_plus_three_on_servers(servers: &Servers) {
    let shards = servers.shards();
    let slots: Vec<&str> = shards.iter().map(|s| s.slots.as_str()).collect();
    assert_eq!(slots, ["0-5461", "5462-10922", "10923-16383"], "{shards:?}");
    for shard in &shards {
        assert_eq!(shard.replicas.len(), 1, "{shards:?}");
        assert_eq!(shard.replicas[0].1, "up", "{shards:?}");
    }
}

#[test]
fn three_plus_three_then_rerun_plans_and_sends_nothing() {
    let servers = Servers::start(6);
    let nodes = servers.names();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "3", "--format", "json"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["converged"], true);
    assert_three_plus_three_on_servers(&servers);

    // The re-run sends nothing: the tool says so, and the servers agree (no changing command
    // executed anywhere, every node's view and data unchanged).
    let before = servers.snapshot();
    assert!(before.cluster_subcommands);
    // The counters do see what the formation sent: one epoch per node, replicas attached.
    assert!(
        before
            .commands
            .iter()
            .all(|c| c.get("cluster|set-config-epoch") == Some(&1)),
        "{:?}",
        before.commands
    );
    let replicated: u64 = before
        .commands
        .iter()
        .filter_map(|c| c.get("cluster|replicate"))
        .sum();
    assert_eq!(replicated, 3, "{:?}", before.commands);
    let again = clustersmith(
        &with_nodes(&["apply", "-m", "3", "--format", "json"], &nodes),
        &[],
    );
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(json(&again)["commands_sent"], 0);

    let plan = clustersmith(
        &with_nodes(&["plan", "-m", "3", "--format", "json"], &nodes),
        &[],
    );
    assert_eq!(plan.status.code(), Some(0));
    assert_eq!(json(&plan)["changes_pending"], false);
    assert_eq!(json(&plan)["steps"].as_array().unwrap().len(), 0);
    before.assert_untouched(&servers.snapshot(), "a re-run of apply, then plan");
}

/// From 64 nodes on, replicas-to-be meet their own primary first and the rest of the cluster
/// once they follow it: that path forms real servers too, and a re-run sends nothing.
#[test]
fn sixty_four_nodes_form_with_roles_before_the_mesh() {
    let servers = Servers::start(64);
    let nodes = servers.names();
    let run = |command: &str| {
        let out = clustersmith(
            &with_nodes(&[command, "-m", "32", "--format", "json"], &nodes),
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        json(&out)
    };
    assert_eq!(run("apply")["converged"], true);
    run("verify");
    // The tool says the re-run sent nothing, and the servers agree: no changing command
    // attempted anywhere (refused ones counted), every view, epoch and key count unchanged.
    let before = servers.snapshot();
    assert!(before.cluster_subcommands);
    assert_eq!(run("apply")["commands_sent"], 0, "a re-run sends nothing");
    before.assert_untouched(&servers.snapshot(), "a re-run of apply at 64 nodes");
}

#[test]
fn plan_changes_nothing_and_reports_pending_steps() {
    let servers = Servers::start(4);
    let nodes = servers.ips();
    let before = servers.snapshot();
    let out = clustersmith(
        &with_nodes(&["plan", "-m", "2", "--format", "json"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(4));
    let plan = json(&out);
    assert_eq!(plan["changes_pending"], true);
    let kinds: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "set-config-epoch").count(),
        4
    );
    assert_eq!(kinds.iter().filter(|k| **k == "add-slots").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "meet").count(), 6);
    // MEET always carries an IP literal and the node's real bus port.
    let meets: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "meet")
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    let bus = (servers.port(1) + 10000).to_string();
    assert!(
        meets
            .iter()
            .any(|m| m.contains(&format!("MEET 127.0.0.1 {} {bus}", servers.port(1)))),
        "{meets:?}"
    );
    before.assert_untouched(&servers.snapshot(), "plan");
}

#[test]
fn apply_killed_midway_then_rerun_converges() {
    let servers = Servers::start(6);
    let nodes = servers.names();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(with_nodes(&["apply", "-m", "3"], &nodes))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it right after its second round: slots assigned, meets in flight, replicas unattached.
    // Its stderr is read to the end on a thread of its own: a reader that stopped would let
    // the run die of SIGPIPE on its next line instead of the SIGKILL this test is about.
    let stderr = child.stderr.take().unwrap();
    let (later_round, saw) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Progress lines are only written when something changes: the first after
            // round 1, unless it is the last.
            if line.contains("] round ") && !line.contains("] round 1 ") {
                let _ = later_round.send(!line.contains("all criteria met"));
            }
            lines.push(line);
        }
        lines
    });
    let saw_later_round = saw.recv_timeout(Duration::from_secs(30)).unwrap_or(false);
    assert!(
        saw_later_round,
        "apply finished before it could be interrupted"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the run died of the kill, not of something else: {status:?}\n{}",
        lines.join("\n")
    );
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "3", "--timeout", "30"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_formed(&servers, &nodes, "3", &[]);
}

#[test]
fn seed_half_formed_cluster_is_completed_and_keeps_its_slots() {
    // Scenario 2 before the fix: each primary got its slots, but nobody met, nobody replicates.
    let servers = Servers::start(4);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]);
    servers.cmd(1, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]);
    let nodes = servers.names();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "2", "--timeout", "30"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_formed(&servers, &nodes, "2", &[]);
    let mine = servers.text(0, &["CLUSTER", "NODES"]);
    let me = mine.lines().find(|l| l.contains("myself")).unwrap();
    assert!(me.ends_with(" 0-8191"), "{me}");
}

#[test]
fn a_replica_on_the_wrong_primary_is_moved() {
    let servers = Servers::start(4);
    let nodes = servers.names();
    assert_eq!(
        clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[])
            .status
            .code(),
        Some(0)
    );
    // Put both replicas on the first primary, as the seed's template did.
    let first_primary = servers.myid(0);
    for idx in 2..4 {
        servers.cmd(idx, &["CLUSTER", "REPLICATE", &first_primary]);
    }
    wait_until(
        "both replicas on one primary",
        Duration::from_secs(10),
        || {
            replicas_by_primary(&servers.text(0, &["CLUSTER", "NODES"]))
                .get(&first_primary)
                .map(Vec::len)
                == Some(2)
        },
    );
    let verify = clustersmith(&with_nodes(&["verify", "-m", "2"], &nodes), &[]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify must fail on a misplaced replica"
    );
    assert!(stdout(&verify).contains("FAIL replication"));
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "2", "--timeout", "30"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_formed(&servers, &nodes, "2", &[]);
    let by_primary = replicas_by_primary(&servers.text(0, &["CLUSTER", "NODES"]));
    assert!(by_primary.values().all(|r| r.len() == 1), "{by_primary:?}");
}

#[test]
fn password_protected_nodes_form_and_replicate_without_leaking_the_password() {
    let secret = "s3cret-Pa55-do-not-print";
    let servers = Servers::start_with(
        4,
        &ServerOpts {
            password: Some(secret.into()),
            ..Default::default()
        },
    );
    for server in &servers.servers {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid)).unwrap();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(secret),
            "password on a command line"
        );
        // The harness's redis.conf holds the password: readable by its owner only.
        let conf = server.dir.join("redis.conf");
        assert!(std::fs::read_to_string(&conf).unwrap().contains(secret));
        assert_eq!(mode(&conf), 0o600, "{}", conf.display());
    }
    let nodes = servers.names();
    let env = [("REDISCLI_AUTH", secret)];
    let no_secret = |out: &std::process::Output, what: &str| {
        for text in [stdout(out), stderr(out)] {
            assert!(
                !text.contains(secret),
                "{what} printed the password:\n{text}"
            );
        }
    };
    // Every command and format, on the way to a formed cluster and after.
    for format in ["human", "json"] {
        let out = clustersmith(
            &with_nodes(&["plan", "-m", "2", "--format", format], &nodes),
            &env,
        );
        assert_eq!(out.status.code(), Some(4));
        no_secret(&out, "plan");
    }
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("converged"));
    no_secret(&out, "apply");
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "2", "--format", "json"], &nodes),
        &env,
    );
    assert_eq!(out.status.code(), Some(0));
    no_secret(&out, "apply --format json");
    for format in ["human", "json"] {
        let out = clustersmith(
            &with_nodes(&["diagnose", "-m", "2", "--format", format], &nodes),
            &env,
        );
        assert_eq!(out.status.code(), Some(0));
        no_secret(&out, "diagnose");
    }
    // The same through --password-file.
    let file = servers.path().join("password");
    write_secret_file(&file, &format!("{secret}\n"));
    assert_eq!(mode(&file), 0o600);
    let file_arg = file.to_str().unwrap().to_owned();
    let out = clustersmith(
        &with_nodes(&["verify", "-m", "2", "--password-file", &file_arg], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    no_secret(&out, "verify --password-file");
    // And typed at the --askpass prompt on a terminal: not echoed, not printed, and used
    // (a wrong one is refused, so the prompt's answer is what logs in).
    let verify = with_nodes(&["verify", "-m", "2", "--askpass"], &nodes);
    let (code, text) = clustersmith_on_tty(&verify, secret);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains(secret),
        "--askpass showed the password:\n{text}"
    );
    let (code, text) = clustersmith_on_tty(&verify, "not-the-password");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    // Replication authenticated with the password: seen on the servers.
    let shards = servers.shards();
    assert_eq!(shards.len(), 2, "{shards:?}");
    for shard in &shards {
        assert_eq!(shard.replicas.len(), 1, "{shards:?}");
        assert_eq!(shard.replicas[0].1, "up", "{shards:?}");
    }
}

/// Permission bits of a file.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn wrong_or_missing_password_is_refused_naming_the_node() {
    let secret = "right-password";
    let servers = Servers::start_with(
        2,
        &ServerOpts {
            password: Some(secret.into()),
            ..Default::default()
        },
    );
    let nodes = servers.names();
    let args = with_nodes(&["apply", "-m", "1"], &nodes);
    assert_refused(
        &servers,
        &args,
        &[("REDISCLI_AUTH", "wrong-password")],
        "authentication failed",
    );
    assert_refused(&servers, &args, &[], "authentication required");
    let out = clustersmith(&args, &[("REDISCLI_AUTH", "wrong-password")]);
    assert!(stderr(&out).contains(&nodes[0]));
    assert!(!stderr(&out).contains("wrong-password"));
}

#[test]
fn unreachable_node_is_refused_and_nothing_changes() {
    let mut servers = Servers::start(3);
    let nodes = servers.names();
    servers.stop(2);
    let before = servers.snapshot_of(&[0, 1]);
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "3", "--connect-timeout", "500"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("`{}`: connection refused", nodes[2])),
        "{}",
        stderr(&out)
    );
    before.assert_unchanged(&servers.snapshot_of(&[0, 1]), "a refused run");
    for idx in 0..2 {
        let info = servers.text(idx, &["CLUSTER", "INFO"]);
        assert!(
            info.contains("cluster_known_nodes:1") && info.contains("cluster_slots_assigned:0"),
            "{info}"
        );
    }
}

#[test]
fn non_cluster_node_is_refused() {
    let mut servers = Servers::start(1);
    let bin = clustersmith_io::sandbox::find_server_binary(None).unwrap();
    servers.add(
        &bin,
        &ServerOpts {
            directives: vec![("cluster-enabled".into(), "no".into())],
            ..Default::default()
        },
    );
    let nodes = servers.names();
    let before = servers.snapshot();
    assert!(before.nodes[1].contains("no cluster"), "{:?}", before.nodes);
    let out = clustersmith(&with_nodes(&["apply", "-m", "1"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cluster support is disabled"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&nodes[1]));
    before.assert_unchanged(&servers.snapshot(), "a refused run");
}

#[test]
fn node_of_another_cluster_is_refused() {
    let servers = Servers::start(3);
    // Node 1 and node 2 form their own little cluster; only 0 and 1 are in the spec.
    servers.cmd(
        1,
        &["CLUSTER", "MEET", "127.0.0.1", &servers.port(2).to_string()],
    );
    let other = servers.myid(2);
    wait_until(
        "foreign meet on both sides",
        Duration::from_secs(10),
        || {
            [1, 2].iter().all(|idx| {
                let text = servers.text(*idx, &["CLUSTER", "NODES"]);
                text.lines().count() == 2 && !text.contains("handshake")
            })
        },
    );
    let nodes = servers.names()[..2].to_vec();
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "1"], &nodes),
        &[],
        &format!(
            "knows nodes outside the spec that its peers do not: 127.0.0.1:{} (id {}",
            servers.port(2),
            &other[..8]
        ),
    );
}

#[test]
fn node_holding_keys_is_refused() {
    // A node that served one slot alone for a while and kept its key after giving it up.
    let servers = Servers::start_with(
        2,
        &ServerOpts {
            directives: vec![("cluster-require-full-coverage".into(), "no".into())],
            ..Default::default()
        },
    );
    let slot: i64 =
        redis::from_redis_value(servers.cmd(1, &["CLUSTER", "KEYSLOT", "hello"])).unwrap();
    let slot = slot.to_string();
    servers.cmd(1, &["CLUSTER", "ADDSLOTS", &slot]);
    wait_until("the node serves its slot", Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg("hello")
            .arg("world")
            .query::<()>(&mut servers.conn(1))
            .is_ok()
    });
    servers.cmd(1, &["CLUSTER", "DELSLOTS", &slot]);
    let nodes = servers.names();
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "1"], &nodes),
        &[],
        &format!("`{}` holds 1 key and", nodes[1]),
    );
}

#[test]
fn unresolvable_name_and_impossible_topology_are_refused_before_any_node_is_touched() {
    let servers = Servers::start(2);
    let mut nodes = servers.names();
    nodes.push("no-such-node.invalid:7000".into());
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "1"], &nodes),
        &[],
        "failed to resolve `no-such-node.invalid`",
    );
    let nodes = servers.names();
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "3"], &nodes),
        &[],
        "3 primaries asked for, but only 2 nodes given",
    );
    let dup = vec![nodes[0].clone(), format!("127.0.0.1:{}", servers.port(0))];
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "1"], &dup),
        &[],
        "are the same node",
    );
    assert_refused(
        &servers,
        &with_nodes(
            &["apply", "-m", "1"],
            &[nodes[0].clone(), "localhost:70000".into()],
        ),
        &[],
        "port must be between",
    );
}

#[test]
fn sandbox_up_verify_down() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sb");
    let state_arg = state.to_str().unwrap().to_owned();
    let base = free_port_block(22001, 4);
    let base_arg = base.to_string();
    let up = clustersmith(
        &[
            "sandbox",
            "up",
            "-m",
            "2",
            "-r",
            "1",
            "--base-port",
            &base_arg,
            "--dir",
            &state_arg,
        ],
        &[],
    );
    let pids = sandbox_pids(&state);
    assert_eq!(up.status.code(), Some(0));
    assert!(stdout(&up).contains("all 8 criteria met"));
    assert_eq!(pids.len(), 4);
    let down = clustersmith(&["sandbox", "down", "--dir", &state_arg], &[]);
    assert_eq!(down.status.code(), Some(0));
    assert!(!state.exists());
    for pid in pids {
        assert!(
            !clustersmith_io::sandbox::is_our_server(pid),
            "server {pid} still running"
        );
    }
}

#[test]
fn redis_6_2_and_valkey_8_form_three_plus_three() {
    let mut ran = Vec::new();
    for bin in other_servers() {
        // With a password, so that replicas authenticate with `masterauth` on 6.2 and with
        // Valkey's own `primaryauth`.
        let secret = "versions-pass";
        let servers = Servers::start_with(
            6,
            &ServerOpts {
                bin: Some(bin.clone()),
                password: Some(secret.into()),
                ..Default::default()
            },
        );
        // What actually answers, from INFO server, is what the binary says it is.
        let version = servers.assert_running(&bin);
        let valkey = version.flavour == "valkey";
        let conf = std::fs::read_to_string(servers.servers[0].dir.join("redis.conf")).unwrap();
        let auth = if valkey {
            "primaryauth "
        } else {
            "masterauth "
        };
        assert!(conf.lines().any(|l| l.starts_with(auth)), "{conf}");
        let nodes = servers.names();
        let env = [("REDISCLI_AUTH", secret)];
        let out = clustersmith(
            &with_nodes(&["apply", "-m", "3", "--timeout", "30"], &nodes),
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", bin.display());
        assert_formed(&servers, &nodes, "3", &env);
        // Replicas authenticated to their primaries (the link is up), seen on the servers.
        assert_three_plus_three_on_servers(&servers);
        // 6.2 has no ADDSLOTSRANGE: the slots went through ADDSLOTS (and the other way round).
        let stats: String = (0..6)
            .map(|i| servers.text(i, &["INFO", "commandstats"]))
            .collect();
        if version.version.starts_with("6.") {
            assert!(!stats.contains("cmdstat_cluster|"), "{stats}");
        } else {
            assert!(stats.contains("cmdstat_cluster|addslotsrange:"), "{stats}");
        }

        // The re-run as a user that may only look: any change it tried would be refused and
        // logged by the server (ACL LOG), on every version.
        servers.add_read_only_user("reader", secret);
        let before = servers.snapshot();
        let again = clustersmith(
            &with_nodes(
                &["apply", "-m", "3", "--user", "reader", "--format", "json"],
                &nodes,
            ),
            &env,
        );
        assert_eq!(again.status.code(), Some(0), "{}", bin.display());
        assert_eq!(json(&again)["commands_sent"], 0);
        let plan = clustersmith(
            &with_nodes(&["plan", "-m", "3", "--user", "reader"], &nodes),
            &env,
        );
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{}: plan not empty after apply",
            bin.display()
        );
        for idx in 0..6 {
            assert_eq!(servers.acl_log(idx), Vec::<String>::new(), "node {idx}");
        }
        // On 6.2 the snapshot has no cluster subcommand counts (its commandstats lump every
        // CLUSTER call together; the ACL log above covers it); the views, epochs and data of
        // every node must not move on any version.
        assert_eq!(
            before.cluster_subcommands,
            !version.version.starts_with("6.")
        );
        before.assert_untouched(&servers.snapshot(), "a re-run of apply, then plan");
        ran.push(version);
    }
    eprintln!("ran against {ran:?}");
}

#[test]
fn tls_only_sandbox_with_password_forms_and_verifies_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sb");
    let state_arg = state.to_str().unwrap().to_owned();
    let base = free_port_block(22201, 6);
    let base_arg = base.to_string();
    let up = clustersmith(
        &[
            "sandbox",
            "up",
            "--tls",
            "--auth",
            "--base-port",
            &base_arg,
            "--dir",
            &state_arg,
            "--format",
            "json",
        ],
        &[],
    );
    let pids = sandbox_pids(&state);
    let password = std::fs::read_to_string(state.join("password"))
        .unwrap()
        .trim()
        .to_owned();
    let result = json(&up);
    let nodes: Vec<String> = (0..6).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let tls = state.join("tls");
    let (ca, cert, key) = (
        tls.join("ca.crt").display().to_string(),
        tls.join("client.crt").display().to_string(),
        tls.join("client.key").display().to_string(),
    );
    let tls_args = [
        "--tls",
        "--cacert",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    let mut verify_args = vec!["verify", "-m", "3"];
    verify_args.extend(tls_args);
    let verify_tls = clustersmith(
        &with_nodes(&verify_args, &nodes),
        &[("REDISCLI_AUTH", &password)],
    );
    let verify_plain = clustersmith(
        &with_nodes(&["verify", "-m", "3", "--connect-timeout", "500"], &nodes),
        &[("REDISCLI_AUTH", &password)],
    );
    let cmdlines: Vec<String> = pids
        .iter()
        .map(|pid| {
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
                .into_owned()
        })
        .collect();
    // Replication over TLS, from the servers (through redis-cli over TLS): the nodes have no
    // plaintext port, and every replica's link to a sandbox port is up.
    let cli = |port: u16, args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(tls_args)
            .args(args)
            .env("REDISCLI_AUTH", &password)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let replication: Vec<String> = (0..6)
        .map(|i| cli(base + i, &["INFO", "replication"]))
        .collect();
    let plain_ports: Vec<String> = (0..6)
        .map(|i| cli(base + i, &["CONFIG", "GET", "port"]))
        .collect();
    let tls_replication = cli(base, &["CONFIG", "GET", "tls-replication"]);
    let mut secret_files = vec![state.join("password")];
    for entry in std::fs::read_dir(&state).unwrap() {
        let conf = entry.unwrap().path().join("redis.conf");
        if conf.exists() {
            secret_files.push(conf);
        }
    }
    let files_mode: Vec<(String, u32)> = secret_files
        .iter()
        .map(|p| (p.display().to_string(), mode(p)))
        .collect();
    let down = clustersmith(&["sandbox", "down", "--dir", &state_arg], &[]);

    assert_eq!(up.status.code(), Some(0));
    assert_eq!(result["converged"], true);
    for ports in &plain_ports {
        assert_eq!(ports.split_whitespace().collect::<Vec<_>>(), ["port", "0"]);
    }
    assert!(tls_replication.contains("yes"), "{tls_replication}");
    let ports: Vec<String> = (0..6).map(|i| (base + i).to_string()).collect();
    let replicas: Vec<&String> = replication
        .iter()
        .filter(|r| r.contains("role:slave"))
        .collect();
    assert_eq!(replicas.len(), 3, "{replication:?}");
    for info in replicas {
        assert!(info.contains("master_link_status:up"), "{info}");
        let port = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("master_port:"))
            .unwrap();
        assert!(ports.iter().any(|p| p == port), "{info}");
    }
    // The password file and every redis.conf holding the password: owner-only.
    assert_eq!(files_mode.len(), 7, "{files_mode:?}");
    for (file, mode) in &files_mode {
        assert_eq!(*mode, 0o600, "{file}");
    }
    assert!(password.len() >= 32);
    for output in [&up, &verify_tls, &verify_plain, &down] {
        assert!(!stdout(output).contains(&password) && !stderr(output).contains(&password));
    }
    for cmdline in cmdlines {
        assert!(
            !cmdline.contains(&password),
            "password on a server command line: {cmdline}"
        );
    }
    assert_eq!(verify_tls.status.code(), Some(0));
    // A plaintext client against TLS-only nodes is a settings error, not a verdict.
    assert_eq!(verify_plain.status.code(), Some(2));
    assert!(stdout(&verify_plain).is_empty());
    assert!(
        stderr(&verify_plain).contains("it expects TLS")
            && stderr(&verify_plain).contains("pass --tls"),
        "{}",
        stderr(&verify_plain)
    );
    assert_eq!(down.status.code(), Some(0));
}

#[test]
fn toml_spec_with_zones_keeps_replicas_out_of_their_primary_zone() {
    let servers = Servers::start(4);
    let zones = ["z1", "z1", "z2", "z2"];
    let mut text = String::from("replicas = 1\n");
    for (name, zone) in servers.names().iter().zip(zones) {
        text += &format!("[[node]]\naddr = \"{name}\"\nzone = \"{zone}\"\n");
    }
    let spec = servers.path().join("cluster.toml");
    std::fs::write(&spec, text).unwrap();
    let spec_arg = spec.to_str().unwrap().to_owned();
    let out = clustersmith(&["apply", "--spec", &spec_arg, "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let result = json(&out);
    assert_eq!(
        result["notes"].as_array().unwrap().len(),
        0,
        "zones allow full anti-affinity"
    );
    // From the servers: two primaries, each with one replica (link up) in the other zone.
    let shards = servers.shards();
    assert_eq!(shards.len(), 2, "{shards:?}");
    for shard in &shards {
        assert_eq!(shard.replicas.len(), 1, "{shards:?}");
        let (replica, link) = &shard.replicas[0];
        assert_eq!(link, "up", "{shards:?}");
        assert_ne!(
            zones[shard.primary], zones[*replica],
            "node {replica} replicates node {} in its own zone: {shards:?}",
            shard.primary
        );
    }
    // Nodes both as arguments and in the file is ambiguous: refused.
    let names = servers.names();
    let both = clustersmith(&with_nodes(&["plan", "--spec", &spec_arg], &names), &[]);
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("not both"));
}

/// `verify --format json` on `nodes`: the exit code and, per criterion that did not pass, its
/// failures as `node: detail`.
fn verify_failures(
    nodes: &[String],
    primaries: &str,
    replicas: &str,
) -> (Option<i32>, BTreeMap<String, Vec<String>>) {
    let out = clustersmith(
        &with_nodes(
            &[
                "verify", "-m", primaries, "-r", replicas, "--format", "json",
            ],
            nodes,
        ),
        &[],
    );
    let verdict = json(&out);
    let failed = verdict["criteria"]
        .as_array()
        .unwrap_or_else(|| panic!("no criteria: {verdict}"))
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| {
            let failures = c["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["node"].as_str().unwrap(),
                        f["detail"].as_str().unwrap()
                    )
                })
                .collect();
            (c["id"].as_str().unwrap().to_owned(), failures)
        })
        .collect();
    (out.status.code(), failed)
}

#[test]
fn verify_fails_the_lone_primary_that_redis_cli_check_passes() {
    // The README's example (the seed's scenario 1): a primary that owns every slot and knows
    // nobody, next to the replica-to-be it never met.
    let servers = Servers::start(2);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_until(
        "the lone primary says cluster_state:ok",
        Duration::from_secs(10),
        || {
            servers
                .text(0, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        },
    );
    let check = Command::new("redis-cli")
        .args([
            "--cluster",
            "check",
            &format!("127.0.0.1:{}", servers.port(0)),
        ])
        .output()
        .unwrap();
    let check_text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "redis-cli check:\n{check_text}"
    );
    assert!(
        check_text.contains("All 16384 slots covered"),
        "{check_text}"
    );

    let nodes = servers.names();
    let (code, failed) = verify_failures(&nodes, "1", "1");
    assert_eq!(code, Some(1), "{failed:?}");
    assert_eq!(
        failed["membership"],
        [
            format!("{}: does not know {}", nodes[0], nodes[1]),
            format!("{}: does not know {}", nodes[1], nodes[0]),
        ],
        "{failed:?}"
    );
    assert_eq!(
        failed["replication"],
        [format!(
            "{}: should replicate {} but is a primary",
            nodes[1], nodes[0]
        )],
        "{failed:?}"
    );
    // The replica-to-be has no slot to serve: its own cluster_state is fail, which the
    // README's sentence leaves out; nothing else fails.
    let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(ids, ["membership", "replication", "state"], "{failed:?}");
    assert_eq!(
        failed["state"],
        [format!("{}: cluster_state is not ok", nodes[1])]
    );
    assert!(
        servers
            .text(1, &["CLUSTER", "INFO"])
            .contains("cluster_state:fail")
    );
}

#[test]
fn verify_names_open_slots_and_passes_once_they_are_closed() {
    let servers = Servers::start(2);
    let nodes = servers.names();
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(verify_failures(&nodes, "2", "0").0, Some(0));
    // A migration begun by hand, as resharding tools leave it when interrupted.
    let (first, second) = (servers.myid(0), servers.myid(1));
    let own = servers.shards();
    let slot = own[0].slots.split('-').next().unwrap().to_owned();
    let (from, to, from_id, to_id) = if own[0].primary == 0 {
        (0, 1, first, second)
    } else {
        (1, 0, second, first)
    };
    servers.cmd(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    servers.cmd(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
    let own_line = servers
        .text(from, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .to_owned();
    assert!(
        own_line.contains(&format!("[{slot}->-{to_id}]")),
        "{own_line}"
    );
    let (code, failed) = verify_failures(&nodes, "2", "0");
    assert_eq!(code, Some(1));
    let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(ids, ["slots"], "{failed:?}");
    let mut expected = vec![
        format!("{}: has open slots {slot}", nodes[from]),
        format!("{}: has open slots {slot}", nodes[to]),
    ];
    expected.sort();
    let mut seen = failed["slots"].clone();
    seen.sort();
    assert_eq!(seen, expected);
    let human = clustersmith(&with_nodes(&["verify", "-m", "2"], &nodes), &[]);
    assert_eq!(human.status.code(), Some(1));
    assert!(stdout(&human).contains("FAIL slots"), "{}", stdout(&human));
    for idx in [from, to] {
        servers.cmd(idx, &["CLUSTER", "SETSLOT", &slot, "STABLE"]);
    }
    assert_eq!(
        verify_failures(&nodes, "2", "0"),
        (Some(0), BTreeMap::new())
    );
}

#[test]
fn verify_names_cluster_state_fail_on_a_lone_node_missing_a_slot() {
    let servers = Servers::start(1);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16382"]);
    let nodes = servers.names();
    assert!(
        servers
            .text(0, &["CLUSTER", "INFO"])
            .contains("cluster_state:fail")
    );
    let (code, failed) = verify_failures(&nodes, "1", "0");
    assert_eq!(code, Some(1));
    let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(ids, ["slots", "state"], "{failed:?}");
    assert_eq!(
        failed["state"],
        [format!("{}: cluster_state is not ok", nodes[0])]
    );
    assert!(
        failed["slots"].contains(&format!("{}: 1 slot has no owner: 16383", nodes[0])),
        "{failed:?}"
    );
    // The server's own gate: ok once it has every slot (bounded wait on the server's word).
    servers.cmd(0, &["CLUSTER", "ADDSLOTS", "16383"]);
    wait_until("cluster_state:ok", Duration::from_secs(10), || {
        servers
            .text(0, &["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
    });
    assert_eq!(
        verify_failures(&nodes, "1", "0"),
        (Some(0), BTreeMap::new())
    );
}

#[test]
fn verify_names_a_node_whose_view_disagrees_after_a_change() {
    // A primary gives up a slot by hand: it stops claiming it, but its peer keeps the old
    // owner (the server never takes a slot away on silence), so the views disagree.
    let servers = Servers::start(2);
    let nodes = servers.names();
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    let own = servers.shards();
    let (changed, other) = (own[0].primary, own[1].primary);
    let last = own[0].slots.split('-').nth(1).unwrap().to_owned();
    let first = own[0].slots.split('-').next().unwrap().to_owned();
    servers.cmd(changed, &["CLUSTER", "DELSLOTS", &last]);
    let id = servers.myid(changed);
    let peer_line = servers
        .text(other, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap()
        .to_owned();
    assert!(
        peer_line.ends_with(&format!(" {first}-{last}")),
        "{peer_line}"
    );
    let (code, failed) = verify_failures(&nodes, "2", "0");
    assert_eq!(code, Some(1));
    let below = last.parse::<u16>().unwrap() - 1;
    assert_eq!(
        failed["agreement"],
        [format!(
            "{}: sees {} owning slots {first}-{last} but it owns {first}-{below}",
            nodes[other], nodes[changed]
        )],
        "{failed:?}"
    );
}

#[test]
fn verify_names_primaries_that_share_a_config_epoch() {
    // Slots assigned on two fresh nodes, without distinct epochs, never met: both at epoch 0.
    let servers = Servers::start(2);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]);
    servers.cmd(1, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]);
    for idx in 0..2 {
        let info = servers.text(idx, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_my_epoch:0"), "{info}");
    }
    let nodes = servers.names();
    let (code, failed) = verify_failures(&nodes, "2", "0");
    assert_eq!(code, Some(1));
    assert_eq!(
        failed["epochs"],
        [
            format!("{}: config epoch 0 is also held by {}", nodes[0], nodes[1]),
            format!("{}: config epoch 0 is also held by {}", nodes[1], nodes[0]),
        ],
        "{failed:?}"
    );
    // apply gives them distinct epochs before they meet: then epochs hold.
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        verify_failures(&nodes, "2", "0"),
        (Some(0), BTreeMap::new())
    );
}

/// Takes a new snapshot, asserts it differs from `before`, and keeps it as the next `before`.
fn assert_snapshot_changed(servers: &Servers, before: &mut Snapshot, what: &str) {
    let after = servers.snapshot();
    assert_ne!(*before, after, "the snapshot missed: {what}");
    *before = after;
}

#[test]
fn the_unchanged_snapshot_sees_each_kind_of_change() {
    // The "nothing changed" checks above are only as good as the snapshot: each change a
    // tool could make must show in it.
    let servers = Servers::start(2);
    let mut before = servers.snapshot();
    servers.cmd(1, &["CLUSTER", "SET-CONFIG-EPOCH", "7"]);
    assert_snapshot_changed(&servers, &mut before, "a config epoch");
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    assert_snapshot_changed(&servers, &mut before, "slots");
    let port = servers.port(1).to_string();
    servers.cmd(0, &["CLUSTER", "MEET", "127.0.0.1", &port]);
    // Counted at once, before any handshake shows in a view.
    assert_snapshot_changed(&servers, &mut before, "a MEET");
    wait_until("the nodes met", Duration::from_secs(10), || {
        (0..2).all(|i| {
            let text = servers.text(i, &["CLUSTER", "NODES"]);
            text.lines().count() == 2 && !text.contains("handshake")
        })
    });
    let settled = servers.snapshot();
    assert_eq!(settled.commands, before.commands, "reads are not changes");
    before = settled;
    servers.cmd(1, &["CLUSTER", "REPLICATE", &servers.myid(0)]);
    assert_snapshot_changed(&servers, &mut before, "a role");
    wait_until("the replica is in sync", Duration::from_secs(10), || {
        servers
            .info_field(1, "replication", "master_link_status")
            .as_deref()
            == Some("up")
    });
    wait_until("the primary serves", Duration::from_secs(10), || {
        servers
            .text(0, &["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
    });
    before = servers.snapshot();
    servers.cmd(0, &["SET", "k", "v"]);
    assert_snapshot_changed(&servers, &mut before, "a key");
    // A refused command changed nothing, but it was tried: a run that claims to send nothing
    // must not even try, so the attempt shows (a CLUSTER REPLICATE of a primary onto its own
    // replica).
    let refused = redis::cmd("CLUSTER")
        .arg("REPLICATE")
        .arg(servers.myid(1))
        .query::<redis::Value>(&mut servers.conn(0));
    assert!(refused.is_err(), "{refused:?}");
    let after = servers.snapshot();
    assert_eq!(
        after.attempts[0].get("cluster|replicate"),
        Some(&1),
        "a refused call is an attempt: {:?}",
        after.attempts
    );
    assert_eq!(before.commands, after.commands, "but it ran no change");
}

#[test]
fn changing_commands_are_read_from_commandstats_of_every_version() {
    // Redis 7.0.15 (subcommands, rejected and failed calls) and Redis 6.2.14 (no subcommands).
    let seven = "# Commandstats\r\ncmdstat_cluster|nodes:calls=40,usec=900,usec_per_call=22.50,rejected_calls=0,failed_calls=0\r\ncmdstat_cluster|meet:calls=3,usec=60,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\ncmdstat_cluster|replicate:calls=2,usec=60,usec_per_call=30.00,rejected_calls=0,failed_calls=1\r\ncmdstat_cluster|set-config-epoch:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\ncmdstat_set:calls=500,usec=900,usec_per_call=1.80,rejected_calls=0,failed_calls=0\r\ncmdstat_config|set:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n";
    // Every attempt counts, refused (rejected) and failed ones too.
    assert_eq!(
        changing_commands(seven),
        BTreeMap::from([
            ("cluster|meet".to_owned(), 3),
            ("cluster|replicate".to_owned(), 2),
            ("cluster|set-config-epoch".to_owned(), 1),
            ("config|set".to_owned(), 1),
        ])
    );
    let six = "# Commandstats\r\ncmdstat_cluster:calls=52,usec=1200,usec_per_call=23.08\r\ncmdstat_info:calls=20,usec=400,usec_per_call=20.00\r\n";
    assert_eq!(changing_commands(six), BTreeMap::new());
}
