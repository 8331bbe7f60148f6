//! The front door: [`Network`], a cheap handle to a task that owns the libp2p swarm.
//!
//! ```no_run
//! use darkswap_p2p::network::{Network, NetworkConfig, NetworkEvent};
//! # async fn run() -> Result<(), darkswap_p2p::Error> {
//! let mut network = Network::new(NetworkConfig::default()).await?;
//! network.listen_on("/ip4/127.0.0.1/tcp/0").await?;
//! while let Some(event) = network.next_event().await {
//!     if let NetworkEvent::MessageReceived { message, .. } = event {
//!         println!("{message:?}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! This module is the front door and owns only what a user touches: [`Network`] and
//! [`NetworkHandle`], the configuration ([`NetworkConfig`], [`NetworkBuilder`], the public limits),
//! the events and notices, the commands handles send, and the state the task writes and handles
//! read (`state.rs`). It never touches the swarm: commands travel to the task over a bounded
//! channel, events come back over another. Behind it, each in its own folder:
//!
//! - `task/`: the one task that owns the swarm, in parts that each own their state;
//! - `swarm/`: the transports and the composed behaviour the task drives (crate-private);
//! - `wrappers/`: generic rust-libp2p speed-ups the swarm is built from.
//!
//! The guide ([`crate::guide::network`]) walks through the API with examples.

mod collector;
mod command;
pub(crate) mod config;
mod event;
mod gossip_settings;
mod limits;
mod notice;
mod state;
mod stats;
mod swarm;
mod task;
mod wrappers;

pub(crate) use command::RelayPolicy;
pub use config::{NetworkBuilder, NetworkConfig};
pub use event::NetworkEvent;
pub use gossip_settings::gossipsub_config_builder;
pub use limits::{GossipLimits, PeeringConfig, RelayServerConfig, ResourceLimits, RELAY_PROVIDER_KEY};
pub use notice::{ConnectionInfo, NetworkNotice, Reachability, RelayStatus};
pub(crate) use state::Shared;
pub use stats::NetworkStats;
pub use swarm::streams::IncomingStreams;

use crate::{
    auth::{AuthManager, AuthorizationLevel},
    encryption::EncryptionManager,
    error::Error,
    order_book::OrderBook,
    protocol::Message,
    runtime,
    trade::{TradeSession, TradeState},
};
use command::Command;
use darkswap_support::types::{Order, OrderDraft, OrderId, PeerId, TradeId, TradeMessage};
use futures::{
    channel::{mpsc, oneshot},
    SinkExt, StreamExt,
};
use libp2p::{identity::Keypair, Multiaddr, StreamProtocol};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tracing::Instrument;

/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/darkswap/id/1.0.0";
/// Kademlia protocol name (a private DHT, apart from the public IPFS one).
pub const KAD_PROTOCOL: &str = "/darkswap/kad/1.0.0";
/// Notices kept for the application; beyond this the newest are dropped (and counted).
const NOTICE_QUEUE: usize = 64;
/// Commands waiting for the task; past this, async calls wait and `subscribe` returns `Busy`.
const COMMAND_QUEUE: usize = 256;

/// A running DarkSwap node. Dropping it (or [`shutdown`](NetworkHandle::shutdown)) stops the task.
///
/// All commands are on [`NetworkHandle`], which `Network` dereferences to; clone a handle with
/// [`handle`](Network::handle) to command the network from other tasks while one reads events.
#[derive(Debug)]
pub struct Network {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    notices: mpsc::Receiver<NetworkNotice>,
}

/// A cloneable handle for commanding a [`Network`].
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    local_peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::ops::Deref for Network {
    type Target = NetworkHandle;
    fn deref(&self) -> &NetworkHandle {
        &self.handle
    }
}

impl Network {
    /// Starts a node with `config` and defaults for everything else (random identity).
    pub async fn new(config: NetworkConfig) -> Result<Self, Error> {
        Self::builder(config).build().await
    }

