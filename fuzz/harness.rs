//! What each fuzz target does with its input. Shared by the cargo-fuzz targets and by the
//! regression test that replays every saved input (crates/darkswap-p2p/tests/integration/fuzz_regressions.rs).
//! Each function must return normally for every input: a panic is a bug.

use darkswap_p2p::{
    auth::{self, AuthManager, AuthManagerConfig, AuthMethod, AuthRequest, AuthResponse},
    encryption::{EncryptionConfig, EncryptionManager, EphemeralPublicKey},
    protocol::codec::decode_frame,
};
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
