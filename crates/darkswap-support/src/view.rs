//! JSON-friendly views of orders, shared by the node's control API and the browser API: amounts
//! and prices as decimal strings (they may exceed what a JSON number holds exactly), assets and
//! ids in their text forms.

use crate::types::{AssetId, Order, OrderDraft, Side};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderView {
    /// Hex order id.
    pub id: String,
    /// Maker peer id.
    pub maker: String,
    /// Base asset (`btc`, `rune:B:T`, `alkane:B:T`).
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Base units, decimal.
    pub amount: String,
    /// Quote units per 10^8 base units, decimal.
    pub price: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub expiry: u64,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id.to_string(),
            maker: o.maker.to_string(),
            base: o.base.to_string(),
            quote: o.quote.to_string(),
            side: o.side.to_string(),
            amount: o.amount.to_string(),
            price: o.price.to_string(),
            created_at: o.created_at,
            expiry: o.expiry,
        }
    }
}

/// An order to post (`POST /orders` on the node, `postOrder` in the browser).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostOrder {
    /// `buy` or `sell`.
    pub side: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Base units, decimal.
    pub amount: String,
    /// Quote units per 10^8 base units, decimal.
    pub price: String,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
    /// Optional settlement terms for the wallets, hex-encoded.
    #[serde(default)]
    pub terms_hex: Option<String>,
}

impl PostOrder {
    /// Parses the request into a draft, or says which field is wrong.
    pub fn to_draft(&self) -> Result<OrderDraft, String> {
        let side: Side = self.side.parse()?;
        let base: AssetId = self.base.parse().map_err(|e| format!("base: {e}"))?;
        let quote: AssetId = self.quote.parse().map_err(|e| format!("quote: {e}"))?;
        let amount = self.amount.parse().map_err(|_| format!("amount {:?} is not an integer", self.amount))?;
        let price = self.price.parse().map_err(|_| format!("price {:?} is not an integer", self.price))?;
        let terms = match &self.terms_hex {
            Some(h) => hex::decode(h).map_err(|_| format!("terms_hex {h:?} is not hex"))?,
            None => Vec::new(),
        };
        Ok(OrderDraft { base, quote, side, amount, price, ttl: Duration::from_secs(self.ttl_secs), terms })
    }
}
