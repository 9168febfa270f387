//! Bybit v5 linear public frame decoding on a simd-json tape (PROTOCOLS.md §C.2–C.3, DATA.md §3).
//!
//! The envelope is walked once, matching keys as they come: Bybit's key order differs between
//! topics and depths (liquidation frames put `data` first), so nothing relies on it, and unknown or
//! newly added fields (`cts`, `RPI`, `fundingCap`, …) cost nothing. The topic name decides the
//! message; `data` is decoded only after the whole envelope has been seen. Prices and sizes are
//! parsed exactly ([`Price`](qalpha_engine::Price), [`Qty`](qalpha_engine::Qty)) by the shared
//! field readers (`crate::tape`). Depth levels, trades and liquidations are not copied: the
//! book and the feed consume them from the tape, so a frame with 500 levels allocates nothing.
//!
//! Times and sequence numbers are JSON numbers in every real frame, but Bybit sends some times as
//! strings (`nextFundingTime`), so every integer field accepts both spellings.

use qalpha_engine::Symbol;
use simd_json::prelude::*;
use simd_json::tape::Value;

use super::ticker::{decode_ticker_fields, TickerFields};
use super::trade::{Liquidations, Trades};
use crate::stats::{DecodeError, MsgKind};
pub use crate::tape::Levels;
use crate::tape::{req, sym, uint};

/// A decoded Bybit message, borrowing the parser's tape.
#[derive(Debug)]
pub enum BybitMsg<'t, 'i> {
    /// `orderbook.{depth}.SYM`, snapshot or delta.
    Book(BookUpdate<'t, 'i>),
    /// `publicTrade.SYM`: one frame carries up to 1024 trades.
    Trades(Trades<'t, 'i>),
    /// `tickers.SYM`: the fields the frame carries (a delta carries only the changed ones).
    Ticker(TickerUpdate),
    /// `liquidation.SYM` (one object) or `allLiquidation.SYM` (an array).
    Liquidations(Liquidations<'t, 'i>),
    /// Replies to `subscribe`, `unsubscribe`, `ping` and `auth` requests.
    Control(Control),
    /// A well-formed frame this engine does not use (`kline.*`, other topics).
    Ignored,
}

/// An `orderbook.{depth}.SYM` frame.
#[derive(Debug)]
pub struct BookUpdate<'t, 'i> {
    pub symbol: Symbol,
    /// The topic's depth (1, 50, 200, 500, 1000): each depth is its own book with its own `u`.
    pub depth: u16,
    /// `type == "snapshot"`: replace the book; otherwise apply as a delta.
    pub snapshot: bool,
    /// Envelope `ts`: when Bybit's system produced the frame, ms.
    pub exch_ms: u64,
    /// Envelope `cts`: matching-engine time, ms (0 when absent).
    pub engine_ms: u64,
    /// `u`: this topic's update id; +1 per message.
    pub update_id: u64,
    /// `seq`: the cross sequence, comparable between depths of the same symbol.
    pub seq: u64,
    pub bids: Levels<'t, 'i>,
    pub asks: Levels<'t, 'i>,
}

/// A `tickers` frame: which fields it carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickerUpdate {
    pub symbol: Symbol,
    pub snapshot: bool,
    /// Envelope `ts`, ms.
    pub exch_ms: u64,
    /// Envelope `cs`, the cross sequence (0 when absent).
    pub cross_seq: u64,
    pub fields: TickerFields,
}

/// Which request a control reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlOp {
    Subscribe,
    Unsubscribe,
    /// The public streams answer `{"op":"ping"}` with `op:"ping"` and `ret_msg:"pong"`; the private
    /// stream answers with `op:"pong"`. Both mean the connection is alive.
    Pong,
    Auth,
    Other,
}

/// A reply to a request (`{"success":true,"ret_msg":"","conn_id":"…","op":"subscribe"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    pub op: ControlOp,
    /// `success`; absent on the private stream's pong.
    pub success: Option<bool>,
}

impl Control {
    /// A subscription the venue refused (`success:false`, e.g. `ret_msg:"Invalid topic: …"`).
    pub fn is_failed_subscription(&self) -> bool {
        self.op == ControlOp::Subscribe && self.success == Some(false)
    }
}

