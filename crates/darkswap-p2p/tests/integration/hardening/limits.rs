//! Resource limits, each pushed past on real nodes: inbound connections per IP, established
//! connections in total, handshakes pending, and gossip topics per peer.

use crate::support::*;
use darkswap_p2p::{
    libp2p::{futures::StreamExt, gossipsub::IdentTopic, identity::Keypair, swarm::SwarmEvent},
    network::{Network, ResourceLimits},
    protocol::ORDERBOOK_TOPIC,
};
use std::time::Duration;

async fn limited(limits: ResourceLimits) -> (Network, String) {
    node_with(|b| b.resource_limits(limits)).await
}

/// Dials `target` from a fresh node and reports whether the connection was established and
/// kept (a limit may refuse it during the handshake, or close it right after).
async fn try_connect(target: &Network, addr: &str) -> (Network, bool) {
    let (n, _) = node().await;
    let dialed = n.dial(addr).await.is_ok();
    let id = n.local_peer_id();
    // Give a refusal on the far side time to close what the dialer saw as established.
    let seen = async {
        loop {
            if target.connected_peers().await.unwrap_or_default().contains(&id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let kept = dialed && tokio::time::timeout(Duration::from_secs(3), seen).await.is_ok();
    (n, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_per_ip_are_capped() {
    let limits = ResourceLimits { max_inbound_per_ip: 2, limit_loopback: true, ..Default::default() };
    let (target, addr) = limited(limits).await;
    let (n1, ok1) = try_connect(&target, &addr).await;
    let (n2, ok2) = try_connect(&target, &addr).await;
    assert!(ok1 && ok2, "two connections from 127.0.0.1 fit");
    let (n3, ok3) = try_connect(&target, &addr).await;
    assert!(!ok3, "a third from the same IP is refused");
    assert_eq!(target.connected_peers().await.unwrap().len(), 2);
    // A slot frees when a peer leaves.
    n1.shutdown().await.unwrap();
    until("slot freed", || async { (target.connected_peers().await.ok()?.len() == 1).then_some(()) }).await;
    let (n4, ok4) = try_connect(&target, &addr).await;
    assert!(ok4, "a connection fits again once one closed");
    for n in [n2, n3, n4, target] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_connections_are_capped_in_total() {
    let (target, addr) = limited(ResourceLimits { max_connections: 3, ..Default::default() }).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (n, ok) = try_connect(&target, &addr).await;
        assert!(ok, "within the total");
        nodes.push(n);
    }
    let (extra, ok) = try_connect(&target, &addr).await;
    assert!(!ok, "the fourth connection is refused");
    assert_eq!(target.connected_peers().await.unwrap().len(), 3);
    nodes.push(extra);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
    target.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_handshakes_are_capped() {
    let (target, addr) = limited(ResourceLimits { max_pending_incoming: 2, ..Default::default() }).await;
    let tcp: std::net::SocketAddr = {
        let a: darkswap_p2p::libp2p::Multiaddr = addr.parse().unwrap();
        let mut it = a.iter();
        match (it.next(), it.next()) {
            (
                Some(darkswap_p2p::libp2p::multiaddr::Protocol::Ip4(ip)),
                Some(darkswap_p2p::libp2p::multiaddr::Protocol::Tcp(port)),
            ) => (ip, port).into(),
            _ => panic!("tcp address expected: {a}"),
        }
    };
    // Two sockets that never start the handshake hold both pending slots.
    let stalled: Vec<_> = futures_join(tcp).await;
    let (blocked, ok) = try_connect(&target, &addr).await;
    assert!(!ok, "no handshake slot while two are stalled");
    drop(stalled);
    // The stalled sockets closed, their slots free up.
    let (n, ok) = until("a handshake slot", || async {
        let (n, ok) = try_connect(&target, &addr).await;
        if ok {
            Some((n, ok))
        } else {
            n.shutdown().await.unwrap();
            None
        }
    })
    .await;
    assert!(ok);
    for n in [blocked, n, target] {
        n.shutdown().await.unwrap();
    }
}

async fn futures_join(addr: std::net::SocketAddr) -> Vec<tokio::net::TcpStream> {
    let mut v = Vec::new();
    for _ in 0..2 {
        v.push(tokio::net::TcpStream::connect(addr).await.expect("tcp connect"));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_per_peer_are_capped() {
    let limits = ResourceLimits { max_topics_per_peer: 8, max_subscriptions_per_rpc: 16, ..Default::default() };
    let (target, addr) = limited(limits).await;
    target.subscribe(ORDERBOOK_TOPIC).unwrap();
    // One raw peer subscribes to the order book and then to 100 more topics, one by one; the
    // node tracks at most 8 of its topics.
    let mut swarm = raw_gossip_swarm(Keypair::generate_ed25519());
    let raw_id = *swarm.local_peer_id();
    swarm.behaviour_mut().subscribe(&IdentTopic::new(ORDERBOOK_TOPIC)).unwrap();
    swarm.dial(addr.parse::<darkswap_p2p::libp2p::Multiaddr>().unwrap()).unwrap();
    let task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await {
                break;
            }
        }
        for i in 0..100 {
            swarm.behaviour_mut().subscribe(&IdentTopic::new(format!("spam/{i}"))).unwrap();
        }
        loop {
            swarm.select_next_some().await;
        }
    });
    until("raw peer on the order book", || async {
        target.topic_peers(ORDERBOOK_TOPIC).await.ok()?.contains(&raw_id).then_some(())
    })
    .await;
    // Wait until the node has seen the subscriptions it will accept, then count.
    until("spam topics seen", || async { target.topic_peers("spam/6").await.ok()?.contains(&raw_id).then_some(()) })
        .await;
    let mut tracked = 1;
    for i in 0..100 {
        if target.topic_peers(&format!("spam/{i}")).await.unwrap().contains(&raw_id) {
            tracked += 1;
        }
    }
    assert_eq!(tracked, 8, "topics tracked for one peer");
    task.abort();
    target.shutdown().await.unwrap();
}
