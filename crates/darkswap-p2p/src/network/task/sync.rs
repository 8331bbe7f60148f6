//! Order-book sync: a newcomer's pages, and anti-entropy rounds that repair what gossip missed
//! (asking back, and gossiping young repairs on). Sync pages carry the makers' signed envelopes,
//! each taken in by `ingest.rs` like gossip.

use super::Task;
use crate::{
    network::stats::Counters,
    protocol::{limits, SyncRequest, SyncResponse, ORDERBOOK_TOPIC},
    rate::TokenBucket,
    runtime::now_unix,
};
use darkswap_support::types::{OrderId, PeerId};
use libp2p::{
    gossipsub::{self, IdentTopic},
    request_response,
};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

/// Syncs under way and done, anti-entropy's schedule, and peers lost (to resync on return).
pub(super) struct Syncs {
    /// Pages requested from each peer in the current run (capped).
    pages: HashMap<PeerId, u32>,
    /// Peers we are syncing from now, and how many full syncs completed.
    running: HashSet<PeerId>,
    done: usize,
    /// Peers a newcomer reconciles with once its page sync ends: pages from two peers at once
    /// would bring the whole book twice.
    waiting: Vec<PeerId>,
    /// Anti-entropy rounds running (the digest sent), and when the last one started.
    digests: HashMap<PeerId, Vec<u64>>,
    last_round: web_time::Instant,
    every: Duration,
    /// When each peer was last asked back (see `on_sync`); connected peers only.
    asked_back: HashMap<PeerId, web_time::Instant>,
    /// Bounds the orders anti-entropy brought that are gossiped on (see `sync_repaired`).
    regossip: TokenBucket,
    /// An anti-entropy round brought orders this node lacked, so the next one starts on the
    /// next tick (with another peer) instead of a whole interval later: after an overload that
    /// made gossip drop forwards, a book catches up in seconds.
    repaired: bool,
    /// Peers whose last connection closed, and when (bounded).
    lost: HashMap<PeerId, web_time::Instant>,
}

impl Syncs {
    /// Orders an anti-entropy round brought that were created less than this many seconds ago are
    /// gossiped on: gossip dropped them recently, likely on the way to other nodes too.
    const REGOSSIP_MAX_AGE: u64 = 60;
    /// Orders gossiped on per second (and burst), well below the per-peer rate a receiver allows by
    /// default (`GossipLimits`: 400/s, 800), so that a large repair never makes this node look like
    /// a flooder; orders beyond it still spread by anti-entropy.
    const REGOSSIP_RATE: u32 = 100;
    /// Burst allowance of [`REGOSSIP_RATE`].
    const REGOSSIP_BURST: u32 = 200;
    /// Peers a joining node syncs its book from.
    const SYNC_PEERS: usize = 2;
    /// Disconnected peers remembered (so a returning one triggers a sync).
    const LOST_PEERS_MAX: usize = 1024;

    pub(super) fn new(every: Duration) -> Self {
        let now = web_time::Instant::now();
        Self {
            pages: HashMap::new(),
            running: HashSet::new(),
            done: 0,
            waiting: Vec::new(),
            digests: HashMap::new(),
            last_round: now,
            every,
            asked_back: HashMap::new(),
            regossip: TokenBucket::new(Syncs::REGOSSIP_RATE, Syncs::REGOSSIP_BURST, now),
            repaired: false,
            lost: HashMap::new(),
        }
    }

    /// `peer`'s last connection closed: its syncs end, and if it was `lost` (not closed on
    /// purpose) its return will trigger an anti-entropy round.
    pub(super) fn on_disconnected(&mut self, peer: PeerId, lost: bool) {
        self.pages.remove(&peer);
        self.running.remove(&peer);
        self.digests.remove(&peer);
        self.asked_back.remove(&peer);
        self.waiting.retain(|p| *p != peer);
        if !lost {
            return;
        }
        if self.lost.len() >= Syncs::LOST_PEERS_MAX {
            // Forget the longest-lost peer.
            if let Some(oldest) = self.lost.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                self.lost.remove(&oldest);
            }
        }
        self.lost.insert(peer, web_time::Instant::now());
    }
}

