//! Binance USD-M frame decoding on a simd-json tape.
//!
//! Each object is walked once, matching keys as they come (no per-key lookups), so unknown and
//! newly added fields (`st`, `ps`, `nq`, `ap`, …) are skipped at no cost. Prices and sizes are
//! parsed exactly ([`Price`], [`Qty`]); ids and times as `u64` (update ids exceed 2^32, order ids
//! 2^53). Depth levels are not copied: [`Levels`] iterates the tape and the book consumes it.

use qalpha_engine::event::{
    Kline, Liquidation, MarkPrice, MarketPayload, Side, TopOfBook, Trade, TradeKind,
};
use qalpha_engine::{Price, Qty, Symbol};
use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

use crate::stats::{DecodeError, MsgKind};
pub use crate::tape::Levels;
use crate::tape::{dec, num, req, sym};

/// A decoded Binance message, borrowing the parser's tape.
#[derive(Debug)]
pub enum BinanceMsg<'t, 'i> {
    /// `depthUpdate` (diff, or partial `@depth<N>` when `partial`).
    Depth(DepthUpdate<'t, 'i>),
    /// REST `GET /fapi/v1/depth` body.
    Snapshot(DepthSnapshot<'t, 'i>),
    /// Any other market event, already in engine form.
    Event {
        kind: MsgKind,
        symbol: Symbol,
        exch_ms: u64,
        payload: MarketPayload,
    },
    /// Subscription responses (`{"result":null,"id":1}`) and error replies (`{"code":..,"msg":..}`).
    Control {
        id: Option<u64>,
        error_code: Option<i64>,
    },
    /// A well-formed event this engine does not use (`24hrTicker`, `miniTicker`, …).
    Ignored,
}

/// A `depthUpdate` event.
#[derive(Debug)]
pub struct DepthUpdate<'t, 'i> {
    pub symbol: Symbol,
    /// Event time `E`, ms.
    pub exch_ms: u64,
    /// Transaction time `T`, ms.
    pub txn_ms: u64,
    /// `U`: first update id in the event.
    pub first_id: u64,
    /// `u`: final update id in the event.
    pub last_id: u64,
    /// `pu`: the previous event's `u` (always present on USD-M).
    pub prev_last_id: Option<u64>,
    pub bids: Levels<'t, 'i>,
    pub asks: Levels<'t, 'i>,
    /// True for the partial-depth streams (`@depth5/10/20`), which carry a full top-N.
    pub partial: bool,
}

/// The REST depth snapshot.
#[derive(Debug)]
pub struct DepthSnapshot<'t, 'i> {
    pub last_update_id: u64,
    pub exch_ms: u64,
    pub txn_ms: u64,
    pub bids: Levels<'t, 'i>,
    pub asks: Levels<'t, 'i>,
}

/// Decodes a Binance USD-M frame (combined envelope, raw event, REST snapshot or control reply).
pub fn decode<'t, 'i>(root: Value<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    let obj = root.as_object().ok_or(DecodeError::new(
        MsgKind::Unknown,
        "frame is not a JSON object",
    ))?;
    let mut stream: Option<&str> = None;
    let mut data: Option<Value<'t, 'i>> = None;
    let mut is_event = false;
    let mut is_snapshot = false;
    let mut is_control = false;
    for (k, v) in obj.iter() {
        match k {
            "stream" => stream = v.into_string(),
            "data" => data = Some(v),
            "e" => is_event = true,
            "lastUpdateId" => is_snapshot = true,
            "result" | "id" | "code" => is_control = true,
            _ => {}
        }
    }
    if let Some(data) = data {
        let partial = stream.is_some_and(is_partial_depth_stream);
        let inner = data
            .as_object()
            .ok_or(DecodeError::new(MsgKind::Unknown, "data is not an object"))?;
        return decode_object(inner, partial);
    }
    if is_event || is_snapshot {
        return decode_object(obj, false);
    }
    if is_control {
        let mut id = None;
        let mut error_code = None;
        for (k, v) in obj.iter() {
            match k {
                "id" => id = v.as_u64(),
                "code" => error_code = v.as_i64(),
                _ => {}
            }
        }
        return Ok(BinanceMsg::Control { id, error_code });
    }
    Err(DecodeError::new(
        MsgKind::Unknown,
        "unrecognised message shape",
    ))
}

