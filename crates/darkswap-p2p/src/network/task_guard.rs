//! The network task's side of flood protection: it asks the [`FloodGuard`](super::flood) about
//! each gossip message, bans peers that keep flooding or keep sending invalid messages, and lifts
//! those bans when they expire.

use super::{
    flood::Verdict,
    stats::Counters,
    task::{counters, Task},
};
use crate::protocol::{Envelope, Message, RejectReason};
use libp2p::{gossipsub::MessageAcceptance, PeerId};
use web_time::Instant;

/// Temporary bans held at once; the oldest is lifted early when more are needed.
const MAX_TEMP_BANS: usize = 4096;

impl Task {
    /// Before a gossip message is checked: whether its peer is within its rates. When not, the
    /// message is ignored (reported to gossipsub) and `false` returned.
    pub(super) fn admit_gossip(&mut self, source: PeerId, id: &libp2p::gossipsub::MessageId) -> bool {
        let verdict = self.flood.on_message(source, Instant::now());
        self.act_on(verdict, source, id)
    }

    /// After the signature check: whether the author is within its order-book rate. When not,
    /// the message is ignored: dropped here and not forwarded, without blaming a forwarder.
    pub(super) fn admit_author(&mut self, env: &Envelope, source: PeerId, id: &libp2p::gossipsub::MessageId) -> bool {
        let verdict = match env.message {
            Message::OrderAnnounce(_) | Message::OrderCancel(_) | Message::TradeSettled(_) => {
                self.flood.on_author(env.author, source, Instant::now())
            }
            Message::Trade(_) => Verdict::Pass,
        };
        self.act_on(verdict, source, id)
    }

    fn act_on(&mut self, verdict: Verdict, source: PeerId, id: &libp2p::gossipsub::MessageId) -> bool {
        if verdict == Verdict::Pass {
            return true;
        }
        counters(&self.shared).reject(RejectReason::RateLimited);
        self.report(id, &source, MessageAcceptance::Ignore);
        if verdict == Verdict::Ban {
            self.ban_temporarily(source, "gossip flood");
        }
        false
    }

    /// Disconnects `peer` and refuses it for the configured ban duration.
    pub(super) fn ban_temporarily(&mut self, peer: PeerId, why: &'static str) {
        if self.shared.auth.config().trusted_peers.contains(&peer) || self.temp_bans.contains_key(&peer) {
            return;
        }
        if self.temp_bans.len() >= MAX_TEMP_BANS {
            if let Some(oldest) = self.temp_bans.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                self.lift_ban(oldest);
            }
        }
        tracing::warn!(%peer, why, secs = self.flood.limits().ban_duration.as_secs(), "peer banned");
        Counters::bump(&self.shared.stats.peers_banned);
        self.temp_bans.insert(peer, Instant::now() + self.flood.limits().ban_duration);
        // The block list closes its connections and refuses new ones.
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.flood.forget(&peer);
    }

    fn lift_ban(&mut self, peer: PeerId) {
        self.temp_bans.remove(&peer);
        // A ban from the auth manager (or the application) outlives a flood ban.
        if !self.shared.auth.is_banned(&peer) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    /// `source` handed us an invalid message (already rejected to gossipsub, which forwards
    /// nothing of it): banned at its `max_invalid`th within a minute.
    pub(super) fn after_invalid(&mut self, source: PeerId) {
        if self.flood.on_invalid(source, Instant::now()) == Verdict::Ban {
            self.ban_temporarily(source, "invalid gossip");
        }
    }

    /// Every tick: lifts the bans that expired.
    pub(super) fn lift_expired_bans(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self.temp_bans.iter().filter(|(_, t)| **t <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            tracing::info!(%peer, "ban lifted");
            self.lift_ban(peer);
        }
    }
}
