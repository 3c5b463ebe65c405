//! Toward 1000 nodes without 1000 servers: `CLUSTER NODES` views of a simulated cluster, as
//! every node would print them, timed through the same parse → plan → verify that `apply` runs
//! each round. Each point runs in a child process of its own, so that its peak RSS is its own.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use clustersmith_core::model::{SLOT_COUNT, SlotRange};
use clustersmith_core::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use clustersmith_core::plan::plan;
use clustersmith_core::snapshot::{NodeKey, NodeRecord, NodeState, NodeView, Snapshot};
use clustersmith_core::spec::{ClusterSpec, parse_node};
use clustersmith_core::verify::verify;
use serde::Serialize;

/// How far formation has got in the simulated views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Every node knows every other, replicas attached: the plan is empty, verify passes.
    Formed,
    /// Slots assigned, the first half of the nodes met, the rest know only themselves.
    HalfFormed,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub nodes: usize,
    pub shape: Shape,
    /// Bytes of `CLUSTER NODES` text, all views together.
    pub text_bytes: usize,
    pub parse_ms: f64,
    pub plan_ms: f64,
    pub verify_ms: f64,
    pub steps: usize,
    pub passed: bool,
    /// This process's peak resident set (`VmHWM`): the parsed views, and one view's text at a
    /// time.
    pub peak_rss_mb: f64,
}

/// A random-looking id per node, as servers make them (160 random bits in hex): ids that
/// share a prefix would make every lookup the worst case.
fn node_id(i: usize) -> String {
    // splitmix64, three draws: 48 + 48 + 64 bits of hex.
    let mut state = i as u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!("{:012x}{:012x}{:016x}", next() >> 16, next() >> 16, next())
}

/// 127.0.0.1 and consecutive ports: a real address for every node, bus ports below 65536.
fn port(i: usize) -> u16 {
    7000 + i as u16
}

/// The slots of primary `p` of `primaries`: balanced contiguous ranges.
fn slots_of(p: usize, primaries: usize) -> SlotRange {
    let total = usize::from(SLOT_COUNT);
    let start = p * total / primaries;
    let end = (p + 1) * total / primaries - 1;
    SlotRange::new(start as u16, end as u16).expect("within the slot space")
}

/// The `CLUSTER NODES` line of node `i` as node `viewer` prints it.
fn line(out: &mut String, i: usize, viewer: usize, primaries: usize) {
    let me = if i == viewer { "myself," } else { "" };
    let (role, primary, slots) = if i < primaries {
        ("master", "-".to_owned(), slots_of(i, primaries).to_string())
    } else {
        ("slave", node_id(i - primaries), String::new())
    };
    let _ = writeln!(
        out,
        "{} 127.0.0.1:{}@{} {me}{role} {primary} 0 1700000000000 {} connected {slots}",
        node_id(i),
        port(i),
        u32::from(port(i)) + 10000,
        i % primaries + 1,
    );
}

