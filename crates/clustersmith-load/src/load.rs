//! The writers: one thread per shard, each writing new keys of its shard at its share of the
//! rate; then the read-back of every acknowledged write, and the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::router::{ConnSettings, Counters, ErrorSample, Router};
use crate::slot::{SLOTS, key_slot};

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `host:port` of nodes to read the slot map from.
    pub seeds: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Writes per second over the whole cluster (each shard's writer takes its share).
    pub rate: u32,
    /// Key prefix: keys are `PREFIX:SHARD:N`, so loads with different prefixes never meet.
    pub prefix: String,
    /// A write not acknowledged within this time is given up (counted as failed).
    pub write_timeout: Duration,
    /// Connect, read and write timeout of each call.
    pub io_timeout: Duration,
}

impl LoadOptions {
    pub fn new(seeds: Vec<String>, rate: u32) -> LoadOptions {
        LoadOptions {
            seeds,
            user: None,
            password: None,
            rate,
            prefix: "load".to_owned(),
            write_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(2),
        }
    }

    fn settings(&self) -> ConnSettings {
        ConnSettings {
            user: self.user.clone(),
            password: self.password.clone(),
            io_timeout: self.io_timeout,
        }
    }
}

/// A running load.
pub struct Load {
    options: LoadOptions,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    started: Instant,
    writers: Vec<JoinHandle<anyhow::Result<Written>>>,
    shards: Vec<(String, Vec<u16>)>,
}

/// What one writer did.
struct Written {
    /// Key numbers acknowledged, in order.
    acked: Vec<u64>,
    failed: u64,
    longest_gap: Duration,
    /// When the longest gap began, since the load started.
    longest_gap_at: Duration,
    counters: Counters,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardReport {
    /// The shard's primary when the load started, and its slots.
    pub primary_at_start: String,
    pub slots: String,
    pub acked: u64,
    pub failed: u64,
    /// Longest time between two acknowledged writes (or from the last one to the end).
    pub longest_gap_ms: f64,
    /// When that gap began, in seconds since the load started.
    pub longest_gap_at_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    pub duration_s: f64,
    pub rate: u32,
    pub acked: u64,
    /// Writes given up after the write timeout without an acknowledgement.
    pub failed: u64,
    /// Acknowledged writes that could not be read back with their value.
    pub lost: u64,
    /// Up to ten of them.
    pub lost_keys: Vec<String>,
    /// Redirections followed: a cluster client's normal work, not errors.
    pub moved: u64,
    pub ask: u64,
    /// Error replies and connection failures by kind, each retried: what an application
    /// would have seen without this client's retries.
    pub errors: BTreeMap<String, u64>,
    /// Errors seen while reading back (not counted above).
    pub read_errors: BTreeMap<String, u64>,
    /// The first few errors: kind, node, slot and when (see [`Counters::first_errors`]).
    pub first_errors: Vec<ErrorSample>,
    pub shards: Vec<ShardReport>,
}

impl LoadReport {
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn longest_gap_ms(&self) -> f64 {
        self.shards
            .iter()
            .map(|s| s.longest_gap_ms)
            .fold(0.0, f64::max)
    }

