//! When a connection may open the in-band data channels asked of it: sans-IO, driven by the
//! connection's task.
//!
//! Browsers' libp2p (libp2p-webrtc-websys) loses channels a native peer opens too early or too
//! fast: it installs its `datachannel` handler only once its side of the Noise handshake is done
//! (the listener, which starts Noise, finishes half a round trip earlier and would open streams
//! into the void), and it keeps at most five channels its swarm has not accepted, silently
//! dropping the rest. A WebRTC-direct listener therefore holds its opens until the peer shows
//! its connection is up (it opened a channel itself) or [`HOLD_FOR_PEER`] passed, and keeps at
//! most a few opened channels waiting for the peer's first message at once. Negotiated channels
//! (channel 0, set up by both sides alike) are never held.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::{Duration, Instant},
};
use str0m::channel::ChannelConfig;

/// At most this long a browser-facing connection holds its first opens for the peer's own.
pub(crate) const HOLD_FOR_PEER: Duration = Duration::from_secs(1);
/// After this long, an unanswered channel no longer holds back the next open.
const UNANSWERED_TIMEOUT: Duration = Duration::from_secs(5);
/// Unanswered channels a browser-facing connection keeps at once: one below the five that
/// libp2p-webrtc-websys queues, leaving room for a channel the peer's swarm is still taking.
const BROWSER_MAX_UNANSWERED: usize = 4;

/// How a connection opens channels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenPolicy {
    max_unanswered: usize,
    hold_for_peer: bool,
}

impl OpenPolicy {
    /// Opens at once, as many as asked: the peer is this crate (native or browser), which takes
    /// every channel as it comes.
    pub(crate) const EAGER: Self = Self { max_unanswered: usize::MAX, hold_for_peer: false };
    /// For a peer that may be libp2p-webrtc-websys (a WebRTC-direct listener's clients).
    pub(crate) const BROWSER_FACING: Self = Self { max_unanswered: BROWSER_MAX_UNANSWERED, hold_for_peer: true };
}

/// The opens asked for (each with its opener `T`) and not made yet, and the channels (ids `I`)
/// opened but not answered.
pub(crate) struct Opens<T, I> {
    policy: OpenPolicy,
    queued: VecDeque<(ChannelConfig, T)>,
    /// In-band channels opened that the peer has sent nothing on yet, since when.
    unanswered: HashMap<I, Instant>,
    /// Set once the peer opened a channel: its side of the connection is up.
    peer_up: bool,
    /// Until when the first opens wait for the peer (set by the first one held).
    hold_until: Option<Instant>,
}

impl<T, I: Copy + Eq + Hash> Opens<T, I> {
    pub(crate) fn new(policy: OpenPolicy) -> Self {
        Self { policy, queued: VecDeque::new(), unanswered: HashMap::new(), peer_up: false, hold_until: None }
    }

    /// Asks for a channel; negotiated ones go first, the rest in order.
    pub(crate) fn push(&mut self, config: ChannelConfig, opener: T, now: Instant) {
        if config.negotiated.is_some() {
            self.queued.push_front((config, opener));
            return;
        }
        if self.policy.hold_for_peer && !self.peer_up && self.hold_until.is_none() {
            self.hold_until = Some(now + HOLD_FOR_PEER);
        }
        self.queued.push_back((config, opener));
    }

    /// The next channel to open now, if any; [`opened`](Self::opened) must follow with its id.
    pub(crate) fn pop_ready(&mut self, now: Instant) -> Option<(ChannelConfig, T)> {
        let (config, _) = self.queued.front()?;
        if config.negotiated.is_none() {
            if self.hold_until.is_some_and(|until| !self.peer_up && now < until) {
                return None;
            }
            self.unanswered.retain(|_, since| now.duration_since(*since) < UNANSWERED_TIMEOUT);
            if self.unanswered.len() >= self.policy.max_unanswered {
                return None;
            }
        }
        self.queued.pop_front()
    }

    /// The channel just taken from [`pop_ready`](Self::pop_ready) got `id`.
    pub(crate) fn opened(&mut self, id: I, in_band: bool, now: Instant) {
        if in_band && self.policy.max_unanswered != usize::MAX {
            self.unanswered.insert(id, now);
        }
    }

    /// The peer sent something on `id`, or closed it: it took the channel. True if opens wait.
    pub(crate) fn answered(&mut self, id: I) -> bool {
        self.unanswered.remove(&id).is_some() && !self.queued.is_empty()
    }

    /// The peer opened a channel of its own.
    pub(crate) fn peer_opened(&mut self) {
        self.peer_up = true;
    }

    /// When waiting opens may go ahead without news from the peer.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        if self.queued.is_empty() {
            return None;
        }
        let hold = self.hold_until.filter(|_| !self.peer_up);
        let oldest = self.unanswered.values().min().map(|since| *since + UNANSWERED_TIMEOUT);
        match (hold, oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether opens wait.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_band() -> ChannelConfig {
        ChannelConfig { negotiated: None, ..Default::default() }
    }

    /// Opens everything it can at `now`, giving ids from `next`.
    fn open_all(opens: &mut Opens<u32, u16>, now: Instant, next: &mut u16) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some((config, tag)) = opens.pop_ready(now) {
            opens.opened(*next, config.negotiated.is_none(), now);
            *next += 1;
            out.push(tag);
        }
        out
    }

    #[test]
    fn eager_opens_everything_at_once() {
        let (now, mut next) = (Instant::now(), 1);
        let mut opens = Opens::new(OpenPolicy::EAGER);
        for tag in 0..10 {
            opens.push(in_band(), tag, now);
        }
        assert_eq!(open_all(&mut opens, now, &mut next), (0..10).collect::<Vec<_>>());
        assert_eq!(opens.wake_at(), None);
    }

    #[test]
    fn browser_facing_holds_for_the_peer_then_keeps_four_unanswered() {
        let (now, mut next) = (Instant::now(), 1);
        let mut opens = Opens::new(OpenPolicy::BROWSER_FACING);
        opens.push(ChannelConfig { negotiated: Some(0), ..Default::default() }, 100, now);
        for tag in 0..6 {
            opens.push(in_band(), tag, now);
        }
        // Channel 0 is negotiated: never held.
        assert_eq!(open_all(&mut opens, now, &mut next), vec![100]);
        assert_eq!(opens.wake_at(), Some(now + HOLD_FOR_PEER));
        opens.peer_opened();
        assert_eq!(open_all(&mut opens, now, &mut next), vec![0, 1, 2, 3]);
        // The peer answers on the first in-band channel (id 2): one more may go.
        assert!(opens.answered(2));
        assert_eq!(open_all(&mut opens, now, &mut next), vec![4]);
        assert_eq!(opens.wake_at(), Some(now + UNANSWERED_TIMEOUT));
        // Unanswered channels stop counting after a while.
        let later = now + UNANSWERED_TIMEOUT;
        assert_eq!(open_all(&mut opens, later, &mut next), vec![5]);
        assert!(opens.is_empty());
    }

    #[test]
    fn a_silent_peer_holds_opens_only_for_a_while() {
        let (now, mut next) = (Instant::now(), 1);
        let mut opens = Opens::new(OpenPolicy::BROWSER_FACING);
        opens.push(in_band(), 7, now);
        assert!(open_all(&mut opens, now, &mut next).is_empty());
        assert_eq!(open_all(&mut opens, now + HOLD_FOR_PEER, &mut next), vec![7]);
    }
}
