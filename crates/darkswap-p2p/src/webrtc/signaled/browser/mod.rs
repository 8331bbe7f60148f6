//! The browser side of signaling-server WebRTC (wasm32): the same API as the native one, built on
//! the browser's `RTCPeerConnection` and `WebSocket` (web-sys), so that
//! [`WebRtcTransport`](crate::WebRtcTransport) and a [`Network`](crate::network::Network) work
//! unchanged between browsers, and between a browser and a native node.
//!
//! The browser is single-threaded; its JavaScript objects are held in `SendWrapper`s so the
//! types meet libp2p's `Send` bounds (they are never touched from another thread).

mod channel;
mod client;
mod negotiate;

pub use channel::{DataChannel, LibP2pStream};
pub use client::WebRtcSignalingClient;

use super::WebRtcError;
use libp2p::PeerId;
use send_wrapper::SendWrapper;
use std::{collections::HashMap, sync::Mutex, time::Duration};
use web_sys::{RtcPeerConnection, RtcPeerConnectionState};

/// A WebRTC connection to a peer whose id the identity handshake proved.
pub struct WebRtcConnection {
    /// The message channels by name, as configured in
    /// [`WebRtcConfig::data_channels`](super::WebRtcConfig::data_channels).
    pub data_channels: HashMap<String, DataChannel>,
    remote_peer_id: PeerId,
    connection_id: String,
    outbound: bool,
    pc: SendWrapper<RtcPeerConnection>,
    stream: Mutex<Option<LibP2pStream>>,
    established_in: Duration,
}

impl std::fmt::Debug for WebRtcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcConnection")
            .field("remote_peer_id", &self.remote_peer_id)
            .field("connection_id", &self.connection_id)
            .field("outbound", &self.outbound)
            .finish()
    }
}

impl WebRtcConnection {
    /// The proven remote peer.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote_peer_id
    }

    /// The id the offerer chose for this connection.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// Whether we made the offer.
    pub fn is_outbound(&self) -> bool {
        self.outbound
    }

    /// Time from the offer (or its arrival) to the proven connection.
    pub fn setup_time(&self) -> Duration {
        self.established_in
    }

    /// Whether the underlying peer connection is still up.
    pub fn is_connected(&self) -> bool {
        use RtcPeerConnectionState as S;
        matches!(self.pc.connection_state(), S::Connected | S::Connecting | S::New)
    }

    /// Takes the libp2p byte stream (once) for a stream muxer.
    pub fn take_stream(&self) -> Option<LibP2pStream> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Closes every channel and the peer connection.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.pc.close();
        Ok(())
    }
}

impl Drop for WebRtcConnection {
    fn drop(&mut self) {
        self.pc.close();
    }
}
