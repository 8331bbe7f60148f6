//! End-to-end encryption between two peers, as in the README: a signed X25519 exchange, AEAD
//! messages both ways, a replay refused, a key rotation, and old keys pruned.
//!
//! Run: `cargo run -p darkswap-p2p --example encryption_example`

use darkswap_p2p::encryption::{EncryptionAlgorithm, EncryptionConfig, EncryptionManager, KeyExchangeAlgorithm};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = EncryptionConfig {
        key_exchange_algorithm: KeyExchangeAlgorithm::X25519,
        encryption_algorithm: EncryptionAlgorithm::AesGcm256,
        key_rotation_interval: Duration::from_secs(3600),
        use_forward_secrecy: true,
        use_ephemeral_keys: true,
    };
    let alice = EncryptionManager::new(config.clone())?;
    let bob = EncryptionManager::new(EncryptionConfig {
        encryption_algorithm: EncryptionAlgorithm::ChaCha20Poly1305,
        ..config
    })?
    .with_grace_period(Duration::from_millis(100));
    let (alice_id, bob_id) = (alice.local_peer_id(), bob.local_peer_id());

    // Each side signs its ephemeral key with its identity; the other checks it against the peer id.
    let alice_key = alice.generate_ephemeral_key_pair(&bob_id)?;
    let bob_key = bob.generate_ephemeral_key_pair(&alice_id)?;
    alice.perform_key_exchange(&bob_id, &bob_key)?;
    bob.perform_key_exchange(&alice_id, &alice_key)?;
    println!("session established: alice {alice_id} <-> bob {bob_id}");

    let psbt = b"psbt\xff: a partially signed transaction";
    let sealed = alice.encrypt(&bob_id, psbt)?;
    println!("alice -> bob: {} bytes of ciphertext (AES-256-GCM)", sealed.len());
    assert_eq!(bob.decrypt(&alice_id, &sealed)?, psbt);
    let reply = bob.encrypt(&alice_id, b"signed")?;
    println!("bob -> alice: {} bytes of ciphertext (ChaCha20-Poly1305)", reply.len());
    assert_eq!(alice.decrypt(&bob_id, &reply)?, b"signed");
    println!("replaying alice's message: {}", bob.decrypt(&alice_id, &sealed).unwrap_err());

    let recorded = alice.encrypt(&bob_id, b"recorded by an eavesdropper")?;
    alice.rotate_keys()?;
    bob.rotate_keys()?;
    assert_eq!(bob.decrypt(&alice_id, &alice.encrypt(&bob_id, b"after rotation")?)?, b"after rotation");
    std::thread::sleep(Duration::from_millis(150));
    alice.prune_expired_keys();
    bob.prune_expired_keys();
    println!("recorded message after rotation and pruning: {}", bob.decrypt(&alice_id, &recorded).unwrap_err());
    Ok(())
}
