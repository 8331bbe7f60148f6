//! The peer manager: how many peers the node keeps and which. It dials peers the DHT named until
//! the node has its outbound target, spread over address ranges; walks the DHT towards random
//! keys while it knows too few candidates; closes the connections its own DHT lookups opened once
//! they are done with them; and closes connections beyond the node's limit, never those the node
//! depends on. See [`PeeringConfig`] for the policy.

use super::Task;
use crate::network::{stats::Counters, PeeringConfig};
use libp2p::{
    multiaddr::Protocol,
    relay,
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        ConnectionId,
    },
    Multiaddr, PeerId,
};
use rand::seq::SliceRandom;
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};
use web_time::Instant;

/// How often the node checks its peers.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often, at most, the node walks the DHT.
const WALK_EVERY: Duration = Duration::from_secs(10);
/// The node walks the DHT while its routing table holds fewer than this many times its
/// outbound target (see `dial_towards_target`).
const WALK_BELOW_KNOWN: usize = 4;
/// How long a peer whose dial failed is left alone: 10 s after one failure, doubling with each
/// failure in a row up to 10 minutes. A fixed two minutes kept a region that had been cut off
/// from the rest cut off for two minutes after the cut healed (every dial across had failed).
const RETRY_FIRST: Duration = Duration::from_secs(10);
/// The longest a failed peer is left alone.
const RETRY_MAX: Duration = Duration::from_secs(600);
/// Dials the manager has under way at once.
const MAX_DIALING: usize = 8;
/// Peers remembered as recently failed (the oldest is forgotten first).
const MAX_FAILED: usize = 1024;
/// How long a connection this node's DHT lookups opened may stay before it is closed (unless it
/// became useful: a gossip mesh peer, a chosen peer). Kademlia keeps idle connections for the
/// swarm's idle timeout (10 minutes by default), and every lookup opens a dozen or more: left
/// alone they hold a node far above its peer limit, and each of them costs identify and gossip
/// traffic. Long enough for a lookup's request to the peer (a connection and one round trip:
/// under 2 s between any two regions); a later lookup opens it again. When 300 nodes join
/// together, their Kademlia bootstrap queries open tens of thousands of connections within
/// 30 s, so the time each stays sets the peak: at 10 s nodes held about 170 connections, at 4 s
/// about 100 (median, in the lab).
const LOOKUP_GRACE: Duration = Duration::from_secs(4);
/// How long a new connection is safe from shedding: long enough for a newcomer to ask its
/// bootstrap node for peers and dial them. A bootstrap node that shed at random among everyone
/// cut some newcomers off before they had asked (at 300 nodes joining over 9 s, one of them
/// ended with no peer at all).
const NEW_GRACE: Duration = Duration::from_secs(30);
/// How often, at most, a node alone or short of peers with none to dial dials its bootstrap
/// peers again.
const REBOOTSTRAP_EVERY: Duration = Duration::from_secs(30);
/// Peers using this node's relay remembered as such (the relay server caps reservations and
/// circuits far below this).
const MAX_RELAY_USERS: usize = 4096;

/// An address range: IPv4 /16, IPv6 /32, or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Range {
    V4([u8; 2]),
    V6([u16; 2]),
    Name(String),
}

fn range_of(addr: &Multiaddr) -> Option<Range> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(Range::V4([ip.octets()[0], ip.octets()[1]])),
        Protocol::Ip6(ip) => Some(Range::V6([ip.segments()[0], ip.segments()[1]])),
        Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n) | Protocol::Dnsaddr(n) => Some(Range::Name(n.into())),
        _ => None,
    }
}

