//! End-to-end encryption between two peers: signed X25519 key exchange, HKDF-SHA256 direction
//! keys, AES-256-GCM or ChaCha20-Poly1305, replay protection and forward-secret key rotation.
//!
//! Each side calls [`EncryptionManager::generate_ephemeral_key_pair`] for the other and sends the
//! resulting [`EphemeralPublicKey`] — an X25519 key signed by its libp2p identity key over both
//! peer ids — and feeds the other's into [`EncryptionManager::perform_key_exchange`], which checks
//! the signature against the sender's peer id, so a relay in the middle cannot substitute keys.
//! The X25519 secret is wiped right after the exchange. Both sides then derive, with HKDF-SHA256
//! over the shared secret and both (peer id, public key) pairs, one key per direction.
//!
//! [`EncryptionManager::encrypt`] produces a versioned envelope (see [`envelope`]); the receiver
//! refuses tampered, truncated, wrong-key, replayed and too-old (more than
//! [`session::REPLAY_WINDOW`] behind) messages, each with its own [`DecryptError`].
//!
//! **Rotation.** [`EncryptionManager::rotate_keys`] (and `encrypt`, once `key_rotation_interval`
//! has passed) moves each session's sending key one step along a one-way HKDF ratchet and wipes
//! the old key. The receiver follows when it sees the new epoch, keeps the previous epoch's key for
//! a grace period ([`EncryptionManager::with_grace_period`], 30 s by default) for messages in flight,
//! and [`EncryptionManager::prune_expired_keys`] wipes it afterwards: from then on the old
//! ciphertexts cannot be decrypted by anyone, identity key or not. A fresh key exchange gives a
//! fresh Diffie-Hellman secret (the network does one per `key_rotation_interval`).
//!
//! `use_ephemeral_keys: false` reuses one X25519 key for all peers until `rotate_keys` (cheaper,
//! weaker); `use_forward_secrecy: false` keeps previous epoch keys until the session ends instead
//! of wiping them after the grace period.
//!
//! ```
//! use darkswap_p2p::encryption::{EncryptionConfig, EncryptionManager};
//!
//! let alice = EncryptionManager::new(EncryptionConfig::default())?;
//! let bob = EncryptionManager::new(EncryptionConfig::default())?;
//! let (alice_id, bob_id) = (alice.local_peer_id(), bob.local_peer_id());
//!
//! let alice_key = alice.generate_ephemeral_key_pair(&bob_id)?;
//! let bob_key = bob.generate_ephemeral_key_pair(&alice_id)?;
//! alice.perform_key_exchange(&bob_id, &bob_key)?;
//! bob.perform_key_exchange(&alice_id, &alice_key)?;
//!
//! let sealed = alice.encrypt(&bob_id, b"PSBT bytes")?;
//! assert_eq!(bob.decrypt(&alice_id, &sealed)?, b"PSBT bytes");
//! assert!(bob.decrypt(&alice_id, &sealed).is_err()); // a replay
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aead;
pub mod envelope;
mod manager;
pub mod session;

pub use aead::TAG_LEN;
pub use envelope::{EnvelopeError, EphemeralPublicKey, Header};
pub use manager::EncryptionManager;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the two peers agree on a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyExchangeAlgorithm {
    /// Diffie-Hellman over Curve25519 (RFC 7748).
    X25519,
}

/// The AEAD that protects messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum EncryptionAlgorithm {
    /// AES-256 in Galois/Counter Mode (fastest where AES instructions exist).
    AesGcm256 = 0,
    /// ChaCha20-Poly1305 (fast everywhere, constant-time without AES hardware).
    ChaCha20Poly1305 = 1,
}

