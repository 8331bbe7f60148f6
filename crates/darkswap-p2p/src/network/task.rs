//! The network task: owns the swarm, runs commands, turns swarm events into [`NetworkEvent`]s.
//!
//! Backpressure: events wait in a bounded queue; while it is full the task stops polling the swarm
//! (so the network slows down instead of dropping anything) but keeps serving commands.

use super::{
    behaviour::Behaviour, command::Command, listed::Listed, stats::Counters, NetworkBuilder, NetworkEvent, Shared,
};
use crate::{
    error::{Error, PublishError},
    protocol::{envelope, validate, Message, ORDERBOOK_TOPIC},
    runtime::{self, now_unix},
    trade::{TradeSessions, TradeState},
};
use darkswap_support::types::{Order, OrderCancel, PeerId, TradeMessage};
use futures::{
    channel::{mpsc, oneshot},
    FutureExt, Sink, StreamExt,
};
use libp2p::{
    core::transport::ListenerId,
    gossipsub::{self, IdentTopic, TopicHash},
    identity::Keypair,
    multiaddr::Protocol,
    request_response::OutboundRequestId,
    swarm::{dial_opts::DialOpts, ConnectionId},
    Multiaddr, Swarm,
};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

/// How often orders expire and trades are pruned.
const TICK: Duration = Duration::from_secs(1);
/// How long a relay that lost or refused a reservation is skipped.
pub(super) const RELAY_BACKOFF: Duration = Duration::from_secs(30);
/// How often a relay renews its DHT provider record.
const RELAY_ANNOUNCE_SECS: u64 = 600;
/// Swarm events handled per wake-up before yielding to other tasks.
const POLL_BUDGET: usize = 256;
/// Own messages published while no peer was subscribed, kept to gossip once one is.
const UNSENT_MAX: usize = 256;

/// Orders gossiped on per second (and burst), well below the per-peer rate a receiver allows by
/// default (`GossipLimits`: 400/s, 800), so that a large repair never makes this node look like
/// a flooder; orders beyond it still spread by anti-entropy.
const REGOSSIP_RATE: u32 = 100;
/// Burst allowance of [`REGOSSIP_RATE`].
const REGOSSIP_BURST: u32 = 200;

