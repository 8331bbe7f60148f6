//! The signaling client's bookkeeping, shared by the native and the browser clients (which differ
//! only in their I/O and in how they share state: `Arc<Mutex>` natively, `Rc<RefCell>` in the
//! browser): which negotiation a server frame belongs to, how many negotiations may run, and the
//! latest outcome per peer.

use super::{WebRtcConnection, WebRtcError};
use crate::webrtc::signaling::{
    wire::{Routed, ServerMessage},
    ErrorCode, Payload, SignalingError,
};
use futures::{channel::oneshot, future::Shared, Future};
use libp2p::PeerId;
use std::{collections::HashMap, sync::Arc, time::Duration};

/// Messages queued towards one negotiation.
pub(crate) const SESSION_QUEUE: usize = 64;
/// Finished negotiations remembered for `wait_for_connection`.
pub(crate) const MAX_RESULTS: usize = 1024;
/// Longest wait for the server's WebSocket and for the registration.
pub(crate) const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most remote candidates one negotiation takes (and, in the browser, local ones held back
/// while the description is not out yet).
pub(crate) const MAX_CANDIDATES: usize = 64;

/// Where the client's link to the signaling server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    Idle,
    Connecting,
    Registered,
    Failed(SignalingError),
}

/// Which side of the offer/answer exchange a negotiation is.
pub(crate) enum Role {
    /// We offer; the offer's SDP is handed back through `offer_sdp` once sent.
    Offerer { offer_sdp: oneshot::Sender<String> },
    /// We answer this offer.
    Answerer { offer: String },
}

/// What the signaling client delivers to a negotiation.
pub(crate) enum Inbox {
    Payload(Payload),
    Refused(ErrorCode, String),
}

/// What the client does with a frame from the server.
pub(crate) enum Route<Tx> {
    /// Hand it to the negotiation behind this inbox.
    Deliver(Tx, Inbox),
    /// A new peer's offer: start answering it.
    Answer { from: PeerId, connection_id: String, offer: String },
    /// Nothing to do: late candidates of a finished negotiation, a stranger's guess at a
    /// connection id, or a frame the client does not act on.
    Ignore,
}

/// The negotiations in flight, by connection id, each with its remote peer and inbox.
pub(crate) struct Sessions<Tx> {
    by_id: HashMap<String, (PeerId, Tx)>,
    max: usize,
}

impl<Tx: Clone> Sessions<Tx> {
    /// At most `max` negotiations at once.
    pub(crate) fn new(max: usize) -> Self {
        Self { by_id: HashMap::new(), max }
    }

    /// Records a negotiation, unless `max` are already running.
    pub(crate) fn insert(&mut self, connection_id: String, remote: PeerId, inbox: Tx) -> Result<(), WebRtcError> {
        if self.by_id.len() >= self.max {
            return Err(WebRtcError::TooManyPending);
        }
        self.by_id.insert(connection_id, (remote, inbox));
        Ok(())
    }

    /// Forgets a finished negotiation.
    pub(crate) fn remove(&mut self, connection_id: &str) {
        self.by_id.remove(connection_id);
    }

    /// Where a server frame goes. Only the peer a negotiation is with may speak into it (the
    /// server fills `from` with the sender's proven id); an unknown id is a new connection only
    /// when it opens with an offer and `accept_incoming` is on.
    pub(crate) fn route(&self, msg: ServerMessage, accept_incoming: bool) -> Route<Tx> {
        match msg {
            ServerMessage::Routed(Routed { from: Some(from), connection_id, payload, .. }) => {
                match (self.by_id.get(&connection_id), payload) {
                    (Some((remote, tx)), payload) if *remote == from => {
                        Route::Deliver(tx.clone(), Inbox::Payload(payload))
                    }
                    (None, Payload::Offer { sdp }) if accept_incoming => {
                        Route::Answer { from, connection_id, offer: sdp }
                    }
                    _ => Route::Ignore,
                }
            }
            ServerMessage::Error { code, message, connection_id: Some(cid) } => match self.by_id.get(&cid) {
                Some((_, tx)) => Route::Deliver(tx.clone(), Inbox::Refused(code, message)),
                None => Route::Ignore,
            },
            ServerMessage::Error { code, message, connection_id: None } => {
                tracing::warn!("signaling server: {code}: {message}");
                Route::Ignore
            }
            _ => Route::Ignore,
        }
    }
}

/// The bye that tells `to` its offer on `connection_id` will not be answered, and why.
pub(crate) fn declined(to: PeerId, connection_id: String, why: &WebRtcError) -> Routed {
    Routed { from: None, to, connection_id, payload: Payload::Bye { reason: Some(why.to_string()) } }
}

