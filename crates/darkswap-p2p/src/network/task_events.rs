//! How the network task reacts to swarm events: connections, gossip validation, sync and trade.

use super::{
    behaviour::BehaviourEvent,
    notice::{ConnectionInfo, NetworkNotice},
    task::{counters, Task},
    NetworkEvent,
};
use crate::{
    error::Error,
    network::stats::Counters,
    order_book::{BookError, Insert},
    protocol::{
        envelope::{self, Envelope},
        validate, Message, RejectReason,
    },
    relay_discovery::RelaySource,
    runtime::now_unix,
};
use darkswap_support::types::PeerId;
use libp2p::{
    core::ConnectedPoint,
    dcutr,
    gossipsub::{self, MessageAcceptance},
    identify, kad,
    multiaddr::Protocol,
    ping, relay, request_response,
    swarm::SwarmEvent,
    Multiaddr,
};
use std::sync::Arc;

/// Behaviour-started dials remembered until they end (far above the pending-connection limit).
const MAX_DIALS_COUNTED: usize = 4096;

/// What a message did to the local book.
pub(super) enum Applied {
    /// News: reported to the application and forwarded.
    New,
    /// An order already in the book (learned by sync or an earlier copy).
    Known,
    /// Nothing to pass on (a withdrawn order, a trade message).
    Dropped,
}

/// Peers a joining node syncs its book from.
const SYNC_PEERS: usize = 2;
/// Peers found by mDNS remembered (as the source of the relays among them).
#[cfg(not(target_arch = "wasm32"))]
const MDNS_PEERS_MAX: usize = 1024;
/// Disconnected peers remembered (so a returning one triggers a sync).
const LOST_PEERS_MAX: usize = 1024;

/// An error with its sources, so the root cause (e.g. the relay's refusal) is visible.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether `addr` is a direct address on a specific IP (not 0.0.0.0 / ::, not a circuit).
fn is_specific(addr: &Multiaddr) -> bool {
    addr.iter().all(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        Protocol::P2pCircuit => false,
        _ => true,
    })
}

/// The relay in a `/…/p2p/<relay>/p2p-circuit/…` address.
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last_peer = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => last_peer = Some(peer),
            Protocol::P2pCircuit => return last_peer,
            _ => {}
        }
    }
    None
}

impl Task {
    /// What the metrics learn from a swarm event (before the task reacts to it).
    fn record_metrics(&mut self, event: &SwarmEvent<BehaviourEvent>) {
        let m = &self.shared.metrics;
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
        self.record_libp2p_metrics(event);
    }

