//! Relay reservations this node holds as a client: how many to keep, on which relays (the relay
//! pool's policy: relays verified by challenge first), authenticating to relays that require it,
//! reservations on demand and releases, and each relay's status for handles to read.

use super::{auth::AuthPurpose, connections::DialReply, Task};
use crate::{
    auth::{AuthRequest, AuthorizationLevel},
    error::{AuthRequestError, Error},
    network::{command::RelayPolicy, NetworkEvent, NetworkNotice, RelayStatus},
};
use futures::channel::oneshot;
use libp2p::{core::transport::ListenerId, multiaddr::Protocol, Multiaddr, PeerId};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};
use web_time::Instant;

/// How long a relay that lost or refused a reservation is skipped.
const RELAY_BACKOFF: Duration = Duration::from_secs(30);
/// A reservation attempt ending quietly within this long lost a race with another dial.
const QUICK_CLOSE: Duration = Duration::from_secs(2);
/// Most relays whose status is remembered.
const MAX_STATUS: usize = 1024;

/// Reservations held and being made, and what stands before each.
pub(super) struct Relays {
    /// Accepted reservations, by relay, with the id reported to the application.
    reservations: HashMap<PeerId, u64>,
    next_reservation: u64,
    /// Circuit listeners (reservations being made or held) and the relay and start time of each.
    circuit_listeners: HashMap<ListenerId, (PeerId, Instant)>,
    /// Reservations to keep.
    min: usize,
    /// Relays that failed recently (not retried until the instant).
    backoff: HashMap<PeerId, Instant>,
    /// Whether to authenticate to a relay before reserving on it or dialing through it.
    auth_first: bool,
    /// Relays authenticated to, and those being authenticated to before a reservation.
    authed: HashSet<PeerId>,
    auth_pending: HashMap<PeerId, Multiaddr>,
    /// Dials through relays waiting for this node to authenticate to the relay.
    dial_after_auth: HashMap<PeerId, Vec<(Multiaddr, DialReply)>>,
    /// The relay pool's policy: relays verified (and being verified) before reserving.
    policy: Option<RelayPolicy>,
    verified: HashSet<PeerId>,
    verify_pending: HashMap<PeerId, Multiaddr>,
    /// Callers waiting for a reservation on a relay, and reservations given up on purpose.
    waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, Error>>>>,
    released: HashSet<PeerId>,
    /// Relays whose last attempt closed at once and was retried (cleared on success; at most
    /// the relays this node reserves on).
    retried: HashSet<PeerId>,
}

impl Relays {
    pub(super) fn new(min: usize, auth_first: bool) -> Self {
        Self {
            reservations: HashMap::new(),
            next_reservation: 1,
            circuit_listeners: HashMap::new(),
            min,
            backoff: HashMap::new(),
            auth_first,
            authed: HashSet::new(),
            auth_pending: HashMap::new(),
            dial_after_auth: HashMap::new(),
            policy: None,
            verified: HashSet::new(),
            verify_pending: HashMap::new(),
            waiters: HashMap::new(),
            released: HashSet::new(),
            retried: HashSet::new(),
        }
    }

    /// Relays a reservation is being made or held on, or being authenticated to.
    pub(super) fn being_reserved(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.circuit_listeners.values().map(|(p, _)| *p).chain(self.auth_pending.keys().copied())
    }

    /// Whether a reservation is being made (a circuit listener without its reservation yet, or
    /// authentication or verification before one).
    pub(super) fn reserving_now(&self) -> bool {
        self.circuit_listeners.values().any(|(p, _)| !self.reservations.contains_key(p))
            || !self.auth_pending.is_empty()
            || !self.verify_pending.is_empty()
    }

    /// Relays this node holds or makes reservations on.
    pub(super) fn in_use(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.reservations.keys().copied().chain(self.being_reserved())
    }

    fn back_off(&mut self, relay: PeerId) {
        self.backoff.insert(relay, Instant::now() + RELAY_BACKOFF);
    }

    fn backing_off(&self, relay: &PeerId, now: Instant) -> bool {
        self.backoff.get(relay).is_some_and(|until| *until > now)
    }
}

/// `addr` ending in `/p2p/<peer>`.
fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(_)) => addr.clone(),
        _ => addr.clone().with(Protocol::P2p(peer)),
    }
}

