//! The [`EncryptionManager`]: per-peer key exchanges and sessions.

use super::{
    aead::TAG_LEN,
    envelope::{EphemeralPublicKey, Header, HEADER_LEN, MAX_PLAINTEXT},
    session::{derive_chains, Chain, Receiving, Sending},
    DecryptError, EncryptError, EncryptionConfig, EncryptionConfigError, EncryptionError, KeyExchangeError,
};
use crate::auth::peer_public_key;
use libp2p::{identity::Keypair, PeerId};
use rand::RngCore;
use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};
use web_time::Instant;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

/// Most peers with a session or a pending exchange.
pub const MAX_PEERS: usize = 4096;
/// Default time the previous epoch's key is kept after a rotation.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long an unanswered ephemeral key is kept.
const PENDING_TTL: Duration = Duration::from_secs(600);

struct Pending {
    secret: StaticSecret,
    public: [u8; 32],
    created: Instant,
}

struct Session {
    sending: Sending,
    receiving: Receiving,
}

#[derive(Default)]
struct Peer {
    pending: Option<Pending>,
    session: Option<Session>,
}

/// A peer id as a map key, hashed by the last eight bytes of its multihash digest (key or hash
/// bytes, uniformly spread) instead of the whole multihash: one word through the keyed hasher
/// instead of ~40 bytes, which was a tenth of the cost of a small message. Equality stays the full
/// peer id.
#[derive(Clone, Copy, PartialEq, Eq)]
struct PeerKey(PeerId);

impl std::hash::Hash for PeerKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let digest = self.0.as_ref().digest();
        let tail = &digest[digest.len().saturating_sub(8)..];
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        state.write_u64(u64::from_le_bytes(word));
    }
}

#[derive(Default)]
struct State {
    // foldhash's quality hasher: keyed per process like SipHash (peer ids come from the network),
    // at a fraction of SipHash's cost on the per-message path.
    peers: HashMap<PeerKey, Peer, foldhash::quality::RandomState>,
    shared_static: Option<(StaticSecret, [u8; 32])>,
}

/// Encrypts and decrypts messages for many peers, one session each. Thread-safe (`&self`).
pub struct EncryptionManager {
    config: EncryptionConfig,
    identity: Keypair,
    local: PeerId,
    grace: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for EncryptionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionManager").field("local", &self.local).field("config", &self.config).finish()
    }
}

impl EncryptionManager {
    /// A manager with a fresh random identity (inside a node use [`EncryptionManager::with_identity`],
    /// so that peers can check its keys against its peer id).
    pub fn new(config: EncryptionConfig) -> Result<Self, EncryptionConfigError> {
        Self::with_identity(config, Keypair::generate_ed25519())
    }

    /// A manager that signs its ephemeral keys with `identity`.
    pub fn with_identity(config: EncryptionConfig, identity: Keypair) -> Result<Self, EncryptionConfigError> {
        identity.clone().try_into_ed25519().map_err(|_| EncryptionConfigError::NotEd25519)?;
        if config.key_rotation_interval.is_zero() {
            return Err(EncryptionConfigError::ZeroRotationInterval);
        }
        let local = identity.public().to_peer_id();
        Ok(Self { config, identity, local, grace: DEFAULT_GRACE, state: Mutex::new(State::default()) })
    }

    /// Sets how long the previous epoch's key stays usable after a rotation (default 30 s).
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The identity this manager signs its keys with.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// The configuration.
    pub fn config(&self) -> &EncryptionConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh_secret() -> (StaticSecret, [u8; 32]) {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let secret = StaticSecret::from(*bytes);
        let public = XPublic::from(&secret).to_bytes();
        (secret, public)
    }

