//! The swarm's composition, crate-private: the transports per target, the composed behaviour,
//! and the admission machinery that sits in it (IP limits, relay-server limits, the gossip flood
//! guard, application streams, AutoNAT's client). It builds what the task drives; it holds no
//! state of the task's and never reaches into the front door beyond reading the builder.

pub(crate) mod autonat;
pub(crate) mod behaviour;
pub(crate) mod flood;
pub(crate) mod ip_limits;
mod relay_server;
pub(crate) mod streams;

pub(crate) use behaviour::{Behaviour, BehaviourEvent};

use crate::{auth::AuthManager, Error};
use crate::{
    metrics::P2PMetrics,
    network::{config::SwarmConfig, wrappers::CachedProtocols},
    webrtc_connection::WebRtcSignalingClient,
};
use libp2p::{identity::Keypair, noise, yamux, Swarm};
use std::sync::Arc;

fn transport_err(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

/// Native: TCP, QUIC, WebRTC (direct and through the signaling server), DNS and WebSocket, each
/// secured with Noise and multiplexed with Yamux where it has no security and muxing of its own,
/// plus the circuit-relay client transport; every connection counts its bytes per protocol.
/// TCP connections batch their writes ([`WriteCoalescing`](crate::network::wrappers::WriteCoalescing)).
///
/// Composed here rather than with `SwarmBuilder`, which offers no way to wrap the connections'
/// muxers (it only has libp2p's per-transport bandwidth counters).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn build(
    key: Keypair,
    b: &SwarmConfig,
    metrics: &P2PMetrics,
    signaling: Option<Arc<WebRtcSignalingClient>>,
    auth: &Arc<AuthManager>,
) -> Result<Swarm<CachedProtocols<Behaviour>>, Error> {
    use libp2p::core::{muxing::StreamMuxerBox, transport::timeout::TransportTimeout, upgrade::Version, Transport};
    #[cfg(feature = "insecure-test-plaintext")]
    if b.insecure_plaintext {
        return build_plaintext(key, b, metrics, auth);
    }
    let peer_id = key.public().to_peer_id();
    let noise = noise::Config::new(&key).map_err(transport_err)?;
    let tcp = tcp_transport(libp2p::tcp::Config::default().nodelay(true))
        .map(|stream, _| crate::network::wrappers::WriteCoalescing::new(stream))
        .upgrade(Version::V1Lazy)
        .authenticate(noise.clone())
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let quic = libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(&key))
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let direct = webrtc_direct(&key, b)?;
    let signaling = signaling_webrtc(&key, b, signaling);
    let resolved = libp2p::dns::tokio::Transport::system(
        tcp.or_transport(quic)
            .map(|e, _| e.into_inner())
            .or_transport(direct)
            .map(|e, _| e.into_inner())
            .or_transport(signaling)
            .map(|e, _| e.into_inner()),
    )
    .map_err(transport_err)?;
    let ws_tcp = libp2p::dns::tokio::Transport::system(
        tcp_transport(libp2p::tcp::Config::default())
            .map(|stream, _| crate::network::wrappers::WriteCoalescing::new(stream)),
    )
    .map_err(transport_err)?;
    let websocket = libp2p::websocket::Config::new(ws_tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise.clone())
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let (relay_transport, relay_client) = libp2p::relay::client::new(peer_id);
    let relayed = relay_transport
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let bytes = b.metrics_enabled.then(|| metrics.registry().with_registry(crate::metrics::ProtocolBytes::register));
    let transport = relayed
        .or_transport(websocket)
        .map(|e, _| e.into_inner())
        .or_transport(resolved)
        .map(|e, _| e.into_inner())
        .map(move |(p, c), _| match &bytes {
            Some(bytes) => (p, StreamMuxerBox::new(bytes.wrap(c))),
            None => (p, c),
        });
    let transport =
        crate::network::wrappers::GatedTransport::new(TransportTimeout::new(transport, b.connection_timeout).boxed())
            .boxed();
    let behaviour = Behaviour::new(&key, relay_client, b, metrics, auth).map_err(transport_err)?;
    let config = libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(b.idle_timeout);
    Ok(Swarm::new(transport, CachedProtocols::new(behaviour), peer_id, config))
}

