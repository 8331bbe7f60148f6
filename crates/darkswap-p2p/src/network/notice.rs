//! Status reports beyond the seed's five events: hole punching, reachability, relay reservations.

use libp2p::{Multiaddr, PeerId};

/// This node's reachability as AutoNAT measures it (other peers dialing it back).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Reachability {
    /// Not measured yet.
    #[default]
    Unknown,
    /// Peers reached this node at this address.
    Public(Multiaddr),
    /// Peers could not dial this node: it needs relays.
    Private,
}

/// A status report from [`Network::next_notice`](super::Network::next_notice).
///
/// Notices are reports, not data: when the application does not read them, the task keeps the
/// 64 oldest and counts the rest in [`NetworkStats::notices_dropped`](super::NetworkStats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkNotice {
    /// Hole punching (DCUtR) turned a relayed connection to `peer_id` into a direct one.
    DirectConnectionUpgraded {
        /// The peer now connected directly.
        peer_id: PeerId,
    },
    /// Hole punching to `peer_id` failed; the relayed connection stays in use.
    DirectConnectionUpgradeFailed {
        /// The peer still reached through a relay.
        peer_id: PeerId,
        /// Why it failed.
        error: String,
    },
    /// AutoNAT's view of this node's reachability changed.
    ReachabilityChanged(Reachability),
    /// A reservation on a relay ended (the relay went away or refused to renew).
    RelayReservationLost {
        /// The relay.
        relay_peer_id: PeerId,
    },
    /// A relay refused a reservation, or could not be reached to make one.
    RelayReservationFailed {
        /// The relay.
        relay_peer_id: PeerId,
        /// Why (the relay's refusal, e.g. its limits, or the connection error).
        error: String,
    },
}

/// One open connection, as [`NetworkHandle::connections`](super::NetworkHandle::connections)
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The remote peer.
    pub peer_id: PeerId,
    /// The remote address (for relayed connections, the circuit address).
    pub remote_addr: Multiaddr,
    /// Whether the connection runs over a relay circuit.
    pub relayed: bool,
    /// Whether this node dialed it.
    pub outbound: bool,
}

/// Where the pool stands with one relay.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayStatus {
    /// Never heard of.
    Unknown,
    /// Known to relay discovery (with its score, 0–100), not used.
    Known {
        /// The relay's score.
        score: f64,
    },
    /// Being asked to prove itself (`require_relay_auth`).
    Verifying,
    /// This node is authenticating to it before reserving.
    Authenticating,
    /// A reservation was requested.
    Reserving,
    /// Holding a reservation.
    Reserved {
        /// The reservation's id, as in `NetworkEvent::RelayReserved`.
        reservation_id: u64,
    },
    /// The last attempt failed (refused, unreachable, lost, or not trusted).
    Failed {
        /// Why.
        error: String,
    },
    /// The reservation was given up (more than `max_relay_connections`).
    Released,
}
