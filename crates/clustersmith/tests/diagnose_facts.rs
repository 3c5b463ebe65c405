//! `diagnose` establishes what each expected node is before any rule: real servers that
//! exited at startup (a bad directive, a port another server holds), were stopped, or run
//! with cluster support off are the top finding on the right node, with their log's last
//! lines as evidence; files are linked to their node through redis.conf's own directives
//! (also in a BOSH layout where every node has port 6379); evidence files that cannot be read
//! stop the run with exit 2.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clustersmith_io::sandbox::find_server_binary;
use support::*;

fn diagnose(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["diagnose", "--format", "json"];
    all.extend(args.iter().map(String::as_str));
    let out = clustersmith(&all, env);
    (out.status.code(), json(&out))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn top(report: &serde_json::Value) -> (&str, &str) {
    let first = &report["findings"][0];
    (
        first["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no finding: {report}")),
        first["node"].as_str().unwrap_or(""),
    )
}

fn symptoms(finding: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = finding["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["node"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn evidence_texts(finding: &serde_json::Value) -> Vec<String> {
    finding["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

fn node_entry<'a>(report: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == label)
        .unwrap_or_else(|| panic!("no node {label}: {report}"))
}

/// A port (and its bus port) nothing listens on, above the ports the harness hands out
/// first (from 20001), below the ephemeral range.
fn spare_port(start: u16) -> u16 {
    free_port_block(start, 1)
}

#[test]
fn a_node_that_exited_at_startup_is_the_top_finding_with_its_fatal_line() {
    let servers = Servers::start(1);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let dir = tempfile::tempdir().unwrap();
    let port = spare_port(22001);
    let conf = broken_conf(&dir.path().join("b"), port, "bogus-directive yes\n");
    let log = dir.path().join("b/server.log");
    assert_eq!(
        run_to_exit(&find_server_binary(None).unwrap(), &conf, &log),
        1
    );
    let (a, b) = (servers.ips()[0].clone(), format!("127.0.0.1:{port}"));
    let mut args = files_of(&servers);
    args.extend(strings(&[
        "--redis-conf",
        &path(&conf),
        "--log",
        &path(&log),
    ]));
    args.extend(strings(&["-m", "1", "-r", "1", &a, &b]));
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(1), "{report}");
    // One top finding for the broken node: the refused line (the log catalog's CS501),
    // with the node not running and its lonely peer under it.
    assert_eq!(top(&report), ("CS501", b.as_str()), "{report}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report}");
    let cause = &report["findings"][0];
    assert_eq!(
        symptoms(cause),
        [
            ("CS301".to_owned(), a.clone()),
            ("CS330".to_owned(), b.clone())
        ]
    );
    let down = cause["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "CS330")
        .unwrap();
    assert!(
        down["summary"]
            .as_str()
            .unwrap()
            .ends_with("its log ends with: Bad directive or wrong number of arguments"),
        "{down}"
    );
    // The fatal lines, from the log redis.conf's `logfile` names (the server never logged
    // an id to attach it by).
    let fatal = down["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "refused config line (config line 8): bogus-directive yes")
        .unwrap_or_else(|| panic!("{down}"));
    assert_eq!(fatal["path"], path(&log).as_str());
    assert!(evidence_texts(down).contains(&"connection refused".to_owned()));
    assert_eq!(node_entry(&report, &b)["answer"], "refused");

    // Without its log (stderr went nowhere), the refused line is read from its redis.conf
    // itself (CS403), and the node not running hangs under it with what it breaks.
    let mut args = files_of(&servers);
    args.extend(strings(&["--redis-conf", &path(&conf)]));
    args.extend(strings(&["-m", "1", "-r", "1", &a, &b]));
    let (_, report) = diagnose(&args, &[]);
    assert_eq!(top(&report), ("CS403", b.as_str()), "{report}");
    let mut under = symptoms(&report["findings"][0]);
    under.sort();
    assert_eq!(
        under,
        [
            ("CS301".to_owned(), a.clone()),
            ("CS330".to_owned(), b.clone())
        ]
    );
}

#[test]
fn a_port_already_in_use_is_traced_to_the_node_that_holds_it() {
    let servers = Servers::start(1);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let taken = servers.port(0);
    // The second node's redis.conf repeats the first node's port: it cannot bind and exits.
    let dir = tempfile::tempdir().unwrap();
    let expected_port = spare_port(22201);
    let conf = broken_conf(&dir.path().join("b"), taken, "");
    let log = dir.path().join("b/server.log");
    assert_eq!(
        run_to_exit(&find_server_binary(None).unwrap(), &conf, &log),
        1
    );
    let (a, b) = (
        servers.ips()[0].clone(),
        format!("127.0.0.1:{expected_port}"),
    );
    let mut args = files_of(&servers);
    args.extend(strings(&[
        "--redis-conf",
        &path(&conf),
        "--log",
        &path(&log),
    ]));
    args.extend(strings(&["-m", "1", "-r", "1", &a, &b]));
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS337", b.as_str()), "{report}");
    let cause = &report["findings"][0];
    assert!(
        cause["summary"]
            .as_str()
            .unwrap()
            .contains("share their port"),
        "{cause}"
    );
    // Its failed listen (the log catalog's CS502), its not running and its lonely peer
    // hang under it.
    assert_eq!(
        symptoms(cause),
        [
            ("CS301".to_owned(), a.clone()),
            ("CS330".to_owned(), b.clone()),
            ("CS502".to_owned(), b.clone())
        ]
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report}");
    let down = cause["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "CS330")
        .unwrap();
    let texts = evidence_texts(down);
    assert!(
        texts.contains(&format!(
            "Failed listening on port {taken} (TCP), aborting."
        )),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("port {taken} (expected at port {expected_port})")),
        "{texts:?}"
    );
    // Its redis.conf was attached to it although its port is the other node's.
    assert_eq!(node_entry(&report, &b)["redis_conf"], path(&conf).as_str());
}

#[test]
fn a_stopped_node_of_a_pair_is_the_top_finding_and_its_lonely_peer_hangs_under_it() {
    let mut servers = Servers::start(2);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    servers.stop(1);
    let nodes = servers.ips();
    let mut args = files_of(&servers);
    args.extend(strings(&["-m", "1", "-r", "1"]));
    args.extend(nodes.iter().cloned());
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS330", nodes[1].as_str()), "{report}");
    let cause = &report["findings"][0];
    assert_eq!(symptoms(cause), [("CS301".to_owned(), nodes[0].clone())]);
    // Why it stopped, from the end of its own log.
    let texts = evidence_texts(cause);
    assert!(
        texts.iter().any(|t| t.contains("User requested shutdown")),
        "{texts:?}"
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report}");
}

/// A primary owning every slot and a second node started with one directive of its own,
/// diagnosed as a 1+1 with both nodes' files.
fn beside_a_primary(
    directive: (&str, &str),
) -> (Servers, Vec<String>, Option<i32>, serde_json::Value) {
    let mut servers = Servers::start(1);
    let bin = find_server_binary(None).unwrap();
    servers.add(
        &bin,
        &ServerOpts {
            directives: vec![(directive.0.into(), directive.1.into())],
            ..Default::default()
        },
    );
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let nodes = servers.ips();
    let mut args = files_of(&servers);
    args.extend(strings(&["-m", "1", "-r", "1"]));
    args.extend(nodes.iter().cloned());
    let (code, report) = diagnose(&args, &[]);
    (servers, nodes, code, report)
}

#[test]
fn a_node_with_cluster_support_disabled_is_named_with_its_directive() {
    let (_servers, nodes, code, report) = beside_a_primary(("cluster-enabled", "no"));
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS332", nodes[1].as_str()), "{report}");
    let cause = &report["findings"][0];
    let texts = evidence_texts(cause);
    assert!(
        texts.contains(&"ERR This instance has cluster support disabled".to_owned()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"cluster-enabled no".to_owned()),
        "{texts:?}"
    );
    // It answers INFO: its flavour and version are known.
    let version = node_entry(&report, &nodes[1])["version"].as_str().unwrap();
    assert!(
        version.starts_with("redis ") || version.starts_with("valkey "),
        "{version}"
    );
    assert_eq!(node_entry(&report, &nodes[1])["answer"], "cluster-disabled");
    assert_eq!(symptoms(cause), [("CS301".to_owned(), nodes[0].clone())]);
}

#[test]
fn a_bosh_job_on_port_6379_is_attached_to_its_node_by_id_and_directives() {
    // The seed's failure: requirepass without masterauth, the replica's link never comes up.
    let secret = "facts-secret";
    let servers = Servers::start_with(
        2,
        &ServerOpts {
            directives: vec![("requirepass".into(), secret.into())],
            ..Default::default()
        },
    );
    let env = [("REDISCLI_AUTH", secret)];
    let nodes = servers.ips();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "1", "--timeout", "4"], &nodes),
        &env,
    );
    assert_eq!(out.status.code(), Some(3));
    wait_until(
        "NOAUTH in the replica's log",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(servers.servers[1].log_path())
                .unwrap_or_default()
                .contains("NOAUTH")
        },
    );
    // The replica's files in the BOSH layout, as its VM has them: port 6379 (every BOSH
    // node's), the server's own log named by `logfile`, nodes.conf in the store dir.
    let root = tempfile::tempdir().unwrap();
    let job = "cluster-6";
    let put = |rel: &str, text: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put(
        &format!("var/vcap/jobs/{job}/config/redis.conf"),
        &format!(
            "port 6379\ncluster-enabled yes\nrequirepass \"{secret}\"\ndir /var/vcap/store/{job}\nlogfile /var/vcap/sys/log/{job}/redis-server.log\n"
        ),
    );
    let replica = &servers.servers[1];
    put(
        &format!("var/vcap/store/{job}/nodes.conf"),
        &std::fs::read_to_string(replica.dir.join("nodes.conf")).unwrap(),
    );
    put(
        &format!("var/vcap/sys/log/{job}/redis-server.log"),
        &std::fs::read_to_string(replica.log_path()).unwrap(),
    );
    let mut args = strings(&["--bosh-job", job, "--root", &path(root.path())]);
    args.extend(nodes.iter().cloned());
    let (code, report) = diagnose(&args, &env);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS202", nodes[1].as_str()), "{report}");
    assert_eq!(
        symptoms(&report["findings"][0]),
        [("CS204".to_owned(), nodes[1].clone())]
    );
    let entry = node_entry(&report, &nodes[1]);
    assert!(
        entry["redis_conf"]
            .as_str()
            .unwrap()
            .ends_with("config/redis.conf"),
        "{entry}"
    );
    assert!(
        entry["log"].as_str().unwrap().ends_with("redis-server.log"),
        "{entry}"
    );
    assert!(
        entry["nodes_conf"]
            .as_str()
            .unwrap()
            .ends_with("nodes.conf"),
        "{entry}"
    );
    assert_eq!(report["nodes"].as_array().unwrap().len(), 2, "{report}");
    assert!(!report.to_string().contains(secret));

    // Files only (the post-deploy's fallback): all of the job's files are one node.
    let args = strings(&["--bosh-job", job, "--root", &path(root.path())]);
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(1), "{report}");
    let only = report["nodes"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{report}");
    assert_eq!(only[0]["node"], format!("files of job {job}").as_str());
    for kind in ["redis_conf", "nodes_conf", "log"] {
        assert!(only[0][kind].is_string(), "{kind}: {report}");
    }
    assert_eq!(top(&report).0, "CS202", "{report}");
}