impl EncryptionAlgorithm {
    /// The algorithm with wire id `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::AesGcm256),
            1 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// Configuration of an [`EncryptionManager`], as in the seed.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// The key agreement.
    pub key_exchange_algorithm: KeyExchangeAlgorithm,
    /// The AEAD this side encrypts with (a receiver accepts both).
    pub encryption_algorithm: EncryptionAlgorithm,
    /// How long a sending key is used before `encrypt` rotates it by itself.
    pub key_rotation_interval: Duration,
    /// Wipe previous epoch keys once their grace period is over.
    pub use_forward_secrecy: bool,
    /// A fresh X25519 key per peer and exchange (otherwise one per manager, until `rotate_keys`).
    pub use_ephemeral_keys: bool,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            key_exchange_algorithm: KeyExchangeAlgorithm::X25519,
            encryption_algorithm: EncryptionAlgorithm::AesGcm256,
            key_rotation_interval: Duration::from_secs(3600),
            use_forward_secrecy: true,
            use_ephemeral_keys: true,
        }
    }
}

/// Why a manager could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionConfigError {
    /// The identity key is not ed25519.
    #[error("the identity key must be ed25519")]
    NotEd25519,
    /// A rotation interval of zero would rotate on every message.
    #[error("key_rotation_interval must be non-zero")]
    ZeroRotationInterval,
}

/// Why a key exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyExchangeError {
    /// The key was sent by another peer than the one named.
    #[error("key was sent by {0}, not by the expected peer")]
    WrongSender(libp2p::PeerId),
    /// The key is addressed to another peer.
    #[error("key is addressed to another peer")]
    WrongRecipient,
    /// The signature does not verify against the sender's identity key.
    #[error("signature on the ephemeral key does not verify")]
    BadSignature,
    /// The sender's peer id does not carry its public key.
    #[error("sender's peer id does not carry a public key")]
    NoPublicKey,
    /// No local key pair for this peer: call `generate_ephemeral_key_pair` first.
    #[error("no local ephemeral key for this peer")]
    NoLocalKey,
    /// The public key is a low-order point (the shared secret would be predictable).
    #[error("non-contributory public key")]
    WeakKey,
    /// Too many peers with sessions or pending exchanges.
    #[error("too many peers")]
    TooManyPeers,
    /// The bytes are not a key message.
    #[error("malformed key message: {0}")]
    Decode(#[from] crate::auth::DecodeError),
}

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// No session with the peer: exchange keys first.
    #[error("no session with {0}")]
    NoSession(libp2p::PeerId),
    /// The plaintext exceeds [`envelope::MAX_PLAINTEXT`].
    #[error("plaintext larger than {} bytes", envelope::MAX_PLAINTEXT)]
    TooLarge,
    /// Every nonce of every epoch is spent (never in practice); exchange keys again.
    #[error("nonces exhausted")]
    Exhausted,
    /// The buffer given to [`EncryptionManager::encrypt_in_place`] is shorter than the header.
    #[error("buffer has no room for the {}-byte header", envelope::HEADER_LEN)]
    NoHeaderRoom,
}

/// Why a ciphertext was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The envelope is malformed (truncated, oversized, unknown version or algorithm).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// No session with the peer.
    #[error("no session with {0}")]
    NoSession(libp2p::PeerId),
    /// The message was already received.
    #[error("replayed message")]
    Replayed,
    /// The message is older than the replay window.
    #[error("message older than the replay window")]
    TooOld,
    /// The key of that epoch is gone (rotated away and wiped).
    #[error("key of epoch {0} is no longer held")]
    KeyExpired(u32),
    /// The epoch is implausibly far ahead.
    #[error("epoch {0} is too far ahead")]
    EpochTooFarAhead(u32),
    /// The AEAD refused it: tampered, or encrypted under another key.
    #[error("authentication failed: tampered or wrong key")]
    Authentication,
}

/// Any encryption error, for `?` across operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionError {
    /// Building the manager.
    #[error(transparent)]
    Config(#[from] EncryptionConfigError),
    /// A key exchange.
    #[error(transparent)]
    KeyExchange(#[from] KeyExchangeError),
    /// Encrypting.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// Decrypting.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
}