impl Task {
    /// The relay pool's targets: how many reservations to hold, and which relays to trust.
    pub(super) fn set_relay_targets(&mut self, min: usize, policy: Option<RelayPolicy>) {
        self.relays.min = min;
        self.relays.policy = policy;
        self.verify_reserved();
        self.maintain_reservations();
    }

    /// Tops reservations up to the minimum from the best-scoring relays not in use or backing off.
    pub(super) fn maintain_reservations(&mut self) {
        let now = Instant::now();
        self.relays.backoff.retain(|_, until| *until > now);
        if self.relays.circuit_listeners.len() >= self.relays.min {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let in_use: HashSet<PeerId> = self.relays.circuit_listeners.values().map(|(p, _)| *p).collect();
        let candidates = self.shared.relays.get_best_relays(32);
        let wanted = self.relays.min - self.relays.circuit_listeners.len();
        let picked: Vec<_> = candidates
            .into_iter()
            .filter(|r| {
                r.peer_id != local && !in_use.contains(&r.peer_id) && !self.relays.backoff.contains_key(&r.peer_id)
            })
            .take(wanted)
            .collect();
        for relay in picked {
            let Some(addr) = relay.addrs.first() else { continue };
            let addr = with_peer(addr, relay.peer_id);
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                kad.add_address(&relay.peer_id, addr.clone());
            }
            match self.reserve(relay.peer_id, addr) {
                Ok(()) => tracing::info!(relay = %relay.peer_id, score = relay.score(), "reserving on relay"),
                Err(e) => {
                    tracing::warn!(relay = %relay.peer_id, error = %e, "cannot reserve on relay");
                    self.relays.back_off(relay.peer_id);
                }
            }
        }
    }

    /// Dials `addr`, first authenticating to the relay it goes through when that relay requires
    /// it: a relay that requires authentication opens circuits only for members.
    pub(super) fn dial_checked(&mut self, addr: Multiaddr, reply: DialReply) {
        match self.relay_needing_auth(&addr) {
            Some(relay) => {
                self.relays.dial_after_auth.entry(relay).or_default().push((addr, reply));
                if !self.auth.asking(&relay) {
                    self.authenticate(relay, None);
                }
            }
            None => self.dial(addr, reply),
        }
    }

