//! One peer's session: direction keys, the one-way ratchet between epochs, and the replay window.

use super::{
    aead::Cipher,
    envelope::{Header, HEADER_LEN},
    DecryptError, EncryptionAlgorithm,
};
use hkdf::Hkdf;
use sha2::Sha256;
use web_time::Instant;
use zeroize::Zeroizing;

/// How far behind the newest counter a message may arrive and still be accepted.
pub const REPLAY_WINDOW: u64 = 128;
/// How many epochs a receiver ratchets forward in one step at most.
pub const MAX_EPOCH_SKIP: u32 = 64;

const SALT: &[u8] = b"darkswap/e2e/v1/salt";
const CHAIN_INFO: &[u8] = b"darkswap/e2e/v1/chain";
const RATCHET_INFO: &[u8] = b"darkswap/e2e/v1/ratchet";
const AEAD_INFO: &[u8] = b"darkswap/e2e/v1/aead";

/// Both direction keys of a fresh session, from the X25519 shared secret and the transcript.
pub(super) fn derive_chains(
    shared: &[u8; 32],
    local: (&[u8], &[u8; 32]),
    remote: (&[u8], &[u8; 32]),
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let hk = Hkdf::<Sha256>::new(Some(SALT), shared);
    let expand = |from: (&[u8], &[u8; 32]), to: (&[u8], &[u8; 32])| {
        let mut info = Vec::with_capacity(CHAIN_INFO.len() + 2 * (from.0.len() + 33));
        info.extend_from_slice(CHAIN_INFO);
        for part in [from.0, to.0] {
            info.push(part.len() as u8);
            info.extend_from_slice(part);
        }
        info.extend_from_slice(from.1);
        info.extend_from_slice(to.1);
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(&info, key.as_mut()).expect("32 bytes is a valid HKDF-SHA256 length");
        key
    };
    (expand(local, remote), expand(remote, local))
}

/// One direction's key at one epoch.
pub(super) struct Chain {
    pub(super) epoch: u32,
    key: Zeroizing<[u8; 32]>,
    pub(super) since: Instant,
}

impl Chain {
    pub(super) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { epoch: 0, key, since: Instant::now() }
    }

    /// The next epoch's key. One-way: the new key says nothing about this one, which the caller
    /// drops (and so wipes) — that is the forward secrecy of rotation.
    pub(super) fn next(&self) -> Option<Self> {
        let epoch = self.epoch.checked_add(1)?;
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::from_prk(self.key.as_ref())
            .expect("32-byte PRK")
            .expand(RATCHET_INFO, key.as_mut())
            .expect("32 bytes");
        Some(Self { epoch, key, since: Instant::now() })
    }

    fn cipher(&self, algorithm: EncryptionAlgorithm) -> Cipher {
        // A separate key per algorithm, so the same bytes never key two different AEADs.
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::from_prk(self.key.as_ref())
            .expect("32-byte PRK")
            .expand(&[AEAD_INFO, &[algorithm as u8]].concat(), key.as_mut())
            .expect("32 bytes");
        Cipher::new(algorithm, &key)
    }
}

/// The sending half.
pub(super) struct Sending {
    pub(super) chain: Chain,
    pub(super) counter: u64,
    /// When this epoch began, on the cheap clock read for every message.
    born_millis: u64,
    algorithm: EncryptionAlgorithm,
    cipher: Cipher,
}

impl Sending {
    pub(super) fn new(chain: Chain, algorithm: EncryptionAlgorithm) -> Self {
        let cipher = chain.cipher(algorithm);
        Self { chain, counter: 0, born_millis: crate::runtime::coarse_millis(), algorithm, cipher }
    }

    /// Whether this epoch's key is older than `interval`.
    pub(super) fn rotation_due(&self, interval: std::time::Duration) -> bool {
        let age = crate::runtime::coarse_millis().saturating_sub(self.born_millis);
        u128::from(age) >= interval.as_millis()
    }

    /// Moves to the next epoch; the old key and cipher are dropped and wiped.
    pub(super) fn rotate(&mut self) -> bool {
        match self.chain.next() {
            Some(next) => {
                *self = Self::new(next, self.algorithm);
                true
            }
            None => false,
        }
    }

    /// Seals `buf[HEADER_LEN..]` in place into a complete envelope: writes the header into the
    /// first [`HEADER_LEN`] bytes and appends the tag. `false` when the epoch's counter is spent.
    pub(super) fn seal_in_place(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.counter == u64::MAX && !self.rotate() {
            return false;
        }
        let header = Header { algorithm: self.algorithm, epoch: self.chain.epoch, counter: self.counter };
        self.counter += 1;
        let aad = header.encode();
        buf[..HEADER_LEN].copy_from_slice(&aad);
        self.cipher.seal(header.nonce(), &aad, buf, HEADER_LEN);
        true
    }
}

