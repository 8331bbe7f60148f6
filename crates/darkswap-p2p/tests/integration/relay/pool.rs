//! The relay connection pool over real relays on loopback: min/max reservations, reserving on
//! demand, releasing the worst, reaching a NATed peer (with reuse), failover, and relays that must
//! prove themselves.

use crate::support::*;
use darkswap_p2p::{
    auth::{AuthManager, AuthManagerConfig, AuthMethod, AuthorizationLevel},
    network::{Network, NetworkConfig, NetworkNotice, RelayServerConfig},
    relay_connection_pool::{RelayConnectionPool, RelayConnectionPoolConfig, RelayStatus},
    relay_discovery::RelayDiscoveryConfig,
};
use darkswap_support::types::PeerId;
use libp2p::Multiaddr;
use std::time::Duration;

fn split(addr: &str) -> (PeerId, Multiaddr) {
    let ma: Multiaddr = addr.parse().unwrap();
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = ma.iter().last() else { panic!("no peer id") };
    (peer, ma)
}

fn pool_config(relays: &[&str]) -> RelayConnectionPoolConfig {
    RelayConnectionPoolConfig {
        relay_discovery_config: RelayDiscoveryConfig {
            bootstrap_relays: relays.iter().map(|a| split(a)).collect(),
            ..RelayDiscoveryConfig::default()
        },
        max_relay_connections: 1,
        min_relay_connections: 1,
        connection_check_interval: Duration::from_secs(60),
        auto_connect: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_keeps_reservations_reaches_peers_and_fails_over() {
    init_tracing();
    let (r1, r1_addr, _r1_rx) = relay_node().await;
    let (r2, r2_addr, _r2_rx) = relay_node().await;
    // T is reachable only through R1.
    let t = Network::new(NetworkConfig { relay_peers: vec![r1_addr.parse().unwrap()], ..NetworkConfig::default() });
    let (t, mut t_rx) = drain(t.await.unwrap());
    assert_eq!(reserved_on(&mut t_rx).await, r1.local_peer_id());

    let n = Network::builder(NetworkConfig::default()).build().await.unwrap();
    let (n, mut n_rx) = drain(n);
    let pool = RelayConnectionPool::new(pool_config(&[&r1_addr, &r2_addr]), n.local_peer_id(), n.clone());
    assert_eq!(pool.connected_relay_count(), 0);
    pool.start().await.unwrap();
    let first = reserved_on(&mut n_rx).await;
    until("pool sees the reservation", || async { (pool.connected_relay_count() == 1).then_some(()) }).await;
    assert!(matches!(pool.get_relay_status(&first), RelayStatus::Reserved { .. }));

    // On demand: a second relay; then a check brings it back to max = 1, releasing the worse one.
    let second = pool.connect_to_best_relay().await.unwrap().relay_peer_id;
    assert_ne!(second, first);
    assert_eq!(pool.connected_relay_count(), 2);
    pool.check_connections().await.unwrap();
    until("back to one reservation", || async { (pool.connected_relay_count() == 1).then_some(()) }).await;
    let statuses = [pool.get_relay_status(&first), pool.get_relay_status(&second)];
    assert!(statuses.contains(&RelayStatus::Released), "{statuses:?}");
    assert_eq!(pool.get_relay_status(&PeerId::random()), RelayStatus::Unknown);

    // T through whichever relay works (only R1 holds T's reservation); the second call reuses it.
    let conn = pool.connect_via_relay(&t.local_peer_id()).await.unwrap();
    assert_eq!((conn.peer_id, conn.relay_peer_id), (t.local_peer_id(), r1.local_peer_id()));
    assert_eq!(pool.connect_via_relay(&t.local_peer_id()).await.unwrap(), conn);
    let stats = pool.get_connection_stats();
    assert_eq!((stats.total_connections, stats.in_use_connections, stats.known_relays), (1, 1, 2));
    // Each connect_via_relay is one use; the connection is idle once both are given back.
    pool.release_connection(&t.local_peer_id());
    assert_eq!(pool.get_connection_stats().idle_connections, 0);
    pool.release_connection(&t.local_peer_id());
    assert_eq!(pool.get_connection_stats().idle_connections, 1);

    // The relay N holds dies: N reserves on the other within 5 s.
    let held = [first, second].into_iter().find(|r| matches!(pool.get_relay_status(r), RelayStatus::Reserved { .. }));
    let held = held.expect("one reservation held");
    let (dying, other) = if held == r1.local_peer_id() { (&r1, r2.local_peer_id()) } else { (&r2, r1.local_peer_id()) };
    let killed = std::time::Instant::now();
    dying.shutdown().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let r = reserved_on(&mut n_rx).await;
            if r == other {
                return r;
            }
        }
    })
    .await
    .expect("re-reserved within 5 s");
    println!("pool failover to {next} in {:?}", killed.elapsed());
    until("pool counts the new reservation", || async { (pool.connected_relay_count() == 1).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_uses_only_relays_that_prove_themselves() {
    init_tracing();
    let network_auth = AuthManagerConfig {
        auth_method: AuthMethod::SharedKey,
        shared_key: Some(b"secret-key".to_vec()),
        default_auth_level: AuthorizationLevel::Basic,
        ..Default::default()
    };
    let relay = || async {
        let net = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
            .relay_server(RelayServerConfig::default())
            .auth(network_auth.clone())
            .build()
            .await
            .unwrap();
        let addr = format!("{}/p2p/{}", net.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), net.local_peer_id());
        let (h, _rx) = drain(net);
        (h, addr)
    };
    // The operator vouches for `good` with a Relay-level token; `plain` knows the key, no more.
    let (good, good_addr) = relay().await;
    let (plain, plain_addr) = relay().await;
    let operator = AuthManager::new(network_auth.clone()).unwrap();
    let token = operator.issue_token(&good.local_peer_id(), AuthorizationLevel::Relay).unwrap();
    good.auth().set_credential(token.clone()).unwrap();

    let config = RelayConnectionPoolConfig {
        auth_config: Some(network_auth.clone()),
        require_relay_auth: true,
        min_relay_auth_level: AuthorizationLevel::Relay,
        max_relay_connections: 2,
        min_relay_connections: 2,
        ..pool_config(&[&plain_addr, &good_addr])
    };
    let mut n = Network::builder(NetworkConfig::default()).auth(network_auth.clone()).build().await.unwrap();
    let pool = RelayConnectionPool::new(config, n.local_peer_id(), n.handle());
    pool.start().await.unwrap();
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            if let NetworkNotice::RelayReservationFailed { relay_peer_id, error } = n.next_notice().await.unwrap() {
                return (relay_peer_id, error);
            }
        }
    })
    .await
    .expect("the untrusted relay is refused");
    assert_eq!(refused.0, plain.local_peer_id());
    assert!(refused.1.contains("Relay required"), "{}", refused.1);
    until("reserved on the vouched-for relay", || async {
        matches!(pool.get_relay_status(&good.local_peer_id()), RelayStatus::Reserved { .. }).then_some(())
    })
    .await;
    let status = pool.get_relay_status(&plain.local_peer_id());
    assert!(matches!(status, RelayStatus::Failed { .. }), "the refused relay is {status:?}");

    // The seed's methods, by hand.
    let challenge = pool.generate_relay_challenge(&plain.local_peer_id()).await.unwrap();
    let response = pool.request_relay_proof(&plain.local_peer_id(), challenge).await.unwrap();
    let err = pool.verify_relay_challenge_response(&plain.local_peer_id(), &response).await.unwrap_err();
    assert!(err.to_string().contains("Basic"), "{err}");
    assert_eq!(pool.verify_relay(&good.local_peer_id()).await.unwrap(), AuthorizationLevel::Relay);
    assert_eq!(
        pool.authenticate_relay(&good.local_peer_id(), &token.to_bytes()).await.unwrap(),
        AuthorizationLevel::Relay
    );
    assert!(pool.authenticate_relay(&plain.local_peer_id(), &token.to_bytes()).await.is_err(), "someone else's token");
}
