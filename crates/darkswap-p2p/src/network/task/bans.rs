//! Temporary bans: peers that kept flooding or kept sending invalid messages are disconnected and
//! refused until their ban expires; bans the application or the auth manager set outlive them.

use super::Task;
use crate::network::stats::Counters;
use libp2p::PeerId;
use std::{collections::HashMap, time::Duration};
use web_time::Instant;

/// Temporary bans held at once; the oldest is lifted early when more are needed.
const MAX_TEMP_BANS: usize = 4096;

/// Peers banned for a while, and until when.
pub(super) struct Bans {
    until: HashMap<PeerId, Instant>,
    duration: Duration,
}

impl Bans {
    pub(super) fn new(duration: Duration) -> Self {
        Self { until: HashMap::new(), duration }
    }
}

impl Task {
    /// Disconnects `peer` and refuses it for the configured ban duration.
    pub(super) fn ban_temporarily(&mut self, peer: PeerId, why: &'static str) {
        if self.shared.auth.config().trusted_peers.contains(&peer) || self.bans.until.contains_key(&peer) {
            return;
        }
        if self.bans.until.len() >= MAX_TEMP_BANS {
            if let Some(oldest) = self.bans.until.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                self.lift_ban(oldest);
            }
        }
        tracing::warn!(%peer, why, secs = self.bans.duration.as_secs(), "peer banned");
        Counters::bump(&self.shared.stats.peers_banned);
        self.bans.until.insert(peer, Instant::now() + self.bans.duration);
        // The block list closes its connections and refuses new ones.
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.ingest.forget(&peer);
    }

    fn lift_ban(&mut self, peer: PeerId) {
        self.bans.until.remove(&peer);
        // A ban from the auth manager (or the application) outlives a flood ban.
        if !self.shared.auth.is_banned(&peer) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    /// Every tick: lifts the bans that expired.
    pub(super) fn lift_expired_bans(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self.bans.until.iter().filter(|(_, t)| **t <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            tracing::info!(%peer, "ban lifted");
            self.lift_ban(peer);
        }
    }

    /// The application's ban: held by the auth manager until lifted.
    pub(super) fn ban(&mut self, peer: PeerId) {
        self.shared.auth.ban_peer(peer);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        tracing::info!(%peer, "banned");
    }

    /// Lifts the application's ban.
    pub(super) fn unban(&mut self, peer: PeerId) {
        self.shared.auth.unban_peer(&peer);
        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
    }
}