    /// rust-libp2p's own metrics (native only).
    #[cfg(not(target_arch = "wasm32"))]
    fn record_libp2p_metrics(&mut self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        if let SwarmEvent::Behaviour(ev) = event {
            match ev {
                BehaviourEvent::Gossipsub(e) => self.libp2p_metrics.record(e),
                BehaviourEvent::Kad(e) => self.libp2p_metrics.record(&**e),
                BehaviourEvent::Identify(e) => self.libp2p_metrics.record(&**e),
                BehaviourEvent::Ping(e) => self.libp2p_metrics.record(e),
                BehaviourEvent::RelayServer(e) => self.libp2p_metrics.record(&**e),
                BehaviourEvent::Dcutr(e) => self.libp2p_metrics.record(e),
                _ => {}
            }
        }
        self.libp2p_metrics.record(event);
    }

    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if self.metrics_enabled {
            self.record_metrics(&event);
        }
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                tracing::info!(%address, "listening");
                if self.relay_mode && is_specific(&address) {
                    // A relay bound to a specific IP is reachable there (it was configured so);
                    // a wildcard bind needs an explicit external address.
                    self.swarm.add_external_address(address.clone());
                }
                if let Ok(mut a) = self.shared.listen_addrs.lock() {
                    if !a.contains(&address) {
                        a.push(address.clone());
                    }
                }
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let _ = reply.send(Ok(address));
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                if let Ok(mut a) = self.shared.listen_addrs.lock() {
                    a.retain(|x| x != &address);
                }
            }
            SwarmEvent::ListenerClosed { listener_id, reason, addresses } => {
                let released = self.circuit_listeners.get(&listener_id).is_some_and(|(r, _)| self.released.remove(r));
                if released {
                    if let Some((relay, _)) = self.circuit_listeners.remove(&listener_id) {
                        tracing::info!(%relay, "relay reservation released");
                        self.reservations.remove(&relay);
                        self.set_relay_status(relay, super::RelayStatus::Released);
                    }
                } else if let Some((relay, _)) = self.circuit_listeners.remove(&listener_id) {
                    tracing::warn!(%relay, ?reason, "relay reservation ended");
                    self.shared.relays.record_failure(&relay);
                    self.relay_backoff.insert(relay, web_time::Instant::now() + super::task::RELAY_BACKOFF);
                    let notice = match (self.reservations.remove(&relay), &reason) {
                        (Some(_), _) => NetworkNotice::RelayReservationLost { relay_peer_id: relay },
                        (None, Err(e)) => {
                            NetworkNotice::RelayReservationFailed { relay_peer_id: relay, error: error_chain(e) }
                        }
                        (None, Ok(())) => NetworkNotice::RelayReservationFailed {
                            relay_peer_id: relay,
                            error: "the relay closed the reservation".into(),
                        },
                    };
                    let error = match &notice {
                        NetworkNotice::RelayReservationFailed { error, .. } => error.clone(),
                        _ => "reservation lost".to_string(),
                    };
                    // Status first: whoever reacts to the notice must already read `Failed`.
                    self.reservation_failed(relay, error);
                    self.notice(notice);
                }
                if let Ok(mut a) = self.shared.listen_addrs.lock() {
                    a.retain(|x| !addresses.contains(x));
                }
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let why = match reason {
                        Ok(()) => "listener closed".to_string(),
                        Err(e) => e.to_string(),
                    };
                    let _ = reply.send(Err(Error::Listen(why)));
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(error = %error, "listener error");
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let _ = reply.send(Err(Error::Listen(error.to_string())));
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let (addr, local) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => (address.clone(), None),
                    ConnectedPoint::Listener { send_back_addr, local_addr } => {
                        (send_back_addr.clone(), Some(local_addr.clone()))
                    }
                };
                let info = ConnectionInfo {
                    peer_id,
                    remote_addr: addr.clone(),
                    relayed: endpoint.is_relayed(),
                    outbound: endpoint.is_dialer(),
                };
                if let Ok(mut c) = self.shared.connections.lock() {
                    c.insert(connection_id, info);
                }
                // Answer the dialer only now: whoever awaited the dial may read `connections()` next.
                if let Some(reply) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if num_established.get() == 1 {
                    tracing::info!(peer = %peer_id, %addr, "peer connected");
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                    // Sync when joining (the first few peers), after being cut off from every
                    // gossip peer, and when a peer we lost comes back (we may have missed what it
                    // published meanwhile). Otherwise gossip keeps the book current and a full
                    // sync with every newly discovered peer would only repeat it.
                    let isolated = !self
                        .swarm
                        .behaviour()
                        .gossipsub
                        .all_peers()
                        .any(|(p, topics)| *p != peer_id && !topics.is_empty());
                    let returning = self.lost_peers.remove(&peer_id).is_some();
                    if isolated || returning || self.syncs_done + self.syncs_running.len() < SYNC_PEERS {
                        self.syncs_running.insert(peer_id);
                        self.request_sync(peer_id, None);
                    }
                }
                if let Some(relay) = relay_of(&addr).or_else(|| local.as_ref().and_then(relay_of)) {
                    self.emit(NetworkEvent::ConnectedThroughRelay { relay_peer_id: relay, dst_peer_id: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed { connection_id, peer_id, num_established, cause, .. } => {
                if let Ok(mut c) = self.shared.connections.lock() {
                    c.remove(&connection_id);
                }
                if num_established > 0 {
                    return;
                }
                tracing::info!(peer = %peer_id, cause = ?cause, "peer disconnected");
                if let Ok(mut a) = self.shared.activity.lock() {
                    a.remove(&peer_id);
                }
                if self.lost_peers.len() >= LOST_PEERS_MAX {
                    // Forget the longest-lost peer.
                    if let Some(oldest) = self.lost_peers.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                        self.lost_peers.remove(&oldest);
                    }
                }
                self.lost_peers.insert(peer_id, web_time::Instant::now());
                self.sync_pages.remove(&peer_id);
                self.syncs_running.remove(&peer_id);
                self.sync_digests.remove(&peer_id);
                self.asked_back.remove(&peer_id);
                self.flood.forget(&peer_id);
                self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
                if let Some(reply) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Err(Error::Dial(error.to_string())));
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        let traffic = match &ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source: peer, .. })
            | BehaviourEvent::Sync(request_response::Event::Message { peer, .. })
            | BehaviourEvent::Trade(request_response::Event::Message { peer, .. }) => Some(*peer),
            _ => None,
        };
        if let Some(peer) = traffic {
            self.shared.touch(peer);
        }
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                self.on_gossip(propagation_source, message_id, message)
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { topic, .. }) => self.publish_unsent(&topic),
            BehaviourEvent::Sync(ev) => self.on_sync(ev),
            BehaviourEvent::Trade(ev) => self.on_trade(ev),
            BehaviourEvent::Auth(ev) => self.on_auth(*ev),
            BehaviourEvent::Blocked(ev) => match ev {},
            #[cfg(not(target_arch = "wasm32"))]
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => self.on_mdns(found),
            #[cfg(not(target_arch = "wasm32"))]
            BehaviourEvent::Mdns(libp2p::mdns::Event::Expired(_)) => {}
            #[cfg(target_arch = "wasm32")]
            BehaviourEvent::Mdns(ev) => match ev {},
            BehaviourEvent::Identify(ev) => {
                let identify::Event::Received { peer_id, info, .. } = *ev else { return };
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    let addrs = info.listen_addrs.iter().filter(|a| is_specific(a)).take(8).cloned().collect();
                    let source = if self.mdns_seen.contains(&peer_id) { RelaySource::Mdns } else { RelaySource::Peer };
                    if source == RelaySource::Mdns {
                        tracing::info!(%peer_id, "relay found by mDNS");
                    }
                    self.shared.relays.add_relay_from(peer_id, addrs, source);
                }
                let kad_proto = libp2p::StreamProtocol::new(super::KAD_PROTOCOL);
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    if info.protocols.contains(&kad_proto) {
                        for addr in info.listen_addrs.into_iter().take(16) {
                            kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            BehaviourEvent::Kad(ev) => {
                if let kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders { providers, .. })),
                    ..
                } = *ev
                {
                    self.on_relay_providers(providers)
                }
            }
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) if self.shared.relays.is_relay(&peer) => {
                match result {
                    Ok(rtt) => self.shared.relays.record_success(&peer, rtt.as_millis() as u64),
                    Err(_) => self.shared.relays.record_failure(&peer),
                }
            }
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => {
                    tracing::info!(peer = %remote_peer_id, "hole punched: direct connection");
                    self.notice(NetworkNotice::DirectConnectionUpgraded { peer_id: remote_peer_id });
                }
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; staying relayed");
                    self.notice(NetworkNotice::DirectConnectionUpgradeFailed {
                        peer_id: remote_peer_id,
                        error: e.to_string(),
                    });
                }
            },
            BehaviourEvent::Autonat(libp2p::autonat::Event::StatusChanged { new, .. }) => {
                if let Some(r) = self.swarm.behaviour_mut().autonat_client.v1_status(new) {
                    self.reachability_changed(r);
                }
            }
            BehaviourEvent::AutonatClient(r) => self.reachability_changed(r),
            BehaviourEvent::RelayServer(ev) => match *ev {
                relay::Event::ReservationReqAccepted { src_peer_id, renewed } => {
                    tracing::info!(peer = %src_peer_id, renewed, "relay: reservation accepted")
                }
                relay::Event::ReservationReqDenied { src_peer_id, status } => {
                    tracing::info!(peer = %src_peer_id, ?status, "relay: reservation denied")
                }
                relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
                    tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "relay: circuit opened")
                }
                relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
                    tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "relay: circuit denied")
                }
                relay::Event::CircuitClosed { src_peer_id, dst_peer_id, error } => {
                    tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, ?error, "relay: circuit closed")
                }
                other => tracing::debug!(event = ?other, "relay"),
            },
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) if !renewal || !self.reservations.contains_key(&relay_peer_id) => {
                let id = self.next_reservation;
                self.next_reservation += 1;
                let started = self.circuit_listeners.values().find(|(r, _)| *r == relay_peer_id).map(|(_, t)| *t);
                let setup_ms = started.map_or(0, |t| t.elapsed().as_millis() as u64);
                self.shared.relays.record_success(&relay_peer_id, setup_ms);
                self.reservations.insert(relay_peer_id, id);
                tracing::info!(relay = %relay_peer_id, reservation = id, "relay reservation accepted");
                self.reservation_accepted(relay_peer_id, id);
                self.emit(NetworkEvent::RelayReserved { relay_peer_id, reservation_id: id });
            }
            _ => {}
        }
    }

    fn reachability_changed(&mut self, r: super::Reachability) {
        tracing::info!(reachability = ?r, "reachability changed");
        if let Ok(mut cur) = self.shared.reachability.lock() {
            *cur = r.clone();
        }
        self.notice(NetworkNotice::ReachabilityChanged(r));
    }

    /// Peers on the local network: remember their addresses and connect, so identify tells
    /// whether they are relays.
    #[cfg(not(target_arch = "wasm32"))]
    fn on_mdns(&mut self, found: Vec<(PeerId, Multiaddr)>) {
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        let local = *self.swarm.local_peer_id();
        for (peer, addr) in found.into_iter().filter(|(p, _)| *p != local) {
            if self.mdns_seen.len() >= MDNS_PEERS_MAX && !self.mdns_seen.contains(&peer) {
                continue;
            }
            tracing::debug!(%peer, %addr, "mDNS: peer on the local network");
            self.mdns_seen.insert(peer);
            self.swarm.add_peer_address(peer, addr);
            if !self.swarm.is_connected(&peer) {
                let opts = DialOpts::peer_id(peer).condition(PeerCondition::DisconnectedAndNotDialing).build();
                let _ = self.swarm.dial(opts);
            }
        }
    }

    /// Relays announced in the DHT: remember them with the addresses Kademlia knows.
    fn on_relay_providers(&mut self, providers: std::collections::HashSet<PeerId>) {
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

    /// Validates a gossip message once (gossipsub has already dropped duplicates) and tells
    /// gossipsub whether to forward it.
    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, msg: gossipsub::Message) {
        let Some(topic) = self.topics.get(&msg.topic).cloned() else {
            self.report(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        if !self.admit_gossip(source, &id) {
            return;
        }
        let now = now_unix();
        let checked =
            envelope::open(&topic, &msg.data).and_then(|env| validate::check_envelope(&topic, &env, now).map(|()| env));
        let env = match checked {
            Ok(env) => env,
            Err(reason) => {
                tracing::warn!(peer = %source, %topic, %reason, "rejected gossip message");
                counters(&self.shared).reject(reason);
                self.report(&id, &source, MessageAcceptance::Reject);
                self.after_invalid(source);
                return;
            }
        };
        if !self.admit_author(&env, source, &id) {
            return;
        }
        match self.apply_to_book(&env, &Arc::from(msg.data)) {
            Ok(Applied::New) => {
                self.report(&id, &source, MessageAcceptance::Accept);
                Counters::bump(&self.shared.stats.messages_accepted);
                tracing::debug!(peer = %source, %topic, kind = env.message.kind(), "message accepted");
                self.emit(NetworkEvent::MessageReceived { peer_id: source, topic, message: env.message });
            }
            // Known by sync but new to gossip here (gossipsub drops its own duplicates): relay it,
            // since peers that synced elsewhere may not have it; the application saw it already.
            Ok(Applied::Known) => self.report(&id, &source, MessageAcceptance::Accept),
            Ok(Applied::Dropped) => self.report(&id, &source, MessageAcceptance::Ignore),
            Err(e) => {
                tracing::debug!(peer = %source, error = %e, "order not added");
                counters(&self.shared).reject(RejectReason::BookFull);
                self.report(&id, &source, MessageAcceptance::Ignore);
            }
        }
    }

    pub(super) fn report(&mut self, id: &gossipsub::MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(id, source, acceptance);
    }

    /// Applies a validated message to the local book.
    pub(super) fn apply_to_book(&mut self, env: &Envelope, bytes: &Arc<[u8]>) -> Result<Applied, BookError> {
        let Ok(mut book) = self.shared.book.lock() else {
            return Ok(Applied::Dropped);
        };
        match &env.message {
            Message::OrderAnnounce(order) => match book.insert(order.clone(), bytes.clone()) {
                Ok(Insert::Added) => {
                    Counters::bump(&self.shared.stats.orders_added);
                    Ok(Applied::New)
                }
                Ok(Insert::Duplicate) => Ok(Applied::Known),
                Ok(Insert::Withdrawn) => Ok(Applied::Dropped),
                Err(e) => Err(e),
            },
            Message::OrderCancel(c) => {
                book.withdraw(c.order_id, c.maker, c.expiry);
                Ok(Applied::New)
            }
            Message::TradeSettled(s) => {
                book.withdraw(s.order_id, s.maker, s.expiry);
                Ok(Applied::New)
            }
            Message::Trade(_) => Ok(Applied::Dropped),
        }
    }
}
