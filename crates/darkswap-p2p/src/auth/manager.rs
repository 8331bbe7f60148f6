//! The [`AuthManager`]: challenges, proofs, tokens and the per-peer level table.

use super::{
    wire::{challenge_transcript, token_transcript, AuthToken, Challenge, ChallengeResponse, DecodeError, Proof},
    AuthManagerConfig, AuthMethod, AuthorizationLevel,
};
use hmac::{Hmac, Mac};
use libp2p::{
    identity::{Keypair, PublicKey},
    PeerId,
};
use rand::RngCore;
use sha2::Sha256;
use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard},
};
use web_time::{Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Most challenges outstanding at once (all peers).
pub const MAX_PENDING_CHALLENGES: usize = 4096;
/// Most challenges outstanding for one peer.
pub const MAX_PENDING_PER_PEER: usize = 4;
/// Most authenticated peers remembered.
pub const MAX_SESSIONS: usize = 65_536;

const TOKEN_KEY_INFO: &[u8] = b"darkswap/auth/v1/token-key";

/// The configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// `AuthMethod::SharedKey` without a (non-empty) `shared_key`.
    #[error("auth method SharedKey needs a non-empty shared_key")]
    MissingSharedKey,
    /// The identity key is not ed25519.
    #[error("the identity key must be ed25519")]
    NotEd25519,
}

/// Why a challenge could not be issued, answered or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The peer is banned.
    #[error("peer {0} is banned")]
    Banned(PeerId),
    /// Too many challenges outstanding (for this peer or overall).
    #[error("too many outstanding challenges")]
    TooManyPending,
    /// The challenge names another prover than this node.
    #[error("challenge is addressed to another peer")]
    NotForUs,
    /// The challenge was never issued here, or was already answered (challenges are single-use).
    #[error("unknown or already used challenge")]
    UnknownChallenge,
    /// The challenge expired before it was answered.
    #[error("challenge expired")]
    Expired,
    /// The response comes from another peer than the one challenged.
    #[error("response from a peer other than the one challenged")]
    WrongPeer,
    /// The response's challenge differs from the one issued (method, expiry or verifier altered).
    #[error("response does not match the issued challenge")]
    Mismatch,
    /// The proof is of the wrong kind for the method.
    #[error("proof of the wrong kind for {0:?}")]
    WrongProofKind(AuthMethod),
    /// The MAC or signature does not verify.
    #[error("invalid proof")]
    BadProof,
    /// `PublicKey`: the prover's key is not on the allow-list.
    #[error("key of {0} is not on the allow-list")]
    NotAllowed(PeerId),
    /// The peer id does not embed a public key to check a signature with.
    #[error("peer id does not carry a public key")]
    NoPublicKey,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The bytes are not a token.
    #[error("malformed token: {0}")]
    Decode(#[from] DecodeError),
    /// The MAC or signature does not verify (forged or altered).
    #[error("token seal does not verify")]
    BadSeal,
    /// The issuer is not one this node accepts tokens from.
    #[error("token issuer {0} is not trusted")]
    UntrustedIssuer(PeerId),
    /// The token is bound to another peer.
    #[error("token belongs to {0}, not to the presenting peer")]
    WrongPeer(PeerId),
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token's holder is banned.
    #[error("peer {0} is banned")]
    Banned(PeerId),
}

/// The result of a successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthGrant {
    /// The peer authenticated.
    pub peer: PeerId,
    /// The level it now holds.
    pub level: AuthorizationLevel,
    /// A token the peer can present later instead of answering a new challenge.
    pub token: AuthToken,
}

struct Pending {
    challenge: Challenge,
    expires: Instant,
}

struct Session {
    level: AuthorizationLevel,
    expires: Instant,
}

#[derive(Default)]
struct State {
    pending: HashMap<[u8; 32], Pending>,
    sessions: HashMap<PeerId, Session>,
    allowed: HashMap<PeerId, AuthorizationLevel>,
    trusted: HashSet<PeerId>,
    banned: HashSet<PeerId>,
}

