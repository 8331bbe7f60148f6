//! WebRTC signaling: a versioned JSON protocol over WebSocket ([`wire`]) and the server that routes
//! it ([`SignalingServer`]). The client that negotiates WebRTC connections through it,
//! [`WebRtcSignalingClient`](crate::WebRtcSignalingClient), lives with the connections in
//! [`webrtc_connection`](crate::webrtc_connection).
//!
//! A client registers by signing the server's random challenge with its libp2p identity key, so
//! the server only routes messages from peers that hold their ids. The server is still trusted
//! for nothing else: connections it helps set up are proven end to end by an identity handshake
//! (see [`webrtc_connection`](crate::webrtc_connection)).

#[cfg(not(target_arch = "wasm32"))]
mod server;
pub mod wire;

#[cfg(not(target_arch = "wasm32"))]
pub use server::{SignalingServer, SignalingServerConfig};
pub use wire::{ErrorCode, IceCandidate, Payload};

/// What went wrong talking to the signaling server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalingError {
    /// The client was made from a bare peer id and cannot sign the registration challenge.
    #[error("no identity key: build the client with WebRtcSignalingClient::new(keypair) to prove the peer id")]
    NoIdentityKey,
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid signaling URL {0:?}")]
    InvalidUrl(String),
    /// The WebSocket could not be opened.
    #[error("cannot reach the signaling server: {0}")]
    Connect(String),
    /// The server refused the registration.
    #[error("registration refused: {code}: {message}")]
    Refused {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server spoke out of protocol.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// Not registered with a server right now (never connected, or reconnecting).
    #[error("not connected to a signaling server")]
    NotConnected,
    /// No registration within the time allowed.
    #[error("timed out waiting for the signaling server")]
    Timeout,
}
