//! The network task's secured protocols: end-to-end encrypted trade negotiation and
//! authentication (to relays before reserving, on request, and as a verifier).

use super::{
    command::AuthPurpose,
    task::{counters, PendingTrade, Task},
    NetworkEvent,
};
use crate::{
    auth::{self, AuthRequest, AuthResponse, AuthorizationLevel},
    error::{AuthRequestError, Error, TradeSendError},
    network::stats::Counters,
    protocol::{
        sealed::{SealRefusal, TradeReply, TradeRequest},
        Message, RejectReason, TRADE_TOPIC,
    },
    runtime::now_unix,
    trade::{TradeAck, TradeError, TradeState},
};
use darkswap_support::types::{PeerId, TradeMessage};
use futures::channel::oneshot;
use libp2p::request_response;

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

impl Task {
    pub(super) fn send_trade(
        &mut self,
        peer: PeerId,
        message: TradeMessage,
        reply: oneshot::Sender<Result<TradeState, Error>>,
    ) {
        let check = match self.shared.book.lock() {
            Ok(book) => self.trades.check_outbound(peer, &message, &book),
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
            let queue = self.awaiting_key.entry(peer).or_default();
            if queue.len() >= MAX_AWAITING_KEY {
                let _ = pending
                    .reply
                    .send(Err(TradeSendError::Sealing("too many messages awaiting a session".into()).into()));
                return;
            }
            queue.push(pending);
            if !matches!(self.trade_auth.get(&peer), Some(None)) {
                self.offer_key(peer);
            }
            return;
        }
        let sealed = seal(&self.shared.e2e, &peer, &pending.message);
        match sealed {
            Ok(ciphertext) => {
                let id = self.swarm.behaviour_mut().trade.send_request(&peer, TradeRequest::Sealed(ciphertext));
                self.pending_trades.insert(id, pending);
            }
            Err(e) => {
                let _ = pending.reply.send(Err(TradeSendError::Sealing(e).into()));
            }
        }
    }

    /// Opens a session with `peer` unless an offer is already in flight.
    fn offer_key(&mut self, peer: PeerId) {
        if self.key_offers.values().any(|p| *p == peer) {
            return;
        }
        match self.shared.e2e.generate_ephemeral_key_pair(&peer) {
            Ok(key) => {
                let id = self.swarm.behaviour_mut().trade.send_request(&peer, TradeRequest::KeyOffer(Box::new(key)));
                self.key_offers.insert(id, peer);
            }
            Err(e) => self.fail_awaiting(peer, &e.to_string()),
        }
    }

