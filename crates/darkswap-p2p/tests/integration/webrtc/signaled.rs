//! WebRTC through the signaling server: two native peers, data channels both ways, and the
//! identity handshake.

use crate::support::*;
use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent},
    protocol::Message,
    webrtc_connection::WebRtcError,
};
use libp2p::identity::Keypair;
use std::time::Duration;

#[tokio::test]
async fn two_peers_exchange_data_channel_messages_both_ways() {
    let server = server().await;
    let (a, b) = (client(&server.url()).await, client(&server.url()).await);
    let offer = a.create_offer(&b.peer_id()).await.expect("offer sent");
    assert!(offer.sdp.starts_with("v=0"), "{}", offer.sdp);
    let at_a = tokio::time::timeout(WAIT, a.wait_for_connection(&b.peer_id())).await.unwrap().expect("a connects");
    let at_b = tokio::time::timeout(WAIT, b.next_connection()).await.unwrap().expect("b accepts");
    assert_eq!(at_a.remote_peer_id(), b.peer_id(), "the handshake proved b");
    assert_eq!(at_b.remote_peer_id(), a.peer_id(), "the handshake proved a");
    assert!(at_a.is_outbound() && !at_b.is_outbound());
    println!("setup {:?}", at_a.setup_time());

    let (da, db) = (&at_a.data_channels["data"], &at_b.data_channels["data"]);
    da.send(b"hello from a".to_vec()).await.unwrap();
    assert_eq!(db.receive().await.unwrap(), b"hello from a");
    db.send(b"hello from b".to_vec()).await.unwrap();
    assert_eq!(da.receive().await.unwrap(), b"hello from b");
    for i in 0..100u32 {
        da.send(i.to_be_bytes().repeat(1000)).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(db.receive().await.unwrap(), i.to_be_bytes().repeat(1000), "in order, intact");
    }
    let too_big = vec![0; darkswap_p2p::webrtc_connection::MAX_DATA_MESSAGE + 1];
    assert!(matches!(da.send(too_big).await, Err(WebRtcError::MessageTooLarge(_))));

    // b closes the channel after one last message: a reads it, then the end; sending on a closed
    // channel fails on both sides instead of vanishing.
    db.send(b"last".to_vec()).await.unwrap();
    db.close().await.unwrap();
    assert!(matches!(db.send(b"after close".to_vec()).await, Err(WebRtcError::Closed)));
    assert_eq!(da.receive().await.unwrap(), b"last");
    let end = tokio::time::timeout(WAIT, da.receive()).await.expect("the close arrives");
    assert!(matches!(end, Err(WebRtcError::Closed)), "{end:?}");
    assert!(matches!(da.send(b"to a closed channel".to_vec()).await, Err(WebRtcError::Closed)));
    // The connection's other channels go on.
    assert!(at_a.is_connected() && at_b.is_connected());
}

/// Two dials of one peer at once (an app's dial racing a DHT query's, say) are two
/// negotiations, and each dial gets its own connection, not the other's.
#[tokio::test]
async fn concurrent_dials_of_one_peer_each_get_their_own_connection() {
    let server = server().await;
    let (a, b) = (client(&server.url()).await, client(&server.url()).await);
    let peer = b.peer_id();
    let (first, second) =
        tokio::time::timeout(WAIT, async { tokio::join!(a.connect_to_peer(&peer), a.connect_to_peer(&peer)) })
            .await
            .expect("both dials end");
    let (first, second) = (first.expect("the first dial connects"), second.expect("the second dial connects"));
    assert!(!std::sync::Arc::ptr_eq(&first, &second), "both dials were handed one connection");
    for conn in [&first, &second] {
        assert_eq!(conn.remote_peer_id(), peer);
        let at_b = tokio::time::timeout(WAIT, b.next_connection()).await.unwrap().expect("b accepts");
        assert_eq!(at_b.remote_peer_id(), a.peer_id());
    }
    // Each one carries data.
    for (i, conn) in [&first, &second].into_iter().enumerate() {
        conn.data_channels["data"].send(vec![i as u8]).await.unwrap();
    }
}

