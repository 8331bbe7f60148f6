//! Authentication and authorization of peers: shared-key or signature challenges, tokens, levels.
//!
//! An [`AuthManager`] answers one question for the rest of the node: *what may this peer do?*
//! ([`AuthManager::authorization_level`]). A peer earns a level by proving itself once, through a
//! single-use [`Challenge`], and then holds an [`AuthToken`] bound to its peer id:
//!
//! | [`AuthMethod`] | the prover shows | level granted |
//! |---|---|---|
//! | `SharedKey` | HMAC-SHA256 of the challenge under the network's shared key | `default_auth_level` |
//! | `ChallengeResponse` | a signature of the challenge by its libp2p identity key | `default_auth_level` |
//! | `PublicKey` | the same signature, and its key is on the allow-list ([`AuthManager::allow_public_key`]) | the level listed |
//!
//! Trusted peers hold [`AuthorizationLevel::Admin`] without a challenge; banned peers hold
//! nothing and every operation about them fails. A peer that never authenticated holds
//! `default_auth_level` when `require_auth` is false and [`AuthorizationLevel::None`] when it is
//! true. Levels above the default (a relay's `Relay`, an operator's `Admin`) come from the
//! allow-list or from a token an issuer minted with [`AuthManager::issue_token`].
//!
//! Tokens are MACed under a key derived from the shared key (`SharedKey`: every holder of the
//! key can mint and check them), or signed by the issuer's identity key (other methods: checked
//! against the issuer's public key, which must be this node, a trusted peer or an allow-listed
//! `Admin` key). All secret comparisons are constant-time.
//!
//! ```
//! use darkswap_p2p::auth::{AuthManager, AuthManagerConfig, AuthMethod, AuthorizationLevel};
//!
//! let config = AuthManagerConfig {
//!     auth_method: AuthMethod::SharedKey,
//!     shared_key: Some(b"secret-key".to_vec()),
//!     require_auth: true,
//!     ..Default::default()
//! };
//! let relay = AuthManager::new(config.clone())?;
//! let client = AuthManager::new(config)?;
//!
//! let challenge = relay.generate_challenge(&client.local_peer_id())?;
//! let response = client.respond_to_challenge(&challenge)?;
//! let grant = relay.verify_response(&client.local_peer_id(), &response)?;
//! assert_eq!(grant.level, AuthorizationLevel::Basic);
//! assert!(relay.is_authorized(&client.local_peer_id(), AuthorizationLevel::Basic));
//! // The challenge is spent: replaying the response fails.
//! assert!(relay.verify_response(&client.local_peer_id(), &response).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod manager;
pub mod protocol;
pub(crate) mod wire;

pub use manager::{peer_public_key, AuthConfigError, AuthGrant, AuthManager, ChallengeError, TokenError};
pub use protocol::{handle_request, AuthRefusal, AuthRequest, AuthResponse, AUTH_PROTOCOL};
pub use wire::{
    challenge_transcript, decode, encode, token_transcript, AuthToken, Challenge, ChallengeResponse, DecodeError,
    Proof, AUTH_VERSION, MAX_AUTH_MESSAGE_BYTES, MAX_TOKEN_BYTES,
};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::{collections::HashSet, time::Duration};

/// How a peer proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum AuthMethod {
    /// HMAC-SHA256 of the challenge under a key all members share.
    SharedKey = 0,
    /// A signature of the challenge by the peer's libp2p identity key (proves identity only).
    ChallengeResponse = 1,
    /// A signature by an identity key that is on the verifier's allow-list.
    PublicKey = 2,
}

/// What a peer may do, ordered: `None < Basic < Relay < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum AuthorizationLevel {
    /// Nothing beyond what is open to anyone.
    None = 0,
    /// A member: may reserve on relays that require authentication, gossip and trade.
    Basic = 1,
    /// A relay the network vouches for (what `min_relay_auth_level` usually asks for).
    Relay = 2,
    /// An operator.
    Admin = 3,
}

/// Configuration of an [`AuthManager`], as in the seed.
#[derive(Debug, Clone)]
pub struct AuthManagerConfig {
    /// How peers prove themselves.
    pub auth_method: AuthMethod,
    /// The network's shared secret (required by [`AuthMethod::SharedKey`]).
    pub shared_key: Option<Vec<u8>>,
    /// How long a granted level and its token last.
    pub token_ttl: Duration,
    /// How long a challenge may be answered.
    pub challenge_ttl: Duration,
    /// Peers authorized as [`AuthorizationLevel::Admin`] without a challenge.
    pub trusted_peers: HashSet<PeerId>,
    /// Peers refused everywhere.
    pub banned_peers: HashSet<PeerId>,
    /// The level a successful proof grants (and what unauthenticated peers hold when
    /// `require_auth` is false).
    pub default_auth_level: AuthorizationLevel,
    /// Whether unauthenticated peers are held at [`AuthorizationLevel::None`].
    pub require_auth: bool,
}

impl Default for AuthManagerConfig {
    fn default() -> Self {
        Self {
            auth_method: AuthMethod::ChallengeResponse,
            shared_key: None,
            token_ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(60),
            trusted_peers: HashSet::new(),
            banned_peers: HashSet::new(),
            default_auth_level: AuthorizationLevel::Basic,
            require_auth: false,
        }
    }
}
