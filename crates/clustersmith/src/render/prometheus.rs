//! `verify --format prometheus`: the verdict and the live cluster as Prometheus gauges, in the
//! text exposition format that node_exporter's textfile collector reads (see
//! docs/prometheus.md for the collector and alert rules).
//!
//! What redis_exporter already publishes (`CLUSTER INFO` totals) is not repeated; this adds
//! what it cannot say: whether the cluster matches its spec, criterion by criterion, and per
//! node its role, its replication link, lag and placement, per primary its slots and keys, and
//! open slots. Every series is a gauge; names follow Prometheus' conventions (base units,
//! `_bytes`, `_seconds`, `_ok` for 1-or-0 checks).

use std::fmt::Write as _;

use clustersmith_core::health::replicas_of;
use clustersmith_core::model::NodeFlag;
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::verify::{CRITERIA, Verdict};

/// One metric family: its help line, then its samples.
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    samples: Vec<(Vec<(&'a str, String)>, f64)>,
}

impl<'a> Family<'a> {
    fn new(name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'a str, String)>, value: f64) {
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                let text: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", text.join(","));
            }
            let _ = writeln!(out, " {value}");
        }
    }
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn flag(condition: bool) -> f64 {
    if condition { 1.0 } else { 0.0 }
}

/// The exposition text. `verdict` is `None` when the live cluster cannot match the spec at all
/// (a blocker): every criterion is then reported failing. `now` is the Unix time of the read,
/// so that an alert can tell a stale textfile.
pub fn exposition(verdict: Option<&Verdict>, snapshot: &Snapshot, now: f64) -> String {
    let mut families = Vec::new();

    let mut passed = Family::new(
        "clustersmith_verify_ok",
        "1 when the cluster matches its spec: every verify criterion holds.",
    );
    passed.add(Vec::new(), flag(verdict.is_some_and(Verdict::passed)));
    families.push(passed);
    let mut at = Family::new(
        "clustersmith_verify_timestamp_seconds",
        "When verify read the cluster (Unix time).",
    );
    at.add(Vec::new(), now.floor());
    families.push(at);

    let mut criterion_ok = Family::new(
        "clustersmith_criterion_ok",
        "1 when the verify criterion holds, 0 when it fails or could not be checked.",
    );
    let mut failing = Family::new(
        "clustersmith_criterion_failing_nodes",
        "Nodes that fail the verify criterion (or could not be checked for it).",
    );
    for criterion in CRITERIA {
        let result = verdict.and_then(|v| v.of(criterion));
        let labels = vec![("criterion", criterion.id.to_owned())];
        criterion_ok.add(labels.clone(), flag(result.is_some_and(|r| r.passed())));
        let nodes = result.map_or(0, |r| r.nodes().count());
        failing.add(labels, nodes as f64);
    }
    families.push(criterion_ok);
    families.push(failing);

    let mut up = Family::new(
        "clustersmith_node_up",
        "1 when the node answered verify's reads.",
    );
    let mut primary = Family::new(
        "clustersmith_node_primary",
        "1 when the node is a primary, 0 when it is a replica (by its own view).",
    );
    let mut info = Family::new(
        "clustersmith_node_info",
        "The node's id and server version, as labels; always 1.",
    );
    let mut flagged = Family::new(
        "clustersmith_node_flagged_by_peers",
        "Peers whose view flags the node as failing (flag=\"fail\" or \"pfail\").",
    );
    let mut link_up = Family::new(
        "clustersmith_replica_link_up",
        "1 when the replica's link to its primary is up (master_link_status).",
    );
    let mut lag = Family::new(
        "clustersmith_replica_lag_bytes",
        "Bytes of its primary's replication stream the replica has not processed.",
    );
    let mut last_io = Family::new(
        "clustersmith_replica_last_io_seconds",
        "Seconds since the replica last heard from its primary (master_last_io_seconds_ago).",
    );
    let mut same_domain = Family::new(
        "clustersmith_replica_in_primary_domain",
        "1 when the replica is in its primary's zone (or on its host, without zones): one failure takes both.",
    );
    let mut slots = Family::new(
        "clustersmith_primary_slots",
        "Hash slots the primary owns (by its own view).",
    );
    let mut keys = Family::new("clustersmith_node_keys", "Keys the node holds.");
    let mut open = Family::new(
        "clustersmith_node_open_slots",
        "Slots open on the node (MIGRATING or IMPORTING): a move in progress or left half-done.",
    );
    for record in snapshot.iter() {
        let node = record.label().to_owned();
        // What its peers think of it, also (above all) when it does not answer.
        // A node that never answered this run is known by the id its peers list at its address.
        if let Some(id) = record
            .id()
            .or_else(|| snapshot.id_listed_at(record.ip, record.port))
        {
            for (name, which) in [("fail", NodeFlag::Fail), ("pfail", NodeFlag::PossibleFail)] {
                let count = snapshot
                    .views()
                    .filter(|(viewer, _)| viewer.key != record.key)
                    .filter(|(_, other)| other.knows(&id).is_some_and(|e| e.has_flag(which)))
                    .count();
                flagged.add(
                    vec![("node", node.clone()), ("flag", name.to_owned())],
                    count as f64,
                );
            }
        }
        let Some(view) = record.view() else {
            up.add(vec![("node", node)], 0.0);
            continue;
        };
        up.add(vec![("node", node.clone())], 1.0);
        let me = view.myself();
        info.add(
            vec![
                ("node", node.clone()),
                ("node_id", view.id.to_string()),
                (
                    "version",
                    view.version().map_or_else(String::new, |v| v.to_string()),
                ),
            ],
            1.0,
        );
        primary.add(vec![("node", node.clone())], flag(!me.is_replica()));
        keys.add(vec![("node", node.clone())], view.info.key_count() as f64);
        open.add(vec![("node", node.clone())], me.open_slots().len() as f64);
        if me.is_replica() {
            let primary_record = me
                .primary_id
                .as_ref()
                .and_then(|id| snapshot.answering_as(id));
            let primary_label = me
                .primary_id
                .as_ref()
                .map_or_else(String::new, |id| snapshot.label_of(id));
            let labels = vec![("node", node.clone()), ("primary", primary_label)];
            link_up.add(
                labels.clone(),
                flag(view.info.primary_link_status() == Some("up")),
            );
            if let Some(seconds) = view
                .info
                .get("master_last_io_seconds_ago")
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| *s >= 0.0)
            {
                last_io.add(labels.clone(), seconds);
            }
            let fitness = primary_record.and_then(|p| {
                replicas_of(snapshot, &p.key)
                    .into_iter()
                    .find(|r| r.key == record.key)
            });
            if let Some(fitness) = fitness {
                if let Some(bytes) = fitness.lag {
                    lag.add(labels.clone(), bytes as f64);
                }
                same_domain.add(labels, flag(fitness.same_domain));
            }
        } else {
            slots.add(vec![("node", node)], me.slots.len() as f64);
        }
    }
    families.extend([
        up,
        info,
        primary,
        flagged,
        link_up,
        lag,
        last_io,
        same_domain,
        slots,
        keys,
        open,
    ]);
    let mut out = String::new();
    for family in &families {
        family.write(&mut out);
    }
    out
}