/// `btcusdt@depth5`, `btcusdt@depth20@100ms` (not `@depth`, `@depth@100ms`).
fn is_partial_depth_stream(s: &str) -> bool {
    match s.find("@depth") {
        Some(i) => s.as_bytes().get(i + 6).is_some_and(u8::is_ascii_digit),
        None => false,
    }
}

fn decode_object<'t, 'i>(
    obj: Object<'t, 'i>,
    partial: bool,
) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    let mut event: Option<&str> = None;
    let mut snapshot = false;
    for (k, v) in obj.iter() {
        match k {
            "e" => event = v.into_string(),
            "lastUpdateId" => snapshot = true,
            _ => {}
        }
    }
    match event {
        Some("depthUpdate") => decode_depth(obj, partial).map(BinanceMsg::Depth),
        Some("bookTicker") => decode_book_ticker(obj),
        Some("trade") => decode_trade(obj),
        Some("aggTrade") => decode_agg_trade(obj),
        Some("markPriceUpdate") => decode_mark_price(obj),
        Some("kline") => decode_kline(obj),
        Some("forceOrder") => decode_force_order(obj),
        Some(_) => Ok(BinanceMsg::Ignored),
        None if snapshot => decode_snapshot(obj).map(BinanceMsg::Snapshot),
        None => Ok(BinanceMsg::Ignored),
    }
}

fn decode_depth<'t, 'i>(
    obj: Object<'t, 'i>,
    partial: bool,
) -> Result<DepthUpdate<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::DepthUpdate;
    let (mut s, mut e_ms, mut t_ms, mut first, mut last, mut pu) = (None, 0, 0, None, None, None);
    let (mut b, mut a) = (None, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "T" => t_ms = num(v, K, "T")?,
            "U" => first = Some(num(v, K, "U")?),
            "u" => last = Some(num(v, K, "u")?),
            "pu" => pu = Some(num(v, K, "pu")?),
            "b" => b = Some(Levels::from_tape(v, K)?),
            "a" => a = Some(Levels::from_tape(v, K)?),
            _ => {}
        }
    }
    let last = req(last, K, "missing u")?;
    Ok(DepthUpdate {
        symbol: req(s, K, "missing s")?,
        exch_ms: e_ms,
        txn_ms: t_ms,
        first_id: first.unwrap_or(last),
        last_id: last,
        prev_last_id: pu,
        bids: req(b, K, "missing b")?,
        asks: req(a, K, "missing a")?,
        partial,
    })
}

fn decode_snapshot<'t, 'i>(obj: Object<'t, 'i>) -> Result<DepthSnapshot<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::DepthSnapshot;
    let (mut id, mut e_ms, mut t_ms, mut b, mut a) = (None, 0, 0, None, None);
    for (k, v) in obj.iter() {
        match k {
            "lastUpdateId" => id = Some(num(v, K, "lastUpdateId")?),
            "E" => e_ms = num(v, K, "E")?,
            "T" => t_ms = num(v, K, "T")?,
            "bids" => b = Some(Levels::from_tape(v, K)?),
            "asks" => a = Some(Levels::from_tape(v, K)?),
            _ => {}
        }
    }
    Ok(DepthSnapshot {
        last_update_id: req(id, K, "missing lastUpdateId")?,
        exch_ms: e_ms,
        txn_ms: t_ms,
        bids: req(b, K, "missing bids")?,
        asks: req(a, K, "missing asks")?,
    })
}

fn event<'t, 'i>(
    kind: MsgKind,
    symbol: Option<Symbol>,
    exch_ms: u64,
    payload: MarketPayload,
) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    Ok(BinanceMsg::Event {
        kind,
        symbol: req(symbol, kind, "missing s")?,
        exch_ms,
        payload,
    })
}

