//! Binance USD-M decoders on real frames from `../shared/data` (skipped with a message if absent).
//!
//! Sources: hftbacktest live captures (depth@0ms, bookTicker, trade, markPrice@1s, REST snapshot),
//! cryptofeed 2021 (depth@100ms, bookTicker, aggTrade, kline_1m, four REST snapshots) and tardis-node's
//! 2019–2021 frames (aggTrade, 24hrTicker, markPrice old and @1s, trade with INSURANCE_FUND,
//! depthUpdate, forceOrder, bookTicker).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use qalpha_engine::event::{MarketPayload, Side, TradeKind};
use qalpha_engine::{Price, Qty};
use qalpha_feeds::binance::{decode, BinanceMsg};
use qalpha_feeds::json::JsonParser;
use qalpha_feeds::stats::MsgKind;

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skip: {} not found (../shared/data is not present)",
            p.display()
        );
        None
    }
}

/// A summary of one decoded frame that outlives the tape.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Depth {
        symbol: String,
        u: u64,
        pu: Option<u64>,
        bids: Vec<(Price, Qty)>,
        asks: Vec<(Price, Qty)>,
        partial: bool,
    },
    Snapshot {
        id: u64,
        bids: usize,
        asks: usize,
    },
    Event {
        kind: MsgKind,
        symbol: String,
        payload: MarketPayload,
    },
    Control,
    Ignored,
    Err(MsgKind),
}

fn decode_one(p: &mut JsonParser, frame: &[u8]) -> Got {
    p.parse(frame, |v| match decode(v) {
        Ok(BinanceMsg::Depth(d)) => {
            let bids: Result<Vec<_>, _> = d.bids.iter().collect();
            let asks: Result<Vec<_>, _> = d.asks.iter().collect();
            match (bids, asks) {
                (Ok(bids), Ok(asks)) => Got::Depth {
                    symbol: d.symbol.to_string(),
                    u: d.last_id,
                    pu: d.prev_last_id,
                    bids,
                    asks,
                    partial: d.partial,
                },
                _ => Got::Err(MsgKind::DepthUpdate),
            }
        }
        Ok(BinanceMsg::Snapshot(s)) => {
            let ok = s.bids.iter().chain(s.asks.iter()).all(|l| l.is_ok());
            if ok {
                Got::Snapshot {
                    id: s.last_update_id,
                    bids: s.bids.len(),
                    asks: s.asks.len(),
                }
            } else {
                Got::Err(MsgKind::DepthSnapshot)
            }
        }
        Ok(BinanceMsg::Event {
            kind,
            symbol,
            payload,
            ..
        }) => Got::Event {
            kind,
            symbol: symbol.to_string(),
            payload,
        },
        Ok(BinanceMsg::Control { .. }) => Got::Control,
        Ok(BinanceMsg::Ignored) => Got::Ignored,
        Err(e) => Got::Err(e.kind),
    })
    .unwrap_or(Got::Err(MsgKind::Unknown))
}

fn lines(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap();
    let r: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    r.lines().map(Result::unwrap).collect()
}

/// `"{...}"` → `{"zz_future":{"x":[1,"a"]},...}`: an unknown field first in the object.
fn with_unknown_field(frame: &str) -> String {
    let inner = if let Some(i) = frame.find("\"data\":{") {
        i + 8
    } else {
        1
    };
    format!(
        "{}\"zz_future\":{{\"x\":[1,\"a\",null]}},\"st\":7,{}",
        &frame[..inner],
        &frame[inner..]
    )
}

#[test]
fn hftbacktest_captures_decode_completely() {
    let Some(dir) = shared("binance-usdm/captures") else {
        return;
    };
    let mut p = JsonParser::default();
    for name in [
        "btcusdt_20230404.dat.gz",
        "btcusdt_20240718.gz",
        "ethusdt_20240718.gz",
    ] {
        let (mut depth, mut ticker, mut trade, mut mark, mut snap) = (0, 0, 0, 0, 0);
        for line in lines(&dir.join(name)) {
            let json = line.split_once(' ').unwrap().1;
            let got = decode_one(&mut p, json.as_bytes());
            match &got {
                Got::Depth {
                    bids,
                    asks,
                    partial,
                    pu,
                    ..
                } => {
                    assert!(!partial && pu.is_some());
                    assert!(bids
                        .iter()
                        .chain(asks)
                        .all(|(px, q)| px.raw() > 0 && q.raw() >= 0));
                    depth += 1;
                }
                Got::Snapshot { bids, asks, .. } => {
                    assert_eq!((*bids, *asks), (1000, 1000));
                    snap += 1;
                }
                Got::Event {
                    kind: MsgKind::BookTicker,
                    payload: MarketPayload::Quote(q),
                    ..
                } => {
                    assert!(q.bid_px < q.ask_px && q.update_id > 0);
                    ticker += 1;
                }
                Got::Event {
                    kind: MsgKind::Trade,
                    payload: MarketPayload::Trade(t),
                    ..
                } => {
                    assert_eq!(t.kind, TradeKind::Market);
                    trade += 1;
                }
                Got::Event {
                    kind: MsgKind::MarkPrice,
                    payload: MarketPayload::MarkPrice(m),
                    ..
                } => {
                    assert!(m.mark_px.raw() > 0 && m.index_px.raw() > 0 && m.next_funding_ms > 0);
                    mark += 1;
                }
                other => panic!("{name}: unexpected {other:?} for {json}"),
            }
            // Extra, unknown fields change nothing.
            assert_eq!(
                decode_one(&mut p, with_unknown_field(json).as_bytes()),
                got,
                "{json}"
            );
        }
        assert!(
            depth > 1000 && ticker > 1000 && trade > 500 && snap == 1,
            "{name}: {depth} {ticker} {trade} {snap}"
        );
        if name.starts_with("btcusdt_2023") {
            assert!(mark > 50);
        }
    }
}