/// TCP whose dials from the listening port fall back to a fresh port where the bind is refused
/// ([`PortReuseFallback`](crate::network::wrappers::PortReuseFallback)).
#[cfg(not(target_arch = "wasm32"))]
fn tcp_transport(
    config: libp2p::tcp::Config,
) -> crate::network::wrappers::PortReuseFallback<libp2p::tcp::tokio::Transport> {
    crate::network::wrappers::PortReuseFallback::new(
        libp2p::tcp::tokio::Transport::new(config.clone()),
        libp2p::tcp::tokio::Transport::new(config),
    )
}

/// WebRTC-direct ([`crate::webrtc_direct`]): browsers dial `/ip4/…/udp/…/webrtc-direct/certhash/…` with no
/// signaling server. The certificate is kept in a file when one is known, so the address stays.
#[cfg(not(target_arch = "wasm32"))]
fn webrtc_direct(
    key: &Keypair,
    b: &SwarmConfig,
) -> Result<libp2p::core::transport::Boxed<(libp2p::PeerId, libp2p::core::muxing::StreamMuxerBox)>, Error> {
    use libp2p::core::{muxing::StreamMuxerBox, Transport};
    let certificate = match &b.webrtc_certificate {
        Some(path) => crate::identity::load_or_create_webrtc_certificate(path)?,
        None => crate::identity::new_webrtc_certificate()?,
    };
    Ok(crate::webrtc::direct::Transport::new(key.clone(), certificate)
        .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        .boxed())
}

/// Signaling-server WebRTC, when configured.
fn signaling_webrtc(
    key: &Keypair,
    b: &SwarmConfig,
    client: Option<Arc<WebRtcSignalingClient>>,
) -> libp2p::core::transport::OptionalTransport<crate::webrtc::transport::WebRtcTransport> {
    let transport = client.map(|client| {
        let mut t =
            crate::webrtc::transport::WebRtcTransport::with_signaling_client(key.public().to_peer_id(), Some(client));
        if let Some(url) = &b.signaling_url {
            t.set_signaling_server(url.clone());
        }
        t
    });
    match transport {
        Some(t) => libp2p::core::transport::OptionalTransport::some(t),
        None => libp2p::core::transport::OptionalTransport::none(),
    }
}

/// Tests only: TCP and the relay client with *no* transport encryption, so that a test can watch
/// what a relay carries and show that trade messages are still ciphertext end to end.
#[cfg(all(feature = "insecure-test-plaintext", not(target_arch = "wasm32")))]
fn build_plaintext(
    key: Keypair,
    b: &SwarmConfig,
    metrics: &P2PMetrics,
    auth: &Arc<AuthManager>,
) -> Result<Swarm<CachedProtocols<Behaviour>>, Error> {
    let plain = |k: &Keypair| Ok::<_, std::convert::Infallible>(libp2p::plaintext::Config::new(k));
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default().nodelay(true), plain, yamux::Config::default)
        .map_err(transport_err)?
        .with_relay_client(plain, yamux::Config::default)
        .map_err(transport_err)?
        .with_behaviour(|key, client| Behaviour::new(key, client, b, metrics, auth).map(CachedProtocols::new))
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(b.idle_timeout))
        .with_connection_timeout(b.connection_timeout)
        .build())
}

/// Browser: WebRTC-direct to native nodes and signaling-server WebRTC (both on the browser's own
/// WebRTC stack), WebSocket (websys) with Noise and Yamux, plus the circuit-relay client transport.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn build(
    key: Keypair,
    b: &SwarmConfig,
    metrics: &P2PMetrics,
    signaling: Option<Arc<WebRtcSignalingClient>>,
    auth: &Arc<AuthManager>,
) -> Result<Swarm<CachedProtocols<Behaviour>>, Error> {
    use libp2p::core::{upgrade::Version, Transport};
    let signaling = signaling_webrtc(&key, b, signaling);
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        .with_other_transport(|key| libp2p::webrtc_websys::Transport::new(libp2p::webrtc_websys::Config::new(key)))
        .map_err(transport_err)?
        .with_other_transport(|_| signaling)
        .map_err(transport_err)?
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
        .with_behaviour(|key, client| Behaviour::new(key, client, b, metrics, auth).map(CachedProtocols::new))
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(b.idle_timeout))
        .with_connection_timeout(b.connection_timeout)
        .build())
}
