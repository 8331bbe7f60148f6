//! The gossip flood guard: per-peer, per-maker and global token buckets in front of the order
//! book, and the decision to disconnect and ban a peer that keeps flooding. Pure logic (no I/O):
//! the network task asks it about each gossip message and acts on the verdict.
//!
//! Why three buckets:
//! - the **global** one caps the signature checks a node does per second, whatever the source;
//! - the **per-peer** one (the peer that handed us the message) cuts off a direct flooder
//!   before its messages cost a signature check;
//! - the **per-maker** one (the verified author) stops a maker's flood from travelling: over-rate
//!   orders are ignored, not forwarded, so honest forwarders never carry it and are never blamed.
//!
//! Over-rate messages are *ignored* (no gossipsub penalty: an honest forwarder can be over a
//! limit for a moment); a peer over its limit for `max_strikes` messages within a minute is
//! disconnected and banned for `ban_duration`. Invalid messages are *rejected* by the validator
//! (gossipsub drops them and forwards nothing), and a peer that hands us `max_invalid` of them
//! within a minute is banned the same way. Honest peers validate before they forward, so they
//! never hand us one.

use crate::{network::GossipLimits, rate::TokenBucket};
use libp2p::PeerId;
use std::{collections::HashMap, time::Duration};
use web_time::Instant;

/// What to do with one gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Check it.
    Pass,
    /// Drop it without penalty (over a rate).
    Ignore,
    /// Drop it and ban the peer that sent it: it keeps flooding.
    Ban,
}

#[derive(Debug)]
struct PeerState {
    bucket: TokenBucket,
    strikes: u32,
    /// Invalid messages in the current window.
    invalid: u32,
    window: Instant,
}

impl PeerState {
    /// Starts a new window once the current one is over.
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window) > STRIKE_WINDOW {
            self.window = now;
            self.strikes = 0;
            self.invalid = 0;
        }
    }
}

/// Per-node state of the flood guard.
#[derive(Debug)]
pub(crate) struct FloodGuard {
    limits: GossipLimits,
    global: TokenBucket,
    peers: HashMap<PeerId, PeerState>,
    makers: HashMap<PeerId, TokenBucket>,
}

const STRIKE_WINDOW: Duration = Duration::from_secs(60);

impl FloodGuard {
    pub(crate) fn new(limits: GossipLimits, now: Instant) -> Self {
        let global = TokenBucket::new(limits.global_rate, limits.global_burst, now);
        Self { limits, global, peers: HashMap::new(), makers: HashMap::new() }
    }

    /// `source`'s state, new if it has none.
    fn peer(&mut self, source: PeerId, now: Instant) -> &mut PeerState {
        let l = &self.limits;
        self.peers.entry(source).or_insert_with(|| PeerState {
            bucket: TokenBucket::new(l.per_peer_rate, l.per_peer_burst, now),
            strikes: 0,
            invalid: 0,
            window: now,
        })
    }

    /// Before the signature check: may `source` hand us one more message?
    pub(crate) fn on_message(&mut self, source: PeerId, now: Instant) -> Verdict {
        let peer = self.peer(source, now);
        if peer.bucket.take(now) {
            // The global budget is only spent on messages within their peer's limit, so a
            // flooder cannot use it up for everyone.
            return if self.global.take(now) { Verdict::Pass } else { Verdict::Ignore };
        }
        self.strike(source, now)
    }

    fn strike(&mut self, source: PeerId, now: Instant) -> Verdict {
        self.tally(source, now, |p| &mut p.strikes, self.limits.max_strikes)
    }

    /// Counts one more of `source`'s offences in `counter` (both counters start afresh each
    /// minute): [`Verdict::Ban`] at `max`, and the peer is forgotten; [`Verdict::Ignore`] before.
    fn tally(&mut self, source: PeerId, now: Instant, counter: fn(&mut PeerState) -> &mut u32, max: u32) -> Verdict {
        let peer = self.peer(source, now);
        peer.roll(now);
        let count = counter(peer);
        *count += 1;
        if *count >= max {
            self.peers.remove(&source);
            Verdict::Ban
        } else {
            Verdict::Ignore
        }
    }

    /// After the signature check: may `maker` publish one more order-book message, received
    /// from `source`? Over-rate messages a maker sends itself are strikes against it; ones
    /// forwarded by others are only ignored.
    pub(crate) fn on_author(&mut self, maker: PeerId, source: PeerId, now: Instant) -> Verdict {
        if self.maker_within_rate(maker, now) {
            Verdict::Pass
        } else if maker == source {
            self.strike(source, now)
        } else {
            Verdict::Ignore
        }
    }

