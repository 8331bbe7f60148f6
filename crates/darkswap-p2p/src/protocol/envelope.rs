//! The signed gossip envelope.
//!
//! ```text
//! offset  size  field
//! 0       1     version (= WIRE_VERSION)
//! 1       32    author: ed25519 public key of the signer
//! 33      64    signature over "darkswap/gossip/v1" || u16be(len(topic)) || topic || payload
//! 97      ..    payload: postcard(Message)
//! ```
//!
//! The signature covers the topic, so a message cannot be replayed on another topic. Gossipsub
//! runs in anonymous mode and this envelope carries authorship instead: gossipsub would verify the
//! signature of every duplicate copy before deduplicating, while the validator verifies each unique
//! message once (measured: signature checks on duplicates cost a third of the CPU at 50 nodes).

use super::{limits::MAX_GOSSIP_MESSAGE, reject::RejectReason, Message, WIRE_VERSION};
use libp2p::identity::{ed25519, Keypair, PeerId, PublicKey};

const DOMAIN: &[u8] = b"darkswap/gossip/v1";
const HEADER: usize = 1 + 32 + 64;

/// A decoded, signature-checked gossip envelope.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The signer, derived from the author key.
    pub author: PeerId,
    /// The payload.
    pub message: Message,
}

/// Why an envelope could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Only ed25519 identities can author DarkSwap gossip.
    #[error("gossip authors must use ed25519 identity keys")]
    UnsupportedKey,
    /// The encoded message exceeds [`MAX_GOSSIP_MESSAGE`].
    #[error("encoded message is {0} bytes, above the {MAX_GOSSIP_MESSAGE}-byte cap")]
    TooLarge(usize),
    /// Encoding failed.
    #[error("encoding failed: {0}")]
    Encode(#[from] postcard::Error),
}

fn signed_bytes(topic: &str, payload: &[u8]) -> Vec<u8> {
    let topic = topic.as_bytes();
    let mut buf = Vec::with_capacity(DOMAIN.len() + 2 + topic.len() + payload.len());
    buf.extend_from_slice(DOMAIN);
    buf.extend_from_slice(&(topic.len().min(u16::MAX as usize) as u16).to_be_bytes());
    buf.extend_from_slice(topic);
    buf.extend_from_slice(payload);
    buf
}

/// Encodes and signs `message` for `topic` with `keypair`.
pub fn seal(keypair: &Keypair, topic: &str, message: &Message) -> Result<Vec<u8>, EnvelopeError> {
    seal_payload(keypair, topic, &postcard::to_allocvec(message)?)
}

