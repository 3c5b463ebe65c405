//! The independent observer: polls every node until the cluster is formed, and records when
//! each milestone was first seen. It shares no code with clustersmith's own verification, so
//! the benchmark never takes a tool's word for its result.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// When each milestone was first seen, from the tool's start (the end of the polling round
/// that saw it, so the resolution is one round interval: see [`PollStats::round_ms`]).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Milestones {
    /// Every view lists all nodes, none in handshake/fail/noaddr, with the same roles,
    /// primaries and slot owners, all 16384 slots owned by `primaries` nodes.
    pub topology_ms: Option<f64>,
    /// `cluster_state:ok` on every node.
    pub all_ok_ms: Option<f64>,
    /// Every replica reports `master_link_status:up`.
    pub repl_up_ms: Option<f64>,
    /// How far before the reported time each milestone may have happened: back to the start
    /// of the last round that did not see it (or the tool's start). Its own resolution, which
    /// can be wider than the mean round interval when the servers answered slowly then.
    pub topology_window_ms: Option<f64>,
    pub all_ok_window_ms: Option<f64>,
    pub repl_up_window_ms: Option<f64>,
}

impl Milestones {
    pub fn complete(&self) -> bool {
        self.topology_ms.is_some() && self.all_ok_ms.is_some() && self.repl_up_ms.is_some()
    }
}

/// How often the poller starts a round (a read of every node).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cadence {
    /// The default: a round starts at most every `max(AUTO_MS_PER_NODE × N ms, reads /
    /// AUTO_DUTY)`, where `reads` is how long the cheapest round so far took to read every
    /// node. Every read costs a server a `CLUSTER NODES` of N lines, so a round costs the
    /// servers O(N²): the floor grows with N, and the cap keeps the reads' own cost to ~15% of
    /// wall time where the N² term dominates. The cheapest round, not the last one, because a
    /// round is slow mostly when the servers are busy forming: that is queueing, not more
    /// work for them, and stretching the interval then (by up to 0.5 s at N=30, measured)
    /// would blur exactly the milestones being timed.
    Auto,
    /// A round starts at most every this long; zero polls back to back (the finest resolution,
    /// and the most load on the servers).
    Every(Duration),
}

/// The default cadence's floor per node: 2 ms × N (12 ms at N=6, 200 ms at N=100).
pub const AUTO_MS_PER_NODE: f64 = 2.0;
/// The default cadence's cap on the share of wall time spent reading.
pub const AUTO_DUTY: f64 = 0.15;
/// The most the share cap may stretch the interval: when even the cheapest round so far was
/// slow (the first rounds, read while 100 servers were busy meeting), `reads / AUTO_DUTY` had
/// reached 10.7 s, and the poller did not look again for that long.
pub const AUTO_MAX_STRETCH: Duration = Duration::from_secs(1);

impl Cadence {
    /// The shortest interval between the starts of two rounds, when the cheapest round's
    /// reads so far took `reads`.
    pub fn interval(self, nodes: usize, reads: Duration) -> Duration {
        match self {
            Cadence::Auto => Duration::from_secs_f64(
                (AUTO_MS_PER_NODE * nodes as f64 / 1000.0)
                    .max((reads.as_secs_f64() / AUTO_DUTY).min(AUTO_MAX_STRETCH.as_secs_f64())),
            ),
            Cadence::Every(every) => every,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Cadence::Auto => format!(
                "auto: max({AUTO_MS_PER_NODE} ms × N, min(cheapest round's reads / {AUTO_DUTY}, {} s))",
                AUTO_MAX_STRETCH.as_secs()
            ),
            Cadence::Every(every) if every.is_zero() => "back to back".to_owned(),
            Cadence::Every(every) => format!("every {} ms", every.as_millis()),
        }
    }
}

/// What polling cost, measured by the poller itself (not estimated).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PollStats {
    pub cadence: String,
    pub rounds: usize,
    /// Mean interval between the starts of two rounds: a milestone is known to within about
    /// one such interval (it happened after the last round that did not see it began).
    pub round_ms: f64,
    /// The longest interval between the starts of two rounds.
    pub round_max_ms: f64,
    /// Mean duration of one round's reads of every node.
    pub read_ms: f64,
    /// Rounds per second of polling.
    pub rounds_per_s: f64,
    /// Share of the polling time spent reading (the rest is sleep between rounds).
    pub read_share: f64,
    /// The poller thread's own CPU time (user + system, `getrusage(RUSAGE_THREAD)` on the
    /// thread that polls: the bench's other thread only waits meanwhile). `None` when the
    /// kernel refused the call.
    pub poller_cpu_ms: Option<f64>,
}

pub struct Poller {
    conns: Vec<redis::Connection>,
    primaries: usize,
    cadence: Cadence,
}

