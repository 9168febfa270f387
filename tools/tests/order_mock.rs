//! Order entry over REST against the mock exchange on 127.0.0.1 (real TLS, the venues' real
//! endpoints, signatures and error bodies): requests are built with the gateway encoders, sent
//! with the engine's REST transport, and matched by the fill model against the book the mock
//! serves. No client subscribes to market data here, so the mock's book stays at its seed (the
//! capture's REST snapshot, or the synthetic market's first book): every expectation below is
//! exact, not timing-dependent.

use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::TimeInForce;
use qalpha_engine::{Price, Qty, Side};
use qalpha_venues::fill::FeeSchedule;
use qalpha_venues::gateway::{binance, bybit};
use qalpha_venues::mock::{MarketSource, MockExchange};
use qalpha_venues::sign::Signer;
use serde_json::Value;
mod order_common;
use order_common::*;

/// The Binance checks shared by the capture and the synthetic market.
fn binance_lifecycle(m: &MockExchange) {
    let v = Venue::BinanceUsdm;
    let s = signer();
    let (bid, ask) = touch(m, v);
    // A limit order away from the touch rests: NEW, listed in open orders.
    let away = order(
        v,
        "bn-away",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -100),
        "0.002",
    );
    let (st, ack) = send_signed(m, &binance::rest_new_order(&s, &away, now_ms()));
    assert_eq!(st, 200, "{ack}");
    assert_eq!(ack["status"], "NEW");
    assert_eq!(ack["clientOrderId"], "bn-away");
    assert_eq!(ack["executedQty"], "0");
    assert_eq!(px(&ack["price"]), away.price);
    assert!(ack["orderId"].as_u64().is_some());
    let open = binance_open_orders(m);
    assert!(open
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["clientOrderId"] == "bn-away"));
    // Duplicate client id among open orders: -4116.
    let (st, e) = send_signed(m, &binance::rest_new_order(&s, &away, now_ms()));
    assert_eq!((st, e["code"].as_i64()), (400, Some(-4116)), "{e}");
    // Amend: new price and quantity.
    let r = binance::rest_amend(
        &s,
        away.symbol,
        away.client_id,
        Side::Buy,
        ticks(bid, -90),
        Qty::parse("0.003").unwrap(),
        now_ms(),
    );
    let (st, am) = send_signed(m, &r);
    assert_eq!(st, 200, "{am}");
    assert_eq!(
        (px(&am["price"]), am["origQty"].as_str()),
        (ticks(bid, -90), Some("0.003"))
    );
    // Cancel → CANCELED; again → -2011.
    let r = binance::rest_cancel(&s, away.symbol, away.client_id, now_ms());
    let (st, c) = send_signed(m, &r);
    assert_eq!((st, c["status"].as_str()), (200, Some("CANCELED")), "{c}");
    let (st, e) = send_signed(
        m,
        &binance::rest_cancel(&s, away.symbol, away.client_id, now_ms()),
    );
    assert_eq!(
        (st, e["code"].as_i64(), e["msg"].as_str()),
        (400, Some(-2011), Some("Unknown order sent."))
    );
    assert!(binance_open_orders(m).as_array().unwrap().is_empty());
    // A marketable IOC takes from the asks, between the touch and its limit.
    let limit = ticks(ask, 50);
    let ioc = order(v, "bn-ioc", Side::Buy, TimeInForce::Ioc, limit, "0.010");
    let (st, f) = send_signed(m, &binance::rest_new_order(&s, &ioc, now_ms()));
    assert_eq!(st, 200, "{f}");
    let exec = qty(&f["executedQty"]);
    assert!(exec.raw() > 0, "{f}");
    assert!(
        matches!(f["status"].as_str(), Some("FILLED") | Some("EXPIRED")),
        "{f}"
    );
    let avg = px(&f["avgPrice"]);
    assert!(
        avg >= ask && avg <= limit,
        "avg {avg} outside [{ask}, {limit}]"
    );
    // cumQuote is exactly Σ px × qty; avgPrice is it over executedQty (truncated to 10^-8).
    let quote = qty(&f["cumQuote"]);
    let implied = (quote.raw() as i128 * 100_000_000 / exec.raw() as i128) as i64;
    assert_eq!(implied, avg.raw(), "{f}");
    // Post-only crossing: -5022 as an error body.
    let gtx = order(v, "bn-gtx", Side::Buy, TimeInForce::PostOnly, ask, "0.001");
    let (st, e) = send_signed(m, &binance::rest_new_order(&s, &gtx, now_ms()));
    assert_eq!((st, e["code"].as_i64()), (400, Some(-5022)), "{e}");
    // Bad signature and stale timestamp.
    let r = binance::rest_new_order(
        &s,
        &order(
            v,
            "bn-sig",
            Side::Buy,
            TimeInForce::Gtc,
            ticks(bid, -100),
            "0.001",
        ),
        now_ms(),
    );
    let mut bad = r.clone();
    bad.query = r.query.replace("quantity=0.001", "quantity=0.002");
    let (st, e) = send_signed(m, &bad);
    assert_eq!((st, e["code"].as_i64()), (400, Some(-1022)), "{e}");
    let stale = binance::rest_new_order(
        &s,
        &order(
            v,
            "bn-old",
            Side::Buy,
            TimeInForce::Gtc,
            ticks(bid, -100),
            "0.001",
        ),
        now_ms() - 10_000,
    );
    let (st, e) = send_signed(m, &stale);
    assert_eq!((st, e["code"].as_i64()), (400, Some(-1021)), "{e}");
    let wrong_key = binance::rest_new_order(&Signer::new("nobody", "x"), &away, now_ms());
    let (st, e) = send_signed(m, &wrong_key);
    assert_eq!((st, e["code"].as_i64()), (401, Some(-2015)), "{e}");
    // Cancel-all answers Binance's fixed body.
    send_signed(
        m,
        &binance::rest_new_order(
            &s,
            &order(
                v,
                "bn-rest2",
                Side::Sell,
                TimeInForce::Gtc,
                ticks(ask, 100),
                "0.001",
            ),
            now_ms(),
        ),
    );
    let (st, c) = send_signed(m, &binance::rest_cancel_all(&s, away.symbol, now_ms()));
    assert_eq!((st, c["code"].as_i64()), (200, Some(200)), "{c}");
    assert!(binance_open_orders(m).as_array().unwrap().is_empty());
}

