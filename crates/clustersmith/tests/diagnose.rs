//! `diagnose` on real broken clusters built by the tests (real misconfigurations, real
//! server logs), on the seed's captured files, and on healthy clusters, which must yield
//! no warning or error. Also `explain` and the generated rule reference.

mod support;

use clustersmith_io::pki::CertOptions;
use std::time::Duration;

use support::*;

fn ids(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report}"))
}

fn diagnose(
    args: &[String],
    nodes: &[String],
    env: &[(&str, &str)],
) -> (Option<i32>, serde_json::Value) {
    let mut all = vec![
        "diagnose".to_owned(),
        "--format".to_owned(),
        "json".to_owned(),
    ];
    all.extend(args.iter().cloned());
    all.extend(nodes.iter().cloned());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = clustersmith(&all, env);
    assert_no_password(&out, env);
    (out.status.code(), json(&out))
}

/// The password given in `env` appears neither on stdout nor on stderr.
fn assert_no_password(out: &std::process::Output, env: &[(&str, &str)]) {
    for (_, secret) in env.iter().filter(|(k, _)| *k == "REDISCLI_AUTH") {
        assert!(!stdout(out).contains(secret), "password on stdout");
        assert!(!stderr(out).contains(secret), "password on stderr");
    }
}

fn seed(name: &str) -> String {
    format!(
        "{}/../clustersmith-core/tests/fixtures/seed/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn seed_files_yield_the_seed_causes() {
    let args = [
        "--post-deploy-log".to_owned(),
        seed("scenario2-post-deploy.stderr.log"),
        "--log".to_owned(),
        seed("noauth-replica-cluster-6.log"),
        "--log".to_owned(),
        seed("scenario1-cluster-6.log"),
    ];
    let (code, report) = diagnose(&args, &[], &[]);
    assert_eq!(code, Some(1));
    let found = ids(&report);
    for id in ["CS101", "CS202", "CS401"] {
        assert!(found.contains(&id.to_owned()), "{id} missing: {found:?}");
    }
    // The early REPLICATE and the claim of success follow from the refused MEET: they hang
    // under it.
    let under: Vec<&str> = finding(&report, "CS101")["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in ["CS102", "CS103"] {
        assert!(under.contains(&id), "{id} not under CS101: {under:?}");
    }
    // The harmless IPv6 warning is information, ranked last.
    assert_eq!(finding(&report, "CS401")["severity"], "info");
    assert_eq!(found.last().unwrap(), "CS401");
    let refused = finding(&report, "CS101");
    assert!(refused["evidence"][0]["line"].as_u64().unwrap() > 0);
}

#[test]
fn seed_scenario_one_on_real_servers_is_traced_to_the_missing_meet() {
    // A primary with every slot and a replica-to-be that never met it.
    let servers = Servers::start(2);
    servers.cmd(0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let mut args = files_of(&servers);
    args.extend(["-m", "1", "-r", "1"].map(String::from));
    let (code, report) = diagnose(&args, &servers.names(), &[]);
    assert_eq!(code, Some(1));
    let lone = finding(&report, "CS301");
    let symptoms: Vec<&str> = lone["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(symptoms, ["CS302"], "{report}");
    assert_eq!(ids(&report).iter().filter(|i| *i == "CS301").count(), 2);
    // With the seed's post-deploy log, the hostname MEET is named as the cause above it.
    args.extend([
        "--post-deploy-log".to_owned(),
        seed("scenario1-post-deploy.stderr.log"),
    ]);
    let (_, report) = diagnose(&args, &servers.names(), &[]);
    assert_eq!(ids(&report)[0], "CS101", "{report}");
    assert!(!ids(&report).contains(&"CS301".to_owned()));
    // Formed, the same nodes are healthy.
    let out = clustersmith(&with_nodes(&["apply", "-m", "1"], &servers.names()), &[]);
    assert_eq!(out.status.code(), Some(0));
    let mut args = files_of(&servers);
    args.extend(["-m", "1", "-r", "1"].map(String::from));
    let (code, report) = diagnose(&args, &servers.names(), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["worst"].is_null(), "{report}");
}

#[test]
fn requirepass_without_masterauth_is_one_cause_with_config_log_and_live_evidence() {
    let secret = "diag-secret-never-shown";
    let mut servers = Servers::start_with(
        2,
        &ServerOpts {
            directives: vec![("requirepass".into(), secret.into())],
            ..Default::default()
        },
    );
    servers.password = Some(secret.into());
    let env = [("REDISCLI_AUTH", secret)];
    let nodes = servers.names();
    // Formation cannot finish: the replica's link never comes up.
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
    let (code, report) = diagnose(&files_of(&servers), &nodes, &env);
    assert_eq!(code, Some(1));
    let cause = finding(&report, "CS202");
    assert_eq!(cause["node"], nodes[1].as_str());
    let symptoms = cause["symptoms"].as_array().unwrap();
    assert_eq!(symptoms.len(), 1, "{report}");
    assert_eq!(symptoms[0]["id"], "CS204");
    let mut sources: Vec<String> = cause["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .chain(symptoms[0]["evidence"].as_array().unwrap())
        .map(|e| match e["source"].as_str().unwrap() {
            "file" if e["path"].as_str().unwrap().ends_with("redis.conf") => "conf".to_owned(),
            "file" => "log".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    sources.sort();
    sources.dedup();
    assert_eq!(sources, ["conf", "live", "log"], "{report}");
    assert!(
        !ids(&report).contains(&"CS204".to_owned()),
        "symptom ranked alone"
    );
    assert!(!report.to_string().contains(secret));
    // The human report, with its evidence lines from the files, neither.
    let mut human = vec!["diagnose".to_owned()];
    human.extend(files_of(&servers));
    human.extend(nodes.iter().cloned());
    let human: Vec<&str> = human.iter().map(String::as_str).collect();
    let out = clustersmith(&human, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("CS202"), "{}", stdout(&out));
    assert_no_password(&out, &env);
}

#[test]
fn renamed_psync_alone_still_replicates_but_renaming_sync_too_breaks_it() {
    // PSYNC renamed: replicas fall back to SYNC, so the cluster forms; a warning.
    let one = Servers::start_with(
        2,
        &ServerOpts {
            directives: vec![("rename-command".into(), "PSYNC \"\"".into())],
            ..Default::default()
        },
    );
    let out = clustersmith(&with_nodes(&["apply", "-m", "1"], &one.names()), &[]);
    assert_eq!(out.status.code(), Some(0));
    let (code, report) = diagnose(&files_of(&one), &one.names(), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(finding(&report, "CS206")["severity"], "warning");

    // Both renamed: no replica can sync; the cause carries the link-down symptom.
    let both = Servers::start_with(
        2,
        &ServerOpts {
            directives: vec![
                ("rename-command".into(), "PSYNC \"\"".into()),
                ("rename-command".into(), "SYNC \"\"".into()),
            ],
            ..Default::default()
        },
    );
    let nodes = both.names();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "1", "--timeout", "4"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let (code, report) = diagnose(&files_of(&both), &nodes, &[]);
    assert_eq!(code, Some(1));
    let cause = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "CS203" && f["node"] == nodes[1].as_str())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(cause["symptoms"][0]["id"], "CS204", "{report}");
}

#[test]
fn replicas_piled_on_one_primary_and_open_slots_are_found() {
    let servers = Servers::start(4);
    let nodes = servers.names();
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    let own_line = |idx: usize| {
        servers
            .text(idx, &["CLUSTER", "NODES"])
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_owned()
    };
    let (primaries, replicas): (Vec<usize>, Vec<usize>) =
        (0..4).partition(|i| own_line(*i).contains("master"));
    let (first, second) = (servers.myid(primaries[0]), servers.myid(primaries[1]));
    let replicates = |idx: usize, id: &str| {
        let line = own_line(idx);
        line.contains("slave") && line.contains(id)
    };
    let shape = ["-m", "2", "-r", "1"].map(String::from);

    // Every replica under the first primary (the seed's old template).
    for idx in &replicas {
        if !replicates(*idx, &first) {
            servers.cmd(*idx, &["CLUSTER", "REPLICATE", &first]);
        }
    }
    wait_until(
        "both replicas on one primary",
        Duration::from_secs(10),
        || replicas.iter().all(|i| replicates(*i, &first)),
    );
    let (code, report) = diagnose(&shape, &nodes, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(finding(&report, "CS104")["severity"], "error");

    // Spread again, but with a migration left half-done: a warning, which fails only
    // --fail-on warning.
    servers.cmd(replicas[0], &["CLUSTER", "REPLICATE", &second]);
    // Spread, and synced: a replica still in its first sync is a finding of its own.
    wait_until("replicas spread again", Duration::from_secs(10), || {
        replicates(replicas[0], &second)
            && servers
                .info_field(replicas[0], "replication", "master_link_status")
                .as_deref()
                == Some("up")
    });
    let slot = own_line(primaries[0])
        .split_whitespace()
        .nth(8)
        .and_then(|r| r.split('-').next())
        .unwrap()
        .to_owned();
    servers.cmd(
        primaries[0],
        &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &second],
    );
    let (code, report) = diagnose(&shape, &nodes, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(ids(&report), ["CS307"], "{report}");
    let mut strict = shape.to_vec();
    strict.extend(["--fail-on", "warning"].map(String::from));
    assert_eq!(diagnose(&strict, &nodes, &[]).0, Some(1));
    servers.cmd(primaries[0], &["CLUSTER", "SETSLOT", &slot, "STABLE"]);
    let (code, report) = diagnose(&strict, &nodes, &[]);
    assert_eq!(code, Some(0), "{report}");
}

#[test]
fn tls_misconfigurations_on_real_servers_are_named() {
    // Node certificates without clientAuth: the TLS cluster bus never connects.
    let no_client_auth = Servers::start_with(
        2,
        &ServerOpts {
            tls: Some(DualTls {
                cert: CertOptions {
                    server_auth_only: true,
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let nodes = no_client_auth.names();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "1", "--timeout", "4"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let (code, report) = diagnose(&files_of(&no_client_auth), &nodes, &[]);
    assert_eq!(code, Some(1));
    let cause = finding(&report, "CS305");
    assert!(
        cause["evidence"][0]["text"]
            .as_str()
            .unwrap()
            .contains("without clientAuth"),
        "{report}"
    );

    // Replicas without tls-replication behind `tls-cluster yes`: plaintext to a TLS port.
    let plaintext = Servers::start_with(
        2,
        &ServerOpts {
            tls: Some(DualTls {
                plaintext_replication: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let nodes = plaintext.names();
    let out = clustersmith(
        &with_nodes(&["apply", "-m", "1", "--timeout", "4"], &nodes),
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let (code, report) = diagnose(&files_of(&plaintext), &nodes, &[]);
    assert_eq!(code, Some(1));
    let cause = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "CS201" && f["node"] == nodes[1].as_str())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(cause["symptoms"][0]["id"], "CS204", "{report}");
}

#[test]
fn nodes_of_two_clusters_given_as_one_are_named() {
    let servers = Servers::start(4);
    let names = servers.names();
    for pair in [&names[0..2], &names[2..4]] {
        let out = clustersmith(&with_nodes(&["apply", "-m", "1"], pair), &[]);
        assert_eq!(out.status.code(), Some(0));
    }
    let mixed = vec![names[0].clone(), names[2].clone()];
    let (code, report) = diagnose(
        &["-m".into(), "2".into(), "-r".into(), "0".into()],
        &mixed,
        &[],
    );
    assert_eq!(code, Some(1));
    let foreign: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "CS310")
        .collect();
    assert_eq!(foreign.len(), 2, "{report}");
}

#[test]
fn healthy_clusters_plain_tls_and_password_yield_no_warning_even_with_config_renamed() {
    // Plain, with CONFIG renamed away (as the BOSH forge does): diagnose never needs it.
    let plain = Servers::start_with(
        4,
        &ServerOpts {
            directives: vec![("rename-command".into(), "CONFIG \"\"".into())],
            ..Default::default()
        },
    );
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &plain.names()), &[]);
    assert_eq!(out.status.code(), Some(0));
    let mut args = files_of(&plain);
    args.extend(["-m", "2", "--fail-on", "warning"].map(String::from));
    let (code, report) = diagnose(&args, &plain.names(), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report["worst"].is_null() || report["worst"] == "info",
        "{report}"
    );

    // TLS (dual mode, over the TLS ports) with a password.
    let secret = "healthy-secret";
    let tls = Servers::start_with(
        2,
        &ServerOpts {
            password: Some(secret.into()),
            tls: Some(DualTls::default()),
            ..Default::default()
        },
    );
    let env = [("REDISCLI_AUTH", secret)];
    let mut apply = vec!["apply".to_owned(), "-m".to_owned(), "1".to_owned()];
    apply.extend(tls.tls_args());
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    let tls_nodes = tls.tls_ips();
    let out = clustersmith(&with_nodes(&apply, &tls_nodes), &env);
    assert_eq!(out.status.code(), Some(0));
    let mut args = files_of(&tls);
    args.extend(tls.tls_args());
    args.extend(["-m", "1", "--fail-on", "warning"].map(String::from));
    let (code, report) = diagnose(&args, &tls_nodes, &env);
    assert_eq!(code, Some(0), "{report}");
    assert!(!report.to_string().contains(secret));
}

#[test]
fn bosh_job_layout_under_a_root_is_read() {
    let root = tempfile::tempdir().unwrap();
    let job = "cluster-6";
    let put = |rel: &str, text: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put(
        &format!("var/vcap/jobs/{job}/config/redis.conf"),
        "port 0\ntls-port 6379\ntls-cluster yes\nrequirepass \"x\"\ndir /var/vcap/store/cluster-6\nrename-command SYNC \"\"\n",
    );
    put(
        &format!("var/vcap/sys/log/{job}/{job}.log"),
        &std::fs::read_to_string(seed("tls-primary-cluster-6.log")).unwrap(),
    );
    put(
        &format!("var/vcap/sys/log/{job}/post-deploy.stderr.log"),
        &std::fs::read_to_string(seed("scenario1-post-deploy.stderr.log")).unwrap(),
    );
    put(
        "var/vcap/store/cluster-6/nodes.conf",
        "d133fcb29625580775948cdff631de559d94e602 :6379@16379 myself,master - 0 0 0 connected 0-16383\nvars currentEpoch 0 lastVoteEpoch 0\n",
    );
    let args = [
        "--bosh-job".to_owned(),
        job.to_owned(),
        "--root".to_owned(),
        path(root.path()),
    ];
    let (code, report) = diagnose(&args, &[], &[]);
    assert_eq!(code, Some(1));
    let found = ids(&report);
    for id in ["CS101", "CS201", "CS202", "CS206"] {
        assert!(found.contains(&id.to_owned()), "{id} missing: {report}");
    }
    // The wrong-version line on this node is explained by its own missing tls-replication.
    let tls = finding(&report, "CS201");
    assert_eq!(tls["symptoms"][0]["id"], "CS205", "{report}");
    assert!(report["notes"].as_array().unwrap().is_empty(), "{report}");
}

#[test]
fn explain_renders_the_registry_and_docs_are_generated_from_it() {
    let out = clustersmith(&["explain", "CS202"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for part in [
        "replication-auth-missing",
        "why it matters",
        "fix:",
        "false positives",
    ] {
        assert!(text.contains(part), "{text}");
    }
    let all = clustersmith(&["explain", "--format", "json"], &[]);
    assert!(json(&all)["rules"].as_array().unwrap().len() >= 20);
    assert_eq!(
        clustersmith(&["explain", "CS999"], &[]).status.code(),
        Some(2)
    );
    let markdown = clustersmith(&["explain", "--format", "markdown"], &[]);
    let docs = std::fs::read_to_string(format!(
        "{}/../../docs/rules.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(
        stdout(&markdown),
        docs,
        "docs/rules.md is stale: regenerate it with `clustersmith explain --format markdown > docs/rules.md`"
    );
}

/// A wrong address in the node list (issue 23 §4): the node that is not there (CS330) is the
/// cause, and the replicas' count it spoils (CS104, whose fix is CLUSTER REPLICATE) hangs
/// under it instead of leading the report.
#[test]
fn a_wrong_address_in_the_node_list_leads_and_explains_the_replica_count() {
    let servers = Servers::start(6);
    let nodes = servers.ips();
    let out = clustersmith(&with_nodes(&["apply", "-m", "3", "-r", "1"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    // A replica's address with a port nothing listens on.
    let mut given = nodes.clone();
    let wrong = format!("127.0.0.1:{}", allocate_port());
    given[5] = wrong.clone();
    let args: Vec<String> = ["-m", "3", "-r", "1"].map(String::from).into();
    let (_, report) = diagnose(&args, &given, &[]);
    let top = ids(&report);
    assert_eq!(top.first().map(String::as_str), Some("CS330"), "{report}");
    assert_eq!(
        finding(&report, "CS330")["node"],
        wrong.as_str(),
        "{report}"
    );
    assert!(
        !top.contains(&"CS104".to_owned()),
        "CS104 leads too: {report}"
    );
    let symptoms = finding(&report, "CS330")["symptoms"].to_string();
    assert!(
        symptoms.contains("CS104"),
        "CS104 is one of its symptoms: {report}"
    );
    // The premise: without the wrong address, the replicas' count is right.
    let (code, healthy) = diagnose(&args, &nodes, &[]);
    assert_eq!(code, Some(0), "{healthy}");
}
