//! WebRTC-direct on str0m: browsers (and other nodes) dial
//! `/ip4/…/udp/<port>/webrtc-direct/certhash/<hash>` with no signaling server at all.
//!
//! libp2p's construction: the dialer derives the listener's SDP answer from the address (its
//! IP, port and certificate fingerprint) and uses one random ufrag as both sides' ICE username
//! and password. The listener learns that ufrag from the dialer's first STUN binding request and
//! answers as an ICE-lite, DTLS-server peer on one UDP socket shared by all its connections.
//! DTLS cannot prove who the dialer is (its certificate is self-signed and unknown), so a Noise
//! handshake on the pre-negotiated channel 0, with both DTLS fingerprints in its prologue, proves
//! both libp2p identities and that no one sits between the two DTLS ends. Each libp2p stream is
//! then a data channel with libp2p's framing (libp2p-webrtc-utils).
//!
//! The same connection task as signaling-server WebRTC runs every connection
//! ([`crate::webrtc_connection`]'s driver), so the build carries one native WebRTC stack.

mod certificate;
mod connection;
mod listener;
mod transport;
mod upgrade;

pub use certificate::{Certificate, CertificateError};
pub use connection::{Connection, Substream};
pub use transport::Transport;

/// Why a WebRTC-direct connection could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The UDP socket failed.
    #[error("WebRTC-direct socket: {0}")]
    Io(#[from] std::io::Error),
    /// ICE, DTLS or SCTP failed.
    #[error("WebRTC-direct: {0}")]
    Rtc(String),
    /// The Noise handshake on channel 0 failed (wrong peer, or a DTLS end in the middle).
    #[error("WebRTC-direct identity handshake: {0}")]
    Handshake(String),
    /// The connection is closed.
    #[error("WebRTC-direct connection closed")]
    Closed,
    /// The connection did not come up in time.
    #[error("WebRTC-direct connection not up within {0:?}")]
    Timeout(std::time::Duration),
}
