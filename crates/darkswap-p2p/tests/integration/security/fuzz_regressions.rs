//! Replays every input saved under `fuzz/regressions/<target>/` (crashers the fuzzers found, kept
//! after the fix) through the same harness the cargo-fuzz targets run, plus a deterministic sweep
//! of bit flips and truncations of valid messages, so the suite exercises the parsers' edges even
//! where no fuzzer ran.

#[path = "../../../../../fuzz/harness.rs"]
mod harness;

use darkswap_p2p::{
    auth::{self, AuthManager, AuthManagerConfig, AuthRequest},
    encryption::{EncryptionConfig, EncryptionManager},
    libp2p::identity::Keypair,
    protocol::{
        codec::encode_frame,
        envelope,
        sealed::{SealRefusal, TradeReply, TradeRequest},
        Message, SyncRequest, SyncResponse, ORDERBOOK_TOPIC,
    },
    signaling::wire,
};
use darkswap_support::types::{AssetId, Order, OrderCancel, OrderDraft, Side, TradeBody, TradeId, TradeMessage};
use std::{path::Path, time::Duration};

fn saved(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    entries.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect()
}

/// Every single-bit flip of the first 64 bytes, every truncation, and a few extensions.
fn mutations(valid: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![valid.to_vec()];
    for i in 0..valid.len().min(64) {
        for bit in 0..8 {
            let mut m = valid.to_vec();
            m[i] ^= 1 << bit;
            out.push(m);
        }
    }
    for len in 0..valid.len() {
        out.push(valid[..len].to_vec());
    }
    for extra in [&[0u8][..], &[0xff; 16][..], &[0x80; 600][..]] {
        out.push([valid, extra].concat());
    }
    out
}

#[test]
fn token_inputs() {
    let m = AuthManager::new(AuthManagerConfig::default()).unwrap();
    let token = m.issue_token(&m.local_peer_id(), auth::AuthorizationLevel::Basic).unwrap();
    let inputs = [saved("token"), mutations(&token.to_bytes())].concat();
    assert!(inputs.len() > 500);
    for input in inputs {
        harness::token(&input);
    }
}

#[test]
fn auth_message_inputs() {
    let (v, p) = (
        AuthManager::new(AuthManagerConfig::default()).unwrap(),
        AuthManager::new(AuthManagerConfig::default()).unwrap(),
    );
    let challenge = v.generate_challenge(&p.local_peer_id()).unwrap();
    let response = p.respond_to_challenge(&challenge).unwrap();
    let frames = [
        encode_frame(&AuthRequest::GetChallenge, 1024).unwrap(),
        encode_frame(&AuthRequest::Prove(challenge), 1024).unwrap(),
        encode_frame(&AuthRequest::Respond(response.clone()), 1024).unwrap(),
        auth::encode(&response),
    ];
    let inputs = [saved("auth_message"), frames.iter().flat_map(|f| mutations(f)).collect()].concat();
    for input in inputs {
        harness::auth_message(&input);
    }
}

#[test]
fn envelope_inputs() {
    let (a, b) = (
        EncryptionManager::new(EncryptionConfig::default()).unwrap(),
        EncryptionManager::new(EncryptionConfig::default()).unwrap(),
    );
    let key = a.generate_ephemeral_key_pair(&b.local_peer_id()).unwrap();
    let kb = b.generate_ephemeral_key_pair(&a.local_peer_id()).unwrap();
    a.perform_key_exchange(&b.local_peer_id(), &kb).unwrap();
    let sealed = a.encrypt(&b.local_peer_id(), b"an order for 1 BTC").unwrap();
    let inputs = [saved("envelope"), mutations(&sealed), mutations(&key.to_bytes())].concat();
    for input in inputs {
        harness::envelope(&input);
    }
}

/// The key and time the harness signs and checks gossip with (see `harness::orderbook`).
fn fuzz_maker() -> (Keypair, u64) {
    (Keypair::ed25519_from_bytes([7; 32]).unwrap(), 1_750_000_000)
}