    /// The relay of a circuit address this node must authenticate to before dialing through it.
    fn relay_needing_auth(&mut self, addr: &Multiaddr) -> Option<PeerId> {
        if !self.relays.auth_first {
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
            relay.filter(|r| addr.iter().any(|p| p == Protocol::P2pCircuit) && !self.relays.authed.contains(r))?;
        self.swarm.add_peer_address(relay, relay_addr);
        Some(relay)
    }

    /// Reserves on `relay` (at `addr`, ending in `/p2p/<relay>`), verifying it under the pool's
    /// policy and authenticating to it first when this node is configured to.
    pub(super) fn reserve(&mut self, relay: PeerId, addr: Multiaddr) -> Result<(), String> {
        if self.verify_relay_first(relay, &addr)? {
            return Ok(());
        }
        if self.relays.auth_first && !self.relays.authed.contains(&relay) {
            if !self.relays.auth_pending.contains_key(&relay) {
                self.swarm.add_peer_address(relay, addr.clone());
                self.relays.auth_pending.insert(relay, addr);
                self.authenticate(relay, None);
                self.set_relay_status(relay, RelayStatus::Authenticating);
            }
            return Ok(());
        }
        let id = self.swarm.listen_on(addr.with(Protocol::P2pCircuit)).map_err(|e| e.to_string())?;
        self.relays.circuit_listeners.insert(id, (relay, Instant::now()));
        self.set_relay_status(relay, RelayStatus::Reserving);
        Ok(())
    }

    /// Authenticating to `relay` (before a reservation or a dial through it) ended: go on either
    /// way. A relay that does not require authentication still serves us, and one that does
    /// refuses the reservation, which backs off from it.
    pub(super) fn relay_authenticated(&mut self, relay: PeerId, result: Result<AuthorizationLevel, AuthRequestError>) {
        match result {
            Ok(level) => tracing::info!(%relay, ?level, "authenticated to relay"),
            Err(e) => tracing::warn!(%relay, error = %e, "authentication to relay failed"),
        }
        self.relays.authed.insert(relay);
        for (addr, reply) in self.relays.dial_after_auth.remove(&relay).unwrap_or_default() {
            self.dial(addr, reply);
        }
        if let Some(addr) = self.relays.auth_pending.remove(&relay) {
            // The relay may have been refused (e.g. it failed verification) while we
            // authenticated to it: its back-off stands, and so does its status.
            if self.relays.backing_off(&relay, Instant::now()) {
                return;
            }
            if let Err(e) = self.reserve(relay, addr) {
                tracing::warn!(%relay, error = %e, "relay reservation failed to start");
            }
        }
    }

    /// A listener closed: when it was a reservation's, the reservation ended (released on
    /// purpose, lost, or refused).
    pub(super) fn on_circuit_closed(&mut self, listener_id: ListenerId, reason: &Result<(), std::io::Error>) {
        let Some((relay, started)) = self.relays.circuit_listeners.remove(&listener_id) else { return };
        // A listener that closes at once, quietly, before any reservation was accepted lost a race
        // with another dial to the relay (a DHT query's, say): the relay client's own dial fails
        // when one is already under way. Try once more at once before counting a failure.
        let quiet = reason.is_ok() && started.elapsed() < QUICK_CLOSE;
        if quiet && !self.relays.reservations.contains_key(&relay) && self.relays.retried.insert(relay) {
            if let Some(addr) = self.shared.relays.relay(&relay).and_then(|r| r.addrs.first().cloned()) {
                tracing::debug!(%relay, "reservation attempt dropped at once; retrying");
                if self.reserve(relay, with_peer(&addr, relay)).is_ok() {
                    return;
                }
            }
        }
        if self.relays.released.remove(&relay) {
            tracing::info!(%relay, "relay reservation released");
            self.relays.reservations.remove(&relay);
            self.set_relay_status(relay, RelayStatus::Released);
            return;
        }
        tracing::warn!(%relay, ?reason, "relay reservation ended");
        self.shared.relays.record_failure(&relay);
        self.relays.back_off(relay);
        let notice = match (self.relays.reservations.remove(&relay), reason) {
            (Some(_), _) => NetworkNotice::RelayReservationLost { relay_peer_id: relay },
            (None, Err(e)) => NetworkNotice::RelayReservationFailed { relay_peer_id: relay, error: error_chain(e) },
            (None, Ok(())) => NetworkNotice::RelayReservationFailed {
                relay_peer_id: relay,
                error: "the relay closed the reservation".into(),
            },
        };
        let error = match &notice {
            NetworkNotice::RelayReservationFailed { error, .. } => error.clone(),
            _ => "reservation lost".to_string(),
        };
        // Status first: whoever reacts to the notice must already read `Failed`.
        self.reservation_failed(relay, error);
        self.notice(notice);
    }

    /// A relay accepted a reservation (renewals of a known one change nothing).
    pub(super) fn on_reservation_accepted(&mut self, relay: PeerId, renewal: bool) {
        if renewal && self.relays.reservations.contains_key(&relay) {
            return;
        }
        let id = self.relays.next_reservation;
        self.relays.next_reservation += 1;
        let started = self.relays.circuit_listeners.values().find(|(r, _)| *r == relay).map(|(_, t)| *t);
        let setup_ms = started.map_or(0, |t| t.elapsed().as_millis() as u64);
        self.shared.relays.record_success(&relay, setup_ms);
        self.relays.reservations.insert(relay, id);
        self.relays.retried.remove(&relay);
        tracing::info!(%relay, reservation = id, "relay reservation accepted");
        self.set_relay_status(relay, RelayStatus::Reserved { reservation_id: id });
        for w in self.relays.waiters.remove(&relay).unwrap_or_default() {
            let _ = w.send(Ok(relay));
        }
        self.emit(NetworkEvent::RelayReserved { relay_peer_id: relay, reservation_id: id });
    }

    fn set_relay_status(&mut self, relay: PeerId, status: RelayStatus) {
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
    fn verify_relay_first(&mut self, relay: PeerId, addr: &Multiaddr) -> Result<bool, String> {
        let Some(policy) = self.relays.policy.clone() else { return Ok(false) };
        if self.relays.verified.contains(&relay) {
            return Ok(false);
        }
        if !self.relays.verify_pending.contains_key(&relay) {
            let challenge = policy.auth.generate_challenge(&relay).map_err(|e| e.to_string())?;
            self.swarm.add_peer_address(relay, addr.clone());
            self.relays.verify_pending.insert(relay, addr.clone());
            let id = self.swarm.behaviour_mut().auth.send_request(&relay, AuthRequest::Prove(challenge));
            self.auth.track(id, relay, AuthPurpose::VerifyRelay(policy));
            self.set_relay_status(relay, RelayStatus::Verifying);
        }
        Ok(true)
    }

    /// The outcome of verifying a relay: reserve on it, or give up on it for a while.
    pub(super) fn relay_verified(&mut self, relay: PeerId, outcome: Result<AuthorizationLevel, String>) {
        let addr = self.relays.verify_pending.remove(&relay);
        match outcome {
            Ok(level) => {
                tracing::info!(%relay, ?level, "relay verified");
                self.relays.verified.insert(relay);
                if let Some(addr) = addr {
                    if let Err(e) = self.reserve(relay, addr) {
                        self.reservation_failed(relay, e);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%relay, error = %e, "relay not trusted");
                self.release_relay(relay);
                self.relays.back_off(relay);
                self.shared.relays.record_failure(&relay);
                // Status first: whoever reacts to the notice must already read `Failed`.
                self.reservation_failed(relay, e.clone());
                self.notice(NetworkNotice::RelayReservationFailed { relay_peer_id: relay, error: e });
            }
        }
    }

    /// Tells whoever waits for a reservation on `relay` that it failed.
    fn reservation_failed(&mut self, relay: PeerId, error: String) {
        self.set_relay_status(relay, RelayStatus::Failed { error: error.clone() });
        for w in self.relays.waiters.remove(&relay).unwrap_or_default() {
            let _ = w.send(Err(Error::Relay(error.clone())));
        }
    }

    /// Reserves on the best relay not in use; `reply` gets it once the reservation is accepted.
    pub(super) fn reserve_best(&mut self, reply: oneshot::Sender<Result<PeerId, Error>>) {
        let now = Instant::now();
        let local = *self.swarm.local_peer_id();
        let busy: HashSet<PeerId> =
            self.relays.being_reserved().chain(self.relays.verify_pending.keys().copied()).collect();
        let best = self.shared.relays.get_best_relays(64).into_iter().find(|r| {
            r.peer_id != local
                && !busy.contains(&r.peer_id)
                && !self.relays.backing_off(&r.peer_id, now)
                && !r.addrs.is_empty()
        });
        let Some(relay) = best else {
            let _ = reply.send(Err(Error::Relay("no usable relay known".into())));
            return;
        };
        let addr = with_peer(&relay.addrs[0], relay.peer_id);
        self.relays.waiters.entry(relay.peer_id).or_default().push(reply);
        if let Err(e) = self.reserve(relay.peer_id, addr) {
            self.reservation_failed(relay.peer_id, e);
        }
    }

    /// Under a new policy, relays already reserved on prove themselves too (and are dropped if
    /// they cannot).
    fn verify_reserved(&mut self) {
        let Some(policy) = self.relays.policy.clone() else { return };
        let reserved: Vec<PeerId> = self.relays.reservations.keys().copied().collect();
        for relay in reserved.into_iter().filter(|r| !self.relays.verified.contains(r)) {
            if let Ok(challenge) = policy.auth.generate_challenge(&relay) {
                let id = self.swarm.behaviour_mut().auth.send_request(&relay, AuthRequest::Prove(challenge));
                self.auth.track(id, relay, AuthPurpose::VerifyRelay(policy.clone()));
            }
        }
    }

    /// Gives up the reservation on `relay` (the pool holds more than its maximum).
    pub(super) fn release_relay(&mut self, relay: PeerId) {
        let ids: Vec<_> =
            self.relays.circuit_listeners.iter().filter(|(_, (p, _))| *p == relay).map(|(id, _)| *id).collect();
        for id in ids {
            self.relays.released.insert(relay);
            self.swarm.remove_listener(id);
        }
    }
}

/// An error with its sources, so the root cause (e.g. the relay's refusal) is visible.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
