//! Peers flood the order book (valid orders as fast as they can, and invalid ones) while an
//! honest maker posts at a normal rate: the flooders are rate limited (or their invalid messages counted),
//! disconnected and banned, and every honest order still reaches every honest node.

use crate::support::*;
use darkswap_p2p::{
    libp2p::{futures::StreamExt, gossipsub, identity::Keypair, swarm::SwarmEvent, Multiaddr},
    network::{GossipLimits, NetworkHandle},
    protocol::{envelope, Message, RejectReason, ORDERBOOK_TOPIC},
};
use darkswap_support::types::{Order, OrderId};
use std::{collections::HashSet, time::Duration};

/// The flooder: a bare gossipsub peer that dials every target, then publishes `valid` signed
/// orders and `invalid` garbage, interleaved, as fast as its gossipsub takes them.
fn flooder(targets: Vec<Multiaddr>, valid: usize, invalid: usize) -> (tokio::task::JoinHandle<usize>, Keypair) {
    let key = Keypair::generate_ed25519();
    let mut swarm = raw_gossip_swarm(key.clone());
    let me = key.public().to_peer_id();
    let topic = gossipsub::IdentTopic::new(ORDERBOOK_TOPIC);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    for t in &targets {
        swarm.dial(t.clone()).unwrap();
    }
    let seal_key = key.clone();
    let task = tokio::spawn(async move {
        let mut subscribed = HashSet::new();
        while subscribed.len() < targets.len() {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) = swarm.select_next_some().await
            {
                subscribed.insert(peer_id);
            }
        }
        let now = now_unix();
        let mut sent = 0;
        for i in 0..valid + invalid {
            let payload = if i % (valid / invalid.max(1) + 1) == 0 && i / (valid / invalid.max(1) + 1) < invalid {
                let mut junk = vec![darkswap_p2p::protocol::WIRE_VERSION];
                junk.extend_from_slice(&(i as u64).to_le_bytes());
                junk
            } else {
                let order = Order::from_draft(me, &draft(i as u128, Duration::from_secs(600)), now, i as u64);
                envelope::seal(&seal_key, ORDERBOOK_TOPIC, &Message::OrderAnnounce(order)).unwrap()
            };
            if swarm.behaviour_mut().publish(topic.clone(), payload).is_ok() {
                sent += 1;
            }
            // Let the swarm write what it queued now and then; a real flooder does the same.
            if i % 64 == 0 {
                while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), swarm.next()).await {}
            }
        }
        loop {
            if tokio::time::timeout(Duration::from_secs(30), swarm.next()).await.is_err() {
                return sent;
            }
        }
    });
    (task, key)
}

/// A node with tight gossip limits, so that a test-sized flood crosses them within seconds.
async fn guarded() -> (NetworkHandle, String) {
    let limits = GossipLimits { per_maker_rate: 10, per_maker_burst: 50, max_strikes: 50, ..Default::default() };
    let (net, addr) = node_with(|b| b.gossip_limits(limits)).await;
    (drain(net).0, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_peers_are_cut_off_and_honest_orders_all_arrive() {
    // Three honest nodes in a triangle. One flooder sends valid orders far over its rate to b;
    // another sends orders mixed with junk to c.
    let (maker, maker_addr) = node().await;
    let (maker, _maker_rx) = drain(maker);
    let (b, b_addr) = guarded().await;
    let (c, c_addr) = guarded().await;
    b.dial(&maker_addr).await.unwrap();
    c.dial(&maker_addr).await.unwrap();
    c.dial(&b_addr).await.unwrap();
    until_meshed(&maker, &[b.local_peer_id(), c.local_peer_id()]).await;

    let (rate_flood, rate_key) = flooder(vec![b_addr.parse().unwrap()], 3000, 0);
    let (junk_flood, junk_key) = flooder(vec![c_addr.parse().unwrap()], 2000, 300);
    let (rate_id, junk_id) = (rate_key.public().to_peer_id(), junk_key.public().to_peer_id());

    // The honest maker posts 60 orders at 20 per second while the floods run.
    let mut honest: HashSet<OrderId> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for n in 0..60 {
        tick.tick().await;
        honest.insert(maker.publish_order(draft(10_000 + n, Duration::from_secs(600))).await.unwrap().id);
    }

    // b: rate limited, then banned for its strikes.
    until("b cuts the rate flooder off", || async {
        let s = b.stats();
        let gone = !b.connected_peers().await.ok()?.contains(&rate_id);
        (gone && s.peers_banned >= 1 && s.rejected(RejectReason::RateLimited) > 0).then_some(())
    })
    .await;
    // c: junk rejected, banned at its fifth invalid message.
    until("c cuts the junk flooder off", || async {
        let s = c.stats();
        let gone = !c.connected_peers().await.ok()?.contains(&junk_id);
        (gone && s.peers_banned >= 1 && s.rejected(RejectReason::Undecodable) > 0).then_some(())
    })
    .await;
    assert!(c.stats().rejected(RejectReason::Undecodable) < 300, "cut off before all the junk: {:?}", c.stats());
    for (name, node, flooder) in [("b", &b, rate_id), ("c", &c, junk_id)] {
        until(&format!("{name} holds every honest order"), || async {
            let have: HashSet<OrderId> = node.orders().iter().map(|o| o.id).collect();
            honest.is_subset(&have).then_some(())
        })
        .await;
        let kept = node.orders().iter().filter(|o| o.maker == flooder).count();
        assert!(kept <= 2000, "{name}: {kept} flood orders kept");
        assert!(node.connected_peers().await.unwrap().contains(&maker.local_peer_id()), "{name} kept the maker");
    }
    // The maker forwarded nothing but its own orders and is never blamed.
    assert_eq!(maker.stats().peers_banned, 0);

    // The ban holds: the flooder cannot come back.
    let mut again = raw_gossip_swarm(rate_key);
    again.dial(b_addr.parse::<Multiaddr>().unwrap()).unwrap();
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            match again.select_next_some().await {
                SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. } => return true,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(refused, "a banned peer is refused");
    rate_flood.abort();
    junk_flood.abort();
    for n in [maker, b, c] {
        n.shutdown().await.unwrap();
    }
}
