//! Order entry as an operator uses it: `qalpha order`, `cancel` and `open-orders` against the mock
//! exchange on 127.0.0.1 (keys from the environment; venue errors exit non-zero with the code), and
//! resting orders filled by the served capture's own trades.

use std::process::Command;
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::TimeInForce;
use qalpha_engine::replay::Speed;
use qalpha_engine::{Price, Side};
use qalpha_venues::gateway::binance;
use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions, TEST_API_KEY};
use serde_json::Value;
mod order_common;
use order_common::*;

#[test]
fn cli_order_cancel_and_open_orders() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(Venue::BinanceUsdm, synthetic(), "", dir.path());
    let (bid, ask) = touch(&m, Venue::BinanceUsdm);
    let away = ticks(bid, -100).to_string();
    let out = qalpha(
        &m,
        "binance",
        &[
            "order",
            "--symbol",
            "BTCUSDT",
            "--side",
            "buy",
            "--type",
            "limit",
            "--price",
            &away,
            "--qty",
            "0.001",
            "--client-id",
            "cli-1",
            "--tick",
            "0.1",
            "--step",
            "0.001",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ack: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (ack["status"].as_str(), ack["clientOrderId"].as_str()),
        (Some("NEW"), Some("cli-1"))
    );
    let out = qalpha(&m, "binance", &["open-orders", "--symbol", "BTCUSDT"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cli-1"));
    let out = qalpha(
        &m,
        "binance",
        &["cancel", "--symbol", "BTCUSDT", "--client-id", "cli-1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CANCELED"));
    // A venue error: non-zero exit naming the venue's code and message.
    let out = qalpha(
        &m,
        "binance",
        &[
            "order",
            "--symbol",
            "BTCUSDT",
            "--side",
            "buy",
            "--type",
            "limit",
            "--price",
            &ask.to_string(),
            "--qty",
            "0.001",
            "--post-only",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-5022") && err.contains("Post Only"), "{err}");
    let out = qalpha(
        &m,
        "binance",
        &["cancel", "--symbol", "BTCUSDT", "--client-id", "cli-1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-2011"));
    // Refused locally: off-tick price never reaches the venue.
    let off = Price(ticks(bid, -100).raw() + 5_000_000).to_string(); // half a tick
    let out = qalpha(
        &m,
        "binance",
        &[
            "order", "--symbol", "BTCUSDT", "--side", "buy", "--type", "limit", "--price", &off,
            "--qty", "0.001", "--tick", "0.1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tick"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Missing keys: a clear error naming the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "open-orders",
            "--venue",
            "bybit",
            "--symbol",
            "BTCUSDT",
            "--rest-url",
            "https://127.0.0.1:1",
        ])
        .env_remove("QALPHA_BYBIT_API_KEY")
        .env_remove("QALPHA_BYBIT_API_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("QALPHA_BYBIT_API_KEY"));
}

#[test]
fn cli_bybit_order_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(Venue::BybitLinear, synthetic(), "", dir.path());
    let (bid, _) = touch(&m, Venue::BybitLinear);
    let away = ticks(bid, -100).to_string();
    let args = [
        "order",
        "--symbol",
        "BTCUSDT",
        "--side",
        "buy",
        "--type",
        "limit",
        "--price",
        &away,
        "--qty",
        "0.001",
        "--client-id",
        "cli-by",
    ];
    let out = qalpha(&m, "bybit", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ack: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            ack["retCode"].as_i64(),
            ack["result"]["orderLinkId"].as_str()
        ),
        (Some(0), Some("cli-by"))
    );
    let out = qalpha(&m, "bybit", &["open-orders", "--symbol", "BTCUSDT"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cli-by"));
    let out = qalpha(&m, "bybit", &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("110072") && err.contains("bybit"), "{err}");
}

/// The tape drives the fill model: resting orders at the touch fill from the capture's own trade
/// prints (maker, at their own price) as the mock plays it.
#[test]
fn resting_orders_fill_from_the_capture_tape() {
    let v = Venue::BinanceUsdm;
    let dir = tempfile::tempdir().unwrap();
    let m = MockExchange::start(MockOptions {
        venue: v,
        source: MarketSource::Capture(SAMPLE.into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: Some(dir.path().to_path_buf()),
        speed: Speed::Max,
        faults: FaultSpec::default(),
        seed: 11,
    })
    .unwrap();
    let start = Instant::now();
    while touch_opt(&m, v).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mock book never seeded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = signer();
    let (bid, ask) = touch(&m, v);
    let buy = order(v, "tape-buy", Side::Buy, TimeInForce::Gtc, bid, "0.005");
    let sell = order(v, "tape-sell", Side::Sell, TimeInForce::Gtc, ask, "0.005");
    for o in [&buy, &sell] {
        let (st, ack) = send_signed(&m, &binance::rest_new_order(&s, o, now_ms()));
        assert_eq!((st, ack["status"].as_str()), (200, Some("NEW")), "{ack}");
    }
    // No market-data client here: start the tape as a subscriber would.
    m.hub
        .has_subscriber
        .store(true, std::sync::atomic::Ordering::Release);
    while !m.tape_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "tape did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut filled = 0;
    for o in [&buy, &sell] {
        let query = format!(
            "symbol=BTCUSDT&origClientOrderId={}&recvWindow=5000&timestamp={}",
            o.client_id,
            now_ms()
        );
        let sig = s.binance_rest(&query, "");
        let (st, q) = send(
            &m,
            "GET",
            &format!("/fapi/v1/order?{query}&signature={sig}"),
            &[("X-MBX-APIKEY".into(), TEST_API_KEY.into())],
            "",
        );
        assert_eq!(st, 200, "{q}");
        let exec = qty(&q["executedQty"]);
        if exec.raw() > 0 {
            filled += 1;
            // Resting fills happen at the order's own price.
            assert_eq!(px(&q["avgPrice"]), o.price, "{q}");
            assert!(exec <= o.qty);
        }
    }
    assert!(filled > 0, "no resting order filled over the whole capture");
}

/// `qalpha order|cancel --via ws` on both venues: the order goes over the venue's order
/// WebSocket (ws-fapi / Trade WS), the acknowledgement is printed, a venue error exits non-zero.
#[test]
fn cli_orders_over_the_order_websocket() {
    for (venue, name, path) in [
        (Venue::BinanceUsdm, "binance", "/ws-fapi/v1"),
        (Venue::BybitLinear, "bybit", "/v5/trade"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = mock(venue, synthetic(), "", dir.path());
        let ws = format!("wss://{}{path}", m.addr);
        let (bid, ask) = touch(&m, venue);
        let away = ticks(bid, -100).to_string();
        let ws_args = ["--via", "ws", "--ws-url", ws.as_str()];
        let mut args = vec![
            "order",
            "--symbol",
            "BTCUSDT",
            "--side",
            "buy",
            "--type",
            "limit",
            "--price",
            &away,
            "--qty",
            "0.001",
            "--post-only",
            "--client-id",
            "ws-cli-1",
        ];
        args.extend(ws_args);
        let out = qalpha(&m, name, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let ack: Value = serde_json::from_slice(&out.stdout).unwrap();
        match venue {
            Venue::BinanceUsdm => assert_eq!(ack["status"], "NEW", "{ack}"),
            Venue::BybitLinear => {
                assert_eq!(ack["retCode"], 0, "{ack}");
                assert_eq!(ack["data"]["orderLinkId"], "ws-cli-1");
            }
        }
        // The venue has it, once.
        let open = qalpha(&m, name, &["open-orders", "--symbol", "BTCUSDT"]);
        assert_eq!(
            String::from_utf8_lossy(&open.stdout)
                .matches("ws-cli-1")
                .count(),
            1
        );
        let mut args = vec!["cancel", "--symbol", "BTCUSDT", "--client-id", "ws-cli-1"];
        args.extend(ws_args);
        let out = qalpha(&m, name, &args);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Cancelling it again: the venue's unknown-order error, non-zero exit.
        let out = qalpha(&m, name, &args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let code = if venue == Venue::BinanceUsdm {
            "-2011"
        } else {
            "110001"
        };
        assert!(err.contains(code), "{name}: {err}");
        // A post-only order at the ask: Binance refuses it in the answer (-5022); Bybit accepts it
        // and cancels it on the stream (C.4), so only Binance exits non-zero here.
        let at_ask = ask.to_string();
        let mut args = vec![
            "order",
            "--symbol",
            "BTCUSDT",
            "--side",
            "buy",
            "--type",
            "limit",
            "--price",
            &at_ask,
            "--qty",
            "0.001",
            "--post-only",
        ];
        args.extend(ws_args);
        let out = qalpha(&m, name, &args);
        if venue == Venue::BinanceUsdm {
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("-5022"));
        } else {
            assert!(out.status.success());
        }
    }
}
