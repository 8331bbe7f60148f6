//! WebRTC, in one home: connections between browsers and native nodes, with or without a
//! signaling server.
//!
//! - [`signaled`]: connections negotiated through a signaling server (SDP and ICE relayed by
//!   it), the [`WebRtcSignalingClient`](signaled::WebRtcSignalingClient), named data channels and
//!   the [`WebRtcConnectionManager`](signaled::WebRtcConnectionManager); natively on str0m, in
//!   the browser on its own WebRTC stack. The seed's path for it is `darkswap_p2p::webrtc_connection`.
//! - [`signaling`]: the signaling server and its wire format (`darkswap_p2p::signaling`).
//! - [`transport`]: [`WebRtcTransport`](transport::WebRtcTransport), signaled connections as a
//!   libp2p transport (`/webrtc/p2p/<peer>`), with Noise and Yamux on top.
//! - [`direct`] (native): WebRTC-direct, which browsers dial at
//!   `/ip4/…/udp/…/webrtc-direct/certhash/…` with no signaling server.
//! - `rtc` (native, crate-private): the machinery both native kinds share: the task that drives
//!   str0m, its UDP sockets, ICE candidate gathering, TURN, the channel-opening policy and the
//!   libp2p byte stream over a data channel.

#[cfg(not(target_arch = "wasm32"))]
pub mod direct;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod rtc;
pub mod signaled;
pub mod signaling;
pub mod transport;

use libp2p::PeerId;
use std::time::Duration;

/// Largest message [`DataChannel::send`](signaled::DataChannel::send) takes (a size every WebRTC stack and browser accepts).
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
    /// Bytes a data channel sender may have written that the peer has not acknowledged yet
    /// (native connections; the browser sizes its own). It bounds the data in flight, so a
    /// transfer moves at most this much per round trip: the default 256 KiB gives ~600 Mbit/s on
    /// loopback and ~20 Mbit/s over a 100 ms round trip. More helps long, fast paths, but the
    /// native SCTP walks everything in flight on each packet, so 1 MiB is slower on short ones.
    pub send_buffer: usize,
    /// Offer only relayed candidates (TURN), like the browsers' `iceTransportPolicy: "relay"`:
    /// the peer never learns this host's addresses. Needs a `turn:` server in `ice_servers`.
    pub relay_only: bool,
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
            relay_only: false,
            send_buffer: 256 * 1024,
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
    Signaling(#[from] signaling::SignalingError),
    /// The signaling server refused a message about this connection.
    #[error("signaling server refused: {code}: {message}")]
    Refused {
        /// Its error code.
        code: signaling::ErrorCode,
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
