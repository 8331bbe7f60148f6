//! Orders, cancellations and settlement notices, as gossiped on `darkswap/orderbook/v1`.

use crate::asset::AssetId;
pub use crate::ids::OrderId;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{fmt, str::FromStr, time::Duration};

/// Prices are quote-asset base units per `PRICE_SCALE` base-asset base units.
///
/// With bitcoin as quote this reads as "sats per 10^8 units", which keeps prices below one sat per
/// unit exact without floating point.
pub const PRICE_SCALE: u128 = 100_000_000;

/// Whether the maker buys or sells the base asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The maker buys `amount` of base and pays in quote.
    Buy,
    /// The maker sells `amount` of base for quote.
    Sell,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

impl FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "buy" | "bid" => Ok(Side::Buy),
            "sell" | "ask" => Ok(Side::Sell),
            other => Err(format!("unknown side {other:?}: expected buy or sell")),
        }
    }
}

/// What a trader wants to post; the network fills in maker, timestamps, nonce and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderDraft {
    /// Asset being bought or sold.
    pub base: AssetId,
    /// Asset the price is counted in.
    pub quote: AssetId,
    /// Whether the maker buys or sells `base`.
    pub side: Side,
    /// Amount of `base`, in its base units.
    pub amount: u128,
    /// Price in quote base units per [`PRICE_SCALE`] base units.
    pub price: u128,
    /// How long the order stays live.
    pub ttl: Duration,
    /// Opaque settlement terms for the wallets (e.g. the outpoints or addresses the maker offers);
    /// signed with the order, at most `MAX_TERMS` bytes.
    pub terms: Vec<u8>,
}

/// Largest `terms` blob an order may carry.
pub const MAX_TERMS: usize = 2048;

/// A signed-by-its-maker offer to trade, as it travels the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Content-derived id (see [`OrderId`]); checked on receipt.
    pub id: OrderId,
    /// The peer that made the order; it must be the author that signed the gossip message.
    pub maker: PeerId,
    /// Asset being bought or sold.
    pub base: AssetId,
    /// Asset the price is counted in.
    pub quote: AssetId,
    /// Whether the maker buys or sells `base`.
    pub side: Side,
    /// Amount of `base`, in its base units; never zero.
    pub amount: u128,
    /// Price in quote base units per [`PRICE_SCALE`] base units; never zero.
    pub price: u128,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch; the order is dropped everywhere after it.
    pub expiry: u64,
    /// Maker-chosen random value so two otherwise equal orders get different ids.
    pub nonce: u64,
    /// Opaque settlement terms for the wallets; at most [`MAX_TERMS`] bytes.
    #[serde(with = "serde_bytes")]
    pub terms: Vec<u8>,
}

impl Order {
    /// Builds an order from a draft, computing its id.
    pub fn from_draft(maker: PeerId, draft: &OrderDraft, now_unix: u64, nonce: u64) -> Self {
        let mut order = Order {
            id: OrderId([0; 16]),
            maker,
            base: draft.base,
            quote: draft.quote,
            side: draft.side,
            amount: draft.amount,
            price: draft.price,
            created_at: now_unix,
            expiry: now_unix.saturating_add(draft.ttl.as_secs().max(1)),
            nonce,
            terms: draft.terms.clone(),
        };
        order.id = order.compute_id();
        order
    }

    /// The id this order's content implies. An order whose `id` differs is invalid.
    ///
    /// The hash runs over the postcard encoding of the order with a zero id, streamed into the
    /// hasher: every node computes this once per order it receives, and a copy of the order plus
    /// an encoding buffer (terms included) cost about as much as the hashing itself.
    pub fn compute_id(&self) -> OrderId {
        let hashing = IdHasher { hasher: Sha256::new_with_prefix(b"darkswap/order-id/v1"), at: 0 };
        // The hashing flavour never fails, and an `Order` holds nothing postcard refuses.
        let hasher = postcard::serialize_with_flavor(self, hashing).map(|h| h.hasher).unwrap_or_default();
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize()[..16]);
        OrderId(id)
    }

    /// Whether the order is past its expiry at `now_unix`.
    pub fn is_expired(&self, now_unix: u64) -> bool {
        self.expiry <= now_unix
    }
}

