//! The signaling protocol, version 1: JSON text frames over a WebSocket.
//!
//! ```text
//! server -> client  {"type":"challenge","version":1,"nonce":"<64 hex>"}
//! client -> server  {"type":"register","version":1,"peer_id":"12D3…","public_key":"<hex protobuf>",
//!                    "signature":"<hex>"}
//! server -> client  {"type":"registered","peer_id":"12D3…"}
//! client -> server  {"type":"offer","to":"12D3…","connection_id":"…","sdp":"v=0…"}
//! server -> client  {"type":"offer","from":"12D3…","to":"12D3…","connection_id":"…","sdp":"v=0…"}
//!                   (also "answer"; "ice_candidate" with "candidate"; "bye" with an optional "reason")
//! server -> client  {"type":"error","code":"unknown_peer","message":"…","connection_id":"…"}
//! ```
//!
//! The signature is the peer's libp2p identity key over [`REGISTER_DOMAIN`] followed by the 32
//! nonce bytes; the server checks it against the key inside the claimed peer id. The server
//! writes `from` itself, so a client can only speak as the id it proved.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// The protocol version spoken here.
pub const SIGNALING_VERSION: u32 = 1;
/// Largest frame either side accepts (SDP with many candidates stays far below).
pub const MAX_SIGNALING_MESSAGE: usize = 64 * 1024;
/// Domain separation for the registration signature.
pub const REGISTER_DOMAIN: &[u8] = b"darkswap-signaling/v1/register:";
/// Longest accepted connection id.
pub const MAX_CONNECTION_ID: usize = 64;

/// An ICE candidate as browsers write it (`RTCIceCandidateInit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` line.
    pub candidate: String,
    /// Media stream id the candidate belongs to.
    #[serde(default, rename = "sdpMid", skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// Index of the m-line the candidate belongs to.
    #[serde(default, rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
    /// ICE username fragment.
    #[serde(default, rename = "usernameFragment", skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// What a message between two peers carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// SDP offer starting connection `connection_id`.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// SDP answer to an offer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    IceCandidate {
        /// The candidate.
        candidate: IceCandidate,
    },
    /// The sender gives up on (or closes) the connection.
    Bye {
        /// Why, for logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// A message routed from one peer to another through the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    /// The sender; written by the server (whatever a client puts here is replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PeerId>,
    /// The recipient.
    pub to: PeerId,
    /// Chosen by the offerer; ties offer, answer, candidates and bye of one connection together.
    pub connection_id: String,
    /// Offer, answer, candidate or bye.
    #[serde(flatten)]
    pub payload: Payload,
}

/// Proof that a client holds the key of the peer id it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// Protocol version of the client.
    pub version: u32,
    /// The claimed id.
    pub peer_id: PeerId,
    /// The id's public key, protobuf-encoded, hex.
    pub public_key: String,
    /// Signature over [`REGISTER_DOMAIN`] ‖ nonce, hex.
    pub signature: String,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Registration answering the challenge.
    Register(Register),
    /// A message for another peer.
    Routed(Routed),
}

/// Why the server answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON, or not a text frame.
    #[error("invalid JSON")]
    InvalidJson,
    /// The `type` is not one this version knows.
    #[error("unknown message type")]
    UnknownType,
    /// A known type with missing or malformed fields.
    #[error("malformed message")]
    InvalidMessage,
    /// The client speaks another protocol version.
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    /// Routing before registering.
    #[error("not registered")]
    NotRegistered,
    /// The registration signature does not match the claimed peer id.
    #[error("bad proof of peer id")]
    BadProof,
    /// No client with that peer id is connected.
    #[error("unknown peer")]
    UnknownPeer,
    /// The recipient cannot take more messages right now.
    #[error("peer busy")]
    PeerBusy,
    /// The client sends faster than its rate limit.
    #[error("rate limited")]
    RateLimited,
    /// The server holds its maximum number of clients.
    #[error("server full")]
    ServerFull,
    /// The frame exceeds [`MAX_SIGNALING_MESSAGE`].
    #[error("message too large")]
    TooLarge,
    /// A newer connection registered the same peer id.
    #[error("replaced by a newer connection")]
    Replaced,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame on every connection.
    Challenge {
        /// Highest protocol version the server speaks.
        version: u32,
        /// 32 random bytes, hex.
        nonce: String,
    },
    /// Registration accepted.
    Registered {
        /// The proven id.
        peer_id: PeerId,
    },
    /// Something the client sent was refused.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
        /// The connection the refused frame was about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_id: Option<String>,
    },
    /// A message from another peer (tagged by its payload's `type`).
    #[serde(untagged)]
    Routed(Routed),
}

/// Why a client frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct DecodeError {
    /// The error code to answer with.
    pub code: ErrorCode,
    /// What was wrong.
    pub detail: String,
}

const ROUTED_TYPES: [&str; 4] = ["offer", "answer", "ice_candidate", "bye"];

