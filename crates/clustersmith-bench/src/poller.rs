//! The independent observer: polls every node until the cluster is formed, and records when
//! each milestone was first seen. It shares no code with clustersmith's own verification, so
//! the benchmark never takes a tool's word for its result.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// When each milestone was first seen, from the tool's start (the end of the polling round
/// that saw it, so the resolution is one round).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Milestones {
    /// Every view lists all nodes, none in handshake/fail/noaddr, with the same roles,
    /// primaries and slot owners, all 16384 slots owned by `primaries` nodes.
    pub topology_ms: Option<f64>,
    /// `cluster_state:ok` on every node.
    pub all_ok_ms: Option<f64>,
    /// Every replica reports `master_link_status:up`.
    pub repl_up_ms: Option<f64>,
    pub rounds: usize,
    /// Mean duration of one polling round (the time resolution).
    pub round_ms: f64,
}

impl Milestones {
    pub fn complete(&self) -> bool {
        self.topology_ms.is_some() && self.all_ok_ms.is_some() && self.repl_up_ms.is_some()
    }
}

pub struct Poller {
    conns: Vec<redis::Connection>,
    primaries: usize,
}

impl Poller {
    /// Connects to every node before the clock starts.
    pub fn connect(addrs: &[String], primaries: usize) -> anyhow::Result<Poller> {
        let conns = addrs
            .iter()
            .map(|addr| {
                let client = redis::Client::open(format!("redis://{addr}"))?;
                let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_secs(5)))?;
                Ok(conn)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Poller { conns, primaries })
    }

    /// Polls from `start` until every milestone was seen or `deadline` passed.
    pub fn run(mut self, start: Instant, deadline: Duration) -> Milestones {
        let mut seen = Milestones::default();
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER")
            .arg("NODES")
            .cmd("CLUSTER")
            .arg("INFO")
            .cmd("INFO")
            .arg("replication");
        while !seen.complete() && start.elapsed() < deadline {
            let mut views = Vec::with_capacity(self.conns.len());
            let mut all_ok = true;
            let mut replicas_up = 0;
            for conn in &mut self.conns {
                let Ok((nodes, info, replication)) = pipe.query::<(String, String, String)>(conn)
                else {
                    all_ok = false;
                    continue;
                };
                all_ok &= info.lines().any(|l| l.trim() == "cluster_state:ok");
                if replication.lines().any(|l| l.trim() == "role:slave")
                    && replication
                        .lines()
                        .any(|l| l.trim() == "master_link_status:up")
                {
                    replicas_up += 1;
                }
                views.push(nodes);
            }
            let now = start.elapsed().as_secs_f64() * 1000.0;
            seen.rounds += 1;
            let complete = views.len() == self.conns.len();
            if seen.topology_ms.is_none() && complete && topology_agrees(&views, self.primaries) {
                seen.topology_ms = Some(now);
            }
            if seen.all_ok_ms.is_none() && complete && all_ok {
                seen.all_ok_ms = Some(now);
            }
            if seen.repl_up_ms.is_none() && replicas_up == self.conns.len() - self.primaries {
                seen.repl_up_ms = Some(now);
            }
            // Yield a little: the poller shares two cores with the servers and the tool.
            std::thread::sleep(Duration::from_millis(5));
        }
        seen.round_ms = start.elapsed().as_secs_f64() * 1000.0 / seen.rounds.max(1) as f64;
        seen
    }
}

/// One member as a view describes it: id, primary or replica, its primary, its slots.
type Member = (String, bool, String, String);

/// All views are complete and identical, with `primaries` slot owners covering every slot.
pub fn topology_agrees(views: &[String], primaries: usize) -> bool {
    let Some(first) = views.first().and_then(|v| members(v, views.len())) else {
        return false;
    };
    let owners: Vec<&Member> = first.iter().filter(|m| m.1 && !m.3.is_empty()).collect();
    let owner_ids: BTreeSet<&str> = owners.iter().map(|m| m.0.as_str()).collect();
    let slots: usize = owners.iter().map(|m| slot_count(&m.3)).sum();
    let replicas_placed = first
        .iter()
        .filter(|m| !m.1)
        .all(|m| owner_ids.contains(m.2.as_str()));
    owners.len() == primaries
        && slots == 16384
        && replicas_placed
        && views[1..]
            .iter()
            .all(|v| members(v, views.len()).as_ref() == Some(&first))
}

/// The members of one `CLUSTER NODES` text, sorted; `None` when it does not list exactly
/// `expected` healthy members.
fn members(text: &str, expected: usize) -> Option<Vec<Member>> {
    let mut out = Vec::with_capacity(expected);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        let flags = f[2];
        if ["handshake", "fail", "noaddr"]
            .iter()
            .any(|bad| flags.split(',').any(|flag| flag.starts_with(bad)))
        {
            return None;
        }
        let primary = flags.contains("master");
        let slots: Vec<&str> = f[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .copied()
            .collect();
        out.push((f[0].to_owned(), primary, f[3].to_owned(), slots.join(",")));
    }
    out.sort();
    (out.len() == expected).then_some(out)
}

fn slot_count(slots: &str) -> usize {
    slots
        .split(',')
        .filter_map(|range| match range.split_once('-') {
            Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
            None => range.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaa 127.0.0.1:21001@31001 myself,master - 0 0 1 connected 0-8191\nbbb 127.0.0.1:21002@31002 master - 0 0 2 connected 8192-16383\nccc 127.0.0.1:21003@31003 slave aaa 0 0 1 connected\n";
    const B: &str = "aaa 127.0.0.1:21001@31001 master - 0 0 1 connected 0-8191\nbbb 127.0.0.1:21002@31002 myself,master - 0 0 2 connected 8192-16383\nccc 127.0.0.1:21003@31003 slave aaa 0 0 1 connected\n";

    #[test]
    fn agreement_needs_identical_complete_views() {
        let views = vec![A.to_owned(), B.to_owned(), A.replace("myself,", "")];
        assert!(topology_agrees(&views, 2));
        // A replica not yet attached in one view.
        let stale = B.replace("slave aaa", "master -");
        assert!(!topology_agrees(&[A.to_owned(), stale, A.to_owned()], 2));
        // A handshake entry.
        let shaking = format!("{A}ddd 127.0.0.1:21004@31004 handshake - 0 0 0 connected\n");
        assert!(!topology_agrees(&[shaking, B.to_owned(), A.to_owned()], 2));
        // Slots not fully covered.
        let partial = A.replace("0-8191", "0-8190");
        assert!(!topology_agrees(
            &[partial.clone(), partial.clone(), partial],
            2
        ));
    }
}
