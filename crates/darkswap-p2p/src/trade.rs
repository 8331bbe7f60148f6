//! Trade-negotiation sessions: which step may follow which, checked on both sides.
//!
//! Protocol logic only (no I/O): the network task feeds it the messages it sends and receives.
//! A message that does not fit the session is refused with a [`TradeError`] and never reaches the
//! application.

use crate::order_book::OrderBook;
use crate::protocol::limits::{MAX_PSBT, MAX_REASON};
use darkswap_support::types::{OrderId, PeerId, TradeBody, TradeId, TradeMessage};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The receiving node's answer to a [`TradeMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeAck {
    /// Accepted and handed to the application.
    Delivered,
    /// Refused; the message never reached the application.
    Refused(TradeError),
}

/// Which side of a trade a node is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeRole {
    /// Sent the intent.
    Taker,
    /// Owns the order.
    Maker,
}

/// Where a negotiation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeState {
    /// Intent sent, waiting for the maker.
    Proposed,
    /// The maker accepted; waiting for the taker's PSBT.
    Accepted,
    /// The taker offered a PSBT; waiting for the maker's signatures.
    PsbtOffered,
    /// The maker signed; waiting for the taker to broadcast.
    PsbtSigned,
    /// Broadcast; done.
    Completed,
    /// The maker said no.
    Rejected,
    /// Someone cancelled.
    Cancelled,
}

impl TradeState {
    /// Whether no further step is possible.
    pub fn is_terminal(self) -> bool {
        matches!(self, TradeState::Completed | TradeState::Rejected | TradeState::Cancelled)
    }
}

/// Why a trade message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TradeError {
    /// The order is not in the local book.
    #[error("unknown order")]
    UnknownOrder,
    /// An intent was sent to (or received by) someone who is not the order's maker.
    #[error("the receiving peer is not the order's maker")]
    NotMaker,
    /// The intent's amount is zero or above the order's amount.
    #[error("amount {0} is zero or above the order's amount")]
    BadAmount(u128),
    /// No session with that trade id (with that peer).
    #[error("unknown trade")]
    UnknownTrade,
    /// A session with that trade id exists already.
    #[error("trade id already in use")]
    DuplicateTrade,
    /// The step does not follow from the session's state, or is not this role's to send.
    #[error("{step} is not allowed in state {state:?}")]
    UnexpectedStep {
        /// The session's state.
        state: TradeState,
        /// The refused step.
        step: String,
    },
    /// A PSBT or reason exceeds its cap.
    #[error("field too large")]
    TooLarge,
    /// Too many open sessions.
    #[error("too many open trades")]
    TooManyTrades,
}

/// One negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeSession {
    /// Its id.
    pub trade_id: TradeId,
    /// The order being taken.
    pub order_id: OrderId,
    /// The other side.
    pub peer: PeerId,
    /// This node's side.
    pub role: TradeRole,
    /// Where it stands.
    pub state: TradeState,
    /// Base units being taken.
    pub amount: u128,
    /// Last change, seconds since the Unix epoch.
    pub updated_at: u64,
}

/// All of a node's negotiations, bounded.
#[derive(Debug)]
pub struct TradeSessions {
    local: PeerId,
    sessions: HashMap<TradeId, TradeSession>,
    max_open: usize,
}

/// Open sessions idle this long are dropped; finished ones are kept this long for lookups.
const IDLE_SECS: u64 = 600;
const FINISHED_SECS: u64 = 60;

fn next_state(sender: TradeRole, state: TradeState, body: &TradeBody) -> Option<TradeState> {
    use {TradeBody as B, TradeRole as R, TradeState as S};
    Some(match (sender, state, body) {
        (R::Maker, S::Proposed, B::Accept) => S::Accepted,
        (R::Maker, S::Proposed, B::Reject { .. }) => S::Rejected,
        (R::Taker, S::Accepted, B::PsbtOffer { .. }) => S::PsbtOffered,
        (R::Maker, S::PsbtOffered, B::PsbtSigned { .. }) => S::PsbtSigned,
        (R::Taker, S::PsbtSigned, B::Complete { .. }) => S::Completed,
        (_, s, B::Cancel { .. }) if !s.is_terminal() => S::Cancelled,
        _ => return None,
    })
}