fn decode_book_ticker<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::BookTicker;
    let (mut s, mut e_ms, mut u) = (None, 0, None);
    let (mut bp, mut bq, mut ap, mut aq) = (None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "u" => u = Some(num(v, K, "u")?),
            "b" => bp = Some(dec(v, K, "b")?),
            "B" => bq = Some(dec(v, K, "B")?),
            "a" => ap = Some(dec(v, K, "a")?),
            "A" => aq = Some(dec(v, K, "A")?),
            _ => {}
        }
    }
    let top = TopOfBook {
        update_id: req(u, K, "missing u")?,
        bid_px: req(bp, K, "missing b")?,
        bid_qty: req(bq, K, "missing B")?,
        ask_px: req(ap, K, "missing a")?,
        ask_qty: req(aq, K, "missing A")?,
    };
    event(K, s, e_ms, MarketPayload::Quote(top))
}

fn aggressor(buyer_is_maker: bool) -> Side {
    // `m == true`: the buyer was the maker, so the taker (aggressor) sold.
    if buyer_is_maker {
        Side::Sell
    } else {
        Side::Buy
    }
}

fn decode_trade<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::Trade;
    let (mut s, mut e_ms, mut t_ms, mut id, mut p, mut q, mut m) =
        (None, 0, 0, None, None, None, None);
    let mut tk = TradeKind::Market;
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "T" => t_ms = num(v, K, "T")?,
            "t" => id = Some(num(v, K, "t")?),
            "p" => p = Some(dec(v, K, "p")?),
            "q" => q = Some(dec(v, K, "q")?),
            "m" => m = Some(v.as_bool().ok_or(DecodeError::new(K, "m"))?),
            "X" => {
                tk = match v.as_str() {
                    Some("MARKET") => TradeKind::Market,
                    Some("INSURANCE_FUND") => TradeKind::InsuranceFund,
                    Some("ADL") => TradeKind::Adl,
                    Some(_) => TradeKind::Other,
                    None => return Err(DecodeError::new(K, "X")),
                }
            }
            _ => {}
        }
    }
    let id = req(id, K, "missing t")?;
    let t = Trade {
        trade_id: id,
        last_trade_id: id,
        px: req(p, K, "missing p")?,
        qty: req(q, K, "missing q")?,
        aggressor: aggressor(req(m, K, "missing m")?),
        kind: tk,
        trade_time_ms: if t_ms != 0 { t_ms } else { e_ms },
    };
    event(K, s, e_ms, MarketPayload::Trade(t))
}

fn decode_agg_trade<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::AggTrade;
    let (mut s, mut e_ms, mut t_ms, mut f, mut l, mut p, mut q, mut m) =
        (None, 0, 0, None, None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "T" => t_ms = num(v, K, "T")?,
            "f" => f = Some(num(v, K, "f")?),
            "l" => l = Some(num(v, K, "l")?),
            "p" => p = Some(dec(v, K, "p")?),
            "q" => q = Some(dec(v, K, "q")?),
            "m" => m = Some(v.as_bool().ok_or(DecodeError::new(K, "m"))?),
            _ => {}
        }
    }
    let first = req(f, K, "missing f")?;
    let t = Trade {
        trade_id: first,
        last_trade_id: l.unwrap_or(first),
        px: req(p, K, "missing p")?,
        qty: req(q, K, "missing q")?,
        aggressor: aggressor(req(m, K, "missing m")?),
        kind: TradeKind::Aggregated,
        trade_time_ms: if t_ms != 0 { t_ms } else { e_ms },
    };
    event(K, s, e_ms, MarketPayload::Trade(t))
}

fn decode_mark_price<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::MarkPrice;
    let (mut s, mut e_ms, mut p, mut i, mut r, mut t) = (None, 0, None, Price::ZERO, Qty::ZERO, 0);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "p" => p = Some(dec(v, K, "p")?),
            "i" => i = dec(v, K, "i")?,
            // Delivery contracts send an empty funding rate.
            "r" if v.as_str() == Some("") => {}
            "r" => r = dec(v, K, "r")?,
            "T" => t = num(v, K, "T")?,
            _ => {}
        }
    }
    let mp = MarkPrice {
        mark_px: req(p, K, "missing p")?,
        index_px: i,
        funding_rate: r,
        next_funding_ms: t,
    };
    event(K, s, e_ms, MarketPayload::MarkPrice(mp))
}