    /// A builder for options beyond [`NetworkConfig`].
    pub fn builder(config: NetworkConfig) -> NetworkBuilder {
        NetworkBuilder::new(config)
    }

    pub(crate) async fn start(builder: NetworkBuilder) -> Result<Self, Error> {
        let parts = builder.resolve();
        let keypair = match (parts.keypair, &parts.identity_file) {
            (Some(k), _) => k,
            (None, Some(path)) => crate::identity::load_or_create(path)?,
            (None, None) => Keypair::generate_ed25519(),
        };
        keypair.clone().try_into_ed25519().map_err(|_| crate::identity::IdentityError::NotEd25519)?;
        let local_peer_id = keypair.public().to_peer_id();
        let auth = Arc::new(AuthManager::with_identity(parts.auth, keypair.clone())?);
        let e2e = Arc::new(EncryptionManager::with_identity(parts.encryption, keypair.clone())?);
        let metrics = parts.metrics.unwrap_or_else(|| crate::metrics::P2PMetrics::new(Duration::from_secs(1)));
        let webrtc_client = parts
            .swarm
            .signaling_url
            .is_some()
            .then(|| Arc::new(crate::webrtc::signaled::WebRtcSignalingClient::with_config(&keypair, parts.webrtc)));
        let swarm = swarm::build(keypair.clone(), &parts.swarm, &metrics, webrtc_client.clone(), &auth).await?;
        let shared = Arc::new(Shared {
            book: Mutex::new(OrderBook::new(parts.book_limits)),
            stats: stats::Counters::default(),
            listen_addrs: Mutex::new(Vec::new()),
            trades: Mutex::new(Vec::new()),
            relays: crate::relay_discovery::RelayDiscoveryManager::new(parts.relay_discovery),
            connections: Mutex::new(Default::default()),
            reachability: Mutex::new(Reachability::Unknown),
            auth,
            e2e,
            keypair: keypair.clone(),
            relay_status: Mutex::new(Default::default()),
            webrtc_client,
            streams: swarm::streams::StreamControl::new(
                swarm.behaviour().streams.new_control(),
                swarm.behaviour().epoch().clone(),
            ),
            activity: Mutex::new(Default::default()),
            metrics: metrics.clone(),
        });
        let source: Arc<dyn crate::metrics::ConnectionSource> = shared.clone();
        metrics.set_network(Arc::downgrade(&source));
        metrics
            .registry()
            .register_collector(Box::new(collector::NetworkCollector { shared: Arc::downgrade(&shared) }));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(parts.task.event_buffer);
        let (notice_tx, notice_rx) = mpsc::channel(NOTICE_QUEUE);
        let task = task::Task::new(swarm, keypair, parts.task, cmd_rx, (ev_tx, notice_tx), shared.clone())?;
        // Several nodes may share a process (tests, the demo, benches): a span names the node
        // that logged a line. At debug level, so plain `info` logs stay as they were.
        runtime::spawn(task.run().instrument(tracing::debug_span!("node", peer = %local_peer_id)));
        Ok(Network {
            handle: NetworkHandle { local_peer_id, commands: cmd_tx, shared },
            events: ev_rx,
            notices: notice_rx,
        })
    }

    /// The next event, or `None` once the network has stopped.
    pub async fn next_event(&mut self) -> Option<NetworkEvent> {
        self.events.next().await
    }

    /// The next status report (hole punching, reachability, relay reservations), or `None` once
    /// the network has stopped. Independent of [`next_event`](Self::next_event).
    pub async fn next_notice(&mut self) -> Option<NetworkNotice> {
        self.notices.next().await
    }

    /// A cloneable handle to this network.
    pub fn handle(&self) -> NetworkHandle {
        self.handle.clone()
    }
}

fn parse_addr(addr: &str) -> Result<Multiaddr, Error> {
    addr.parse()
        .map_err(|e: libp2p::multiaddr::Error| Error::InvalidAddress { addr: addr.to_string(), reason: e.to_string() })
}

