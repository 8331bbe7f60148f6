//! The one task that owns the swarm. Nothing else touches it: handles send [`Command`]s, the
//! task sends [`NetworkEvent`]s and notices back, and writes the [`Shared`] state handles read.
//! It reaches the front door only through those three, and the swarm only through the
//! behaviour's public methods; it builds nothing of the swarm itself (`swarm/` does).
//!
//! The task is made of parts, each a struct that owns its state, in a file of its own with the
//! methods that act on that state:
//!
//! | part | file | owns |
//! |---|---|---|
//! | [`Outbox`] | here | events and notices on their way to the application |
//! | [`connections::Connections`] | `connections.rs` | listens and dials awaiting their outcome; listen addresses and connection info |
//! | [`gossip::Gossip`] | `gossip.rs` | joined topics, own messages waiting for a first subscriber; publishing |
//! | [`ingest::Ingest`] | `ingest.rs` | the flood guard; the one receive path for gossip and sync |
//! | [`sync::Syncs`] | `sync.rs` | newcomer syncs, anti-entropy rounds, peers lost and back |
//! | [`bans::Bans`] | `bans.rs` | temporary bans and their expiry |
//! | [`trade::Trades`] | `trade.rs` | trade sessions, sealed requests in flight, key offers |
//! | [`auth::Auth`] | `auth.rs` | auth requests in flight and why, tokens to present |
//! | [`relays::Relays`] | `relays.rs` | reservations, the relay pool's policy, verification |
//! | [`discovery::Discovery`] | `discovery.rs` | relay announcements and queries, mDNS peers |
//! | [`peers::Peers`] | `peers.rs` | the outbound target and its dials, DHT walks, shedding beyond the peer limit |
//! | [`metrics::SwarmMetrics`] | `metrics.rs` | rust-libp2p's metrics, dials counted |
//!
//! [`Task::poll`] serves commands (`commands.rs`), the tick, and swarm events
//! (`swarm_events.rs`, which routes each to its part). Backpressure: events wait in a bounded
//! queue; while it is full the task stops polling the swarm (so the network slows down instead
//! of dropping anything) but keeps serving commands.

mod auth;
mod bans;
mod commands;
mod connections;
mod discovery;
mod gossip;
mod ingest;
mod metrics;
mod peers;
mod reconcile;
mod relays;
mod swarm_events;
mod sync;
mod trade;

use super::{
    command::Command, config::TaskConfig, stats::Counters, swarm::Behaviour, wrappers::CachedProtocols, NetworkEvent,
    NetworkNotice, Shared,
};
use crate::{error::Error, runtime};
use futures::{
    channel::{mpsc, oneshot},
    FutureExt, Sink, StreamExt,
};
use libp2p::{identity::Keypair, multiaddr::Protocol, swarm::dial_opts::DialOpts, Multiaddr, Swarm};
use std::{
    collections::{HashSet, VecDeque},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

/// How often orders expire, bans lift, trades are pruned and relays are looked after.
const TICK: Duration = Duration::from_secs(1);
/// Swarm events handled per wake-up before yielding to other tasks.
const POLL_BUDGET: usize = 256;

/// The swarm the task drives.
pub(crate) type NodeSwarm = Swarm<CachedProtocols<Behaviour>>;

pub(crate) struct Task {
    swarm: NodeSwarm,
    keypair: Keypair,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    out: Outbox,
    tick: futures_timer::Delay,
    shutdown: Option<oneshot::Sender<()>>,
    connections: connections::Connections,
    gossip: gossip::Gossip,
    ingest: ingest::Ingest,
    sync: sync::Syncs,
    reconcile: reconcile::Reconciles,
    bans: bans::Bans,
    trades: trade::Trades,
    auth: auth::Auth,
    relays: relays::Relays,
    discovery: discovery::Discovery,
    /// `None` when discovery is off.
    peers: Option<peers::Peers>,
    metrics: metrics::SwarmMetrics,
}

/// Events and notices on their way to the application.
struct Outbox {
    events: mpsc::Sender<NetworkEvent>,
    notices: mpsc::Sender<NetworkNotice>,
    /// Events the application has not taken yet (at most `cap` before the task pauses the swarm).
    pending: VecDeque<NetworkEvent>,
    cap: usize,
}

impl Outbox {
    fn emit(&mut self, event: NetworkEvent) {
        if !self.events.is_closed() {
            self.pending.push_back(event);
        }
    }

    fn notice(&mut self, notice: NetworkNotice, stats: &Counters) {
        tracing::debug!(?notice, "notice");
        if let Err(e) = self.notices.try_send(notice) {
            if e.is_full() {
                Counters::bump(&stats.notices_dropped);
            }
        }
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= self.cap
    }

    /// Hands queued events to the application's channel; registers a wake-up when it is full.
    fn flush(&mut self, cx: &mut Context<'_>) {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.events).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let ev = self.pending.pop_front().expect("checked non-empty");
                    if Pin::new(&mut self.events).start_send(ev).is_err() {
                        self.pending.clear();
                    }
                }
                // The application dropped its receiver: nobody will read events again.
                Poll::Ready(Err(_)) => self.pending.clear(),
                Poll::Pending => return,
            }
        }
    }
}

