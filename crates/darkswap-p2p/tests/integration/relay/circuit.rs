//! Loopback circuit relay: a relay-mode node and two clients that only reach each other through it.
//! Both reserve, one dials the other through the circuit, and orders gossip over it.

use crate::support::*;
use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent, RelayServerConfig},
    protocol::{Message, ORDERBOOK_TOPIC},
};
use darkswap_support::types::PeerId;
use std::time::Duration;

async fn via(rx: &mut tokio::sync::mpsc::UnboundedReceiver<NetworkEvent>) -> (PeerId, PeerId) {
    next_matching(rx, |ev| match ev {
        NetworkEvent::ConnectedThroughRelay { relay_peer_id, dst_peer_id } => Some((relay_peer_id, dst_peer_id)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_relayed_connection_and_gossip_over_the_circuit() {
    init_tracing();
    // A relay only: it joins no gossip topic, so orders between the clients can only travel
    // over the circuit.
    let (relay, relay_addr, _relay_rx) = relay_node().await;
    let relay_id = relay.local_peer_id();

    // Two clients that do not listen on any direct address (as if behind NATs).
    let client = || async {
        let config = NetworkConfig { relay_peers: vec![relay_addr.parse().unwrap()], ..NetworkConfig::default() };
        let net = Network::builder(config).gossip_heartbeat(Duration::from_millis(200)).build().await.unwrap();
        drain(net)
    };
    let (a, mut a_rx) = client().await;
    let (b, mut b_rx) = client().await;
    for rx in [&mut a_rx, &mut b_rx] {
        let (reserved_on, id) = next_matching(rx, |ev| match ev {
            NetworkEvent::RelayReserved { relay_peer_id, reservation_id } => Some((relay_peer_id, reservation_id)),
            _ => None,
        })
        .await;
        assert_eq!(reserved_on, relay_id);
        assert!(id >= 1);
    }

    let circuit = format!("{relay_addr}/p2p-circuit/p2p/{}", b.local_peer_id());
    assert_eq!(a.dial(&circuit).await.unwrap(), b.local_peer_id());
    assert_eq!(via(&mut a_rx).await, (relay_id, b.local_peer_id()));
    assert_eq!(via(&mut b_rx).await, (relay_id, a.local_peer_id()));

    until_meshed(&a, &[b.local_peer_id()]).await;
    let order = a.publish_order(draft(9, Duration::from_secs(600))).await.unwrap();
    let (from, got) = next_matching(&mut b_rx, |ev| match ev {
        NetworkEvent::MessageReceived { peer_id, message: Message::OrderAnnounce(o), .. } => Some((peer_id, o)),
        _ => None,
    })
    .await;
    assert_eq!((from, got.id), (a.local_peer_id(), order.id));
    assert!(relay.topic_peers(ORDERBOOK_TOPIC).await.unwrap().len() == 2, "clients joined the topic");
    assert!(relay.orders().is_empty(), "the relay is not in the gossip mesh");
    // A circuit to a peer with no reservation fails cleanly.
    let nowhere = format!("{relay_addr}/p2p-circuit/p2p/{}", PeerId::random());
    assert!(matches!(
        tokio::time::timeout(WAIT, a.dial(&nowhere)).await.expect("no hang"),
        Err(darkswap_p2p::Error::Dial(_))
    ));
    for h in [&a, &b, &relay] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_are_discovered_and_scored_by_the_network() {
    use darkswap_p2p::relay_discovery::{RelayDiscoveryConfig, RelaySource};
    init_tracing();
    let (relay, relay_addr, _relay_rx) = relay_node().await;
    let relay_id = relay.local_peer_id();

    // A client that reserves on the relay: the reservation's setup time scores it.
    let config = NetworkConfig {
        relay_peers: vec![relay_addr.parse().unwrap()],
        bootstrap_peers: vec![relay_addr.parse().unwrap()],
        ..NetworkConfig::default()
    };
    let client = Network::new(config).await.unwrap();
    let client_addr =
        format!("{}/p2p/{}", client.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), client.local_peer_id());
    let (client, mut client_rx) = drain(client);
    next_matching(&mut client_rx, |ev| matches!(ev, NetworkEvent::RelayReserved { .. }).then_some(())).await;
    let info = client.relay_discovery().relay(&relay_id).expect("bootstrap relay known");
    assert_eq!(info.source, RelaySource::Bootstrap);
    assert!(info.successes >= 1 && info.latency_ms.is_some(), "{info:?}");
    assert!(info.score() > 50.0);

    // A newcomer that only knows the client finds the relay through the DHT.
    let newcomer = Network::builder(NetworkConfig {
        bootstrap_peers: vec![client_addr.parse().unwrap()],
        ..NetworkConfig::default()
    })
    .relay_discovery(RelayDiscoveryConfig { dht_query_interval: Duration::from_secs(1), ..Default::default() })
    .build()
    .await
    .unwrap();
    let (newcomer, _newcomer_rx) = drain(newcomer);
    let found =
        until("the newcomer discovers the relay", || async { newcomer.relay_discovery().relay(&relay_id) }).await;
    assert!(matches!(found.source, RelaySource::Dht | RelaySource::Peer), "{found:?}");
    assert!(!found.addrs.is_empty(), "{found:?}");
    assert_eq!(newcomer.relay_discovery().get_best_relays(3)[0].peer_id, relay_id);
    for h in [&newcomer, &client, &relay] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_next_relay_and_sync_catches_up() {
    use darkswap_p2p::relay_discovery::RelayDiscoveryConfig;
    init_tracing();
    let (r1, r1_addr, _r1_rx) = relay_node().await;
    let (r2, r2_addr, _r2_rx) = relay_node().await;
    let entry = |a: &str| {
        let addr: darkswap_p2p::libp2p::Multiaddr = a.parse().unwrap();
        let id = a.rsplit('/').next().unwrap().parse::<PeerId>().unwrap();
        (id, addr)
    };
    // N, reachable only through relays: reserves on R1, knows R2 as a fallback.
    let n = Network::builder(NetworkConfig { relay_peers: vec![r1_addr.parse().unwrap()], ..NetworkConfig::default() })
        .relay_discovery(RelayDiscoveryConfig {
            bootstrap_relays: vec![entry(&r1_addr), entry(&r2_addr)],
            ..Default::default()
        })
        .gossip_heartbeat(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let (n, mut n_rx) = drain(n);
    // X, another relay-only peer, on R2.
    let x = Network::builder(NetworkConfig { relay_peers: vec![r2_addr.parse().unwrap()], ..NetworkConfig::default() })
        .gossip_heartbeat(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let (x, mut x_rx) = drain(x);
    assert_eq!(reserved_on(&mut n_rx).await, r1.local_peer_id());
    assert_eq!(reserved_on(&mut x_rx).await, r2.local_peer_id());
    x.dial(&format!("{r1_addr}/p2p-circuit/p2p/{}", n.local_peer_id())).await.unwrap();
    until_meshed(&x, &[n.local_peer_id()]).await;
    let before = x.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
    until("n has the first order", || async { n.order(&before.id) }).await;

    // R1 dies. N reserves on R2 within 5 s.
    let killed = std::time::Instant::now();
    r1.shutdown().await.unwrap();
    let during = [
        x.publish_order(draft(2, Duration::from_secs(600))).await.unwrap(),
        x.publish_order(draft(3, Duration::from_secs(600))).await.unwrap(),
    ];
    let relay =
        tokio::time::timeout(Duration::from_secs(5), reserved_on(&mut n_rx)).await.expect("re-reserved within 5 s");
    println!("re-reserved on the next relay {:?} after the first one died", killed.elapsed());
    assert_eq!(relay, r2.local_peer_id());

    // X reaches N again through R2; the orders X published while it had no peer arrive (X gossips
    // them once N subscribes, and N syncs from X as a returning peer: whichever comes first).
    x.dial(&format!("{r2_addr}/p2p-circuit/p2p/{}", n.local_peer_id())).await.unwrap();
    for o in &during {
        until("orders published during the switch reach n", || async { n.order(&o.id) }).await;
    }
    assert_eq!(n.stats().orders_added, 3, "{:?}", n.stats());
    for h in [&n, &x, &r2] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_beyond_limits_and_dead_relays_fail_cleanly() {
    use darkswap_p2p::network::NetworkNotice;
    init_tracing();
    // A relay with room for one reservation.
    let relay = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig { max_reservations: 1, ..RelayServerConfig::default() })
        .build()
        .await
        .unwrap();
    let relay_id = relay.local_peer_id();
    let relay_addr = format!("{}/p2p/{relay_id}", relay.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap());
    let (relay, _relay_rx) = drain(relay);
    let config = || NetworkConfig { relay_peers: vec![relay_addr.parse().unwrap()], ..NetworkConfig::default() };

    let first = Network::new(config()).await.unwrap();
    let (first, mut first_rx) = drain(first);
    assert_eq!(reserved_on(&mut first_rx).await, relay_id);

    let mut second = Network::new(config()).await.unwrap();
    let notice = tokio::time::timeout(WAIT, async {
        loop {
            match second.next_notice().await.expect("running") {
                n @ NetworkNotice::RelayReservationFailed { .. } => return n,
                _ => continue,
            }
        }
    })
    .await
    .expect("the refusal is reported");
    let NetworkNotice::RelayReservationFailed { relay_peer_id, error } = notice else { unreachable!() };
    assert_eq!(relay_peer_id, relay_id);
    assert!(!error.is_empty());
    let second_id = second.local_peer_id();
    let (second, _second_rx) = drain(second);
    // The relay keeps serving the first reservation: a circuit to `first` works, to `second`
    // (no reservation) fails with a dial error.
    let third = Network::new(NetworkConfig::default()).await.unwrap();
    third.dial(&format!("{relay_addr}/p2p-circuit/p2p/{}", first.local_peer_id())).await.unwrap();
    let err = third.dial(&format!("{relay_addr}/p2p-circuit/p2p/{second_id}")).await.unwrap_err();
    assert!(matches!(err, darkswap_p2p::Error::Dial(_)), "{err}");

    // The relay disappears: dialing through it fails promptly, nothing hangs.
    relay.shutdown().await.unwrap();
    let fourth = Network::new(NetworkConfig::default()).await.unwrap();
    let dead = format!("{relay_addr}/p2p-circuit/p2p/{}", first.local_peer_id());
    let result = tokio::time::timeout(WAIT, fourth.dial(&dead)).await.expect("no hang");
    assert!(matches!(result, Err(darkswap_p2p::Error::Dial(_))), "{result:?}");
    for h in [first, second, third.handle(), fourth.handle()] {
        let _ = h.shutdown().await;
    }
}