    /// The peer requires authentication before trading: authenticate once, then offer keys again.
    fn authenticate_for_trade(&mut self, peer: PeerId) -> bool {
        // Once per peer per minute: a peer that still refuses right after is refusing for real.
        let now = web_time::Instant::now();
        self.trade_auth.retain(|_, done| done.is_none_or(|t| now.duration_since(t) < TRADE_AUTH_RETRY));
        if self.trade_auth.contains_key(&peer) {
            return false;
        }
        self.trade_auth.insert(peer, None);
        let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::GetChallenge);
        self.auth_requests.insert(id, (peer, AuthPurpose::ForTrade));
        true
    }

    fn flush_awaiting(&mut self, peer: PeerId) {
        for pending in self.awaiting_key.remove(&peer).unwrap_or_default() {
            self.send_sealed(pending);
        }
    }

    fn fail_awaiting(&mut self, peer: PeerId, why: &str) {
        for p in self.awaiting_key.remove(&peer).unwrap_or_default() {
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
                if self.key_offers.remove(&request_id).is_some() {
                    self.on_key_reply(peer, response);
                } else if let Some(pending) = self.pending_trades.remove(&request_id) {
                    self.on_sealed_reply(pending, response);
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if self.key_offers.remove(&request_id).is_some() {
                    self.fail_awaiting(peer, &format!("key exchange failed: {error}"));
                } else if let Some(p) = self.pending_trades.remove(&request_id) {
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
            counters(&self.shared).reject(RejectReason::TradeRefused);
            return TradeReply::Refused(SealRefusal::Unauthorized);
        }
        match request {
            TradeRequest::KeyOffer(theirs) => {
                let offering = self.key_offers.values().any(|p| *p == peer);
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
                    counters(&self.shared).reject(RejectReason::TradeRefused);
                    return TradeReply::Refused(SealRefusal::BadKey);
                }
                // Our own offer (if it lost the collision) is moot: the session exists now.
                self.key_offers.retain(|_, p| *p != peer);
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
                        counters(&self.shared).reject(RejectReason::TradeRefused);
                        return TradeReply::Refused(SealRefusal::Undecryptable);
                    }
                };
                let Ok(message) = crate::protocol::codec::decode_body::<TradeMessage>(plain) else {
                    counters(&self.shared).reject(RejectReason::TradeRefused);
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
            Ok(book) => self.trades.on_inbound(peer, &request, &book, now_unix()),
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
                counters(&self.shared).reject(RejectReason::TradeRefused);
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
                            Ok(book) => self.trades.commit_outbound(peer, &pending.message, &book, now_unix()),
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
                self.awaiting_key.entry(peer).or_default().push(pending);
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

    /// Authenticates to `peer`; `reply` gets the level granted (`None`: before a reservation).
    pub(super) fn authenticate(
        &mut self,
        peer: PeerId,
        reply: Option<oneshot::Sender<Result<AuthorizationLevel, Error>>>,
    ) {
        let request = match self.relay_tokens.get(&peer).and_then(|t| auth::AuthToken::from_bytes(t).ok()) {
            Some(token) => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::PresentToken(token));
                self.auth_requests.insert(id, (peer, AuthPurpose::Grant(reply)));
                return;
            }
            None => AuthRequest::GetChallenge,
        };
        let id = self.swarm.behaviour_mut().auth.send_request(&peer, request);
        self.auth_requests.insert(id, (peer, AuthPurpose::Challenge(reply)));
    }

    /// Makes `peer` prove itself with this node's auth method.
    pub(super) fn verify_peer(&mut self, peer: PeerId, reply: oneshot::Sender<Result<AuthorizationLevel, Error>>) {
        match self.shared.auth.generate_challenge(&peer) {
            Ok(challenge) => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Prove(challenge));
                self.auth_requests.insert(id, (peer, AuthPurpose::Prove(reply)));
            }
            Err(e) => {
                let _ = reply.send(Err(AuthRequestError::Proof(e).into()));
            }
        }
    }

    pub(super) fn on_auth(&mut self, ev: request_response::Event<AuthRequest, AuthResponse>) {
        use request_response::{Event, Message as RrMessage};
        match ev {
            Event::Message { peer, message: RrMessage::Request { request, channel, .. }, .. } => {
                let response = auth::handle_request(&self.shared.auth, &peer, request);
                if let AuthResponse::Refused(r) = &response {
                    tracing::info!(%peer, refusal = %r, "auth refused");
                }
                let _ = self.swarm.behaviour_mut().auth.send_response(channel, response);
            }
            Event::Message { peer, message: RrMessage::Response { request_id, response }, .. } => {
                if let Some((_, purpose)) = self.auth_requests.remove(&request_id) {
                    self.on_auth_response(peer, purpose, response);
                }
            }
            Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, purpose)) = self.auth_requests.remove(&request_id) {
                    self.finish_auth(peer, purpose, Err(AuthRequestError::Delivery(error.to_string())));
                }
            }
            Event::InboundFailure { peer, error, .. } => tracing::debug!(%peer, %error, "auth inbound failed"),
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_auth_response(&mut self, peer: PeerId, purpose: AuthPurpose, response: AuthResponse) {
        match (purpose, response) {
            (AuthPurpose::Challenge(reply), AuthResponse::Challenge(c)) => {
                match self.shared.auth.respond_to_challenge(&c) {
                    Ok(answer) => {
                        let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Respond(answer));
                        self.auth_requests.insert(id, (peer, AuthPurpose::Grant(reply)));
                    }
                    Err(e) => self.finish_auth(peer, AuthPurpose::Grant(reply), Err(AuthRequestError::Answer(e))),
                }
            }
            (AuthPurpose::ForTrade, AuthResponse::Challenge(c)) => match self.shared.auth.respond_to_challenge(&c) {
                Ok(answer) => {
                    let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Respond(answer));
                    self.auth_requests.insert(id, (peer, AuthPurpose::ForTrade));
                }
                Err(e) => self.finish_auth(peer, AuthPurpose::ForTrade, Err(AuthRequestError::Answer(e))),
            },
            (AuthPurpose::ForTrade, AuthResponse::Granted { level, .. }) => {
                self.finish_auth(peer, AuthPurpose::ForTrade, Ok(level));
            }
            (purpose @ (AuthPurpose::Challenge(_) | AuthPurpose::Grant(_)), AuthResponse::Granted { level, token }) => {
                if let Some(token) = token {
                    self.relay_tokens.insert(peer, token.to_bytes());
                }
                self.finish_auth(peer, purpose, Ok(level));
            }
            (AuthPurpose::Prove(reply), AuthResponse::Proof { response, .. }) => {
                let level = self.shared.auth.verify_response(&peer, &response).map(|g| g.level);
                self.finish_auth(peer, AuthPurpose::Prove(reply), level.map_err(AuthRequestError::Proof));
            }
            (AuthPurpose::Ask(reply), AuthResponse::Proof { response, token }) => {
                let _ = reply.send(Ok((*response, token.map(|t| *t))));
            }
            (AuthPurpose::VerifyRelay(policy), AuthResponse::Proof { response, token }) => {
                let level = policy.judge(&peer, &response, token.as_deref());
                self.relay_verified(peer, level);
            }
            (AuthPurpose::Grant(reply), AuthResponse::Refused(auth::AuthRefusal::BadToken)) => {
                // A stale token: forget it and go through a challenge instead.
                self.relay_tokens.remove(&peer);
                self.authenticate(peer, reply);
            }
            (purpose, AuthResponse::Refused(r)) => self.finish_auth(peer, purpose, Err(AuthRequestError::Refused(r))),
            (purpose, _) => self.finish_auth(peer, purpose, Err(AuthRequestError::Unexpected)),
        }
    }

    fn finish_auth(
        &mut self,
        peer: PeerId,
        purpose: AuthPurpose,
        result: Result<AuthorizationLevel, AuthRequestError>,
    ) {
        let reply = match purpose {
            AuthPurpose::Challenge(r) | AuthPurpose::Grant(r) => r,
            AuthPurpose::Prove(r) => Some(r),
            AuthPurpose::Ask(r) => {
                let _ = r.send(Err(result.err().unwrap_or(AuthRequestError::Unexpected).into()));
                return;
            }
            AuthPurpose::VerifyRelay(_) => {
                self.relay_verified(peer, result.map_err(|e| e.to_string()));
                return;
            }
            AuthPurpose::ForTrade => {
                self.trade_auth.insert(peer, Some(web_time::Instant::now()));
                match result {
                    Ok(_) if self.shared.e2e.has_session(&peer) => self.flush_awaiting(peer),
                    Ok(_) => self.offer_key(peer),
                    Err(e) => self.fail_awaiting(peer, &format!("peer requires authentication: {e}")),
                }
                return;
            }
        };
        match (&result, reply) {
            (_, Some(reply)) => {
                let _ = reply.send(result.map_err(Error::from));
            }
            // Authentication before a reservation: reserve now, or back off from this relay.
            (result, None) => {
                match result {
                    Ok(level) => tracing::info!(relay = %peer, ?level, "authenticated to relay"),
                    // Reserve anyway: a relay that does not require authentication still serves us,
                    // and one that does refuses the reservation, which backs off from it.
                    Err(e) => tracing::warn!(relay = %peer, error = %e, "authentication to relay failed"),
                }
                self.relays_authed.insert(peer);
                for (addr, reply) in self.dial_after_auth.remove(&peer).unwrap_or_default() {
                    self.dial(addr, reply);
                }
                if let Some(addr) = self.relay_auth_pending.remove(&peer) {
                    // The relay may have been refused (e.g. it failed verification) while we
                    // authenticated to it: its back-off stands, and so does its status.
                    let now = web_time::Instant::now();
                    if self.relay_backoff.get(&peer).is_some_and(|until| *until > now) {
                        return;
                    }
                    if let Err(e) = self.reserve(peer, addr) {
                        tracing::warn!(relay = %peer, error = %e, "relay reservation failed to start");
                    }
                }
            }
        }
    }
}