/// Node `viewer`'s view. In a half-formed cluster the first half know each other and have
/// their roles; the others know only themselves and are still primaries (replicas not
/// attached).
fn view(n: usize, shape: Shape, viewer: usize) -> String {
    let primaries = n / 2;
    let mut text = String::with_capacity(n * 110);
    let met = shape == Shape::Formed || viewer < n / 2;
    if met {
        let known = if shape == Shape::Formed { n } else { n / 2 };
        for i in 0..known {
            line(&mut text, i, viewer, primaries);
        }
    } else if viewer < primaries {
        line(&mut text, viewer, viewer, primaries);
    } else {
        let _ = writeln!(
            text,
            "{} 127.0.0.1:{}@{} myself,master - 0 0 0 connected",
            node_id(viewer),
            port(viewer),
            u32::from(port(viewer)) + 10000
        );
    }
    text
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Builds the views, then times one parse → plan → verify round over them.
pub fn run_point(n: usize, shape: Shape) -> Point {
    assert!(
        n >= 2 && n.is_multiple_of(2),
        "an even number of nodes, half primaries"
    );
    let mut records: Vec<NodeRecord> = (0..n)
        .map(|i| {
            NodeRecord::spec(
                NodeKey::named(&format!("127.0.0.1:{}", port(i))),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port(i),
                None,
                1,
            )
        })
        .collect();
    let spec = ClusterSpec::new(
        records
            .iter()
            .map(|node| parse_node(node.label()).expect("a valid address"))
            .collect(),
        Some(n / 2),
        Some(1),
    )
    .expect("a valid shape");
    let cluster_info = "cluster_state:ok\r\ncluster_current_epoch:1\r\n";
    let info = |i: usize| {
        if i < n / 2 || shape == Shape::HalfFormed {
            "# Replication\r\nrole:master\r\n".to_owned()
        } else {
            "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n".to_owned()
        }
    };

    // Each view is rendered, parsed and dropped in turn, as `apply` parses each reply as it
    // arrives: only the parse is timed, and no more than one view's text is held at a time.
    let mut text_bytes = 0;
    let mut parsing = Duration::ZERO;
    let nodes: Vec<NodeState> = (0..n)
        .map(|i| {
            let text = view(n, shape, i);
            text_bytes += text.len();
            let started = Instant::now();
            let parsed = parse_cluster_nodes(&text).value;
            let id = parsed.myself().expect("one myself line").id;
            let state = NodeState::Seen(Box::new(NodeView {
                id,
                nodes: parsed,
                cluster_info: parse_cluster_info(cluster_info).value,
                info: parse_info(&info(i)).value,
            }));
            parsing += started.elapsed();
            state
        })
        .collect();
    for (record, state) in records.iter_mut().zip(nodes) {
        record.set_state(state);
    }
    let snapshot = Snapshot::new(records);
    let parse_ms = parsing.as_secs_f64() * 1000.0;

    let started = Instant::now();
    let planned = plan(&spec, &snapshot);
    let plan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let layout = planned.layout.expect("no blocker in a simulated cluster");
    let started = Instant::now();
    let verdict = verify(&layout, &snapshot);
    let verify_ms = started.elapsed().as_secs_f64() * 1000.0;
    Point {
        nodes: n,
        shape,
        text_bytes,
        parse_ms,
        plan_ms,
        verify_ms,
        steps: planned.steps.len(),
        passed: verdict.passed(),
        peak_rss_mb: peak_rss_mb(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_formed_cluster_verifies_and_needs_no_step() {
        let point = run_point(40, Shape::Formed);
        assert!(point.passed);
        assert_eq!(point.steps, 0);
    }

    #[test]
    fn a_simulated_half_formed_cluster_plans_the_missing_meets() {
        let point = run_point(40, Shape::HalfFormed);
        assert!(!point.passed);
        // The 20 unmet nodes meet the 20 met ones and each other: 20·20 + 20·19/2 pairs, each
        // introduced once, plus epochs and slots for nodes that still lack them.
        assert!(point.steps >= 20 * 20 + 20 * 19 / 2, "{point:?}");
    }
}

/// Runs every (size, shape) point in a child process of this binary and returns the table.
pub fn run_all(sizes: &[usize]) -> anyhow::Result<Vec<Point>> {
    let me = std::env::current_exe()?;
    let mut points = Vec::new();
    for &n in sizes {
        for shape in [Shape::Formed, Shape::HalfFormed] {
            let shape_arg = match shape {
                Shape::Formed => "formed",
                Shape::HalfFormed => "half-formed",
            };
            let out = std::process::Command::new(&me)
                .args(["simulate", "--sizes", &n.to_string(), "--shape", shape_arg])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "simulation of {n} nodes ({shape_arg}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let point: PointRecord = serde_json::from_slice(&out.stdout)?;
            eprintln!(
                "{n} nodes, {shape_arg}: parse {:.0} ms, plan {:.0} ms, verify {:.0} ms, {} steps, peak RSS {:.1} MB",
                point.parse_ms, point.plan_ms, point.verify_ms, point.steps, point.peak_rss_mb
            );
            points.push(point.into_point(n, shape));
        }
    }
    Ok(points)
}

/// A point as a child prints it.
#[derive(serde::Deserialize)]
struct PointRecord {
    text_bytes: usize,
    parse_ms: f64,
    plan_ms: f64,
    verify_ms: f64,
    steps: usize,
    passed: bool,
    peak_rss_mb: f64,
}

impl PointRecord {
    fn into_point(self, nodes: usize, shape: Shape) -> Point {
        Point {
            nodes,
            shape,
            text_bytes: self.text_bytes,
            parse_ms: self.parse_ms,
            plan_ms: self.plan_ms,
            verify_ms: self.verify_ms,
            steps: self.steps,
            passed: self.passed,
            peak_rss_mb: self.peak_rss_mb,
        }
    }
}

/// The Markdown table of a run.
pub fn table(points: &[Point]) -> String {
    let mut out = String::from(
        "| nodes | views | CLUSTER NODES text | parse | plan | verify | steps | peak RSS |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in points {
        let shape = match p.shape {
            Shape::Formed => "formed",
            Shape::HalfFormed => "half-formed",
        };
        let _ = writeln!(
            out,
            "| {} | {shape} | {:.1} MB | {:.0} ms | {:.0} ms | {:.0} ms | {} | {:.0} MB |",
            p.nodes,
            p.text_bytes as f64 / 1e6,
            p.parse_ms,
            p.plan_ms,
            p.verify_ms,
            p.steps,
            p.peak_rss_mb
        );
    }
    out
}
