//! End-to-end encryption: happy paths for both AEADs, and the bad-input table.

use darkswap_p2p::encryption::{
    DecryptError, EncryptError, EncryptionAlgorithm, EncryptionConfig, EncryptionManager, EnvelopeError,
    KeyExchangeError,
};
use std::time::Duration;

fn config(alg: EncryptionAlgorithm) -> EncryptionConfig {
    EncryptionConfig { encryption_algorithm: alg, ..Default::default() }
}

fn pair(a: EncryptionAlgorithm, b: EncryptionAlgorithm) -> (EncryptionManager, EncryptionManager) {
    let alice = EncryptionManager::new(config(a)).unwrap();
    let bob = EncryptionManager::new(config(b)).unwrap();
    connect(&alice, &bob);
    (alice, bob)
}

fn connect(alice: &EncryptionManager, bob: &EncryptionManager) {
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let ka = alice.generate_ephemeral_key_pair(&b).unwrap();
    let kb = bob.generate_ephemeral_key_pair(&a).unwrap();
    // Keys travel on the wire: check they survive it.
    let kb = darkswap_p2p::encryption::EphemeralPublicKey::from_bytes(&kb.to_bytes()).unwrap();
    alice.perform_key_exchange(&b, &kb).unwrap();
    bob.perform_key_exchange(&a, &ka).unwrap();
}

#[test]
fn both_algorithms_both_directions_and_mixed() {
    use EncryptionAlgorithm::*;
    for (x, y) in [(AesGcm256, AesGcm256), (ChaCha20Poly1305, ChaCha20Poly1305), (AesGcm256, ChaCha20Poly1305)] {
        let (alice, bob) = pair(x, y);
        let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
        for len in [0usize, 1, 64, 1024, 16 * 1024] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let c = alice.encrypt(&b, &msg).unwrap();
            assert_eq!(c.len(), 14 + len + 16);
            assert_eq!(bob.decrypt(&a, &c).unwrap(), msg);
            let c = bob.encrypt(&a, &msg).unwrap();
            assert_eq!(alice.decrypt(&b, &c).unwrap(), msg);
        }
    }
}

#[test]
fn reordering_within_the_window_is_fine() {
    let (alice, bob) = pair(EncryptionAlgorithm::AesGcm256, EncryptionAlgorithm::AesGcm256);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let msgs: Vec<_> = (0..200u32).map(|i| alice.encrypt(&b, &i.to_be_bytes()).unwrap()).collect();
    for i in (100..200).rev() {
        assert_eq!(bob.decrypt(&a, &msgs[i]).unwrap(), (i as u32).to_be_bytes());
    }
    assert_eq!(bob.decrypt(&a, &msgs[72]).unwrap(), 72u32.to_be_bytes(), "127 behind: inside");
    assert_eq!(bob.decrypt(&a, &msgs[71]), Err(DecryptError::TooOld), "128 behind: outside");
    assert_eq!(bob.decrypt(&a, &msgs[150]), Err(DecryptError::Replayed));
}

#[test]
fn bad_ciphertexts_and_keys() {
    let (alice, bob) = pair(EncryptionAlgorithm::AesGcm256, EncryptionAlgorithm::AesGcm256);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let c = alice.encrypt(&b, b"order 42: 1 BTC").unwrap();

    let mut tampered = c.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(bob.decrypt(&a, &tampered), Err(DecryptError::Authentication));
    let mut header = c.clone();
    header[13] ^= 1; // the counter is authenticated too
    assert_eq!(bob.decrypt(&a, &header), Err(DecryptError::Authentication));
    let mut body = c.clone();
    body[20] ^= 0x80;
    assert_eq!(bob.decrypt(&a, &body), Err(DecryptError::Authentication));
    assert_eq!(bob.decrypt(&a, &c[..c.len() - 1]), Err(DecryptError::Authentication));
    assert_eq!(bob.decrypt(&a, &c[..20]), Err(DecryptError::Envelope(EnvelopeError::Truncated(20))));
    assert_eq!(bob.decrypt(&a, &[]), Err(DecryptError::Envelope(EnvelopeError::Truncated(0))));
    let mut v2 = c.clone();
    v2[0] = 2;
    assert_eq!(bob.decrypt(&a, &v2), Err(DecryptError::Envelope(EnvelopeError::UnknownVersion(2))));
    let mut alg = c.clone();
    alg[1] = 9;
    assert_eq!(bob.decrypt(&a, &alg), Err(DecryptError::Envelope(EnvelopeError::UnknownAlgorithm(9))));
    let mut ahead = c.clone();
    ahead[2..6].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(bob.decrypt(&a, &ahead), Err(DecryptError::EpochTooFarAhead(1000)));
    let mut next = c.clone();
    next[2..6].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(bob.decrypt(&a, &next), Err(DecryptError::Authentication), "a forged epoch does not move the session");

    // Wrong key: Carol has a session with Bob too, but Alice's message does not open under it.
    let carol = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    connect(&carol, &bob);
    assert_eq!(bob.decrypt(&carol.local_peer_id(), &c), Err(DecryptError::Authentication));
    assert_eq!(carol.decrypt(&a, &c), Err(DecryptError::NoSession(a)));
    assert_eq!(carol.encrypt(&a, b"x"), Err(EncryptError::NoSession(a)));

    // After every refusal the genuine message still opens, once.
    assert_eq!(bob.decrypt(&a, &c).unwrap(), b"order 42: 1 BTC");
    assert_eq!(bob.decrypt(&a, &c), Err(DecryptError::Replayed));
}