/// Issues and checks challenges and tokens, and keeps every peer's authorization level.
///
/// Thread-safe (`&self` everywhere); share it as `Arc<AuthManager>`.
pub struct AuthManager {
    config: AuthManagerConfig,
    identity: Keypair,
    local: PeerId,
    shared_key: Option<Zeroizing<Vec<u8>>>,
    token_key: Zeroizing<[u8; 32]>,
    state: Mutex<State>,
    credential: Mutex<Option<AuthToken>>,
}

impl std::fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthManager").field("local", &self.local).field("method", &self.config.auth_method).finish()
    }
}

impl AuthManager {
    /// A manager with a fresh random identity (use [`AuthManager::with_identity`] inside a node).
    pub fn new(config: AuthManagerConfig) -> Result<Self, AuthConfigError> {
        Self::with_identity(config, Keypair::generate_ed25519())
    }

    /// A manager that signs with `identity`, the node's libp2p key.
    pub fn with_identity(mut config: AuthManagerConfig, identity: Keypair) -> Result<Self, AuthConfigError> {
        identity.clone().try_into_ed25519().map_err(|_| AuthConfigError::NotEd25519)?;
        let shared_key = config.shared_key.take().filter(|k| !k.is_empty()).map(Zeroizing::new);
        if config.auth_method == AuthMethod::SharedKey && shared_key.is_none() {
            return Err(AuthConfigError::MissingSharedKey);
        }
        let mut token_key = Zeroizing::new([0u8; 32]);
        match (&shared_key, config.auth_method) {
            (Some(k), AuthMethod::SharedKey) => {
                // Every key holder derives the same token key, so tokens verify network-wide.
                hkdf::Hkdf::<Sha256>::new(None, k)
                    .expand(TOKEN_KEY_INFO, token_key.as_mut())
                    .map_err(|_| AuthConfigError::MissingSharedKey)?;
            }
            _ => rand::rngs::OsRng.fill_bytes(token_key.as_mut()),
        }
        let state = State {
            trusted: std::mem::take(&mut config.trusted_peers),
            banned: std::mem::take(&mut config.banned_peers),
            ..State::default()
        };
        let local = identity.public().to_peer_id();
        Ok(Self {
            config,
            identity,
            local,
            shared_key,
            token_key,
            state: Mutex::new(state),
            credential: Mutex::new(None),
        })
    }

