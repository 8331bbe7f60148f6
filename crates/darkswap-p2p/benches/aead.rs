//! End-to-end encryption throughput (encrypt + decrypt through `EncryptionManager`, envelope and
//! replay window included) at 64 B, 1 KiB and 16 KiB for both AEADs, beside `openssl speed` for the
//! same cipher and size measured in the same run.
//!
//! Run: `cargo bench -p darkswap-p2p --bench aead` (needs the `openssl` command for the ratio).

use darkswap_p2p::encryption::{EncryptionAlgorithm, EncryptionConfig, EncryptionManager};
use std::{process::Command, time::Instant};

const SIZES: [usize; 3] = [64, 1024, 16 * 1024];
const BYTES_PER_RUN: usize = 256 * 1024 * 1024;

fn pair(alg: EncryptionAlgorithm) -> (EncryptionManager, EncryptionManager) {
    let config = EncryptionConfig { encryption_algorithm: alg, ..Default::default() };
    let (a, b) = (EncryptionManager::new(config.clone()).unwrap(), EncryptionManager::new(config).unwrap());
    let ka = a.generate_ephemeral_key_pair(&b.local_peer_id()).unwrap();
    let kb = b.generate_ephemeral_key_pair(&a.local_peer_id()).unwrap();
    a.perform_key_exchange(&b.local_peer_id(), &kb).unwrap();
    b.perform_key_exchange(&a.local_peer_id(), &ka).unwrap();
    (a, b)
}

/// Rounds per measurement; the best round counts (this machine's neighbours make single runs vary
/// by +-15%).
const ROUNDS: usize = 3;

/// Bytes per second through encrypt then decrypt, best of [`ROUNDS`].
fn ours(alg: EncryptionAlgorithm, size: usize) -> f64 {
    (0..ROUNDS).map(|_| ours_once(alg, size)).fold(0.0, f64::max)
}

fn ours_once(alg: EncryptionAlgorithm, size: usize) -> f64 {
    let (alice, bob) = pair(alg);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let msg = vec![0x5a; size];
    let iters = (BYTES_PER_RUN / size).max(1000);
    for _ in 0..iters / 10 {
        let c = alice.encrypt(&b, &msg).unwrap();
        bob.decrypt(&a, &c).unwrap();
    }
    let start = Instant::now();
    for _ in 0..iters {
        let c = alice.encrypt(&b, &msg).unwrap();
        std::hint::black_box(bob.decrypt(&a, &c).unwrap());
    }
    (iters * size) as f64 / start.elapsed().as_secs_f64()
}

/// `openssl speed` bytes per second for one direction, or None without openssl.
fn openssl_one(cipher: &str, size: usize, decrypt: bool) -> Option<f64> {
    let mut cmd = Command::new("openssl");
    cmd.args(["speed", "-seconds", "2", "-bytes", &size.to_string()]);
    if decrypt {
        cmd.arg("-decrypt");
    }
    let out = cmd.args(["-evp", cipher]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "<name> <n>k" (thousands of bytes per second).
    let last = text.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let k: f64 = last.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k * 1000.0)
}

/// Encrypt + decrypt rate for openssl (the harmonic combination of its two directions), best of
/// two runs of each direction.
fn openssl(cipher: &str, size: usize) -> Option<f64> {
    let best = |decrypt| (0..2).filter_map(|_| openssl_one(cipher, size, decrypt)).reduce(f64::max);
    let (e, d) = (best(false)?, best(true)?);
    Some(1.0 / (1.0 / e + 1.0 / d))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let version =
        Command::new("openssl").arg("version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    println!("openssl: {}", version.unwrap_or_else(|_| "not found".into()));
    println!("{:<20} {:>7} {:>12} {:>12} {:>7}", "algorithm", "size", "ours MB/s", "openssl MB/s", "ratio");
    for (alg, cipher) in
        [(EncryptionAlgorithm::AesGcm256, "aes-256-gcm"), (EncryptionAlgorithm::ChaCha20Poly1305, "chacha20-poly1305")]
    {
        for size in SIZES {
            let us = ours(alg, size) / 1e6;
            match openssl(cipher, size) {
                Some(them) => {
                    println!(
                        "{:<20} {:>7} {:>12.0} {:>12.0} {:>6.2}x",
                        cipher,
                        size,
                        us,
                        them / 1e6,
                        us / (them / 1e6)
                    );
                    println!(
                        "BENCH | E2E encryption {cipher}, {size} B (encrypt + decrypt) | {us:.0} MB/s (openssl {:.0}) | >= 0.7x openssl | {:.2}x | best of {ROUNDS} |",
                        them / 1e6,
                        us / (them / 1e6)
                    );
                }
                None => println!("{:<20} {:>7} {:>12.0} {:>12} {:>7}", cipher, size, us, "-", "-"),
            }
        }
    }
    println!(
        "(ours: encrypt + decrypt through EncryptionManager, envelope and replay window included, best of {ROUNDS};"
    );
    println!(" openssl: `openssl speed -evp <cipher>` encrypt and -decrypt, best of 2 each, combined the same way)");
}