pub(crate) struct Task {
    pub(super) swarm: Swarm<Listed<Behaviour>>,
    pub(super) keypair: Keypair,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    notices: mpsc::Sender<super::NetworkNotice>,
    pub(super) pending_events: VecDeque<NetworkEvent>,
    event_cap: usize,
    pub(super) shared: Arc<Shared>,
    pub(super) trades: TradeSessions,
    pub(super) topics: HashMap<TopicHash, String>,
    pub(super) pending_listen: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr, Error>>>,
    pub(super) pending_dial: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, Error>>>,
    pub(super) pending_trades: HashMap<OutboundRequestId, PendingTrade>,
    pub(super) sync_pages: HashMap<PeerId, u32>,
    /// Peers we are syncing from now, and how many full syncs completed.
    pub(super) syncs_running: HashSet<PeerId>,
    pub(super) syncs_done: usize,
    /// Anti-entropy rounds running (the digest sent), and when the last one started.
    pub(super) sync_digests: HashMap<PeerId, Vec<u64>>,
    pub(super) last_anti_entropy: web_time::Instant,
    pub(super) anti_entropy_every: Duration,
    /// When each peer was last asked back (see `on_sync`); connected peers only.
    pub(super) asked_back: HashMap<PeerId, web_time::Instant>,
    /// Bounds the orders anti-entropy brought that are gossiped on (see `on_sync_page`).
    pub(super) regossip: crate::rate::TokenBucket,
    /// An anti-entropy round brought orders this node lacked, so the next one starts on the
    /// next tick (with another peer) instead of a whole interval later: after an overload that
    /// made gossip drop forwards, a book catches up in seconds.
    pub(super) anti_entropy_repaired: bool,
    /// Peers whose last connection closed, and when (bounded).
    pub(super) lost_peers: HashMap<PeerId, web_time::Instant>,
    pub(super) reservations: HashMap<PeerId, u64>,
    pub(super) next_reservation: u64,
    tick: futures_timer::Delay,
    /// Gossip rate limits and invalid-message counts, and temporary bans (until the instant).
    pub(super) flood: super::flood::FloodGuard,
    pub(super) temp_bans: HashMap<PeerId, web_time::Instant>,
    /// Circuit listeners (reservations being made or held) and the relay and start time of each.
    pub(super) circuit_listeners: HashMap<ListenerId, (PeerId, web_time::Instant)>,
    last_relay_query: Option<web_time::Instant>,
    /// Reservations to keep, and relays that failed recently (not retried until the instant).
    min_reservations: usize,
    pub(super) relay_backoff: HashMap<PeerId, web_time::Instant>,
    last_relay_prune: web_time::Instant,
    /// In relay mode: when the node last announced itself as a relay in the DHT.
    pub(super) relay_mode: bool,
    last_relay_announce: Option<u64>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Trade messages waiting for the end-to-end session with their peer, and key offers in flight.
    pub(super) awaiting_key: HashMap<PeerId, Vec<PendingTrade>>,
    /// Own messages published with no subscribed peer yet (oldest first, bounded): gossiped when
    /// a peer subscribes, so peers that already synced from our neighbours still hear of them.
    unsent: VecDeque<(TopicHash, Vec<u8>)>,
    /// rust-libp2p's own metrics (swarm, kad, identify, ping, relay, DCUtR, gossipsub messages).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) libp2p_metrics: libp2p::metrics::Metrics,
    /// Dials whose attempt was counted when they started.
    pub(super) dials_counted: HashSet<libp2p::swarm::ConnectionId>,
    pub(super) metrics_enabled: bool,
    pub(super) key_offers: HashMap<OutboundRequestId, PeerId>,
    /// Auth requests in flight, tokens to present to relays, and relays authenticated to.
    pub(super) auth_requests: HashMap<OutboundRequestId, (PeerId, super::command::AuthPurpose)>,
    pub(super) relay_tokens: HashMap<PeerId, Vec<u8>>,
    pub(super) relays_authed: HashSet<PeerId>,
    /// Relays being authenticated to before a reservation, and their addresses.
    pub(super) relay_auth_pending: HashMap<PeerId, Multiaddr>,
    /// Whether to authenticate to a relay before reserving on it.
    auth_to_relays: bool,
    /// The relay pool's policy: relays verified (and being verified) before reserving.
    pub(super) relay_policy: Option<super::command::RelayPolicy>,
    pub(super) relays_verified: HashSet<PeerId>,
    pub(super) relay_verify_pending: HashMap<PeerId, Multiaddr>,
    /// Callers waiting for a reservation on a relay, and reservations given up on purpose.
    pub(super) reserve_waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, Error>>>>,
    pub(super) released: HashSet<PeerId>,
    pub(super) max_reservations: Option<usize>,
    /// Trade counterparties being authenticated to (`None`) or authenticated to at an instant.
    pub(super) trade_auth: HashMap<PeerId, Option<web_time::Instant>>,
    /// Dials through relays waiting for this node to authenticate to the relay.
    pub(super) dial_after_auth: HashMap<PeerId, Vec<(Multiaddr, DialReply)>>,
    /// Peers found on the local network by mDNS (bounded).
    pub(super) mdns_seen: HashSet<PeerId>,
}

/// Where a dial's outcome goes.
pub(super) type DialReply = oneshot::Sender<Result<PeerId, Error>>;

pub(super) struct PendingTrade {
    pub(super) peer: PeerId,
    pub(super) message: TradeMessage,
    pub(super) reply: oneshot::Sender<Result<TradeState, Error>>,
    /// Whether it was already re-sent after the peer lost its session.
    pub(super) retried: bool,
}