/// `1m` → 60 s, …, `1M` → 30 days (Binance's calendar month, approximated for bucketing only).
pub fn interval_seconds(s: &str) -> Option<u32> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u32 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "M" => 2_592_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn decode_kline<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::Kline;
    let (mut s, mut e_ms, mut body) = (None, 0, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "E" => e_ms = num(v, K, "E")?,
            "k" => {
                body = Some(
                    v.as_object()
                        .ok_or(DecodeError::new(K, "k is not an object"))?,
                )
            }
            _ => {}
        }
    }
    let body = req(body, K, "missing k")?;
    let mut kl = Kline {
        open_ms: 0,
        interval_s: 0,
        trades: 0,
        open: Price::ZERO,
        high: Price::ZERO,
        low: Price::ZERO,
        close: Price::ZERO,
        volume: Qty::ZERO,
        taker_buy_volume: Qty::ZERO,
        closed: false,
    };
    let mut seen = 0u8;
    let mut close_ms = 0;
    for (k, v) in body.iter() {
        match k {
            "t" => kl.open_ms = num(v, K, "k.t")?,
            "T" => close_ms = num(v, K, "k.T")?,
            "i" => {
                kl.interval_s = v
                    .as_str()
                    .and_then(interval_seconds)
                    .ok_or(DecodeError::new(K, "k.i"))?
            }
            "o" => (kl.open, seen) = (dec(v, K, "k.o")?, seen | 1),
            "h" => (kl.high, seen) = (dec(v, K, "k.h")?, seen | 2),
            "l" => (kl.low, seen) = (dec(v, K, "k.l")?, seen | 4),
            "c" => (kl.close, seen) = (dec(v, K, "k.c")?, seen | 8),
            "v" => kl.volume = dec(v, K, "k.v")?,
            "V" => kl.taker_buy_volume = dec(v, K, "k.V")?,
            "n" => {
                kl.trades =
                    u32::try_from(num(v, K, "k.n")?).map_err(|_| DecodeError::new(K, "k.n"))?
            }
            "x" => kl.closed = v.as_bool().ok_or(DecodeError::new(K, "k.x"))?,
            _ => {}
        }
    }
    if seen != 15 || kl.interval_s == 0 {
        return Err(DecodeError::new(K, "kline lacks OHLC or interval"));
    }
    if close_ms != 0 && close_ms != kl.close_ms() && kl.interval_s < 2_592_000 {
        return Err(DecodeError::new(K, "k.T does not match k.t + interval"));
    }
    event(K, s, e_ms, MarketPayload::Kline(kl))
}

