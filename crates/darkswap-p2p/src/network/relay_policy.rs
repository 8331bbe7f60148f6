//! What the relay connection pool asks of the network task: how many reservations to hold, which
//! relays to trust (verified by challenge before reserving), reservations on demand, releases,
//! and each relay's status.

use super::{task::Task, NetworkNotice, RelayStatus};
use crate::{
    auth::{AuthRequest, AuthorizationLevel},
    error::Error,
};
use futures::channel::oneshot;
use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};

/// Most relays whose status is remembered.
const MAX_STATUS: usize = 1024;

impl Task {
    pub(super) fn set_relay_status(&mut self, relay: PeerId, status: RelayStatus) {
        if let Ok(mut map) = self.shared.relay_status.lock() {
            if map.len() >= MAX_STATUS && !map.contains_key(&relay) {
                let stale: Vec<_> =
                    map.iter().filter(|(_, s)| !matches!(s, RelayStatus::Reserved { .. })).map(|(p, _)| *p).collect();
                for p in stale.into_iter().take(MAX_STATUS / 4) {
                    map.remove(&p);
                }
            }
            map.insert(relay, status);
        }
    }

    /// Starts verifying `relay` under the pool's policy; `false` when there is no policy or it is
    /// already verified.
    pub(super) fn verify_relay_first(&mut self, relay: PeerId, addr: &Multiaddr) -> Result<bool, String> {
        let Some(policy) = self.relay_policy.clone() else { return Ok(false) };
        if self.relays_verified.contains(&relay) {
            return Ok(false);
        }
        if !self.relay_verify_pending.contains_key(&relay) {
            let challenge = policy.auth.generate_challenge(&relay).map_err(|e| e.to_string())?;
            self.swarm.add_peer_address(relay, addr.clone());
            self.relay_verify_pending.insert(relay, addr.clone());
            let id = self.swarm.behaviour_mut().auth.send_request(&relay, AuthRequest::Prove(challenge));
            self.auth_requests.insert(id, (relay, super::command::AuthPurpose::VerifyRelay(policy)));
            self.set_relay_status(relay, RelayStatus::Verifying);
        }
        Ok(true)
    }

    /// The outcome of verifying a relay: reserve on it, or give up on it for a while.
    pub(super) fn relay_verified(&mut self, relay: PeerId, outcome: Result<AuthorizationLevel, String>) {
        let addr = self.relay_verify_pending.remove(&relay);
        match outcome {
            Ok(level) => {
                tracing::info!(%relay, ?level, "relay verified");
                self.relays_verified.insert(relay);
                if let Some(addr) = addr {
                    if let Err(e) = self.reserve(relay, addr) {
                        self.reservation_failed(relay, e);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%relay, error = %e, "relay not trusted");
                self.release_relay(relay);
                self.relay_backoff.insert(relay, web_time::Instant::now() + super::task::RELAY_BACKOFF);
                self.shared.relays.record_failure(&relay);
                // Status first: whoever reacts to the notice must already read `Failed`.
                self.reservation_failed(relay, e.clone());
                self.notice(NetworkNotice::RelayReservationFailed { relay_peer_id: relay, error: e });
            }
        }
    }

    /// Tells whoever waits for a reservation on `relay` that it failed.
    pub(super) fn reservation_failed(&mut self, relay: PeerId, error: String) {
        self.set_relay_status(relay, RelayStatus::Failed { error: error.clone() });
        for w in self.reserve_waiters.remove(&relay).unwrap_or_default() {
            let _ = w.send(Err(Error::Relay(error.clone())));
        }
    }

    /// A reservation on `relay` was accepted.
    pub(super) fn reservation_accepted(&mut self, relay: PeerId, reservation_id: u64) {
        self.set_relay_status(relay, RelayStatus::Reserved { reservation_id });
        for w in self.reserve_waiters.remove(&relay).unwrap_or_default() {
            let _ = w.send(Ok(relay));
        }
    }

    /// Reserves on the best relay not in use; `reply` gets it once the reservation is accepted.
    pub(super) fn reserve_best(&mut self, reply: oneshot::Sender<Result<PeerId, Error>>) {
        let now = web_time::Instant::now();
        let local = *self.swarm.local_peer_id();
        let busy: std::collections::HashSet<PeerId> = self
            .circuit_listeners
            .values()
            .map(|(p, _)| *p)
            .chain(self.relay_auth_pending.keys().copied())
            .chain(self.relay_verify_pending.keys().copied())
            .collect();
        let best = self.shared.relays.get_best_relays(64).into_iter().find(|r| {
            r.peer_id != local
                && !busy.contains(&r.peer_id)
                && self.relay_backoff.get(&r.peer_id).is_none_or(|until| *until <= now)
                && !r.addrs.is_empty()
        });
        let Some(relay) = best else {
            let _ = reply.send(Err(Error::Relay("no usable relay known".into())));
            return;
        };
        let addr = relay.addrs[0].clone();
        let addr = match addr.iter().last() {
            Some(Protocol::P2p(_)) => addr,
            _ => addr.with(Protocol::P2p(relay.peer_id)),
        };
        self.reserve_waiters.entry(relay.peer_id).or_default().push(reply);
        if let Err(e) = self.reserve(relay.peer_id, addr) {
            self.reservation_failed(relay.peer_id, e);
        }
    }

    /// Under a new policy, relays already reserved on prove themselves too (and are dropped if
    /// they cannot).
    pub(super) fn verify_reserved(&mut self) {
        let Some(policy) = self.relay_policy.clone() else { return };
        let reserved: Vec<PeerId> = self.reservations.keys().copied().collect();
        for relay in reserved.into_iter().filter(|r| !self.relays_verified.contains(r)) {
            if let Ok(challenge) = policy.auth.generate_challenge(&relay) {
                let id = self.swarm.behaviour_mut().auth.send_request(&relay, AuthRequest::Prove(challenge));
                self.auth_requests.insert(id, (relay, super::command::AuthPurpose::VerifyRelay(policy.clone())));
            }
        }
    }

    /// Gives up the reservation on `relay` (the pool holds more than its maximum).
    pub(super) fn release_relay(&mut self, relay: PeerId) {
        let ids: Vec<_> = self.circuit_listeners.iter().filter(|(_, (p, _))| *p == relay).map(|(id, _)| *id).collect();
        for id in ids {
            self.released.insert(relay);
            self.swarm.remove_listener(id);
        }
    }
}
