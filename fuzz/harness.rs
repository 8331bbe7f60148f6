//! What each fuzz target does with its input. Shared by the cargo-fuzz targets and by the
//! regression test that replays every saved input (crates/darkswap-p2p/tests/integration/fuzz_regressions.rs).
//! Each function must return normally for every input: a panic is a bug.

use darkswap_p2p::{
    auth::{self, AuthManager, AuthManagerConfig, AuthMethod, AuthRequest, AuthResponse},
    encryption::{EncryptionConfig, EncryptionManager, EphemeralPublicKey},
    order_book::{OrderBook, OrderBookLimits},
    protocol::{
        self,
        codec::{decode_body, decode_frame},
        envelope, limits,
        sealed::{TradeReply, TradeRequest},
        validate, Message, SyncRequest, SyncResponse, ORDERBOOK_TOPIC, TRADE_TOPIC,
    },
    signaling::wire,
    trade::{TradeAck, TradeSessions},
};
use darkswap_support::types::TradeMessage;
use std::sync::OnceLock;

fn auth_managers() -> &'static [(AuthManager, AuthManager); 3] {
    static M: OnceLock<[(AuthManager, AuthManager); 3]> = OnceLock::new();
    M.get_or_init(|| {
        [AuthMethod::SharedKey, AuthMethod::ChallengeResponse, AuthMethod::PublicKey].map(|auth_method| {
            let config = AuthManagerConfig { auth_method, shared_key: Some(b"fuzz".to_vec()), ..Default::default() };
            (AuthManager::new(config.clone()).unwrap(), AuthManager::new(config).unwrap())
        })
    })
}

/// Token bytes from the wire, checked by verifiers of every method.
pub fn token(data: &[u8]) {
    for (verifier, prover) in auth_managers() {
        let _ = verifier.validate_token(&prover.local_peer_id(), data);
        let _ = verifier.authenticate_with_token(&prover.local_peer_id(), data);
    }
    if let Ok(t) = auth::AuthToken::from_bytes(data) {
        // Whatever parses re-encodes to something that parses to the same token.
        assert_eq!(auth::AuthToken::from_bytes(&t.to_bytes()).as_ref(), Ok(&t));
    }
}

/// Auth protocol frames in both directions, fed to the verifier's logic; also raw challenges.
pub fn auth_message(data: &[u8]) {
    let max = auth::MAX_AUTH_MESSAGE_BYTES;
    for (verifier, prover) in auth_managers() {
        let peer = prover.local_peer_id();
        if let Ok(mut request) = decode_frame::<AuthRequest>(data, max) {
            if let AuthRequest::Respond(r) = &mut request {
                // Answer a live challenge, so that the fuzzed proof reaches MAC/signature checking.
                if let Ok(live) = verifier.generate_challenge(&peer) {
                    r.challenge = live;
                }
            }
            let _ = auth::handle_request(verifier, &peer, request);
            verifier.revoke(&peer);
        }
        match decode_frame::<AuthResponse>(data, max) {
            Ok(AuthResponse::Challenge(c)) => {
                let _ = prover.respond_to_challenge(&c);
            }
            Ok(AuthResponse::Proof { response, token }) => {
                let _ = verifier.verify_response(&peer, &response);
                if let Some(t) = token {
                    let _ = verifier.check_token(&peer, &t);
                }
            }
            _ => {}
        }
        if let Ok(response) = auth::decode::<auth::ChallengeResponse>(data, max) {
            let _ = verifier.verify_response(&peer, &response);
        }
    }
}

fn sessions() -> &'static (EncryptionManager, EncryptionManager) {
    static S: OnceLock<(EncryptionManager, EncryptionManager)> = OnceLock::new();
    S.get_or_init(|| {
        let a = EncryptionManager::new(EncryptionConfig::default()).unwrap();
        let b = EncryptionManager::new(EncryptionConfig::default()).unwrap();
        let ka = a.generate_ephemeral_key_pair(&b.local_peer_id()).unwrap();
        let kb = b.generate_ephemeral_key_pair(&a.local_peer_id()).unwrap();
        a.perform_key_exchange(&b.local_peer_id(), &kb).unwrap();
        b.perform_key_exchange(&a.local_peer_id(), &ka).unwrap();
        (a, b)
    })
}

/// Ciphertext envelopes and key-exchange messages from the wire.
pub fn envelope(data: &[u8]) {
    let (alice, bob) = sessions();
    let _ = bob.decrypt(&alice.local_peer_id(), data);
    // The trade path opens envelopes in place.
    let _ = bob.decrypt_in_place(&alice.local_peer_id(), &mut data.to_vec());
    // Half the time, a genuine envelope with the input spliced in after the header.
    if data.first().is_some_and(|b| b & 1 == 1) {
        if let Ok(mut sealed) = alice.encrypt(&bob.local_peer_id(), &data[1..]) {
            let at = usize::from(data[0]) % sealed.len();
            sealed[at] ^= data.get(1).copied().unwrap_or(1) | 1;
            assert!(bob.decrypt(&alice.local_peer_id(), &sealed).is_err(), "a flipped bit must not pass");
        }
    }
    if let Some(key) = EphemeralPublicKey::from_bytes(data).ok().filter(|k| k.sender != alice.local_peer_id()) {
        let _ = bob.generate_ephemeral_key_pair(&key.sender);
        let _ = bob.perform_key_exchange(&key.sender, &key);
        bob.remove_session(&key.sender);
    }
}

