//! Trade negotiation messages, sent directly to one peer.
//!
//! The flow: the taker sends `Intent`; the maker answers `Accept` or `Reject`; the taker sends a
//! `PsbtOffer`; the maker answers `PsbtSigned`; the taker broadcasts and sends `Complete` with the
//! txid. Either side may `Cancel` before `Complete`. PSBTs are opaque bytes built by the wallets.

use crate::ids::OrderId;
pub use crate::ids::{TradeId, Txid};
use serde::{Deserialize, Serialize};

/// One step of a trade negotiation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeBody {
    /// Taker to maker: I want to take `amount` base units of the order.
    Intent {
        /// Base units to take; at most the order's amount.
        amount: u128,
    },
    /// Maker to taker: go ahead.
    Accept,
    /// Maker to taker: no.
    Reject {
        /// Human-readable reason (bounded on the wire).
        reason: String,
    },
    /// Taker to maker: a PSBT funding the trade, for the maker to sign.
    PsbtOffer {
        /// The PSBT bytes, opaque to the network.
        #[serde(with = "serde_bytes")]
        psbt: Vec<u8>,
    },
    /// Maker to taker: the PSBT with the maker's signatures.
    PsbtSigned {
        /// The PSBT bytes, opaque to the network.
        #[serde(with = "serde_bytes")]
        psbt: Vec<u8>,
    },
    /// Taker to maker: the transaction was broadcast.
    Complete {
        /// The settlement transaction id.
        txid: Txid,
    },
    /// Either side: the negotiation is abandoned.
    Cancel {
        /// Human-readable reason (bounded on the wire).
        reason: String,
    },
}

impl TradeBody {
    /// Short name of the step, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            TradeBody::Intent { .. } => "intent",
            TradeBody::Accept => "accept",
            TradeBody::Reject { .. } => "reject",
            TradeBody::PsbtOffer { .. } => "psbt-offer",
            TradeBody::PsbtSigned { .. } => "psbt-signed",
            TradeBody::Complete { .. } => "complete",
            TradeBody::Cancel { .. } => "cancel",
        }
    }
}

/// A trade negotiation message addressed to one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeMessage {
    /// The negotiation this belongs to.
    pub trade_id: TradeId,
    /// The order being taken.
    pub order_id: OrderId,
    /// The step.
    pub body: TradeBody,
}