/// Two `Network`s whose only link is signaling-server WebRTC gossip an order; the connection's
/// peer id is the one the handshake proved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_gossip_orders_over_the_webrtc_transport() {
    let server = server().await;
    let build = || {
        Network::builder(NetworkConfig::default())
            .webrtc_signaling(server.url())
            .gossip_heartbeat(Duration::from_millis(200))
            .discovery(false)
            .build()
    };
    let (a, b) = (build().await.unwrap(), build().await.unwrap());
    let listen = b.listen_on("/webrtc").await.expect("listen registers on the server");
    assert!(listen.to_string().ends_with("/ws/webrtc"), "{listen}");
    b.webrtc_signaling_client().unwrap().wait_registered(WAIT).await.expect("b registered");
    let (a, _arx) = drain(a);
    let (b, mut brx) = drain(b);
    let b_id = b.local_peer_id();
    let remote = tokio::time::timeout(WAIT, a.dial(&format!("/webrtc/p2p/{b_id}"))).await.unwrap();
    assert_eq!(remote.expect("dial over WebRTC"), b_id);
    until("the WebRTC connection listed", || async {
        a.connections()
            .iter()
            .any(|c| c.peer_id == b_id && c.remote_addr.to_string().contains("/webrtc/"))
            .then_some(())
    })
    .await;
    until_meshed(&a, &[b_id]).await;
    until_meshed(&b, &[a.local_peer_id()]).await;
    let order = a.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
    let got = next_matching(&mut brx, |ev| match ev {
        NetworkEvent::MessageReceived { peer_id, message: Message::OrderAnnounce(o), .. } => Some((peer_id, o.id)),
        _ => None,
    })
    .await;
    assert_eq!(got, (a.local_peer_id(), order.id));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A native node listens for WebRTC-direct (what browsers dial without a signaling server) with
/// a certificate kept next to its identity, so its `/certhash` survives a restart; another node
/// dials it (from no listening socket), orders gossip both ways over the connection's streams,
/// and an address whose certhash names another certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_direct_listener_with_a_stable_certificate() {
    init_tracing();
    let dir = std::env::temp_dir().join(format!("darkswap-webrtc-{}", rand::random::<u64>()));
    let identity = dir.join("identity.key");
    let start = || {
        Network::builder(NetworkConfig::default())
            .identity_file(&identity)
            .gossip_heartbeat(Duration::from_millis(200))
            .discovery(false)
            .build()
    };
    let server = start().await.unwrap();
    let addr = server.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    assert!(addr.to_string().contains("/webrtc-direct/certhash/"), "{addr}");
    assert!(dir.join("identity.key.webrtc.pem").exists(), "certificate kept");
    let certhash = |a: &libp2p::Multiaddr| a.to_string().split("/certhash/").nth(1).unwrap().to_owned();
    let id = server.local_peer_id();

    let client = Network::builder(NetworkConfig::default())
        .gossip_heartbeat(Duration::from_millis(200))
        .discovery(false)
        .build()
        .await
        .unwrap();
    // Another certificate's hash at the right address: DTLS shows a different certificate.
    let other = darkswap_p2p::webrtc_direct::Certificate::generate().unwrap();
    let forged = addr.to_string().replace(&certhash(&addr), &multibase_certhash(&other));
    let refused = tokio::time::timeout(WAIT, client.dial(&format!("{forged}/p2p/{id}"))).await.unwrap();
    let refused = refused.expect_err("a certhash of another certificate is refused").to_string();
    assert!(refused.contains("fingerprint"), "{refused}");

    let remote = tokio::time::timeout(WAIT, client.dial(&format!("{addr}/p2p/{id}"))).await.unwrap();
    assert_eq!(remote.expect("native dials WebRTC-direct"), id);
    let (client, mut crx) = drain(client);
    let (server, mut srx) = drain(server);
    until_meshed(&client, &[id]).await;
    until_meshed(&server, &[client.local_peer_id()]).await;
    for (from, to) in [(&client, &mut srx), (&server, &mut crx)] {
        let order = from.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
        let got = next_matching(to, |ev| match ev {
            NetworkEvent::MessageReceived { peer_id, message: Message::OrderAnnounce(o), .. } => Some((peer_id, o.id)),
            _ => None,
        })
        .await;
        assert_eq!(got, (from.local_peer_id(), order.id));
    }
    client.shutdown().await.unwrap();
    server.shutdown().await.unwrap();

    let again = start().await.unwrap();
    let addr2 = again.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    assert_eq!(certhash(&addr2), certhash(&addr), "same certificate after a restart");
    again.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// A certificate's fingerprint as it appears after `/certhash/` in an address.
