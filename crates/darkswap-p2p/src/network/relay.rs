//! Relay (circuit relay v2 server) mode: limits sized for long-lived order-book links.

use crate::auth::{AuthManager, AuthorizationLevel};
use libp2p::{core::Multiaddr, relay, PeerId};
use std::{num::NonZeroU32, sync::Arc, time::Duration};

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

impl RelayServerConfig {
    /// The libp2p relay configuration for these limits, with reservations and circuits gated by
    /// `auth`.
    pub fn to_libp2p_with_auth(&self, auth: &Arc<AuthManager>) -> relay::Config {
        let mut config = self.to_libp2p();
        // The relay consults its rate limiters for every reservation and every circuit a source
        // opens: that hook is where authorization is enforced.
        for limiters in [&mut config.reservation_rate_limiters, &mut config.circuit_src_rate_limiters] {
            let (auth, min) = (auth.clone(), self.min_auth_level);
            limiters.push(Box::new(move |peer: PeerId, _: &Multiaddr, _| {
                let allowed =
                    if auth.config().require_auth { auth.is_authorized(&peer, min) } else { !auth.is_banned(&peer) };
                if !allowed {
                    tracing::info!(%peer, level = ?auth.authorization_level(&peer), "relay refused: not authorized");
                }
                allowed
            }));
        }
        config
    }

    /// The libp2p relay configuration for these limits.
    pub fn to_libp2p(&self) -> relay::Config {
        let minute = Duration::from_secs(60);
        let config = relay::Config {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: self.reservation_duration,
            reservation_rate_limiters: Vec::new(),
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: self.max_circuit_duration,
            max_circuit_bytes: self.max_circuit_bytes,
            circuit_src_rate_limiters: Vec::new(),
        };
        let config = match NonZeroU32::new(self.reservations_per_peer_per_minute) {
            Some(n) => config.reservation_rate_per_peer(n, minute),
            None => config,
        };
        match NonZeroU32::new(self.circuits_per_peer_per_minute) {
            Some(n) => config.circuit_src_per_peer(n, minute),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_outlive_libp2p_defaults() {
        let ours = RelayServerConfig::default().to_libp2p();
        let theirs = relay::Config::default();
        assert!(ours.max_circuit_duration > theirs.max_circuit_duration);
        assert!(ours.max_circuit_bytes > theirs.max_circuit_bytes);
        assert!(ours.max_reservations >= 1000);
        assert_eq!(ours.reservation_rate_limiters.len(), 1);
        assert_eq!(ours.circuit_src_rate_limiters.len(), 1);
    }
}