    fn maker_within_rate(&mut self, maker: PeerId, now: Instant) -> bool {
        if !self.makers.contains_key(&maker) && self.makers.len() >= self.limits.max_tracked_makers {
            // Forget makers that have been quiet long enough to have a full bucket again;
            // if every one is busy, forget them all rather than grow (each starts a new burst).
            self.makers.retain(|_, b| !b.is_full(now));
            if self.makers.len() >= self.limits.max_tracked_makers {
                self.makers.clear();
            }
        }
        let l = &self.limits;
        self.makers.entry(maker).or_insert_with(|| TokenBucket::new(l.per_maker_rate, l.per_maker_burst, now)).take(now)
    }

    /// `source` handed us an invalid message: [`Verdict::Ban`] at its `max_invalid`th within a
    /// minute, [`Verdict::Ignore`] before.
    pub(crate) fn on_invalid(&mut self, source: PeerId, now: Instant) -> Verdict {
        self.tally(source, now, |p| &mut p.invalid, self.limits.max_invalid)
    }

    /// `peer` disconnected: its state goes (a ban outlives it in the block list).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Peers tracked (bounded by connected peers).
    #[cfg(test)]
    fn tracked_peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GossipLimits {
        GossipLimits {
            per_peer_rate: 10,
            per_peer_burst: 10,
            per_maker_rate: 1,
            per_maker_burst: 2,
            global_rate: 15,
            global_burst: 15,
            max_strikes: 5,
            max_tracked_makers: 4,
            ..Default::default()
        }
    }

    #[test]
    fn a_flooding_peer_is_ignored_then_banned() {
        let now = Instant::now();
        let mut g = FloodGuard::new(limits(), now);
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        assert!((0..10).all(|_| g.on_message(flooder, now) == Verdict::Pass));
        assert!((0..4).all(|_| g.on_message(flooder, now) == Verdict::Ignore));
        assert_eq!(g.on_message(flooder, now), Verdict::Ban);
        // The flooder used 10 of the 15 global tokens; the honest peer still gets the rest.
        assert!((0..5).all(|_| g.on_message(honest, now) == Verdict::Pass));
        assert_eq!(g.on_message(honest, now), Verdict::Ignore, "global budget spent");
        assert_eq!(g.tracked_peers(), 1, "the banned peer is forgotten");
    }

    #[test]
    fn strikes_reset_after_a_quiet_minute() {
        let now = Instant::now();
        let mut g = FloodGuard::new(limits(), now);
        let p = PeerId::random();
        for _ in 0..14 {
            g.on_message(p, now);
        }
        let later = now + STRIKE_WINDOW + Duration::from_secs(1);
        // Refilled bucket: 10 pass, then strikes count from zero again.
        assert!((0..10).all(|_| g.on_message(p, later) != Verdict::Ban));
        assert!((0..4).all(|_| g.on_message(p, later) == Verdict::Ignore));
    }

    #[test]
    fn invalid_messages_ban_at_the_limit_within_a_minute() {
        let now = Instant::now();
        let mut g = FloodGuard::new(GossipLimits { max_invalid: 3, ..limits() }, now);
        let p = PeerId::random();
        assert_eq!(g.on_invalid(p, now), Verdict::Ignore);
        assert_eq!(g.on_invalid(p, now), Verdict::Ignore);
        // A minute later the count starts afresh.
        let later = now + STRIKE_WINDOW + Duration::from_secs(1);
        assert_eq!(g.on_invalid(p, later), Verdict::Ignore);
        assert_eq!(g.on_invalid(p, later), Verdict::Ignore);
        assert_eq!(g.on_invalid(p, later), Verdict::Ban);
        assert_eq!(g.tracked_peers(), 0, "the banned peer is forgotten");
        // A peer never seen before (its message came by another path) is counted too.
        let q = PeerId::random();
        assert!((0..2).all(|_| g.on_invalid(q, now) == Verdict::Ignore));
        assert_eq!(g.on_invalid(q, now), Verdict::Ban);
    }

    #[test]
    fn makers_are_limited_and_bounded() {
        let now = Instant::now();
        let mut g = FloodGuard::new(limits(), now);
        let (m, fwd) = (PeerId::random(), PeerId::random());
        assert_eq!(g.on_message(fwd, now), Verdict::Pass);
        assert!((0..2).all(|_| g.on_author(m, fwd, now) == Verdict::Pass));
        assert_eq!(g.on_author(m, fwd, now), Verdict::Ignore, "burst of 2");
        assert_eq!(g.on_author(m, fwd, now + Duration::from_secs(1)), Verdict::Pass, "1 per second");
        for _ in 0..10 {
            assert_eq!(g.on_author(PeerId::random(), fwd, now), Verdict::Pass);
            assert!(g.makers.len() <= 4);
        }
        // A maker flooding its own orders directly collects strikes; forwarders never do.
        for _ in 0..20 {
            assert_ne!(g.on_author(m, fwd, now), Verdict::Ban);
        }
        assert_eq!(g.on_message(m, now), Verdict::Pass);
        let verdicts: Vec<_> = (0..5).map(|_| g.on_author(m, m, now)).collect();
        assert_eq!(verdicts.last(), Some(&Verdict::Ban), "{verdicts:?}");
    }
}
