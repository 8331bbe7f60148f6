//! Shared DarkSwap types with no I/O: peer ids, assets, orders and trade-negotiation messages.
//!
//! `darkswap-p2p` moves these values over the network; wallets, SDKs and the web app use the same
//! definitions, so an order means the same thing everywhere.
//!
//! ```
//! use darkswap_support::types::{AssetId, OrderDraft, Side};
//! use std::time::Duration;
//!
//! let draft = OrderDraft {
//!     base: "rune:840000:1".parse().unwrap(),
//!     quote: AssetId::Btc,
//!     side: Side::Sell,
//!     amount: 1_000,
//!     price: 2_500,
//!     ttl: Duration::from_secs(600),
//!     terms: Vec::new(),
//! };
//! assert_eq!(draft.base.to_string(), "rune:840000:1");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod asset;
pub mod ids;
pub mod order;
pub mod trade;
pub mod view;

/// Every shared type in one place, as the seed imports them (`darkswap_support::types::PeerId`).
pub mod types {
    pub use crate::asset::{AlkaneId, AssetId, ParseAssetError, RuneId};
    pub use crate::order::{Order, OrderCancel, OrderDraft, OrderId, Side, TradeSettled, MAX_TERMS, PRICE_SCALE};
    pub use crate::trade::{TradeBody, TradeId, TradeMessage, Txid};
    pub use libp2p_identity::PeerId;
}
