//! Summaries of the samples: median / min / max per point and tool, the ratio of redis-cli's
//! median to clustersmith's, as a Markdown table and a JSON result file.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::run::{Sample, Start, Tool};

/// Median, minimum and maximum of one metric; `missing` counts samples that never got there.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub missing: usize,
}

pub fn spread(values: &[Option<f64>]) -> Option<Spread> {
    let mut seen: Vec<f64> = values.iter().flatten().copied().collect();
    if seen.is_empty() {
        return None;
    }
    seen.sort_by(f64::total_cmp);
    let mid = seen.len() / 2;
    let median = if seen.len() % 2 == 1 {
        seen[mid]
    } else {
        (seen[mid - 1] + seen[mid]) / 2.0
    };
    Some(Spread {
        median,
        min: seen[0],
        max: seen[seen.len() - 1],
        missing: values.len() - seen.len(),
    })
}

/// Reads one metric (ms) from a sample.
type Metric = fn(&Sample) -> Option<f64>;

/// The metrics compared between the tools, with how to read each from a sample.
pub const METRICS: &[(&str, Metric)] = &[
    ("topology agreement", |s| s.milestones.topology_ms),
    ("cluster_state:ok", |s| s.milestones.all_ok_ms),
    ("replicas link up", |s| s.milestones.repl_up_ms),
    ("tool exit", |s| Some(s.exit_ms)),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub nodes: usize,
    pub node_timeout_ms: u64,
    pub start: String,
    pub metric: String,
    pub clustersmith: Option<Spread>,
    pub redis_cli: Option<Spread>,
    /// redis-cli median / clustersmith median: how many times faster clustersmith is.
    pub ratio: Option<f64>,
}

pub fn rows(samples: &[Sample]) -> Vec<Row> {
    let mut points: Vec<(usize, u64, Start)> = samples
        .iter()
        .map(|s| (s.nodes, s.node_timeout_ms, s.start))
        .collect();
    points.dedup();
    points.sort_by_key(|p| (p.0, p.1, p.2 == Start::Idle));
    points.dedup();
    let mut rows = Vec::new();
    for (nodes, node_timeout_ms, start) in points {
        for (metric, get) in METRICS {
            let of = |tool: Tool| {
                let values: Vec<Option<f64>> = samples
                    .iter()
                    .filter(|s| {
                        s.tool == tool
                            && s.nodes == nodes
                            && s.node_timeout_ms == node_timeout_ms
                            && s.start == start
                    })
                    .map(get)
                    .collect();
                spread(&values)
            };
            let (ours, theirs) = (of(Tool::Clustersmith), of(Tool::RedisCli));
            let ratio = match (ours, theirs) {
                (Some(o), Some(t)) if o.median > 0.0 => Some(t.median / o.median),
                _ => None,
            };
            rows.push(Row {
                nodes,
                node_timeout_ms,
                start: format!("{start:?}").to_lowercase(),
                metric: (*metric).to_owned(),
                clustersmith: ours,
                redis_cli: theirs,
                ratio,
            });
        }
    }
    rows
}

fn cell(spread: Option<Spread>) -> String {
    match spread {
        None => "—".to_owned(),
        Some(s) => {
            let mut text = format!(
                "{:.2} s ({:.2}–{:.2})",
                s.median / 1000.0,
                s.min / 1000.0,
                s.max / 1000.0
            );
            if s.missing > 0 {
                let _ = write!(text, ", {} never", s.missing);
            }
            text
        }
    }
}

/// A Markdown table: median (min–max) per tool, and the ratio.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| N | node-timeout | start | time to | clustersmith | redis-cli | redis-cli / clustersmith |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.nodes,
            row.node_timeout_ms,
            row.start,
            row.metric,
            cell(row.clustersmith),
            cell(row.redis_cli),
            row.ratio.map_or("—".to_owned(), |r| format!("{r:.1}×"))
        );
    }
    out
}