/// The peer manager's state.
pub(super) struct Peers {
    config: PeeringConfig,
    last_check: Option<Instant>,
    last_walk: Option<Instant>,
    /// Peers this node chose to dial, and when.
    dialing: HashMap<PeerId, Instant>,
    /// Peers this node chose and is connected to (protected from shedding).
    chosen: HashSet<PeerId>,
    /// Peers whose dials failed: until when they are left alone, and the failures in a row.
    failed: HashMap<PeerId, (Instant, u32)>,
    /// Peers holding a reservation on, or a circuit through, this node's relay.
    relay_users: HashSet<PeerId>,
    /// When the first of each connected peer's current connections opened (bounded by the
    /// swarm's connection limits, like the connections).
    opened: HashMap<PeerId, Instant>,
    /// Dials this node was asked for (by the application, its bootstrap list, mDNS), under way.
    asked_dials: HashSet<ConnectionId>,
    /// Peers such a dial connected (kept like chosen ones).
    asked: HashSet<PeerId>,
    /// Peers whose connections this node is closing on purpose, and connections it is closing
    /// (its lookups', where the peer has others).
    closing: HashSet<PeerId>,
    closing_connections: HashSet<ConnectionId>,
    /// The bootstrap peers, dialed again when the node has no connection left.
    bootstrap: Vec<Multiaddr>,
    last_rebootstrap: Option<Instant>,
}

impl Peers {
    pub(super) fn new(config: Option<PeeringConfig>, bootstrap: Vec<Multiaddr>) -> Option<Self> {
        Some(Self {
            config: config?,
            last_check: None,
            last_walk: None,
            dialing: HashMap::new(),
            chosen: HashSet::new(),
            failed: HashMap::new(),
            relay_users: HashSet::new(),
            opened: HashMap::new(),
            asked_dials: HashSet::new(),
            asked: HashSet::new(),
            closing: HashSet::new(),
            closing_connections: HashSet::new(),
            bootstrap,
            last_rebootstrap: None,
        })
    }

    fn note_failed(&mut self, peer: PeerId) {
        if self.failed.len() >= MAX_FAILED && !self.failed.contains_key(&peer) {
            if let Some(oldest) = self.failed.iter().min_by_key(|(_, (t, _))| *t).map(|(p, _)| *p) {
                self.failed.remove(&oldest);
            }
        }
        let now = Instant::now();
        let entry = self.failed.entry(peer).or_insert((now, 0));
        entry.1 = entry.1.saturating_add(1);
        entry.0 = now + RETRY_FIRST.saturating_mul(1 << (entry.1 - 1).min(6)).min(RETRY_MAX);
    }
}

impl Task {
    /// Every few seconds: dial towards the outbound target, then close any surplus.
    pub(super) fn manage_peers(&mut self) {
        let Some(p) = self.peers.as_mut() else { return };
        if p.last_check.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        p.last_check = Some(Instant::now());
        p.dialing.retain(|_, t| t.elapsed() < Duration::from_secs(30));
        // A failure is forgotten (its count too) once its wait has been over for as long again.
        let now = Instant::now();
        p.failed.retain(|_, (until, n)| now < *until + RETRY_FIRST.saturating_mul(1 << (*n - 1).min(6)));
        // While a reservation is being made, no dial of ours (nor a DHT walk, whose queries dial)
        // may race the relay client's own dial to the relay: the second dial to a peer fails,
        // and the reservation with it.
        if !self.relays.reserving_now() {
            self.rebootstrap_if_alone();
            self.dial_towards_target();
        }
        self.close_lookup_connections();
        self.shed_surplus();
    }

    /// A node with no connection at all (its bootstrap peers shed it before it learned others,
    /// or every peer it knew went away) dials its bootstrap peers again.
    fn rebootstrap_if_alone(&mut self) {
        if self.swarm.connected_peers().next().is_none() {
            self.rebootstrap();
        }
    }

    /// Dials the bootstrap peers it is not connected to, every [`REBOOTSTRAP_EVERY`] at most:
    /// for a node alone, or short of peers with none left to dial. A region cut off from the
    /// rest ends that way: its dials across failed, Kademlia forgot the peers over there, and
    /// the few peers left inside know no one else either; without this it stayed cut off after
    /// the cut healed.
    fn rebootstrap(&mut self) {
        let Some(p) = self.peers.as_ref() else { return };
        if p.bootstrap.is_empty() || p.last_rebootstrap.is_some_and(|t| t.elapsed() < REBOOTSTRAP_EVERY) {
            return;
        }
        let addrs: Vec<Multiaddr> = p
            .bootstrap
            .iter()
            .filter(|a| !matches!(a.iter().last(), Some(Protocol::P2p(peer)) if self.swarm.is_connected(&peer)))
            .cloned()
            .collect();
        if let Some(p) = self.peers.as_mut() {
            p.last_rebootstrap = Some(Instant::now());
        }
        tracing::debug!("short of peers: dialing the bootstrap peers again");
        for addr in addrs {
            let opts = DialOpts::from(addr);
            let id = opts.connection_id();
            if self.swarm.dial(opts).is_ok() {
                self.peers_on_asked_dial(id);
            }
        }
    }

