//! `qalpha cancel-all` and `qalpha positions` against the mock exchange on 127.0.0.1: resting orders
//! all canceled in one call, IOC fills showing up as a signed position at their exact average price,
//! and a bad key exiting non-zero with the venue's code — on both venues.

use std::process::Output;

use qalpha_engine::event::Venue;
use qalpha_engine::{Price, Qty};
use qalpha_venues::mock::MockExchange;
use serde_json::Value;
mod order_common;
use order_common::*;

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `qalpha order` for a limit order; returns the venue's answer.
fn limit(
    m: &MockExchange,
    venue: &str,
    id: &str,
    side: &str,
    price: Price,
    qty: &str,
    ioc: bool,
) -> Value {
    let price = price.to_string();
    let mut args = vec![
        "order",
        "--symbol",
        "BTCUSDT",
        "--side",
        side,
        "--type",
        "limit",
        "--price",
        &price,
        "--qty",
        qty,
        "--client-id",
        id,
    ];
    if ioc {
        args.push("--ioc");
    }
    ok_json(&qalpha(m, venue, &args))
}

fn open_ids(m: &MockExchange, venue: &str) -> Vec<String> {
    let v = ok_json(&qalpha(m, venue, &["open-orders", "--symbol", "BTCUSDT"]));
    let (list, key) = match venue {
        "binance" => (v.clone(), "clientOrderId"),
        _ => (v["result"]["list"].clone(), "orderLinkId"),
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o[key].as_str().unwrap().to_string())
        .collect()
}

/// The position as (signed size, entry price) from `qalpha positions --symbol BTCUSDT`.
fn position(m: &MockExchange, venue: &str) -> (Qty, Price) {
    let v = ok_json(&qalpha(m, venue, &["positions", "--symbol", "BTCUSDT"]));
    match venue {
        "binance" => {
            let p = &v[0];
            assert_eq!(
                (p["symbol"].as_str(), p["positionSide"].as_str()),
                (Some("BTCUSDT"), Some("BOTH")),
                "{v}"
            );
            (qty(&p["positionAmt"]), px(&p["entryPrice"]))
        }
        _ => {
            assert_eq!(v["retCode"].as_i64(), Some(0), "{v}");
            let p = &v["result"]["list"][0];
            let size = qty(&p["size"]);
            let signed = match p["side"].as_str().unwrap() {
                "Buy" => size,
                "Sell" => Qty(-size.raw()),
                s => {
                    assert_eq!((s, size), ("", Qty::ZERO), "{v}");
                    size
                }
            };
            (signed, px(&p["avgPrice"]))
        }
    }
}

fn cancel_all_then_positions(venue: Venue, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let (bid, ask) = touch(&m, venue);

    // Two resting orders, one cancel-all: both gone.
    limit(&m, name, "rest-1", "buy", ticks(bid, -100), "0.001", false);
    limit(&m, name, "rest-2", "sell", ticks(ask, 100), "0.002", false);
    let mut open = open_ids(&m, name);
    open.sort();
    assert_eq!(open, ["rest-1", "rest-2"]);
    let ans = ok_json(&qalpha(&m, name, &["cancel-all", "--symbol", "BTCUSDT"]));
    match venue {
        Venue::BinanceUsdm => assert_eq!(ans["code"].as_i64(), Some(200), "{ans}"),
        Venue::BybitLinear => assert_eq!(ans["result"]["list"].as_array().map(Vec::len), Some(2)),
    }
    assert!(open_ids(&m, name).is_empty());

    // Flat before any fill.
    assert_eq!(position(&m, name), (Qty::ZERO, Price::ZERO));

    // A marketable IOC buy fills: long, entered at that order's exact average price.
    let a = limit(&m, name, "ioc-buy", "buy", ticks(ask, 100), "0.001", true);
    let avg = match venue {
        Venue::BinanceUsdm => px(&a["avgPrice"]),
        Venue::BybitLinear => px(&bybit_realtime(&m, "&orderLinkId=ioc-buy")[0]["avgPrice"]),
    };
    assert_eq!(position(&m, name), (Qty::parse("0.001").unwrap(), avg));
    if venue == Venue::BinanceUsdm {
        // Adding 0.002 more: entry (avg × 1 + avg2 × 2) / 3, truncated once to 10^-8.
        let (_, ask) = touch(&m, venue);
        let a = limit(&m, name, "ioc-buy2", "buy", ticks(ask, 100), "0.002", true);
        assert_eq!(a["status"].as_str(), Some("FILLED"), "{a}");
        let avg2 = px(&a["avgPrice"]);
        let (size, entry) = position(&m, name);
        assert_eq!(size, Qty::parse("0.003").unwrap());
        let want = (avg.raw() as i128 + 2 * avg2.raw() as i128) / 3;
        assert_eq!(entry.raw() as i128, want);
    }

    // Selling through the position flips it short.
    let (bid, _) = touch(&m, venue);
    limit(
        &m,
        name,
        "ioc-sell",
        "sell",
        ticks(bid, -100),
        "0.005",
        true,
    );
    let (size, entry) = position(&m, name);
    assert!(size.raw() < 0, "{size}");
    assert!(entry > Price::ZERO);
    assert_eq!(
        size,
        Qty(match venue {
            Venue::BinanceUsdm => -200_000,
            Venue::BybitLinear => -400_000,
        })
    );

    // Without --symbol: every symbol (Binance) / every USDT-settled one (Bybit).
    let all = ok_json(&qalpha(&m, name, &["positions"]));
    assert!(all.to_string().contains("BTCUSDT"), "{all}");

    // A bad key: non-zero exit naming the venue's code.
    let out = qalpha_as(
        &m,
        name,
        "wrong-key",
        "wrong-secret",
        &["positions", "--symbol", "BTCUSDT"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let code = match venue {
        Venue::BinanceUsdm => "-2015",
        Venue::BybitLinear => "10003",
    };
    assert!(err.contains(code), "{err}");
}

#[test]
fn binance_cancel_all_and_positions() {
    cancel_all_then_positions(Venue::BinanceUsdm, "binance");
}

#[test]
fn bybit_cancel_all_and_positions() {
    cancel_all_then_positions(Venue::BybitLinear, "bybit");
}