#[test]
fn evidence_files_that_cannot_be_read_stop_the_run_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("dump.rdb");
    std::fs::write(&binary, b"REDIS0011\xfa\x09redis-ver\x057.0.15\x00\x00\xff").unwrap();
    let missing = dir.path().join("missing.conf");
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            strings(&["--redis-conf", &path(&missing)]),
            path(&missing),
            "No such file or directory",
        ),
        (
            strings(&["--log", &path(dir.path())]),
            path(dir.path()),
            "is a directory",
        ),
        (
            strings(&["--log", &path(&binary)]),
            path(&binary),
            "is not text",
        ),
        (
            strings(&[
                "--nodes-conf",
                &path(&missing),
                "--post-deploy-log",
                &path(&binary),
            ]),
            path(&missing),
            "2 unusable evidence files",
        ),
    ];
    for (args, named, reason) in cases {
        let mut all = vec!["diagnose"];
        all.extend(args.iter().map(String::as_str));
        let out = clustersmith(&all, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&named) && err.contains(reason),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!stdout(&out).contains("root cause"), "{args:?}");
        // JSON callers get the error as one document too.
        let mut json_args = vec!["diagnose", "--format", "json"];
        json_args.extend(args.iter().map(String::as_str));
        let out = clustersmith(&json_args, &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(json(&out).to_string().contains(&named));
    }
}

