//! Authentication requests: to relays before reserving or dialing through them, on the
//! application's request, as a verifier of other peers, and for the relay pool's checks. What a
//! finished request unblocks belongs to the part that asked (`relays.rs`, `trade.rs`).

use super::Task;
use crate::{
    auth::{self, AuthRequest, AuthResponse, AuthorizationLevel},
    error::{AuthRequestError, Error},
    network::command::{ProofAnswer, RelayPolicy},
};
use darkswap_support::types::PeerId;
use futures::channel::oneshot;
use libp2p::request_response::{self, OutboundRequestId};
use std::collections::HashMap;

/// What an outbound auth request is for.
pub(super) enum AuthPurpose {
    /// Step 1 of authenticating to the peer; `reply` is the caller's (None: before a reservation).
    Challenge(Option<oneshot::Sender<Result<AuthorizationLevel, Error>>>),
    /// Step 2 (the answer) or a token presented.
    Grant(Option<oneshot::Sender<Result<AuthorizationLevel, Error>>>),
    /// Making the peer prove itself.
    Prove(oneshot::Sender<Result<AuthorizationLevel, Error>>),
    /// Asking the peer to answer a given challenge (the relay pool verifies it).
    Ask(oneshot::Sender<Result<ProofAnswer, Error>>),
    /// Verifying a relay before reserving on it.
    VerifyRelay(RelayPolicy),
    /// Authenticating to a trade counterparty that requires it (then the queued trade goes on).
    ForTrade,
}

/// Auth requests in flight, and the tokens this node presents to relays.
pub(super) struct Auth {
    requests: HashMap<OutboundRequestId, (PeerId, AuthPurpose)>,
    tokens: HashMap<PeerId, Vec<u8>>,
}

impl Auth {
    pub(super) fn new(tokens: HashMap<PeerId, Vec<u8>>) -> Self {
        Self { requests: HashMap::new(), tokens }
    }

    /// Remembers why request `id` to `peer` was sent.
    pub(super) fn track(&mut self, id: OutboundRequestId, peer: PeerId, purpose: AuthPurpose) {
        self.requests.insert(id, (peer, purpose));
    }

    /// Whether a request to `peer` is in flight.
    pub(super) fn asking(&self, peer: &PeerId) -> bool {
        self.requests.values().any(|(p, _)| p == peer)
    }
}

impl Task {
    /// Authenticates to `peer`; `reply` gets the level granted (`None`: before a reservation).
    pub(super) fn authenticate(
        &mut self,
        peer: PeerId,
        reply: Option<oneshot::Sender<Result<AuthorizationLevel, Error>>>,
    ) {
        let request = match self.auth.tokens.get(&peer).and_then(|t| auth::AuthToken::from_bytes(t).ok()) {
            Some(token) => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::PresentToken(token));
                self.auth.track(id, peer, AuthPurpose::Grant(reply));
                return;
            }
            None => AuthRequest::GetChallenge,
        };
        let id = self.swarm.behaviour_mut().auth.send_request(&peer, request);
        self.auth.track(id, peer, AuthPurpose::Challenge(reply));
    }

    /// Makes `peer` prove itself with this node's auth method.
    pub(super) fn verify_peer(&mut self, peer: PeerId, reply: oneshot::Sender<Result<AuthorizationLevel, Error>>) {
        match self.shared.auth.generate_challenge(&peer) {
            Ok(challenge) => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Prove(challenge));
                self.auth.track(id, peer, AuthPurpose::Prove(reply));
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
                if let Some((_, purpose)) = self.auth.requests.remove(&request_id) {
                    self.on_auth_response(peer, purpose, response);
                }
            }
            Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, purpose)) = self.auth.requests.remove(&request_id) {
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
                        self.auth.track(id, peer, AuthPurpose::Grant(reply));
                    }
                    Err(e) => self.finish_auth(peer, AuthPurpose::Grant(reply), Err(AuthRequestError::Answer(e))),
                }
            }
            (AuthPurpose::ForTrade, AuthResponse::Challenge(c)) => match self.shared.auth.respond_to_challenge(&c) {
                Ok(answer) => {
                    let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Respond(answer));
                    self.auth.track(id, peer, AuthPurpose::ForTrade);
                }
                Err(e) => self.finish_auth(peer, AuthPurpose::ForTrade, Err(AuthRequestError::Answer(e))),
            },
            (AuthPurpose::ForTrade, AuthResponse::Granted { level, .. }) => {
                self.finish_auth(peer, AuthPurpose::ForTrade, Ok(level));
            }
            (purpose @ (AuthPurpose::Challenge(_) | AuthPurpose::Grant(_)), AuthResponse::Granted { level, token }) => {
                if let Some(token) = token {
                    self.auth.tokens.insert(peer, token.to_bytes());
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
                self.auth.tokens.remove(&peer);
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
                self.trade_authenticated(peer, result);
                return;
            }
        };
        match reply {
            Some(reply) => {
                let _ = reply.send(result.map_err(Error::from));
            }
            // Authentication before a reservation or a dial through a relay.
            None => self.relay_authenticated(peer, result),
        }
    }
}
