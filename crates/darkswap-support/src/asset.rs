//! Assets traded on DarkSwap: bitcoin, runes and alkanes.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// A rune, identified by the block height and transaction index of its etching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuneId {
    /// Block height of the etching transaction.
    pub block: u64,
    /// Index of the etching transaction in its block.
    pub tx: u32,
}

/// An alkane, identified by its `(block, tx)` pair as alkanes define it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlkaneId {
    /// Alkane block number.
    pub block: u128,
    /// Alkane transaction number.
    pub tx: u128,
}

/// One side of a trading pair.
///
/// Text form (used by the CLI and JSON APIs): `btc`, `rune:<block>:<tx>`, `alkane:<block>:<tx>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssetId {
    /// Bitcoin, counted in satoshis.
    Btc,
    /// A rune, counted in its smallest unit.
    Rune(RuneId),
    /// An alkane, counted in its smallest unit.
    Alkane(AlkaneId),
}

/// Why a text asset id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAssetError {
    /// The prefix is not `btc`, `rune` or `alkane`.
    #[error("unknown asset kind {0:?}: expected btc, rune:<block>:<tx> or alkane:<block>:<tx>")]
    UnknownKind(String),
    /// The `<block>:<tx>` part is missing or not a number.
    #[error("malformed asset id {0:?}: expected <kind>:<block>:<tx> with decimal numbers")]
    Malformed(String),
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssetId::Btc => f.write_str("btc"),
            AssetId::Rune(r) => write!(f, "rune:{}:{}", r.block, r.tx),
            AssetId::Alkane(a) => write!(f, "alkane:{}:{}", a.block, a.tx),
        }
    }
}

impl FromStr for AssetId {
    type Err = ParseAssetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "btc" {
            return Ok(AssetId::Btc);
        }
        let mut parts = lower.splitn(3, ':');
        let kind = parts.next().unwrap_or_default();
        let malformed = || ParseAssetError::Malformed(s.to_string());
        let (block, tx) = match (parts.next(), parts.next()) {
            (Some(b), Some(t)) => (b, t),
            _ if kind == "rune" || kind == "alkane" => return Err(malformed()),
            _ => return Err(ParseAssetError::UnknownKind(kind.to_string())),
        };
        match kind {
            "rune" => Ok(AssetId::Rune(RuneId {
                block: block.parse().map_err(|_| malformed())?,
                tx: tx.parse().map_err(|_| malformed())?,
            })),
            "alkane" => Ok(AssetId::Alkane(AlkaneId {
                block: block.parse().map_err(|_| malformed())?,
                tx: tx.parse().map_err(|_| malformed())?,
            })),
            other => Err(ParseAssetError::UnknownKind(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for s in ["btc", "rune:840000:1", "alkane:2:17"] {
            assert_eq!(s.parse::<AssetId>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_text_is_a_typed_error() {
        assert!(matches!("eth".parse::<AssetId>(), Err(ParseAssetError::UnknownKind(_))));
        assert!(matches!("rune:x:1".parse::<AssetId>(), Err(ParseAssetError::Malformed(_))));
        assert!(matches!("rune:1".parse::<AssetId>(), Err(ParseAssetError::Malformed(_))));
    }
}
