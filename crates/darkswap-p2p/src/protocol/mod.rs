//! The DarkSwap wire protocol: what travels on gossip topics and on the direct request-response
//! protocols, how it is encoded, and the rules every inbound message must pass.
//!
//! - Gossip (`darkswap/orderbook/v1`, `darkswap/trade/v1`): a signed [`envelope`] around a
//!   [`Message`].
//! - Order-book sync ([`SYNC_PROTOCOL`]): a newcomer pages through a peer's live orders; each entry is
//!   the maker's original signed envelope, so a syncing peer cannot forge orders.
//! - Order-book reconciliation ([`reconcile::RECONCILE_PROTOCOL`]): two nodes find and exchange
//!   only the orders one of them lacks (anti-entropy, and a node back from an absence).
//! - Trade negotiation ([`TRADE_PROTOCOL`]): [`TradeMessage`]s addressed to one peer, each answered
//!   by a [`TradeAck`](crate::trade::TradeAck), both end-to-end encrypted ([`sealed`]).
//! - Authentication ([`AUTH_PROTOCOL`](crate::auth::AUTH_PROTOCOL)): challenges and tokens
//!   ([`crate::auth::protocol`]).
//!
//! Every encoding starts with a version byte ([`WIRE_VERSION`]) and is capped in size (see
//! [`limits`]); the body is [postcard](https://docs.rs/postcard), whose schema is the Rust types.

pub mod codec;
pub mod envelope;
pub mod limits;
pub mod reconcile;
mod reject;
pub mod sealed;
pub mod validate;

use darkswap_support::types::{Order, OrderCancel, OrderId, TradeMessage, TradeSettled};
use serde::{Deserialize, Serialize};

pub use darkswap_support::types::{TradeBody, TradeId};
pub use envelope::{Envelope, EnvelopeError};
pub use reject::RejectReason;

/// Gossip topic for order announcements and cancellations.
pub const ORDERBOOK_TOPIC: &str = "darkswap/orderbook/v1";
/// Gossip topic for settlement notices; also the topic trade-negotiation messages are reported under.
pub const TRADE_TOPIC: &str = "darkswap/trade/v1";
/// Request-response protocol for order-book sync.
pub const SYNC_PROTOCOL: &str = "/darkswap/sync/1.0.0";
/// Request-response protocol for trade negotiation.
pub const TRADE_PROTOCOL: &str = "/darkswap/trade/1.0.0";
/// The one wire version this build speaks; anything else is rejected with
/// [`RejectReason::UnknownVersion`].
pub const WIRE_VERSION: u8 = 1;

/// A DarkSwap protocol message, as the application receives it in
/// [`NetworkEvent::MessageReceived`](crate::network::NetworkEvent::MessageReceived).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A new order (gossip on [`ORDERBOOK_TOPIC`], or delivered by sync).
    OrderAnnounce(Order),
    /// A maker withdrew an order (gossip on [`ORDERBOOK_TOPIC`]).
    OrderCancel(OrderCancel),
    /// A maker's order was filled (gossip on [`TRADE_TOPIC`]).
    TradeSettled(TradeSettled),
    /// A trade-negotiation step sent directly to this node ([`TRADE_PROTOCOL`]).
    Trade(TradeMessage),
}

impl Message {
    /// Short name of the message kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::OrderAnnounce(_) => "order-announce",
            Message::OrderCancel(_) => "order-cancel",
            Message::TradeSettled(_) => "trade-settled",
            Message::Trade(t) => t.body.kind(),
        }
    }
}

/// Sync request: "send me up to `limit` live orders with ids greater than `after`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Resume after this order id; `None` starts from the beginning.
    pub after: Option<OrderId>,
    /// Page size wanted; the server caps it at [`limits::SYNC_PAGE_MAX`].
    pub limit: u16,
    /// Anti-entropy: the requester's book digest ([`crate::order_book::OrderBook::digest`],
    /// [`limits::SYNC_BUCKETS`] values). When set, the page holds only orders in buckets whose
    /// digest differs from the server's, so two books that agree exchange nothing.
    pub digest: Option<Vec<u64>>,
}

/// Sync response: one page of signed order envelopes, in order-id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The makers' original signed gossip envelopes.
    pub envelopes: Vec<serde_bytes::ByteBuf>,
    /// Where the next page starts, or `None` when this was the last.
    pub next: Option<OrderId>,
}