fn check_topic(topic: &str) -> Result<(), Error> {
    if topic.is_empty() || topic.len() > 256 {
        return Err(Error::InvalidTopic(topic.to_string()));
    }
    Ok(())
}

impl NetworkHandle {
    /// The network's metrics (and their registry, to serve at `/metrics`; see
    /// [`metrics`](crate::metrics)).
    pub fn metrics(&self) -> crate::metrics::P2PMetrics {
        self.shared.metrics.clone()
    }

    /// The signaling client of the WebRTC transport, when the node was built with
    /// [`webrtc_signaling`](NetworkBuilder::webrtc_signaling).
    pub fn webrtc_signaling_client(&self) -> Option<Arc<crate::webrtc::signaled::WebRtcSignalingClient>> {
        self.shared.webrtc_client.clone()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.clone().send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    fn enqueue(&self, cmd: Command) -> Result<(), Error> {
        self.commands.clone().try_send(cmd).map_err(|e| if e.is_full() { Error::Busy } else { Error::Stopped })
    }

    /// Starts listening on `addr` (text multiaddr) and returns the address actually bound (the
    /// port filled in when `0` was asked).
    pub async fn listen_on(&self, addr: &str) -> Result<Multiaddr, Error> {
        let addr = parse_addr(addr)?;
        self.listen_on_addr(addr).await
    }

    /// [`listen_on`](Self::listen_on) with a parsed multiaddr.
    pub async fn listen_on_addr(&self, addr: Multiaddr) -> Result<Multiaddr, Error> {
        self.request(|reply| Command::Listen { addr, reply }).await?
    }

    /// All addresses this node currently listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.listen_addrs.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Dials `addr` and waits until the connection is established; returns the remote peer id.
    pub async fn dial(&self, addr: &str) -> Result<PeerId, Error> {
        let addr = parse_addr(addr)?;
        self.dial_addr(addr).await
    }

    /// [`dial`](Self::dial) with a parsed multiaddr.
    pub async fn dial_addr(&self, addr: Multiaddr) -> Result<PeerId, Error> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// Joins a gossip topic. Returns at once; the task subscribes right after.
    pub fn subscribe(&self, topic: &str) -> Result<(), Error> {
        check_topic(topic)?;
        self.enqueue(Command::Subscribe { topic: topic.to_string() })
    }

    /// Leaves a gossip topic.
    pub fn unsubscribe(&self, topic: &str) -> Result<(), Error> {
        check_topic(topic)?;
        self.enqueue(Command::Unsubscribe { topic: topic.to_string() })
    }

    /// Signs and publishes `message` on `topic`, applying it to the local order book first.
    ///
    /// The message is checked against the same rules peers apply, so an invalid one fails here
    /// with [`PublishError::Invalid`](crate::error::PublishError::Invalid). Having no peers yet is not an error: the local book keeps
    /// orders and newcomers receive them by sync.
    pub async fn publish(&self, topic: &str, message: Message) -> Result<(), Error> {
        check_topic(topic)?;
        let topic = topic.to_string();
        self.request(|reply| Command::Publish { topic, message, reply }).await?
    }

    /// Posts an order made by this node (signed with its identity) and returns it.
    pub async fn publish_order(&self, draft: OrderDraft) -> Result<Order, Error> {
        self.request(|reply| Command::PublishOrder { draft, reply }).await?
    }

    /// Cancels one of this node's live orders.
    pub async fn cancel_order(&self, id: OrderId) -> Result<(), Error> {
        self.request(|reply| Command::CancelOrder { id, reply }).await?
    }

    /// Takes in signed order announcements obtained elsewhere (another node's
    /// [`export_orders`](Self::export_orders), a snapshot kept across restarts), each checked
    /// as if a peer had synced it: signature, validity, expiry and the book's limits. Returns
    /// how many were new; they are reported as [`NetworkEvent::MessageReceived`] from this
    /// node's own peer id, and reach peers by their anti-entropy rounds, not by gossip. The task
    /// checks a thousand at a time, so a large import does not hold up the network.
    pub async fn import_orders(&self, envelopes: Vec<Vec<u8>>) -> Result<usize, Error> {
        let mut added = 0;
        let mut rest = envelopes.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Vec<u8>> = rest.by_ref().take(1000).collect();
            added += self.request(|reply| Command::ImportOrders { envelopes: chunk, reply }).await?;
        }
        Ok(added)
    }

