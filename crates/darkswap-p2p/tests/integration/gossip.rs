//! Orders gossip through a line of five nodes: every subscriber gets each order exactly once, and
//! always after it learned of the peer that delivered it.

use crate::common::*;
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
