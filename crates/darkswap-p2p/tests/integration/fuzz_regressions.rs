//! Replays every input saved under `fuzz/regressions/<target>/` (crashers the fuzzers found, kept
//! after the fix) through the same harness the cargo-fuzz targets run, plus a deterministic sweep
//! of bit flips and truncations of valid messages, so the suite exercises the parsers' edges even
//! where no fuzzer ran.

#[path = "../../../../fuzz/harness.rs"]
mod harness;

use darkswap_p2p::{
    auth::{self, AuthManager, AuthManagerConfig, AuthRequest},
    encryption::{EncryptionConfig, EncryptionManager},
    protocol::codec::encode_frame,
};
use std::path::Path;

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