    /// The makers' signed envelopes of the live orders in the local book, in order-id order:
    /// what [`import_orders`](Self::import_orders) takes.
    pub fn export_orders(&self) -> Vec<Vec<u8>> {
        let now = runtime::now_unix();
        self.shared.book.lock().map(|b| b.all_envelopes(now)).unwrap_or_default()
    }

    /// Sends a trade-negotiation step to `peer` and waits for its acknowledgement. Returns the
    /// session's new state. The message and the acknowledgement are end-to-end encrypted (the
    /// first message to a peer sets up the session with a signed X25519 exchange).
    pub async fn send_trade(&self, peer: PeerId, message: TradeMessage) -> Result<TradeState, Error> {
        self.request(|reply| Command::SendTrade { peer, message, reply }).await?
    }

    /// Starts a trade on `order` for `amount` base units by sending an intent to its maker.
    pub async fn start_trade(&self, order: &Order, amount: u128) -> Result<TradeId, Error> {
        let trade_id = TradeId(rand::random());
        let message =
            TradeMessage { trade_id, order_id: order.id, body: darkswap_support::types::TradeBody::Intent { amount } };
        self.send_trade(order.maker, message).await?;
        Ok(trade_id)
    }

    /// The state of trade `id`, if this node takes part in it.
    pub fn trade(&self, id: &TradeId) -> Option<TradeSession> {
        self.shared.trades.lock().ok()?.iter().find(|t| &t.trade_id == id).cloned()
    }

    /// Live orders in the local book, in id order.
    pub fn orders(&self) -> Vec<Order> {
        let now = runtime::now_unix();
        self.shared.book.lock().map(|b| b.live(now)).unwrap_or_default()
    }

    /// One live order.
    pub fn order(&self, id: &OrderId) -> Option<Order> {
        let now = runtime::now_unix();
        let book = self.shared.book.lock().ok()?;
        book.get(id).filter(|o| !o.is_expired(now)).cloned()
    }

    /// Authenticates this node to `peer` (a challenge answered with this node's auth method, or a
    /// token given with [`relay_token`](NetworkBuilder::relay_token)) and returns the level
    /// `peer` granted.
    pub async fn authenticate(&self, peer: PeerId) -> Result<AuthorizationLevel, Error> {
        self.request(|reply| Command::Authenticate { peer, reply }).await?
    }

    /// Makes `peer` prove itself with this node's auth method; on success `peer` holds the returned
    /// level here (see [`auth`](Self::auth)).
    pub async fn verify_peer(&self, peer: PeerId) -> Result<AuthorizationLevel, Error> {
        self.request(|reply| Command::VerifyPeer { peer, reply }).await?
    }

    /// Bans `peer`: its connections are closed at once and refused from now on, and it holds no
    /// authorization.
    pub async fn ban_peer(&self, peer: PeerId) -> Result<(), Error> {
        self.shared.auth.ban_peer(peer);
        self.commands.clone().send(Command::Ban { peer }).await.map_err(|_| Error::Stopped)
    }

