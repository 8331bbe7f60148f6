//! WebRTC through a signaling server, as in the README's WebRTC example.
//!
//! - `cargo run -p darkswap-p2p --example webrtc_example` starts its own signaling server and a
//!   counterpart, connects to it, sends "Hello, world!" on the "data" channel and prints the echo.
//! - `cargo run -p darkswap-p2p --example webrtc_example ws://localhost:9001/signaling` registers
//!   there, prints its peer id and echoes whatever connecting peers send.
//! - `cargo run -p darkswap-p2p --example webrtc_example ws://localhost:9001/signaling <peer-id>`
//!   connects to that peer, sends "Hello, world!" and prints the reply.

use darkswap_p2p::{
    signaling::{SignalingServer, SignalingServerConfig},
    WebRtcSignalingClient, WebRtcTransport,
};
use libp2p::{identity, Multiaddr, PeerId};
use std::{net::SocketAddr, sync::Arc};

/// Answers connections: every message on "data" comes back.
async fn echo(client: WebRtcSignalingClient) {
    while let Some(connection) = client.next_connection().await {
        println!("connection from {}", connection.remote_peer_id());
        tokio::spawn(async move {
            if let Some(channel) = connection.data_channels.get("data") {
                while let Ok(msg) = channel.receive().await {
                    if channel.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut args = std::env::args().skip(1);
    let (url, peer_id, _own_server) = match (args.next(), args.next()) {
        (Some(url), Some(peer)) => (url, peer.parse::<PeerId>()?, None),
        (Some(url), None) => {
            let client = WebRtcSignalingClient::new(identity::Keypair::generate_ed25519());
            client.connect(&url).await?;
            println!("peer id {} registered on {url}; waiting for connections (Ctrl-C to stop)", client.peer_id());
            tokio::select! {
                _ = echo(client) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return Ok(());
        }
        _ => {
            let config = SignalingServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
            let server = SignalingServer::bind(config).await?;
            let counterpart = WebRtcSignalingClient::new(identity::Keypair::generate_ed25519());
            counterpart.connect(&server.url()).await?;
            let peer = counterpart.peer_id();
            tokio::spawn(echo(counterpart));
            println!("started a signaling server at {} and an echoing peer {peer}", server.url());
            (server.url(), peer, Some(server))
        }
    };

    // The seed's steps: identity, signaling client, transport, dial `/…/webrtc/p2p/<peer>`.
    let local_key = identity::Keypair::generate_ed25519();
    let local_peer_id = PeerId::from(local_key.public());
    let webrtc_signaling_client = WebRtcSignalingClient::new(local_key);
    webrtc_signaling_client.connect(&url).await?;
    let mut webrtc_transport =
        WebRtcTransport::with_signaling_client(local_peer_id, Some(Arc::new(webrtc_signaling_client)));
    webrtc_transport.set_signaling_server(url.clone());
    webrtc_transport.connect_to_signaling_server().await?;
    let addr = format!("/ip4/127.0.0.1/tcp/0/webrtc/p2p/{peer_id}").parse::<Multiaddr>()?;
    let connection = webrtc_transport.dial(addr)?.await?;
    println!("connected to {} in {:?} (identity proven)", connection.remote_peer_id(), connection.setup_time());

    if let Some(data_channel) = connection.data_channels.get("data") {
        data_channel.send(b"Hello, world!".to_vec()).await?;
        let data = data_channel.receive().await?;
        println!("Received: {}", String::from_utf8_lossy(&data));
    }
    connection.close().await?;
    Ok(())
}