impl Task {
    /// A first connection to `peer`. Sync the whole book when joining (the first few peers) and
    /// after being cut off from every gossip peer: page through the peer's book when this one
    /// holds less than a page, and otherwise reconcile, which moves only the orders that differ (a node back from
    /// an absence, or one that imported a snapshot). When a peer we lost (its connection failed)
    /// comes back, compare books with it (an anti-entropy round): one side may have missed
    /// what the other's part of the network published meanwhile, and when nothing was missed
    /// the digest is all it costs. Otherwise gossip keeps the book current and a sync with
    /// every newly discovered peer would only repeat it.
    ///
    /// Either side of a new connection may want to compare books, and one reconciliation tells
    /// its initiator the difference both ways; so the dialer starts at once and the listener
    /// only if the dialer has not started one within a moment (`Reconciles::defer`).
    pub(super) fn sync_on_connect(&mut self, peer: PeerId, dialer: bool) {
        let isolated =
            !self.swarm.behaviour().gossipsub.all_peers().any(|(p, topics)| *p != peer && !topics.is_empty());
        let returning = self.sync.lost.remove(&peer).is_some();
        let syncing = self.sync.done + self.sync.running.len() + self.sync.waiting.len();
        if isolated || syncing < Syncs::SYNC_PEERS {
            // While pages come in, the book is partial: a reconciliation now would list most of
            // it as differing.
            if self.paging() {
                self.sync.waiting.push(peer);
                return;
            }
            let small = self.small_book();
            if !small && self.sync.every > Duration::ZERO {
                self.sync.done += 1;
                if dialer {
                    self.start_reconcile(peer);
                } else {
                    self.reconcile.defer(peer);
                }
                return;
            }
            self.sync.running.insert(peer);
            self.request_sync(peer, None);
        } else if returning && self.sync.every.is_zero() {
            // Anti-entropy is off: a full sync is the only comparison there is.
            self.sync.running.insert(peer);
            self.request_sync(peer, None);
        } else if returning && dialer {
            self.start_anti_entropy(peer, now_unix());
        } else if returning {
            self.reconcile.defer(peer);
        }
    }

    /// Whether this node's book is too small to reconcile from: below a page of orders (a node
    /// that published a few of its own before its first connection), reconciliation would list
    /// nearly every id of the peer's book before fetching them, and pages bring them directly.
    fn small_book(&self) -> bool {
        self.shared.book.lock().map_or(true, |b| b.len() < usize::from(limits::SYNC_PAGE_MAX))
    }

    /// Whether a newcomer's page sync is under way (not an anti-entropy round by digests).
    fn paging(&self) -> bool {
        self.sync.running.iter().any(|p| !self.sync.digests.contains_key(p))
    }

    /// A page sync ended (or its peer failed): the peers waiting for it are reconciled with,
    /// or if the book still holds less than a page, the first of them is paged through.
    pub(super) fn after_pages(&mut self) {
        for peer in std::mem::take(&mut self.sync.waiting) {
            if !self.swarm.is_connected(&peer) {
                continue;
            }
            let small = self.small_book();
            if self.paging() {
                self.sync.waiting.push(peer);
            } else if small || self.sync.every.is_zero() {
                self.sync.running.insert(peer);
                self.request_sync(peer, None);
            } else {
                self.sync.done += 1;
                self.start_reconcile(peer);
            }
        }
    }

