//! The mock's instrument descriptions and the filters it enforces, over real TLS on 127.0.0.1:
//! `GET /fapi/v1/exchangeInfo` and `GET /v5/market/instruments-info` parse (with the project's own
//! parsers) into the rules the mock applies, and an off-tick price, an off-step quantity and a
//! too-small notional are refused with the venue's codes over REST and over the WebSocket order
//! APIs of both venues, the order not placed. Requests are built with the gateway's encoders.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use qalpha_engine::event::Venue;
use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::replay::Speed;
use qalpha_engine::transport::rest;
use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_venues::gateway::{binance, bybit, SignedRequest};
use qalpha_venues::instrument::{parse_binance_exchange_info, parse_bybit_instruments};
use qalpha_venues::mock::instruments::rules;
use qalpha_venues::mock::{
    FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec, TEST_API_KEY,
    TEST_API_SECRET,
};
use qalpha_venues::sign::Signer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

struct Mock {
    m: MockExchange,
    venue: Venue,
    tls: Arc<ClientConfig>,
}

fn start(venue: Venue) -> Mock {
    let m = MockExchange::start(MockOptions {
        venue,
        source: MarketSource::Synthetic(SyntheticSpec::default()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: None,
        speed: Speed::Factor(1.0),
        faults: FaultSpec::parse("").unwrap(),
        seed: 5,
    })
    .unwrap();
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(m.ca_pem.as_ref().unwrap().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mock = Mock {
        m,
        venue,
        tls: Arc::new(tls),
    };
    // The market thread seeds the book: poll for it (500 × 20 ms at most).
    let seeded = (0..500).any(|_| {
        let ok = bid_opt(&mock).is_some();
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(seeded, "mock book never seeded");
    mock
}

fn signer() -> Signer {
    Signer::new(TEST_API_KEY, TEST_API_SECRET)
}

fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

fn get(m: &Mock, target: &str) -> rest::HttpResponse {
    let url = format!("https://localhost:{}{target}", m.m.addr.port());
    rest::request("GET", &url, &[], b"", Some(&m.tls), WAIT).unwrap()
}

fn json(r: &rest::HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn send(m: &Mock, r: &SignedRequest) -> (u16, Value) {
    let url = format!("https://localhost:{}{}", m.m.addr.port(), r.target());
    let resp = rest::request(
        r.method.as_str(),
        &url,
        &r.headers,
        r.body.as_bytes(),
        Some(&m.tls),
        WAIT,
    )
    .unwrap();
    (resp.status, json(&resp))
}

/// The best bid, from the venue's public depth endpoint.
fn bid_opt(m: &Mock) -> Option<Price> {
    let (target, bids) = match m.venue {
        Venue::BinanceUsdm => ("/fapi/v1/depth?symbol=BTCUSDT&limit=5", "/bids"),
        Venue::BybitLinear => (
            "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=5",
            "/result/b",
        ),
    };
    let v = json(&get(m, target));
    Price::parse(v.pointer(bids)?.get(0)?.get(0)?.as_str()?).ok()
}

fn ticks(p: Price, n: i64) -> Price {
    Price(p.raw() + n * 10_000_000)
}

fn order(venue: Venue, id: &str, price: Price, qty: &str) -> NewOrder {
    NewOrder {
        venue,
        symbol: Symbol::parse("BTCUSDT").unwrap(),
        client_id: ClientOrderId::parse(id).unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        price,
        qty: Qty::parse(qty).unwrap(),
        reduce_only: false,
    }
}

fn connect(m: &Mock, path: &str) -> Ws {
    let tcp = TcpStream::connect(m.m.addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    let conn = ClientConnection::new(m.tls.clone(), name).unwrap();
    let url = format!("wss://localhost:{}{path}", m.m.addr.port());
    let (ws, _) = tungstenite::client::client(url, StreamOwned::new(conn, tcp)).unwrap();
    ws
}

/// Sends one request and returns the next text message (bounded by the 10 s read timeout).
fn call(ws: &mut Ws, text: String) -> Value {
    ws.send(Message::text(text)).unwrap();
    loop {
        match ws.read().expect("a reply within 10 s") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

#[test]
fn binance_exchange_info_parses_into_the_mocks_rules() {
    let m = start(Venue::BinanceUsdm);
    let r = get(&m, "/fapi/v1/exchangeInfo");
    assert_eq!(r.status, 200);
    let used: u32 = r.header("x-mbx-used-weight-1m").unwrap().parse().unwrap();
    assert!(used >= 1);
    let v = json(&r);
    assert_eq!(v["timezone"], "UTC");
    assert!(v["serverTime"].as_u64().is_some_and(|t| t > 0), "{v}");
    let limits = v["rateLimits"].as_array().unwrap();
    assert!(limits
        .iter()
        .any(|l| l["rateLimitType"] == "REQUEST_WEIGHT" && l["limit"] == 2400));
    assert_eq!(
        limits
            .iter()
            .filter(|l| l["rateLimitType"] == "ORDERS")
            .count(),
        2
    );
    let btc = &v["symbols"][0];
    assert_eq!(
        (
            btc["symbol"].as_str(),
            btc["contractType"].as_str(),
            btc["status"].as_str()
        ),
        (Some("BTCUSDT"), Some("PERPETUAL"), Some("TRADING"))
    );
    assert_eq!(
        (btc["baseAsset"].as_str(), btc["marginAsset"].as_str()),
        (Some("BTC"), Some("USDT"))
    );
    let parsed = parse_binance_exchange_info(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let sym = Symbol::parse("BTCUSDT").unwrap();
    assert_eq!(parsed, vec![rules(Venue::BinanceUsdm, sym)]);
    assert_eq!(parsed[0].tick, Price::parse("0.1").unwrap());
    assert_eq!(parsed[0].min_notional, Qty::parse("5").unwrap());
    // Weight 1 per call.
    let again: u32 = get(&m, "/fapi/v1/exchangeInfo")
        .header("x-mbx-used-weight-1m")
        .unwrap()
        .parse()
        .unwrap();
    assert!(again > used);
}

#[test]
fn bybit_instruments_info_parses_into_the_mocks_rules() {
    let m = start(Venue::BybitLinear);
    let sym = Symbol::parse("BTCUSDT").unwrap();
    for target in [
        "/v5/market/instruments-info?category=linear",
        "/v5/market/instruments-info?category=linear&symbol=BTCUSDT",
    ] {
        let r = get(&m, target);
        assert_eq!(r.status, 200);
        let v = json(&r);
        assert_eq!(
            (
                v["result"]["category"].as_str(),
                v["result"]["nextPageCursor"].as_str()
            ),
            (Some("linear"), Some(""))
        );
        let item = &v["result"]["list"][0];
        assert_eq!(item["contractType"], "LinearPerpetual");
        assert_eq!(item["fundingInterval"], 480);
        assert_eq!(item["lotSizeFilter"]["minNotionalValue"], "5");
        let parsed = parse_bybit_instruments(std::str::from_utf8(&r.body).unwrap()).unwrap();
        assert_eq!(parsed, vec![rules(Venue::BybitLinear, sym)]);
    }
    let v = json(&get(
        &m,
        "/v5/market/instruments-info?category=linear&symbol=XRPUSDT",
    ));
    assert_eq!(v["retCode"], 0);
    assert_eq!(v["result"]["list"].as_array().map(Vec::len), Some(0));
    let v = json(&get(&m, "/v5/market/instruments-info?category=spot"));
    assert_eq!(v["retCode"], 10001, "{v}");
}

#[test]
fn binance_filters_refuse_over_rest_and_ws() {
    let m = start(Venue::BinanceUsdm);
    let bid = bid_opt(&m).unwrap();
    let v = Venue::BinanceUsdm;
    let s = signer();
    let below = ticks(bid, -50);
    let off_tick = Price(below.raw() + 5_000_000); // + 0.05
                                                   // Off tick, off step (3 decimals is BTCUSDT's quantityPrecision, so a finer quantity is a
                                                   // precision error, as on Binance), too small a notional (0.001 × 1000 = 1 < 5).
    let cases = [
        ("bn-tick", off_tick, "0.002", -4014),
        ("bn-step", below, "0.0015", -1111),
        ("bn-small", Price::parse("1000").unwrap(), "0.001", -4164),
    ];
    let mut ws = connect(&m, "/ws-fapi/v1");
    for (id, px, qty, code) in cases {
        let o = order(v, id, px, qty);
        let (st, body) = send(&m, &binance::rest_new_order(&s, &o, now_ms()));
        assert_eq!(
            (st, body["code"].as_i64()),
            (400, Some(code as i64)),
            "{id}: {body}"
        );
        let r = call(
            &mut ws,
            binance::ws_request(
                &s,
                id,
                "order.place",
                binance::new_order_params(&o),
                now_ms(),
            ),
        );
        assert_eq!(
            r["error"]["code"].as_i64(),
            Some(code as i64),
            "{id} ws: {r}"
        );
        // Not placed.
        let (st, q) = send(
            &m,
            &binance::rest_query_order(&s, o.symbol, o.client_id, now_ms()),
        );
        assert_eq!((st, q["code"].as_i64()), (400, Some(-2013)), "{id}: {q}");
    }
    let (_, body) = send(
        &m,
        &binance::rest_new_order(&s, &order(v, "bn-0", off_tick, "0.002"), now_ms()),
    );
    assert_eq!(body["msg"], "Price not increased by tick size.");
    let small = order(v, "bn-1", Price::parse("1000").unwrap(), "0.001");
    let (_, body) = send(&m, &binance::rest_new_order(&s, &small, now_ms()));
    assert_eq!(
        body["msg"],
        "Order's notional must be no smaller than 5 (unless you choose reduce only)."
    );

    // Reduce-only is exempt from the notional: with no position it is the reduce-only rule that
    // answers (-2022), never -4164.
    let mut ro = order(v, "bn-ro", Price::parse("1000").unwrap(), "0.001");
    ro.reduce_only = true;
    let (_, body) = send(&m, &binance::rest_new_order(&s, &ro, now_ms()));
    assert_ne!(body["code"].as_i64(), Some(-4164), "{body}");
    ro.client_id = ClientOrderId::parse("bn-ro-ws").unwrap();
    let r = call(
        &mut ws,
        binance::ws_request(
            &s,
            "ro",
            "order.place",
            binance::new_order_params(&ro),
            now_ms(),
        ),
    );
    assert_ne!(r["error"]["code"].as_i64(), Some(-4164), "{r}");

    // A valid order passes, over both transports; amends are filtered too.
    let ok = order(v, "bn-ok", below, "0.002");
    let (st, body) = send(&m, &binance::rest_new_order(&s, &ok, now_ms()));
    assert_eq!((st, body["status"].as_str()), (200, Some("NEW")), "{body}");
    let ok_ws = order(v, "bn-ok-ws", below, "0.002");
    let r = call(
        &mut ws,
        binance::ws_request(
            &s,
            "ok",
            "order.place",
            binance::new_order_params(&ok_ws),
            now_ms(),
        ),
    );
    assert_eq!(r["status"].as_u64(), Some(200), "{r}");
    let amend = |px: Price, qty: &str| {
        let q = Qty::parse(qty).unwrap();
        send(
            &m,
            &binance::rest_amend(&s, ok.symbol, ok.client_id, Side::Buy, px, q, now_ms()),
        )
    };
    assert_eq!(amend(off_tick, "0.002").1["code"], -4014);
    assert_eq!(
        amend(Price::parse("1000").unwrap(), "0.001").1["code"],
        -4164
    );
    let (st, body) = amend(ticks(below, -1), "0.003");
    assert_eq!(
        (st, body["origQty"].as_str()),
        (200, Some("0.003")),
        "{body}"
    );
}

fn bybit_ws(m: &Mock) -> Ws {
    let mut t = connect(m, "/v5/trade");
    let r = call(&mut t, bybit::ws_auth(&signer(), now_ms() + 10_000));
    assert_eq!(r["retCode"], 0, "{r}");
    t
}

#[test]
fn bybit_filters_refuse_over_rest_and_ws() {
    let m = start(Venue::BybitLinear);
    let bid = bid_opt(&m).unwrap();
    let v = Venue::BybitLinear;
    let s = signer();
    let below = ticks(bid, -50);
    let off_tick = Price(below.raw() + 5_000_000);
    let cases = [
        ("by-tick", off_tick, "0.002", 10001),
        ("by-step", below, "0.0015", 10001),
        ("by-zero", below, "0.0005", 110017),
        ("by-small", Price::parse("1000").unwrap(), "0.001", 110094),
    ];
    let mut ws = bybit_ws(&m);
    for (id, px, qty, code) in cases {
        let o = order(v, id, px, qty);
        let (_, body) = send(&m, &bybit::rest_create(&s, &o, now_ms()));
        assert_eq!(body["retCode"].as_i64(), Some(code), "{id}: {body}");
        let ws_id = ClientOrderId::parse(&format!("{id}-ws")).unwrap();
        let o_ws = NewOrder {
            client_id: ws_id,
            ..o
        };
        let r = call(
            &mut ws,
            bybit::ws_request(id, "order.create", &bybit::create_args(&o_ws), now_ms()),
        );
        assert_eq!(r["retCode"].as_i64(), Some(code), "{id} ws: {r}");
        let q = send(
            &m,
            &bybit::rest_query_order(&s, o.symbol, o.client_id, now_ms()),
        )
        .1;
        assert_eq!(
            q["result"]["list"].as_array().map(Vec::len),
            Some(0),
            "{id}: {q}"
        );
    }
    let (_, body) = send(
        &m,
        &bybit::rest_create(&s, &order(v, "by-0", off_tick, "0.002"), now_ms()),
    );
    assert!(
        body["retMsg"]
            .as_str()
            .is_some_and(|t| t.starts_with("params error: price must be a multiple of tickSize")),
        "{body}"
    );

    // Reduce-only is exempt from the notional minimum.
    let mut ro = order(v, "by-ro", Price::parse("1000").unwrap(), "0.001");
    ro.reduce_only = true;
    let (_, body) = send(&m, &bybit::rest_create(&s, &ro, now_ms()));
    assert_ne!(body["retCode"].as_i64(), Some(110094), "{body}");
    ro.client_id = ClientOrderId::parse("by-ro-ws").unwrap();
    let r = call(
        &mut ws,
        bybit::ws_request("ro", "order.create", &bybit::create_args(&ro), now_ms()),
    );
    assert_ne!(r["retCode"].as_i64(), Some(110094), "{r}");

    // A valid order passes over both transports; amends are filtered too.
    let ok = order(v, "by-ok", below, "0.002");
    let (_, body) = send(&m, &bybit::rest_create(&s, &ok, now_ms()));
    assert_eq!(body["retCode"], 0, "{body}");
    let ok_ws = order(v, "by-ok-ws", below, "0.002");
    let r = call(
        &mut ws,
        bybit::ws_request("ok", "order.create", &bybit::create_args(&ok_ws), now_ms()),
    );
    assert_eq!(r["retCode"], 0, "{r}");
    let amend = |px: Price, qty: &str| {
        let q = Qty::parse(qty).unwrap();
        send(
            &m,
            &bybit::rest_amend(&s, ok.symbol, ok.client_id, px, q, now_ms()),
        )
        .1
    };
    assert_eq!(amend(off_tick, "0.002")["retCode"], 10001);
    assert_eq!(
        amend(Price::parse("1000").unwrap(), "0.001")["retCode"],
        110094
    );
    assert_eq!(amend(ticks(below, -1), "0.003")["retCode"], 0);
}