#[test]
fn a_100_mb_log_is_read_in_bounded_memory() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("server.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let mut written = 0usize;
    let mut i = 0u64;
    while written < 100 * 1024 * 1024 {
        let line = format!(
            "4242:M 02 Dec 2026 05:{:02}:{:02}.{:03} * Connection with replica 10.0.{}.{}:6379 lost.\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            i % 200,
            i % 250
        );
        file.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    file.write_all(b"4242:M 02 Dec 2026 06:00:00.000 # Warning: Could not create server TCP listening socket ::*:6379: unable to bind socket, errno: 97\n").unwrap();
    file.flush().unwrap();
    drop(file);
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M"])
        .arg(env!("CARGO_BIN_EXE_clustersmith"))
        .args(["diagnose", "--format", "json", "--log"])
        .arg(&big)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err} in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The last line is still read (the IPv6 note), and the repeats are counted in a note.
    assert_eq!(top(&report).0, "CS401", "{report}");
    assert!(
        report.to_string().contains("repeated lines left out"),
        "{report}"
    );
    let rss_kb: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 100 * 1024, "peak RSS {rss_kb} kB for a 100 MB log");
}

/// A MEET still under way when diagnose reads the node: diagnose reads it again a second
/// later, and a peer that has joined by then is no stuck bus (CS303), said in the notes.
#[test]
fn a_meet_still_under_way_at_the_first_read_is_read_again_not_called_stuck() {
    let mut servers = Servers::start(1);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let port = allocate_port();
    servers.cmd(0, &["CLUSTER", "MEET", "127.0.0.1", &port.to_string()]);
    let listed = format!("127.0.0.1:{port}@");
    wait_until(
        "node 0 lists a handshake where nothing listens yet",
        Duration::from_secs(5),
        || {
            let nodes = servers.text(0, &["CLUSTER", "NODES"]);
            nodes
                .lines()
                .any(|l| l.contains(&listed) && l.contains("handshake"))
        },
    );
    let node = servers.ips()[0].clone();
    let diagnose = Command::new(env!("CARGO_BIN_EXE_clustersmith"))
        .args(["diagnose", "--format", "json", "-m", "1", "-r", "0", &node])
        .env_remove("REDISCLI_AUTH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first read (CLUSTER NODES, CLUSTER INFO, INFO in one pipeline) is done once a
    // client's last command is INFO; then the peer starts, well inside the second.
    wait_until(
        "diagnose has read node 0 once",
        Duration::from_secs(5),
        || {
            servers
                .text(0, &["CLIENT", "LIST"])
                .lines()
                .any(|l| l.contains(" cmd=info "))
        },
    );
    let bin = find_server_binary(None).unwrap();
    servers.add(
        &bin,
        &ServerOpts {
            port: Some(port),
            ..Default::default()
        },
    );
    let out = diagnose.wait_with_output().unwrap();
    let report = json(&out);
    eprintln!("{report}");
    // The premise, from diagnose itself: the handshake at its first read, joined at its second.
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(&format!("listed 127.0.0.1:{port} in handshake; read again 1 s later, it was talking over the bus"))),
        "{notes:?}"
    );
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| std::iter::once(f).chain(f["symptoms"].as_array().into_iter().flatten()))
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(!ids.contains(&"CS303"), "{report}");
}

