//! What the metrics learn from swarm events: connection attempts and outcomes, and
//! rust-libp2p's own metrics (swarm, Kademlia, identify, ping, relay, DCUtR, gossipsub).

use crate::{metrics::P2PMetrics, network::swarm::BehaviourEvent};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use std::collections::HashSet;

/// Behaviour-started dials remembered until they end (far above the pending-connection limit).
const MAX_DIALS_COUNTED: usize = 4096;

/// Records swarm events into the node's metrics, when metrics are on.
pub(super) struct SwarmMetrics {
    metrics: P2PMetrics,
    enabled: bool,
    /// Dials whose attempt was counted when they started.
    dials_counted: HashSet<ConnectionId>,
    #[cfg(not(target_arch = "wasm32"))]
    libp2p: libp2p::metrics::Metrics,
}

impl SwarmMetrics {
    pub(super) fn new(metrics: &P2PMetrics, enabled: bool) -> Self {
        Self {
            #[cfg(not(target_arch = "wasm32"))]
            libp2p: metrics.registry().with_registry(libp2p::metrics::Metrics::new),
            metrics: metrics.clone(),
            enabled,
            dials_counted: HashSet::new(),
        }
    }

    /// What the metrics learn from a swarm event (before the task reacts to it).
    pub(super) fn record(&mut self, event: &SwarmEvent<BehaviourEvent>) {
        if !self.enabled {
            return;
        }
        let m = &self.metrics;
        // An attempt counts when a behaviour starts the dial (the only start the swarm reports);
        // dials started otherwise (by the task, or by the relay transport itself) count when they
        // end, so attempts never fall behind outcomes.
        match event {
            SwarmEvent::Dialing { connection_id, .. } => {
                m.record_connection_attempt();
                if self.dials_counted.len() < MAX_DIALS_COUNTED {
                    self.dials_counted.insert(*connection_id);
                }
            }
            SwarmEvent::ConnectionEstablished { endpoint, established_in, connection_id, .. }
                if endpoint.is_dialer() =>
            {
                if !self.dials_counted.remove(connection_id) {
                    m.record_connection_attempt();
                }
                m.record_connection_success(established_in.as_millis().try_into().unwrap_or(u64::MAX))
            }
            SwarmEvent::OutgoingConnectionError { connection_id, .. } => {
                if !self.dials_counted.remove(connection_id) {
                    m.record_connection_attempt();
                }
                m.record_connection_failure()
            }
            _ => {}
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.record_libp2p(event);
    }

    /// rust-libp2p's own metrics (native only).
    #[cfg(not(target_arch = "wasm32"))]
    fn record_libp2p(&mut self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        if let SwarmEvent::Behaviour(ev) = event {
            match ev {
                BehaviourEvent::Gossipsub(e) => self.libp2p.record(e),
                BehaviourEvent::Kad(e) => self.libp2p.record(&**e),
                BehaviourEvent::Identify(e) => self.libp2p.record(&**e),
                BehaviourEvent::Ping(e) => self.libp2p.record(e),
                BehaviourEvent::RelayServer(e) => self.libp2p.record(&**e),
                BehaviourEvent::Dcutr(e) => self.libp2p.record(e),
                _ => {}
            }
        }
        self.libp2p.record(event);
    }
}
