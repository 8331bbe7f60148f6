//! Fixed-size identifiers, written as lowercase hex: orders, negotiations and transactions.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Defines a byte-array id that displays, debugs and parses as hex.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = hex::FromHexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut id = [0u8; $len];
                hex::decode_to_slice(s.trim(), &mut id)?;
                Ok($name(id))
            }
        }
    };
}

hex_id!(
    /// The id of an order: the first 16 bytes of SHA-256 over the order's canonical encoding.
    ///
    /// Because it is derived from the content (maker included), nobody can announce a different
    /// order under someone else's id.
    OrderId,
    16
);

hex_id!(
    /// Identifies one negotiation; chosen at random by the taker.
    TradeId,
    16
);

hex_id!(
    /// A bitcoin transaction id (32 bytes, in the byte order the wallet reports).
    Txid,
    32
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex_and_reject_bad_text() {
        let id = Txid([0xab; 32]);
        assert_eq!(id.to_string().parse::<Txid>().unwrap(), id);
        assert_eq!(format!("{:?}", OrderId([1; 16])), format!("OrderId({})", "01".repeat(16)));
        assert!("00".parse::<TradeId>().is_err());
        assert!("zz".repeat(16).parse::<OrderId>().is_err());
    }
}
