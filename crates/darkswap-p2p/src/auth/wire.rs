//! Wire formats of authentication: challenges, responses and tokens.
//!
//! Every format is `version byte || postcard(value)` with a size cap, so a token pasted from a
//! config file and a message read off a stream are parsed by the same bounded code. What is signed
//! or MACed is always a domain-separated transcript (see [`challenge_transcript`] and
//! [`token_transcript`]), never the encoding alone, so a proof for one purpose is useless for
//! another.

use super::{AuthMethod, AuthorizationLevel};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Version byte of every authentication format.
pub const AUTH_VERSION: u8 = 1;
/// Largest encoded token accepted.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Largest encoded challenge or response accepted.
pub const MAX_AUTH_MESSAGE_BYTES: usize = 1024;

const CHALLENGE_DOMAIN: &[u8] = b"darkswap/auth/v1/challenge";
const TOKEN_DOMAIN: &[u8] = b"darkswap/auth/v1/token";

/// Why bytes did not parse as an authentication message or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Empty input.
    #[error("empty input")]
    Empty,
    /// Larger than the cap.
    #[error("larger than {0} bytes")]
    Oversized(usize),
    /// A version this node does not speak.
    #[error("unknown version {0}")]
    UnknownVersion(u8),
    /// The body does not match the schema.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// A fresh, single-use challenge a verifier sends to the peer that must prove itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 32 random bytes; also the challenge's id.
    pub nonce: [u8; 32],
    /// The peer that issued the challenge and will check the response.
    pub verifier: PeerId,
    /// The peer that must answer it.
    pub prover: PeerId,
    /// How the prover must answer.
    pub method: AuthMethod,
    /// Unix time (seconds) after which the verifier refuses the response.
    pub expires_at: u64,
}

/// The prover's answer to a [`Challenge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// The challenge answered.
    pub challenge: Challenge,
    /// The proof over the challenge's transcript.
    pub proof: Proof,
}

/// A proof of knowledge: of the shared key, or of the prover's identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// HMAC-SHA256 under the shared key.
    Mac([u8; 32]),
    /// Signature by the prover's libp2p identity key.
    Signature(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// A bearer credential: `peer` holds `level` until `expires_at`, vouched for by `issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthToken {
    /// The peer the token is bound to; nobody else can use it.
    pub peer: PeerId,
    /// The level it grants.
    pub level: AuthorizationLevel,
    /// Unix time (seconds) it was issued.
    pub issued_at: u64,
    /// Unix time (seconds) after which it is refused.
    pub expires_at: u64,
    /// The node that issued it.
    pub issuer: PeerId,
    /// 16 random bytes, so two tokens never coincide.
    pub id: [u8; 16],
    /// The MAC or signature over [`token_transcript`].
    pub seal: Proof,
}

/// The bytes a challenge proof covers: domain, both peer ids, method, nonce, expiry.
pub fn challenge_transcript(c: &Challenge) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHALLENGE_DOMAIN.len() + 128);
    out.extend_from_slice(CHALLENGE_DOMAIN);
    push_peer(&mut out, &c.verifier);
    push_peer(&mut out, &c.prover);
    out.push(c.method as u8);
    out.extend_from_slice(&c.nonce);
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    out
}

/// The bytes a token's seal covers: domain and every field but the seal.
pub fn token_transcript(t: &AuthToken) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOKEN_DOMAIN.len() + 128);
    out.extend_from_slice(TOKEN_DOMAIN);
    push_peer(&mut out, &t.peer);
    out.push(t.level as u8);
    out.extend_from_slice(&t.issued_at.to_be_bytes());
    out.extend_from_slice(&t.expires_at.to_be_bytes());
    push_peer(&mut out, &t.issuer);
    out.extend_from_slice(&t.id);
    out
}

fn push_peer(out: &mut Vec<u8>, peer: &PeerId) {
    let bytes = peer.to_bytes();
    // Length-prefixed so that two different id pairs can never produce the same transcript.
    out.push(bytes.len() as u8);
    out.extend_from_slice(&bytes);
}

/// Encodes any authentication value as `version || postcard(value)`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Postcard cannot fail on these plain structs; an empty body would be refused on decode.
    postcard::to_extend(value, vec![AUTH_VERSION]).unwrap_or_default()
}

/// Decodes bytes produced by [`encode`], refusing anything above `max` bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    decode_versioned(bytes, AUTH_VERSION, max)
}

/// Decodes `version || postcard(value)` (no trailing bytes), refusing anything above `max` bytes or
/// of another version. Shared by the auth formats and the signed ephemeral key.
pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    version: u8,
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::Oversized(max));
    }
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&v, body)) if v == version => {
            let (value, rest) = postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
            if !rest.is_empty() {
                return Err(DecodeError::Malformed(format!("{} trailing bytes", rest.len())));
            }
            Ok(value)
        }
        Some((&v, _)) => Err(DecodeError::UnknownVersion(v)),
    }
}

impl AuthToken {
    /// The token's wire form, to hand to the peer it is bound to.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses a token (this checks the format only; [`AuthManager::validate_token`] checks the seal).
    ///
    /// [`AuthManager::validate_token`]: super::AuthManager::validate_token
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_TOKEN_BYTES)
    }
}

impl AsRef<AuthToken> for AuthToken {
    fn as_ref(&self) -> &AuthToken {
        self
    }
}
