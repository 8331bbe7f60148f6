//! Trade negotiation, end-to-end encrypted: sessions and their steps, sealed requests in flight,
//! the X25519 key offers that open a session, and authenticating to a counterparty that requires
//! it before it trades.

use super::{auth::AuthPurpose, Task};
use crate::{
    auth::AuthRequest,
    error::{Error, TradeSendError},
    network::{stats::Counters, NetworkEvent},
    protocol::{
        sealed::{SealRefusal, TradeReply, TradeRequest},
        Message, RejectReason, TRADE_TOPIC,
    },
    runtime::now_unix,
    trade::{TradeAck, TradeError, TradeSessions, TradeState},
};
use crate::{auth::AuthorizationLevel, error::AuthRequestError};
use darkswap_support::types::{PeerId, TradeMessage};
use futures::channel::oneshot;
use libp2p::request_response::{self, OutboundRequestId};
use std::collections::HashMap;

/// Trade messages queued for one peer while its session is being set up.
const MAX_AWAITING_KEY: usize = 64;
/// How soon a trade counterparty that requires authentication is authenticated to again.
const TRADE_AUTH_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Encodes `message` straight into an envelope's buffer, after the room for its header, and seals
/// it there: one buffer per trade message, no plaintext copy.
fn seal<T: serde::Serialize>(
    e2e: &crate::encryption::EncryptionManager,
    peer: &PeerId,
    message: &T,
) -> Result<Vec<u8>, String> {
    let room = vec![0u8; crate::encryption::envelope::HEADER_LEN];
    let mut buf = postcard::to_extend(message, room).map_err(|e| e.to_string())?;
    buf.reserve_exact(crate::encryption::TAG_LEN);
    e2e.encrypt_in_place(peer, &mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// A trade message on its way, and who waits for its acknowledgement.
pub(super) struct PendingTrade {
    peer: PeerId,
    message: TradeMessage,
    reply: oneshot::Sender<Result<TradeState, Error>>,
    /// Whether it was already re-sent after the peer lost its session.
    retried: bool,
}

/// Trade sessions and the messages, key offers and authentications under way for them.
pub(super) struct Trades {
    sessions: TradeSessions,
    /// Sealed trade messages sent, awaiting the peer's acknowledgement.
    pending: HashMap<OutboundRequestId, PendingTrade>,
    /// Trade messages waiting for the end-to-end session with their peer.
    awaiting_key: HashMap<PeerId, Vec<PendingTrade>>,
    /// Key offers in flight.
    key_offers: HashMap<OutboundRequestId, PeerId>,
    /// Counterparties being authenticated to (`None`) or authenticated to at an instant.
    authenticated: HashMap<PeerId, Option<web_time::Instant>>,
}

impl Trades {
    pub(super) fn new(local: PeerId, max_trades: usize) -> Self {
        Self {
            sessions: TradeSessions::new(local, max_trades),
            pending: HashMap::new(),
            awaiting_key: HashMap::new(),
            key_offers: HashMap::new(),
            authenticated: HashMap::new(),
        }
    }

    /// Peers with a trade session open.
    pub(super) fn counterparties(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.sessions.sessions().map(|s| s.peer)
    }

    /// Drops finished and stale sessions.
    pub(super) fn prune(&mut self, now: u64) {
        self.sessions.prune(now);
    }
}

impl Task {
    /// Republishes the sessions for handles to read.
    pub(super) fn publish_trades(&mut self) {
        if let Ok(mut t) = self.shared.trades.lock() {
            *t = self.trades.sessions.sessions().cloned().collect();
        }
    }

    pub(super) fn send_trade(
        &mut self,
        peer: PeerId,
        message: TradeMessage,
        reply: oneshot::Sender<Result<TradeState, Error>>,
    ) {
        let check = match self.shared.book.lock() {
            Ok(book) => self.trades.sessions.check_outbound(peer, &message, &book),
            Err(_) => Ok(()),
        };
        if let Err(e) = check {
            let _ = reply.send(Err(TradeSendError::Refused(e).into()));
            return;
        }
        self.send_sealed(PendingTrade { peer, message, reply, retried: false });
    }

    /// Sends over the session with the peer, or queues and opens one.
    fn send_sealed(&mut self, pending: PendingTrade) {
        let peer = pending.peer;
        if !self.shared.e2e.has_session(&peer) {
            let queue = self.trades.awaiting_key.entry(peer).or_default();
            if queue.len() >= MAX_AWAITING_KEY {
                let _ = pending
                    .reply
                    .send(Err(TradeSendError::Sealing("too many messages awaiting a session".into()).into()));
                return;
            }
            queue.push(pending);
            if !matches!(self.trades.authenticated.get(&peer), Some(None)) {
                self.offer_key(peer);
            }
            return;
        }
        let sealed = seal(&self.shared.e2e, &peer, &pending.message);
        match sealed {
            Ok(ciphertext) => {
                let id = self.swarm.behaviour_mut().trade.send_request(&peer, TradeRequest::Sealed(ciphertext));
                self.trades.pending.insert(id, pending);
            }
            Err(e) => {
                let _ = pending.reply.send(Err(TradeSendError::Sealing(e).into()));
            }
        }
    }

    /// Opens a session with `peer` unless an offer is already in flight.
    fn offer_key(&mut self, peer: PeerId) {
        if self.trades.key_offers.values().any(|p| *p == peer) {
            return;
        }
        match self.shared.e2e.generate_ephemeral_key_pair(&peer) {
            Ok(key) => {
                let id = self.swarm.behaviour_mut().trade.send_request(&peer, TradeRequest::KeyOffer(Box::new(key)));
                self.trades.key_offers.insert(id, peer);
            }
            Err(e) => self.fail_awaiting(peer, &e.to_string()),
        }
    }

    /// The peer requires authentication before trading: authenticate once, then offer keys again.
    fn authenticate_for_trade(&mut self, peer: PeerId) -> bool {
        // Once per peer per minute: a peer that still refuses right after is refusing for real.
        let now = web_time::Instant::now();
        self.trades.authenticated.retain(|_, done| done.is_none_or(|t| now.duration_since(t) < TRADE_AUTH_RETRY));
        if self.trades.authenticated.contains_key(&peer) {
            return false;
        }
        self.trades.authenticated.insert(peer, None);
        let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::GetChallenge);
        self.auth.track(id, peer, AuthPurpose::ForTrade);
        true
    }

    fn flush_awaiting(&mut self, peer: PeerId) {
        for pending in self.trades.awaiting_key.remove(&peer).unwrap_or_default() {
            self.send_sealed(pending);
        }
    }

    fn fail_awaiting(&mut self, peer: PeerId, why: &str) {
        for p in self.trades.awaiting_key.remove(&peer).unwrap_or_default() {
            let _ = p.reply.send(Err(TradeSendError::Sealing(why.to_string()).into()));
        }
    }

    pub(super) fn on_trade(&mut self, ev: request_response::Event<TradeRequest, TradeReply>) {
        use request_response::{Event, Message as RrMessage};
        match ev {
            Event::Message { peer, message: RrMessage::Request { request, channel, .. }, .. } => {
                let reply = self.on_trade_request(peer, request);
                let _ = self.swarm.behaviour_mut().trade.send_response(channel, reply);
            }
            Event::Message { peer, message: RrMessage::Response { request_id, response }, .. } => {
                if self.trades.key_offers.remove(&request_id).is_some() {
                    self.on_key_reply(peer, response);
                } else if let Some(pending) = self.trades.pending.remove(&request_id) {
                    self.on_sealed_reply(pending, response);
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if self.trades.key_offers.remove(&request_id).is_some() {
                    self.fail_awaiting(peer, &format!("key exchange failed: {error}"));
                } else if let Some(p) = self.trades.pending.remove(&request_id) {
                    let _ = p.reply.send(Err(TradeSendError::Delivery(error.to_string()).into()));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, "trade inbound failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_trade_request(&mut self, peer: PeerId, request: TradeRequest) -> TradeReply {
        let e2e = self.shared.e2e.clone();
        if !self.shared.auth.is_authorized(&peer, AuthorizationLevel::Basic) && self.shared.auth.config().require_auth {
            self.shared.stats.reject(RejectReason::TradeRefused);
            return TradeReply::Refused(SealRefusal::Unauthorized);
        }
        match request {
            TradeRequest::KeyOffer(theirs) => {
                let offering = self.trades.key_offers.values().any(|p| *p == peer);
                if offering && *self.swarm.local_peer_id() < peer {
                    // Both offered at once: ours (the smaller id's) wins; theirs is dropped.
                    return TradeReply::Refused(SealRefusal::Collision);
                }
                let ours = match e2e.generate_ephemeral_key_pair(&peer) {
                    Ok(k) => k,
                    Err(_) => return TradeReply::Refused(SealRefusal::BadKey),
                };
                if let Err(e) = e2e.perform_key_exchange(&peer, &theirs) {
                    tracing::warn!(%peer, error = %e, "refused key offer");
                    self.shared.stats.reject(RejectReason::TradeRefused);
                    return TradeReply::Refused(SealRefusal::BadKey);
                }
                // Our own offer (if it lost the collision) is moot: the session exists now.
                self.trades.key_offers.retain(|_, p| *p != peer);
                self.flush_awaiting(peer);
                TradeReply::KeyOffer(Box::new(ours))
            }
            TradeRequest::Sealed(mut ciphertext) => {
                let plain = match e2e.decrypt_in_place(&peer, &mut ciphertext) {
                    Ok(p) => p,
                    Err(crate::encryption::DecryptError::NoSession(_)) => {
                        return TradeReply::Refused(SealRefusal::NoSession)
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "undecryptable trade message");
                        self.shared.stats.reject(RejectReason::TradeRefused);
                        return TradeReply::Refused(SealRefusal::Undecryptable);
                    }
                };
                let Ok(message) = crate::protocol::codec::decode_body::<TradeMessage>(plain) else {
                    self.shared.stats.reject(RejectReason::TradeRefused);
                    return TradeReply::Refused(SealRefusal::Malformed);
                };
                let ack = self.on_trade_message(peer, message);
                match seal(&e2e, &peer, &ack) {
                    Ok(sealed) => TradeReply::Sealed(sealed),
                    Err(_) => TradeReply::Refused(SealRefusal::NoSession),
                }
            }
        }
    }

    fn on_trade_message(&mut self, peer: PeerId, request: TradeMessage) -> TradeAck {
        let result = match self.shared.book.lock() {
            Ok(book) => self.trades.sessions.on_inbound(peer, &request, &book, now_unix()),
            Err(_) => Err(TradeError::UnknownOrder),
        };
        match result {
            Ok(state) => {
                tracing::info!(%peer, trade = %request.trade_id, step = request.body.kind(), ?state, "trade message");
                Counters::bump(&self.shared.stats.trade_messages_received);
                self.publish_trades();
                self.emit(NetworkEvent::MessageReceived {
                    peer_id: peer,
                    topic: TRADE_TOPIC.to_string(),
                    message: Message::Trade(request),
                });
                TradeAck::Delivered
            }
            Err(e) => {
                tracing::warn!(%peer, trade = %request.trade_id, error = %e, "refused trade message");
                self.shared.stats.reject(RejectReason::TradeRefused);
                TradeAck::Refused(e)
            }
        }
    }

    fn on_key_reply(&mut self, peer: PeerId, reply: TradeReply) {
        match reply {
            TradeReply::KeyOffer(theirs) => match self.shared.e2e.perform_key_exchange(&peer, &theirs) {
                Ok(()) => self.flush_awaiting(peer),
                Err(e) => self.fail_awaiting(peer, &format!("peer's key refused: {e}")),
            },
            // The peer's own offer wins; its arrival flushes the queue.
            TradeReply::Refused(SealRefusal::Collision) if self.shared.e2e.has_session(&peer) => {
                self.flush_awaiting(peer)
            }
            TradeReply::Refused(SealRefusal::Collision) => {}
            TradeReply::Refused(SealRefusal::Unauthorized) if self.authenticate_for_trade(peer) => {}
            TradeReply::Refused(r) => self.fail_awaiting(peer, &r.to_string()),
            TradeReply::Sealed(_) => self.fail_awaiting(peer, "peer answered a key offer with a sealed message"),
        }
    }

    fn on_sealed_reply(&mut self, mut pending: PendingTrade, reply: TradeReply) {
        let peer = pending.peer;
        let result = match reply {
            TradeReply::Sealed(mut ciphertext) => {
                let ack = self
                    .shared
                    .e2e
                    .decrypt_in_place(&peer, &mut ciphertext)
                    .map_err(|e| e.to_string())
                    .and_then(|p| crate::protocol::codec::decode_body::<TradeAck>(p).map_err(|e| e.to_string()));
                match ack {
                    Ok(TradeAck::Delivered) => {
                        let committed = match self.shared.book.lock() {
                            Ok(book) => self.trades.sessions.commit_outbound(peer, &pending.message, &book, now_unix()),
                            Err(_) => Err(TradeError::UnknownOrder),
                        };
                        self.publish_trades();
                        committed.map_err(|e| TradeSendError::Refused(e).into())
                    }
                    Ok(TradeAck::Refused(e)) => Err(TradeSendError::RefusedByPeer(e).into()),
                    Err(e) => Err(TradeSendError::Sealing(format!("acknowledgement: {e}")).into()),
                }
            }
            TradeReply::Refused(SealRefusal::Unauthorized) if !pending.retried && self.authenticate_for_trade(peer) => {
                pending.retried = true;
                self.trades.awaiting_key.entry(peer).or_default().push(pending);
                return;
            }
            TradeReply::Refused(SealRefusal::NoSession) if !pending.retried => {
                // The peer restarted and lost the session: set up a new one and send once more.
                self.shared.e2e.remove_session(&peer);
                pending.retried = true;
                self.send_sealed(pending);
                return;
            }
            TradeReply::Refused(r) => Err(TradeSendError::Sealing(r.to_string()).into()),
            TradeReply::KeyOffer(_) => Err(TradeSendError::Sealing("unexpected key offer".into()).into()),
        };
        let _ = pending.reply.send(result);
    }

    /// Authenticating to a counterparty that required it ended: the queued messages go on, or
    /// fail with the reason.
    pub(super) fn trade_authenticated(&mut self, peer: PeerId, result: Result<AuthorizationLevel, AuthRequestError>) {
        self.trades.authenticated.insert(peer, Some(web_time::Instant::now()));
        match result {
            Ok(_) if self.shared.e2e.has_session(&peer) => self.flush_awaiting(peer),
            Ok(_) => self.offer_key(peer),
            Err(e) => self.fail_awaiting(peer, &format!("peer requires authentication: {e}")),
        }
    }
}
