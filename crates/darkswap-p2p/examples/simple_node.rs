//! The README's Basic Example, runnable: a node that listens on loopback, joins the DarkSwap
//! topics and prints every event.
//!
//! ```bash
//! cargo run --example simple_node
//! # join another node, and stop after the first message:
//! cargo run --example simple_node -- --dial /ip4/127.0.0.1/tcp/9000/p2p/<peer-id> --exit-after-messages 1
//! ```
//!
//! Beyond the README's code it takes two optional flags, so scripts and tests can give it a
//! shutdown condition: `--dial <multiaddr>` and `--exit-after-messages <n>` (Ctrl-C also stops it).

use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent},
    Error,
};
use darkswap_support::types::PeerId;
use std::time::Duration;

struct Args {
    dial: Option<String>,
    exit_after_messages: Option<usize>,
}

fn args() -> Result<Args, String> {
    let mut out = Args { dial: None, exit_after_messages: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dial" => out.dial = Some(value),
            "--exit-after-messages" => {
                out.exit_after_messages = Some(value.parse().map_err(|_| format!("bad number {value:?}"))?)
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    // Create a network configuration
    let config = NetworkConfig {
        bootstrap_peers: vec![
            // Add bootstrap peers here
        ],
        topics: vec!["darkswap/orderbook/v1".to_string(), "darkswap/trade/v1".to_string()],
        relay_peers: vec![
            // Add relay peers here
        ],
        connection_timeout: Duration::from_secs(30),
    };

    // Create a network
    let mut network = Network::new(config).await?;
    let local: PeerId = network.local_peer_id();
    println!("Local peer ID: {}", local);

    // Listen on a local address
    let addr = network.listen_on("/ip4/127.0.0.1/tcp/0").await?;
    println!("Listening on {addr}/p2p/{local}");

    // Subscribe to topics
    network.subscribe("darkswap/orderbook/v1")?;
    network.subscribe("darkswap/trade/v1")?;

    if let Some(peer) = &args.dial {
        network.dial(peer).await?;
    }

    let mut messages = 0;
    // Handle events
    loop {
        let event = tokio::select! {
            event = network.next_event() => event,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(event) = event else { break };
        match event {
            NetworkEvent::PeerConnected(peer_id) => {
                println!("Peer connected: {}", peer_id);
            }
            NetworkEvent::PeerDisconnected(peer_id) => {
                println!("Peer disconnected: {}", peer_id);
            }
            NetworkEvent::MessageReceived { peer_id, topic, message } => {
                println!("Message received from {} on topic {}: {:?}", peer_id, topic, message);
                messages += 1;
                if args.exit_after_messages.is_some_and(|n| messages >= n) {
                    break;
                }
            }
            NetworkEvent::RelayReserved { relay_peer_id, reservation_id } => {
                println!("Relay reserved: {} with reservation ID {}", relay_peer_id, reservation_id);
            }
            NetworkEvent::ConnectedThroughRelay { relay_peer_id, dst_peer_id } => {
                println!("Connected through relay {} to {}", relay_peer_id, dst_peer_id);
            }
        }
    }

    network.shutdown().await.map_err(|e: Error| Box::new(e) as Box<dyn std::error::Error>)?;
    Ok(())
}
