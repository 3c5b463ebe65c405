//! `Session::execute` against a node that does not answer: every step sent to it is reported
//! failed, by position and in order, also when its steps span several pipelines.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clustersmith_core::plan::Step;
use clustersmith_core::snapshot::NodeKey;
use clustersmith_core::spec::{ClusterSpec, parse_node};
use clustersmith_io::conn::ConnOpts;
use clustersmith_io::driver::Cluster;
use clustersmith_io::session::Session;

/// The two tests take ports from the kernel's ephemeral range: one drops its listener to get
/// a refusing port, which the other may be handed for its listener at that moment, and then
/// count the first test's connections as its own. They run one at a time.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn every_step_to_a_silent_node_fails_in_order_across_pipelines() {
    let _alone = PORTS.lock().await;
    // A loopback port that was free a moment ago and has no listener now: connections are
    // refused at once.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let spec = ClusterSpec::new(
        vec![parse_node(&format!("127.0.0.1:{port}")).unwrap()],
        Some(1),
        Some(0),
    )
    .unwrap();
    let session = Session::connect(&spec, &ConnOpts::default(), false)
        .await
        .unwrap();
    // More steps than one pipeline carries.
    let steps: Vec<Step> = (0..300)
        .map(|epoch| Step::SetConfigEpoch {
            node: NodeKey::named(&format!("127.0.0.1:{port}")),
            epoch,
        })
        .collect();
    let failed = session.execute(&steps).await;
    let positions: Vec<usize> = failed.iter().map(|(at, _)| *at).collect();
    assert_eq!(positions, (0..300).collect::<Vec<_>>());
    assert!(
        failed.iter().all(|(_, err)| err.is_connection_error()),
        "{:?}",
        failed.first()
    );
}

/// A node that accepts connections and never answers: the first pipeline times out, and the
/// node's other pipelines fail with it instead of connecting again and waiting again each.
#[tokio::test]
async fn a_node_that_never_answers_is_given_up_after_one_pipeline() {
    let _alone = PORTS.lock().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Accepts and holds every connection, answering nothing, until the test is done (bounded).
    let holder = {
        let (accepted, done) = (Arc::clone(&accepted), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let until = Instant::now() + Duration::from_secs(30);
            while !done.load(Ordering::SeqCst) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let spec = ClusterSpec::new(
        vec![parse_node(&format!("127.0.0.1:{port}")).unwrap()],
        Some(1),
        Some(0),
    )
    .unwrap();
    let opts = ConnOpts {
        response_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..ConnOpts::default()
    };
    let session = Session::connect(&spec, &opts, false).await.unwrap();
    let steps: Vec<Step> = (0..300)
        .map(|epoch| Step::SetConfigEpoch {
            node: NodeKey::named(&format!("127.0.0.1:{port}")),
            epoch,
        })
        .collect();
    let failed = session.execute(&steps).await;
    assert_eq!(failed.len(), 300);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the node was connected to once, not once per pipeline"
    );
    done.store(true, Ordering::SeqCst);
    holder.join().unwrap();
}