impl Task {
    pub(super) fn new(
        swarm: Swarm<Listed<Behaviour>>,
        keypair: Keypair,
        builder: &NetworkBuilder,
        commands: mpsc::Receiver<Command>,
        (events, notices): (mpsc::Sender<NetworkEvent>, mpsc::Sender<super::NetworkNotice>),
        shared: Arc<Shared>,
    ) -> Result<Self, Error> {
        let local = *swarm.local_peer_id();
        // Native nodes listen and answer DHT queries; browsers cannot accept inbound connections.
        #[cfg(not(target_arch = "wasm32"))]
        let swarm = {
            let mut swarm = swarm;
            if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
                kad.set_mode(Some(libp2p::kad::Mode::Server));
            }
            swarm
        };
        #[cfg(not(target_arch = "wasm32"))]
        let libp2p_metrics = shared.metrics.registry().with_registry(libp2p::metrics::Metrics::new);
        let mut task = Task {
            swarm,
            keypair,
            commands,
            events,
            notices,
            pending_events: VecDeque::new(),
            event_cap: builder.event_buffer,
            shared,
            trades: TradeSessions::new(local, builder.max_trades),
            topics: HashMap::new(),
            pending_listen: HashMap::new(),
            pending_dial: HashMap::new(),
            pending_trades: HashMap::new(),
            sync_pages: HashMap::new(),
            syncs_running: HashSet::new(),
            syncs_done: 0,
            sync_digests: HashMap::new(),
            last_anti_entropy: web_time::Instant::now(),
            anti_entropy_every: builder.anti_entropy,
            asked_back: HashMap::new(),
            regossip: crate::rate::TokenBucket::new(REGOSSIP_RATE, REGOSSIP_BURST, web_time::Instant::now()),
            anti_entropy_repaired: false,
            lost_peers: HashMap::new(),
            reservations: HashMap::new(),
            next_reservation: 1,
            tick: runtime::interval(TICK),
            flood: super::flood::FloodGuard::new(builder.gossip_limits.clone(), web_time::Instant::now()),
            temp_bans: HashMap::new(),
            circuit_listeners: HashMap::new(),
            last_relay_query: None,
            min_reservations: builder
                .min_relay_reservations
                .unwrap_or(usize::from(!builder.config.relay_peers.is_empty())),
            relay_backoff: HashMap::new(),
            last_relay_prune: web_time::Instant::now(),
            relay_mode: builder.relay_server.is_some(),
            last_relay_announce: None,
            shutdown: None,
            awaiting_key: HashMap::new(),
            unsent: VecDeque::new(),
            #[cfg(not(target_arch = "wasm32"))]
            libp2p_metrics,
            dials_counted: HashSet::new(),
            metrics_enabled: builder.metrics_enabled,
            key_offers: HashMap::new(),
            auth_requests: HashMap::new(),
            relay_tokens: builder.relay_tokens.iter().cloned().collect(),
            relays_authed: HashSet::new(),
            relay_auth_pending: HashMap::new(),
            auth_to_relays: builder.auth_set || !builder.relay_tokens.is_empty(),
            relay_policy: None,
            relays_verified: HashSet::new(),
            relay_verify_pending: HashMap::new(),
            reserve_waiters: HashMap::new(),
            released: HashSet::new(),
            max_reservations: None,
            trade_auth: HashMap::new(),
            dial_after_auth: HashMap::new(),
            mdns_seen: HashSet::new(),
        };
        for topic in &builder.config.topics {
            task.subscribe(topic);
        }
        for addr in &builder.external_addrs {
            task.swarm.add_external_address(addr.clone());
        }
        for addr in &builder.listen {
            task.swarm.listen_on(addr.clone()).map_err(|e| Error::Listen(format!("{addr}: {e}")))?;
        }
        for addr in &builder.config.relay_peers {
            task.add_known_peer(addr);
            match addr.iter().last() {
                Some(Protocol::P2p(relay)) => {
                    if let Err(e) = task.reserve(relay, addr.clone()) {
                        tracing::warn!(%addr, error = %e, "relay reservation failed to start");
                    }
                }
                _ => tracing::warn!(%addr, "relay address has no /p2p/<peer id>"),
            }
        }
        // Relays first: their transport dials them itself, and a bootstrap dial already under way
        // to the same peer would make the reservation's own dial fail.
        let relays: HashSet<PeerId> =
            task.circuit_listeners.values().map(|(p, _)| *p).chain(task.relay_auth_pending.keys().copied()).collect();
        for addr in &builder.config.bootstrap_peers {
            task.add_known_peer(addr);
            if matches!(addr.iter().last(), Some(Protocol::P2p(p)) if relays.contains(&p)) {
                continue;
            }
            if let Err(e) = task.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "bootstrap dial failed");
            }
        }
        task.announce_relay(0);
        Ok(task)
    }

    fn add_known_peer(&mut self, addr: &Multiaddr) {
        if let Some(Protocol::P2p(peer)) = addr.iter().last() {
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                kad.add_address(&peer, addr.clone());
            }
        }
    }

    pub(super) async fn run(mut self) {
        futures::future::poll_fn(|cx| self.poll(cx)).await;
        if let Some(reply) = self.shutdown.take() {
            let _ = reply.send(());
        }
        tracing::debug!("network task stopped");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..POLL_BUDGET {
            self.flush_events(cx);
            match self.commands.poll_next_unpin(cx) {
                Poll::Ready(Some(cmd)) => {
                    self.on_command(cmd);
                    if self.shutdown.is_some() {
                        return Poll::Ready(());
                    }
                    continue;
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            if self.tick.poll_unpin(cx).is_ready() {
                self.tick.reset(TICK);
                self.on_tick();
                continue;
            }
            if self.pending_events.len() >= self.event_cap {
                // Backpressure: flush_events registered a wake-up for when the app reads.
                return Poll::Pending;
            }
            match self.swarm.poll_next_unpin(cx) {
                Poll::Ready(Some(event)) => self.on_swarm_event(event),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn flush_events(&mut self, cx: &mut Context<'_>) {
        while !self.pending_events.is_empty() {
            match Pin::new(&mut self.events).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let ev = self.pending_events.pop_front().expect("checked non-empty");
                    if Pin::new(&mut self.events).start_send(ev).is_err() {
                        self.pending_events.clear();
                    }
                }
                // The application dropped its receiver: nobody will read events again.
                Poll::Ready(Err(_)) => self.pending_events.clear(),
                Poll::Pending => return,
            }
        }
    }

    pub(super) fn emit(&mut self, event: NetworkEvent) {
        if !self.events.is_closed() {
            self.pending_events.push_back(event);
        }
    }

    pub(super) fn notice(&mut self, notice: super::NetworkNotice) {
        tracing::debug!(?notice, "notice");
        if let Err(e) = self.notices.try_send(notice) {
            if e.is_full() {
                Counters::bump(&self.shared.stats.notices_dropped);
            }
        }
    }

    fn on_tick(&mut self) {
        let now = now_unix();
        if let Ok(mut book) = self.shared.book.lock() {
            let expired = book.expire(now);
            if !expired.is_empty() {
                tracing::debug!(count = expired.len(), "orders expired");
            }
        }
        self.trades.prune(now);
        self.lift_expired_bans();
        self.anti_entropy(now);
        self.publish_trades();
        self.announce_relay(now);
        self.discover_relays();
        self.maintain_reservations();
    }

    /// Relays announce themselves as providers of [`RELAY_PROVIDER_KEY`](super::RELAY_PROVIDER_KEY)
    /// once they know DHT peers, then every 10 minutes (records on peers expire).
    fn announce_relay(&mut self, now: u64) {
        if !self.relay_mode || self.last_relay_announce.is_some_and(|t| now.saturating_sub(t) < RELAY_ANNOUNCE_SECS) {
            return;
        }
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        // The first call (at start) stores the record locally so peers asking this relay find it;
        // later calls also push it to the closest peers.
        if self.last_relay_announce.is_some() && kad.kbuckets().map(|b| b.num_entries()).sum::<usize>() == 0 {
            return;
        }
        match kad.start_providing(libp2p::kad::RecordKey::new(&super::RELAY_PROVIDER_KEY)) {
            Ok(_) => self.last_relay_announce = Some(now),
            Err(e) => tracing::warn!(error = %e, "relay announcement failed"),
        }
    }

    /// Tops reservations up to the minimum from the best-scoring relays not in use or backing off.
    pub(super) fn maintain_reservations(&mut self) {
        let now = web_time::Instant::now();
        self.relay_backoff.retain(|_, until| *until > now);
        if self.circuit_listeners.len() >= self.min_reservations {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let in_use: HashSet<PeerId> = self.circuit_listeners.values().map(|(p, _)| *p).collect();
        let candidates = self.shared.relays.get_best_relays(32);
        let wanted = self.min_reservations - self.circuit_listeners.len();
        let picked: Vec<_> = candidates
            .into_iter()
            .filter(|r| {
                r.peer_id != local && !in_use.contains(&r.peer_id) && !self.relay_backoff.contains_key(&r.peer_id)
            })
            .take(wanted)
            .collect();
        for relay in picked {
            let Some(addr) = relay.addrs.first() else { continue };
            let addr = match addr.iter().last() {
                Some(Protocol::P2p(_)) => addr.clone(),
                _ => addr.clone().with(Protocol::P2p(relay.peer_id)),
            };
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                kad.add_address(&relay.peer_id, addr.clone());
            }
            match self.reserve(relay.peer_id, addr) {
                Ok(()) => tracing::info!(relay = %relay.peer_id, score = relay.score(), "reserving on relay"),
                Err(e) => {
                    tracing::warn!(relay = %relay.peer_id, error = %e, "cannot reserve on relay");
                    self.relay_backoff.insert(relay.peer_id, now + RELAY_BACKOFF);
                }
            }
        }
    }

    pub(super) fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, Error>>) {
        self.add_known_peer(&addr);
        let opts = DialOpts::from(addr.clone());
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dial.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Dial(format!("{addr}: {e}"))));
            }
        }
    }

    /// The relay of a circuit address this node must authenticate to before dialing through it.
    fn relay_needing_auth(&mut self, addr: &Multiaddr) -> Option<PeerId> {
        if !self.auth_to_relays {
            return None;
        }
        let mut relay_addr = Multiaddr::empty();
        let mut relay = None;
        for p in addr.iter() {
            if p == Protocol::P2pCircuit {
                break;
            }
            if let Protocol::P2p(peer) = p {
                relay = Some(peer);
            }
            relay_addr.push(p);
        }
        let relay =
            relay.filter(|r| addr.iter().any(|p| p == Protocol::P2pCircuit) && !self.relays_authed.contains(r))?;
        self.swarm.add_peer_address(relay, relay_addr);
        Some(relay)
    }

    /// Reserves on `relay` (at `addr`, ending in `/p2p/<relay>`), authenticating to it first when
    /// this node is configured to.
    pub(super) fn reserve(&mut self, relay: PeerId, addr: Multiaddr) -> Result<(), String> {
        if self.verify_relay_first(relay, &addr)? {
            return Ok(());
        }
        if self.auth_to_relays && !self.relays_authed.contains(&relay) {
            if !self.relay_auth_pending.contains_key(&relay) {
                self.swarm.add_peer_address(relay, addr.clone());
                self.relay_auth_pending.insert(relay, addr);
                self.authenticate(relay, None);
                self.set_relay_status(relay, super::RelayStatus::Authenticating);
            }
            return Ok(());
        }
        let id = self.swarm.listen_on(addr.with(Protocol::P2pCircuit)).map_err(|e| e.to_string())?;
        self.circuit_listeners.insert(id, (relay, web_time::Instant::now()));
        self.set_relay_status(relay, super::RelayStatus::Reserving);
        Ok(())
    }

    /// Asks the DHT for relays every `dht_query_interval`, and prunes stale relays every minute.
    fn discover_relays(&mut self) {
        let config = self.shared.relays.config();
        if self.last_relay_prune.elapsed() >= Duration::from_secs(60) {
            self.last_relay_prune = web_time::Instant::now();
            self.shared.relays.prune_relays();
        }
        if !config.enable_dht_discovery
            || self.last_relay_query.is_some_and(|t| t.elapsed() < config.dht_query_interval)
        {
            return;
        }
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        if kad.kbuckets().map(|b| b.num_entries()).sum::<usize>() == 0 {
            return;
        }
        kad.get_providers(libp2p::kad::RecordKey::new(&super::RELAY_PROVIDER_KEY));
        self.last_relay_query = Some(web_time::Instant::now());
    }

    pub(super) fn publish_trades(&mut self) {
        if let Ok(mut t) = self.shared.trades.lock() {
            *t = self.trades.sessions().cloned().collect();
        }
    }

    fn subscribe(&mut self, topic: &str) {
        let t = IdentTopic::new(topic);
        match self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
            Ok(_) => {
                self.topics.insert(t.hash(), topic.to_string());
            }
            Err(e) => tracing::warn!(topic, error = %e, "subscribe failed"),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen { addr, reply } => match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    self.pending_listen.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Listen(format!("{addr}: {e}"))));
                }
            },
            Command::Dial { addr, reply } => {
                // A relay that requires authentication opens circuits only for members: prove
                // membership to it first.
                if let Some(relay) = self.relay_needing_auth(&addr) {
                    self.dial_after_auth.entry(relay).or_default().push((addr, reply));
                    if !self.auth_requests.values().any(|(p, _)| *p == relay) {
                        self.authenticate(relay, None);
                    }
                    return;
                }
                self.dial(addr, reply);
            }
            Command::Subscribe { topic } => self.subscribe(&topic),
            Command::Unsubscribe { topic } => {
                let t = IdentTopic::new(&topic);
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
                self.topics.remove(&t.hash());
            }
            Command::Publish { topic, message, reply } => {
                let _ = reply.send(self.publish(&topic, message));
            }
            Command::PublishOrder { draft, reply } => {
                let order = Order::from_draft(*self.swarm.local_peer_id(), &draft, now_unix(), rand::random());
                let result = self.publish(ORDERBOOK_TOPIC, Message::OrderAnnounce(order.clone()));
                let _ = reply.send(result.map(|()| order));
            }
            Command::CancelOrder { id, reply } => {
                let local = *self.swarm.local_peer_id();
                let order = self.shared.book.lock().ok().and_then(|b| b.get(&id).cloned());
                let result = match order {
                    Some(o) if o.maker == local => {
                        let cancel = OrderCancel { order_id: id, maker: local, expiry: o.expiry };
                        self.publish(ORDERBOOK_TOPIC, Message::OrderCancel(cancel))
                    }
                    _ => Err(PublishError::UnknownOrder.into()),
                };
                let _ = reply.send(result);
            }
            Command::SendTrade { peer, message, reply } => self.send_trade(peer, message, reply),
            Command::Authenticate { peer, reply } => self.authenticate(peer, Some(reply)),
            Command::AskProof { peer, challenge, reply } => {
                let id =
                    self.swarm.behaviour_mut().auth.send_request(&peer, crate::auth::AuthRequest::Prove(challenge));
                self.auth_requests.insert(id, (peer, super::command::AuthPurpose::Ask(reply)));
            }
            Command::RelayTargets { min, max, policy } => {
                self.min_reservations = min;
                self.max_reservations = Some(max.max(min));
                self.relay_policy = policy;
                self.verify_reserved();
                self.maintain_reservations();
            }
            Command::ReserveBest { reply } => self.reserve_best(reply),
            Command::ReleaseRelay { relay } => self.release_relay(relay),
            Command::VerifyPeer { peer, reply } => self.verify_peer(peer, reply),
            Command::Ban { peer } => {
                self.shared.auth.ban_peer(peer);
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                tracing::info!(%peer, "banned");
            }
            Command::Unban { peer } => {
                self.shared.auth.unban_peer(&peer);
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::TopicPeers { topic, reply } => {
                let hash = IdentTopic::new(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::MeshPeers { topic, reply } => {
                let hash = IdentTopic::new(topic).hash();
                let _ = reply.send(self.swarm.behaviour().gossipsub.mesh_peers(&hash).copied().collect());
            }
            Command::Shutdown { reply } => {
                let listeners: Vec<_> = self.pending_listen.drain().map(|(id, _)| id).collect();
                for id in listeners {
                    self.swarm.remove_listener(id);
                }
                let peers: Vec<_> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                self.shutdown = Some(reply);
            }
        }
    }

    /// Gossips what was published on `topic` while nobody listened (a peer just subscribed).
    pub(super) fn publish_unsent(&mut self, topic: &TopicHash) {
        let (now, later): (VecDeque<_>, VecDeque<_>) = self.unsent.drain(..).partition(|(t, _)| t == topic);
        self.unsent = later;
        for (hash, bytes) in now {
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(hash, bytes) {
                tracing::debug!("late publish: {e}");
            }
        }
    }

    /// Signs, checks and publishes `message`, applying it to the local book first.
    fn publish(&mut self, topic: &str, message: Message) -> Result<(), Error> {
        let hash = IdentTopic::new(topic).hash();
        if !self.topics.contains_key(&hash) {
            return Err(PublishError::NotSubscribed(topic.to_string()).into());
        }
        let bytes = envelope::seal(&self.keypair, topic, &message).map_err(PublishError::from)?;
        let env = envelope::Envelope { author: *self.swarm.local_peer_id(), message };
        validate::check_envelope(topic, &env, now_unix()).map_err(PublishError::Invalid)?;
        let bytes: Arc<[u8]> = Arc::from(bytes);
        self.apply_to_book(&env, &bytes).map_err(PublishError::Book)?;
        match self.swarm.behaviour_mut().gossipsub.publish(hash.clone(), bytes.to_vec()) {
            Ok(_) => Ok(()),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!(topic, "published with no peers yet; gossiped once one subscribes");
                if self.unsent.len() >= UNSENT_MAX {
                    self.unsent.pop_front();
                }
                self.unsent.push_back((hash, bytes.to_vec()));
                Ok(())
            }
            Err(gossipsub::PublishError::Duplicate) => Ok(()),
            Err(e) => Err(PublishError::Gossip(e.to_string()).into()),
        }
    }
}

pub(super) fn counters(shared: &Shared) -> &Counters {
    &shared.stats
}
