//! TLS modes, ACL users and bad security input, on real servers with certificates generated
//! by the test. Dual-mode servers keep a plaintext port, through which the harness checks
//! that a refused run changed nothing.

mod support;

use clustersmith_io::pki::{CertOptions, TestCa};
use support::*;

/// Every member line of every node: (node index of the viewer, member id, bus port, link).
fn bus_ports(servers: &Servers) -> Vec<(usize, String, u16, String)> {
    let mut rows = Vec::new();
    for idx in 0..servers.servers.len() {
        for line in servers.text(idx, &["CLUSTER", "NODES"]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bus = f[1].split(['@', ',']).nth(1).unwrap().parse().unwrap();
            rows.push((idx, f[0].to_owned(), bus, f[7].to_owned()));
        }
    }
    rows
}

fn config(servers: &Servers, idx: usize, key: &str) -> String {
    let pair: Vec<String> =
        redis::from_redis_value(servers.cmd(idx, &["CONFIG", "GET", key])).unwrap();
    pair[1].clone()
}

#[test]
fn dual_mode_forms_over_plaintext_ports_with_the_tls_bus_port() {
    // `tls-cluster yes` moves the bus to tls-port + 10000: a MEET naming the plaintext
    // port's bus (port + 10000) would never connect (the forge's bug).
    let servers = Servers::start_with(
        4,
        &ServerOpts {
            tls: Some(DualTls::default()),
            ..Default::default()
        },
    );
    let nodes = servers.names();
    let out = clustersmith(&with_nodes(&["apply", "-m", "2"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    let ids: Vec<String> = (0..4).map(|i| servers.myid(i)).collect();
    let rows = bus_ports(&servers);
    assert_eq!(rows.len(), 16, "every node lists all four");
    for (viewer, id, bus, link) in rows {
        let member = ids.iter().position(|i| *i == id).unwrap();
        let tls_port = servers.tls_ports[member].unwrap();
        assert_eq!(bus, tls_port + 10000, "node {viewer} sees {id}");
        assert_eq!(link, "connected", "node {viewer} sees {id}");
    }
    for idx in 2..4 {
        assert_eq!(
            servers
                .info_field(idx, "replication", "master_link_status")
                .as_deref(),
            Some("up"),
            "replication over tls-replication"
        );
    }
    // The same cluster verified through the TLS ports, hostname checked against 127.0.0.1.
    let tls_nodes = servers.tls_ips();
    let mut args = vec!["verify".to_owned(), "-m".to_owned(), "2".to_owned()];
    args.extend(servers.tls_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = clustersmith(&with_nodes(&args, &tls_nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn dual_mode_with_cluster_port_forms_over_tls_with_the_configured_bus_port() {
    let servers = Servers::start_with(
        3,
        &ServerOpts {
            tls: Some(DualTls {
                cluster_port: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let cluster_ports: Vec<u16> = (0..3)
        .map(|i| config(&servers, i, "cluster-port").parse().unwrap())
        .collect();
    let tls_nodes = servers.tls_ips();
    let mut args = vec!["apply".to_owned(), "-m".to_owned(), "3".to_owned()];
    args.extend(servers.tls_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = clustersmith(&with_nodes(&args, &tls_nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
    let ids: Vec<String> = (0..3).map(|i| servers.myid(i)).collect();
    for (viewer, id, bus, link) in bus_ports(&servers) {
        let member = ids.iter().position(|i| *i == id).unwrap();
        assert_eq!(bus, cluster_ports[member], "node {viewer} sees {id}");
        assert_eq!(link, "connected");
    }
    for idx in 0..3 {
        assert!(
            servers
                .text(idx, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        );
    }
}

#[test]
fn acl_user_forms_the_cluster_and_a_missing_permission_is_named() {
    let secret = "acl-Secret-never-printed";
    let servers = {
        let mut servers = Servers::start_with(
            4,
            &ServerOpts {
                user: Some("ops".into()),
                directives: vec![
                    ("user".into(), "default off".into()),
                    ("user".into(), format!("ops on >{secret} ~* &* +@all")),
                    (
                        "user".into(),
                        format!(
                            "viewer on >{secret} ~* &* +@all -cluster|meet -cluster|set-config-epoch -cluster|addslots -cluster|addslotsrange -cluster|replicate"
                        ),
                    ),
                    // Replicas log in to their primary as `ops` too.
                    ("masteruser".into(), "ops".into()),
                    ("masterauth".into(), secret.into()),
                ],
                ..Default::default()
            },
        );
        servers.password = Some(secret.into());
        servers
    };
    let nodes = servers.names();
    let env = [("REDISCLI_AUTH", secret)];

    // A user that may look but not change: refused at its first change, naming the node and
    // the command it lacks, with nothing changed anywhere.
    let refused = assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "2", "--user", "viewer"], &nodes),
        &env,
        "no permissions to run the 'cluster|",
    );
    let err = stderr(&refused);
    assert!(err.contains("permission denied"), "{err}");
    assert!(nodes.iter().any(|n| err.contains(n.as_str())), "{err}");
    assert!(!err.contains(secret));

    // The default user is off: without --user the login fails.
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "2"], &nodes),
        &env,
        "authentication failed",
    );

    let out = clustersmith(
        &with_nodes(
            &["apply", "-m", "2", "--user", "ops", "--format", "json"],
            &nodes,
        ),
        &env,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    let out = clustersmith(
        &with_nodes(&["verify", "-m", "2", "--user", "ops"], &nodes),
        &env,
    );
    assert_eq!(out.status.code(), Some(0));
    // Replicas authenticate as ops: each primary's replica connection is logged in as `ops`
    // (CLIENT LIST), and each replica's link is up (INFO replication).
    let shards = servers.shards();
    assert_eq!(shards.len(), 2, "{shards:?}");
    for shard in &shards {
        assert_eq!(shard.replicas.len(), 1, "{shards:?}");
        assert_eq!(shard.replicas[0].1, "up", "{shards:?}");
        let clients = servers.text(shard.primary, &["CLIENT", "LIST", "TYPE", "replica"]);
        let lines: Vec<&str> = clients.lines().collect();
        assert_eq!(lines.len(), 1, "{clients}");
        assert!(
            lines[0].split_whitespace().any(|f| f == "user=ops"),
            "the replica did not log in as ops: {clients}"
        );
    }
    for server in &servers.servers {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid)).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(secret));
    }
}

#[test]
fn bad_tls_input_is_refused_with_what_to_fix_and_changes_nothing() {
    let servers = Servers::start_with(
        2,
        &ServerOpts {
            tls: Some(DualTls::default()),
            ..Default::default()
        },
    );
    let tls = servers.tls_args();
    let (ca, cert, key) = (tls[2].as_str(), tls[4].as_str(), tls[6].as_str());
    let tls_nodes = servers.tls_ips();
    let plain_nodes = servers.ips();
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::create(other_dir.path()).unwrap();
    let other_ca_path = other_ca.ca_cert.display().to_string();
    let run = |args: &[&str], nodes: &[String], message: &str| {
        let mut all = vec!["apply", "-m", "1", "--connect-timeout", "1000"];
        all.extend(args);
        assert_refused(&servers, &with_nodes(&all, nodes), &[], message);
    };

    run(
        &[
            "--tls",
            "--cacert",
            &other_ca_path,
            "--cert",
            cert,
            "--key",
            key,
        ],
        &tls_nodes,
        "not signed by a trusted CA",
    );
    run(
        &[
            "--tls",
            "--cacert",
            ca,
            "--cert",
            cert,
            "--key",
            "/nonexistent/client.key",
        ],
        &tls_nodes,
        "cannot read --key `/nonexistent/client.key`",
    );
    run(
        &["--tls", "--cacert", ca, "--cert", cert, "--key", cert],
        &tls_nodes,
        "holds no usable private key",
    );
    run(&["--tls", "--cacert", ca], &tls_nodes, "--cert and --key");
    // A TLS client on the plaintext port would wait forever for a handshake reply.
    run(
        &tls.iter().map(String::as_str).collect::<Vec<_>>(),
        &plain_nodes,
        "answers plaintext",
    );
    run(&[], &tls_nodes, "it expects TLS");

    // A client certificate from another CA is rejected by the node.
    let stranger = other_ca
        .issue(other_dir.path(), "stranger", &["client"])
        .unwrap();
    let (s_cert, s_key) = (
        stranger.cert.display().to_string(),
        stranger.key.display().to_string(),
    );
    run(
        &["--tls", "--cacert", ca, "--cert", &s_cert, "--key", &s_key],
        &tls_nodes,
        "the client certificate",
    );
}

#[test]
fn expired_and_nameless_node_certificates_are_refused_with_what_to_fix() {
    let expired = Servers::start_with(
        1,
        &ServerOpts {
            tls: Some(DualTls {
                cert: CertOptions {
                    expired: true,
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let tls = expired.tls_args();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let mut args = vec!["apply", "-m", "1"];
    args.extend(&tls);
    assert_refused(
        &expired,
        &with_nodes(&args, &expired.tls_ips()),
        &[],
        "certificate has expired",
    );

    // A certificate with only a CN names no address: refused with the way out, which then
    // works (the chain is still checked).
    let nameless = Servers::start_with(
        1,
        &ServerOpts {
            tls: Some(DualTls {
                no_san: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let tls = nameless.tls_args();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let nodes = nameless.tls_ips();
    let mut args = vec!["apply", "-m", "1"];
    args.extend(&tls);
    let out = assert_refused(
        &nameless,
        &with_nodes(&args, &nodes),
        &[],
        "not valid for the name or IP",
    );
    assert!(stderr(&out).contains("--tls-skip-hostname-check"));
    args.push("--tls-skip-hostname-check");
    let out = clustersmith(&with_nodes(&args, &nodes), &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn empty_or_unreadable_password_file_is_refused() {
    let servers = Servers::start_with(
        1,
        &ServerOpts {
            password: Some("file-pass".into()),
            ..Default::default()
        },
    );
    let nodes = servers.ips();
    let empty = servers.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.display().to_string();
    assert_refused(
        &servers,
        &with_nodes(&["apply", "-m", "1", "--password-file", &empty], &nodes),
        &[],
        "is empty",
    );
    // A directory cannot be read as a file, even by root (which CI runs as).
    let unreadable = servers.path().display().to_string();
    assert_refused(
        &servers,
        &with_nodes(
            &["apply", "-m", "1", "--password-file", &unreadable],
            &nodes,
        ),
        &[],
        "failed to read the password file",
    );
}
