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

mod client;
mod manager;
mod negotiate;

pub use client::{Offer, SignalingIdentity, WebRtcSignalingClient};
pub use manager::WebRtcConnectionManager;
use negotiate::{negotiate, Inbox, Negotiation, Role};

use bytes::Bytes;
use libp2p::PeerId;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio_util::compat::Compat;
use webrtc::{data::data_channel::PollDataChannel, peer_connection::RTCPeerConnection};

/// Picks the process-wide rustls crypto provider that webrtc-rs' DTLS needs. Two providers are
/// compiled in (QUIC brings aws-lc-rs, WebSocket brings ring), so rustls cannot choose by itself;
/// an application that installed one first keeps its choice.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Largest message [`DataChannel::send`] takes (the SCTP message size webrtc-rs and browsers agree on).
pub const MAX_DATA_MESSAGE: usize = 64 * 1024;

/// A STUN or TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: String,
    /// TURN password.
    pub credential: String,
}

/// How WebRTC connections are made.
#[derive(Debug, Clone)]
pub struct WebRtcConfig {
    /// STUN/TURN servers; none is fine on a LAN or loopback (host candidates).
    pub ice_servers: Vec<IceServer>,
    /// Names of the message channels every connection opens (both peers must list the same names;
    /// `"noise"` and `"libp2p"` are taken).
    pub data_channels: Vec<String>,
    /// Time from offer to a proven connection.
    pub connect_timeout: Duration,
    /// Whether to offer loopback candidates (needed for two peers on one host without a LAN).
    pub include_loopback: bool,
    /// Whether to answer offers from other peers.
    pub accept_incoming: bool,
    /// Most negotiations in flight at once (incoming offers beyond it are refused with a bye).
    pub max_pending: usize,
    /// Incoming connections queued for [`next_connection`](crate::WebRtcSignalingClient::next_connection).
    pub incoming_queue: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            data_channels: vec!["data".into()],
            connect_timeout: Duration::from_secs(15),
            include_loopback: true,
            accept_incoming: true,
            max_pending: 64,
            incoming_queue: 64,
        }
    }
}

/// What went wrong with a WebRTC connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebRtcError {
    /// The signaling client failed.
    #[error("signaling: {0}")]
    Signaling(#[from] crate::signaling::SignalingError),
    /// The signaling server refused a message about this connection.
    #[error("signaling server refused: {code}: {message}")]
    Refused {
        /// Its error code.
        code: crate::signaling::ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The remote peer closed or declined the negotiation.
    #[error("remote said bye: {0}")]
    Bye(String),
    /// The WebRTC stack failed.
    #[error("webrtc: {0}")]
    Rtc(String),
    /// The identity handshake failed (wrong key, or someone in the middle).
    #[error("identity handshake: {0}")]
    Handshake(String),
    /// The handshake proved a different peer than the one signaled.
    #[error("expected peer {expected}, the handshake proved {actual}")]
    PeerMismatch {
        /// Who we meant to reach.
        expected: Box<PeerId>,
        /// Who answered.
        actual: Box<PeerId>,
    },
    /// A stage did not finish in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// Too many negotiations are in flight.
    #[error("too many pending connections")]
    TooManyPending,
    /// No connection to that peer is known.
    #[error("no connection to {0}")]
    NoConnection(Box<PeerId>),
    /// The message exceeds [`MAX_DATA_MESSAGE`].
    #[error("message of {0} bytes exceeds {MAX_DATA_MESSAGE}")]
    MessageTooLarge(usize),
    /// The channel or connection is closed.
    #[error("closed")]
    Closed,
    /// The connection pool is full of connections in use.
    #[error(transparent)]
    PoolFull(#[from] crate::connection_pool::PoolFull),
}

impl From<webrtc::Error> for WebRtcError {
    fn from(e: webrtc::Error) -> Self {
        WebRtcError::Rtc(e.to_string())
    }
}

/// One named, reliable, ordered message channel of a [`WebRtcConnection`]. Clones share it.
#[derive(Clone)]
pub struct DataChannel {
    label: String,
    inner: Arc<webrtc::data::data_channel::DataChannel>,
    read_buf: Arc<tokio::sync::Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel").field("label", &self.label).finish()
    }
}

impl DataChannel {
    pub(crate) fn new(label: String, inner: Arc<webrtc::data::data_channel::DataChannel>) -> Self {
        Self { label, inner, read_buf: Arc::new(tokio::sync::Mutex::new(vec![0; MAX_DATA_MESSAGE])) }
    }

    /// The channel's name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends one message (at most [`MAX_DATA_MESSAGE`] bytes); waits while the send buffer is full.
    pub async fn send(&self, data: Vec<u8>) -> Result<(), WebRtcError> {
        if data.len() > MAX_DATA_MESSAGE {
            return Err(WebRtcError::MessageTooLarge(data.len()));
        }
        self.inner.write(&Bytes::from(data)).await.map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        Ok(())
    }

    /// The next message, in order; [`WebRtcError::Closed`] once the channel is closed.
    pub async fn receive(&self) -> Result<Vec<u8>, WebRtcError> {
        let mut buf = self.read_buf.lock().await;
        match self.inner.read(&mut buf).await {
            Ok(0) => Err(WebRtcError::Closed),
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(webrtc::data::Error::ErrStreamClosed) => Err(WebRtcError::Closed),
            Err(e) => Err(WebRtcError::Rtc(e.to_string())),
        }
    }

    /// Closes the channel.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.inner.close().await.map_err(|e| WebRtcError::Rtc(e.to_string()))
    }
}

/// The byte stream the libp2p side of a connection runs on (the `"libp2p"` data channel).
pub type LibP2pStream = Compat<PollDataChannel>;

/// A WebRTC connection to a peer whose id the identity handshake proved.
pub struct WebRtcConnection {
    /// The message channels by name, as configured in [`WebRtcConfig::data_channels`].
    pub data_channels: HashMap<String, DataChannel>,
    remote_peer_id: PeerId,
    connection_id: String,
    outbound: bool,
    peer_connection: Arc<RTCPeerConnection>,
    stream: Mutex<Option<LibP2pStream>>,
    established_in: Duration,
}

impl std::fmt::Debug for WebRtcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcConnection")
            .field("remote_peer_id", &self.remote_peer_id)
            .field("connection_id", &self.connection_id)
            .field("outbound", &self.outbound)
            .field("data_channels", &self.data_channels.keys().collect::<Vec<_>>())
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
        use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState as S;
        matches!(self.peer_connection.connection_state(), S::Connected | S::Connecting | S::New)
    }

    /// Takes the libp2p byte stream (once) for a stream muxer.
    pub fn take_stream(&self) -> Option<LibP2pStream> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Closes every channel and the peer connection.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.peer_connection.close().await.map_err(WebRtcError::from)
    }
}

impl Drop for WebRtcConnection {
    fn drop(&mut self) {
        // webrtc-rs keeps its tasks (ICE, DTLS, SCTP) running until the peer connection is closed.
        let pc = self.peer_connection.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}
