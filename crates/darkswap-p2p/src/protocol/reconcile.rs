//! Order-book reconciliation ([`RECONCILE_PROTOCOL`]): two nodes find the orders one holds and
//! the other lacks with [Negentropy](https://github.com/hoytech/negentropy) range-based set
//! reconciliation, then move only those orders.
//!
//! The initiator sends [`ReconcileRequest::Round`]s until it knows which order ids the responder
//! lacks and which it lacks itself; then it fetches what it lacks ([`ReconcileRequest::Fetch`])
//! and names what the responder lacks ([`ReconcileRequest::Offer`]), which the responder fetches
//! unless it has it by then or is fetching it from another peer. Orders move only when pulled,
//! so a node that several peers reconcile with at once (one back from an absence) receives
//! each order once. The set reconciled is the
//! live orders, each an item of (creation time, order id): Negentropy splits the set by item
//! order, so orders created while a node was away, which differ between the books, share a
//! range of recent creation times and cost a few dozen bytes each to find, and the ranges where
//! the books agree cost one fingerprint each.

use darkswap_support::types::OrderId;
use serde::{Deserialize, Serialize};

/// Request-response protocol for order-book reconciliation.
pub const RECONCILE_PROTOCOL: &str = "/darkswap/reconcile/1.0.0";

/// A step of a reconciliation, from the node that started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReconcileRequest {
    /// A Negentropy message (at most [`limits::RECONCILE_FRAME`](super::limits::RECONCILE_FRAME)
    /// bytes).
    Round(serde_bytes::ByteBuf),
    /// Send these orders' signed envelopes (at most
    /// [`SYNC_PAGE_MAX`](super::limits::SYNC_PAGE_MAX) ids).
    Fetch(Vec<OrderId>),
    /// Orders the initiator holds and the responder lacks, to fetch (at most
    /// [`SYNC_PAGE_MAX`](super::limits::SYNC_PAGE_MAX) ids).
    Offer(Vec<OrderId>),
}

/// The responder's answer to a [`ReconcileRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReconcileResponse {
    /// The Negentropy reply to a [`ReconcileRequest::Round`].
    Round(serde_bytes::ByteBuf),
    /// The live orders among those fetched, as the makers' signed envelopes.
    Orders(Vec<serde_bytes::ByteBuf>),
    /// The offer was noted (the responder fetches what it still lacks).
    Taken,
    /// Not served: the requester is over its rate, or its Negentropy message was malformed.
    Refused,
}
