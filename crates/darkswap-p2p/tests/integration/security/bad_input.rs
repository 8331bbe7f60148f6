//! A raw libp2p peer sends malformed and dishonest gossip. Each message is rejected with a typed
//! reason, never forwarded or reported to the application, and honest nodes keep delivering.

use crate::support::*;
use darkswap_p2p::{
    libp2p::{
        futures::StreamExt,
        gossipsub::{self, IdentTopic},
        identity::Keypair,
        swarm::SwarmEvent,
        Multiaddr,
    },
    network::NetworkEvent,
    protocol::{envelope, limits, Message, RejectReason, ORDERBOOK_TOPIC},
};
use darkswap_support::types::{Order, PeerId};
use std::time::Duration;

/// Starts a bare gossipsub peer that dials `target`, waits for it to join the order-book topic,
/// then publishes each payload in turn.
fn raw_peer(key: Keypair, target: Multiaddr, target_id: PeerId, payloads: Vec<Vec<u8>>) -> tokio::task::JoinHandle<()> {
    let mut swarm = raw_gossip_swarm(key);
    let topic = IdentTopic::new(ORDERBOOK_TOPIC);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(target).unwrap();
    tokio::spawn(async move {
        let mut payloads = Some(payloads);
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) = swarm.select_next_some().await
            {
                if peer_id == target_id {
                    for p in payloads.take().unwrap_or_default() {
                        swarm.behaviour_mut().publish(topic.clone(), p).expect("raw publish");
                    }
                }
            }
        }
    })
}

fn order_by(maker: PeerId, amount: u128, created_at: u64, ttl: u64) -> Order {
    let mut d = draft(7, Duration::from_secs(ttl));
    d.amount = amount;
    Order::from_draft(maker, &d, created_at, rand::random())
}

/// Eight bad messages signed by `key`: undecodable, unknown version, oversized, maker not the
/// author, zero amount, expired, forged signature, "negative" amount.
fn bad_payloads(key: &Keypair) -> Vec<Vec<u8>> {
    let me = key.public().to_peer_id();
    let seal = |m: Message| envelope::seal(key, ORDERBOOK_TOPIC, &m).unwrap();
    let now = now_unix();
    let mut unknown_version = seal(Message::OrderAnnounce(order_by(me, 5, now, 60)));
    unknown_version[0] = 99;
    let mut oversized = vec![darkswap_p2p::protocol::WIRE_VERSION];
    oversized.resize(limits::MAX_GOSSIP_MESSAGE + 100, 0);
    let mut bad_signature = seal(Message::OrderAnnounce(order_by(me, 6, now, 60)));
    bad_signature[40] ^= 0xff;
    // Amounts are unsigned in the schema, so a negative amount cannot be expressed; what a signed
    // encoder would write for one (two's complement, all ones) overflows the u128 field.
    let negative = {
        let good = postcard::to_allocvec(&Message::OrderAnnounce(order_by(me, 5, now, 60))).unwrap();
        let order = order_by(me, 5, now, 60);
        let amount_at =
            postcard::to_allocvec(&(0u8, order.id, order.maker, order.base, order.quote, order.side)).unwrap().len();
        let mut bad = good[..amount_at].to_vec();
        bad.extend_from_slice(&[0xff; 19]); // varint longer than any u128
        bad.extend_from_slice(&good[amount_at + 1..]);
        envelope::seal_payload(key, ORDERBOOK_TOPIC, &bad).unwrap()
    };
    vec![
        vec![darkswap_p2p::protocol::WIRE_VERSION, 0xde, 0xad, 0xbe, 0xef], // undecodable
        unknown_version,                                                    // unknown version
        oversized,                                                          // oversized
        seal(Message::OrderAnnounce(order_by(PeerId::random(), 5, now, 60))), // maker is not the author
        seal(Message::OrderAnnounce(order_by(me, 0, now, 60))),             // zero amount
        seal(Message::OrderAnnounce(order_by(me, 5, now - 7200, 60))),      // expired
        bad_signature,                                                      // forged signature
        negative,                                                           // "negative" amount
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_dishonest_gossip_is_rejected_with_typed_reasons() {
    let ((a, mut a_rx), (b, mut b_rx), a_addr) = meshed_pair().await;

    // Two raw peers share the eight bad messages: a peer is banned after its fifth invalid
    // message (`GossipLimits::max_invalid`), and every message has to be seen to be checked.
    let a_id = a.local_peer_id();
    let mut raws = Vec::new();
    for half in 0..2 {
        let key = Keypair::generate_ed25519();
        let payloads: Vec<_> = bad_payloads(&key).into_iter().skip(half * 4).take(4).collect();
        raws.push(raw_peer(key, a_addr.parse().unwrap(), a_id, payloads));
    }

    // Undecodable twice (garbage and the overflowing amount), every other reason once.
    let expected = [
        RejectReason::UnknownVersion,
        RejectReason::Oversized,
        RejectReason::MakerNotAuthor,
        RejectReason::ZeroAmount,
        RejectReason::Expired,
        RejectReason::BadSignature,
    ];
    until("every bad message rejected", || async {
        let s = a.stats();
        (expected.iter().all(|r| s.rejected(*r) == 1) && s.rejected(RejectReason::Undecodable) == 2).then_some(())
    })
    .await;

    // The honest pair keeps delivering.
    let order = a.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
    let got = next_matching(&mut b_rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::OrderAnnounce(o), .. } => Some(o),
        _ => None,
    })
    .await;
    assert_eq!(got.id, order.id, "b receives the honest order and nothing before it");
    assert!(b.stats().rejected.is_empty(), "a forwarded something invalid: {:?}", b.stats());
    // No bad message reached a's application either.
    while let Ok(ev) = a_rx.try_recv() {
        assert!(!matches!(ev, NetworkEvent::MessageReceived { .. }), "bad message reached the app: {ev:?}");
    }
    assert_eq!(a.orders().len(), 1);
    for raw in raws {
        raw.abort();
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
