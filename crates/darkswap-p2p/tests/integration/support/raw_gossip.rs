//! A bare rust-libp2p gossipsub peer, shared by the tests and the flood benchmark.

use darkswap_p2p::{
    libp2p::{gossipsub, identity::Keypair, noise, tcp, yamux, Swarm, SwarmBuilder},
    protocol::limits,
};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A bare rust-libp2p gossipsub peer speaking the order-book gossip as DarkSwap nodes do
/// (anonymous messages, content ids) but with none of their checks or limits: what an attacker
/// or a buggy client runs.
pub fn raw_gossip_swarm(key: Keypair) -> Swarm<gossipsub::Behaviour> {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(200))
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|m| gossipsub::MessageId::from(&Sha256::digest(&m.data)[..20]))
        .max_transmit_size(limits::GOSSIP_TRANSMIT_MAX)
        .build()
        .unwrap();
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| {
            gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(gossipsub::MessageAuthenticity::Anonymous, config)
                .unwrap()
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
