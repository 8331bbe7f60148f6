//! The WebRTC connection manager over a connection pool, as in the README: create, reuse,
//! release, statistics, prune and close. Starts its own signaling server and peers.
//!
//! Run: `cargo run -p darkswap-p2p --example connection_pool_example`

use darkswap_p2p::{
    connection_pool::{ConnectionPool, ConnectionPoolConfig},
    signaling::{SignalingServer, SignalingServerConfig},
    webrtc_connection::WebRtcConnectionManager,
    WebRtcSignalingClient,
};
use libp2p::identity::Keypair;
use std::{net::SocketAddr, sync::Arc, time::Duration};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let server = SignalingServer::bind(SignalingServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .await?;
    let mut peers = Vec::new();
    for _ in 0..3 {
        let peer = WebRtcSignalingClient::new(Keypair::generate_ed25519());
        peer.connect(&server.url()).await?;
        peers.push(peer);
    }
    let signaling_client = Arc::new(WebRtcSignalingClient::new(Keypair::generate_ed25519()));
    signaling_client.connect(&server.url()).await?;
    let local_peer_id = signaling_client.peer_id();

    // Create a connection pool configuration
    let pool_config = ConnectionPoolConfig {
        max_connections: 100,
        ttl: Duration::from_millis(500), // short, so the example shows pruning
        max_age: Duration::from_secs(3600),
        enable_reuse: true,
    };
    let connection_pool = Arc::new(ConnectionPool::new(pool_config));
    let connection_manager =
        WebRtcConnectionManager::with_connection_pool(local_peer_id, signaling_client, connection_pool);

    let mut connections = Vec::new();
    for peer in &peers {
        let connection = connection_manager.create_connection(&peer.peer_id()).await?;
        println!("connected to {} in {:?}", connection.remote_peer_id(), connection.setup_time());
        connections.push(connection);
    }
    let first = peers[0].peer_id();
    let again = connection_manager.create_connection(&first).await?;
    println!(
        "second create_connection to {first} reused the pooled connection: {}",
        Arc::ptr_eq(&again, &connections[0])
    );
    if let Some(connection) = connection_manager.get_connection(&first) {
        connection.data_channels["data"].send(b"hello".to_vec()).await?;
        connection_manager.release_connection(&first);
    }
    let stats = connection_manager.get_connection_stats();
    println!("Total connections: {}", stats.total_connections);
    println!("In-use connections: {}", stats.in_use_connections);
    println!("Idle connections: {}", stats.idle_connections);

    // Every create_connection / get_connection is one use: give each back.
    connection_manager.release_connection(&first);
    for peer in &peers {
        connection_manager.release_connection(&peer.peer_id());
    }
    connection_manager.close_connection(&peers[2].peer_id()).await?;
    println!("closed the connection to {}", peers[2].peer_id());
    tokio::time::sleep(Duration::from_millis(600)).await; // the 500 ms idle ttl passes
    let pruned = connection_manager.prune_connections();
    println!("pruned {pruned} idle connections; {} left", connection_manager.get_connection_stats().total_connections);
    Ok(())
}
