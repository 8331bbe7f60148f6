//! Relay (circuit relay v2 server) mode: the libp2p relay configured from
//! [`RelayServerConfig`], with reservations and circuits gated by the node's auth manager.

use crate::{auth::AuthManager, network::RelayServerConfig};
use libp2p::{core::Multiaddr, relay, PeerId};
use std::{num::NonZeroU32, sync::Arc, time::Duration};

impl RelayServerConfig {
    /// The libp2p relay configuration for these limits, with reservations and circuits gated by
    /// `auth`.
    pub(crate) fn to_libp2p_with_auth(&self, auth: &Arc<AuthManager>) -> relay::Config {
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
    pub(crate) fn to_libp2p(&self) -> relay::Config {
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
