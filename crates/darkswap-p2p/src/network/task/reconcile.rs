//! Order-book reconciliation (`protocol::reconcile`): as initiator, the Negentropy rounds with
//! one peer, then fetching what this node lacks and naming what the peer lacks; as responder,
//! answering rounds against a recent snapshot of the book, each peer within its own rate. Orders
//! are fetched once: ids being fetched from one peer are not fetched from another meanwhile.

use super::{
    ingest::{Ingested, Via},
    Task,
};
use crate::{
    network::stats::Counters,
    order_book::order_id_of,
    protocol::{
        envelope, limits,
        reconcile::{ReconcileRequest, ReconcileResponse},
        RejectReason, ORDERBOOK_TOPIC,
    },
    rate::TokenBucket,
    runtime::now_unix,
};
use darkswap_support::types::{OrderId, PeerId};
use libp2p::request_response;
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use std::{collections::HashMap, sync::Arc};
use web_time::{Duration, Instant};

/// One reconciliation this node started.
struct Session {
    negentropy: Negentropy<'static, NegentropyStorageVector>,
    rounds: u32,
    /// Ids this node holds and the peer lacks, and the other way round.
    have: Vec<Id>,
    need: Vec<Id>,
}

/// Reconciliations under way (started here), and what serving others costs.
pub(super) struct Reconciles {
    sessions: HashMap<PeerId, Session>,
    /// The book as a Negentropy set for answering rounds, and when it was taken: rebuilding it
    /// is O(book), so every peer's rounds within [`Reconciles::SNAPSHOT_AGE`] share one. An order
    /// that arrived since is found missing by the initiator, which offers it back (and this node
    /// drops the duplicate); the cost of staleness is a few bytes, never a lost order.
    snapshot: Option<(NegentropyStorageVector, Instant)>,
    /// Requests each connected peer may make (a bucket per peer, dropped on disconnect), so that
    /// one peer's requests cannot use up what others are served.
    served: HashMap<PeerId, TokenBucket>,
    /// Connected peers to reconcile with unless they start first, and from when (see
    /// `Task::sync_on_connect`).
    deferred: HashMap<PeerId, Instant>,
    /// Order ids asked for and when: a node that several peers reconcile with at once (back
    /// from an absence) fetches each order once. Bounded ([`Reconciles::MAX_FETCHING`]); an id
    /// whose fetch failed is fetched again after [`Reconciles::FETCH_TIMEOUT`].
    /// Each id's claim records the peer whose offer made it, if one did: offers are a
    /// stranger's word, so they may hold only part of the table (see `claim_fetches`).
    fetching: HashMap<OrderId, (Instant, Option<PeerId>)>,
}

impl Reconciles {
    /// Reconciliations this node runs at once (each holds its own snapshot of the book).
    const MAX_SESSIONS: usize = 4;
    /// How old the responder's snapshot may be.
    const SNAPSHOT_AGE: Duration = Duration::from_secs(1);
    /// Requests served per peer and second, and burst: a reconciliation of 100,000 orders takes
    /// 3-4 rounds, then a fetch or offer per 256 orders that differ.
    const PEER_RATE: u32 = 10;
    const PEER_BURST: u32 = 40;
    /// How long the listening side of a new connection waits for the dialer to reconcile.
    const DEFER: Duration = Duration::from_secs(2);
    /// Order ids being fetched at most (a full book's difference with a few peers at once).
    const MAX_FETCHING: usize = 16_384;
    /// Offered ids one peer may have claimed at once.
    const MAX_OFFERED_PER_PEER: usize = 1024;
    /// How long an id asked for is not asked for again.
    const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

    pub(super) fn new() -> Self {
        Self {
            sessions: HashMap::new(),
            snapshot: None,
            served: HashMap::new(),
            deferred: HashMap::new(),
            fetching: HashMap::new(),
        }
    }

