//! `clustersmith report` opened in a real browser (issue 22 §1): Debian's chromium, headless,
//! loads the file from disk; its console must stay silent (a request the page's
//! Content-Security-Policy blocks is logged there, as the control page shows first), and the
//! DOM after load must show what the servers show: the slot legend adds up to 16384; on a
//! broken cluster the uncovered slots, the open slot and the replica whose link is down each
//! appear where they should. `--from` renders the embedded document again to the same page.
//! Screenshots are kept as `target/report-*.png`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

fn target_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(name)
}

/// What chromium made of a page: the DOM after load, and its console lines.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Opens `page` in headless chromium (no network: every name resolves nowhere), bounded;
/// with `screenshot`, also saves one. `None` when chromium is not installed.
fn open_in_chromium(page: &Path, screenshot: Option<&Path>) -> Option<Loaded> {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = |extra: &[String]| {
        Command::new("timeout")
            .arg("120")
            .arg("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--window-size=1300,2400",
            ])
            .args(extra)
            .arg(&url)
            .output()
    };
    let out = run(&["--dump-dom".to_owned()]).ok()?;
    if !out.status.success() && out.stdout.is_empty() {
        return None;
    }
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    if let Some(shot) = screenshot {
        let out = run(&[format!("--screenshot={}", shot.display())]).unwrap();
        assert!(out.status.success(), "chromium screenshot failed");
        assert!(shot.exists(), "no screenshot at {}", shot.display());
    }
    Some(Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    })
}

/// The `data-NAME="…"` values of the DOM's elements whose start tag contains `marker`.
fn attr_values(dom: &str, marker: &str, name: &str) -> Vec<String> {
    dom.split('<')
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| {
            let rest = tag.split_once(&format!("{name}=\""))?.1;
            Some(rest.split('"').next()?.to_owned())
        })
        .collect()
}

fn legend_total(dom: &str) -> usize {
    attr_values(dom, "data-slots=", "data-slots")
        .iter()
        .map(|v| v.parse::<usize>().unwrap())
        .sum()
}

fn report(nodes: &[String], out: &Path, env: &[(&str, &str)]) -> String {
    let out_arg = out.display().to_string();
    let mut args = vec!["report", "-m", "3", "-r", "1", "--out", &out_arg];
    args.extend(nodes.iter().map(String::as_str));
    let run = clustersmith(&args, env);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn a_report_shows_a_healthy_and_a_broken_cluster_in_a_real_browser() {
    // The premise of the console check: a blocked request is logged there.
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"></head><body><img src=\"http://192.0.2.1/x.png\"></body></html>",
    )
    .unwrap();
    let Some(loaded) = open_in_chromium(&control, None) else {
        skip(
            "chromium is not installed (apt-get install chromium)",
            false,
        );
        return;
    };
    assert!(
        loaded.console.iter().any(|l| l.contains("192.0.2.1")),
        "a blocked request must show in the console: {:?}",
        loaded.console
    );

    let mut servers = Servers::start_with(6, &ServerOpts::default());
    let nodes = servers.ips();
    let out = clustersmith(&with_nodes(&["apply", "-m", "3", "-r", "1"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let healthy = dir.path().join("healthy.html");
    let html = report(&nodes, &healthy, &[]);
    assert!(html.len() < 1_000_000);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing to load"
    );
    let shot = target_file("report-healthy.png");
    let loaded = open_in_chromium(&healthy, Some(&shot)).unwrap();
    assert_eq!(
        loaded.console,
        Vec::<String>::new(),
        "console of the healthy report"
    );
    assert_eq!(legend_total(&loaded.dom), 16384);
    assert!(attr_values(&loaded.dom, "class=\"uncovered\"", "data-slots").is_empty());
    assert!(attr_values(&loaded.dom, "open-slot", "data-slot").is_empty());
    assert!(loaded.dom.contains("matches its spec"));
    assert_eq!(
        attr_values(&loaded.dom, "class=\"node\"", "data-link")
            .iter()
            .filter(|l| *l == "up")
            .count(),
        3
    );

    // Broken three ways: slots 100-199 without an owner, a slot open on a primary, and a
    // replica whose link is down (it cannot authenticate to its primary).
    let primaries: Vec<usize> = (0..6)
        .filter(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("master"))
        .collect();
    let owner_of_0 = primaries
        .iter()
        .copied()
        .find(|p| {
            let own = servers.text(*p, &["CLUSTER", "NODES"]);
            own.lines()
                .any(|l| l.contains("myself") && l.split_whitespace().nth(8) == Some("0-5461"))
        })
        .expect("a primary owns 0-5461");
    for idx in 0..6 {
        servers.cmd(idx, &["CLUSTER", "DELSLOTSRANGE", "100", "199"]);
    }
    let other = *primaries.iter().find(|p| **p != owner_of_0).unwrap();
    let other_id = servers.myid(other);
    servers.cmd(
        owner_of_0,
        &["CLUSTER", "SETSLOT", "7", "MIGRATING", &other_id],
    );
    let replica = (0..6)
        .find(|i| {
            servers
                .info_field(*i, "replication", "master_port")
                .as_deref()
                == Some(&servers.port(owner_of_0).to_string())
        })
        .unwrap();
    for idx in 0..6 {
        let auth = if idx == replica { "wrong" } else { "sesame" };
        servers.cmd(idx, &["CONFIG", "SET", "masterauth", auth]);
    }
    for idx in 0..6 {
        servers.cmd(idx, &["CONFIG", "SET", "requirepass", "sesame"]);
    }
    servers.password = Some("sesame".to_owned());
    servers.cmd(owner_of_0, &["CLIENT", "KILL", "TYPE", "replica"]);
    // The premise: the servers show all three.
    wait_until(
        "the replica's link is down",
        Duration::from_secs(10),
        || {
            servers
                .info_field(replica, "replication", "master_link_status")
                .as_deref()
                == Some("down")
        },
    );
    assert!(
        servers
            .text(owner_of_0, &["CLUSTER", "NODES"])
            .contains("[7->-")
    );
    let broken = dir.path().join("broken.html");
    let html = report(&nodes, &broken, &[("REDISCLI_AUTH", "sesame")]);
    assert!(
        !html.contains("sesame"),
        "the password is not in the report"
    );
    let shot = target_file("report-broken.png");
    let loaded = open_in_chromium(&broken, Some(&shot)).unwrap();
    assert_eq!(
        loaded.console,
        Vec::<String>::new(),
        "console of the broken report"
    );
    assert_eq!(legend_total(&loaded.dom), 16384);
    assert_eq!(
        attr_values(&loaded.dom, "class=\"uncovered\"", "data-slots"),
        ["100"]
    );
    assert_eq!(attr_values(&loaded.dom, "open-slot", "data-slot"), ["7"]);
    let replica_row = format!("data-node=\"127.0.0.1:{}\"", servers.port(replica));
    assert_eq!(
        attr_values(&loaded.dom, &replica_row, "data-link"),
        ["down"],
        "the replica's row shows its link down"
    );
    assert!(loaded.dom.contains("does not match its spec"));
    assert!(
        loaded.dom.contains("data-rule=\""),
        "diagnose's findings are shown"
    );

    // The embedded document renders the same page again, with no server.
    let json = html
        .split("<script type=\"application/json\" id=\"clustersmith-snapshot\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap()
        .replace("<\\/", "</");
    let saved = dir.path().join("snapshot.json");
    std::fs::write(&saved, json).unwrap();
    let again = dir.path().join("again.html");
    let out = clustersmith(
        &[
            "report",
            "--from",
            &saved.display().to_string(),
            "--out",
            &again.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), html);
}