#[test]
fn binance_orders_on_the_bundled_capture() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(
        Venue::BinanceUsdm,
        MarketSource::Capture(SAMPLE.into()),
        "",
        dir.path(),
    );
    binance_lifecycle(&m);
}

#[test]
fn binance_orders_on_the_synthetic_market() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(Venue::BinanceUsdm, synthetic(), "", dir.path());
    binance_lifecycle(&m);
}

#[test]
fn bybit_orders_on_the_synthetic_market() {
    let v = Venue::BybitLinear;
    let dir = tempfile::tempdir().unwrap();
    let m = mock(v, synthetic(), "", dir.path());
    let s = signer();
    let (bid, ask) = touch(&m, v);
    let ok = |r: (u16, Value)| {
        assert_eq!((r.0, r.1["retCode"].as_i64()), (200, Some(0)), "{}", r.1);
        r.1
    };
    let code = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "Bybit errors are HTTP 200: {}", r.1);
        r.1["retCode"].as_i64().unwrap()
    };
    // Away from the touch: ack with ids, listed as New.
    let away = order(
        v,
        "by-away",
        Side::Sell,
        TimeInForce::Gtc,
        ticks(ask, 100),
        "0.002",
    );
    let ack = ok(send_signed(&m, &bybit::rest_create(&s, &away, now_ms())));
    assert_eq!(ack["result"]["orderLinkId"], "by-away");
    assert_eq!(ack["result"]["orderId"].as_str().map(str::len), Some(36));
    let open = bybit_realtime(&m, "");
    assert!(open
        .iter()
        .any(|o| o["orderLinkId"] == "by-away" && o["orderStatus"] == "New"));
    // Duplicate orderLinkId: 110072.
    assert_eq!(
        code(send_signed(&m, &bybit::rest_create(&s, &away, now_ms()))),
        110072
    );
    // Amend, then cancel → Cancelled; cancel again → 110001.
    ok(send_signed(
        &m,
        &bybit::rest_amend(
            &s,
            away.symbol,
            away.client_id,
            ticks(ask, 90),
            Qty::parse("0.004").unwrap(),
            now_ms(),
        ),
    ));
    let item = &bybit_realtime(&m, "&orderLinkId=by-away")[0];
    assert_eq!(
        (px(&item["price"]), item["qty"].as_str()),
        (ticks(ask, 90), Some("0.004"))
    );
    ok(send_signed(
        &m,
        &bybit::rest_cancel(&s, away.symbol, away.client_id, now_ms()),
    ));
    assert_eq!(
        bybit_realtime(&m, "&orderLinkId=by-away")[0]["orderStatus"],
        "Cancelled"
    );
    assert_eq!(
        code(send_signed(
            &m,
            &bybit::rest_cancel(&s, away.symbol, away.client_id, now_ms())
        )),
        110001
    );
    // Marketable IOC: fills from the bids between the touch and the limit, taker fee exact.
    let limit = ticks(bid, -50);
    let ioc = order(v, "by-ioc", Side::Sell, TimeInForce::Ioc, limit, "0.010");
    ok(send_signed(&m, &bybit::rest_create(&s, &ioc, now_ms())));
    let f = &bybit_realtime(&m, "&orderLinkId=by-ioc")[0];
    let exec = qty(&f["cumExecQty"]);
    assert!(exec.raw() > 0, "{f}");
    let avg = px(&f["avgPrice"]);
    assert!(
        avg <= bid && avg >= limit,
        "avg {avg} outside [{limit}, {bid}]"
    );
    // One level at BTCUSDT's 0.1 × 0.001 grid: the fee on the total equals the sum of per-fill fees.
    let value = qty(&f["cumExecValue"]);
    let fee = qty(&f["cumExecFee"]);
    assert!(fee.raw() > 0);
    let from_value =
        FeeSchedule::BYBIT_LINEAR_VIP0.fee(Price(value.raw()), Qty::from_units(1), false);
    assert!(
        (fee.raw() - from_value.raw()).abs() <= 2,
        "fee {fee} vs {from_value} on {value}"
    );
    // Post-only that would take: accepted (retCode 0), then Cancelled with Bybit's reason.
    let po = order(v, "by-po", Side::Buy, TimeInForce::PostOnly, ask, "0.001");
    ok(send_signed(&m, &bybit::rest_create(&s, &po, now_ms())));
    let item = &bybit_realtime(&m, "&orderLinkId=by-po")[0];
    assert_eq!(item["orderStatus"], "Cancelled");
    assert_eq!(item["rejectReason"], "EC_PostOnlyWillTakeLiquidity");
    // Signature, timestamp and key errors.
    let r = bybit::rest_create(
        &s,
        &order(
            v,
            "by-sig",
            Side::Buy,
            TimeInForce::Gtc,
            ticks(bid, -100),
            "0.001",
        ),
        now_ms(),
    );
    let mut bad = r.clone();
    bad.body = r.body.replace("0.001", "0.002");
    assert_eq!(code(send_signed(&m, &bad)), 10004);
    let stale = bybit::rest_create(
        &s,
        &order(
            v,
            "by-old",
            Side::Buy,
            TimeInForce::Gtc,
            ticks(bid, -100),
            "0.001",
        ),
        now_ms() - 10_000,
    );
    assert_eq!(code(send_signed(&m, &stale)), 10002);
    let wrong = bybit::rest_create(&Signer::new("nobody", "x"), &away, now_ms());
    assert_eq!(code(send_signed(&m, &wrong)), 10003);
    // Cancel-all lists what it canceled.
    ok(send_signed(
        &m,
        &bybit::rest_create(
            &s,
            &order(
                v,
                "by-r2",
                Side::Buy,
                TimeInForce::Gtc,
                ticks(bid, -100),
                "0.001",
            ),
            now_ms(),
        ),
    ));
    let c = ok(send_signed(
        &m,
        &bybit::rest_cancel_all(&s, away.symbol, now_ms()),
    ));
    assert_eq!(c["result"]["list"][0]["orderLinkId"], "by-r2");
    assert!(bybit_realtime(&m, "").is_empty());
    // Server time for clock sync.
    let (st, t) = send(&m, "GET", "/v5/market/time", &[], "");
    assert_eq!(st, 200);
    assert!(qalpha_venues::clock_sync::parse_bybit_time(t.to_string().as_bytes()).is_some());
}