    /// Of `ids`, those to fetch now (not asked for within [`Reconciles::FETCH_TIMEOUT`]),
    /// marked as asked for; none beyond [`Reconciles::MAX_FETCHING`]. Ids a peer offered
    /// (`offered_by`) may take at most half the table, and one peer's at most
    /// [`Reconciles::MAX_OFFERED_PER_PEER`]: peers offering ids they never deliver cannot
    /// crowd out the fetches this node's own reconciliations need.
    fn claim_fetches(&mut self, ids: impl IntoIterator<Item = OrderId>, offered_by: Option<PeerId>) -> Vec<OrderId> {
        let now = Instant::now();
        let live = |at: &Instant| now.duration_since(*at) < Reconciles::FETCH_TIMEOUT;
        if self.fetching.len() >= Reconciles::MAX_FETCHING / 2 {
            self.fetching.retain(|_, (at, _)| live(at));
        }
        let (mut offered, mut by_peer) = (0, 0);
        if let Some(peer) = offered_by {
            for (_, by) in self.fetching.values() {
                offered += usize::from(by.is_some());
                by_peer += usize::from(*by == Some(peer));
            }
        }
        let mut out = Vec::new();
        for id in ids {
            let asked = self.fetching.get(&id).is_some_and(|(at, _)| live(at));
            let full = self.fetching.len() >= Reconciles::MAX_FETCHING && !self.fetching.contains_key(&id);
            let over_share = offered_by.is_some()
                && (offered >= Reconciles::MAX_FETCHING / 2 || by_peer >= Reconciles::MAX_OFFERED_PER_PEER);
            if asked || full || over_share {
                continue;
            }
            self.fetching.insert(id, (now, offered_by));
            offered += 1;
            by_peer += 1;
            out.push(id);
        }
        out
    }

    /// Reconcile with connected `peer` in a moment, unless it starts a reconciliation first.
    pub(super) fn defer(&mut self, peer: PeerId) {
        self.deferred.insert(peer, Instant::now() + Reconciles::DEFER);
    }

    /// Deferred peers whose moment has come (taken off the list).
    pub(super) fn deferred_due(&mut self) -> Vec<PeerId> {
        let now = Instant::now();
        let due: Vec<PeerId> = self.deferred.iter().filter(|(_, at)| **at <= now).map(|(p, _)| *p).collect();
        for p in &due {
            self.deferred.remove(p);
        }
        due
    }

    /// Whether a reconciliation with `peer` is under way.
    pub(super) fn running(&self, peer: &PeerId) -> bool {
        self.sessions.contains_key(peer)
    }

    /// `peer`'s last connection closed.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.sessions.remove(peer);
        self.served.remove(peer);
        self.deferred.remove(peer);
    }
}