#[test]
fn a_healthy_cluster_reports_nothing_at_warning_or_above_and_every_node_is_a_member() {
    let servers = Servers::start(4);
    let nodes = servers.ips();
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    let mut args = files_of(&servers);
    for s in &servers.servers {
        args.extend(strings(&["--nodes-conf", &path(&s.dir.join("nodes.conf"))]));
    }
    args.extend(strings(&["-m", "2", "-r", "1", "--fail-on", "warning"]));
    args.extend(nodes.iter().cloned());
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report["worst"].is_null() || report["worst"] == "info",
        "{report}"
    );
    // Every file found its node: no node of files only.
    let entries = report["nodes"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{report}");
    for entry in entries {
        assert_eq!(entry["answer"], "member", "{entry}");
        for kind in ["redis_conf", "nodes_conf", "log"] {
            assert!(entry[kind].is_string(), "{kind}: {entry}");
        }
    }
}

#[test]
fn a_node_with_another_password_than_its_peers_is_named() {
    let (_servers, nodes, code, report) = beside_a_primary(("requirepass", "odd-one-out"));
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS338", nodes[1].as_str()), "{report}");
    let texts = evidence_texts(&report["findings"][0]);
    assert!(
        texts.contains(&"requirepass is set".to_owned()),
        "{texts:?}"
    );
    assert!(!report.to_string().contains("odd-one-out"));
    assert_eq!(node_entry(&report, &nodes[1])["answer"], "auth-refused");
    // When no node accepts the settings, they are the problem: exit 2, as before.
    let out = clustersmith(&["diagnose", &nodes[1]], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stopped_and_misconfigured_nodes_are_found_on_redis_6_2_and_valkey() {
    for bin in other_servers() {
        let mut servers = Servers::start_with(
            2,
            &ServerOpts {
                bin: Some(bin.clone()),
                ..Default::default()
            },
        );
        // Redis 6.2 has no ADDSLOTSRANGE.
        let mut addslots = vec!["CLUSTER", "ADDSLOTS"];
        let slots: Vec<String> = (0..16384).map(|s| s.to_string()).collect();
        addslots.extend(slots.iter().map(String::as_str));
        servers.cmd(0, &addslots);
        servers.stop(1);
        let nodes = servers.ips();
        let mut args = files_of(&servers);
        args.extend(strings(&["-m", "1", "-r", "1"]));
        args.extend(nodes.iter().cloned());
        let (code, report) = diagnose(&args, &[]);
        assert_eq!(code, Some(1), "{}: {report}", bin.display());
        assert_eq!(top(&report), ("CS330", nodes[1].as_str()), "{report}");
        assert_eq!(
            symptoms(&report["findings"][0]),
            [("CS301".to_owned(), nodes[0].clone())]
        );
        let log = path(&servers.servers[1].log_path());
        assert!(
            report["findings"][0]["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == log.as_str()),
            "{report}"
        );

        // A bad line in redis.conf: the server's own words from stderr are the reason.
        let dir = tempfile::tempdir().unwrap();
        let port = spare_port(22301);
        let conf = broken_conf(&dir.path().join("b"), port, "bogus-directive yes\n");
        let out = dir.path().join("b/server.log");
        let status = {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .unwrap();
            Command::new(&bin)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .status()
                .unwrap()
        };
        assert!(!status.success());
        let b = format!("127.0.0.1:{port}");
        let mut args = strings(&[
            "--redis-conf",
            &path(&conf),
            "--log",
            &path(&out),
            &nodes[0],
            &b,
        ]);
        args.extend(strings(&["-m", "1", "-r", "1"]));
        let (_, report) = diagnose(&args, &[]);
        assert_eq!(top(&report), ("CS501", b.as_str()), "{report}");
        assert!(
            report["findings"][0]["symptoms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == "CS330")
                .unwrap_or_else(|| panic!("{report}"))["summary"]
                .as_str()
                .unwrap()
                .contains("Bad directive"),
            "{}: {report}",
            bin.display()
        );
    }
}

#[test]
fn a_node_that_speaks_only_tls_among_plaintext_nodes_is_named_not_refused() {
    let servers = Servers::start_with(
        2,
        &ServerOpts {
            tls: Some(DualTls::default()),
            ..Default::default()
        },
    );
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    // The first node by its plaintext port, the second by its TLS port.
    let nodes = [servers.ips()[0].clone(), servers.tls_ips()[1].clone()];
    let mut args = files_of(&servers);
    args.extend(strings(&["-m", "1", "-r", "1"]));
    args.extend(nodes.iter().cloned());
    let (code, report) = diagnose(&args, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(top(&report), ("CS335", nodes[1].as_str()), "{report}");
    assert_eq!(node_entry(&report, &nodes[1])["answer"], "tls-only");
    // Its redis.conf was found by its TLS port, with the directives that say so.
    let texts = evidence_texts(&report["findings"][0]);
    assert!(
        texts.iter().any(|t| t.starts_with("tls-port ")),
        "{texts:?}"
    );
    // Reaching no node at all with the wrong protocol is still the settings' fault: exit 2.
    let out = clustersmith(&["diagnose", &nodes[1]], &[]);
    assert_eq!(out.status.code(), Some(2));
}
