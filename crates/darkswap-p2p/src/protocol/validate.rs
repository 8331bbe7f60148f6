//! Rules every inbound gossip message must pass before it reaches the order book or the
//! application. A failure is a [`RejectReason`]: gossipsub is told `Reject` (it forwards nothing
//! of the message), the sender collects an invalid-message count that bans it at
//! [`GossipLimits::max_invalid`](crate::network::GossipLimits::max_invalid), and the reason is
//! counted in [`crate::network::NetworkStats`].

pub use super::reject::RejectReason;
use super::{envelope::Envelope, limits, Message, ORDERBOOK_TOPIC, TRADE_TOPIC};
use darkswap_support::types::Order;

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
