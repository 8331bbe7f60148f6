//! Churn: 50 nodes, a tenth of them killed and restarted (same identity, empty state) every
//! minute for five minutes while orders flow. Every node alive at the end holds every order
//! (gossip; sync for the restarted; anti-entropy rounds for what gossip missed), and the process has no more tasks than it started
//! with: killed nodes leave nothing running. `DARKSWAP_CHURN_MINUTES` and
//! `DARKSWAP_CHURN_MINUTE_SECS` shorten it for a quick local run.

use crate::support::*;
use darkswap_p2p::{
    libp2p::identity::Keypair,
    network::{Network, NetworkConfig, NetworkHandle},
};
use darkswap_support::types::OrderId;
use rand::{seq::SliceRandom, Rng};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

const NODES: usize = 50;
const KILL: usize = NODES / 10;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Slot {
    key: Keypair,
    handle: Option<NetworkHandle>,
    addr: String,
}

/// Starts a node with `key`, bootstrapping from `peers`.
async fn start(key: &Keypair, peers: &[String]) -> (NetworkHandle, String) {
    let config = NetworkConfig {
        bootstrap_peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
        ..NetworkConfig::default()
    };
    let mut net = Network::builder(config)
        .keypair(key.clone())
        .gossip_heartbeat(Duration::from_millis(500))
        .build()
        .await
        .expect("node starts");
    let addr = net.listen_on("/ip4/127.0.0.1/tcp/0").await.expect("listen");
    let full = format!("{addr}/p2p/{}", net.local_peer_id());
    let handle = net.handle();
    tokio::spawn(async move { while net.next_event().await.is_some() {} });
    (handle, full)
}

fn live_addrs(slots: &[Slot], n: usize) -> Vec<String> {
    let mut addrs: Vec<String> = slots.iter().filter(|s| s.handle.is_some()).map(|s| s.addr.clone()).collect();
    addrs.shuffle(&mut rand::thread_rng());
    addrs.truncate(n);
    addrs
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_under_churn_keep_every_order_and_leak_nothing() {
    init_tracing();
    let minutes = env("DARKSWAP_CHURN_MINUTES", 5);
    let minute = Duration::from_secs(env("DARKSWAP_CHURN_MINUTE_SECS", 60));
    let tasks_at_start = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let mut slots: Vec<Slot> = Vec::new();
    for _ in 0..NODES {
        let key = Keypair::generate_ed25519();
        let peers = live_addrs(&slots, 3);
        let (handle, addr) = start(&key, &peers).await;
        slots.push(Slot { key, handle: Some(handle), addr });
    }
    // Orders flow from random live nodes, about five a second, all along.
    let published: Arc<Mutex<HashSet<OrderId>>> = Arc::default();
    let live: Arc<Mutex<Vec<NetworkHandle>>> =
        Arc::new(Mutex::new(slots.iter().filter_map(|s| s.handle.clone()).collect()));
    let flow = {
        let (published, live) = (published.clone(), live.clone());
        tokio::spawn(async move {
            let mut n = 0u128;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let maker = {
                    let live = live.lock().unwrap();
                    live[rand::thread_rng().gen_range(0..live.len())].clone()
                };
                n += 1;
                if let Ok(order) = maker.publish_order(draft(n, Duration::from_secs(3600))).await {
                    published.lock().unwrap().insert(order.id);
                }
            }
        })
    };
    tokio::time::sleep(minute / 2).await;
    let rss_before = rss_mib();
    for round in 0..minutes {
        // Kill a tenth, then bring them back with the same identities and nothing else.
        let mut victims: Vec<usize> = (0..NODES).collect();
        victims.shuffle(&mut rand::thread_rng());
        victims.truncate(KILL);
        for &v in &victims {
            let h = slots[v].handle.take().unwrap();
            live.lock().unwrap().retain(|l| l.local_peer_id() != h.local_peer_id());
            h.shutdown().await.unwrap();
        }
        for &v in &victims {
            let peers = live_addrs(&slots, 3);
            let (handle, addr) = start(&slots[v].key, &peers).await;
            live.lock().unwrap().push(handle.clone());
            slots[v].handle = Some(handle);
            slots[v].addr = addr;
        }
        println!(
            "churn round {}: {} orders published, {:.0} MiB resident, {} tasks",
            round + 1,
            published.lock().unwrap().len(),
            rss_mib(),
            tokio::runtime::Handle::current().metrics().num_alive_tasks()
        );
        tokio::time::sleep(minute).await;
    }
    flow.abort();
    let published = published.lock().unwrap().clone();
    assert!(published.len() as u64 >= minutes * 10, "orders flowed: {}", published.len());
    // Every order that reached the network reaches every live node. (An order whose maker was
    // killed before it could gossip it never left that process: counted, not expected.)
    let held: HashSet<OrderId> = slots.iter().flat_map(|s| s.handle.as_ref().unwrap().orders()).map(|o| o.id).collect();
    let lost = published.difference(&held).count();
    let expected: HashSet<OrderId> = published.intersection(&held).copied().collect();
    assert!(lost <= (minutes as usize) * KILL, "{lost} orders never left their makers");
    // Gossip delivers most; a node that missed one repairs it in an anti-entropy round (every
    // 20 s, with a random peer), so a few rounds bound the wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for (i, slot) in slots.iter().enumerate() {
        let h = slot.handle.as_ref().unwrap();
        loop {
            let have: HashSet<OrderId> = h.orders().iter().map(|o| o.id).collect();
            let missing = expected.difference(&have).count();
            if missing == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} misses {missing} of {} orders ({} peers)",
                expected.len(),
                h.connected_peers().await.map(|p| p.len()).unwrap_or(0)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rss_loaded = rss_mib();
    for slot in slots {
        slot.handle.unwrap().shutdown().await.unwrap();
    }
    // Nothing left behind: with every node shut down (the killed ones long ago), the tasks are
    // back to what the test had before it started any.
    let tasks_after = until("every node's tasks gone", || async {
        let n = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        (n <= tasks_at_start + 2).then_some(n)
    })
    .await;
    println!(
        "churn: {} orders ({lost} lost with a killed maker before gossiping), every other one on all {NODES} live nodes; resident {rss_before:.0} MiB after start, {rss_loaded:.0} MiB at the end; tasks {tasks_at_start} before, {tasks_after} after shutdown",
        published.len()
    );
}
