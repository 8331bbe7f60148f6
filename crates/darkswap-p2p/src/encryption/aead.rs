//! The two AEADs behind one small interface: `ring` (BoringSSL's assembly) on native targets, the
//! RustCrypto crates in the browser, where `ring` would need a C toolchain for wasm32. Both produce
//! identical bytes (a test checks it), so browser and native peers interoperate.

use super::EncryptionAlgorithm;

/// Bytes an AEAD tag adds.
pub const TAG_LEN: usize = 16;

/// The AEAD refused the ciphertext (tampered, truncated, or another key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

#[cfg(not(target_arch = "wasm32"))]
pub use ring_backend::Cipher;
#[cfg(target_arch = "wasm32")]
pub use rustcrypto_backend::Cipher;

#[cfg(not(target_arch = "wasm32"))]
#[allow(unsafe_code)]
mod ring_backend {
    use super::{EncryptionAlgorithm, OpenError};
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
    use std::mem::MaybeUninit;

    /// A keyed AEAD whose expanded key is wiped from memory when it is dropped.
    pub struct Cipher {
        // `ring` keeps the AES round keys (which reveal the key) inline and never wipes them.
        // Holding the key as `MaybeUninit` lets `Drop` overwrite those bytes without ever
        // producing an invalid `LessSafeKey` value.
        key: Box<Aligned>,
    }

    /// The key on a cache-line boundary, so the vector code's key loads never straddle two lines.
    #[repr(C, align(64))]
    struct Aligned(MaybeUninit<LessSafeKey>);

    impl Cipher {
        /// Keys `algorithm` with a 32-byte key.
        pub fn new(algorithm: EncryptionAlgorithm, key: &[u8; 32]) -> Self {
            let alg = match algorithm {
                EncryptionAlgorithm::AesGcm256 => &AES_256_GCM,
                EncryptionAlgorithm::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            };
            // Both algorithms take exactly 32-byte keys, the only length this accepts.
            let unbound = UnboundKey::new(alg, key).expect("32-byte key");
            Self { key: Box::new(Aligned(MaybeUninit::new(LessSafeKey::new(unbound)))) }
        }

        fn key(&self) -> &LessSafeKey {
            // SAFETY: `key` is initialised in `new` and only de-initialised (wiped) in `drop`.
            unsafe { self.key.0.assume_init_ref() }
        }

        /// Encrypts `buf[from..]` in place and appends the tag (the bytes before `from`, a header,
        /// stay as they are, so the envelope is built without moving the ciphertext).
        pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>, from: usize) {
            // Sealing fails only for inputs beyond 2^36 bytes, far above the envelope cap.
            let tag = self
                .key()
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf[from..])
                .expect("plaintext within AEAD limits");
            buf.extend_from_slice(tag.as_ref());
        }

        /// Decrypts `in_out` (ciphertext || tag) in place; returns the plaintext length.
        pub fn open(&self, nonce: [u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<usize, OpenError> {
            self.key()
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
                .map(|p| p.len())
                .map_err(|_| OpenError)
        }
    }

    impl Drop for Cipher {
        fn drop(&mut self) {
            // SAFETY: `LessSafeKey` owns no heap memory and has no drop glue, so it is fine to
            // never run its destructor; zero bytes are a valid `MaybeUninit`.
            unsafe { zeroize::zeroize_flat_type(self.key.0.as_mut_ptr()) }
        }
    }
}

#[cfg(any(target_arch = "wasm32", test))]
mod rustcrypto_backend {
    use super::{EncryptionAlgorithm, OpenError, TAG_LEN};
    use aes_gcm::{aead::AeadInPlace, Aes256Gcm, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;

    /// A keyed AEAD (RustCrypto; both ciphers wipe their keys on drop).
    pub enum Cipher {
        /// AES-256-GCM.
        Aes(Box<Aes256Gcm>),
        /// ChaCha20-Poly1305.
        ChaCha(Box<ChaCha20Poly1305>),
    }

    impl Cipher {
        /// Keys `algorithm` with a 32-byte key.
        pub fn new(algorithm: EncryptionAlgorithm, key: &[u8; 32]) -> Self {
            match algorithm {
                EncryptionAlgorithm::AesGcm256 => Self::Aes(Box::new(Aes256Gcm::new(key.into()))),
                EncryptionAlgorithm::ChaCha20Poly1305 => Self::ChaCha(Box::new(ChaCha20Poly1305::new(key.into()))),
            }
        }

        /// Encrypts `buf[from..]` in place and appends the tag.
        pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>, from: usize) {
            let nonce = (&nonce).into();
            let tag = match self {
                Self::Aes(c) => c.encrypt_in_place_detached(nonce, aad, &mut buf[from..]),
                Self::ChaCha(c) => c.encrypt_in_place_detached(nonce, aad, &mut buf[from..]),
            }
            .expect("plaintext within AEAD limits");
            buf.extend_from_slice(&tag);
        }

        /// Decrypts `in_out` (ciphertext || tag) in place; returns the plaintext length.
        pub fn open(&self, nonce: [u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<usize, OpenError> {
            let len = in_out.len().checked_sub(TAG_LEN).ok_or(OpenError)?;
            let (body, tag) = in_out.split_at_mut(len);
            let nonce = (&nonce).into();
            let tag = (&*tag).into();
            match self {
                Self::Aes(c) => c.decrypt_in_place_detached(nonce, aad, body, tag),
                Self::ChaCha(c) => c.decrypt_in_place_detached(nonce, aad, body, tag),
            }
            .map_err(|_| OpenError)?;
            Ok(len)
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn native_and_browser_backends_produce_the_same_bytes() {
        for alg in [EncryptionAlgorithm::AesGcm256, EncryptionAlgorithm::ChaCha20Poly1305] {
            let key = [0x42; 32];
            let native = ring_backend::Cipher::new(alg, &key);
            let browser = rustcrypto_backend::Cipher::new(alg, &key);
            for len in [0usize, 1, 15, 16, 17, 1000, 4096] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let nonce = [len as u8; 12];
                let (mut a, mut b) = (plain.clone(), plain.clone());
                native.seal(nonce, b"aad", &mut a, 0);
                browser.seal(nonce, b"aad", &mut b, 0);
                assert_eq!(a, b, "{alg:?} {len}");
                let n = browser.open(nonce, b"aad", &mut a).unwrap();
                assert_eq!(&a[..n], &plain[..]);
                let n = native.open(nonce, b"aad", &mut b).unwrap();
                assert_eq!(&b[..n], &plain[..]);
            }
            let mut c = b"secret".to_vec();
            native.seal([1; 12], b"", &mut c, 0);
            c[0] ^= 1;
            assert_eq!(browser.open([1; 12], b"", &mut c.clone()), Err(OpenError));
            assert_eq!(native.open([1; 12], b"", &mut c), Err(OpenError));
        }
    }
}
