//! The ciphertext envelope and the signed ephemeral key, byte by byte.
//!
//! Envelope (14-byte header, authenticated as associated data):
//!
//! ```text
//! version u8 = 1 | algorithm u8 | epoch u32 BE | counter u64 BE | ciphertext | tag (16 bytes)
//! ```
//!
//! The AEAD nonce is `epoch || counter`; every (direction, epoch) has its own key and the counter
//! only grows, so a nonce is never used twice under one key.

use super::{aead::TAG_LEN, EncryptionAlgorithm};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Version byte of the envelope and of the signed key.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes of the envelope header.
pub const HEADER_LEN: usize = 14;
/// Largest plaintext one envelope carries.
pub const MAX_PLAINTEXT: usize = 1 << 20;
/// Largest encoded [`EphemeralPublicKey`].
pub const MAX_KEY_MESSAGE_BYTES: usize = 512;

const KEY_DOMAIN: &[u8] = b"darkswap/e2e/v1/ephemeral-key";

/// Why bytes are not a well-formed envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than a header and a tag.
    #[error("truncated envelope ({0} bytes)")]
    Truncated(usize),
    /// Larger than any envelope this node produces.
    #[error("envelope larger than allowed")]
    Oversized,
    /// A version this node does not speak.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    /// An algorithm id this node does not know.
    #[error("unknown algorithm id {0}")]
    UnknownAlgorithm(u8),
}

/// A parsed envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The AEAD used.
    pub algorithm: EncryptionAlgorithm,
    /// The key epoch (bumped by each rotation).
    pub epoch: u32,
    /// The message number within the epoch.
    pub counter: u64,
}

impl Header {
    /// The header bytes (also the associated data).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = ENVELOPE_VERSION;
        out[1] = self.algorithm as u8;
        out[2..6].copy_from_slice(&self.epoch.to_be_bytes());
        out[6..14].copy_from_slice(&self.counter.to_be_bytes());
        out
    }

    /// The AEAD nonce for this message.
    pub fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.epoch.to_be_bytes());
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// Parses the header of `envelope`, checking only its shape.
    pub fn parse(envelope: &[u8]) -> Result<Self, EnvelopeError> {
        if envelope.len() > HEADER_LEN + MAX_PLAINTEXT + TAG_LEN {
            return Err(EnvelopeError::Oversized);
        }
        if let Some(&v) = envelope.first().filter(|&&v| v != ENVELOPE_VERSION) {
            return Err(EnvelopeError::UnknownVersion(v));
        }
        if envelope.len() < HEADER_LEN + TAG_LEN {
            return Err(EnvelopeError::Truncated(envelope.len()));
        }
        let algorithm =
            EncryptionAlgorithm::from_id(envelope[1]).ok_or(EnvelopeError::UnknownAlgorithm(envelope[1]))?;
        let epoch = u32::from_be_bytes(envelope[2..6].try_into().expect("4 bytes"));
        let counter = u64::from_be_bytes(envelope[6..14].try_into().expect("8 bytes"));
        Ok(Self { algorithm, epoch, counter })
    }
}

/// An X25519 public key on its way to one peer, signed by the sender's identity key so that nobody
/// in between (a relay, say) can substitute its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralPublicKey {
    /// The X25519 public key.
    pub public_key: [u8; 32],
    /// Who sends it (its identity key signs).
    pub sender: PeerId,
    /// Who it is for.
    pub recipient: PeerId,
    /// The AEAD the sender encrypts with.
    pub algorithm: EncryptionAlgorithm,
    /// Random per key, so every exchange has a distinct transcript.
    pub nonce: [u8; 16],
    /// Signature over [`EphemeralPublicKey::transcript`].
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl EphemeralPublicKey {
    /// The bytes the signature covers.
    pub fn transcript(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_DOMAIN.len() + 160);
        out.extend_from_slice(KEY_DOMAIN);
        for peer in [&self.sender, &self.recipient] {
            let b = peer.to_bytes();
            out.push(b.len() as u8);
            out.extend_from_slice(&b);
        }
        out.extend_from_slice(&self.public_key);
        out.push(self.algorithm as u8);
        out.extend_from_slice(&self.nonce);
        out
    }

    /// Wire form: `version || postcard(self)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![ENVELOPE_VERSION]).unwrap_or_default()
    }

    /// Parses the wire form (the signature is checked by `perform_key_exchange`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::auth::DecodeError> {
        crate::auth::wire::decode_versioned(bytes, ENVELOPE_VERSION, MAX_KEY_MESSAGE_BYTES)
    }
}