fn multibase_certhash(c: &darkswap_p2p::webrtc_direct::Certificate) -> String {
    let addr = libp2p::Multiaddr::empty().with(libp2p::multiaddr::Protocol::Certhash(c.fingerprint().to_multihash()));
    addr.to_string().trim_start_matches("/certhash/").to_owned()
}

/// The connection manager over a pool: reuse, stats, idle and age expiry, a full pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_manager_reuses_expires_and_bounds() {
    use darkswap_p2p::{
        connection_pool::{ConnectionPool, ConnectionPoolConfig},
        webrtc_connection::WebRtcConnectionManager,
    };
    use std::sync::Arc;
    let server = server().await;
    let url = server.url();
    let me = Arc::new(client(&url).await);
    let (b, c) = (client(&url).await, client(&url).await);
    let pool = Arc::new(ConnectionPool::new(ConnectionPoolConfig {
        max_connections: 1,
        ttl: Duration::from_millis(300),
        max_age: Duration::from_secs(3600),
        enable_reuse: true,
    }));
    let manager = WebRtcConnectionManager::with_connection_pool(me.peer_id(), me.clone(), pool);

    let first = manager.create_connection(&b.peer_id()).await.expect("connects to b");
    let again = manager.create_connection(&b.peer_id()).await.expect("reuses");
    assert!(Arc::ptr_eq(&first, &again), "reuse returns the same connection");
    let got = manager.get_connection(&b.peer_id()).expect("pooled");
    assert!(Arc::ptr_eq(&first, &got));
    let stats = manager.get_connection_stats();
    assert_eq!((stats.total_connections, stats.in_use_connections, stats.idle_connections), (1, 1, 0));

    // Full of connections in use: a clear error, and the new connection is not leaked.
    let full = manager.create_connection(&c.peer_id()).await;
    assert!(matches!(full, Err(WebRtcError::PoolFull(_))), "{full:?}");
    for _ in 0..3 {
        manager.release_connection(&b.peer_id());
    }
    let stats = manager.get_connection_stats();
    assert_eq!((stats.total_connections, stats.in_use_connections, stats.idle_connections), (1, 0, 1));
    // Full with an idle connection: the idle one makes room.
    let to_c = manager.create_connection(&c.peer_id()).await.expect("evicts the idle one");
    assert_eq!(to_c.remote_peer_id(), c.peer_id());
    assert!(manager.get_connection(&b.peer_id()).is_none(), "b's idle connection was evicted");

    // Idle past ttl: pruned.
    manager.release_connection(&c.peer_id());
    tokio::time::sleep(Duration::from_millis(400)).await; // let the 300 ms ttl pass
    assert_eq!(manager.prune_connections(), 1);
    assert_eq!(manager.get_connection_stats().total_connections, 0);
    assert!(matches!(manager.close_connection(&c.peer_id()).await, Err(WebRtcError::NoConnection(_))));

    // Past max_age: pruned even in use; reuse off: never handed out twice.
    let aged = WebRtcConnectionManager::with_connection_pool(
        me.peer_id(),
        me.clone(),
        Arc::new(ConnectionPool::new(ConnectionPoolConfig {
            max_age: Duration::from_millis(200),
            enable_reuse: false,
            ..Default::default()
        })),
    );
    let one = aged.create_connection(&b.peer_id()).await.unwrap();
    assert!(aged.get_connection(&b.peer_id()).is_none(), "reuse off");
    tokio::time::sleep(Duration::from_millis(300)).await; // let the 200 ms max_age pass
    assert_eq!(aged.prune_connections(), 1, "aged out while in use");
    drop(one);

    // Closing removes and closes.
    let live = manager.create_connection(&b.peer_id()).await.unwrap();
    manager.close_connection(&b.peer_id()).await.unwrap();
    assert_eq!(manager.get_connection_stats().total_connections, 0);
    assert!(!live.is_connected());
}

