//! The authentication protocol between two nodes (`/darkswap/auth/1.0.0`, one request and one
//! response per stream), and the verifier's side of it as plain logic, apart from any I/O.
//!
//! To authenticate *to* a node: `GetChallenge` → `Challenge`, then `Respond` → `Granted` (with a
//! token) or `Refused`. Later, `PresentToken` → `Granted` skips the challenge. To make a node prove
//! itself (a client checking a relay): `Prove(challenge)` → `Proof(response)`.

use super::{AuthManager, AuthToken, AuthorizationLevel, Challenge, ChallengeError, ChallengeResponse, TokenError};
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

/// The protocol name.
pub const AUTH_PROTOCOL: StreamProtocol = StreamProtocol::new("/darkswap/auth/1.0.0");

/// What a peer asks of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    /// "Challenge me."
    GetChallenge,
    /// "Here is my answer to your challenge."
    Respond(ChallengeResponse),
    /// "Here is a token you (or your network) issued me."
    PresentToken(AuthToken),
    /// "Prove yourself: answer this challenge of mine."
    Prove(Challenge),
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthResponse {
    /// A challenge to answer.
    Challenge(Challenge),
    /// Authenticated at `level`; `token` can be presented next time.
    Granted {
        /// The level now held.
        level: AuthorizationLevel,
        /// A token for later (absent when a presented token was accepted).
        token: Option<AuthToken>,
    },
    /// The node's answer to a `Prove` request, with the credential it holds (a token an issuer
    /// gave it, e.g. a `Relay`-level token from the network's operator), if any.
    Proof {
        /// The proof.
        response: Box<ChallengeResponse>,
        /// The node's credential.
        token: Option<Box<AuthToken>>,
    },
    /// Refused, and why.
    Refused(AuthRefusal),
}

/// Why a node refused, as far as it tells the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AuthRefusal {
    /// The peer is banned.
    #[error("banned")]
    Banned,
    /// Too many outstanding challenges.
    #[error("too many outstanding challenges")]
    TooManyPending,
    /// The challenge is unknown, used, expired or altered.
    #[error("challenge unknown, used, expired or altered")]
    BadChallenge,
    /// The proof does not verify.
    #[error("invalid proof")]
    BadProof,
    /// The peer's key is not on the allow-list.
    #[error("key not allowed")]
    NotAllowed,
    /// The token is malformed, forged, expired or someone else's.
    #[error("token refused")]
    BadToken,
    /// The node cannot answer this kind of challenge (wrong method or addressee).
    #[error("cannot answer this challenge")]
    CannotProve,
}

impl From<ChallengeError> for AuthRefusal {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::Banned(_) => Self::Banned,
            ChallengeError::TooManyPending => Self::TooManyPending,
            ChallengeError::UnknownChallenge
            | ChallengeError::Expired
            | ChallengeError::WrongPeer
            | ChallengeError::Mismatch => Self::BadChallenge,
            ChallengeError::NotAllowed(_) => Self::NotAllowed,
            ChallengeError::NotForUs => Self::CannotProve,
            ChallengeError::WrongProofKind(_) | ChallengeError::BadProof | ChallengeError::NoPublicKey => {
                Self::BadProof
            }
        }
    }
}

impl From<TokenError> for AuthRefusal {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Banned(_) => Self::Banned,
            _ => Self::BadToken,
        }
    }
}

/// The verifier's side: what `manager` answers `peer`'s `request`. Never panics, whatever the input.
pub fn handle_request(manager: &AuthManager, peer: &PeerId, request: AuthRequest) -> AuthResponse {
    let refused = |e: AuthRefusal| AuthResponse::Refused(e);
    match request {
        AuthRequest::GetChallenge => {
            manager.generate_challenge(peer).map_or_else(|e| refused(e.into()), AuthResponse::Challenge)
        }
        AuthRequest::Respond(response) => match manager.verify_response(peer, &response) {
            Ok(grant) => AuthResponse::Granted { level: grant.level, token: Some(grant.token) },
            Err(e) => refused(e.into()),
        },
        AuthRequest::PresentToken(token) => match manager.authenticate_with_token(peer, &token.to_bytes()) {
            Ok(level) => AuthResponse::Granted { level, token: None },
            Err(e) => refused(e.into()),
        },
        AuthRequest::Prove(challenge) => {
            if manager.is_banned(peer) {
                return refused(AuthRefusal::Banned);
            }
            if challenge.verifier != *peer {
                // Answering challenges on behalf of third parties would make us a signing oracle.
                return refused(AuthRefusal::CannotProve);
            }
            match manager.respond_to_challenge(&challenge) {
                Ok(response) => {
                    AuthResponse::Proof { response: Box::new(response), token: manager.credential().map(Box::new) }
                }
                Err(ChallengeError::Expired) => refused(AuthRefusal::BadChallenge),
                Err(_) => refused(AuthRefusal::CannotProve),
            }
        }
    }
}
