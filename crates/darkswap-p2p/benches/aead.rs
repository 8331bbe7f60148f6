//! End-to-end encryption throughput (encrypt + decrypt through `EncryptionManager`, envelope and
//! replay window included; in place, as trades use it, and through the copying calls) at 64 B,
//! 1 KiB and 16 KiB for both AEADs, beside `openssl speed` for the same cipher and size measured
//! in the same run.
//!
//! Run: `cargo bench -p darkswap-p2p --bench aead` (needs the `openssl` command for the ratio).

use darkswap_p2p::encryption::{
    envelope::HEADER_LEN, EncryptionAlgorithm, EncryptionConfig, EncryptionManager, TAG_LEN,
};
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
const ROUNDS: usize = 5;

/// Which `EncryptionManager` calls a round trip goes through.
#[derive(Clone, Copy)]
enum Api {
    /// `encrypt_in_place` / `decrypt_in_place`, as the network's trade path uses them.
    InPlace,
    /// `encrypt` / `decrypt`: a new buffer each way, the plaintext and ciphertext copied.
    Copying,
}

/// Bytes per second through encrypt then decrypt, best of [`ROUNDS`].
fn ours(alg: EncryptionAlgorithm, size: usize, api: Api) -> f64 {
    (0..ROUNDS).map(|_| ours_once(alg, size, api)).fold(0.0, f64::max)
}

fn ours_once(alg: EncryptionAlgorithm, size: usize, api: Api) -> f64 {
    let (alice, bob) = pair(alg);
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let msg = vec![0x5a; size];
    let mut buf = Vec::with_capacity(HEADER_LEN + size + TAG_LEN);
    buf.resize(HEADER_LEN, 0);
    buf.extend_from_slice(&msg);
    let mut round_trip = || match api {
        Api::Copying => {
            let c = alice.encrypt(&b, &msg).unwrap();
            std::hint::black_box(bob.decrypt(&a, &c).unwrap());
        }
        Api::InPlace => {
            // The plaintext comes back where it was, ready for the next round.
            alice.encrypt_in_place(&b, &mut buf).unwrap();
            std::hint::black_box(bob.decrypt_in_place(&a, &mut buf).unwrap());
            buf.truncate(HEADER_LEN + size);
        }
    };
    let iters = (BYTES_PER_RUN / size).max(1000);
    for _ in 0..iters / 10 {
        round_trip();
    }
    let start = Instant::now();
    for _ in 0..iters {
        round_trip();
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
    println!(
        "{:<20} {:>6} {:>14} {:>13} {:>13} {:>8} {:>8}",
        "algorithm", "size", "in place MB/s", "copying MB/s", "openssl MB/s", "ratio", "copying"
    );
    for (alg, cipher) in
        [(EncryptionAlgorithm::AesGcm256, "aes-256-gcm"), (EncryptionAlgorithm::ChaCha20Poly1305, "chacha20-poly1305")]
    {
        for size in SIZES {
            let in_place = ours(alg, size, Api::InPlace) / 1e6;
            let copying = ours(alg, size, Api::Copying) / 1e6;
            let Some(them) = openssl(cipher, size).map(|t| t / 1e6) else {
                println!("{cipher:<20} {size:>6} {in_place:>14.0} {copying:>13.0} {:>13} {:>8} {:>8}", "-", "-", "-");
                continue;
            };
            let (ratio, ratio_copying) = (in_place / them, copying / them);
            println!(
                "{cipher:<20} {size:>6} {in_place:>14.0} {copying:>13.0} {them:>13.0} {ratio:>7.2}x {ratio_copying:>7.2}x"
            );
            println!(
                "BENCH | E2E encryption {cipher}, {size} B (encrypt + decrypt) | {in_place:.0} MB/s (openssl {them:.0}) | >= 0.7x openssl | {ratio:.2}x | in place, best of {ROUNDS}; copying API {copying:.0} MB/s = {ratio_copying:.2}x |"
            );
        }
    }
    println!(
        "(ours: encrypt + decrypt through EncryptionManager, envelope and replay window included, best of {ROUNDS},"
    );
    println!(" in place as the trade path does it, and with the copying encrypt/decrypt;");
    println!(" openssl: `openssl speed -evp <cipher>` encrypt and -decrypt, best of 2 each, combined the same way)");
}