    /// Every `every`, compares books with one random order-book peer and pulls what differs:
    /// gossip can miss a node (it joined the mesh after a message passed, it restarted, or an
    /// overloaded peer dropped forwards), and this repairs it within a round or two at the cost
    /// of a digest when books agree. A round that repaired something is followed by another on
    /// the next tick, until one finds nothing. The peer asked also asks back when the digests
    /// differ (see `on_sync`), so an order only this node holds spreads as fast as one it lacks.
    pub(super) fn anti_entropy(&mut self, now: u64) {
        if self.paging() {
            return; // the book is partial until the pages are in (see `after_pages`)
        }
        if !self.sync.waiting.is_empty() {
            self.after_pages();
        }
        for peer in self.reconcile.deferred_due() {
            self.start_reconcile(peer);
        }
        let due = self.sync.repaired || self.sync.last_round.elapsed() >= self.sync.every;
        if self.sync.every.is_zero() || !due {
            return;
        }
        self.sync.repaired = false;
        self.sync.last_round = web_time::Instant::now();
        let hash = IdentTopic::new(ORDERBOOK_TOPIC).hash();
        let (running, reconcile) = (&self.sync.running, &self.reconcile);
        let candidates: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, topics)| topics.contains(&&hash) && !running.contains(p) && !reconcile.running(p))
            .map(|(p, _)| *p)
            .collect();
        let Some(&peer) = candidates.get(rand::random::<usize>() % candidates.len().max(1)) else { return };
        self.start_anti_entropy(peer, now);
    }

    /// Compares books with `peer`: reconciliation (`reconcile.rs`), or with a node that does
    /// not speak it, digests.
    fn start_anti_entropy(&mut self, peer: PeerId, _now: u64) {
        self.start_reconcile(peer);
    }

    /// Sends `peer` this book's digest, asking for the orders in the buckets where the books
    /// differ: the comparison of nodes from before reconciliation. It sends every order of a
    /// differing bucket, of 64; at 1% of a large book changed, that is nearly the whole book.
    pub(super) fn start_digest_round(&mut self, peer: PeerId, now: u64) {
        let digest = match self.shared.book.lock() {
            Ok(book) => book.digest(now),
            Err(_) => return,
        };
        tracing::debug!(%peer, "anti-entropy round");
        Counters::bump(&self.shared.stats.anti_entropy_rounds);
        self.sync.digests.insert(peer, digest);
        self.sync.running.insert(peer);
        self.sync.pages.remove(&peer); // the page cap bounds one run
        self.request_sync(peer, None);
    }

    fn request_sync(&mut self, peer: PeerId, after: Option<OrderId>) {
        let pages = self.sync.pages.entry(peer).or_default();
        if *pages >= limits::SYNC_MAX_PAGES {
            tracing::warn!(%peer, "sync page limit reached");
            // The run ends here, or it would hold back reconciliation and anti-entropy for good.
            self.sync.running.remove(&peer);
            self.sync.digests.remove(&peer);
            return;
        }
        *pages += 1;
        let digest = self.sync.digests.get(&peer).cloned();
        let req = SyncRequest { after, limit: limits::SYNC_PAGE_MAX, digest };
        self.swarm.behaviour_mut().sync.send_request(&peer, req);
    }

    pub(super) fn on_sync(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event, Message as RrMessage};
        match ev {
            Event::Message { peer, message: RrMessage::Request { request, channel, .. }, .. } => {
                let now = now_unix();
                let (page, mask) = match self.shared.book.lock() {
                    Ok(book) => {
                        let mask = request.digest.as_deref().map_or(u64::MAX, |d| book.differing(d, now));
                        (book.page_in(request.after, request.limit, now, mask), mask)
                    }
                    Err(_) => ((Vec::new(), None), 0),
                };
                if request.digest.is_some() && mask != 0 && request.after.is_none() {
                    self.ask_back(peer, now);
                }
                Counters::bump(&self.shared.stats.sync_requests_served);
                let response = SyncResponse { envelopes: page.0, next: page.1 };
                if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
                    tracing::debug!(%peer, "sync response not sent: stream closed");
                }
            }
            Event::Message { peer, message: RrMessage::Response { response, .. }, .. } => {
                self.on_sync_page(peer, response)
            }
            Event::OutboundFailure { peer, error, .. } => {
                // Peers that do not speak the protocol (plain relays, other apps) are expected.
                self.sync.running.remove(&peer);
                self.sync.digests.remove(&peer);
                self.after_pages();
                if !matches!(error, request_response::OutboundFailure::UnsupportedProtocols) {
                    Counters::bump(&self.shared.stats.sync_failures);
                    tracing::debug!(%peer, %error, "sync request failed");
                }
            }
            Event::InboundFailure { peer, error, .. } => tracing::debug!(%peer, %error, "sync inbound failed"),
            Event::ResponseSent { .. } => {}
        }
    }

    /// Anti-entropy is a pull, and the books of `peer` and this node differ: `peer` may hold
    /// orders this node lacks (an order whose gossip was dropped under load may exist on its
    /// maker alone), so ask it back. At most once per anti-entropy period per peer, so that two
    /// nodes whose books differ while orders are in flight do not keep asking each other.
    fn ask_back(&mut self, peer: PeerId, now: u64) {
        let every = self.sync.every;
        let recently = self.sync.asked_back.get(&peer).is_some_and(|t| t.elapsed() < every);
        if every.is_zero() || recently || self.sync.running.contains(&peer) {
            return;
        }
        self.sync.asked_back.insert(peer, web_time::Instant::now());
        self.start_anti_entropy(peer, now);
    }

    /// An anti-entropy round brought an order this node lacked: the next round comes on the
    /// next tick, and a young order is gossiped on. When an overloaded node's gossip was
    /// dropped, most nodes lack the order, and pulls alone take a round per hop. The maker's
    /// envelope travels unchanged; nodes that have it drop the copy as a duplicate.
    pub(super) fn sync_repaired(&mut self, order: OrderId, created_at: u64, bytes: &[u8], now: u64) {
        self.sync.repaired = true;
        if now.saturating_sub(created_at) > Syncs::REGOSSIP_MAX_AGE
            || !self.sync.regossip.take(web_time::Instant::now())
        {
            return;
        }
        let topic = gossipsub::IdentTopic::new(ORDERBOOK_TOPIC).hash();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes.to_vec()) {
            Ok(_) => Counters::bump(&self.shared.stats.orders_regossiped),
            Err(e) => tracing::debug!(%order, error = %e, "repaired order not gossiped on"),
        }
    }

    fn on_sync_page(&mut self, peer: PeerId, page: SyncResponse) {
        let repair = self.sync.digests.contains_key(&peer);
        self.take_in_orders(peer, page.envelopes, repair);
        match page.next {
            Some(next) => self.request_sync(peer, Some(next)),
            None => {
                // An anti-entropy round is not one of the newcomer's syncs.
                if self.sync.running.remove(&peer) && self.sync.digests.remove(&peer).is_none() {
                    self.sync.done += 1;
                    self.after_pages();
                }
            }
        }
    }
}