    /// This node's peer id (the identity it proves and signs with).
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// The configuration (trusted and banned sets live on; see [`AuthManager::ban_peer`]).
    pub fn config(&self) -> &AuthManagerConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the tables inconsistent (each update is one
        // insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues a single-use challenge that `peer` must answer within `challenge_ttl`.
    pub fn generate_challenge(&self, peer: &PeerId) -> Result<Challenge, ChallengeError> {
        let mut state = self.state();
        if state.banned.contains(peer) {
            return Err(ChallengeError::Banned(*peer));
        }
        let now = Instant::now();
        state.pending.retain(|_, p| p.expires > now);
        let for_peer = state.pending.values().filter(|p| p.challenge.prover == *peer).count();
        if for_peer >= MAX_PENDING_PER_PEER || state.pending.len() >= MAX_PENDING_CHALLENGES {
            return Err(ChallengeError::TooManyPending);
        }
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let challenge = Challenge {
            nonce,
            verifier: self.local,
            prover: *peer,
            method: self.config.auth_method,
            expires_at: unix_now() + self.config.challenge_ttl.as_secs().max(1),
        };
        state.pending.insert(nonce, Pending { challenge: challenge.clone(), expires: now + self.config.challenge_ttl });
        Ok(challenge)
    }

    /// Answers a challenge addressed to this node, with the proof its method asks for.
    pub fn respond_to_challenge(&self, challenge: &Challenge) -> Result<ChallengeResponse, ChallengeError> {
        if challenge.prover != self.local {
            return Err(ChallengeError::NotForUs);
        }
        if challenge.expires_at < unix_now() {
            return Err(ChallengeError::Expired);
        }
        let transcript = challenge_transcript(challenge);
        let proof = match challenge.method {
            AuthMethod::SharedKey => {
                let key = self.shared_key.as_ref().ok_or(ChallengeError::WrongProofKind(AuthMethod::SharedKey))?;
                Proof::Mac(mac(key, &transcript))
            }
            AuthMethod::ChallengeResponse | AuthMethod::PublicKey => {
                Proof::Signature(self.identity.sign(&transcript).map_err(|_| ChallengeError::BadProof)?)
            }
        };
        Ok(ChallengeResponse { challenge: challenge.clone(), proof })
    }

    /// Checks `peer`'s answer to a challenge issued here; on success `peer` holds the granted
    /// level until `token_ttl` passes, and gets a token for later. The challenge is spent either way.
    pub fn verify_response(&self, peer: &PeerId, response: &ChallengeResponse) -> Result<AuthGrant, ChallengeError> {
        let mut state = self.state();
        if state.banned.contains(peer) {
            return Err(ChallengeError::Banned(*peer));
        }
        // Removed before anything is checked: a challenge is good for one attempt only.
        let pending = state.pending.remove(&response.challenge.nonce).ok_or(ChallengeError::UnknownChallenge)?;
        if pending.challenge.prover != *peer {
            return Err(ChallengeError::WrongPeer);
        }
        if pending.challenge != response.challenge {
            return Err(ChallengeError::Mismatch);
        }
        if pending.expires <= Instant::now() {
            return Err(ChallengeError::Expired);
        }
        let transcript = challenge_transcript(&pending.challenge);
        match (&response.proof, pending.challenge.method) {
            (Proof::Mac(tag), AuthMethod::SharedKey) => {
                let key = self.shared_key.as_ref().ok_or(ChallengeError::WrongProofKind(AuthMethod::SharedKey))?;
                verify_mac(key, &transcript, tag).map_err(|_| ChallengeError::BadProof)?;
            }
            (Proof::Signature(sig), AuthMethod::ChallengeResponse | AuthMethod::PublicKey) => {
                let key = peer_public_key(peer).ok_or(ChallengeError::NoPublicKey)?;
                if !key.verify(&transcript, sig) {
                    return Err(ChallengeError::BadProof);
                }
            }
            (_, method) => return Err(ChallengeError::WrongProofKind(method)),
        }
        let level = match (pending.challenge.method, state.allowed.get(peer)) {
            (_, Some(level)) => *level,
            (AuthMethod::PublicKey, None) => return Err(ChallengeError::NotAllowed(*peer)),
            (_, None) => self.config.default_auth_level,
        };
        let level = if state.trusted.contains(peer) { AuthorizationLevel::Admin } else { level };
        Self::record(&mut state, *peer, level, Instant::now() + self.config.token_ttl);
        drop(state);
        let token = self.mint(*peer, level);
        Ok(AuthGrant { peer: *peer, level, token })
    }

    /// Mints a token granting `level` to `peer` for `token_ttl` (an operator vouching for a relay,
    /// for instance). Refused for banned peers.
    pub fn issue_token(&self, peer: &PeerId, level: AuthorizationLevel) -> Result<AuthToken, TokenError> {
        if self.is_banned(peer) {
            return Err(TokenError::Banned(*peer));
        }
        Ok(self.mint(*peer, level))
    }

    fn mint(&self, peer: PeerId, level: AuthorizationLevel) -> AuthToken {
        let issued_at = unix_now();
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let mut token = AuthToken {
            peer,
            level,
            issued_at,
            expires_at: issued_at + self.config.token_ttl.as_secs(),
            issuer: self.local,
            id,
            seal: Proof::Mac([0; 32]),
        };
        let transcript = token_transcript(&token);
        token.seal = match self.config.auth_method {
            AuthMethod::SharedKey => Proof::Mac(mac(self.token_key.as_ref(), &transcript)),
            // ed25519 signing cannot fail; the MAC fallback keeps the token checkable locally.
            _ => match self.identity.sign(&transcript) {
                Ok(sig) => Proof::Signature(sig),
                Err(_) => Proof::Mac(mac(self.token_key.as_ref(), &transcript)),
            },
        };
        token
    }

    /// Checks a token `peer` presents (wire bytes or parsed) and returns the level it grants, without
    /// recording anything.
    pub fn validate_token(&self, peer: &PeerId, token: &[u8]) -> Result<AuthorizationLevel, TokenError> {
        let token = AuthToken::from_bytes(token)?;
        self.check_token(peer, &token)
    }

    /// [`AuthManager::validate_token`] for a parsed token.
    pub fn check_token(&self, peer: &PeerId, token: &AuthToken) -> Result<AuthorizationLevel, TokenError> {
        let state = self.state();
        if state.banned.contains(peer) {
            return Err(TokenError::Banned(*peer));
        }
        let transcript = token_transcript(token);
        match &token.seal {
            Proof::Mac(tag) => {
                // Only tokens MACed under our token key verify: the network's (SharedKey) or our own.
                verify_mac(self.token_key.as_ref(), &transcript, tag).map_err(|_| TokenError::BadSeal)?;
            }
            Proof::Signature(sig) => {
                let issuer_ok = token.issuer == self.local
                    || state.trusted.contains(&token.issuer)
                    || state.allowed.get(&token.issuer) == Some(&AuthorizationLevel::Admin);
                if !issuer_ok {
                    return Err(TokenError::UntrustedIssuer(token.issuer));
                }
                let key = peer_public_key(&token.issuer).ok_or(TokenError::BadSeal)?;
                if !key.verify(&transcript, sig) {
                    return Err(TokenError::BadSeal);
                }
            }
        }
        if token.peer != *peer {
            return Err(TokenError::WrongPeer(token.peer));
        }
        if token.expires_at <= unix_now() {
            return Err(TokenError::Expired);
        }
        Ok(token.level)
    }

    /// Validates a token and records the level it grants for `peer` (until the token or
    /// `token_ttl` runs out, whichever is first).
    pub fn authenticate_with_token(&self, peer: &PeerId, token: &[u8]) -> Result<AuthorizationLevel, TokenError> {
        let parsed = AuthToken::from_bytes(token)?;
        let level = self.check_token(peer, &parsed)?;
        let left = parsed.expires_at.saturating_sub(unix_now());
        let ttl = self.config.token_ttl.min(std::time::Duration::from_secs(left));
        Self::record(&mut self.state(), *peer, level, Instant::now() + ttl);
        Ok(level)
    }

    fn record(state: &mut State, peer: PeerId, level: AuthorizationLevel, expires: Instant) {
        if state.sessions.len() >= MAX_SESSIONS && !state.sessions.contains_key(&peer) {
            let now = Instant::now();
            state.sessions.retain(|_, s| s.expires > now);
            if state.sessions.len() >= MAX_SESSIONS {
                // Full of live sessions: the one closest to expiry makes room.
                if let Some(victim) = state.sessions.iter().min_by_key(|(_, s)| s.expires).map(|(p, _)| *p) {
                    state.sessions.remove(&victim);
                }
            }
        }
        // A new proof never lowers a level the peer already holds (from a token, say).
        let now = Instant::now();
        let level = match state.sessions.get(&peer) {
            Some(s) if s.expires > now => s.level.max(level),
            _ => level,
        };
        state.sessions.insert(peer, Session { level, expires });
    }

    /// The level `peer` holds now.
    pub fn authorization_level(&self, peer: &PeerId) -> AuthorizationLevel {
        let state = self.state();
        if state.banned.contains(peer) {
            return AuthorizationLevel::None;
        }
        if state.trusted.contains(peer) {
            return AuthorizationLevel::Admin;
        }
        match state.sessions.get(peer) {
            Some(s) if s.expires > Instant::now() => s.level,
            _ if self.config.require_auth => AuthorizationLevel::None,
            _ => self.config.default_auth_level,
        }
    }

    /// Whether `peer` holds at least `required`.
    pub fn is_authorized(&self, peer: &PeerId, required: AuthorizationLevel) -> bool {
        self.authorization_level(peer) >= required
    }

    /// Whether `peer` has authenticated (or is trusted) and is not banned.
    pub fn is_authenticated(&self, peer: &PeerId) -> bool {
        let state = self.state();
        !state.banned.contains(peer)
            && (state.trusted.contains(peer) || state.sessions.get(peer).is_some_and(|s| s.expires > Instant::now()))
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.state().banned.contains(peer)
    }

    /// Bans `peer`: its level drops to `None` and its session and challenges are forgotten.
    pub fn ban_peer(&self, peer: PeerId) {
        let mut state = self.state();
        state.sessions.remove(&peer);
        state.pending.retain(|_, p| p.challenge.prover != peer);
        state.trusted.remove(&peer);
        state.banned.insert(peer);
    }

    /// Lifts a ban.
    pub fn unban_peer(&self, peer: &PeerId) {
        self.state().banned.remove(peer);
    }

    /// Trusts `peer` (level `Admin`, no challenge needed).
    pub fn trust_peer(&self, peer: PeerId) {
        let mut state = self.state();
        state.banned.remove(&peer);
        state.trusted.insert(peer);
    }

    /// Puts an identity key on the allow-list with the level a proof by it earns (required for
    /// [`AuthMethod::PublicKey`]; with other methods it raises that key's level above the default).
    pub fn allow_public_key(&self, key: &PublicKey, level: AuthorizationLevel) {
        self.state().allowed.insert(key.to_peer_id(), level);
    }

    /// Removes a key from the allow-list.
    pub fn disallow_public_key(&self, key: &PublicKey) {
        self.state().allowed.remove(&key.to_peer_id());
    }

    /// Forgets a peer's session (its level falls back to the unauthenticated one).
    pub fn revoke(&self, peer: &PeerId) {
        self.state().sessions.remove(peer);
    }

    /// Drops expired challenges and sessions.
    pub fn prune_expired(&self) {
        let now = Instant::now();
        let mut state = self.state();
        state.pending.retain(|_, p| p.expires > now);
        state.sessions.retain(|_, s| s.expires > now);
    }

    /// Sets the credential this node shows when a peer makes it prove itself: a token an issuer
    /// minted for this node (a relay shows its `Relay`-level token). Refused unless it names this
    /// node.
    pub fn set_credential(&self, token: AuthToken) -> Result<(), TokenError> {
        if token.peer != self.local {
            return Err(TokenError::WrongPeer(token.peer));
        }
        *self.credential.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
        Ok(())
    }

    /// The credential set with [`AuthManager::set_credential`].
    pub fn credential(&self) -> Option<AuthToken> {
        self.credential.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many challenges are outstanding and how many peers hold a live session.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.pending.len(), state.sessions.len())
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn verify_mac(key: &[u8], data: &[u8], tag: &[u8; 32]) -> Result<(), hmac::digest::MacError> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    // Constant-time comparison.
    m.verify_slice(tag)
}

/// The public key inlined in an ed25519 peer id (identity multihash), if any: what signatures by
/// that peer are checked against.
pub fn peer_public_key(peer: &PeerId) -> Option<PublicKey> {
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    (mh.code() == 0).then(|| PublicKey::try_decode_protobuf(mh.digest()).ok()).flatten()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