/// What the topic names.
enum Topic {
    Book { depth: u16, symbol: Symbol },
    Trade(Symbol),
    Ticker(Symbol),
    Liquidation(Symbol),
    Other,
}

fn parse_topic(topic: &str) -> Result<Topic, DecodeError> {
    let (name, rest) = topic.split_once('.').unwrap_or((topic, ""));
    let symbol = |kind, s: &str| Symbol::parse(s).ok_or(DecodeError::new(kind, "bad topic symbol"));
    Ok(match name {
        "orderbook" => {
            const K: MsgKind = MsgKind::OrderBook;
            let (depth, s) = rest
                .split_once('.')
                .ok_or(DecodeError::new(K, "topic is not orderbook.DEPTH.SYMBOL"))?;
            let depth = depth
                .parse::<u16>()
                .ok()
                .filter(|d| *d > 0)
                .ok_or(DecodeError::new(K, "bad topic depth"))?;
            Topic::Book {
                depth,
                symbol: symbol(K, s)?,
            }
        }
        "publicTrade" => Topic::Trade(symbol(MsgKind::PublicTrade, rest)?),
        "tickers" => Topic::Ticker(symbol(MsgKind::Ticker, rest)?),
        "liquidation" | "allLiquidation" => Topic::Liquidation(symbol(MsgKind::Liquidation, rest)?),
        _ => Topic::Other,
    })
}

/// Decodes a Bybit v5 public frame (data frame or control reply).
pub fn decode<'t, 'i>(root: Value<'t, 'i>) -> Result<BybitMsg<'t, 'i>, DecodeError> {
    let obj = root.as_object().ok_or(DecodeError::new(
        MsgKind::Unknown,
        "frame is not a JSON object",
    ))?;
    let (mut topic, mut ty, mut op) = (None, None, None);
    let (mut ts, mut cts, mut cs, mut data, mut success) = (None, None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "topic" => topic = Some(v),
            "type" => ty = Some(v),
            "ts" => ts = Some(v),
            "cts" => cts = Some(v),
            "cs" => cs = Some(v),
            "data" => data = Some(v),
            "op" => op = Some(v),
            "success" => success = Some(v),
            _ => {}
        }
    }
    let Some(topic) = topic else {
        let Some(op) = op else {
            return Err(DecodeError::new(
                MsgKind::Unknown,
                "unrecognised message shape",
            ));
        };
        const K: MsgKind = MsgKind::Control;
        let op = match op.as_str().ok_or(DecodeError::new(K, "op"))? {
            "subscribe" => ControlOp::Subscribe,
            "unsubscribe" => ControlOp::Unsubscribe,
            "ping" | "pong" => ControlOp::Pong,
            "auth" => ControlOp::Auth,
            _ => ControlOp::Other,
        };
        let success = match success {
            Some(v) => Some(v.as_bool().ok_or(DecodeError::new(K, "success"))?),
            None => None,
        };
        return Ok(BybitMsg::Control(Control { op, success }));
    };
    let topic = topic
        .as_str()
        .ok_or(DecodeError::new(MsgKind::Unknown, "topic is not a string"))?;
    let topic = parse_topic(topic)?;
    let kind = match topic {
        Topic::Book { .. } => MsgKind::OrderBook,
        Topic::Trade(_) => MsgKind::PublicTrade,
        Topic::Ticker(_) => MsgKind::Ticker,
        Topic::Liquidation(_) => MsgKind::Liquidation,
        Topic::Other => return Ok(BybitMsg::Ignored),
    };
    let exch_ms = match ts {
        Some(v) => uint(v, kind, "ts")?,
        None => 0,
    };
    let data = req(data, kind, "missing data")?;
    let snapshot = || -> Result<bool, DecodeError> {
        match ty.and_then(|v| v.into_string()) {
            Some("snapshot") => Ok(true),
            Some("delta") => Ok(false),
            _ => Err(DecodeError::new(kind, "type is not snapshot or delta")),
        }
    };
    match topic {
        Topic::Book { depth, symbol } => {
            let engine_ms = match cts {
                Some(v) => uint(v, kind, "cts")?,
                None => 0,
            };
            decode_book(data, depth, symbol, snapshot()?, exch_ms, engine_ms).map(BybitMsg::Book)
        }
        Topic::Trade(topic_symbol) => Ok(BybitMsg::Trades(Trades {
            exch_ms,
            topic_symbol,
            arr: data
                .as_array()
                .ok_or(DecodeError::new(kind, "data is not an array"))?,
        })),
        Topic::Ticker(symbol) => {
            let obj = data
                .as_object()
                .ok_or(DecodeError::new(kind, "data is not an object"))?;
            let (s, fields) = decode_ticker_fields(obj)?;
            Ok(BybitMsg::Ticker(TickerUpdate {
                symbol: s.unwrap_or(symbol),
                snapshot: snapshot()?,
                exch_ms,
                cross_seq: match cs {
                    Some(v) => uint(v, kind, "cs")?,
                    None => 0,
                },
                fields,
            }))
        }
        Topic::Liquidation(topic_symbol) => {
            let many = data.as_array();
            let one = data.is_object().then_some(data);
            if one.is_none() && many.is_none() {
                return Err(DecodeError::new(kind, "data is not an object or array"));
            }
            Ok(BybitMsg::Liquidations(Liquidations {
                exch_ms,
                topic_symbol,
                one,
                many,
            }))
        }
        Topic::Other => Ok(BybitMsg::Ignored),
    }
}

