//! Helpers shared by the mock order-entry tests (each test binary uses a subset).
#![allow(dead_code)]

pub mod gw;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::replay::Speed;
use qalpha_engine::transport::rest;
use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_venues::gateway::{Method, SignedRequest};
use qalpha_venues::mock::{
    FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec, TEST_API_KEY,
    TEST_API_SECRET,
};
use qalpha_venues::sign::Signer;
use serde_json::Value;

pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

pub fn mock(venue: Venue, source: MarketSource, faults: &str, dir: &Path) -> MockExchange {
    let m = MockExchange::start(MockOptions {
        venue,
        source,
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: Some(dir.to_path_buf()),
        speed: Speed::Factor(1.0),
        faults: FaultSpec::parse(faults).unwrap(),
        seed: 11,
    })
    .unwrap();
    // The book is seeded by the market thread: wait until the depth endpoint answers.
    let start = Instant::now();
    while touch_opt(&m, venue).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mock book never seeded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    m
}

pub fn synthetic() -> MarketSource {
    MarketSource::Synthetic(SyntheticSpec::default())
}

pub fn signer() -> Signer {
    Signer::new(TEST_API_KEY, TEST_API_SECRET)
}

pub fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

/// Sends a request to the mock: (HTTP status, JSON body).
pub fn send(
    m: &MockExchange,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, Value) {
    let tls = qalpha_engine::transport::tls::client_config(m.ca_file.as_deref()).unwrap();
    let url = format!("https://{}{target}", m.addr);
    let r = rest::request(
        method,
        &url,
        headers,
        body.as_bytes(),
        Some(&tls),
        Duration::from_secs(10),
    )
    .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

pub fn send_signed(m: &MockExchange, r: &SignedRequest) -> (u16, Value) {
    send(m, r.method.as_str(), &r.target(), &r.headers, &r.body)
}

pub fn touch_opt(m: &MockExchange, venue: Venue) -> Option<(Price, Price)> {
    let (status, v) = match venue {
        Venue::BinanceUsdm => send(m, "GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=5", &[], ""),
        Venue::BybitLinear => {
            let (s, v) = send(
                m,
                "GET",
                "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=5",
                &[],
                "",
            );
            (s, v["result"].clone())
        }
    };
    if status != 200 {
        return None;
    }
    let (b, a) = match venue {
        Venue::BinanceUsdm => (&v["bids"], &v["asks"]),
        Venue::BybitLinear => (&v["b"], &v["a"]),
    };
    let px = |l: &Value| Price::parse(l[0][0].as_str()?).ok();
    Some((px(b)?, px(a)?))
}

/// Best bid and ask the mock is serving.
pub fn touch(m: &MockExchange, venue: Venue) -> (Price, Price) {
    touch_opt(m, venue).unwrap()
}

pub fn order(
    venue: Venue,
    id: &str,
    side: Side,
    tif: TimeInForce,
    price: Price,
    qty: &str,
) -> NewOrder {
    NewOrder {
        venue,
        symbol: Symbol::parse("BTCUSDT").unwrap(),
        client_id: ClientOrderId::parse(id).unwrap(),
        side,
        order_type: OrderType::Limit,
        tif,
        price,
        qty: Qty::parse(qty).unwrap(),
        reduce_only: false,
    }
}

pub fn px(v: &Value) -> Price {
    Price::parse(v.as_str().unwrap()).unwrap()
}

pub fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap()).unwrap()
}

pub fn ticks(p: Price, n: i64) -> Price {
    Price(p.raw() + n * 10_000_000) // 0.1 tick
}

pub fn binance_open_orders(m: &MockExchange) -> Value {
    binance_open_orders_at(m, now_ms())
}

/// `/fapi/v1/openOrders` signed with the timestamp `ts`.
pub fn binance_open_orders_at(m: &MockExchange, ts: u64) -> Value {
    let s = signer();
    let query = format!("symbol=BTCUSDT&recvWindow=5000&timestamp={ts}");
    let sig = s.binance_rest(&query, "");
    let (status, v) = send(
        m,
        "GET",
        &format!("/fapi/v1/openOrders?{query}&signature={sig}"),
        &[("X-MBX-APIKEY".into(), TEST_API_KEY.into())],
        "",
    );
    assert_eq!(status, 200, "{v}");
    v
}

pub fn bybit_realtime(m: &MockExchange, extra: &str) -> Vec<Value> {
    bybit_realtime_at(m, extra, now_ms())
}

/// `/v5/order/realtime` signed with the timestamp `ts` (the venue's clock, when it has jumped).
pub fn bybit_realtime_at(m: &MockExchange, extra: &str, ts: u64) -> Vec<Value> {
    let s = signer();
    let query = format!("category=linear&symbol=BTCUSDT{extra}");
    let r = SignedRequest {
        method: Method::Get,
        path: "/v5/order/realtime".into(),
        query: query.clone(),
        body: String::new(),
        headers: vec![
            ("X-BAPI-API-KEY".into(), TEST_API_KEY.into()),
            ("X-BAPI-TIMESTAMP".into(), ts.to_string()),
            ("X-BAPI-RECV-WINDOW".into(), "5000".into()),
            ("X-BAPI-SIGN".into(), s.bybit_rest(ts, 5000, &query)),
        ],
    };
    let (status, v) = send_signed(m, &r);
    assert_eq!((status, v["retCode"].as_i64()), (200, Some(0)), "{v}");
    v["result"]["list"].as_array().unwrap().clone()
}

/// Runs `qalpha ARGS --venue V --rest-url … --ca-file …` against the mock with the given keys.
pub fn qalpha_as(m: &MockExchange, venue: &str, key: &str, secret: &str, args: &[&str]) -> Output {
    let v = venue.to_ascii_uppercase();
    let ca = m.ca_file.as_ref().unwrap().display().to_string();
    let url = format!("https://{}", m.addr);
    Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(args)
        .args(["--venue", venue, "--rest-url", &url, "--ca-file", &ca])
        .env(format!("QALPHA_{v}_API_KEY"), key)
        .env(format!("QALPHA_{v}_API_SECRET"), secret)
        .output()
        .unwrap()
}

/// [`qalpha_as`] with the mock's test account.
pub fn qalpha(m: &MockExchange, venue: &str, args: &[&str]) -> Output {
    qalpha_as(m, venue, TEST_API_KEY, TEST_API_SECRET, args)
}
