//! Finding and ranking relays: bootstrap relays, relays announced in the DHT, relays seen on the
//! LAN, and any added by hand, scored by how they actually performed.
//!
//! ```
//! use darkswap_p2p::relay_discovery::{RelayDiscoveryConfig, RelayDiscoveryManager};
//! use libp2p::{Multiaddr, PeerId};
//!
//! let relays = RelayDiscoveryManager::new(RelayDiscoveryConfig::default());
//! let fast = PeerId::random();
//! let slow = PeerId::random();
//! relays.add_relay(fast, vec!["/ip4/127.0.0.1/tcp/9002".parse::<Multiaddr>().unwrap()]);
//! relays.add_relay(slow, vec!["/ip4/127.0.0.1/tcp/9003".parse::<Multiaddr>().unwrap()]);
//! relays.record_success(&fast, 20);
//! relays.record_success(&slow, 400);
//! relays.record_failure(&slow);
//! let best = relays.get_best_relays(1);
//! assert_eq!(best[0].peer_id, fast);
//! assert!(best[0].score() > 50.0);
//! ```
//!
//! A [`Network`](crate::network::Network) keeps one of these (see
//! [`NetworkHandle::relay_discovery`](crate::network::NetworkHandle::relay_discovery)) and feeds it:
//! relays it learns from the DHT, reservation outcomes and ping round-trip times.

use libp2p::{Multiaddr, PeerId};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use web_time::Instant;

/// How relay discovery behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayDiscoveryConfig {
    /// Relays known up front, `(peer id, address)`. They are never pruned.
    pub bootstrap_relays: Vec<(PeerId, Multiaddr)>,
    /// How often the network asks the DHT for relays.
    pub dht_query_interval: Duration,
    /// A discovered relay not seen (announced, reachable) for this long is pruned.
    pub relay_ttl: Duration,
    /// Most relays remembered; the worst-scoring ones are dropped beyond it.
    pub max_relays: usize,
    /// Look for relays announced in the DHT.
    pub enable_dht_discovery: bool,
    /// Look for relays on the local network (native only).
    pub enable_mdns_discovery: bool,
}

impl Default for RelayDiscoveryConfig {
    fn default() -> Self {
        Self {
            bootstrap_relays: Vec::new(),
            dht_query_interval: Duration::from_secs(300),
            relay_ttl: Duration::from_secs(3600),
            max_relays: 100,
            enable_dht_discovery: true,
            enable_mdns_discovery: true,
        }
    }
}

/// Where a relay was learned from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelaySource {
    /// From [`RelayDiscoveryConfig::bootstrap_relays`].
    Bootstrap,
    /// Announced in the DHT.
    Dht,
    /// Seen on the local network.
    Mdns,
    /// Added with [`RelayDiscoveryManager::add_relay`].
    Manual,
    /// A connected peer that serves the circuit relay protocol (learned through identify).
    Peer,
}

/// What is known about one relay.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayInfo {
    /// The relay.
    pub peer_id: PeerId,
    /// Its addresses (at most 8 kept).
    pub addrs: Vec<Multiaddr>,
    /// Where it was learned from.
    pub source: RelaySource,
    /// Successful interactions (reservation, circuit, ping).
    pub successes: u64,
    /// Failed interactions.
    pub failures: u64,
    /// Smoothed latency in milliseconds (exponentially weighted, 1/4 weight to each new sample).
    pub latency_ms: Option<f64>,
    /// Last time the relay was announced, added or answered.
    pub last_seen: Instant,
}

/// Addresses kept per relay.
const MAX_ADDRS: usize = 8;

impl RelayInfo {
    fn new(peer_id: PeerId, addrs: Vec<Multiaddr>, source: RelaySource) -> Self {
        let mut info = RelayInfo {
            peer_id,
            addrs: Vec::new(),
            source,
            successes: 0,
            failures: 0,
            latency_ms: None,
            last_seen: Instant::now(),
        };
        info.merge_addrs(addrs);
        info
    }

    fn merge_addrs(&mut self, addrs: Vec<Multiaddr>) {
        for a in addrs {
            if !self.addrs.contains(&a) {
                if self.addrs.len() == MAX_ADDRS {
                    self.addrs.remove(0);
                }
                self.addrs.push(a);
            }
        }
    }