impl Task {
    pub(super) fn new(
        swarm: NodeSwarm,
        keypair: Keypair,
        config: TaskConfig,
        commands: mpsc::Receiver<Command>,
        (events, notices): (mpsc::Sender<NetworkEvent>, mpsc::Sender<NetworkNotice>),
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
        let metrics = metrics::SwarmMetrics::new(&shared.metrics, config.metrics_enabled);
        let mut task = Task {
            swarm,
            keypair,
            commands,
            out: Outbox { events, notices, pending: VecDeque::new(), cap: config.event_buffer },
            tick: runtime::interval(TICK),
            shutdown: None,
            connections: connections::Connections::default(),
            gossip: gossip::Gossip::default(),
            ingest: ingest::Ingest::new(config.gossip_limits.clone()),
            sync: sync::Syncs::new(config.anti_entropy),
            reconcile: reconcile::Reconciles::new(),
            bans: bans::Bans::new(config.gossip_limits.ban_duration),
            trades: trade::Trades::new(local, config.max_trades),
            auth: auth::Auth::new(config.relay_tokens.iter().cloned().collect()),
            relays: relays::Relays::new(config.min_relay_reservations, config.auth_to_relays),
            discovery: discovery::Discovery::new(config.relay_mode),
            peers: peers::Peers::new(config.peering, config.bootstrap_peers.clone()),
            metrics,
            shared,
        };
        for topic in &config.topics {
            task.subscribe(topic);
        }
        for addr in &config.external_addrs {
            task.swarm.add_external_address(addr.clone());
        }
        for addr in &config.listen {
            task.swarm.listen_on(addr.clone()).map_err(|e| Error::Listen(format!("{addr}: {e}")))?;
        }
        for addr in &config.relay_peers {
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
        let relays: HashSet<libp2p::PeerId> = task.relays.being_reserved().collect();
        for addr in &config.bootstrap_peers {
            task.add_known_peer(addr);
            if matches!(addr.iter().last(), Some(Protocol::P2p(p)) if relays.contains(&p)) {
                continue;
            }
            let opts = DialOpts::from(addr.clone());
            let id = opts.connection_id();
            match task.swarm.dial(opts) {
                Ok(()) => task.peers_on_asked_dial(id),
                Err(e) => tracing::warn!(%addr, error = %e, "bootstrap dial failed"),
            }
        }
        task.announce_relay(0);
        Ok(task)
    }

    /// Tells Kademlia where a peer named by `addr` (ending in `/p2p/<peer id>`) is.
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
            self.out.flush(cx);
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
            if self.out.is_full() {
                // Backpressure: `flush` registered a wake-up for when the app reads.
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

    fn emit(&mut self, event: NetworkEvent) {
        self.out.emit(event);
    }

    fn notice(&mut self, notice: NetworkNotice) {
        self.out.notice(notice, &self.shared.stats);
    }

    fn on_tick(&mut self) {
        let now = runtime::now_unix();
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
        self.manage_peers();
    }
}