fn check_sizes(body: &TradeBody) -> Result<(), TradeError> {
    let ok = match body {
        TradeBody::PsbtOffer { psbt } | TradeBody::PsbtSigned { psbt } => psbt.len() <= MAX_PSBT,
        TradeBody::Reject { reason } | TradeBody::Cancel { reason } => reason.len() <= MAX_REASON,
        _ => true,
    };
    ok.then_some(()).ok_or(TradeError::TooLarge)
}

impl TradeSessions {
    /// Sessions for the node `local`, at most `max_open` unfinished at once.
    pub fn new(local: PeerId, max_open: usize) -> Self {
        Self { local, sessions: HashMap::new(), max_open }
    }

    /// Every known session.
    pub fn sessions(&self) -> impl Iterator<Item = &TradeSession> {
        self.sessions.values()
    }

    /// The session `id`, if known.
    pub fn get(&self, id: &TradeId) -> Option<&TradeSession> {
        self.sessions.get(id)
    }

    /// Checks that this node may send `msg` to `peer`, without changing anything.
    pub fn check_outbound(&self, peer: PeerId, msg: &TradeMessage, book: &OrderBook) -> Result<(), TradeError> {
        self.transition(peer, msg, book, true).map(|_| ())
    }

    /// Records that `msg` was delivered to `peer`.
    pub fn commit_outbound(
        &mut self,
        peer: PeerId,
        msg: &TradeMessage,
        book: &OrderBook,
        now: u64,
    ) -> Result<TradeState, TradeError> {
        let session = self.transition(peer, msg, book, true)?;
        Ok(self.store(session, now))
    }

    /// Checks and records `msg` received from `peer`.
    pub fn on_inbound(
        &mut self,
        peer: PeerId,
        msg: &TradeMessage,
        book: &OrderBook,
        now: u64,
    ) -> Result<TradeState, TradeError> {
        let session = self.transition(peer, msg, book, false)?;
        Ok(self.store(session, now))
    }

    fn store(&mut self, mut s: TradeSession, now: u64) -> TradeState {
        s.updated_at = now;
        let state = s.state;
        self.sessions.insert(s.trade_id, s);
        state
    }

    /// The session after `msg`, or why `msg` does not fit.
    fn transition(
        &self,
        peer: PeerId,
        msg: &TradeMessage,
        book: &OrderBook,
        outbound: bool,
    ) -> Result<TradeSession, TradeError> {
        check_sizes(&msg.body)?;
        if let TradeBody::Intent { amount } = msg.body {
            if self.sessions.contains_key(&msg.trade_id) {
                return Err(TradeError::DuplicateTrade);
            }
            if self.open_count() >= self.max_open {
                return Err(TradeError::TooManyTrades);
            }
            let order = book.get(&msg.order_id).ok_or(TradeError::UnknownOrder)?;
            let maker = if outbound { peer } else { self.local };
            if order.maker != maker {
                return Err(TradeError::NotMaker);
            }
            if amount == 0 || amount > order.amount {
                return Err(TradeError::BadAmount(amount));
            }
            return Ok(TradeSession {
                trade_id: msg.trade_id,
                order_id: msg.order_id,
                peer,
                role: if outbound { TradeRole::Taker } else { TradeRole::Maker },
                state: TradeState::Proposed,
                amount,
                updated_at: 0,
            });
        }
        let session = self.sessions.get(&msg.trade_id).filter(|s| s.peer == peer && s.order_id == msg.order_id);
        let mut session = session.cloned().ok_or(TradeError::UnknownTrade)?;
        let sender = match (outbound, session.role) {
            (true, role) => role,
            (false, TradeRole::Taker) => TradeRole::Maker,
            (false, TradeRole::Maker) => TradeRole::Taker,
        };
        session.state = next_state(sender, session.state, &msg.body)
            .ok_or_else(|| TradeError::UnexpectedStep { state: session.state, step: msg.body.kind().to_string() })?;
        Ok(session)
    }

    fn open_count(&self) -> usize {
        self.sessions.values().filter(|s| !s.state.is_terminal()).count()
    }