    /// The relay's score, 0 to 100: 70 points for reliability, 30 for speed.
    ///
    /// Reliability is the success rate with one success and one failure assumed up front (so a
    /// new relay starts at 0.5, and one lucky try is not a perfect record); speed is
    /// `1 / (1 + latency_ms / 100)` (0.5 when unmeasured). An unknown relay scores 50.
    pub fn score(&self) -> f64 {
        let reliability = (self.successes as f64 + 1.0) / ((self.successes + self.failures) as f64 + 2.0);
        let speed = self.latency_ms.map_or(0.5, |ms| 1.0 / (1.0 + ms.max(0.0) / 100.0));
        100.0 * (0.7 * reliability + 0.3 * speed)
    }
}

#[derive(Debug)]
struct State {
    config: RelayDiscoveryConfig,
    relays: HashMap<PeerId, RelayInfo>,
}

/// Known relays and their scores. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct RelayDiscoveryManager {
    state: Arc<Mutex<State>>,
}

impl RelayDiscoveryManager {
    /// A manager knowing the config's bootstrap relays.
    pub fn new(config: RelayDiscoveryConfig) -> Self {
        let mut relays = HashMap::new();
        for (peer, addr) in &config.bootstrap_relays {
            relays
                .entry(*peer)
                .or_insert_with(|| RelayInfo::new(*peer, Vec::new(), RelaySource::Bootstrap))
                .merge_addrs(vec![addr.clone()]);
        }
        Self { state: Arc::new(Mutex::new(State { config, relays })) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single insert or field write), so a poisoned lock is still usable.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The configuration.
    pub fn config(&self) -> RelayDiscoveryConfig {
        self.with(|s| s.config.clone())
    }

    /// Adds (or refreshes) a relay learned by hand.
    pub fn add_relay(&self, peer_id: PeerId, addrs: Vec<Multiaddr>) {
        self.add_relay_from(peer_id, addrs, RelaySource::Manual)
    }

    /// Adds (or refreshes) a relay learned from `source`. Beyond `max_relays`, the lowest-scoring
    /// relay that is not a bootstrap relay makes room.
    pub fn add_relay_from(&self, peer_id: PeerId, addrs: Vec<Multiaddr>, source: RelaySource) {
        self.with(|s| {
            if let Some(info) = s.relays.get_mut(&peer_id) {
                info.merge_addrs(addrs);
                info.last_seen = Instant::now();
                return;
            }
            if s.relays.len() >= s.config.max_relays.max(1) && !evict_worst(s) {
                return;
            }
            s.relays.insert(peer_id, RelayInfo::new(peer_id, addrs, source));
        })
    }

    /// Records a successful interaction with `peer_id` that took `latency_ms`.
    pub fn record_success(&self, peer_id: &PeerId, latency_ms: u64) {
        self.with(|s| {
            if let Some(info) = s.relays.get_mut(peer_id) {
                info.successes += 1;
                let sample = latency_ms as f64;
                info.latency_ms = Some(info.latency_ms.map_or(sample, |old| 0.75 * old + 0.25 * sample));
                info.last_seen = Instant::now();
            }
        })
    }

    /// Records a failed interaction with `peer_id`.
    pub fn record_failure(&self, peer_id: &PeerId) {
        self.with(|s| {
            if let Some(info) = s.relays.get_mut(peer_id) {
                info.failures += 1;
            }
        })
    }

    /// Up to `n` relays, best score first.
    pub fn get_best_relays(&self, n: usize) -> Vec<RelayInfo> {
        let mut all = self.relays();
        all.sort_by(|a, b| b.score().total_cmp(&a.score()));
        all.truncate(n);
        all
    }

    /// Every known relay, in no particular order.
    pub fn relays(&self) -> Vec<RelayInfo> {
        self.with(|s| s.relays.values().cloned().collect())
    }

    /// What is known about `peer_id`, if it is a known relay.
    pub fn relay(&self, peer_id: &PeerId) -> Option<RelayInfo> {
        self.with(|s| s.relays.get(peer_id).cloned())
    }

    /// Whether `peer_id` is a known relay.
    pub fn is_relay(&self, peer_id: &PeerId) -> bool {
        self.with(|s| s.relays.contains_key(peer_id))
    }

    /// Number of known relays.
    pub fn len(&self) -> usize {
        self.with(|s| s.relays.len())
    }

    /// Whether no relay is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops relays not seen for `relay_ttl` (bootstrap relays stay), then the worst ones beyond
    /// `max_relays`. Returns how many were dropped.
    pub fn prune_relays(&self) -> usize {
        self.with(|s| {
            let before = s.relays.len();
            let ttl = s.config.relay_ttl;
            s.relays.retain(|_, r| r.source == RelaySource::Bootstrap || r.last_seen.elapsed() < ttl);
            while s.relays.len() > s.config.max_relays.max(1) && evict_worst(s) {}
            before - s.relays.len()
        })
    }
}

/// Removes the lowest-scoring relay that is not a bootstrap relay; false if there is none.
fn evict_worst(s: &mut State) -> bool {
    let worst = s
        .relays
        .values()
        .filter(|r| r.source != RelaySource::Bootstrap)
        .min_by(|a, b| a.score().total_cmp(&b.score()))
        .map(|r| r.peer_id);
    worst.is_some_and(|p| s.relays.remove(&p).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn seed_example_config_and_scores_from_outcomes() {
        let boot = PeerId::random();
        let config = RelayDiscoveryConfig {
            bootstrap_relays: vec![(boot, addr(9002)), (PeerId::random(), addr(9003))],
            dht_query_interval: Duration::from_secs(300),
            relay_ttl: Duration::from_secs(3600),
            max_relays: 100,
            enable_dht_discovery: true,
            enable_mdns_discovery: true,
        };
        let d = RelayDiscoveryManager::new(config);
        assert_eq!(d.len(), 2);
        let p = PeerId::random();
        d.add_relay(p, vec![addr(9004)]);
        assert_eq!(d.relay(&p).unwrap().score(), 50.0, "unknown relays start neutral");
        d.record_success(&p, 50);
        let after_success = d.relay(&p).unwrap().score();
        assert!(after_success > 50.0);
        d.record_failure(&p);
        assert!(d.relay(&p).unwrap().score() < after_success);
        assert_eq!(d.get_best_relays(1)[0].peer_id, p);
        assert_eq!(d.get_best_relays(5).len(), 3);
    }

    #[test]
    fn bounded_by_max_relays_keeping_bootstrap_and_best() {
        let boot = PeerId::random();
        let d = RelayDiscoveryManager::new(RelayDiscoveryConfig {
            bootstrap_relays: vec![(boot, addr(1))],
            max_relays: 3,
            ..Default::default()
        });
        let good = PeerId::random();
        d.add_relay(good, vec![addr(2)]);
        d.record_success(&good, 10);
        let bad = PeerId::random();
        d.add_relay(bad, vec![addr(3)]);
        d.record_failure(&bad);
        let newcomer = PeerId::random();
        d.add_relay(newcomer, vec![addr(4)]);
        assert_eq!(d.len(), 3);
        assert!(d.is_relay(&boot) && d.is_relay(&good) && d.is_relay(&newcomer));
        assert!(!d.is_relay(&bad), "the worst non-bootstrap relay made room");
    }

    #[test]
    fn prune_drops_stale_discovered_relays_only() {
        let boot = PeerId::random();
        let d = RelayDiscoveryManager::new(RelayDiscoveryConfig {
            bootstrap_relays: vec![(boot, addr(1))],
            relay_ttl: Duration::ZERO,
            ..Default::default()
        });
        d.add_relay_from(PeerId::random(), vec![addr(2)], RelaySource::Dht);
        assert_eq!(d.prune_relays(), 1);
        assert!(d.is_relay(&boot));
    }

    #[test]
    fn addresses_are_bounded_and_deduplicated() {
        let d = RelayDiscoveryManager::new(RelayDiscoveryConfig::default());
        let p = PeerId::random();
        for port in 0..20 {
            d.add_relay(p, vec![addr(port), addr(port)]);
        }
        assert_eq!(d.relay(&p).unwrap().addrs.len(), MAX_ADDRS);
    }
}
