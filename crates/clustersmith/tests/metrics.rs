//! `verify --format prometheus` on real servers (issue 22 §3): the exposition text is valid
//! (`promtool check metrics`, which CI installs, and this file's own reading of the format),
//! and its gauges say what the servers say: a formed 3+3 with every criterion at 1, every slot
//! counted once; then a replica down and a slot left open, each visible on its own series.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Every sample, as `name{labels}` → value, read by the format's own rules: each family's
/// `# HELP` and `# TYPE gauge` before its samples, names and label names from Prometheus'
/// alphabet, quoted label values, a float value, no series twice.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut seen = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("line {}: {line}", number + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(name_ok(name) && helped.insert(name.to_owned()), "{at}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(words.len(), 2, "{at}");
            assert_eq!(words[1], "gauge", "{at}");
            assert!(
                helped.contains(words[0]) && typed.insert(words[0].to_owned()),
                "{at}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{at}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{at}"));
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name) && typed.contains(name), "{at}");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{at}"));
            for pair in inner.split("\",") {
                let (label, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("{at}"));
                assert!(name_ok(label) && quoted.starts_with('"'), "{at}");
            }
        }
        assert!(
            seen.insert(series.to_owned(), value).is_none(),
            "twice: {at}"
        );
    }
    seen
}

/// `promtool check metrics` on the text, where promtool is installed (CI installs it).
fn promtool_accepts(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        skip(
            "promtool is not installed (apt-get install prometheus)",
            false,
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert rules in contrib/ load (`promtool check rules`), where promtool is installed.
#[test]
fn the_alert_rules_are_valid() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/prometheus/clustersmith-alerts.yml"
    );
    match Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => skip(
            "promtool is not installed (apt-get install prometheus)",
            false,
        ),
    }
}

/// The sum of a metric's samples.
fn sum(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

fn get(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[test]
fn verify_as_prometheus_gauges_says_what_the_servers_say() {
    let mut servers = Servers::start_with(6, &ServerOpts::default());
    let nodes = servers.ips();
    let out = clustersmith(&with_nodes(&["apply", "-m", "3", "-r", "1"], &nodes), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let verify = || {
        clustersmith(
            &with_nodes(
                &["verify", "-m", "3", "-r", "1", "--format", "prometheus"],
                &nodes,
            ),
            &[],
        )
    };
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    promtool_accepts(&text);
    let formed = samples(&text);
    assert_eq!(get(&formed, "clustersmith_verify_ok"), 1.0);
    assert_eq!(
        sum(&formed, "clustersmith_criterion_ok"),
        8.0,
        "every criterion holds"
    );
    assert_eq!(sum(&formed, "clustersmith_node_up"), 6.0);
    assert_eq!(sum(&formed, "clustersmith_primary_slots"), 16384.0);
    assert_eq!(sum(&formed, "clustersmith_node_primary"), 3.0);
    assert_eq!(sum(&formed, "clustersmith_replica_link_up"), 3.0);
    assert_eq!(sum(&formed, "clustersmith_node_open_slots"), 0.0);

    // Broken: a slot left open on a primary, and a replica down.
    let primary = (0..6)
        .find(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("master"))
        .unwrap();
    let other = (0..6)
        .find(|i| {
            *i != primary
                && servers.info_field(*i, "replication", "role").as_deref() == Some("master")
        })
        .unwrap();
    let own = servers.text(primary, &["CLUSTER", "NODES"]);
    let first_slot: String = own
        .lines()
        .find(|l| l.contains("myself"))
        .and_then(|l| l.split_whitespace().nth(8))
        .and_then(|r| r.split('-').next())
        .unwrap()
        .to_owned();
    let target_id = servers.myid(other);
    servers.cmd(
        primary,
        &["CLUSTER", "SETSLOT", &first_slot, "MIGRATING", &target_id],
    );
    let replica = (0..6)
        .find(|i| servers.info_field(*i, "replication", "role").as_deref() == Some("slave"))
        .unwrap();
    servers.stop(replica);
    // The premise: the servers show both breakages.
    assert!(servers.text(primary, &["CLUSTER", "NODES"]).contains("->-"));
    wait_until(
        "a peer flags the stopped replica",
        Duration::from_secs(20),
        || {
            servers
                .text(primary, &["CLUSTER", "NODES"])
                .lines()
                .any(|l| l.contains(&format!(":{}@", servers.port(replica))) && l.contains("fail"))
        },
    );

    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    promtool_accepts(&text);
    let broken = samples(&text);
    assert_eq!(get(&broken, "clustersmith_verify_ok"), 0.0);
    let node = |idx: usize| format!("127.0.0.1:{}", servers.port(idx));
    assert_eq!(
        get(
            &broken,
            &format!("clustersmith_node_up{{node=\"{}\"}}", node(replica))
        ),
        0.0
    );
    assert_eq!(
        get(
            &broken,
            &format!("clustersmith_node_open_slots{{node=\"{}\"}}", node(primary))
        ),
        1.0
    );
    assert_eq!(
        get(
            &broken,
            "clustersmith_criterion_ok{criterion=\"reachable\"}"
        ),
        0.0
    );
    assert!(
        sum(&broken, "clustersmith_node_flagged_by_peers") >= 1.0,
        "the stopped replica is flagged by a peer"
    );
    assert_eq!(sum(&broken, "clustersmith_replica_link_up"), 2.0);
}