#[test]
fn a_relay_in_the_middle_cannot_swap_keys() {
    let alice = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    let bob = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    let mallory = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    alice.generate_ephemeral_key_pair(&b).unwrap();
    let genuine = bob.generate_ephemeral_key_pair(&a).unwrap();

    // Mallory's own key, honestly signed by Mallory, passed off as Bob's.
    let mut own = mallory.generate_ephemeral_key_pair(&a).unwrap();
    assert_eq!(alice.perform_key_exchange(&b, &own), Err(KeyExchangeError::WrongSender(mallory.local_peer_id())));
    // Mallory's X25519 key under Bob's name and signature.
    own.sender = b;
    own.signature = genuine.signature.clone();
    assert_eq!(alice.perform_key_exchange(&b, &own), Err(KeyExchangeError::BadSignature));
    // Bob's key for Alice replayed to Carol.
    let carol = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    carol.generate_ephemeral_key_pair(&b).unwrap();
    assert_eq!(carol.perform_key_exchange(&b, &genuine), Err(KeyExchangeError::WrongRecipient));
    // A low-order point, properly signed, is refused as well.
    let mut weak = bob.generate_ephemeral_key_pair(&a).unwrap();
    weak.public_key = [0; 32];
    assert_eq!(alice.perform_key_exchange(&b, &weak), Err(KeyExchangeError::BadSignature));
    // No local key.
    let dave = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    let to_dave = bob.generate_ephemeral_key_pair(&dave.local_peer_id()).unwrap();
    assert_eq!(dave.perform_key_exchange(&b, &to_dave), Err(KeyExchangeError::NoLocalKey));
    // The genuine key still works.
    let genuine = bob.generate_ephemeral_key_pair(&a).unwrap();
    let ka = alice.generate_ephemeral_key_pair(&b).unwrap();
    alice.perform_key_exchange(&b, &genuine).unwrap();
    bob.perform_key_exchange(&a, &ka).unwrap();
    assert_eq!(bob.decrypt(&a, &alice.encrypt(&b, b"hi").unwrap()).unwrap(), b"hi");
}

#[test]
fn rotation_keeps_in_flight_messages_then_forgets_old_keys() {
    let alice = EncryptionManager::new(EncryptionConfig::default()).unwrap();
    let bob =
        EncryptionManager::new(EncryptionConfig::default()).unwrap().with_grace_period(Duration::from_millis(300));
    connect(&alice, &bob);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());

    let old_1 = alice.encrypt(&b, b"epoch 0, first").unwrap();
    let old_2 = alice.encrypt(&b, b"epoch 0, second").unwrap();
    let recorded = alice.encrypt(&b, b"epoch 0, recorded by an eavesdropper").unwrap();
    assert_eq!(bob.decrypt(&a, &old_1).unwrap(), b"epoch 0, first");
    alice.rotate_keys().unwrap();
    let new = alice.encrypt(&b, b"epoch 1").unwrap();
    assert_eq!(&new[2..6], &1u32.to_be_bytes());
    assert_eq!(bob.decrypt(&a, &new).unwrap(), b"epoch 1");
    // In flight across the rotation: still accepted during the grace period.
    assert_eq!(bob.decrypt(&a, &old_2).unwrap(), b"epoch 0, second");
    std::thread::sleep(Duration::from_millis(320));
    bob.prune_expired_keys();
    // Forward secrecy: the epoch-0 key is gone from both sides, so the recorded message is lost
    // for good (the X25519 secrets were wiped at the exchange, the identity keys never encrypt).
    assert_eq!(bob.decrypt(&a, &recorded), Err(DecryptError::KeyExpired(0)));
    assert_eq!(bob.decrypt(&a, &alice.encrypt(&b, b"still talking").unwrap()).unwrap(), b"still talking");
}

#[test]
fn rotation_interval_rotates_by_itself() {
    let cfg = EncryptionConfig { key_rotation_interval: Duration::from_millis(20), ..Default::default() };
    let alice = EncryptionManager::new(cfg.clone()).unwrap();
    let bob = EncryptionManager::new(cfg).unwrap();
    connect(&alice, &bob);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let first = alice.encrypt(&b, b"1").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let second = alice.encrypt(&b, b"2").unwrap();
    let epoch = |c: &[u8]| u32::from_be_bytes(c[2..6].try_into().unwrap());
    // Under load the first message may already be past one interval; the second always is.
    assert!(epoch(&second) > epoch(&first), "{} then {}", epoch(&first), epoch(&second));
    assert_eq!(bob.decrypt(&a, &second).unwrap(), b"2");
    assert!(EncryptionManager::new(EncryptionConfig { key_rotation_interval: Duration::ZERO, ..Default::default() })
        .is_err());
}
