//! Orders gossip through a line of five nodes: every subscriber gets each order exactly once, and
//! always after it learned of the peer that delivered it.

use crate::support::*;
use darkswap_p2p::{network::NetworkEvent, protocol::Message};
use darkswap_support::types::{OrderId, PeerId};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_line_each_order_exactly_once() {
    const N: usize = 5;
    const PER_NODE: usize = 2;
    let mut handles = Vec::new();
    let mut receivers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..N {
        let (net, addr) = node().await;
        let (h, rx) = drain(net);
        handles.push(h);
        receivers.push(rx);
        addrs.push(addr);
    }
    for i in 0..N - 1 {
        handles[i].dial(&addrs[i + 1]).await.expect("dial neighbour");
    }
    for i in 0..N {
        let mut neighbours = Vec::new();
        if i > 0 {
            neighbours.push(handles[i - 1].local_peer_id());
        }
        if i + 1 < N {
            neighbours.push(handles[i + 1].local_peer_id());
        }
        until_meshed(&handles[i], &neighbours).await;
    }

    let mut published: HashMap<OrderId, usize> = HashMap::new();
    for (i, h) in handles.iter().enumerate() {
        for k in 0..PER_NODE {
            let order = h.publish_order(draft((i * 10 + k) as u128, Duration::from_secs(600))).await.unwrap();
            published.insert(order.id, i);
        }
    }

    let expected = (N - 1) * PER_NODE;
    for (i, rx) in receivers.iter_mut().enumerate() {
        let mut connected: HashSet<PeerId> = HashSet::new();
        let mut seen: HashMap<OrderId, usize> = HashMap::new();
        while seen.len() < expected {
            let ev = tokio::time::timeout(WAIT, rx.recv()).await.expect("orders arrive").expect("running");
            match ev {
                NetworkEvent::PeerConnected(p) => {
                    connected.insert(p);
                }
                NetworkEvent::MessageReceived { peer_id, message: Message::OrderAnnounce(o), .. } => {
                    assert!(connected.contains(&peer_id), "node {i}: message from {peer_id} before PeerConnected");
                    assert_ne!(published[&o.id], i, "node {i} received its own order");
                    *seen.entry(o.id).or_default() += 1;
                }
                _ => {}
            }
        }
        assert!(seen.values().all(|&n| n == 1), "node {i}: duplicates {seen:?}");
        // Nothing more arrives: drain what is queued and check no duplicate shows up late.
        while let Ok(ev) = rx.try_recv() {
            if let NetworkEvent::MessageReceived { message: Message::OrderAnnounce(o), .. } = ev {
                panic!("node {i}: order {} delivered twice", o.id);
            }
        }
        assert_eq!(handles[i].orders().len(), N * PER_NODE, "node {i} book");
    }
    for h in &handles {
        h.shutdown().await.unwrap();
    }
}

/// An application that stops reading events loses nothing: the node stops reading the network
/// (backpressure) until the application catches up, and every order arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_application_loses_no_events() {
    const ORDERS: usize = 600;
    let (a, a_addr) = node().await;
    let (a, _a_rx) = drain(a);
    init_tracing();
    let mut b = darkswap_p2p::network::Network::builder(darkswap_p2p::network::NetworkConfig::default())
        .gossip_heartbeat(Duration::from_millis(200))
        .event_buffer(16)
        .build()
        .await
        .unwrap();
    b.dial(&a_addr).await.unwrap();
    // Read only until the mesh forms, then stop reading while A publishes far more than the
    // event buffer holds.
    let b_id = b.local_peer_id();
    until_meshed(&a, &[b_id]).await;
    let mut published = HashSet::new();
    for n in 0..ORDERS {
        published.insert(a.publish_order(draft(n as u128, Duration::from_secs(600))).await.unwrap().id);
    }
    let mut seen = HashSet::new();
    while seen.len() < ORDERS {
        let ev = tokio::time::timeout(WAIT, b.next_event()).await.expect("events keep coming").expect("running");
        if let NetworkEvent::MessageReceived { message: Message::OrderAnnounce(o), .. } = ev {
            assert!(seen.insert(o.id), "order {} twice", o.id);
        }
    }
    assert_eq!(seen, published);
    assert_eq!(b.orders().len(), ORDERS);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// An order posted while its maker was alone still reaches peers that cannot sync it: once a
/// neighbour subscribes, the maker gossips what nobody heard. `late` has used its sync budget on
/// `hub` and `filler` before `maker` shows up, and `hub` learns of the order by sync, which it
/// does not gossip on; only the maker's own late publish brings the order to `late`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_posted_while_alone_is_gossiped_once_peers_come() {
    let (hub, hub_addr) = node().await;
    let (filler, filler_addr) = node().await;
    let (maker, _) = node().await;
    let (late, _) = node().await;
    let (hub, _hub_rx) = drain(hub);
    let (filler, _filler_rx) = drain(filler);
    let (maker, _maker_rx) = drain(maker);
    let (late, mut late_rx) = drain(late);
    late.dial(&hub_addr).await.expect("late joins the hub");
    late.dial(&filler_addr).await.expect("late joins the filler");
    until_meshed(&hub, &[late.local_peer_id()]).await;

    let order = maker.publish_order(draft(7, Duration::from_secs(600))).await.expect("posted while alone");
    maker.dial(&hub_addr).await.expect("maker joins the hub");
    let got = next_matching(&mut late_rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::OrderAnnounce(o), .. } if o.id == order.id => Some(o),
        _ => None,
    })
    .await;
    assert_eq!(got.maker, maker.local_peer_id());
    for h in [&hub, &filler, &maker, &late] {
        h.shutdown().await.unwrap();
    }
}