fn decode_force_order<'t, 'i>(obj: Object<'t, 'i>) -> Result<BinanceMsg<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::ForceOrder;
    let (mut e_ms, mut body) = (0, None);
    for (k, v) in obj.iter() {
        match k {
            "E" => e_ms = num(v, K, "E")?,
            "o" => {
                body = Some(
                    v.as_object()
                        .ok_or(DecodeError::new(K, "o is not an object"))?,
                )
            }
            _ => {}
        }
    }
    let body = req(body, K, "missing o")?;
    let (mut s, mut side, mut p, mut ap, mut q, mut z, mut t) =
        (None, None, None, Price::ZERO, None, Qty::ZERO, 0);
    for (k, v) in body.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "S" => {
                side = Some(match v.as_str() {
                    Some("BUY") => Side::Buy,
                    Some("SELL") => Side::Sell,
                    _ => return Err(DecodeError::new(K, "o.S")),
                })
            }
            "p" => p = Some(dec(v, K, "o.p")?),
            "ap" => ap = dec(v, K, "o.ap")?,
            "q" => q = Some(dec(v, K, "o.q")?),
            "z" => z = dec(v, K, "o.z")?,
            "T" => t = num(v, K, "o.T")?,
            _ => {}
        }
    }
    let liq = Liquidation {
        side: req(side, K, "missing o.S")?,
        px: req(p, K, "missing o.p")?,
        avg_px: ap,
        qty: req(q, K, "missing o.q")?,
        filled_qty: z,
        trade_time_ms: t,
    };
    event(K, s, e_ms, MarketPayload::Liquidation(liq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonParser;

    fn with<R>(frame: &str, f: impl FnOnce(Result<BinanceMsg<'_, '_>, DecodeError>) -> R) -> R {
        let mut p = JsonParser::new(256);
        p.parse(frame.as_bytes(), |v| f(decode(v)))
            .expect("valid JSON")
    }

    #[test]
    fn depth_update_combined() {
        let f = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1721347022504,"T":1721347022504,"s":"BTCUSDT","U":4984028367545,"u":4984028370730,"pu":4984028367494,"b":[["1000.00","569.567"],["5000.00","2.024"]],"a":[["63947.40","0.109"],["63951.10","0.000"]],"zz":{"new":[1,2]}}}"#;
        with(f, |m| {
            let BinanceMsg::Depth(d) = m.unwrap() else {
                panic!()
            };
            assert_eq!(d.symbol.as_str(), "BTCUSDT");
            assert_eq!(
                (d.first_id, d.last_id, d.prev_last_id),
                (4984028367545, 4984028370730, Some(4984028367494))
            );
            assert!(!d.partial);
            let bids: Vec<_> = d.bids.iter().map(Result::unwrap).collect();
            assert_eq!(
                bids[0],
                (
                    Price::parse("1000").unwrap(),
                    Qty::parse("569.567").unwrap()
                )
            );
            let asks: Vec<_> = d.asks.iter().map(Result::unwrap).collect();
            assert_eq!(asks[1].1, Qty::ZERO);
        });
    }

    #[test]
    fn partial_depth_stream_is_flagged() {
        assert!(is_partial_depth_stream("btcusdt@depth20@100ms"));
        assert!(is_partial_depth_stream("btcusdt@depth5"));
        assert!(!is_partial_depth_stream("btcusdt@depth@100ms"));
        assert!(!is_partial_depth_stream("btcusdt@depth"));
    }

    #[test]
    fn control_replies() {
        with(r#"{"result":null,"id":1}"#, |m| {
            assert!(matches!(
                m.unwrap(),
                BinanceMsg::Control {
                    id: Some(1),
                    error_code: None
                }
            ))
        });
        with(r#"{"code":2,"msg":"Invalid request"}"#, |m| {
            assert!(matches!(
                m.unwrap(),
                BinanceMsg::Control {
                    error_code: Some(2),
                    ..
                }
            ))
        });
    }

    #[test]
    fn malformed_shapes_are_errors_not_panics() {
        for f in [
            r#"[1,2,3]"#,
            r#"{"foo":1}"#,
            r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1.0"]],"a":[]}"#,
            r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"pu":0,"b":[],"a":[]}"#,
            r#"{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"1.0","B":"x","a":"2","A":"1"}"#,
            r#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1e3","q":"1","m":true}"#,
            r#"{"e":"kline","s":"X","k":{"i":"1x"}}"#,
            r#"{"e":"forceOrder","o":{"s":"BTCUSDT","S":"UP","p":"1","q":"1"}}"#,
            r#"{"stream":"x","data":5}"#,
        ] {
            let r = with(f, |m| match m {
                Ok(BinanceMsg::Depth(d)) => d
                    .bids
                    .iter()
                    .chain(d.asks.iter())
                    .find_map(Result::err)
                    .map(Err)
                    .unwrap_or(Ok(())),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            });
            assert!(r.is_err(), "{f} should be rejected");
        }
    }

    #[test]
    fn interval_parsing() {
        assert_eq!(interval_seconds("1m"), Some(60));
        assert_eq!(interval_seconds("4h"), Some(14_400));
        assert_eq!(interval_seconds("1M"), Some(2_592_000));
        assert_eq!(interval_seconds("m"), None);
        assert_eq!(interval_seconds(""), None);
    }
}