#[test]
fn reject_fault_refuses_new_orders_with_insufficient_margin() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer();
    let bn = mock(Venue::BinanceUsdm, synthetic(), "reject=1", dir.path());
    let (bid, _) = touch(&bn, Venue::BinanceUsdm);
    let o = order(
        Venue::BinanceUsdm,
        "rej",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -10),
        "0.001",
    );
    let (st, e) = send_signed(&bn, &binance::rest_new_order(&s, &o, now_ms()));
    assert_eq!(
        (st, e["code"].as_i64(), e["msg"].as_str()),
        (400, Some(-2019), Some("Margin is insufficient."))
    );
    drop(bn);
    let dir = tempfile::tempdir().unwrap();
    let by = mock(
        Venue::BybitLinear,
        synthetic(),
        "reject=1,ack-delay=50ms",
        dir.path(),
    );
    let (bid, _) = touch(&by, Venue::BybitLinear);
    let o = order(
        Venue::BybitLinear,
        "rej",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -10),
        "0.001",
    );
    let t0 = Instant::now();
    let (st, e) = send_signed(&by, &bybit::rest_create(&s, &o, now_ms()));
    assert!(
        t0.elapsed() >= Duration::from_millis(50),
        "ack-delay not applied"
    );
    assert_eq!((st, e["retCode"].as_i64()), (200, Some(110007)), "{e}");
}
