//! Counters the network task keeps, readable from any handle.

use crate::protocol::RejectReason;
use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_accepted: AtomicU64,
    pub(crate) orders_added: AtomicU64,
    pub(crate) orders_synced: AtomicU64,
    pub(crate) anti_entropy_rounds: AtomicU64,
    pub(crate) orders_regossiped: AtomicU64,
    pub(crate) sync_requests_served: AtomicU64,
    pub(crate) sync_failures: AtomicU64,
    pub(crate) trade_messages_received: AtomicU64,
    pub(crate) notices_dropped: AtomicU64,
    pub(crate) peers_banned: AtomicU64,
    pub(crate) peers_shed: AtomicU64,
    pub(crate) peer_dials: AtomicU64,
    pub(crate) lookups_closed: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
}

impl Counters {
    pub(crate) fn reject(&self, reason: RejectReason) {
        self.rejected[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            messages_accepted: self.messages_accepted.load(Relaxed),
            orders_added: self.orders_added.load(Relaxed),
            orders_synced: self.orders_synced.load(Relaxed),
            anti_entropy_rounds: self.anti_entropy_rounds.load(Relaxed),
            orders_regossiped: self.orders_regossiped.load(Relaxed),
            sync_requests_served: self.sync_requests_served.load(Relaxed),
            sync_failures: self.sync_failures.load(Relaxed),
            trade_messages_received: self.trade_messages_received.load(Relaxed),
            notices_dropped: self.notices_dropped.load(Relaxed),
            peers_banned: self.peers_banned.load(Relaxed),
            peers_shed: self.peers_shed.load(Relaxed),
            peer_dials: self.peer_dials.load(Relaxed),
            lookups_closed: self.lookups_closed.load(Relaxed),
            rejected: RejectReason::ALL
                .iter()
                .map(|r| (*r, self.rejected[*r as usize].load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// A snapshot of the network's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Gossip messages that passed validation.
    pub messages_accepted: u64,
    /// Orders added to the local book (gossip or sync).
    pub orders_added: u64,
    /// Of those, orders learned by sync.
    pub orders_synced: u64,
    /// Anti-entropy rounds this node started (scheduled, follow-up and asking back).
    pub anti_entropy_rounds: u64,
    /// Orders an anti-entropy round brought that this node gossiped on.
    pub orders_regossiped: u64,
    /// Sync pages served to peers.
    pub sync_requests_served: u64,
    /// Sync requests to peers that failed.
    pub sync_failures: u64,
    /// Trade messages accepted from peers.
    pub trade_messages_received: u64,
    /// Notices dropped because the application did not read them.
    pub notices_dropped: u64,
    /// Peers banned for a while for flooding gossip or sending invalid gossip.
    pub peers_banned: u64,
    /// Connections closed because the node held more than
    /// [`PeeringConfig::max_peers`](super::PeeringConfig).
    pub peers_shed: u64,
    /// Dials the node started on its own to reach its outbound target.
    pub peer_dials: u64,
    /// Connections the node's DHT lookups opened, closed once the lookups were done with them
    /// (peers neither chosen, nor asked for, nor in the gossip mesh).
    pub lookups_closed: u64,
    /// Refused inbound messages by reason (only non-zero counts).
    pub rejected: BTreeMap<RejectReason, u64>,
}

impl NetworkStats {
    /// How many inbound messages were refused for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }
}