fn valid_order(maker: &Keypair, now: u64) -> Order {
    let draft = OrderDraft {
        base: AssetId::Btc,
        quote: "rune:840000:3".parse().unwrap(),
        side: Side::Sell,
        amount: 100_000,
        price: 25_000,
        ttl: Duration::from_secs(3600),
        terms: b"utxo".to_vec(),
    };
    Order::from_draft(maker.public().to_peer_id(), &draft, now, 42)
}

#[test]
fn orderbook_inputs() {
    let (key, now) = fuzz_maker();
    let order = valid_order(&key, now);
    let cancel = OrderCancel { order_id: order.id, maker: order.maker, expiry: now + 60 };
    let payloads = [
        postcard::to_extend(&Message::OrderAnnounce(order.clone()), Vec::new()).unwrap(),
        postcard::to_extend(&Message::OrderCancel(cancel), Vec::new()).unwrap(),
    ];
    let sealed = envelope::seal(&key, ORDERBOOK_TOPIC, &Message::OrderAnnounce(order)).unwrap();
    let mut inputs = saved("orderbook");
    inputs.extend(payloads.iter().flat_map(|p| mutations(p)));
    inputs.extend(mutations(&sealed));
    for input in inputs {
        harness::orderbook(&input);
    }
}

#[test]
fn sync_inputs() {
    let (key, now) = fuzz_maker();
    let order = valid_order(&key, now);
    let sealed = envelope::seal(&key, ORDERBOOK_TOPIC, &Message::OrderAnnounce(order.clone())).unwrap();
    let request = SyncRequest { after: Some(order.id), limit: 256, digest: Some(vec![u64::MAX; 64]) };
    let response = SyncResponse { envelopes: vec![sealed.clone().into(), sealed.into()], next: Some(order.id) };
    let mut inputs = saved("sync");
    inputs.extend(mutations(&encode_frame(&request, 1024).unwrap()));
    inputs.extend(mutations(&encode_frame(&response, 1 << 20).unwrap()));
    for input in inputs {
        harness::sync(&input);
    }
}

#[test]
fn trade_inputs() {
    let (key, now) = fuzz_maker();
    let order = valid_order(&key, now);
    let trade_id: TradeId = TradeId([9; 16]);
    let bodies =
        [TradeBody::Intent { amount: 1000 }, TradeBody::PsbtOffer { psbt: vec![0x70; 300] }, TradeBody::Accept];
    let mut inputs = saved("trade");
    for body in bodies {
        let msg = TradeMessage { trade_id, order_id: order.id, body };
        inputs.extend(mutations(&postcard::to_extend(&msg, Vec::new()).unwrap()));
    }
    let request = TradeRequest::Sealed(vec![1; 80]);
    inputs.extend(mutations(&encode_frame(&request, 1024).unwrap()));
    inputs.extend(mutations(&encode_frame(&TradeReply::Refused(SealRefusal::NoSession), 1024).unwrap()));
    for input in inputs {
        harness::trade(&input);
    }
}

#[test]
fn signaling_inputs() {
    let key = Keypair::generate_ed25519();
    let register = wire::sign_register(&key, "00112233445566778899aabbccddeeff").unwrap();
    let frames = [
        wire::encode_client(&wire::ClientMessage::Register(register)),
        r#"{"type":"offer","to":"12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN","connection_id":"c1","sdp":"v=0"}"#.to_owned(),
        r#"{"type":"challenge","version":1,"nonce":"00ff"}"#.to_owned(),
        r#"{"type":"error","code":"rate_limited","message":"slow down"}"#.to_owned(),
    ];
    let mut inputs = saved("signaling");
    inputs.extend(frames.iter().flat_map(|f| mutations(f.as_bytes())));
    for input in inputs {
        harness::signaling(&input);
    }
}

#[test]
fn multistream_inputs() {
    let frame = |m: &[u8]| [&[(m.len() + 1) as u8][..], m, b"\n"].concat();
    let negotiation = [frame(b"/multistream/1.0.0"), frame(b"na"), frame(b"/darkswap/sync/1.0.0")].concat();
    assert_eq!(darkswap_p2p::metrics::sniff_protocol(&negotiation).as_deref(), Some("/darkswap/sync/1.0.0"));
    let inputs = [saved("multistream"), mutations(&negotiation)].concat();
    for input in inputs {
        harness::multistream(&input);
    }
}
