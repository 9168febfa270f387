//! Reading values off a simd-json tape: the field readers every venue decoder is built from.
//!
//! Hot path: each reader looks at one tape value and returns a copy or a borrow of it; nothing
//! allocates. Prices and sizes are parsed exactly ([`Price`], [`Qty`]: a ninth decimal or an overflow
//! is an error, never a rounding). Every error names the message kind and the field, so a malformed
//! frame is counted under the right kind and its log line says what was wrong.
//!
//! Depth levels are not copied: [`Levels`] keeps the tape array and parses `[price, qty]` pairs as
//! the book consumes them.

use qalpha_engine::{Price, Qty, Symbol};
use simd_json::prelude::*;
use simd_json::tape::{Array, Value};

use crate::stats::{DecodeError, MsgKind};

/// Fixed-point newtypes constructible from raw `10^-8` units.
pub(crate) trait FromFixed {
    fn from_fixed(v: i64) -> Self;
}

impl FromFixed for Price {
    fn from_fixed(v: i64) -> Self {
        Price(v)
    }
}

impl FromFixed for Qty {
    fn from_fixed(v: i64) -> Self {
        Qty(v)
    }
}

/// An exact decimal sent as a string (`"63947.40"`): venues quote prices and sizes as strings so
/// that no float ever touches them.
#[inline]
pub(crate) fn dec<T: FromFixed>(
    v: Value<'_, '_>,
    kind: MsgKind,
    what: &'static str,
) -> Result<T, DecodeError> {
    let s = v.as_str().ok_or(DecodeError::new(kind, what))?;
    qalpha_engine::decimal::parse_fixed(s.as_bytes())
        .map(T::from_fixed)
        .map_err(|_| DecodeError::new(kind, what))
}

/// An unsigned integer sent as a JSON number (ids and times; update ids exceed 2^32, order ids 2^53).
#[inline]
pub(crate) fn num(v: Value<'_, '_>, kind: MsgKind, what: &'static str) -> Result<u64, DecodeError> {
    v.as_u64().ok_or(DecodeError::new(kind, what))
}

/// An unsigned integer sent as a JSON number or as a decimal string (`"1680681600000"`): Bybit sends
/// some times as strings (`nextFundingTime`).
#[inline]
pub(crate) fn uint(
    v: Value<'_, '_>,
    kind: MsgKind,
    what: &'static str,
) -> Result<u64, DecodeError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    v.as_str()
        .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::new(kind, what))
}

/// An instrument symbol (`"BTCUSDT"`), stored inline.
#[inline]
pub(crate) fn sym(v: Value<'_, '_>, kind: MsgKind) -> Result<Symbol, DecodeError> {
    v.as_str()
        .and_then(Symbol::parse)
        .ok_or(DecodeError::new(kind, "bad symbol"))
}

/// A field the message cannot do without: `what` says which one is missing (`"missing u"`).
pub(crate) fn req<T>(v: Option<T>, kind: MsgKind, what: &'static str) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::new(kind, what))
}

/// `[[price, qty], …]` on the tape, parsed lazily (a quantity of `"0"` deletes the level).
#[derive(Clone, Copy)]
pub struct Levels<'t, 'i> {
    arr: Option<Array<'t, 'i>>,
    kind: MsgKind,
}

impl std::fmt::Debug for Levels<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Levels({})", self.len())
    }
}

impl<'t, 'i> Levels<'t, 'i> {
    /// An empty level list.
    pub fn empty(kind: MsgKind) -> Self {
        Self { arr: None, kind }
    }

    /// The level array of a `kind` message; an error if `v` is not an array.
    #[inline]
    pub(crate) fn from_tape(v: Value<'t, 'i>, kind: MsgKind) -> Result<Self, DecodeError> {
        match v.as_array() {
            Some(arr) => Ok(Self {
                arr: Some(arr),
                kind,
            }),
            None => Err(DecodeError::new(kind, "levels are not an array")),
        }
    }