    /// Creates this side's X25519 key for `peer` and returns the public half, signed, to send it.
    pub fn generate_ephemeral_key_pair(&self, peer: &PeerId) -> Result<EphemeralPublicKey, KeyExchangeError> {
        let mut state = self.state();
        if !state.peers.contains_key(&PeerKey(*peer)) && state.peers.len() >= MAX_PEERS {
            return Err(KeyExchangeError::TooManyPeers);
        }
        let (secret, public) = if self.config.use_ephemeral_keys {
            Self::fresh_secret()
        } else {
            let (s, p) = state.shared_static.get_or_insert_with(Self::fresh_secret);
            (s.clone(), *p)
        };
        state.peers.entry(PeerKey(*peer)).or_default().pending =
            Some(Pending { secret, public, created: Instant::now() });
        drop(state);
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut key = EphemeralPublicKey {
            public_key: public,
            sender: self.local,
            recipient: *peer,
            algorithm: self.config.encryption_algorithm,
            nonce,
            signature: Vec::new(),
        };
        key.signature = self.identity.sign(&key.transcript()).map_err(|_| KeyExchangeError::BadSignature)?;
        Ok(key)
    }

    /// Checks `peer`'s signed key and, with this side's key for `peer`, derives the session (replacing
    /// any earlier one). This side's X25519 secret is wiped afterwards.
    pub fn perform_key_exchange(&self, peer: &PeerId, their: &EphemeralPublicKey) -> Result<(), KeyExchangeError> {
        if their.sender != *peer {
            return Err(KeyExchangeError::WrongSender(their.sender));
        }
        if their.recipient != self.local {
            return Err(KeyExchangeError::WrongRecipient);
        }
        let key = peer_public_key(peer).ok_or(KeyExchangeError::NoPublicKey)?;
        if !key.verify(&their.transcript(), &their.signature) {
            return Err(KeyExchangeError::BadSignature);
        }
        let mut state = self.state();
        let entry = state.peers.get_mut(&PeerKey(*peer)).ok_or(KeyExchangeError::NoLocalKey)?;
        let pending = entry.pending.take().ok_or(KeyExchangeError::NoLocalKey)?;
        let shared = pending.secret.diffie_hellman(&XPublic::from(their.public_key));
        if !shared.was_contributory() {
            return Err(KeyExchangeError::WeakKey);
        }
        let (local_id, remote_id) = (self.local.to_bytes(), peer.to_bytes());
        let (send, recv) =
            derive_chains(shared.as_bytes(), (&local_id, &pending.public), (&remote_id, &their.public_key));
        entry.session = Some(Session {
            sending: Sending::new(Chain::new(send), self.config.encryption_algorithm),
            receiving: Receiving::new(Chain::new(recv)),
        });
        Ok(())
    }

    /// Whether a session with `peer` is established.
    pub fn has_session(&self, peer: &PeerId) -> bool {
        self.state().peers.get(&PeerKey(*peer)).is_some_and(|p| p.session.is_some())
    }

    /// How old the current sending key for `peer` is.
    pub fn session_age(&self, peer: &PeerId) -> Option<Duration> {
        self.state().peers.get(&PeerKey(*peer))?.session.as_ref().map(|s| s.sending.chain.since.elapsed())
    }

    /// Forgets everything about `peer` (its keys are wiped).
    pub fn remove_session(&self, peer: &PeerId) {
        self.state().peers.remove(&PeerKey(*peer));
    }