/// A lying signaling server: it skips the proof check and routes whatever registers first as the
/// peer id it wants to impersonate. The identity handshake still tells the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_signaling_server_cannot_impersonate_a_peer() {
    use darkswap_p2p::signaling::wire::{self, ClientMessage, ServerMessage};
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    init_tracing();
    let victim = Keypair::generate_ed25519().public().to_peer_id();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/signaling", listener.local_addr().unwrap());
    // Connections in arrival order: the first is presented to others as `victim`.
    let (route_tx, mut route_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, wire::Routed)>();
    type Registry = std::sync::Arc<std::sync::Mutex<Vec<(libp2p::PeerId, tokio::sync::mpsc::UnboundedSender<String>)>>>;
    let clients: Registry = Default::default();
    let registry = clients.clone();
    tokio::spawn(async move {
        while let Some((from_idx, mut routed)) = route_rx.recv().await {
            let clients = registry.lock().unwrap();
            let shown = if from_idx == 0 { victim } else { clients[from_idx].0 };
            let target = if routed.to == victim { Some(0) } else { clients.iter().position(|(p, _)| *p == routed.to) };
            routed.from = Some(shown);
            if let Some(t) = target {
                let _ = clients[t].1.send(wire::encode_server(&ServerMessage::Routed(routed)));
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (clients, route_tx) = (clients.clone(), route_tx.clone());
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let challenge = ServerMessage::Challenge { version: 1, nonce: hex::encode([1u8; 32]) };
                ws.send(Message::Text(wire::encode_server(&challenge).into())).await.unwrap();
                let Some(Ok(Message::Text(t))) = ws.next().await else { return };
                let Ok(ClientMessage::Register(reg)) = wire::decode_client(t.as_str()) else { return };
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let idx = {
                    let mut c = clients.lock().unwrap();
                    c.push((reg.peer_id, tx));
                    c.len() - 1
                };
                let ok = ServerMessage::Registered { peer_id: reg.peer_id };
                ws.send(Message::Text(wire::encode_server(&ok).into())).await.unwrap();
                loop {
                    tokio::select! {
                        out = rx.recv() => match out {
                            Some(text) => { let _ = ws.send(Message::Text(text.into())).await; }
                            None => break,
                        },
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Text(t))) => {
                                if let Ok(ClientMessage::Routed(r)) = wire::decode_client(t.as_str()) {
                                    let _ = route_tx.send((idx, r));
                                }
                            }
                            _ => break,
                        },
                    }
                }
            });
        }
    });

    let impostor = client(&url).await; // first to register: shown to others as the victim
    let alice = client(&url).await;
    let result = alice.connect_to_peer(&victim).await;
    match result {
        Err(WebRtcError::PeerMismatch { expected, actual }) => {
            assert_eq!(*expected, victim);
            assert_eq!(*actual, impostor.peer_id(), "the handshake names who really answered");
        }
        other => panic!("the impostor must be caught, got {other:?}"),
    }
}
