//! Trade negotiation messages, sent directly to one peer.
//!
//! The flow: the taker sends `Intent`; the maker answers `Accept` or `Reject`; the taker sends a
//! `PsbtOffer`; the maker answers `PsbtSigned`; the taker broadcasts and sends `Complete` with the
//! txid. Either side may `Cancel` before `Complete`. PSBTs are opaque bytes built by the wallets.

use crate::order::OrderId;
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Identifies one negotiation; chosen at random by the taker.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TradeId(pub [u8; 16]);

impl fmt::Display for TradeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for TradeId {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s.trim(), &mut id)?;
        Ok(TradeId(id))
    }
}

impl fmt::Debug for TradeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TradeId({self})")
    }
}

/// A bitcoin transaction id (32 bytes, in the byte order the wallet reports).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txid(pub [u8; 32]);

impl fmt::Display for Txid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Txid {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut id)?;
        Ok(Txid(id))
    }
}

impl fmt::Debug for Txid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Txid({self})")
    }
}

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