    /// Lifts a ban.
    pub async fn unban_peer(&self, peer: PeerId) -> Result<(), Error> {
        self.commands.clone().send(Command::Unban { peer }).await.map_err(|_| Error::Stopped)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Sets how many relay reservations to hold and which relays to trust (the relay pool's
    /// policy; the pool enforces its maximum itself, by releasing).
    pub(crate) async fn set_relay_targets(&self, min: usize, policy: Option<RelayPolicy>) -> Result<(), Error> {
        self.commands.clone().send(Command::RelayTargets { min, policy }).await.map_err(|_| Error::Stopped)
    }

    /// Reserves on the best relay not in use; returns it once the reservation is accepted.
    pub(crate) async fn reserve_on_best_relay(&self) -> Result<PeerId, Error> {
        self.request(|reply| Command::ReserveBest { reply }).await?
    }

    /// Gives up the reservation on `relay`.
    pub(crate) async fn release_relay(&self, relay: PeerId) -> Result<(), Error> {
        self.commands.clone().send(Command::ReleaseRelay { relay }).await.map_err(|_| Error::Stopped)
    }

    /// Asks `peer` to answer `challenge`.
    pub(crate) async fn ask_proof(
        &self,
        peer: PeerId,
        challenge: crate::auth::Challenge,
    ) -> Result<command::ProofAnswer, Error> {
        self.request(|reply| Command::AskProof { peer, challenge, reply }).await?
    }

    /// This node's [`AuthManager`]: peers' levels, tokens to issue, the allow-list.
    pub fn auth(&self) -> Arc<AuthManager> {
        self.shared.auth.clone()
    }

    /// The end-to-end sessions this node holds with its trade counterparties.
    pub fn encryption(&self) -> Arc<EncryptionManager> {
        self.shared.e2e.clone()
    }

    /// The relays this node knows and their scores, fed by the network (DHT announcements, peers
    /// that serve the relay protocol, reservation outcomes, ping round trips).
    pub fn relay_discovery(&self) -> crate::relay_discovery::RelayDiscoveryManager {
        self.shared.relays.clone()
    }

    /// Open connections, direct and relayed.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared.connections.lock().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// This node's reachability as AutoNAT last measured it.
    pub fn reachability(&self) -> Reachability {
        self.shared.reachability.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Counters: messages, rejections by reason, syncs.
    pub fn stats(&self) -> NetworkStats {
        self.shared.stats.snapshot()
    }

    /// Opens a stream of the application's own `protocol` to `peer` (dialing it if it is not
    /// connected but its address is known): for bulk data such as large PSBTs or files, with
    /// the connection's security and multiplexing and nothing on top. The peer must
    /// [`accept_streams`](Self::accept_streams) for `protocol`.
    pub async fn open_stream(&self, peer: PeerId, protocol: StreamProtocol) -> Result<libp2p::Stream, Error> {
        self.shared.streams.open(peer, protocol).await
    }

    /// Inbound streams of `protocol` as `(peer, stream)` pairs; one receiver per protocol.
    /// Streams arriving while the receiver is not polled wait in a short queue and are then
    /// refused, so a slow application cannot make the node buffer without bound.
    pub fn accept_streams(&self, protocol: StreamProtocol) -> Result<IncomingStreams, Error> {
        self.shared.streams.accept(protocol)
    }

    /// Peers currently connected.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, Error> {
        self.request(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Peers known to be subscribed to `topic` (candidates for its gossip mesh).
    pub async fn topic_peers(&self, topic: &str) -> Result<Vec<PeerId>, Error> {
        let topic = topic.to_string();
        self.request(|reply| Command::TopicPeers { topic, reply }).await
    }

    /// Peers in this node's gossip mesh for `topic` (those it forwards full messages to).
    pub async fn mesh_peers(&self, topic: &str) -> Result<Vec<PeerId>, Error> {
        let topic = topic.to_string();
        self.request(|reply| Command::MeshPeers { topic, reply }).await
    }

    /// Closes every listener and connection and stops the task.
    pub async fn shutdown(&self) -> Result<(), Error> {
        match self.request(|reply| Command::Shutdown { reply }).await {
            Ok(()) | Err(Error::Stopped) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
