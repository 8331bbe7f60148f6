//! Finding peers and relays: announcing this node as a relay in the DHT (relay mode), asking the
//! DHT for relays, peers that identify as relays, and peers on the local network (mDNS). What is
//! found goes to the shared relay discovery manager, which scores it.

use super::{
    connections::{is_specific, worth_sharing},
    Task,
};
use crate::{network::RELAY_PROVIDER_KEY, relay_discovery::RelaySource};
use libp2p::{identify, relay, swarm::ConnectionId, Multiaddr, PeerId};
use std::{collections::HashSet, time::Duration};

/// How often a relay renews its DHT provider record.
const RELAY_ANNOUNCE_SECS: u64 = 600;
/// Peers found by mDNS remembered (as the source of the relays among them).
#[cfg(not(target_arch = "wasm32"))]
const MDNS_PEERS_MAX: usize = 1024;

/// The DHT schedule of relay announcements and queries, and peers met by mDNS.
pub(super) struct Discovery {
    /// In relay mode: when the node last announced itself as a relay in the DHT.
    relay_mode: bool,
    last_announce: Option<u64>,
    last_query: Option<web_time::Instant>,
    last_prune: web_time::Instant,
    /// Peers found on the local network by mDNS (bounded).
    mdns_seen: HashSet<PeerId>,
}

impl Discovery {
    pub(super) fn new(relay_mode: bool) -> Self {
        Self {
            relay_mode,
            last_announce: None,
            last_query: None,
            last_prune: web_time::Instant::now(),
            mdns_seen: HashSet::new(),
        }
    }

    /// Whether this node runs a relay server.
    pub(super) fn relay_mode(&self) -> bool {
        self.relay_mode
    }
}

impl Task {
    /// Relays announce themselves as providers of [`RELAY_PROVIDER_KEY`] once they know DHT
    /// peers, then every 10 minutes (records on peers expire).
    pub(super) fn announce_relay(&mut self, now: u64) {
        let d = &self.discovery;
        if !d.relay_mode || d.last_announce.is_some_and(|t| now.saturating_sub(t) < RELAY_ANNOUNCE_SECS) {
            return;
        }
        let first = d.last_announce.is_none();
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        // The first call (at start) stores the record locally so peers asking this relay find it;
        // later calls also push it to the closest peers.
        if !first && kad.kbuckets().map(|b| b.num_entries()).sum::<usize>() == 0 {
            return;
        }
        match kad.start_providing(libp2p::kad::RecordKey::new(&RELAY_PROVIDER_KEY)) {
            Ok(_) => self.discovery.last_announce = Some(now),
            Err(e) => tracing::warn!(error = %e, "relay announcement failed"),
        }
    }

    /// Asks the DHT for relays every `dht_query_interval`, and prunes stale relays every minute.
    pub(super) fn discover_relays(&mut self) {
        let config = self.shared.relays.config();
        if self.discovery.last_prune.elapsed() >= Duration::from_secs(60) {
            self.discovery.last_prune = web_time::Instant::now();
            self.shared.relays.prune_relays();
        }
        if !config.enable_dht_discovery
            || self.discovery.last_query.is_some_and(|t| t.elapsed() < config.dht_query_interval)
        {
            return;
        }
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        if kad.kbuckets().map(|b| b.num_entries()).sum::<usize>() == 0 {
            return;
        }
        kad.get_providers(libp2p::kad::RecordKey::new(&RELAY_PROVIDER_KEY));
        self.discovery.last_query = Some(web_time::Instant::now());
    }

    /// A peer told us what it is: a relay is remembered, and a DHT peer's addresses go to
    /// Kademlia, those that others can reach ([`worth_sharing`]) given the address this
    /// connection reached the peer at.
    pub(super) fn on_identified(&mut self, peer_id: PeerId, connection: ConnectionId, info: identify::Info) {
        if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            let addrs = info.listen_addrs.iter().filter(|a| is_specific(a)).take(8).cloned().collect();
            let source =
                if self.discovery.mdns_seen.contains(&peer_id) { RelaySource::Mdns } else { RelaySource::Peer };
            if source == RelaySource::Mdns {
                tracing::info!(%peer_id, "relay found by mDNS");
            }
            self.shared.relays.add_relay_from(peer_id, addrs, source);
        }
        let kad_proto = libp2p::StreamProtocol::new(crate::network::KAD_PROTOCOL);
        if !info.protocols.contains(&kad_proto) {
            return;
        }
        let reached_at =
            self.shared.connections.lock().ok().and_then(|c| c.get(&connection).map(|c| c.remote_addr.clone()));
        let Some(reached_at) = reached_at else { return };
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            for addr in info.listen_addrs.into_iter().filter(|a| worth_sharing(a, &reached_at)).take(16) {
                kad.add_address(&peer_id, addr);
            }
        }
    }

    /// Peers on the local network: remember their addresses and connect, so identify tells
    /// whether they are relays.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn on_mdns(&mut self, found: Vec<(PeerId, Multiaddr)>) {
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        let local = *self.swarm.local_peer_id();
        for (peer, addr) in found.into_iter().filter(|(p, _)| *p != local) {
            let seen = &mut self.discovery.mdns_seen;
            if seen.len() >= MDNS_PEERS_MAX && !seen.contains(&peer) {
                continue;
            }
            tracing::debug!(%peer, %addr, "mDNS: peer on the local network");
            seen.insert(peer);
            self.swarm.add_peer_address(peer, addr);
            if !self.swarm.is_connected(&peer) {
                let opts = DialOpts::peer_id(peer).condition(PeerCondition::DisconnectedAndNotDialing).build();
                let id = opts.connection_id();
                if self.swarm.dial(opts).is_ok() {
                    self.peers_on_asked_dial(id);
                }
            }
        }
    }

    /// Relays announced in the DHT: remember them with the addresses Kademlia knows.
    pub(super) fn on_relay_providers(&mut self, providers: HashSet<PeerId>) {
        let local = *self.swarm.local_peer_id();
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        for peer in providers.into_iter().filter(|p| *p != local).take(64) {
            let addrs: Vec<Multiaddr> = kad
                .kbucket(peer)
                .and_then(|bucket| {
                    bucket
                        .iter()
                        .find(|e| *e.node.key.preimage() == peer)
                        .map(|e| e.node.value.iter().cloned().collect())
                })
                .unwrap_or_default();
            tracing::debug!(%peer, addrs = addrs.len(), "relay found in the DHT");
            self.shared.relays.add_relay_from(peer, addrs, RelaySource::Dht);
        }
    }
}
