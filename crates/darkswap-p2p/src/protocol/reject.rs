//! [`RejectReason`]: why an inbound message was refused, counted per reason.

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
    /// The order lives longer than [`limits::MAX_ORDER_TTL`](super::limits::MAX_ORDER_TTL).
    TtlTooLong,
    /// The order claims to be created in the future (beyond the clock-skew allowance).
    CreatedInFuture,
    /// The local order book refused it (full, or the maker is over quota).
    BookFull,
    /// A trade-negotiation message was refused (see [`crate::trade::TradeError`]).
    TradeRefused,
    /// The peer or the maker is over its gossip rate ([`GossipLimits`](crate::network::GossipLimits));
    /// ignored, not penalised.
    RateLimited,
}

impl RejectReason {
    /// Every reason, in counter order.
    pub const ALL: [RejectReason; 16] = [
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
        RejectReason::RateLimited,
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
            RejectReason::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RejectReason {}