/// Which counters of an epoch were seen: the newest, and a bitmap of the [`REPLAY_WINDOW`] before it.
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    newest: Option<u64>,
    seen: u128,
}

impl ReplayWindow {
    /// Whether `counter` may be accepted (not seen, not too old).
    pub fn check(&self, counter: u64) -> Result<(), DecryptError> {
        let Some(newest) = self.newest else { return Ok(()) };
        if counter > newest {
            return Ok(());
        }
        let age = newest - counter;
        if age >= REPLAY_WINDOW {
            return Err(DecryptError::TooOld);
        }
        if self.seen & (1u128 << age) != 0 {
            return Err(DecryptError::Replayed);
        }
        Ok(())
    }

    /// Marks `counter` as seen (call only after the message authenticated).
    pub fn mark(&mut self, counter: u64) {
        match self.newest {
            Some(newest) if counter <= newest => self.seen |= 1u128 << (newest - counter),
            Some(newest) => {
                let shift = counter - newest;
                self.seen = if shift >= REPLAY_WINDOW { 0 } else { self.seen << shift };
                self.seen |= 1;
                self.newest = Some(counter);
            }
            None => {
                self.seen = 1;
                self.newest = Some(counter);
            }
        }
    }
}

struct RecvEpoch {
    chain: Chain,
    ciphers: [Option<Cipher>; 2],
    window: ReplayWindow,
}

impl RecvEpoch {
    fn new(chain: Chain) -> Self {
        Self { chain, ciphers: [None, None], window: ReplayWindow::default() }
    }

    /// Opens `body` (ciphertext and tag) in place; returns the plaintext's length.
    fn open(&mut self, header: &Header, body: &mut [u8]) -> Result<usize, DecryptError> {
        self.window.check(header.counter)?;
        let slot = header.algorithm as usize;
        let cipher = self.ciphers[slot].get_or_insert_with(|| self.chain.cipher(header.algorithm));
        let len = cipher.open(header.nonce(), &header.encode(), body).map_err(|_| DecryptError::Authentication)?;
        self.window.mark(header.counter);
        Ok(len)
    }
}

/// The receiving half: the current epoch, and the previous one during its grace period.
pub(super) struct Receiving {
    current: RecvEpoch,
    previous: Option<(RecvEpoch, Instant)>,
}

impl Receiving {
    pub(super) fn new(chain: Chain) -> Self {
        Self { current: RecvEpoch::new(chain), previous: None }
    }

    /// Opens an envelope's `body` (what follows the header) in place; returns the plaintext's
    /// length. On error the body's bytes are unspecified.
    pub(super) fn open(
        &mut self,
        header: &Header,
        body: &mut [u8],
        grace: std::time::Duration,
    ) -> Result<usize, DecryptError> {
        // The clock is read only while a previous epoch is held (the grace period after a
        // rotation), not on every message.
        if self.previous.as_ref().is_some_and(|(_, until)| *until <= Instant::now()) {
            self.previous = None;
        }
        let current = self.current.chain.epoch;
        if header.epoch == current {
            return self.current.open(header, body);
        }
        if header.epoch < current {
            return match &mut self.previous {
                Some((prev, _)) if prev.chain.epoch == header.epoch => prev.open(header, body),
                _ => Err(DecryptError::KeyExpired(header.epoch)),
            };
        }
        if header.epoch - current > MAX_EPOCH_SKIP {
            return Err(DecryptError::EpochTooFarAhead(header.epoch));
        }
        // Ratchet a copy forward and commit only if the message authenticates, so a forged header
        // cannot push the session into the future.
        let mut chain = self.current.chain.next().ok_or(DecryptError::EpochTooFarAhead(header.epoch))?;
        while chain.epoch < header.epoch {
            chain = chain.next().ok_or(DecryptError::EpochTooFarAhead(header.epoch))?;
        }
        let mut next = RecvEpoch::new(chain);
        let plaintext = next.open(header, body)?;
        let old = std::mem::replace(&mut self.current, next);
        // Only the epoch just before the new one stays, for messages still in flight.
        self.previous = (old.chain.epoch + 1 == header.epoch).then(|| (old, Instant::now() + grace));
        Ok(plaintext)
    }

    /// Drops the previous epoch's key once its grace period is over.
    pub(super) fn prune(&mut self, now: Instant) {
        if self.previous.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.previous = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_reordering_and_refuses_replays_and_stale() {
        let mut w = ReplayWindow::default();
        for c in [5u64, 3, 7, 4, 200] {
            w.check(c).unwrap();
            w.mark(c);
        }
        assert_eq!(w.check(7), Err(DecryptError::TooOld));
        assert_eq!(w.check(200), Err(DecryptError::Replayed));
        w.check(199).unwrap();
        w.check(73).unwrap();
        assert_eq!(w.check(72), Err(DecryptError::TooOld));
    }
}
