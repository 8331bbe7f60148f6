//! WebRTC through the signaling server: two native peers, data channels both ways, and the
//! identity handshake.

use crate::common::*;
use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent},
    protocol::Message,
    signaling::{SignalingServer, SignalingServerConfig},
    webrtc_connection::WebRtcError,
    WebRtcSignalingClient,
};
use libp2p::identity::Keypair;
use std::{net::SocketAddr, time::Duration};

pub async fn server() -> SignalingServer {
    init_tracing();
    let config = SignalingServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    SignalingServer::bind(config).await.expect("signaling server binds")
}

pub async fn client(url: &str) -> WebRtcSignalingClient {
    let client = WebRtcSignalingClient::new(Keypair::generate_ed25519());
    client.connect(url).await.expect("registers");
    client
}

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
/// a certificate kept next to its identity, so its `/certhash` survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_direct_listener_with_a_stable_certificate() {
    init_tracing();
    let dir = std::env::temp_dir().join(format!("darkswap-webrtc-{}", rand::random::<u64>()));
    let identity = dir.join("identity.key");
    let start = || Network::builder(NetworkConfig::default()).identity_file(&identity).build();
    let server = start().await.unwrap();
    let addr = server.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    assert!(addr.to_string().contains("/webrtc-direct/certhash/"), "{addr}");
    assert!(dir.join("identity.key.webrtc.pem").exists(), "certificate kept");
    let certhash = |a: &libp2p::Multiaddr| a.to_string().split("/certhash/").nth(1).unwrap().to_owned();
    let id = server.local_peer_id();

    // libp2p-webrtc dials from its listening socket: a native dialer listens first.
    let client = Network::new(NetworkConfig::default()).await.unwrap();
    client.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    let remote = tokio::time::timeout(WAIT, client.dial(&format!("{addr}/p2p/{id}"))).await.unwrap();
    assert_eq!(remote.expect("native dials WebRTC-direct"), id);
    client.shutdown().await.unwrap();
    server.shutdown().await.unwrap();

    let again = start().await.unwrap();
    let addr2 = again.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    assert_eq!(certhash(&addr2), certhash(&addr), "same certificate after a restart");
    again.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
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