    /// Forgets idle and long-finished sessions.
    pub fn prune(&mut self, now: u64) {
        self.sessions.retain(|_, s| {
            let age = now.saturating_sub(s.updated_at);
            if s.state.is_terminal() {
                age < FINISHED_SECS
            } else {
                age < IDLE_SECS
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_support::types::{AssetId, Order, OrderDraft, Side, Txid};
    use std::{sync::Arc, time::Duration};

    fn setup() -> (PeerId, PeerId, OrderBook, Order) {
        let (maker, taker) = (PeerId::random(), PeerId::random());
        let d = OrderDraft {
            base: AssetId::Btc,
            quote: "alkane:2:1".parse().unwrap(),
            side: Side::Sell,
            amount: 100,
            price: 3,
            ttl: Duration::from_secs(600),
            terms: Vec::new(),
        };
        let order = Order::from_draft(maker, &d, 10, 1);
        let mut book = OrderBook::default();
        book.insert(order.clone(), Arc::from(vec![])).unwrap();
        (maker, taker, book, order)
    }

    fn msg(order: &Order, body: TradeBody) -> TradeMessage {
        TradeMessage { trade_id: TradeId([1; 16]), order_id: order.id, body }
    }

    #[test]
    fn full_negotiation_on_both_sides() {
        let (maker, taker, book, order) = setup();
        let mut t = TradeSessions::new(taker, 8);
        let mut m = TradeSessions::new(maker, 8);
        let steps = [
            (true, TradeBody::Intent { amount: 40 }, TradeState::Proposed),
            (false, TradeBody::Accept, TradeState::Accepted),
            (true, TradeBody::PsbtOffer { psbt: vec![1, 2] }, TradeState::PsbtOffered),
            (false, TradeBody::PsbtSigned { psbt: vec![3] }, TradeState::PsbtSigned),
            (true, TradeBody::Complete { txid: Txid([9; 32]) }, TradeState::Completed),
        ];
        for (from_taker, body, want) in steps {
            let m_ = msg(&order, body);
            if from_taker {
                t.check_outbound(maker, &m_, &book).unwrap();
                assert_eq!(m.on_inbound(taker, &m_, &book, 1).unwrap(), want);
                assert_eq!(t.commit_outbound(maker, &m_, &book, 1).unwrap(), want);
            } else {
                m.check_outbound(taker, &m_, &book).unwrap();
                assert_eq!(t.on_inbound(maker, &m_, &book, 1).unwrap(), want);
                assert_eq!(m.commit_outbound(taker, &m_, &book, 1).unwrap(), want);
            }
        }
    }

    #[test]
    fn out_of_order_and_bad_intents_are_refused() {
        let (maker, taker, book, order) = setup();
        let mut m = TradeSessions::new(maker, 8);
        let err = m.on_inbound(taker, &msg(&order, TradeBody::Accept), &book, 1).unwrap_err();
        assert_eq!(err, TradeError::UnknownTrade);
        let err = m.on_inbound(taker, &msg(&order, TradeBody::Intent { amount: 101 }), &book, 1).unwrap_err();
        assert_eq!(err, TradeError::BadAmount(101));
        m.on_inbound(taker, &msg(&order, TradeBody::Intent { amount: 1 }), &book, 1).unwrap();
        // The taker cannot accept its own intent.
        let err = m.on_inbound(taker, &msg(&order, TradeBody::Accept), &book, 1).unwrap_err();
        assert!(matches!(err, TradeError::UnexpectedStep { state: TradeState::Proposed, .. }));
        // A third peer cannot touch the session.
        let err = m.on_inbound(PeerId::random(), &msg(&order, TradeBody::Cancel { reason: "x".into() }), &book, 1);
        assert_eq!(err.unwrap_err(), TradeError::UnknownTrade);
        // An intent to a non-maker.
        let t = TradeSessions::new(taker, 8);
        let err = t.check_outbound(PeerId::random(), &msg(&order, TradeBody::Intent { amount: 1 }), &book);
        assert_eq!(err.unwrap_err(), TradeError::NotMaker);
    }
}
