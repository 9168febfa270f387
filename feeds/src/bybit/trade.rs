//! Bybit `publicTrade.SYM` and `liquidation` / `allLiquidation.SYM` elements.
//!
//! A frame carries an array of trades (up to 1024) or liquidations; the decoder hands the array over
//! and the feed decodes and emits one element at a time, so nothing is copied or collected. Trade
//! ids are UUID strings and are mapped to stable `u64`s ([`trade_id_hash`]).

use qalpha_engine::event::{Liquidation, Side, Trade, TradeKind};
use qalpha_engine::{Price, Qty, Symbol};
use simd_json::prelude::*;
use simd_json::tape::{Array, Object, Value};

use crate::stats::{DecodeError, MsgKind};
use crate::tape::{dec, req, sym, uint};

/// The trades of one `publicTrade` frame, decoded one by one as the feed emits them.
#[derive(Clone, Copy)]
pub struct Trades<'t, 'i> {
    /// Envelope `ts`, ms.
    pub exch_ms: u64,
    /// The symbol from the topic, used when an element lacks `s`.
    pub topic_symbol: Symbol,
    pub(super) arr: Array<'t, 'i>,
}

impl std::fmt::Debug for Trades<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trades({} at {})", self.len(), self.exch_ms)
    }
}

impl<'t, 'i> Trades<'t, 'i> {
    pub fn len(&self) -> usize {
        self.arr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arr.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Result<(Symbol, Trade), DecodeError>> + 't {
        let fallback = self.topic_symbol;
        self.arr.iter().map(move |v| decode_trade(v, fallback))
    }
}

/// The liquidations of one frame: one object (`liquidation`) or an array (`allLiquidation`).
#[derive(Clone, Copy)]
pub struct Liquidations<'t, 'i> {
    /// Envelope `ts`, ms.
    pub exch_ms: u64,
    pub topic_symbol: Symbol,
    /// `liquidation`: the data object.
    pub(super) one: Option<Value<'t, 'i>>,
    /// `allLiquidation`: the data array.
    pub(super) many: Option<Array<'t, 'i>>,
}

impl std::fmt::Debug for Liquidations<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.many.map_or(0, |a| a.len()) + usize::from(self.one.is_some());
        write!(f, "Liquidations({n} at {})", self.exch_ms)
    }
}

impl<'t, 'i> Liquidations<'t, 'i> {
    pub fn iter(&self) -> impl Iterator<Item = Result<(Symbol, Liquidation), DecodeError>> + 't {
        let fallback = self.topic_symbol;
        self.one
            .into_iter()
            .chain(self.many.into_iter().flat_map(|a| a.iter()))
            .map(move |v| {
                v.as_object()
                    .ok_or(DecodeError::new(
                        MsgKind::Liquidation,
                        "element is not an object",
                    ))
                    .and_then(|o| decode_liquidation(o, fallback))
            })
    }
}

/// A stable 64-bit id for Bybit's string trade ids (UUIDs such as
/// `0cbf2330-952d-5d03-a462-4bf826c867af`): FNV-1a over the id's bytes.
///
/// `Trade::trade_id` is a `u64` so events stay `Copy`; the hash is stable across runs, builds and
/// machines (no random seed), so the same trade gets the same id in live and replayed data.
/// Collisions are possible in principle (2^-64 per pair) and harmless: the id is for de-duplication
/// and logs, never for money.
pub fn trade_id_hash(id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    id.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

fn side(v: Value<'_, '_>, kind: MsgKind, what: &'static str) -> Result<Side, DecodeError> {
    match v.as_str() {
        Some("Buy") => Ok(Side::Buy),
        Some("Sell") => Ok(Side::Sell),
        _ => Err(DecodeError::new(kind, what)),
    }
}

fn decode_trade(v: Value<'_, '_>, fallback: Symbol) -> Result<(Symbol, Trade), DecodeError> {
    const K: MsgKind = MsgKind::PublicTrade;
    let obj = v
        .as_object()
        .ok_or(DecodeError::new(K, "trade is not an object"))?;
    let (mut s, mut t_ms, mut aggressor, mut p, mut q, mut id, mut block) =
        (None, None, None, None, None, None, false);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "T" => t_ms = Some(uint(v, K, "T")?),
            // `S` is the taker's side.
            "S" => aggressor = Some(side(v, K, "S")?),
            "p" => p = Some(dec(v, K, "p")?),
            "v" => q = Some(dec(v, K, "v")?),
            "i" => id = Some(trade_id_hash(v.as_str().ok_or(DecodeError::new(K, "i"))?)),
            "BT" => block = v.as_bool().ok_or(DecodeError::new(K, "BT"))?,
            _ => {}
        }
    }
    let id = req(id, K, "missing i")?;
    let trade = Trade {
        trade_id: id,
        last_trade_id: id,
        px: req(p, K, "missing p")?,
        qty: req(q, K, "missing v")?,
        aggressor: req(aggressor, K, "missing S")?,
        // Block trades are negotiated off the book: keep them apart from book prints.
        kind: if block {
            TradeKind::Other
        } else {
            TradeKind::Market
        },
        trade_time_ms: req(t_ms, K, "missing T")?,
    };
    Ok((s.unwrap_or(fallback), trade))
}