/// A postcard flavour that feeds the encoding of an [`Order`] to SHA-256 as it is written,
/// with the id (the first field: 16 raw bytes) read as zeros.
struct IdHasher {
    hasher: Sha256,
    /// Bytes written so far.
    at: usize,
}

/// Length of the id at the start of an order's encoding.
const ID_LEN: usize = std::mem::size_of::<OrderId>();

impl postcard::ser_flavors::Flavor for IdHasher {
    type Output = Self;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let zeros = ID_LEN.saturating_sub(self.at).min(data.len());
        self.hasher.update(&[0u8; ID_LEN][..zeros]);
        self.hasher.update(&data[zeros..]);
        self.at += data.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Self> {
        Ok(self)
    }
}

/// The maker withdraws an order. Only the maker's signature makes it valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancel {
    /// The order being withdrawn.
    pub order_id: OrderId,
    /// The maker; it must be the author that signed the message.
    pub maker: PeerId,
    /// Until when peers remember the cancellation (the order's own expiry), so a late copy of the
    /// order cannot come back.
    pub expiry: u64,
}

/// A maker's public notice, on `darkswap/trade/v1`, that an order was filled by a settled trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeSettled {
    /// The order that was filled.
    pub order_id: OrderId,
    /// The maker; it must be the author that signed the message.
    pub maker: PeerId,
    /// Bitcoin transaction id of the settlement.
    pub txid: crate::ids::Txid,
    /// The order's expiry, bounding how long peers remember the notice.
    pub expiry: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> OrderDraft {
        OrderDraft {
            base: AssetId::Btc,
            quote: "rune:1:2".parse().unwrap(),
            side: Side::Sell,
            amount: 5,
            price: 7,
            ttl: Duration::from_secs(60),
            terms: Vec::new(),
        }
    }

    #[test]
    fn id_is_content_derived() {
        let maker = PeerId::random();
        let a = Order::from_draft(maker, &draft(), 100, 1);
        assert_eq!(a.id, a.compute_id());
        let mut b = a.clone();
        b.amount = 6;
        assert_ne!(b.compute_id(), a.id);
        let c = Order::from_draft(PeerId::random(), &draft(), 100, 1);
        assert_ne!(c.id, a.id, "a different maker gives a different id");
    }

    #[test]
    fn order_id_text_round_trips() {
        let id = Order::from_draft(PeerId::random(), &draft(), 1, 2).id;
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
    }

    /// The id as first defined: the order cloned with a zero id, encoded, then hashed.
    fn id_by_copy(order: &Order) -> OrderId {
        let mut unsigned = order.clone();
        unsigned.id = OrderId([0; 16]);
        let digest = Sha256::new_with_prefix(b"darkswap/order-id/v1")
            .chain_update(postcard::to_allocvec(&unsigned).unwrap())
            .finalize();
        OrderId(digest[..16].try_into().unwrap())
    }

    #[test]
    fn the_streamed_id_is_the_id_of_the_encoded_copy() {
        let assets = [AssetId::Btc, "rune:840000:1".parse().unwrap(), "alkane:2:16".parse().unwrap()];
        for (k, terms) in [0, 1, 127, 128, 1000, MAX_TERMS].into_iter().enumerate() {
            let mut d = draft();
            d.base = assets[k % 3];
            d.quote = assets[(k + 1) % 3];
            d.amount = u128::MAX >> k;
            d.terms = (0..terms).map(|i| i as u8).collect();
            let mut order = Order::from_draft(PeerId::random(), &d, 1_700_000_000 + k as u64, u64::MAX - k as u64);
            assert_eq!(order.id, id_by_copy(&order), "{terms} bytes of terms");
            // The id field itself never counts.
            order.id = OrderId([0xff; 16]);
            assert_eq!(order.compute_id(), id_by_copy(&order));
        }
    }
}
