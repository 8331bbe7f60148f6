//! A signaling server and registered clients for the tests.

use super::init_tracing;
use darkswap_p2p::{
    signaling::{SignalingServer, SignalingServerConfig},
    WebRtcSignalingClient,
};
use libp2p::identity::Keypair;
use std::net::SocketAddr;

/// A signaling server on a loopback port.
pub async fn server() -> SignalingServer {
    init_tracing();
    let config = SignalingServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    SignalingServer::bind(config).await.expect("signaling server binds")
}

/// A client registered with the server at `url`.
pub async fn client(url: &str) -> WebRtcSignalingClient {
    let client = WebRtcSignalingClient::new(Keypair::generate_ed25519());
    client.connect(url).await.expect("registers");
    client
}
