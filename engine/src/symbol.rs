//! Inline, fixed-size instrument symbols (`BTCUSDT`), so events stay `Copy` and heap-free.

use std::fmt;

/// Longest symbol carried inline (with its length byte the symbol is 16 bytes). Binance USD-M and
/// Bybit linear symbols fit (`1000000MOGUSDT` and `BTCUSDT_250926` are 14, `BTCUSDT-26DEC25` 15);
/// longer names are rejected at decode time and counted as malformed.
pub const SYMBOL_CAP: usize = 15;

/// An upper-case ASCII instrument symbol stored inline (length byte + bytes).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
pub struct Symbol {
    len: u8,
    bytes: [u8; SYMBOL_CAP],
}

impl Symbol {
    /// Builds a symbol from ASCII bytes, upper-casing them (Binance stream names are lower case).
    /// Returns `None` for empty, over-long or non-ASCII-alphanumeric input (`_` and `-` allowed).
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.is_empty() || b.len() > SYMBOL_CAP {
            return None;
        }
        let mut bytes = [0u8; SYMBOL_CAP];
        for (dst, &c) in bytes.iter_mut().zip(b) {
            if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                return None;
            }
            *dst = c.to_ascii_uppercase();
        }
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    #[inline]
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_bytes(s.as_bytes())
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `from_bytes`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_and_bounds() {
        assert_eq!(Symbol::parse("btcusdt").unwrap().as_str(), "BTCUSDT");
        assert_eq!(
            Symbol::parse("btcbusd_210129").unwrap().as_str(),
            "BTCBUSD_210129"
        );
        assert!(Symbol::parse("").is_none());
        assert!(Symbol::parse("BTC USDT").is_none());
        assert!(Symbol::parse(&"X".repeat(SYMBOL_CAP + 1)).is_none());
        assert_eq!(Symbol::parse("ETHUSDT"), Symbol::parse("ethusdt"));
    }
}