#[test]
fn exact_values_of_known_frames() {
    let Some(dir) = shared("binance-usdm/captures") else {
        return;
    };
    let mut p = JsonParser::default();
    let all = lines(&dir.join("btcusdt_20240718.gz"));
    // The first line of the file (DATA.md §4.1 quotes it).
    let got = decode_one(&mut p, all[0].split_once(' ').unwrap().1.as_bytes());
    let Got::Depth {
        symbol,
        u,
        pu,
        bids,
        ..
    } = got
    else {
        panic!("{got:?}")
    };
    assert_eq!(
        (symbol.as_str(), u, pu),
        ("BTCUSDT", 4984028370730, Some(4984028367494))
    );
    assert_eq!(
        bids[0],
        (
            Price::parse("1000.00").unwrap(),
            Qty::parse("569.567").unwrap()
        )
    );
    let snap = all.iter().find(|l| l.contains("lastUpdateId")).unwrap();
    assert_eq!(
        decode_one(&mut p, snap.split_once(' ').unwrap().1.as_bytes()),
        Got::Snapshot {
            id: 4984028384061,
            bids: 1000,
            asks: 1000
        }
    );
}

#[test]
fn cryptofeed_2021_frames() {
    let Some(ws) = shared("binance-usdm/cryptofeed-2021/BINANCE_FUTURES.ws.1.0") else {
        return;
    };
    let mut p = JsonParser::default();
    let (mut depth, mut ticker, mut agg, mut klines, mut closed) = (0, 0, 0, 0, 0);
    for line in lines(&ws).iter().skip(1) {
        let Some((_, json)) = line.split_once(": ") else {
            continue;
        };
        match decode_one(&mut p, json.as_bytes()) {
            Got::Depth { .. } => depth += 1,
            Got::Event {
                kind: MsgKind::BookTicker,
                ..
            } => ticker += 1,
            Got::Event {
                kind: MsgKind::AggTrade,
                payload: MarketPayload::Trade(t),
                ..
            } => {
                assert_eq!(t.kind, TradeKind::Aggregated);
                assert!(t.last_trade_id >= t.trade_id);
                agg += 1;
            }
            Got::Event {
                kind: MsgKind::Kline,
                payload: MarketPayload::Kline(k),
                ..
            } => {
                assert_eq!(k.interval_s, 60);
                assert_eq!(k.close_ms(), k.open_ms + 59_999);
                assert!(
                    k.low <= k.open && k.open <= k.high && k.low <= k.close && k.close <= k.high
                );
                klines += 1;
                closed += k.closed as u32;
            }
            other => panic!("unexpected {other:?} for {json}"),
        }
    }
    // DATA.md: depth@100ms 764, bookTicker 613, aggTrade 91, kline_1m 67 (4 closed).
    assert_eq!((depth, ticker, agg, klines, closed), (764, 613, 91, 67, 4));

    let Some(http) = shared("binance-usdm/cryptofeed-2021/BINANCE_FUTURES.http.0.0") else {
        return;
    };
    let mut snaps = 0;
    for line in lines(&http) {
        let Some((_, json)) = line.split_once(": ") else {
            continue;
        };
        match decode_one(&mut p, json.as_bytes()) {
            Got::Snapshot { bids, asks, .. } => {
                assert!(bids > 0 && asks > 0);
                snaps += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(snaps, 4);
}

#[test]
fn tardis_public_frames_2019_2021() {
    let Some(path) = shared("binance-usdm/public-frames-2019-2021.jsonl") else {
        return;
    };
    let mut p = JsonParser::default();
    let mut seen = Vec::new();
    for line in lines(&path) {
        let got = decode_one(&mut p, line.as_bytes());
        match &got {
            Got::Event {
                kind: MsgKind::Trade,
                payload: MarketPayload::Trade(t),
                ..
            } if line.contains("INSURANCE_FUND") => {
                assert_eq!(t.kind, TradeKind::InsuranceFund);
                assert_eq!(t.aggressor, Side::Sell); // m:true → the buyer made, the taker sold
            }
            Got::Event {
                kind: MsgKind::MarkPrice,
                payload: MarketPayload::MarkPrice(m),
                ..
            } if !line.contains("\"i\"") => {
                // 2019 frames lack the index price.
                assert_eq!(m.index_px, Price::ZERO);
                assert_eq!(m.funding_rate, Qty::parse("0.0001").unwrap());
            }
            Got::Event {
                kind: MsgKind::ForceOrder,
                payload: MarketPayload::Liquidation(l),
                ..
            } => {
                assert_eq!(l.side, Side::Buy);
                assert_eq!(l.avg_px, Price::parse("4706.04").unwrap());
            }
            Got::Event { symbol, .. } if line.contains("btcbusd_210129") => {
                assert_eq!(symbol, "BTCBUSD_210129")
            }
            Got::Err(k) => panic!("real frame rejected as malformed {k:?}: {line}"),
            _ => {}
        }
        seen.push(match got {
            Got::Depth { .. } => "depth",
            Got::Snapshot { .. } => "snapshot",
            Got::Event { kind, .. } => kind.name(),
            Got::Control => "control",
            Got::Ignored => "ignored",
            Got::Err(_) => "err",
        });
    }
    for k in [
        "aggTrade",
        "markPriceUpdate",
        "trade",
        "depth",
        "forceOrder",
        "bookTicker",
        "ignored",
        "snapshot",
    ] {
        assert!(seen.contains(&k), "no {k} in {seen:?}");
    }
}

#[test]
fn truncated_and_corrupted_real_frames_never_panic() {
    let Some(dir) = shared("binance-usdm/captures") else {
        return;
    };
    let mut p = JsonParser::default();
    let all = lines(&dir.join("btcusdt_20230404.dat.gz"));
    let samples: Vec<&str> = all
        .iter()
        .take(40)
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    let mut rejected = 0;
    for f in &samples {
        let b = f.as_bytes();
        for cut in 0..b.len() - 1 {
            // Every proper prefix of a JSON object is invalid JSON: always an error, never a panic.
            assert!(matches!(decode_one(&mut p, &b[..cut]), Got::Err(_)));
            rejected += 1;
        }
        // Corrupt the digits of prices: exact parsing must refuse, not guess.
        let bad = f
            .replacen("\"b\":\"", "\"b\":\"x", 1)
            .replacen("[[\"", "[[\"1e", 1);
        if bad != *f {
            assert!(
                matches!(decode_one(&mut p, bad.as_bytes()), Got::Err(_)),
                "{bad}"
            );
        }
    }
    assert!(rejected > 1000);
}

#[test]
fn feed_counts_broken_frames_and_keeps_going() {
    // The bundled sample, with every 97th frame cut in half: each is counted as malformed (never a
    // panic), everything else still decodes, and lost depth diffs show up as gaps, not as bad books.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/sample/btcusdt-usdm-20230404.qcap"
    );
    let r = qalpha_engine::capture::CaptureReader::open(path).unwrap();
    let sym = qalpha_engine::Symbol::parse("BTCUSDT").unwrap();
    let mut feed = qalpha_feeds::binance::BinanceFeed::new();
    let mut events: Vec<qalpha_engine::MarketEvent> = Vec::new();
    let mut broken = 0;
    for (i, rec) in r.records().enumerate() {
        events.clear();
        if rec.kind == qalpha_engine::capture::RecordKind::RestResponse {
            feed.on_snapshot(rec.recv_ns, sym, rec.payload, &mut events);
        } else if i % 97 == 50 {
            broken += 1;
            feed.on_ws_frame(
                rec.recv_ns,
                &rec.payload[..rec.payload.len() / 2],
                &mut events,
            );
            assert!(events.is_empty());
        } else {
            feed.on_ws_frame(rec.recv_ns, rec.payload, &mut events);
        }
    }
    let c = feed.counters();
    assert_eq!(c.decode.malformed, broken);
    assert_eq!(c.decode.decoded + c.decode.malformed, c.decode.frames);
    assert_eq!(
        c.decode.malformed_by_kind[MsgKind::Unknown as usize],
        broken
    );
    let s = feed.sync_counters();
    assert!(s.gaps > 0 && s.crossed == 0, "{s:?}");
}
