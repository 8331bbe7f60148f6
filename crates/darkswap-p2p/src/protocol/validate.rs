//! Rules every inbound gossip message must pass before it reaches the order book or the
//! application. A failure is a [`RejectReason`]: gossipsub is told `Reject`, which lowers the
//! sender's peer score, and the reason is counted in [`crate::network::NetworkStats`].

use super::{envelope::Envelope, limits, Message, ORDERBOOK_TOPIC, TRADE_TOPIC};
use darkswap_support::types::Order;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an inbound message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum RejectReason {
    /// The bytes do not decode as the schema says.
    Undecodable,
    /// The version byte is not one this build speaks.
    UnknownVersion,
    /// The message is larger than its cap.
    Oversized,
    /// The author key or signature is invalid.
    BadSignature,
    /// The message kind does not belong on the topic it came on.
    WrongTopic,
    /// The order's (or cancel's) maker is not the author who signed it.
    MakerNotAuthor,
    /// The order id does not match the order's content.
    IdMismatch,
    /// Amount is zero.
    ZeroAmount,
    /// Price is zero.
    ZeroPrice,
    /// Base and quote are the same asset.
    SameAsset,
    /// The order (or notice) has already expired.
    Expired,
    /// The order lives longer than [`limits::MAX_ORDER_TTL`].
    TtlTooLong,
    /// The order claims to be created in the future (beyond the clock-skew allowance).
    CreatedInFuture,
    /// The local order book refused it (full, or the maker is over quota).
    BookFull,
    /// A trade-negotiation message was refused (see [`crate::trade::TradeError`]).
    TradeRefused,
}

impl RejectReason {
    /// Every reason, in counter order.
    pub const ALL: [RejectReason; 15] = [
        RejectReason::Undecodable,
        RejectReason::UnknownVersion,
        RejectReason::Oversized,
        RejectReason::BadSignature,
        RejectReason::WrongTopic,
        RejectReason::MakerNotAuthor,
        RejectReason::IdMismatch,
        RejectReason::ZeroAmount,
        RejectReason::ZeroPrice,
        RejectReason::SameAsset,
        RejectReason::Expired,
        RejectReason::TtlTooLong,
        RejectReason::CreatedInFuture,
        RejectReason::BookFull,
        RejectReason::TradeRefused,
    ];

    /// Stable snake_case name, used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Undecodable => "undecodable",
            RejectReason::UnknownVersion => "unknown_version",
            RejectReason::Oversized => "oversized",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::WrongTopic => "wrong_topic",
            RejectReason::MakerNotAuthor => "maker_not_author",
            RejectReason::IdMismatch => "id_mismatch",
            RejectReason::ZeroAmount => "zero_amount",
            RejectReason::ZeroPrice => "zero_price",
            RejectReason::SameAsset => "same_asset",
            RejectReason::Expired => "expired",
            RejectReason::TtlTooLong => "ttl_too_long",
            RejectReason::CreatedInFuture => "created_in_future",
            RejectReason::BookFull => "book_full",
            RejectReason::TradeRefused => "trade_refused",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RejectReason {}

/// Checks an order's own content at time `now` (seconds since the Unix epoch).
pub fn check_order(order: &Order, now: u64) -> Result<(), RejectReason> {
    if order.amount == 0 {
        return Err(RejectReason::ZeroAmount);
    }
    if order.price == 0 {
        return Err(RejectReason::ZeroPrice);
    }
    if order.terms.len() > darkswap_support::types::MAX_TERMS {
        return Err(RejectReason::Oversized);
    }
    if order.base == order.quote {
        return Err(RejectReason::SameAsset);
    }
    if order.id != order.compute_id() {
        return Err(RejectReason::IdMismatch);
    }
    if order.is_expired(now) {
        return Err(RejectReason::Expired);
    }
    if order.created_at > now.saturating_add(limits::MAX_CLOCK_SKEW.as_secs()) {
        return Err(RejectReason::CreatedInFuture);
    }
    if order.expiry.saturating_sub(order.created_at.min(now)) > limits::MAX_ORDER_TTL.as_secs() {
        return Err(RejectReason::TtlTooLong);
    }
    Ok(())
}

/// Checks a signature-verified envelope received on `topic` at `now`.
pub fn check_envelope(topic: &str, env: &Envelope, now: u64) -> Result<(), RejectReason> {
    let horizon = now.saturating_add(limits::MAX_ORDER_TTL.as_secs());
    match (&env.message, topic) {
        (Message::OrderAnnounce(order), ORDERBOOK_TOPIC) => {
            if order.maker != env.author {
                return Err(RejectReason::MakerNotAuthor);
            }
            check_order(order, now)
        }
        (Message::OrderCancel(c), ORDERBOOK_TOPIC) => {
            if c.maker != env.author {
                return Err(RejectReason::MakerNotAuthor);
            }
            if c.expiry > horizon {
                return Err(RejectReason::TtlTooLong);
            }
            Ok(())
        }
        (Message::TradeSettled(s), TRADE_TOPIC) => {
            if s.maker != env.author {
                return Err(RejectReason::MakerNotAuthor);
            }
            if s.expiry > horizon {
                return Err(RejectReason::TtlTooLong);
            }
            Ok(())
        }
        _ => Err(RejectReason::WrongTopic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_support::types::{AssetId, OrderDraft, PeerId, Side};
    use std::time::Duration;

    fn order(maker: PeerId, amount: u128, price: u128, ttl: u64) -> Order {
        let draft = OrderDraft {
            base: AssetId::Btc,
            quote: "rune:1:1".parse().unwrap(),
            side: Side::Buy,
            amount,
            price,
            ttl: Duration::from_secs(ttl),
            terms: Vec::new(),
        };
        Order::from_draft(maker, &draft, 1_000, 3)
    }

    #[test]
    fn order_rules() {
        let m = PeerId::random();
        assert_eq!(check_order(&order(m, 1, 1, 60), 1_000), Ok(()));
        assert_eq!(check_order(&order(m, 0, 1, 60), 1_000), Err(RejectReason::ZeroAmount));
        assert_eq!(check_order(&order(m, 1, 0, 60), 1_000), Err(RejectReason::ZeroPrice));
        assert_eq!(check_order(&order(m, 1, 1, 60), 1_060), Err(RejectReason::Expired));
        assert_eq!(check_order(&order(m, 1, 1, 60), 100), Err(RejectReason::CreatedInFuture));
        let long = limits::MAX_ORDER_TTL.as_secs() + 1;
        assert_eq!(check_order(&order(m, 1, 1, long), 1_000), Err(RejectReason::TtlTooLong));
        let mut tampered = order(m, 1, 1, 60);
        tampered.amount = 2;
        assert_eq!(check_order(&tampered, 1_000), Err(RejectReason::IdMismatch));
    }

    #[test]
    fn every_reason_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), RejectReason::ALL.len());
    }
}
