//! The workspace's `futures-timer` patch is in effect: libp2p's timeouts run on the tokio
//! runtime's timer, so gossip never starts the registry crate's timer thread (whose wake-ups
//! cost a fifth of the CPU under load; `crates/futures-timer`).

use crate::support::*;
use std::time::Duration;

/// Names of this process's threads (Linux).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_runs_libp2p_timers_on_the_runtime_not_on_a_timer_thread() {
    let ((a, _a_rx), (_b, mut b_rx), _) = meshed_pair().await;
    // Each forwarded or published gossip message makes gossipsub create a `Delay`.
    for n in 0..5 {
        a.publish_order(draft(n, Duration::from_secs(600))).await.unwrap();
        next_announced(&mut b_rx).await;
    }
    let names = thread_names();
    assert!(!names.is_empty());
    assert!(
        !names.iter().any(|n| n == "futures-timer"),
        "the registry crate's timer thread runs, so the [patch.crates-io] line is gone: {names:?}"
    );
}
