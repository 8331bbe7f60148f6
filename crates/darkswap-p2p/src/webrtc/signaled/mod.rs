//! WebRTC connections negotiated through the signaling server, with named data channels, and
//! [`WebRtcConnectionManager`] keeping them in a [`ConnectionPool`](crate::connection_pool::ConnectionPool).
//!
//! Every connection carries the same data channels, opened in-band by the offerer: `"noise"` for
//! the identity handshake, `"libp2p"` for the libp2p byte stream
//! ([`WebRtcTransport`](crate::WebRtcTransport) runs Yamux on it), then the names in
//! [`WebRtcConfig::data_channels`] (default just `"data"`).
//!
//! The signaling server relays SDP, including the DTLS certificate fingerprints, so it could put
//! itself in the middle. It cannot get past the identity handshake: a Noise XX handshake with
//! the peers' libp2p identity keys whose prologue holds both DTLS fingerprints as each side saw
//! them (libp2p's WebRTC construction). A man in the middle terminates two DTLS sessions with
//! different fingerprints, the prologues differ, and the handshake fails. A connection is handed
//! out only after that handshake proved the remote peer id.

#[cfg(target_arch = "wasm32")]
#[path = "browser/mod.rs"]
mod browser;
#[cfg(not(target_arch = "wasm32"))]
mod client;
#[cfg(not(target_arch = "wasm32"))]
mod connection;
#[cfg(not(target_arch = "wasm32"))]
mod manager;
#[cfg(not(target_arch = "wasm32"))]
mod negotiate;
pub(crate) mod routing;

#[cfg(not(target_arch = "wasm32"))]
pub use super::rtc::stream::LibP2pStream;
#[cfg(target_arch = "wasm32")]
pub use browser::{DataChannel, LibP2pStream, WebRtcConnection, WebRtcSignalingClient};
#[cfg(not(target_arch = "wasm32"))]
pub use client::WebRtcSignalingClient;
#[cfg(not(target_arch = "wasm32"))]
pub use connection::{DataChannel, WebRtcConnection};
#[cfg(not(target_arch = "wasm32"))]
pub use manager::WebRtcConnectionManager;
#[cfg(not(target_arch = "wasm32"))]
use negotiate::{negotiate, Negotiation};

pub use super::{IceServer, WebRtcConfig, WebRtcError, MAX_DATA_MESSAGE};
use libp2p::{identity::Keypair, PeerId};

/// Who a client is: a key (can register) or only a peer id (cannot prove it).
#[derive(Debug, Clone)]
pub enum SignalingIdentity {
    /// A bare id; `connect` fails with [`SignalingError::NoIdentityKey`](crate::webrtc::signaling::SignalingError::NoIdentityKey).
    PeerId(PeerId),
    /// The libp2p identity key whose id the client registers.
    Keypair(Keypair),
}

impl From<PeerId> for SignalingIdentity {
    fn from(p: PeerId) -> Self {
        SignalingIdentity::PeerId(p)
    }
}

impl From<Keypair> for SignalingIdentity {
    fn from(k: Keypair) -> Self {
        SignalingIdentity::Keypair(k)
    }
}

impl From<&Keypair> for SignalingIdentity {
    fn from(k: &Keypair) -> Self {
        SignalingIdentity::Keypair(k.clone())
    }
}

/// An offer sent by [`WebRtcSignalingClient::create_offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The connection it starts.
    pub connection_id: String,
    /// Its SDP.
    pub sdp: String,
}