    /// Encrypts `plaintext` for `peer` into an envelope.
    pub fn encrypt(&self, peer: &PeerId, plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(EncryptError::TooLarge);
        }
        let mut buf = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        buf.resize(HEADER_LEN, 0);
        buf.extend_from_slice(plaintext);
        self.encrypt_in_place(peer, &mut buf)?;
        Ok(buf)
    }

    /// Encrypts in place, without copying or allocating: `buf` holds [`HEADER_LEN`] bytes of room
    /// for the header (their contents do not matter), then the plaintext; it becomes the envelope
    /// (header written, plaintext encrypted, tag appended). Reserve [`TAG_LEN`] more bytes of
    /// capacity to avoid a reallocation. Fails (leaving `buf` as it was) like [`Self::encrypt`].
    ///
    /// ```
    /// # use darkswap_p2p::encryption::{EncryptionConfig, EncryptionManager, envelope::HEADER_LEN};
    /// # let (alice, bob) = (EncryptionManager::new(EncryptionConfig::default()).unwrap(),
    /// #     EncryptionManager::new(EncryptionConfig::default()).unwrap());
    /// # let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    /// # let ka = alice.generate_ephemeral_key_pair(&b).unwrap();
    /// # let kb = bob.generate_ephemeral_key_pair(&a).unwrap();
    /// # alice.perform_key_exchange(&b, &kb).unwrap();
    /// # bob.perform_key_exchange(&a, &ka).unwrap();
    /// let mut buf = vec![0u8; HEADER_LEN];
    /// buf.extend_from_slice(b"psbt offer");
    /// alice.encrypt_in_place(&b, &mut buf).unwrap();
    /// assert_eq!(bob.decrypt_in_place(&a, &mut buf).unwrap(), b"psbt offer");
    /// ```
    pub fn encrypt_in_place(&self, peer: &PeerId, buf: &mut Vec<u8>) -> Result<(), EncryptError> {
        let len = buf.len().checked_sub(HEADER_LEN).ok_or(EncryptError::NoHeaderRoom)?;
        if len > MAX_PLAINTEXT {
            return Err(EncryptError::TooLarge);
        }
        let mut state = self.state();
        let session = state
            .peers
            .get_mut(&PeerKey(*peer))
            .and_then(|p| p.session.as_mut())
            .ok_or(EncryptError::NoSession(*peer))?;
        if session.sending.rotation_due(self.config.key_rotation_interval) {
            session.sending.rotate();
        }
        session.sending.seal_in_place(buf).then_some(()).ok_or(EncryptError::Exhausted)
    }

    /// Decrypts an envelope from `peer`.
    pub fn decrypt(&self, peer: &PeerId, ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let header = Header::parse(ciphertext)?;
        let mut body = ciphertext[HEADER_LEN..].to_vec();
        let len = self.open(peer, &header, &mut body)?;
        body.truncate(len);
        Ok(body)
    }

    /// Decrypts an envelope from `peer` in place, without copying or allocating; returns the
    /// plaintext, a part of `envelope`. On error the envelope's bytes are unspecified.
    pub fn decrypt_in_place<'a>(&self, peer: &PeerId, envelope: &'a mut [u8]) -> Result<&'a mut [u8], DecryptError> {
        let header = Header::parse(envelope)?;
        let body = &mut envelope[HEADER_LEN..];
        let len = self.open(peer, &header, body)?;
        Ok(&mut body[..len])
    }

    fn open(&self, peer: &PeerId, header: &Header, body: &mut [u8]) -> Result<usize, DecryptError> {
        let mut state = self.state();
        let session = state
            .peers
            .get_mut(&PeerKey(*peer))
            .and_then(|p| p.session.as_mut())
            .ok_or(DecryptError::NoSession(*peer))?;
        session.receiving.open(header, body, self.grace)
    }

    /// Moves every session's sending key to the next epoch (one-way; the old key is wiped), and
    /// replaces the shared X25519 key when `use_ephemeral_keys` is off.
    pub fn rotate_keys(&self) -> Result<(), EncryptionError> {
        let mut state = self.state();
        for session in state.peers.values_mut().filter_map(|p| p.session.as_mut()) {
            if !session.sending.rotate() {
                return Err(EncryptError::Exhausted.into());
            }
        }
        if state.shared_static.is_some() {
            state.shared_static = Some(Self::fresh_secret());
        }
        Ok(())
    }

    /// Wipes previous-epoch keys whose grace period is over and unanswered ephemeral keys.
    pub fn prune_expired_keys(&self) {
        let now = Instant::now();
        let mut state = self.state();
        for peer in state.peers.values_mut() {
            if peer.pending.as_ref().is_some_and(|p| now.duration_since(p.created) >= PENDING_TTL) {
                peer.pending = None;
            }
            if self.config.use_forward_secrecy {
                if let Some(s) = peer.session.as_mut() {
                    s.receiving.prune(now);
                }
            }
        }
        state.peers.retain(|_, p| p.pending.is_some() || p.session.is_some());
    }

    /// How many peers have a session.
    pub fn session_count(&self) -> usize {
        self.state().peers.values().filter(|p| p.session.is_some()).count()
    }
}
