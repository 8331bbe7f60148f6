//! The trade protocol's wire form: every trade message and acknowledgement travels end-to-end
//! encrypted, after a signed X25519 key exchange carried by the same protocol.
//!
//! ```text
//! A -> B  KeyOffer(A's signed ephemeral key)      B -> A  KeyOffer(B's signed ephemeral key)
//! A -> B  Sealed(encrypt(postcard(TradeMessage)))  B -> A  Sealed(encrypt(postcard(TradeAck)))
//! ```
//!
//! Whoever carries the stream (a relay, a proxy) sees keys it cannot swap and ciphertext.

use crate::encryption::EphemeralPublicKey;
use serde::{Deserialize, Serialize};

/// A request on the trade protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeRequest {
    /// Opens (or renews) the session: the sender's signed ephemeral key.
    KeyOffer(Box<EphemeralPublicKey>),
    /// An encrypted, postcard-encoded `TradeMessage`.
    Sealed(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// The answer to a [`TradeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeReply {
    /// The responder's signed ephemeral key: the session is established.
    KeyOffer(Box<EphemeralPublicKey>),
    /// An encrypted, postcard-encoded `TradeAck`.
    Sealed(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The request could not be taken.
    Refused(SealRefusal),
}

/// Why a peer refused a trade-protocol request before reading the trade message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SealRefusal {
    /// It has no session with the sender (it restarted): exchange keys again.
    #[error("no session; exchange keys again")]
    NoSession,
    /// Both sides offered keys at once; the offer of the peer with the smaller id wins.
    #[error("simultaneous key offers; the other one wins")]
    Collision,
    /// The key offer does not verify.
    #[error("key offer refused")]
    BadKey,
    /// The ciphertext does not decrypt (tampered, replayed, wrong key).
    #[error("ciphertext refused")]
    Undecryptable,
    /// The plaintext is not a trade message.
    #[error("plaintext is not a trade message")]
    Malformed,
    /// The peer is not authorized to trade with this node.
    #[error("not authorized")]
    Unauthorized,
}