/// One liquidation. `liquidation.SYM` spells the keys out (`price`, `side`, `size`, `symbol`,
/// `updatedTime`); `allLiquidation.SYM` uses the trade letters (`p`, `S`, `v`, `s`, `T`).
///
/// Bybit's side is the *position's* side ("Buy": a long was liquidated). The engine's
/// [`Liquidation::side`] is the liquidation *order's* side, as Binance's `forceOrder` reports it, so
/// the side is flipped: a liquidated long is sold. Bybit reports the bankruptcy price and size only:
/// `avg_px` and `filled_qty` stay zero (not sent), as Binance's do when absent.
fn decode_liquidation(
    obj: Object<'_, '_>,
    fallback: Symbol,
) -> Result<(Symbol, Liquidation), DecodeError> {
    const K: MsgKind = MsgKind::Liquidation;
    let (mut s, mut position, mut p, mut q, mut t) = (None, None, None, None, 0);
    for (k, v) in obj.iter() {
        match k {
            "s" | "symbol" => s = Some(sym(v, K)?),
            "S" | "side" => position = Some(side(v, K, "side")?),
            "p" | "price" => p = Some(dec(v, K, "price")?),
            "v" | "size" => q = Some(dec(v, K, "size")?),
            "T" | "updatedTime" => t = uint(v, K, "time")?,
            _ => {}
        }
    }
    let liq = Liquidation {
        side: match req(position, K, "missing side")? {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        },
        px: req(p, K, "missing price")?,
        avg_px: Price::ZERO,
        qty: req(q, K, "missing size")?,
        filled_qty: Qty::ZERO,
        trade_time_ms: t,
    };
    Ok((s.unwrap_or(fallback), liq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bybit::decode::tests::{px, qty, with};
    use crate::bybit::decode::BybitMsg;

    #[test]
    fn trades_hash_their_uuid_and_keep_the_taker_side() {
        let f = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617},{"T":1,"S":"Sell","v":"2","p":"3","i":"x","BT":true}]}"#;
        with(f, |m| {
            let BybitMsg::Trades(t) = m.unwrap() else {
                panic!()
            };
            let all: Vec<_> = t.iter().map(Result::unwrap).collect();
            assert_eq!(all.len(), 2);
            let (s, a) = all[0];
            assert_eq!(s.as_str(), "BTCUSDT");
            assert_eq!(
                a.trade_id,
                trade_id_hash("20f43950-d8dd-5b31-9112-a178eb6023af")
            );
            assert_eq!((a.px, a.qty), (px("16578.5"), qty("0.001")));
            assert_eq!((a.aggressor, a.kind), (Side::Buy, TradeKind::Market));
            assert_eq!(a.trade_time_ms, 1672304486865);
            // No `s`: the topic's symbol; `BT:true`: a block trade.
            assert_eq!(all[1].0.as_str(), "BTCUSDT");
            assert_eq!(
                (all[1].1.aggressor, all[1].1.kind),
                (Side::Sell, TradeKind::Other)
            );
        });
    }

    #[test]
    fn fnv1a_is_the_reference_function() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(trade_id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(trade_id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(trade_id_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn liquidations_both_spellings_flip_to_order_side() {
        let one = r#"{"data":{"price":"0.03803","side":"Buy","size":"1637","symbol":"GALAUSDT","updatedTime":1673251091822},"topic":"liquidation.GALAUSDT","ts":1673251091822,"type":"snapshot"}"#;
        with(one, |m| {
            let BybitMsg::Liquidations(l) = m.unwrap() else {
                panic!()
            };
            let all: Vec<_> = l.iter().map(Result::unwrap).collect();
            assert_eq!(all.len(), 1);
            let (s, l) = all[0];
            assert_eq!(s.as_str(), "GALAUSDT");
            assert_eq!(
                (l.side, l.px, l.qty),
                (Side::Sell, px("0.03803"), qty("1637"))
            );
            assert_eq!(l.trade_time_ms, 1673251091822);
        });
        let many = r#"{"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,"data":[{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}"#;
        with(many, |m| {
            let BybitMsg::Liquidations(l) = m.unwrap() else {
                panic!()
            };
            let all: Vec<_> = l.iter().map(Result::unwrap).collect();
            assert_eq!(all[0].1.side, Side::Buy);
            assert_eq!(all[0].1.trade_time_ms, 1740480207110);
        });
    }
}