/// clustersmith's own extras: `verify` time and peak RSS per N.
pub fn extras(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| N | `clustersmith verify` | clustersmith peak RSS | redis-cli peak RSS |\n| --- | --- | --- | --- |\n",
    );
    let mut sizes: Vec<usize> = samples.iter().map(|s| s.nodes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for n in sizes {
        let of = |tool: Tool, get: Metric| {
            let values: Vec<Option<f64>> = samples
                .iter()
                .filter(|s| s.nodes == n && s.tool == tool)
                .map(get)
                .collect();
            spread(&values)
        };
        let verify = of(Tool::Clustersmith, |s| s.verify_ms);
        let rss = |tool| {
            of(tool, |s: &Sample| {
                s.peak_rss_kb.map(|kb| kb as f64 / 1024.0)
            })
        };
        let mb = |s: Option<Spread>| {
            s.map_or("—".to_owned(), |s| {
                format!("{:.1} MB (max {:.1})", s.median, s.max)
            })
        };
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} |",
            verify.map_or("—".to_owned(), |s| format!(
                "{:.0} ms ({:.0}–{:.0})",
                s.median, s.min, s.max
            )),
            mb(rss(Tool::Clustersmith)),
            mb(rss(Tool::RedisCli)),
        );
    }
    out
}

/// What measuring cost, per point and tool: the poller's rounds per second and resolution
/// (mean interval between rounds, so milestones are known to within about that), its share
/// of time spent reading and its own CPU time, and the servers' CPU time (all N summed) while
/// the tool formed them and over their whole life. Medians over the repetitions.
pub fn cost(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| N | node-timeout | start | tool | poll rounds/s | resolution (round interval) | reads per round (share of time) | poller CPU | servers' CPU while forming | servers' CPU in all |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut points: Vec<(usize, u64, bool, &'static str)> = samples
        .iter()
        .map(|s| {
            (
                s.nodes,
                s.node_timeout_ms,
                s.start == Start::Idle,
                s.tool.name(),
            )
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    for (nodes, node_timeout_ms, idle, tool) in points {
        let of = |get: Metric| {
            let values: Vec<Option<f64>> = samples
                .iter()
                .filter(|s| {
                    s.nodes == nodes
                        && s.node_timeout_ms == node_timeout_ms
                        && (s.start == Start::Idle) == idle
                        && s.tool.name() == tool
                })
                .map(get)
                .collect();
            spread(&values)
        };
        let median = |get: Metric, unit: fn(f64) -> String| {
            of(get).map_or("—".to_owned(), |s| unit(s.median))
        };
        let resolution = of(|s| Some(s.poll.round_ms)).map_or("—".to_owned(), |s| {
            format!("{:.0} ms ({:.0}–{:.0})", s.median, s.min, s.max)
        });
        let reads = of(|s| Some(s.poll.read_ms))
            .zip(of(|s| Some(s.poll.read_share)))
            .map_or("—".to_owned(), |(r, share)| {
                format!("{:.1} ms ({:.0}%)", r.median, share.median * 100.0)
            });
        let _ = writeln!(
            out,
            "| {nodes} | {node_timeout_ms} | {} | {tool} | {} | {resolution} | {reads} | {} | {} | {} |",
            if idle { "idle" } else { "fresh" },
            median(|s| Some(s.poll.rounds_per_s), |v| format!("{v:.1}")),
            median(|s| s.poll.poller_cpu_ms, |v| format!("{v:.0} ms")),
            median(|s| s.servers_cpu_run_ms, |v| format!("{:.2} s", v / 1000.0)),
            median(|s| s.servers_cpu_ms, |v| format!("{:.2} s", v / 1000.0)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_and_counts_missing() {
        let s = spread(&[Some(3.0), None, Some(1.0), Some(2.0)]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.missing), (2.0, 1.0, 3.0, 1));
        let even = spread(&[Some(4.0), Some(2.0)]).unwrap();
        assert_eq!(even.median, 3.0);
        assert!(spread(&[None]).is_none());
    }
}