fn decode_book<'t, 'i>(
    data: Value<'t, 'i>,
    depth: u16,
    topic_symbol: Symbol,
    snapshot: bool,
    exch_ms: u64,
    engine_ms: u64,
) -> Result<BookUpdate<'t, 'i>, DecodeError> {
    const K: MsgKind = MsgKind::OrderBook;
    let obj = data
        .as_object()
        .ok_or(DecodeError::new(K, "data is not an object"))?;
    let (mut s, mut u, mut seq, mut b, mut a) = (None, None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => s = Some(sym(v, K)?),
            "u" => u = Some(uint(v, K, "u")?),
            "seq" => seq = Some(uint(v, K, "seq")?),
            "b" => b = Some(Levels::from_tape(v, K)?),
            "a" => a = Some(Levels::from_tape(v, K)?),
            _ => {}
        }
    }
    Ok(BookUpdate {
        symbol: s.unwrap_or(topic_symbol),
        depth,
        snapshot,
        exch_ms,
        engine_ms,
        update_id: req(u, K, "missing u")?,
        // Required: the cross sequence is what ties a rebuilt book to the level-1 quote.
        seq: req(seq, K, "missing seq")?,
        bids: req(b, K, "missing b")?,
        asks: req(a, K, "missing a")?,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::json::JsonParser;
    use qalpha_engine::{Price, Qty};

    /// Decodes `frame` and hands the result to `f` (also used by the `trade` tests).
    pub(in crate::bybit) fn with<R>(
        frame: &str,
        f: impl FnOnce(Result<BybitMsg<'_, '_>, DecodeError>) -> R,
    ) -> R {
        let mut p = JsonParser::new(256);
        p.parse(frame.as_bytes(), |v| f(decode(v)))
            .expect("valid JSON")
    }
    pub(in crate::bybit) fn px(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    pub(in crate::bybit) fn qty(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    #[test]
    fn book_delta_from_the_docs() {
        let f = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],"u":177400507,"seq":66544703342},"cts":1687940967464}"#;
        with(f, |m| {
            let BybitMsg::Book(b) = m.unwrap() else {
                panic!()
            };
            assert_eq!(
                (b.symbol.as_str(), b.depth, b.snapshot),
                ("BTCUSDT", 50, false)
            );
            assert_eq!((b.update_id, b.seq), (177400507, 66544703342));
            assert_eq!((b.exch_ms, b.engine_ms), (1687940967466, 1687940967464));
            let bids: Vec<_> = b.bids.iter().map(Result::unwrap).collect();
            assert_eq!(
                bids,
                vec![(px("30247.2"), qty("30.028")), (px("30240"), Qty::ZERO)]
            );
            assert_eq!(b.asks.len(), 1);
        });
    }

    #[test]
    fn key_order_does_not_matter() {
        // `data` before `topic`, `u` before `s`, unknown keys everywhere.
        let f = r#"{"data":{"u":1,"zz":[1,{"a":2}],"seq":9,"a":[],"b":[["1","2"]],"s":"XRPUSDT"},"x":null,"type":"snapshot","topic":"orderbook.500.XRPUSDT","ts":"5"}"#;
        with(f, |m| {
            let BybitMsg::Book(b) = m.unwrap() else {
                panic!()
            };
            assert!(b.snapshot);
            assert_eq!((b.update_id, b.seq, b.exch_ms, b.depth), (1, 9, 5, 500));
        });
    }

    #[test]
    fn control_replies() {
        let pong = r#"{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}"#;
        with(pong, |m| {
            let BybitMsg::Control(c) = m.unwrap() else {
                panic!()
            };
            assert_eq!((c.op, c.success), (ControlOp::Pong, Some(true)));
        });
        let bad = r#"{"success":false,"ret_msg":"Invalid topic: x","conn_id":"c","req_id":"1","op":"subscribe"}"#;
        with(bad, |m| {
            let BybitMsg::Control(c) = m.unwrap() else {
                panic!()
            };
            assert!(c.is_failed_subscription());
        });
        let private_pong = r#"{"req_id":"t","op":"pong","args":["1675418560633"],"conn_id":"c"}"#;
        with(private_pong, |m| {
            let BybitMsg::Control(c) = m.unwrap() else {
                panic!()
            };
            assert_eq!((c.op, c.success), (ControlOp::Pong, None));
        });
    }

    #[test]
    fn klines_and_unknown_topics_are_ignored() {
        // The engine's `Kline` carries a trade count and taker-buy volume that Bybit's kline lacks.
        let k = r#"{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}"#;
        with(k, |m| assert!(matches!(m.unwrap(), BybitMsg::Ignored)));
        with(r#"{"topic":"insurance.USDT","data":[]}"#, |m| {
            assert!(matches!(m.unwrap(), BybitMsg::Ignored))
        });
    }

    #[test]
    fn malformed_shapes_are_errors_not_panics() {
        for (f, kind) in [
            (r#"[1,2]"#, MsgKind::Unknown),
            (r#"{"foo":1}"#, MsgKind::Unknown),
            (r#"{"topic":7}"#, MsgKind::Unknown),
            (r#"{"op":"subscribe","success":"yes"}"#, MsgKind::Control),
            (
                r#"{"topic":"orderbook.x.BTCUSDT","type":"delta","data":{}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"orderbook.50","type":"delta","data":{}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"other","data":{"b":[],"a":[],"u":1,"seq":1}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"b":{},"a":[],"u":1,"seq":1}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":-1,"data":{"b":[],"a":[],"u":1,"seq":1}}"#,
                MsgKind::OrderBook,
            ),
            (
                r#"{"topic":"publicTrade.BTCUSDT","data":{}}"#,
                MsgKind::PublicTrade,
            ),
            (
                r#"{"topic":"tickers.BTCUSDT","type":"delta","data":[]}"#,
                MsgKind::Ticker,
            ),
            (
                r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"markPrice":"1e5"}}"#,
                MsgKind::Ticker,
            ),
            (
                r#"{"topic":"liquidation.BTCUSDT","data":"x"}"#,
                MsgKind::Liquidation,
            ),
            (
                r#"{"topic":"publicTrade.BTC/USDT","data":[]}"#,
                MsgKind::PublicTrade,
            ),
        ] {
            with(f, |m| assert_eq!(m.unwrap_err().kind, kind, "{f}"));
        }
        // Element errors surface when the elements are read.
        for f in [
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Up","v":"1","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Buy","v":"1","p":"1"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[5]}"#,
            r#"{"topic":"allLiquidation.BTCUSDT","data":[{"S":"Buy","v":"1"}]}"#,
        ] {
            with(f, |m| {
                let bad = match m.unwrap() {
                    BybitMsg::Trades(t) => t.iter().any(|r| r.is_err()),
                    BybitMsg::Liquidations(l) => l.iter().any(|r| r.is_err()),
                    _ => false,
                };
                assert!(bad, "{f}");
            });
        }
        with(
            r#"{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"b":[["1"]],"a":[["x","1"]],"u":1,"seq":1}}"#,
            |m| {
                let BybitMsg::Book(b) = m.unwrap() else {
                    panic!()
                };
                assert!(b.bids.iter().all(|r| r.is_err()));
                assert!(b.asks.iter().all(|r| r.is_err()));
            },
        );
    }
}