/// A fixed time for the decoders' expiry checks, so a saved input replays the same way.
const NOW: u64 = 1_750_000_000;

fn signer() -> &'static libp2p::identity::Keypair {
    static K: OnceLock<libp2p::identity::Keypair> = OnceLock::new();
    K.get_or_init(|| libp2p::identity::Keypair::ed25519_from_bytes([7; 32]).unwrap())
}

/// What a node does with gossip that passed its checks (`apply_to_book` in the network task).
fn apply(book: &mut OrderBook, env: &protocol::Envelope, bytes: &[u8]) {
    match &env.message {
        Message::OrderAnnounce(order) => {
            let _ = book.insert(order.clone(), bytes.into());
        }
        Message::OrderCancel(c) => {
            book.withdraw(c.order_id, c.maker, c.expiry);
        }
        Message::TradeSettled(s) => {
            book.withdraw(s.order_id, s.maker, s.expiry);
        }
        Message::Trade(_) => {}
    }
    book.expire(NOW);
}

/// Checks and applies one received gossip envelope, as the network task does.
fn receive_gossip(book: &mut OrderBook, topic: &str, bytes: &[u8]) {
    let _ = envelope::claimed_order_id(bytes);
    if let Ok(env) = envelope::open(topic, bytes) {
        if validate::check_envelope(topic, &env, NOW).is_ok() {
            apply(book, &env, bytes);
        }
    }
}

/// Order-book gossip: the input as a received envelope on both topics, and as the payload of a
/// validly signed envelope, so that it gets past the signature to the decoder and the rules.
pub fn orderbook(data: &[u8]) {
    let mut book = OrderBook::new(OrderBookLimits { max_orders: 64, max_orders_per_maker: 8 });
    for topic in [ORDERBOOK_TOPIC, TRADE_TOPIC] {
        receive_gossip(&mut book, topic, data);
        if let Ok(signed) = envelope::seal_payload(signer(), topic, data) {
            receive_gossip(&mut book, topic, &signed);
        }
    }
    let (page, _) = book.page(None, limits::SYNC_PAGE_MAX, NOW);
    assert!(page.len() <= book.len(), "a page holds only what the book holds");
}

/// Order-book sync: requests served from a book, responses checked envelope by envelope.
pub fn sync(data: &[u8]) {
    let mut book = OrderBook::new(OrderBookLimits { max_orders: 64, max_orders_per_maker: 8 });
    if let Ok(request) = decode_frame::<SyncRequest>(data, limits::MAX_SYNC_REQUEST) {
        let mask = request.digest.as_deref().map_or(u64::MAX, |d| book.differing(d, NOW));
        let (page, _) = book.page_in(request.after, request.limit.min(limits::SYNC_PAGE_MAX), NOW, mask);
        assert!(page.is_empty());
    }
    if let Ok(response) = decode_frame::<SyncResponse>(data, limits::MAX_SYNC_RESPONSE) {
        for envelope in response.envelopes.iter().take(usize::from(limits::SYNC_PAGE_MAX)) {
            receive_gossip(&mut book, ORDERBOOK_TOPIC, envelope);
        }
        let (_, next) = book.page(response.next, limits::SYNC_PAGE_MAX, NOW);
        if let (Some(after), Some(next)) = (response.next, next) {
            assert!(next > after, "pages move forward");
        }
    }
}

/// Trade protocol: framed requests and replies, and the decrypted plaintext of a sealed one
/// (a trade message or an acknowledgement) driving the trade state machine.
pub fn trade(data: &[u8]) {
    let _ = decode_frame::<TradeRequest>(data, limits::MAX_TRADE_REQUEST);
    let _ = decode_frame::<TradeReply>(data, limits::MAX_TRADE_REPLY);
    let _ = decode_body::<TradeAck>(data);
    let (alice, bob) = sessions();
    let Ok(sealed) = alice.encrypt(&bob.local_peer_id(), data) else { return };
    let Ok(plain) = bob.decrypt(&alice.local_peer_id(), &sealed) else { return };
    assert_eq!(plain, data, "a sealed message opens to what was sealed");
    if let Ok(message) = decode_body::<TradeMessage>(&plain) {
        let book = OrderBook::new(OrderBookLimits::default());
        let mut trades = TradeSessions::new(bob.local_peer_id(), 8);
        let alice_id = alice.local_peer_id();
        if trades.on_inbound(alice_id, &message, &book, NOW).is_ok() {
            assert!(trades.get(&message.trade_id).is_some(), "an accepted message leaves a session");
        }
        let _ = trades.check_outbound(alice_id, &message, &book);
        trades.prune(NOW + 86_400 * 365);
    }
}

/// Signaling frames (JSON over WebSocket): what the server reads from clients and what clients
/// read from the server.
pub fn signaling(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(msg) = wire::decode_client(&text) {
        // What the server accepted, it can forward: encoding and decoding again gives it back.
        let again = wire::decode_client(&wire::encode_client(&msg));
        assert!(again.is_ok(), "re-encoded client frame refused: {again:?}");
    }
    if let Ok(msg) = wire::decode_server(&text) {
        let _ = wire::decode_server(&wire::encode_server(&msg));
    }
}

/// The multistream-select negotiation the per-protocol byte counters read on every substream.
pub fn multistream(data: &[u8]) {
    if let Some(name) = darkswap_p2p::metrics::sniff_protocol(data) {
        assert!(name.starts_with('/') && name.len() <= 140);
    }
}