impl Poller {
    /// Connects to every node before the clock starts.
    pub fn connect(addrs: &[String], primaries: usize, cadence: Cadence) -> anyhow::Result<Poller> {
        let conns = addrs
            .iter()
            .map(|addr| {
                let client = redis::Client::open(format!("redis://{addr}"))?;
                let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_secs(5)))?;
                Ok(conn)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Poller {
            conns,
            primaries,
            cadence,
        })
    }

    /// Polls from `start` until every milestone was seen or `deadline` passed. Runs on a
    /// thread of its own, whose CPU time it measures.
    pub fn run(mut self, start: Instant, deadline: Duration) -> (Milestones, PollStats) {
        let cpu_before = thread_cpu();
        let mut seen = Milestones::default();
        let mut stats = PollStats {
            cadence: self.cadence.describe(),
            ..PollStats::default()
        };
        let mut reading = Duration::ZERO;
        let mut cheapest = Duration::MAX;
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER")
            .arg("NODES")
            .cmd("CLUSTER")
            .arg("INFO")
            .cmd("INFO")
            .arg("replication");
        let polling = Instant::now();
        let mut last_round_start = polling;
        // From the tool's start: a milestone not seen by a round happened after it began.
        let mut unseen_since_ms = 0.0;
        while !seen.complete() && start.elapsed() < deadline {
            let round_start = Instant::now();
            last_round_start = round_start;
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
            stats.rounds += 1;
            let complete = views.len() == self.conns.len();
            let window = Some(now - unseen_since_ms);
            if seen.topology_ms.is_none() && complete && topology_agrees(&views, self.primaries) {
                (seen.topology_ms, seen.topology_window_ms) = (Some(now), window);
            }
            if seen.all_ok_ms.is_none() && complete && all_ok {
                (seen.all_ok_ms, seen.all_ok_window_ms) = (Some(now), window);
            }
            if seen.repl_up_ms.is_none() && replicas_up == self.conns.len() - self.primaries {
                (seen.repl_up_ms, seen.repl_up_window_ms) = (Some(now), window);
            }
            unseen_since_ms = (round_start - start).as_secs_f64() * 1000.0;
            // The reads and the check of what they saw: the poller's work per round.
            let reads = round_start.elapsed();
            reading += reads;
            cheapest = cheapest.min(reads);
            if seen.complete() {
                break;
            }
            let wait = self
                .cadence
                .interval(self.conns.len(), cheapest)
                .saturating_sub(reads)
                .min(deadline.saturating_sub(start.elapsed()));
            std::thread::sleep(wait);
            stats.round_max_ms = stats
                .round_max_ms
                .max(round_start.elapsed().as_secs_f64() * 1000.0);
        }
        let polled = polling.elapsed().as_secs_f64();
        let rounds = stats.rounds.max(1) as f64;
        // The mean interval between round starts (the last round has no interval after it:
        // polling ends as soon as it saw everything); with one round, the time it took.
        stats.round_ms = if stats.rounds > 1 {
            (last_round_start - polling).as_secs_f64() * 1000.0 / (rounds - 1.0)
        } else {
            polled * 1000.0
        };
        stats.read_ms = reading.as_secs_f64() * 1000.0 / rounds;
        stats.rounds_per_s = stats.rounds as f64 / polled.max(1e-9);
        stats.read_share = reading.as_secs_f64() / polled.max(1e-9);
        stats.poller_cpu_ms = cpu_before
            .zip(thread_cpu())
            .map(|(before, after)| (after - before).as_secs_f64() * 1000.0);
        (seen, stats)
    }
}

/// CPU time (user + system) of the calling thread so far, in ms.
pub fn thread_cpu_ms() -> Option<f64> {
    thread_cpu().map(|d| d.as_secs_f64() * 1000.0)
}

/// CPU time (user + system) of the calling thread so far.
#[allow(
    unsafe_code,
    reason = "getrusage(RUSAGE_THREAD) is the only interface for one thread's CPU time"
)]
fn thread_cpu() -> Option<Duration> {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return None;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
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
    fn the_default_cadence_grows_with_n_and_caps_the_share_spent_reading() {
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0).round();
        let fast = Duration::from_millis(1);
        assert_eq!(ms(Cadence::Auto.interval(6, fast)), 12.0);
        assert_eq!(ms(Cadence::Auto.interval(100, fast)), 200.0);
        // Reads slow even in the cheapest round (large N): the interval stretches so reads
        // stay ~15% of the time.
        let slow = Duration::from_millis(60);
        assert_eq!(ms(Cadence::Auto.interval(100, slow)), 400.0);
        // Even the cheapest round was slow (servers busy forming): at most 1 s between
        // rounds, where 1.6 s of reads had stretched it to 10.7 s.
        assert_eq!(
            ms(Cadence::Auto.interval(100, Duration::from_millis(1600))),
            1000.0
        );
        // The floor still rules at large N.
        assert_eq!(
            ms(Cadence::Auto.interval(600, Duration::from_millis(1600))),
            1200.0
        );
        let zero = Cadence::Every(Duration::ZERO);
        assert_eq!(zero.interval(100, slow), Duration::ZERO);
    }

    #[test]
    fn the_poller_thread_measures_its_own_cpu_time() {
        let before = thread_cpu().unwrap();
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu().unwrap() > before);
    }

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