    /// Peers this node keeps whatever its limits: its gossip mesh, trusted peers, users of its
    /// relay, peers it chose or was asked to dial, trade counterparties, relays it uses.
    fn protected_peers(&self) -> HashSet<PeerId> {
        let mut protected: HashSet<PeerId> = self.swarm.behaviour().gossipsub.all_mesh_peers().copied().collect();
        protected.extend(self.shared.auth.config().trusted_peers.iter().copied());
        if let Some(p) = self.peers.as_ref() {
            protected.extend(p.relay_users.iter().copied());
            protected.extend(p.chosen.iter().copied());
            protected.extend(p.asked.iter().copied());
        }
        protected.extend(self.trades.counterparties());
        // Relays this node reserves on or dials through are its own choice, like `chosen`.
        protected.extend(self.relays.in_use());
        protected
    }

    /// Closes connections that only this node's DHT lookups wanted: dialed by this node, to a
    /// peer neither chosen nor asked for nor otherwise protected, open longer than
    /// [`LOOKUP_GRACE`]. Only this node's own connections: the remote side of a lookup leaves
    /// them to the node that looked up, which knows when it is done, and a connection the peer
    /// opened may be its chosen one (two nodes that looked each other up at once hold two
    /// connections, one each to close).
    fn close_lookup_connections(&mut self) {
        let Some(p) = self.peers.as_ref() else { return };
        let old: HashSet<PeerId> =
            p.opened.iter().filter(|(_, t)| t.elapsed() >= LOOKUP_GRACE).map(|(peer, _)| *peer).collect();
        if old.is_empty() {
            return;
        }
        let protected = self.protected_peers();
        // Per peer: this node's direct outbound connections (closed), and whether it has any
        // other (inbound or relayed: the peer's choice, left alone).
        let mut ours: HashMap<PeerId, Vec<ConnectionId>> = HashMap::new();
        let mut others: HashSet<PeerId> = HashSet::new();
        match self.shared.connections.lock() {
            Ok(c) => {
                for (id, i) in c.iter().filter(|(_, i)| old.contains(&i.peer_id) && !protected.contains(&i.peer_id)) {
                    if i.outbound && !i.relayed {
                        ours.entry(i.peer_id).or_default().push(*id);
                    } else {
                        others.insert(i.peer_id);
                    }
                }
            }
            Err(_) => return,
        }
        for (peer, mut ids) in ours {
            let Some(p) = self.peers.as_mut() else { return };
            ids.retain(|id| p.closing_connections.insert(*id));
            if ids.is_empty() {
                continue;
            }
            if !others.contains(&peer) {
                p.closing.insert(peer);
            }
            tracing::debug!(%peer, "closing a connection a DHT lookup opened");
            Counters::bump(&self.shared.stats.lookups_closed);
            for id in ids {
                self.swarm.close_connection(id);
            }
        }
    }

    /// `id` is a dial this node was asked for: the peer it reaches is kept like a chosen one.
    pub(super) fn peers_on_asked_dial(&mut self, id: ConnectionId) {
        if let Some(p) = self.peers.as_mut() {
            p.asked_dials.insert(id);
        }
    }

    /// Outbound direct connections per peer, with the address each is at: all of them, and those
    /// to the peers it chose, which are what the target counts. A lookup's connection is
    /// outbound too, but it closes within seconds; the peers it was asked to dial (bootstrap
    /// nodes above all) are kept but not counted, since they are the same for every node and
    /// shed their newcomers: counted, they would leave each node short once they go.
    fn outbound_peers(&self) -> (HashMap<PeerId, Multiaddr>, HashMap<PeerId, Multiaddr>) {
        let Ok(c) = self.shared.connections.lock() else { return Default::default() };
        let all: HashMap<PeerId, Multiaddr> =
            c.values().filter(|i| i.outbound && !i.relayed).map(|i| (i.peer_id, i.remote_addr.clone())).collect();
        let kept = match self.peers.as_ref() {
            Some(p) => all.iter().filter(|(peer, _)| p.chosen.contains(peer)),
            None => return (all, HashMap::new()),
        }
        .map(|(peer, addr)| (*peer, addr.clone()))
        .collect();
        (all, kept)
    }

