//! Building the swarm: transports per target, then the behaviour.

use super::{behaviour::Behaviour, NetworkBuilder};
use crate::{auth::AuthManager, Error};
use libp2p::{identity::Keypair, noise, yamux, Swarm, SwarmBuilder};
use std::sync::Arc;

fn transport_err(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

/// Native: TCP, QUIC, DNS and WebSocket, each secured with Noise and multiplexed with Yamux (QUIC
/// brings its own), plus the circuit-relay client transport.
#[cfg(not(target_arch = "wasm32"))]
pub async fn build(key: Keypair, b: &NetworkBuilder, auth: &Arc<AuthManager>) -> Result<Swarm<Behaviour>, Error> {
    #[cfg(feature = "insecure-test-plaintext")]
    if b.insecure_plaintext {
        return build_plaintext(key, b, auth);
    }
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(transport_err)?
        .with_quic()
        .with_dns()
        .map_err(transport_err)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(transport_err)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(|key, client| Behaviour::new(key, client, b, auth))
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(b.idle_timeout))
        .with_connection_timeout(b.config.connection_timeout)
        .build())
}

/// Tests only: TCP and the relay client with *no* transport encryption, so that a test can watch
/// what a relay carries and show that trade messages are still ciphertext end to end.
#[cfg(all(feature = "insecure-test-plaintext", not(target_arch = "wasm32")))]
fn build_plaintext(key: Keypair, b: &NetworkBuilder, auth: &Arc<AuthManager>) -> Result<Swarm<Behaviour>, Error> {
    let plain = |k: &Keypair| Ok::<_, std::convert::Infallible>(libp2p::plaintext::Config::new(k));
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default().nodelay(true), plain, yamux::Config::default)
        .map_err(transport_err)?
        .with_relay_client(plain, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(|key, client| Behaviour::new(key, client, b, auth))
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(b.idle_timeout))
        .with_connection_timeout(b.config.connection_timeout)
        .build())
}

/// Browser: WebSocket (websys) with Noise and Yamux, plus the circuit-relay client transport.
#[cfg(target_arch = "wasm32")]
pub async fn build(key: Keypair, b: &NetworkBuilder, auth: &Arc<AuthManager>) -> Result<Swarm<Behaviour>, Error> {
    use libp2p::core::{upgrade::Version, Transport};
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                libp2p::websocket_websys::Transport::default()
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .boxed(),
            )
        })
        .map_err(transport_err)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(|key, client| Behaviour::new(key, client, b, auth))
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(b.idle_timeout))
        .with_connection_timeout(b.config.connection_timeout)
        .build())
}