/// Signs already-encoded payload bytes for `topic`. [`seal`] is this after encoding a [`Message`];
/// tools and tests use it to produce envelopes around payloads of their own.
pub fn seal_payload(keypair: &Keypair, topic: &str, payload: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let ed = keypair.clone().try_into_ed25519().map_err(|_| EnvelopeError::UnsupportedKey)?;
    let len = HEADER + payload.len();
    if len > MAX_GOSSIP_MESSAGE {
        return Err(EnvelopeError::TooLarge(len));
    }
    let signature = ed.sign(&signed_bytes(topic, payload));
    let mut out = Vec::with_capacity(len);
    out.push(WIRE_VERSION);
    out.extend_from_slice(&ed.public().to_bytes());
    out.extend_from_slice(&signature);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Checks version, size and signature of `bytes` received on `topic`, then decodes the payload.
///
/// This checks the envelope only; [`super::validate`] checks what the message says.
pub fn open(topic: &str, bytes: &[u8]) -> Result<Envelope, RejectReason> {
    if bytes.len() > MAX_GOSSIP_MESSAGE {
        return Err(RejectReason::Oversized);
    }
    let Some(&version) = bytes.first() else {
        return Err(RejectReason::Undecodable);
    };
    if version != WIRE_VERSION {
        return Err(RejectReason::UnknownVersion);
    }
    if bytes.len() < HEADER {
        return Err(RejectReason::Undecodable);
    }
    let (key, author) = author_key(&bytes[1..33])?;
    let payload = &bytes[HEADER..];
    if !key.verify(&signed_bytes(topic, payload), &bytes[33..HEADER]) {
        return Err(RejectReason::BadSignature);
    }
    let message: Message = postcard::from_bytes(payload).map_err(|_| RejectReason::Undecodable)?;
    Ok(Envelope { author, message })
}

/// Authors remembered per thread (decompressed key and peer id), at most this many.
const AUTHOR_CACHE: usize = 1024;

std::thread_local! {
    static AUTHORS: std::cell::RefCell<std::collections::HashMap<[u8; 32], (ed25519::PublicKey, PeerId)>> =
        std::cell::RefCell::new(std::collections::HashMap::with_capacity(AUTHOR_CACHE));
}

/// The author's key and peer id. Decompressing the key is a square root in the field, a sizeable
/// part of a signature check (measured at 50 nodes), and a book hears the same makers again and
/// again, so each thread keeps up to [`AUTHOR_CACHE`] authors it decoded, starting afresh when
/// full. Only valid keys are kept; a signature is still checked for every message.
fn author_key(raw: &[u8]) -> Result<(ed25519::PublicKey, PeerId), RejectReason> {
    let raw: [u8; 32] = raw.try_into().map_err(|_| RejectReason::Undecodable)?;
    if let Some(hit) = AUTHORS.with_borrow(|cache| cache.get(&raw).cloned()) {
        return Ok(hit);
    }
    let key = ed25519::PublicKey::try_from_bytes(&raw).map_err(|_| RejectReason::BadSignature)?;
    let author = PeerId::from_public_key(&PublicKey::from(key.clone()));
    AUTHORS.with_borrow_mut(|cache| {
        if cache.len() >= AUTHOR_CACHE {
            // Bounded, and a full cache only costs decompressions until it fills again.
            cache.clear();
        }
        cache.insert(raw, (key.clone(), author));
    });
    Ok((key, author))
}

/// The order id an envelope claims to announce, read without checking the signature.
///
/// Only for skipping orders already held (sync pages repeat what a node knows); never trust it
/// for anything else.
pub fn claimed_order_id(bytes: &[u8]) -> Option<darkswap_support::types::OrderId> {
    match postcard::from_bytes::<Message>(bytes.get(HEADER..)?) {
        Ok(Message::OrderAnnounce(order)) => Some(order.id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ORDERBOOK_TOPIC;
    use darkswap_support::types::{OrderCancel, OrderId};

    fn cancel(maker: PeerId) -> Message {
        Message::OrderCancel(OrderCancel { order_id: OrderId([7; 16]), maker, expiry: 9 })
    }

    #[test]
    fn seal_then_open() {
        let key = Keypair::generate_ed25519();
        let bytes = seal(&key, ORDERBOOK_TOPIC, &cancel(key.public().to_peer_id())).unwrap();
        let env = open(ORDERBOOK_TOPIC, &bytes).unwrap();
        assert_eq!(env.author, key.public().to_peer_id());
        assert_eq!(env.message, cancel(key.public().to_peer_id()));
    }

    #[test]
    fn tampering_topic_version_or_bytes_is_rejected() {
        let key = Keypair::generate_ed25519();
        let bytes = seal(&key, ORDERBOOK_TOPIC, &cancel(key.public().to_peer_id())).unwrap();
        assert_eq!(open("other", &bytes).unwrap_err(), RejectReason::BadSignature);
        let mut v = bytes.clone();
        v[0] = 9;
        assert_eq!(open(ORDERBOOK_TOPIC, &v).unwrap_err(), RejectReason::UnknownVersion);
        let mut t = bytes.clone();
        *t.last_mut().unwrap() ^= 1;
        assert_eq!(open(ORDERBOOK_TOPIC, &t).unwrap_err(), RejectReason::BadSignature);
        assert_eq!(open(ORDERBOOK_TOPIC, &bytes[..50]).unwrap_err(), RejectReason::Undecodable);
        assert_eq!(open(ORDERBOOK_TOPIC, &[]).unwrap_err(), RejectReason::Undecodable);
        let big = vec![1u8; MAX_GOSSIP_MESSAGE + 1];
        assert_eq!(open(ORDERBOOK_TOPIC, &big).unwrap_err(), RejectReason::Oversized);
    }
}
