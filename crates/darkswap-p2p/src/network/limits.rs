//! The limits a node applies to what peers can make it hold or do: connections, gossip rates,
//! and (in relay mode) reservations and circuits. Set them on the
//! [`NetworkBuilder`](super::NetworkBuilder); the swarm and the task enforce them.

use crate::auth::AuthorizationLevel;
use std::time::Duration;

/// Rate limits on inbound order gossip (set with
/// [`NetworkBuilder::gossip_limits`](super::NetworkBuilder::gossip_limits)).
#[derive(Clone, Debug, PartialEq)]
pub struct GossipLimits {
    /// Messages per second one peer may hand us (all makers together), and its burst.
    pub per_peer_rate: u32,
    /// Burst allowance of `per_peer_rate`.
    pub per_peer_burst: u32,
    /// Order-book messages per second from one maker (announce, cancel, settled), and its burst.
    pub per_maker_rate: u32,
    /// Burst allowance of `per_maker_rate`.
    pub per_maker_burst: u32,
    /// Messages per second this node checks in total.
    pub global_rate: u32,
    /// Burst allowance of `global_rate`.
    pub global_burst: u32,
    /// Over-limit messages from one peer within a minute before it is disconnected and banned.
    pub max_strikes: u32,
    /// Invalid messages (rejected by the validator) from one peer within a minute before it is
    /// disconnected and banned.
    pub max_invalid: u32,
    /// How long a flooding peer, or one sending invalid messages, stays banned.
    pub ban_duration: Duration,
    /// Makers tracked at once (their buckets); idle ones are forgotten first.
    pub max_tracked_makers: usize,
}

impl Default for GossipLimits {
    fn default() -> Self {
        Self {
            per_peer_rate: 400,
            per_peer_burst: 800,
            // A maker may post a whole ladder at once (as many orders as the book keeps per
            // maker), then 50 a second.
            per_maker_rate: 50,
            per_maker_burst: 1000,
            global_rate: 4000,
            global_burst: 8000,
            max_strikes: 200,
            max_invalid: 5,
            ban_duration: Duration::from_secs(600),
            max_tracked_makers: 65_536,
        }
    }
}

/// Resource caps of a node (set with
/// [`NetworkBuilder::resource_limits`](super::NetworkBuilder::resource_limits)). A relay-mode
/// node raises `max_connections` by its reservation and circuit limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Established connections in total.
    pub max_connections: u32,
    /// Established connections with one peer.
    pub max_connections_per_peer: u32,
    /// Inbound connections (pending or established) from one IP address. Relayed connections
    /// are not counted against the relay's IP.
    pub max_inbound_per_ip: u32,
    /// Whether `max_inbound_per_ip` also applies to loopback (off by default: local tools and
    /// tests run many nodes on one machine).
    pub limit_loopback: bool,
    /// Inbound connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Outbound dials in progress.
    pub max_pending_outgoing: u32,
    /// Gossip topics one peer may be subscribed to, as this node tracks them; subscriptions
    /// beyond it are refused (the whole request).
    pub max_topics_per_peer: usize,
    /// Subscription changes in one gossip RPC.
    pub max_subscriptions_per_rpc: usize,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_peer: 4,
            max_inbound_per_ip: 16,
            limit_loopback: false,
            max_pending_incoming: 128,
            max_pending_outgoing: 128,
            max_topics_per_peer: 64,
            max_subscriptions_per_rpc: 128,
        }
    }
}

/// How many peers a node keeps (set with
/// [`NetworkBuilder::peering`](super::NetworkBuilder::peering)); applies when discovery is on.
///
/// The node dials peers it learnt from the DHT until it holds `target_outbound` outbound
/// connections, preferring address ranges (IPv4 /16, IPv6 /32) it has no outbound peer in yet,
/// so that one operator with many addresses in one range cannot surround it (eclipse). Beyond
/// `max_peers` connections it closes the surplus, choosing at random among peers that are
/// neither in its gossip mesh, nor trusted, nor using its relay, nor among its chosen outbound
/// peers: a bootstrap node stays a door, not a hub, and the peers it lets go carry on with the
/// peers its DHT answers named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeeringConfig {
    /// Outbound connections the node keeps (0: dial only what it is told to).
    pub target_outbound: usize,
    /// Connections the node keeps in all; the surplus is closed (0: no limit here, only
    /// [`ResourceLimits::max_connections`]).
    pub max_peers: usize,
    /// Outbound peers the node chooses within one address range.
    pub max_outbound_per_range: usize,
}

impl Default for PeeringConfig {
    fn default() -> Self {
        // 8 outbound: with as many inbound on average, a node holds about twice gossipsub's mesh
        // degree (6), so the mesh has peers to choose from; 40 in all leaves room for the DHT's
        // short-lived query connections before any is closed.
        Self { target_outbound: 8, max_peers: 40, max_outbound_per_range: 2 }
    }
}

/// Kademlia key under which relays announce themselves as providers, so clients can find them.
pub const RELAY_PROVIDER_KEY: &[u8] = b"/darkswap/relay/v1";

/// Limits of a node in relay mode.
///
/// rust-libp2p's defaults (circuits of 2 minutes and 128 KiB) cut a gossip link within minutes;
/// these defaults let a NATed trader stay on one circuit for an hour and push a day's order flow
/// through it, while one relay still serves a thousand reservations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayServerConfig {
    /// Reservations held at once, all peers together.
    pub max_reservations: usize,
    /// Reservations held at once by one peer.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the client must renew it.
    pub reservation_duration: Duration,
    /// Circuits open at once, all peers together.
    pub max_circuits: usize,
    /// Circuits open at once per peer (as source or destination).
    pub max_circuits_per_peer: usize,
    /// Longest life of one circuit.
    pub max_circuit_duration: Duration,
    /// Most bytes one circuit may carry (both directions).
    pub max_circuit_bytes: u64,
    /// Reservation requests one peer may make per minute.
    pub reservations_per_peer_per_minute: u32,
    /// Circuits one peer may open per minute.
    pub circuits_per_peer_per_minute: u32,
    /// The level a peer needs for a reservation or a circuit when the node's auth config has
    /// `require_auth` (banned peers never get either).
    pub min_auth_level: AuthorizationLevel,
}

impl Default for RelayServerConfig {
    fn default() -> Self {
        Self {
            max_reservations: 2048,
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(3600),
            max_circuits: 512,
            max_circuits_per_peer: 32,
            max_circuit_duration: Duration::from_secs(3600),
            max_circuit_bytes: 256 * 1024 * 1024,
            reservations_per_peer_per_minute: 30,
            circuits_per_peer_per_minute: 60,
            min_auth_level: AuthorizationLevel::Basic,
        }
    }
}
