//! The real reconcile loop (`apply`) driven over the core's simulated cluster: the loop is a
//! driver over a [`Cluster`] and a planner, so the code that drives servers runs here with no
//! server at all.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use clustersmith_core::operation::{FailoverMode, Reads};
use clustersmith_core::plan::{MoveEngine, SlotMove, Step, Unlisted};
use clustersmith_core::sim::Sim;
use clustersmith_core::snapshot::NodeKey;
use clustersmith_core::snapshot::Snapshot;
use clustersmith_io::driver::{Cluster, Event};
use clustersmith_io::error::NodeError;
use clustersmith_io::migrate::{MigrateAuth, MoveError, MoveOptions, MoveProgress};
use clustersmith_io::operations::{ApplyOptions, apply};

/// The simulator behind the driver's interface, counting what the driver sent.
struct Simulated {
    sim: RefCell<Sim>,
    /// The simulator's nodes as last read.
    snapshot: Snapshot,
    commands: Cell<usize>,
    slots_moved: Cell<usize>,
}

impl Simulated {
    fn new(sim: Sim) -> Simulated {
        Simulated {
            snapshot: sim.observe(),
            sim: RefCell::new(sim),
            commands: Cell::new(0),
            slots_moved: Cell::new(0),
        }
    }
}

impl Cluster for Simulated {
    fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    async fn read(&mut self, _reads: &Reads) -> Vec<NodeError> {
        self.snapshot = self.sim.borrow().observe();
        Vec::new()
    }

    async fn execute(&self, steps: &[Step]) -> Vec<(usize, NodeError)> {
        self.commands.set(self.commands.get() + steps.len());
        self.sim.borrow_mut().apply(steps);
        Vec::new()
    }

    async fn move_slots(
        &self,
        _engine: MoveEngine,
        moves: &[SlotMove],
        _options: &MoveOptions,
        progress: &mut dyn FnMut(&MoveProgress),
    ) -> Result<MoveProgress, MoveError> {
        self.sim.borrow_mut().move_slots(moves);
        let slots: usize = moves.iter().map(|m| m.slots.len()).sum();
        self.slots_moved.set(self.slots_moved.get() + slots);
        let done = MoveProgress {
            slots_done: slots,
            slots_total: slots,
            keys_moved: 0,
            elapsed: Duration::ZERO,
        };
        progress(&done);
        Ok(done)
    }

    async fn failover(&self, replica: &NodeKey, _mode: FailoverMode) -> Result<(), NodeError> {
        self.sim.borrow_mut().failover(replica);
        Ok(())
    }

    async fn restart(&self, _node: &NodeKey) -> Result<(), String> {
        Err("the simulator restarts no node".to_owned())
    }

    async fn others_named(&self, _name: &str, _prefix: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    fn add_leaving(&mut self, _found: &[Unlisted]) -> Result<(), NodeError> {
        Ok(())
    }

    fn migrate_auth(&self) -> MigrateAuth {
        MigrateAuth::default()
    }
}

fn ips(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.0.{}", i + 1)).collect()
}

#[tokio::test]
async fn the_loop_forms_a_fresh_cluster_and_verifies_it() {
    let ips = ips(6);
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let sim = Sim::new(&ips, None);
    let spec = sim.spec(3);
    let mut cluster = Simulated::new(sim);
    let outcome = apply(
        &mut cluster,
        &spec,
        &ApplyOptions::new(Duration::from_secs(10)),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(outcome.converged, "{:?}", outcome.verdict);
    assert!(outcome.verdict.passed());
    assert_eq!(outcome.steps_sent, cluster.commands.get());
    // In a cluster where every step takes effect at once, a handful of rounds.
    assert!(outcome.rounds <= 6, "{} rounds", outcome.rounds);
    assert_eq!(outcome.slots_moved, 0);
}

#[tokio::test]
async fn the_loop_grows_three_primaries_to_four_by_moving_a_quarter_of_the_slots() {
    let ips = ips(8);
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let sim = Sim::new(&ips[..6], None);
    let formed = sim.spec(3);
    let mut cluster = Simulated::new(sim);
    let options = ApplyOptions::new(Duration::from_secs(10));
    assert!(
        apply(&mut cluster, &formed, &options, &mut |_| {})
            .await
            .unwrap()
            .converged
    );

    let mut sim = cluster.sim.into_inner();
    sim.add_node(ips[6]);
    sim.add_node(ips[7]);
    let grown = sim.spec(4);
    let mut cluster = Simulated::new(sim);
    let mut started = 0;
    let outcome = apply(&mut cluster, &grown, &options, &mut |event| {
        if let Event::MovesStarted { slots, .. } = event {
            started += slots;
        }
    })
    .await
    .unwrap();
    assert!(outcome.converged, "{:?}", outcome.verdict);
    assert_eq!((outcome.slots_moved, started), (4096, 4096));
    assert_eq!(cluster.sim.borrow().slot_counts(), [4096, 4096, 4096, 4096]);
}
