//! [`Hex32`]: 32 bytes (a SHA-256 hash, an Ed25519 key) held as bytes and written as hex.

use std::fmt;
use std::str::FromStr;

/// 32 bytes that serialize as 64 lowercase hex characters (and parse from hex of either case).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex32(pub [u8; 32]);

/// Text that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not 32 bytes of hex")]
pub struct NotHex32;

impl FromStr for Hex32 {
    type Err = NotHex32;

    fn from_str(s: &str) -> Result<Self, NotHex32> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| NotHex32)?;
        Ok(Hex32(out))
    }
}

impl From<[u8; 32]> for Hex32 {
    fn from(bytes: [u8; 32]) -> Self {
        Hex32(bytes)
    }
}

impl fmt::Display for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex32({self})")
    }
}

impl serde::Serialize for Hex32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Hex32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_bad_text_is_refused() {
        let h = Hex32([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hex32>(&json).unwrap(), h);
        assert_eq!("AB".repeat(32).parse::<Hex32>(), Ok(h));
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert_eq!(bad.parse::<Hex32>(), Err(NotHex32), "{bad:?}");
        }
    }
}