    fn dial_towards_target(&mut self) {
        let Some(p) = self.peers.as_ref() else { return };
        let config = p.config.clone();
        let now = Instant::now();
        let (outbound, kept) = self.outbound_peers();
        let wanted = config.target_outbound.saturating_sub(kept.len() + p.dialing.len());
        let room = MAX_DIALING.saturating_sub(p.dialing.len());
        if wanted == 0 || room == 0 {
            return;
        }
        let mut per_range: HashMap<Range, usize> = HashMap::new();
        for addr in kept.values() {
            if let Some(r) = range_of(addr) {
                *per_range.entry(r).or_default() += 1;
            }
        }
        let local = *self.swarm.local_peer_id();
        let mut candidates: Vec<(PeerId, Option<Range>)> = Vec::new();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            for bucket in kad.kbuckets() {
                for entry in bucket.iter() {
                    let peer = *entry.node.key.preimage();
                    let range = entry.node.value.iter().find_map(range_of);
                    candidates.push((peer, range));
                }
            }
        }
        let known = candidates.len();
        // Relays are the relay part's to dial: a dial of ours under way when it starts a
        // reservation would make the reservation's own dial fail.
        let relays = &self.shared.relays;
        let reserving: HashSet<PeerId> = self.relays.in_use().collect();
        // Peers connected inbound are someone else's choice: an attacker must not be able to
        // become a chosen peer by dialing in.
        let inbound: HashSet<PeerId> =
            self.swarm.connected_peers().filter(|peer| !outbound.contains_key(peer)).copied().collect();
        candidates.retain(|(peer, _)| {
            *peer != local
                && !kept.contains_key(peer)
                && !p.asked.contains(peer)
                && !inbound.contains(peer)
                && !p.dialing.contains_key(peer)
                && p.failed.get(peer).is_none_or(|(until, _)| now >= *until)
                && !relays.is_relay(peer)
                && !reserving.contains(peer)
        });
        candidates.shuffle(&mut rand::thread_rng());
        // Ranges with fewer of our outbound peers first: the spread is what makes an eclipse
        // expensive (an attacker needs addresses in many ranges, not many addresses).
        candidates.sort_by_key(|(_, r)| r.as_ref().map_or(0, |r| per_range.get(r).copied().unwrap_or(0)));
        let mut picked = Vec::new();
        for (peer, range) in candidates {
            if picked.len() >= wanted.min(room) {
                break;
            }
            if let Some(r) = range {
                let n = per_range.entry(r).or_default();
                if *n >= config.max_outbound_per_range {
                    continue;
                }
                *n += 1;
            }
            picked.push(peer);
        }
        // Walk only when the routing table is thin, or nothing in it can be dialed now. Peers
        // merely busy (connected inbound, dialed lately, failed lately) free up within seconds,
        // and every walk opens a connection to each peer it asks: at 300 nodes, walking
        // whenever a round came up short held nodes at 100 and more lookup connections.
        if picked.len() < wanted && (known < WALK_BELOW_KNOWN * config.target_outbound || picked.is_empty()) {
            self.walk_dht();
        }
        if picked.is_empty() {
            self.rebootstrap();
        }
        for peer in picked {
            // A peer a lookup of ours is connected to already is adopted as it is.
            if outbound.contains_key(&peer) {
                if let Some(p) = self.peers.as_mut() {
                    p.chosen.insert(peer);
                }
                continue;
            }
            // Addresses come from Kademlia, which the swarm asks when it dials a known peer.
            let opts = DialOpts::peer_id(peer).condition(PeerCondition::DisconnectedAndNotDialing).build();
            tracing::debug!(%peer, "dialing towards the outbound peer target");
            if self.swarm.dial(opts).is_ok() {
                Counters::bump(&self.shared.stats.peer_dials);
                if let Some(p) = self.peers.as_mut() {
                    p.dialing.insert(peer, Instant::now());
                }
            }
        }
    }

    /// Asks the DHT for the peers closest to a random key: the answers fill the routing table
    /// with peers this node did not know.
    fn walk_dht(&mut self) {
        let Some(p) = self.peers.as_mut() else { return };
        if p.last_walk.is_some_and(|t| t.elapsed() < WALK_EVERY) {
            return;
        }
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        if kad.kbuckets().map(|b| b.num_entries()).sum::<usize>() == 0 {
            return;
        }
        kad.get_closest_peers(PeerId::random());
        p.last_walk = Some(Instant::now());
    }

    /// Closes connections beyond `max_peers`, at random among the peers nothing protects that
    /// connected more than [`NEW_GRACE`] ago.
    fn shed_surplus(&mut self) {
        let Some(p) = self.peers.as_ref() else { return };
        let max = p.config.max_peers;
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if max == 0 || connected.len() <= max {
            return;
        }
        let young: HashSet<PeerId> =
            p.opened.iter().filter(|(_, t)| t.elapsed() < NEW_GRACE).map(|(peer, _)| *peer).collect();
        // Only connections past their grace count towards the surplus: otherwise a stranger
        // who kept opening fresh connections (each safe for its first 30 s) would have the
        // node close its honest older peers to make room. Young ones are bounded by the
        // connection limits, and are judged once they are old.
        let old: Vec<PeerId> = connected.iter().copied().filter(|peer| !young.contains(peer)).collect();
        if old.len() <= max {
            return;
        }
        let surplus = old.len() - max;
        let protected = self.protected_peers();
        let mut victims: Vec<PeerId> = old.into_iter().filter(|peer| !protected.contains(peer)).collect();
        victims.shuffle(&mut rand::thread_rng());
        for peer in victims.into_iter().take(surplus) {
            tracing::debug!(%peer, "peer limit reached: closing the connection");
            Counters::bump(&self.shared.stats.peers_shed);
            if let Some(p) = self.peers.as_mut() {
                p.closing.insert(peer);
            }
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// A connection opened: a dial the manager chose became an outbound peer.
    pub(super) fn peers_on_connected(&mut self, peer: PeerId, id: ConnectionId, outbound: bool) {
        let Some(p) = self.peers.as_mut() else { return };
        if p.dialing.remove(&peer).is_some() && outbound {
            p.chosen.insert(peer);
        }
        if p.asked_dials.remove(&id) {
            p.asked.insert(peer);
        }
        p.opened.entry(peer).or_insert_with(Instant::now);
        p.failed.remove(&peer);
    }

    /// A connection closed.
    pub(super) fn peers_on_connection_closed(&mut self, id: ConnectionId) {
        if let Some(p) = self.peers.as_mut() {
            p.closing_connections.remove(&id);
        }
    }

    /// The last connection to `peer` closed. Returns whether this node closed it on purpose
    /// (shed, or a lookup's connection it was done with).
    pub(super) fn peers_on_disconnected(&mut self, peer: PeerId) -> bool {
        let Some(p) = self.peers.as_mut() else { return false };
        p.chosen.remove(&peer);
        p.relay_users.remove(&peer);
        p.asked.remove(&peer);
        p.opened.remove(&peer);
        p.closing.remove(&peer)
    }

    /// A dial failed: a peer the manager chose is left alone for a while.
    pub(super) fn peers_on_dial_failed(&mut self, id: ConnectionId, peer: Option<PeerId>) {
        let Some(p) = self.peers.as_mut() else { return };
        p.asked_dials.remove(&id);
        let Some(peer) = peer else { return };
        if p.dialing.remove(&peer).is_some() {
            p.note_failed(peer);
        }
    }

    /// This node's relay server accepted a reservation or a circuit: its users stay connected.
    pub(super) fn peers_on_relay_server(&mut self, ev: &relay::Event) {
        let Some(p) = self.peers.as_mut() else { return };
        let users: &[PeerId] = match ev {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => &[*src_peer_id],
            relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => &[*src_peer_id, *dst_peer_id],
            relay::Event::ReservationTimedOut { src_peer_id } => {
                p.relay_users.remove(src_peer_id);
                &[]
            }
            _ => &[],
        };
        for peer in users {
            if p.relay_users.len() < MAX_RELAY_USERS {
                p.relay_users.insert(*peer);
            }
        }
    }
}
