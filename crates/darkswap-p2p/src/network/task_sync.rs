//! The network task's order-book sync: a newcomer's pages, and anti-entropy rounds that repair
//! what gossip missed (asking back, and gossiping young repairs on). Sync pages carry the
//! makers' signed envelopes, each validated like gossip.

use super::{
    task::{counters, Task},
    task_events::Applied,
    NetworkEvent,
};
use crate::{
    network::stats::Counters,
    protocol::{
        envelope::{self, Envelope},
        limits, validate, Message, RejectReason, SyncRequest, SyncResponse, ORDERBOOK_TOPIC,
    },
    runtime::now_unix,
};
use darkswap_support::types::PeerId;
use libp2p::{
    gossipsub::{self, IdentTopic},
    request_response,
};
use std::sync::Arc;

/// Orders an anti-entropy round brought that were created less than this many seconds ago are
/// gossiped on: gossip dropped them recently, likely on the way to other nodes too.
const REGOSSIP_MAX_AGE: u64 = 60;
impl Task {
    /// Every `anti_entropy_every`, compares books with one random order-book peer and pulls
    /// what differs: gossip can miss a node (it joined the mesh after a message passed, it
    /// restarted, or an overloaded peer dropped forwards), and this repairs it within a round or
    /// two at the cost of a digest when books agree. A round that repaired something is
    /// followed by another on the next tick, until one finds nothing. The peer asked also asks
    /// back when the digests differ (see `on_sync`), so an order only this node holds spreads
    /// as fast as one it lacks.
    pub(super) fn anti_entropy(&mut self, now: u64) {
        let due = self.anti_entropy_repaired || self.last_anti_entropy.elapsed() >= self.anti_entropy_every;
        if self.anti_entropy_every.is_zero() || !due {
            return;
        }
        self.anti_entropy_repaired = false;
        self.last_anti_entropy = web_time::Instant::now();
        let hash = IdentTopic::new(crate::protocol::ORDERBOOK_TOPIC).hash();
        let candidates: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, topics)| topics.contains(&&hash) && !self.syncs_running.contains(p))
            .map(|(p, _)| *p)
            .collect();
        let Some(&peer) = candidates.get(rand::random::<usize>() % candidates.len().max(1)) else { return };
        self.start_anti_entropy(peer, now);
    }

    /// Sends `peer` this book's digest, asking for the orders in the buckets where the books
    /// differ.
    pub(super) fn start_anti_entropy(&mut self, peer: PeerId, now: u64) {
        let digest = match self.shared.book.lock() {
            Ok(book) => book.digest(now),
            Err(_) => return,
        };
        tracing::debug!(%peer, "anti-entropy round");
        Counters::bump(&self.shared.stats.anti_entropy_rounds);
        self.sync_digests.insert(peer, digest);
        self.syncs_running.insert(peer);
        self.sync_pages.remove(&peer); // the page cap bounds one run
        self.request_sync(peer, None);
    }

    pub(super) fn request_sync(&mut self, peer: PeerId, after: Option<darkswap_support::types::OrderId>) {
        let pages = self.sync_pages.entry(peer).or_default();
        if *pages >= limits::SYNC_MAX_PAGES {
            tracing::warn!(%peer, "sync page limit reached");
            return;
        }
        *pages += 1;
        let digest = self.sync_digests.get(&peer).cloned();
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
                self.syncs_running.remove(&peer);
                self.sync_digests.remove(&peer);
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
        let every = self.anti_entropy_every;
        let recently = self.asked_back.get(&peer).is_some_and(|t| t.elapsed() < every);
        if every.is_zero() || recently || self.syncs_running.contains(&peer) {
            return;
        }
        self.asked_back.insert(peer, web_time::Instant::now());
        self.start_anti_entropy(peer, now);
    }

    /// Gossips on a young order that an anti-entropy round brought: when an overloaded node's
    /// gossip was dropped, most nodes lack the order, and pulls alone take a round per hop.
    /// The maker's envelope travels unchanged; nodes that have it drop the copy as a duplicate.
    fn regossip(&mut self, env: &Envelope, bytes: &[u8], now: u64) {
        let Message::OrderAnnounce(order) = &env.message else { return };
        if now.saturating_sub(order.created_at) > REGOSSIP_MAX_AGE || !self.regossip.take(web_time::Instant::now()) {
            return;
        }
        let topic = gossipsub::IdentTopic::new(ORDERBOOK_TOPIC).hash();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes.to_vec()) {
            Ok(_) => Counters::bump(&self.shared.stats.orders_regossiped),
            Err(e) => tracing::debug!(order = %order.id, error = %e, "repaired order not gossiped on"),
        }
    }

    fn on_sync_page(&mut self, peer: PeerId, page: SyncResponse) {
        let now = now_unix();
        for bytes in page.envelopes.into_iter().take(limits::SYNC_PAGE_MAX as usize) {
            let known = envelope::claimed_order_id(&bytes)
                .is_some_and(|id| self.shared.book.lock().is_ok_and(|b| b.get(&id).is_some()));
            if known {
                continue;
            }
            let bytes: Arc<[u8]> = Arc::from(bytes.into_vec());
            let checked = envelope::open(ORDERBOOK_TOPIC, &bytes).and_then(|env| match env.message {
                Message::OrderAnnounce(_) => validate::check_envelope(ORDERBOOK_TOPIC, &env, now).map(|()| env),
                _ => Err(RejectReason::WrongTopic),
            });
            match checked {
                Ok(env) => match self.apply_to_book(&env, &bytes) {
                    Ok(Applied::New) => {
                        Counters::bump(&self.shared.stats.orders_synced);
                        if self.sync_digests.contains_key(&peer) {
                            self.anti_entropy_repaired = true;
                            self.regossip(&env, &bytes, now);
                        }
                        self.emit(NetworkEvent::MessageReceived {
                            peer_id: peer,
                            topic: ORDERBOOK_TOPIC.to_string(),
                            message: env.message,
                        });
                    }
                    Ok(Applied::Known | Applied::Dropped) => {}
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "synced order not added");
                        counters(&self.shared).reject(RejectReason::BookFull);
                    }
                },
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "rejected order from sync");
                    counters(&self.shared).reject(reason);
                }
            }
        }
        match page.next {
            Some(next) => self.request_sync(peer, Some(next)),
            None => {
                // An anti-entropy round is not one of the newcomer's syncs.
                if self.syncs_running.remove(&peer) && self.sync_digests.remove(&peer).is_none() {
                    self.syncs_done += 1;
                }
            }
        }
    }
}
