//! Relay nodes for the tests.

use super::{drain, next_matching};
use darkswap_p2p::network::{Network, NetworkConfig, NetworkEvent, RelayServerConfig};
use darkswap_support::types::PeerId;

/// A relay-only node (in no gossip topic) listening on loopback; returns it and its address.
pub async fn relay_node(
) -> (darkswap_p2p::network::NetworkHandle, String, tokio::sync::mpsc::UnboundedReceiver<NetworkEvent>) {
    let relay = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .build()
        .await
        .unwrap();
    let addr = format!("{}/p2p/{}", relay.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), relay.local_peer_id());
    let (h, rx) = drain(relay);
    (h, addr, rx)
}

pub async fn reserved_on(rx: &mut tokio::sync::mpsc::UnboundedReceiver<NetworkEvent>) -> PeerId {
    next_matching(rx, |ev| match ev {
        NetworkEvent::RelayReserved { relay_peer_id, .. } => Some(relay_peer_id),
        _ => None,
    })
    .await
}