    pub fn len(&self) -> usize {
        self.arr.map_or(0, |a| a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates `(price, qty)`; a malformed level yields an error (and the caller must treat the
    /// whole update as lost).
    pub fn iter(&self) -> impl Iterator<Item = Result<(Price, Qty), DecodeError>> + 't {
        let kind = self.kind;
        self.arr
            .into_iter()
            .flat_map(|a| a.iter())
            .map(move |lvl| parse_level(lvl, kind))
    }
}

/// One `[price, qty]` level.
#[inline]
fn parse_level(lvl: Value<'_, '_>, kind: MsgKind) -> Result<(Price, Qty), DecodeError> {
    let a = lvl
        .as_array()
        .ok_or(DecodeError::new(kind, "level is not an array"))?;
    let mut it = a.iter();
    let (Some(p), Some(q)) = (it.next(), it.next()) else {
        return Err(DecodeError::new(kind, level_shape_error(kind)));
    };
    Ok((
        dec(p, kind, "level price")?,
        dec(q, kind, level_qty_error(kind))?,
    ))
}

// Bybit's documentation calls a level's quantity its "size" (Binance: "qty"); the log line uses the
// venue's own word so it can be matched against the venue's docs.
const fn level_shape_error(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::OrderBook => "level needs [price, size]",
        _ => "level needs [price, qty]",
    }
}

const fn level_qty_error(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::OrderBook => "level size",
        _ => "level qty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonParser;

    fn with<R>(json: &str, f: impl FnOnce(Value<'_, '_>) -> R) -> R {
        let mut p = JsonParser::new(256);
        p.parse(json.as_bytes(), f).expect("valid JSON")
    }

    #[test]
    fn integers_as_numbers_or_strings() {
        const K: MsgKind = MsgKind::Ticker;
        with(
            r#"[1680681600000, "1680681600000", "", "-1", "1.5"]"#,
            |v| {
                let a: Vec<_> = v.as_array().unwrap().iter().collect();
                assert_eq!(num(a[0], K, "n"), Ok(1_680_681_600_000));
                // `num` takes numbers only (Binance); `uint` also digit strings (Bybit).
                assert!(num(a[1], K, "n").is_err());
                assert_eq!(uint(a[1], K, "n"), Ok(1_680_681_600_000));
                for bad in &a[2..] {
                    assert_eq!(uint(*bad, K, "n"), Err(DecodeError::new(K, "n")));
                }
            },
        );
    }

    #[test]
    fn decimals_are_exact_or_errors() {
        const K: MsgKind = MsgKind::Trade;
        with(r#"["63947.40", "0.123456789", 63947.4]"#, |v| {
            let a: Vec<_> = v.as_array().unwrap().iter().collect();
            assert_eq!(
                dec::<Price>(a[0], K, "p"),
                Ok(Price::parse("63947.4").unwrap())
            );
            // A ninth decimal is not rounded away; a JSON number is not a venue decimal.
            assert_eq!(dec::<Qty>(a[1], K, "q"), Err(DecodeError::new(K, "q")));
            assert_eq!(dec::<Price>(a[2], K, "p"), Err(DecodeError::new(K, "p")));
        });
    }

    #[test]
    fn levels_parse_lazily_and_name_the_venue_field() {
        with(r#"[["1.5","2"],["3"],5,["x","1"]]"#, |v| {
            let l = Levels::from_tape(v, MsgKind::DepthUpdate).unwrap();
            assert_eq!(l.len(), 4);
            let r: Vec<_> = l.iter().collect();
            assert_eq!(
                r[0],
                Ok((Price::parse("1.5").unwrap(), Qty::parse("2").unwrap()))
            );
            let what: Vec<_> = r[1..].iter().map(|e| e.unwrap_err().what).collect();
            assert_eq!(
                what,
                [
                    "level needs [price, qty]",
                    "level is not an array",
                    "level price"
                ]
            );
            let bybit = Levels::from_tape(v, MsgKind::OrderBook).unwrap();
            let e = bybit.iter().nth(1).unwrap().unwrap_err();
            assert_eq!(
                (e.kind, e.what),
                (MsgKind::OrderBook, "level needs [price, size]")
            );
        });
        with(r#"{"b":[]}"#, |v| {
            let e = Levels::from_tape(v, MsgKind::OrderBook).unwrap_err();
            assert_eq!(e.what, "levels are not an array");
        });
        assert!(Levels::empty(MsgKind::DepthSnapshot).is_empty());
    }

    #[test]
    fn symbols_and_required_fields() {
        const K: MsgKind = MsgKind::DepthUpdate;
        with(r#"["BTCUSDT", 7]"#, |v| {
            let a: Vec<_> = v.as_array().unwrap().iter().collect();
            assert_eq!(sym(a[0], K).unwrap().as_str(), "BTCUSDT");
            assert_eq!(sym(a[1], K), Err(DecodeError::new(K, "bad symbol")));
        });
        assert_eq!(req(Some(1), K, "missing u"), Ok(1));
        assert_eq!(
            req::<u64>(None, K, "missing u"),
            Err(DecodeError::new(K, "missing u"))
        );
    }
}