/// Reads a client frame, telling invalid JSON, unknown types and malformed messages apart.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    let err = |code, detail: String| DecodeError { code, detail };
    if text.len() > MAX_SIGNALING_MESSAGE {
        return Err(err(ErrorCode::TooLarge, format!("{} bytes", text.len())));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(ErrorCode::InvalidJson, e.to_string()))?;
    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
    if kind == "register" {
        let reg: Register = serde_json::from_value(value).map_err(|e| err(ErrorCode::InvalidMessage, e.to_string()))?;
        if reg.version != SIGNALING_VERSION {
            return Err(err(ErrorCode::UnsupportedVersion, format!("version {}", reg.version)));
        }
        return Ok(ClientMessage::Register(reg));
    }
    if !ROUTED_TYPES.contains(&kind.as_str()) {
        return Err(err(ErrorCode::UnknownType, format!("type {kind:?}")));
    }
    let routed: Routed = serde_json::from_value(value).map_err(|e| err(ErrorCode::InvalidMessage, e.to_string()))?;
    if routed.connection_id.is_empty() || routed.connection_id.len() > MAX_CONNECTION_ID {
        return Err(err(ErrorCode::InvalidMessage, "connection_id must be 1-64 bytes".into()));
    }
    Ok(ClientMessage::Routed(routed))
}

/// Writes a client frame.
pub fn encode_client(msg: &ClientMessage) -> String {
    let value = match msg {
        ClientMessage::Register(r) => {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["type"] = "register".into();
            v
        }
        ClientMessage::Routed(r) => serde_json::to_value(r).unwrap_or_default(),
    };
    value.to_string()
}

/// Writes a server frame.
pub fn encode_server(msg: &ServerMessage) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

/// Reads a server frame.
pub fn decode_server(text: &str) -> Result<ServerMessage, serde_json::Error> {
    serde_json::from_str(text)
}

/// The bytes a client signs to register: domain ‖ nonce.
pub fn register_transcript(nonce: &[u8]) -> Vec<u8> {
    [REGISTER_DOMAIN, nonce].concat()
}

/// Builds the registration answering `nonce_hex` with `key`.
pub fn sign_register(key: &libp2p::identity::Keypair, nonce_hex: &str) -> Result<Register, DecodeError> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| DecodeError { code: ErrorCode::InvalidMessage, detail: format!("challenge nonce: {e}") })?;
    let signature = key
        .sign(&register_transcript(&nonce))
        .map_err(|e| DecodeError { code: ErrorCode::BadProof, detail: e.to_string() })?;
    Ok(Register {
        version: SIGNALING_VERSION,
        peer_id: key.public().to_peer_id(),
        public_key: hex::encode(key.public().encode_protobuf()),
        signature: hex::encode(signature),
    })
}

/// Checks a registration against the nonce the server sent.
pub fn verify_register(reg: &Register, nonce: &[u8]) -> Result<(), DecodeError> {
    let bad = |detail: &str| DecodeError { code: ErrorCode::BadProof, detail: detail.to_owned() };
    let key_bytes = hex::decode(&reg.public_key).map_err(|_| bad("public_key is not hex"))?;
    let key =
        libp2p::identity::PublicKey::try_decode_protobuf(&key_bytes).map_err(|_| bad("public_key undecodable"))?;
    if key.to_peer_id() != reg.peer_id {
        return Err(bad("public_key does not belong to peer_id"));
    }
    let sig = hex::decode(&reg.signature).map_err(|_| bad("signature is not hex"))?;
    if !key.verify(&register_transcript(nonce), &sig) {
        return Err(bad("signature does not verify"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let nonce = [7u8; 32];
        let reg = sign_register(&key, &hex::encode(nonce)).unwrap();
        let text = encode_client(&ClientMessage::Register(reg.clone()));
        assert_eq!(decode_client(&text).unwrap(), ClientMessage::Register(reg.clone()));
        verify_register(&reg, &nonce).unwrap();
        assert_eq!(verify_register(&reg, &[8u8; 32]).unwrap_err().code, ErrorCode::BadProof);
        let stolen = Register { peer_id: PeerId::random(), ..reg };
        assert_eq!(verify_register(&stolen, &nonce).unwrap_err().code, ErrorCode::BadProof);

        let routed = Routed {
            from: None,
            to: PeerId::random(),
            connection_id: "c1".into(),
            payload: Payload::IceCandidate {
                candidate: IceCandidate {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                },
            },
        };
        let text = encode_client(&ClientMessage::Routed(routed.clone()));
        assert!(text.contains("\"type\":\"ice_candidate\""), "{text}");
        assert_eq!(decode_client(&text).unwrap(), ClientMessage::Routed(routed.clone()));
        let fwd = ServerMessage::Routed(Routed { from: Some(key.public().to_peer_id()), ..routed });
        assert_eq!(decode_server(&encode_server(&fwd)).unwrap(), fwd);
        let e = ServerMessage::Error { code: ErrorCode::UnknownPeer, message: "x".into(), connection_id: None };
        assert_eq!(decode_server(&encode_server(&e)).unwrap(), e);

        assert_eq!(decode_client("{").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(decode_client(r#"{"type":"dance"}"#).unwrap_err().code, ErrorCode::UnknownType);
        assert_eq!(decode_client(r#"{"type":"offer","to":"x"}"#).unwrap_err().code, ErrorCode::InvalidMessage);
        let big = "x".repeat(MAX_SIGNALING_MESSAGE + 1);
        assert_eq!(decode_client(&big).unwrap_err().code, ErrorCode::TooLarge);
    }
}
