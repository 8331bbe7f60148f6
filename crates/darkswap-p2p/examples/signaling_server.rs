//! The WebRTC signaling server: `ws://localhost:9001/signaling` by default.
//!
//! Run: `cargo run -p darkswap-p2p --example signaling_server [LISTEN_ADDR]`
//! (`LISTEN_ADDR` defaults to `127.0.0.1:9001`; use `0.0.0.0:9001` to serve other hosts).
//! It prints its URL, then serves until Ctrl-C.

use darkswap_p2p::signaling::{SignalingServer, SignalingServerConfig};
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut config = SignalingServerConfig::default();
    if let Some(listen) = std::env::args().nth(1) {
        config.listen = listen.parse::<SocketAddr>()?;
    }
    let server = SignalingServer::bind(config).await?;
    println!("signaling server listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    println!("shutting down after routing {} messages", server.routed_messages());
    server.shutdown().await;
    Ok(())
}