    /// One line for logs and test messages.
    pub fn summary(&self) -> String {
        format!(
            "{} writes acknowledged in {:.1} s, {} failed, {} lost; {} MOVED and {} ASK followed; errors (each retried): {}; longest write gap per shard: {}",
            self.acked,
            self.duration_s,
            self.failed,
            self.lost,
            self.moved,
            self.ask,
            if self.errors.is_empty() {
                "none".to_owned()
            } else {
                self.errors
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.shards
                .iter()
                .map(|s| format!("{:.0} ms", s.longest_gap_ms))
                .collect::<Vec<_>>()
                .join(", ")
        ) + &if self.first_errors.is_empty() {
            String::new()
        } else {
            let errors: Vec<String> = self.first_errors.iter().map(ToString::to_string).collect();
            format!("; first errors: {}", errors.join("; "))
        }
    }
}

impl Load {
    /// Reads the slot map and starts one writer per primary.
    pub fn start(options: LoadOptions) -> anyhow::Result<Load> {
        let router = Router::new(&options.seeds, options.settings())?;
        let shards: Vec<(String, Vec<u16>)> = router.shards().into_iter().collect();
        if shards.is_empty() {
            anyhow::bail!("the cluster serves no slot");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let per_writer = f64::from(options.rate.max(1)) / shards.len() as f64;
        let interval = Duration::from_secs_f64(1.0 / per_writer);
        let mut writers = Vec::new();
        for (index, (_, slots)) in shards.iter().enumerate() {
            let writer = Writer {
                prefix: format!("{}:{index}", options.prefix),
                owned: slot_mask(slots),
                interval,
                options: options.clone(),
                stop: Arc::clone(&stop),
                acked: Arc::clone(&acked),
                started,
            };
            writers.push(std::thread::spawn(move || writer.run()));
        }
        Ok(Load {
            options,
            stop,
            acked,
            started,
            writers,
            shards,
        })
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until `count` more writes than now were acknowledged, or `timeout` passes: a
    /// test's proof that the load runs. False on timeout.
    pub fn wait_for_writes(&self, count: u64, timeout: Duration) -> bool {
        let target = self.acked() + count;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.acked() >= target {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the writers, reads every acknowledged write back, and reports.
    pub fn finish(self) -> anyhow::Result<LoadReport> {
        self.stop.store(true, Ordering::Relaxed);
        let duration = self.started.elapsed();
        let mut written = Vec::new();
        for writer in self.writers {
            written.push(
                writer
                    .join()
                    .map_err(|_| anyhow::anyhow!("a writer panicked"))??,
            );
        }
        let mut reader = Router::new(&self.options.seeds, self.options.settings())?;
        let mut report = LoadReport {
            duration_s: duration.as_secs_f64(),
            rate: self.options.rate,
            acked: 0,
            failed: 0,
            lost: 0,
            lost_keys: Vec::new(),
            moved: 0,
            ask: 0,
            errors: BTreeMap::new(),
            read_errors: BTreeMap::new(),
            first_errors: Vec::new(),
            shards: Vec::new(),
        };
        let mut counters = Counters::default();
        for (index, (w, (primary, slots))) in written.iter().zip(&self.shards).enumerate() {
            counters.add(&w.counters);
            report.acked += w.acked.len() as u64;
            report.failed += w.failed;
            let prefix = format!("{}:{index}", self.options.prefix);
            for n in &w.acked {
                let key = format!("{prefix}:{n}");
                let deadline = Instant::now() + self.options.write_timeout;
                let value = reader.call(
                    key_slot(key.as_bytes()),
                    redis::cmd("GET").arg(&key),
                    deadline,
                );
                let expected = n.to_string();
                let found = match value {
                    Some(redis::Value::BulkString(bytes)) => bytes == expected.as_bytes(),
                    _ => false,
                };
                if !found {
                    report.lost += 1;
                    if report.lost_keys.len() < 10 {
                        report.lost_keys.push(key);
                    }
                }
            }
            report.shards.push(ShardReport {
                primary_at_start: primary.clone(),
                slots: ranges_text(slots),
                acked: w.acked.len() as u64,
                failed: w.failed,
                longest_gap_ms: w.longest_gap.as_secs_f64() * 1000.0,
                longest_gap_at_s: w.longest_gap_at.as_secs_f64(),
            });
        }
        report.moved = counters.moved;
        report.ask = counters.ask;
        report.errors = counters.errors;
        report.first_errors = counters.first_errors;
        report.read_errors = reader.counters.errors;
        Ok(report)
    }
}

struct Writer {
    prefix: String,
    owned: Vec<bool>,
    interval: Duration,
    options: LoadOptions,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    started: Instant,
}

impl Writer {
    fn run(self) -> anyhow::Result<Written> {
        let mut router = Router::new(&self.options.seeds, self.options.settings())?;
        let mut written = Written {
            acked: Vec::new(),
            failed: 0,
            longest_gap: Duration::ZERO,
            longest_gap_at: Duration::ZERO,
            counters: Counters::default(),
        };
        let mut last_ack = Instant::now();
        let mut due = Instant::now();
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_secs(1) {
                // Far behind (a long stall): start the schedule again rather than burst.
                due = now;
            }
            due += self.interval;
            // The next key number whose key hashes into this shard.
            let (key, slot) = loop {
                n += 1;
                let key = format!("{}:{n}", self.prefix);
                let slot = key_slot(key.as_bytes());
                if self.owned[usize::from(slot)] {
                    break (key, slot);
                }
            };
            let deadline = Instant::now() + self.options.write_timeout;
            let reply = router.call(slot, redis::cmd("SET").arg(&key).arg(n), deadline);
            match reply {
                Some(redis::Value::Okay) => {
                    let at = Instant::now();
                    let gap = at - last_ack;
                    if gap > written.longest_gap {
                        written.longest_gap = gap;
                        written.longest_gap_at = last_ack - self.started;
                    }
                    last_ack = at;
                    written.acked.push(n);
                    self.acked.fetch_add(1, Ordering::Relaxed);
                }
                _ => written.failed += 1,
            }
        }
        let tail = last_ack.elapsed();
        if tail > written.longest_gap {
            written.longest_gap = tail;
            written.longest_gap_at = last_ack - self.started;
        }
        written.counters = router.counters;
        Ok(written)
    }
}

fn slot_mask(slots: &[u16]) -> Vec<bool> {
    let mut owned = vec![false; SLOTS];
    for slot in slots {
        owned[usize::from(*slot)] = true;
    }
    owned
}

/// `0-5460,10923` for a sorted list of slots.
fn ranges_text(slots: &[u16]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = slots.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().expect("peeked");
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_lists_read_as_ranges() {
        assert_eq!(ranges_text(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges_text(&[]), "");
    }
}