impl Task {
    /// Starts reconciling the book with `peer`. Returns false when it could not start (too many
    /// under way, or one with `peer` already).
    pub(super) fn start_reconcile(&mut self, peer: PeerId) -> bool {
        let r = &mut self.reconcile;
        if r.sessions.len() >= Reconciles::MAX_SESSIONS || r.sessions.contains_key(&peer) {
            return false;
        }
        let set = match self.shared.book.lock() {
            Ok(book) => book.reconciliation_set(now_unix()),
            Err(_) => return false,
        };
        let first =
            Negentropy::owned(set, limits::RECONCILE_FRAME as u64).and_then(|mut n| n.initiate().map(|msg| (n, msg)));
        let (negentropy, msg) = match first {
            Ok(started) => started,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "reconciliation not started");
                return false;
            }
        };
        tracing::debug!(%peer, "reconciliation started");
        Counters::bump(&self.shared.stats.anti_entropy_rounds);
        r.sessions.insert(peer, Session { negentropy, rounds: 1, have: Vec::new(), need: Vec::new() });
        self.send_reconcile(peer, ReconcileRequest::Round(msg.into()));
        true
    }

    fn send_reconcile(&mut self, peer: PeerId, request: ReconcileRequest) {
        self.swarm.behaviour_mut().reconcile.send_request(&peer, request);
    }

    pub(super) fn on_reconcile(&mut self, ev: request_response::Event<ReconcileRequest, ReconcileResponse>) {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                let response = self.serve_reconcile(peer, request);
                if self.swarm.behaviour_mut().reconcile.send_response(channel, response).is_err() {
                    tracing::debug!(%peer, "reconcile response not sent: stream closed");
                }
            }
            Event::Message { peer, message: Message::Response { response, .. }, .. } => {
                self.on_reconcile_response(peer, response)
            }
            Event::OutboundFailure { peer, error, .. } => {
                let started = self.reconcile.sessions.remove(&peer).is_some();
                if matches!(error, request_response::OutboundFailure::UnsupportedProtocols) {
                    // A node from before reconciliation: compare digests instead.
                    if started {
                        self.start_digest_round(peer, now_unix());
                    }
                } else {
                    Counters::bump(&self.shared.stats.sync_failures);
                    tracing::debug!(%peer, %error, "reconcile request failed");
                }
            }
            Event::InboundFailure { peer, error, .. } => tracing::debug!(%peer, %error, "reconcile inbound failed"),
            Event::ResponseSent { .. } => {}
        }
    }

    /// Answers one request from `peer`, within its rate.
    fn serve_reconcile(&mut self, peer: PeerId, request: ReconcileRequest) -> ReconcileResponse {
        let now = Instant::now();
        let bucket = self
            .reconcile
            .served
            .entry(peer)
            .or_insert_with(|| TokenBucket::new(Reconciles::PEER_RATE, Reconciles::PEER_BURST, now));
        if !bucket.take(now) {
            self.shared.stats.reject(RejectReason::RateLimited);
            return ReconcileResponse::Refused;
        }
        Counters::bump(&self.shared.stats.sync_requests_served);
        let unix = now_unix();
        match request {
            ReconcileRequest::Round(msg) => {
                // The peer is comparing books with this node: one comparison is enough.
                self.reconcile.deferred.remove(&peer);
                let fresh =
                    self.reconcile.snapshot.as_ref().is_some_and(|(_, at)| at.elapsed() < Reconciles::SNAPSHOT_AGE);
                if !fresh {
                    let Ok(book) = self.shared.book.lock() else { return ReconcileResponse::Refused };
                    self.reconcile.snapshot = Some((book.reconciliation_set(unix), now));
                }
                let Some((set, _)) = self.reconcile.snapshot.as_ref() else { return ReconcileResponse::Refused };
                let reply =
                    Negentropy::borrowed(set, limits::RECONCILE_FRAME as u64).and_then(|mut n| n.reconcile(&msg));
                match reply {
                    Ok(reply) => ReconcileResponse::Round(reply.into()),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "malformed reconciliation round");
                        self.shared.stats.reject(RejectReason::Undecodable);
                        ReconcileResponse::Refused
                    }
                }
            }
            ReconcileRequest::Fetch(ids) => match self.shared.book.lock() {
                Ok(book) => ReconcileResponse::Orders(book.envelopes(&ids, unix)),
                Err(_) => ReconcileResponse::Refused,
            },
            ReconcileRequest::Offer(mut ids) => {
                ids.truncate(limits::SYNC_PAGE_MAX as usize);
                self.fetch_missing(peer, ids, true);
                ReconcileResponse::Taken
            }
        }
    }

    fn on_reconcile_response(&mut self, peer: PeerId, response: ReconcileResponse) {
        match response {
            ReconcileResponse::Round(reply) => self.next_round(peer, &reply),
            ReconcileResponse::Orders(envelopes) => self.take_in_orders(peer, envelopes, true),
            ReconcileResponse::Taken => {}
            ReconcileResponse::Refused => {
                self.reconcile.sessions.remove(&peer);
            }
        }
    }

    /// The peer's reply to a round: the next round, or when the difference is known, fetch
    /// and offer it.
    fn next_round(&mut self, peer: PeerId, reply: &[u8]) {
        let Some(session) = self.reconcile.sessions.get_mut(&peer) else { return };
        let Session { negentropy, rounds, have, need } = session;
        match negentropy.reconcile_with_ids(reply, have, need) {
            Ok(Some(msg)) if *rounds < limits::RECONCILE_MAX_ROUNDS => {
                *rounds += 1;
                self.send_reconcile(peer, ReconcileRequest::Round(msg.into()));
            }
            Ok(Some(_)) => {
                tracing::debug!(%peer, "reconciliation ended: too many rounds");
                self.reconcile.sessions.remove(&peer);
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "reconciliation ended: malformed reply");
                self.reconcile.sessions.remove(&peer);
            }
            Ok(None) => {
                let Some(done) = self.reconcile.sessions.remove(&peer) else { return };
                tracing::debug!(%peer, rounds = done.rounds, have = done.have.len(), need = done.need.len(), "reconciled");
                self.exchange_difference(peer, &done.have, &done.need);
            }
        }
    }

    /// Fetches the orders `need` from `peer` and names those in `have` for it to fetch, a page
    /// per request.
    fn exchange_difference(&mut self, peer: PeerId, have: &[Id], need: &[Id]) {
        self.fetch_missing(peer, need.iter().filter_map(order_id_of).collect(), false);
        let have: Vec<OrderId> = have.iter().filter_map(order_id_of).collect();
        for ids in have.chunks(limits::SYNC_PAGE_MAX as usize) {
            self.send_reconcile(peer, ReconcileRequest::Offer(ids.to_vec()));
        }
    }

    /// Fetches from `peer` the orders among `ids` that the book lacks and no other peer is
    /// being asked for, a page per request; `offered` when `peer` named them itself.
    fn fetch_missing(&mut self, peer: PeerId, ids: Vec<OrderId>, offered: bool) {
        let lacking: Vec<OrderId> = match self.shared.book.lock() {
            Ok(book) => ids.into_iter().filter(|id| book.get(id).is_none()).collect(),
            Err(_) => return,
        };
        let wanted = self.reconcile.claim_fetches(lacking, offered.then_some(peer));
        for ids in wanted.chunks(limits::SYNC_PAGE_MAX as usize) {
            self.send_reconcile(peer, ReconcileRequest::Fetch(ids.to_vec()));
        }
    }

    /// Takes in orders a peer sent (a sync page, fetched orders, an offer), each checked like
    /// gossip; with `repair`, orders the book lacked mark a repair (the next anti-entropy round
    /// comes sooner) and young ones are gossiped on.
    pub(super) fn take_in_orders(&mut self, peer: PeerId, envelopes: Vec<serde_bytes::ByteBuf>, repair: bool) {
        let now = now_unix();
        for bytes in envelopes.into_iter().take(limits::SYNC_PAGE_MAX as usize) {
            let known = envelope::claimed_order_id(&bytes)
                .is_some_and(|id| self.shared.book.lock().is_ok_and(|b| b.get(&id).is_some()));
            if known {
                continue;
            }
            let bytes: Arc<[u8]> = Arc::from(bytes.into_vec());
            if let Ingested::New(Some((order, created_at))) =
                self.ingest(peer, &Via::Sync, ORDERBOOK_TOPIC, bytes.clone())
            {
                if repair {
                    self.sync_repaired(order, created_at, &bytes, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_book::reconciliation_id;

    #[test]
    fn order_ids_survive_the_negentropy_id() {
        let id = OrderId([7; 16]);
        assert_eq!(order_id_of(&reconciliation_id(&id)), Some(id));
        let mut foreign = [0u8; 32];
        foreign[31] = 1;
        assert_eq!(order_id_of(&Id::from_byte_array(foreign)), None, "not an order id: skipped");
    }

    #[test]
    fn an_order_is_fetched_from_one_peer_at_a_time_and_the_claims_are_bounded() {
        let mut r = Reconciles::new();
        let ids: Vec<OrderId> = (0..10u8).map(|n| OrderId([n; 16])).collect();
        assert_eq!(r.claim_fetches(ids.clone(), None), ids);
        assert!(r.claim_fetches(ids[..5].to_vec(), None).is_empty(), "asked for already");
        let mut many = (0..Reconciles::MAX_FETCHING as u32 * 2).map(|n| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_le_bytes());
            id[15] = 1;
            OrderId(id)
        });
        // Offers from strangers: one peer gets its share, sybils together half the table.

        let sybils: Vec<PeerId> = (0..16).map(|_| PeerId::random()).collect();
        let first = r.claim_fetches(many.by_ref().take(1100), Some(sybils[0]));
        assert_eq!(first.len(), Reconciles::MAX_OFFERED_PER_PEER);
        for s in &sybils[1..] {
            r.claim_fetches(many.by_ref().take(1100), Some(*s));
        }
        assert_eq!(r.fetching.len(), 10 + Reconciles::MAX_FETCHING / 2, "offers hold at most half");
        // This node's own needs still find room, up to the whole table.
        assert_eq!(r.claim_fetches(many, None).len(), Reconciles::MAX_FETCHING / 2 - 10);
        assert_eq!(r.fetching.len(), Reconciles::MAX_FETCHING);
    }
}