/// A negotiation's outcome, as every waiter sees it.
pub(crate) type Outcome = Result<Arc<WebRtcConnection>, WebRtcError>;

/// The latest negotiation with each peer, finished or not (at most [`MAX_RESULTS`] peers).
pub(crate) struct Results<F: Future<Output = Outcome>> {
    by_peer: HashMap<PeerId, Shared<F>>,
}

impl<F: Future<Output = Outcome>> Default for Results<F> {
    fn default() -> Self {
        Self { by_peer: HashMap::new() }
    }
}

impl<F: Future<Output = Outcome>> Results<F> {
    /// Records `pending` as the latest negotiation with `peer`. When the table is full, finished
    /// negotiations make room; if all are still running, this one is not remembered (its own
    /// caller still holds it).
    pub(crate) fn insert(&mut self, peer: PeerId, pending: Shared<F>) {
        if self.by_peer.len() >= MAX_RESULTS {
            self.by_peer.retain(|_, p| p.peek().is_none());
        }
        if self.by_peer.len() < MAX_RESULTS {
            self.by_peer.insert(peer, pending);
        }
    }

    /// The latest negotiation with `peer`.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<Shared<F>> {
        self.by_peer.get(peer).cloned()
    }

    /// The latest negotiation with `peer` if it can still give a live connection: running, or
    /// finished with one that is still up (a failure is final too, so it is handed out).
    pub(crate) fn usable(&self, peer: &PeerId) -> Option<Shared<F>> {
        self.get(peer).filter(|p| match p.peek() {
            Some(Ok(c)) => c.is_connected(),
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(from: PeerId, connection_id: &str, payload: Payload) -> ServerMessage {
        ServerMessage::Routed(Routed {
            from: Some(from),
            to: PeerId::random(),
            connection_id: connection_id.into(),
            payload,
        })
    }

    #[test]
    fn frames_reach_only_their_own_negotiation_from_its_own_peer() {
        let (alice, mallory) = (PeerId::random(), PeerId::random());
        let mut s = Sessions::new(8);
        s.insert("c1".into(), alice, 1u8).unwrap();
        let bye = || Payload::Bye { reason: None };
        assert!(matches!(s.route(routed(alice, "c1", bye()), true), Route::Deliver(1, Inbox::Payload(_))));
        // Someone else guessing the connection id is not heard.
        assert!(matches!(s.route(routed(mallory, "c1", bye()), true), Route::Ignore));
        // Late frames of a finished negotiation are dropped.
        s.remove("c1");
        assert!(matches!(s.route(routed(alice, "c1", bye()), true), Route::Ignore));
    }

    #[test]
    fn an_unknown_connection_starts_only_with_an_offer_and_only_when_accepting() {
        let alice = PeerId::random();
        let s: Sessions<u8> = Sessions::new(8);
        let offer = || Payload::Offer { sdp: "v=0".into() };
        match s.route(routed(alice, "c2", offer()), true) {
            Route::Answer { from, connection_id, offer } => {
                assert_eq!((from, connection_id.as_str(), offer.as_str()), (alice, "c2", "v=0"));
            }
            _ => panic!("an offer on a new connection id is answered"),
        }
        assert!(matches!(s.route(routed(alice, "c2", offer()), false), Route::Ignore));
        assert!(matches!(s.route(routed(alice, "c2", Payload::Bye { reason: None }), true), Route::Ignore));
    }

    #[test]
    fn server_errors_go_to_the_negotiation_they_name() {
        let mut s = Sessions::new(8);
        s.insert("c3".into(), PeerId::random(), 3u8).unwrap();
        let err = |cid: Option<&str>| ServerMessage::Error {
            code: ErrorCode::UnknownPeer,
            message: "gone".into(),
            connection_id: cid.map(Into::into),
        };
        assert!(matches!(s.route(err(Some("c3")), true), Route::Deliver(3, Inbox::Refused(ErrorCode::UnknownPeer, _))));
        assert!(matches!(s.route(err(Some("c4")), true), Route::Ignore));
        assert!(matches!(s.route(err(None), true), Route::Ignore));
    }

    #[test]
    fn at_most_max_negotiations_run_at_once() {
        let mut s = Sessions::new(2);
        s.insert("a".into(), PeerId::random(), ()).unwrap();
        s.insert("b".into(), PeerId::random(), ()).unwrap();
        assert_eq!(s.insert("c".into(), PeerId::random(), ()), Err(WebRtcError::TooManyPending));
        s.remove("a");
        s.insert("c".into(), PeerId::random(), ()).unwrap();
    }
}
