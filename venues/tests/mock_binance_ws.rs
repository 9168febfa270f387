//! Binance USD-M private WebSockets against the mock on 127.0.0.1 (real TLS): order entry over the
//! WebSocket API (ws-fapi), the user data stream and its listen keys, the `drop-private` fault and
//! the countdownCancelAll dead-man switch. Requests are built and signed with the gateway's own
//! encoders; stream events are decoded with the gateway's own parser. No client subscribes to
//! market data, so the synthetic book stays at its seed and every expectation is exact.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::replay::Speed;
use qalpha_engine::transport::rest;
use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_venues::gateway::{binance, SignedRequest};
use qalpha_venues::mock::{
    FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec, TEST_API_KEY,
    TEST_API_SECRET,
};
use qalpha_venues::sign::Signer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

fn mock(faults: &str) -> MockExchange {
    let m = MockExchange::start(MockOptions {
        venue: Venue::BinanceUsdm,
        source: MarketSource::Synthetic(SyntheticSpec::default()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: None,
        speed: Speed::Factor(1.0),
        faults: FaultSpec::parse(faults).unwrap(),
        seed: 11,
    })
    .unwrap();
    // The market thread seeds the book: poll for it (500 × 20 ms at most).
    let seeded = (0..500).any(|_| {
        let ok = touch_opt(&m).is_some();
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(seeded, "mock book never seeded");
    m
}

fn tls(m: &MockExchange) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(m.ca_pem.as_ref().unwrap().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

fn signer() -> Signer {
    Signer::new(TEST_API_KEY, TEST_API_SECRET)
}

fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

fn http(m: &MockExchange, method: &str, target: &str, key: Option<&str>) -> (u16, Value) {
    let headers: Vec<(String, String)> = key
        .map(|k| ("X-MBX-APIKEY".to_string(), k.to_string()))
        .into_iter()
        .collect();
    let url = format!("https://localhost:{}{target}", m.addr.port());
    let r = rest::request(method, &url, &headers, b"", Some(&tls(m)), WAIT).unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn send_signed(m: &MockExchange, r: &SignedRequest) -> (u16, Value) {
    let url = format!("https://localhost:{}{}", m.addr.port(), r.target());
    let resp = rest::request(
        r.method.as_str(),
        &url,
        &r.headers,
        r.body.as_bytes(),
        Some(&tls(m)),
        WAIT,
    )
    .unwrap();
    (resp.status, serde_json::from_slice(&resp.body).unwrap())
}

/// A signed REST request built by hand (endpoints the gateway has no encoder for).
fn signed(m: &MockExchange, method: &str, path: &str, params: &str) -> (u16, Value) {
    let query = format!("{params}&recvWindow=5000&timestamp={}", now_ms());
    let sig = signer().binance_rest(&query, "");
    http(
        m,
        method,
        &format!("{path}?{query}&signature={sig}"),
        Some(TEST_API_KEY),
    )
}

fn touch_opt(m: &MockExchange) -> Option<(Price, Price)> {
    let (status, v) = http(m, "GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=5", None);
    let px = |l: &Value| Price::parse(l[0][0].as_str()?).ok();
    (status == 200).then_some(())?;
    Some((px(&v["bids"])?, px(&v["asks"])?))
}

fn ticks(p: Price, n: i64) -> Price {
    Price(p.raw() + n * 10_000_000)
}

fn q(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap_or_else(|| panic!("not a decimal: {v}"))).unwrap()
}

fn order(id: &str, side: Side, tif: TimeInForce, price: Price, qty: &str) -> NewOrder {
    NewOrder {
        venue: Venue::BinanceUsdm,
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

fn connect(m: &MockExchange, target: &str) -> Result<Ws, tungstenite::Error> {
    let tcp = TcpStream::connect(m.addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    let conn = ClientConnection::new(tls(m), name).unwrap();
    let url = format!("wss://localhost:{}{target}", m.addr.port());
    match tungstenite::client::client(url, StreamOwned::new(conn, tcp)) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => panic!("handshake timed out"),
    }
}

/// The next text message as JSON (each read is bounded by the socket's 10 s timeout).
fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a message within 10 s") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Sends a ws-fapi request and returns its response.
fn call(ws: &mut Ws, text: String) -> Value {
    ws.send(Message::text(text)).unwrap();
    next_json(ws)
}

fn place(ws: &mut Ws, id: &str, o: &NewOrder) -> Value {
    let r = binance::ws_request(
        &signer(),
        id,
        "order.place",
        binance::new_order_params(o),
        now_ms(),
    );
    call(ws, r)
}

fn by_client_id(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("symbol", "BTCUSDT".to_string()),
        ("origClientOrderId", id.to_string()),
    ]
}

fn listen_key(m: &MockExchange) -> String {
    let (st, v) = http(m, "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY));
    assert_eq!(st, 200, "{v}");
    v["listenKey"].as_str().unwrap().to_string()
}

/// Reads stream events until `done` says so (bounded by [`WAIT`] overall).
fn read_until(ws: &mut Ws, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < WAIT {
        let v = next_json(ws);
        let stop = done(&v);
        seen.push(v);
        if stop {
            return seen;
        }
    }
    panic!("condition not met within {WAIT:?}: {seen:?}");
}

#[test]
fn ws_api_order_lifecycle() {
    let m = mock("");
    let (bid, _) = touch_opt(&m).unwrap();
    let mut ws = connect(&m, "/ws-fapi/v1").unwrap();
    let s = signer();
    let o = order(
        "ws-rest",
        Side::Buy,
        TimeInForce::PostOnly,
        ticks(bid, -20),
        "0.002",
    );
    let r = place(&mut ws, "p1", &o);
    assert_eq!(
        (r["id"].as_str(), r["status"].as_u64()),
        (Some("p1"), Some(200)),
        "{r}"
    );
    let res = &r["result"];
    assert_eq!(
        (res["status"].as_str(), res["clientOrderId"].as_str()),
        (Some("NEW"), Some("ws-rest"))
    );
    assert_eq!(res["timeInForce"], "GTX");
    let limits = r["rateLimits"].as_array().unwrap();
    assert!(
        limits
            .iter()
            .any(|l| l["rateLimitType"] == "ORDERS" && l["count"] == 1),
        "{r}"
    );

    let st = call(
        &mut ws,
        binance::ws_request(&s, "s1", "order.status", by_client_id("ws-rest"), now_ms()),
    );
    assert_eq!(
        (st["status"].as_u64(), st["result"]["status"].as_str()),
        (Some(200), Some("NEW")),
        "{st}"
    );
    assert_eq!(st["result"]["orderId"], res["orderId"]);

    let mut p = by_client_id("ws-rest");
    let new_px = ticks(bid, -30);
    p.extend([
        ("side", "BUY".to_string()),
        ("quantity", "0.003".to_string()),
        ("price", new_px.to_string()),
    ]);
    let md = call(
        &mut ws,
        binance::ws_request(&s, "m1", "order.modify", p, now_ms()),
    );
    assert_eq!(md["status"].as_u64(), Some(200), "{md}");
    assert_eq!(
        Price::parse(md["result"]["price"].as_str().unwrap()).unwrap(),
        new_px
    );
    assert_eq!(q(&md["result"]["origQty"]), Qty::parse("0.003").unwrap());

    let c = call(
        &mut ws,
        binance::ws_request(&s, "c1", "order.cancel", by_client_id("ws-rest"), now_ms()),
    );
    assert_eq!(
        (c["status"].as_u64(), c["result"]["status"].as_str()),
        (Some(200), Some("CANCELED")),
        "{c}"
    );
    // REST sees the same order.
    let (st, v) = signed(
        &m,
        "GET",
        "/fapi/v1/order",
        "symbol=BTCUSDT&origClientOrderId=ws-rest",
    );
    assert_eq!((st, v["status"].as_str()), (200, Some("CANCELED")), "{v}");
    // Canceling again: REST's -2011 with the request's id.
    let again = call(
        &mut ws,
        binance::ws_request(&s, "7", "order.cancel", by_client_id("ws-rest"), now_ms()),
    );
    assert_eq!(
        (
            again["id"].as_str(),
            again["status"].as_u64(),
            again["error"]["code"].as_i64()
        ),
        (Some("7"), Some(400), Some(-2011)),
        "{again}"
    );

    // WebSocket ping → pong.
    ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    // The pong comes among at most a few other frames.
    for read in 0.. {
        assert!(read < 1000, "no pong");
        if let Message::Pong(p) = ws.read().unwrap() {
            assert_eq!(p.as_ref(), b"hi");
            break;
        }
    }
    assert!(m.counters.ws_orders.load(Ordering::Relaxed) >= 5);
    ws.close(None).unwrap();
}

#[test]
fn ws_api_errors_echo_the_id() {
    let m = mock("");
    let (bid, _) = touch_opt(&m).unwrap();
    let mut ws = connect(&m, "/ws-fapi/v1?returnRateLimits=false").unwrap();
    let o = order(
        "ws-err",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -20),
        "0.001",
    );
    let good = binance::ws_request(
        &signer(),
        "e1",
        "order.place",
        binance::new_order_params(&o),
        now_ms(),
    );
    let mut bad: Value = serde_json::from_str(&good).unwrap();
    bad["params"]["signature"] = Value::from("00".repeat(32));
    let r = call(&mut ws, bad.to_string());
    assert_eq!(
        (
            r["id"].as_str(),
            r["status"].as_u64(),
            r["error"]["code"].as_i64()
        ),
        (Some("e1"), Some(400), Some(-1022)),
        "{r}"
    );
    assert!(r.get("rateLimits").is_none(), "returnRateLimits=false: {r}");

    let old = binance::ws_request(
        &signer(),
        "e2",
        "order.place",
        binance::new_order_params(&o),
        now_ms() - 10_000,
    );
    let r = call(&mut ws, old);
    assert_eq!(
        (r["id"].as_str(), r["error"]["code"].as_i64()),
        (Some("e2"), Some(-1021)),
        "{r}"
    );

    let stranger = Signer::new("someone-else", TEST_API_SECRET);
    let r = call(
        &mut ws,
        binance::ws_request(
            &stranger,
            "e3",
            "order.place",
            binance::new_order_params(&o),
            now_ms(),
        ),
    );
    assert_eq!(
        (r["status"].as_u64(), r["error"]["code"].as_i64()),
        (Some(401), Some(-2015)),
        "{r}"
    );

    let r = call(&mut ws, r#"{"id":"e4","method":"ping","params":{}}"#.into());
    assert_eq!(
        (
            r["id"].as_str(),
            r["status"].as_u64(),
            r["error"]["code"].as_i64()
        ),
        (Some("e4"), Some(400), Some(-1102)),
        "{r}"
    );
    let r = call(&mut ws, "{not json".into());
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].as_i64()),
        (Value::Null, Some(-1102)),
        "{r}"
    );
    let r = call(
        &mut ws,
        r#"{"id":9,"method":"order.place","params":{"symbol":["x"]}}"#.into(),
    );
    assert_eq!(
        (r["id"].as_u64(), r["error"]["code"].as_i64()),
        (Some(9), Some(-1102)),
        "{r}"
    );

    // The unsigned original still goes through: nothing above created an order.
    let r = call(&mut ws, good);
    assert_eq!(
        (r["status"].as_u64(), r["result"]["status"].as_str()),
        (Some(200), Some("NEW")),
        "{r}"
    );
}

#[test]
fn fills_stream_order_and_account_updates() {
    let m = mock("");
    let (_, ask) = touch_opt(&m).unwrap();
    let key = listen_key(&m);
    let mut stream = connect(&m, &format!("/private/ws/{key}")).unwrap();
    let mut api = connect(&m, "/ws-fapi/v1").unwrap();
    // Through the touch: takes the best ask.
    let o = order(
        "ws-take",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(ask, 5),
        "0.001",
    );
    let r = place(&mut api, "t1", &o);
    assert_eq!(
        (r["status"].as_u64(), r["result"]["status"].as_str()),
        (Some(200), Some("FILLED")),
        "{r}"
    );
    let executed = q(&r["result"]["executedQty"]);
    assert_eq!(executed, o.qty);

    let events = read_until(&mut stream, |v| v["e"] == "ACCOUNT_UPDATE");
    let updates: Vec<&Value> = events
        .iter()
        .filter(|v| v["e"] == "ORDER_TRADE_UPDATE")
        .collect();
    assert_eq!(
        updates
            .first()
            .map(|v| (v["o"]["x"].as_str(), v["o"]["X"].as_str())),
        Some((Some("NEW"), Some("NEW"))),
        "{events:?}"
    );
    let last = updates.last().unwrap();
    let lo = &last["o"];
    assert_eq!(
        (lo["x"].as_str(), lo["X"].as_str(), lo["c"].as_str()),
        (Some("TRADE"), Some("FILLED"), Some("ws-take")),
        "{last}"
    );
    assert_eq!(q(&lo["z"]), executed);
    assert_eq!(
        (lo["N"].as_str(), lo["m"].as_bool(), lo["ps"].as_str()),
        (Some("USDT"), Some(false), Some("BOTH"))
    );
    assert!(lo["t"].as_u64().unwrap() > 0, "a fill carries a trade id");
    for u in &updates {
        let rep = binance::parse_order_update(u.to_string().as_bytes(), 1)
            .unwrap()
            .unwrap();
        assert_eq!(rep.cum_qty, q(&u["o"]["z"]));
        assert_eq!(rep.venue_order_id, r["result"]["orderId"].as_u64().unwrap());
    }
    let acct = events.last().unwrap();
    assert_eq!(acct["a"]["m"], "ORDER");
    assert_eq!(acct["a"]["B"][0]["a"], "USDT");
    let p = &acct["a"]["P"][0];
    let (st, risk) = send_signed(
        &m,
        &binance::rest_positions(&signer(), Some(o.symbol), now_ms()),
    );
    assert_eq!(st, 200, "{risk}");
    assert_eq!(q(&p["pa"]), q(&risk[0]["positionAmt"]));
    assert_eq!(q(&p["pa"]), executed);
    assert_eq!(
        Price::parse(p["ep"].as_str().unwrap()).unwrap(),
        Price::parse(risk[0]["entryPrice"].as_str().unwrap()).unwrap()
    );
    assert!(m.counters.private_sent.load(Ordering::Relaxed) >= 3);
}

#[test]
fn listen_key_lifecycle() {
    let m = mock("");
    let key = listen_key(&m);
    assert!(
        key.len() >= 60 && key.chars().all(|c| c.is_ascii_alphanumeric()),
        "{key}"
    );
    assert_eq!(
        listen_key(&m),
        key,
        "the account keeps its key while it is valid"
    );
    let (st, v) = http(&m, "POST", "/fapi/v1/listenKey", Some("nobody"));
    assert_eq!((st, v["code"].as_i64()), (401, Some(-2015)), "{v}");
    let (st, v) = http(&m, "PUT", "/fapi/v1/listenKey", Some(TEST_API_KEY));
    assert_eq!(
        (st, v["listenKey"].as_str()),
        (200, Some(key.as_str())),
        "{v}"
    );
    let (st, v) = http(
        &m,
        "PUT",
        "/fapi/v1/listenKey?listenKey=bogus",
        Some(TEST_API_KEY),
    );
    assert_eq!((st, v["code"].as_i64()), (400, Some(-1125)), "{v}");

    // All three stream URLs connect with a valid key.
    let mut by_query = connect(&m, &format!("/private/ws?listenKey={key}")).unwrap();
    let mut legacy = connect(&m, &format!("/ws/{key}")).unwrap();
    let (st, v) = http(&m, "DELETE", "/fapi/v1/listenKey", Some(TEST_API_KEY));
    assert_eq!((st, v), (200, serde_json::json!({})));
    for ws in [&mut by_query, &mut legacy] {
        let e = next_json(ws);
        assert_eq!(
            (e["e"].as_str(), e["listenKey"].as_str()),
            (Some("listenKeyExpired"), Some(key.as_str())),
            "{e}"
        );
    }
    let (st, v) = http(&m, "PUT", "/fapi/v1/listenKey", Some(TEST_API_KEY));
    assert_eq!((st, v["code"].as_i64()), (400, Some(-1125)), "{v}");
    match connect(&m, &format!("/private/ws/{key}")) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 400),
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
    // The refusal's body, read whole: the upgrade request sent as plain HTTP.
    for target in [
        format!("/ws/{key}"),
        "/private/ws?listenKey=nope".to_string(),
    ] {
        let upgrade = [
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let url = format!("https://localhost:{}{target}", m.addr.port());
        let r = rest::request("GET", &url, &upgrade, b"", Some(&tls(&m)), WAIT).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((r.status, v["code"].as_i64()), (400, Some(-1125)), "{v}");
    }

    // The same lifecycle over the WebSocket API.
    let mut api = connect(&m, "/ws-fapi/v1").unwrap();
    let start = |id: &str, method: &str| {
        format!(r#"{{"id":"{id}","method":"{method}","params":{{"apiKey":"{TEST_API_KEY}"}}}}"#)
    };
    let r = call(&mut api, start("u1", "userDataStream.start"));
    let k2 = r["result"]["listenKey"].as_str().unwrap().to_string();
    assert_ne!(k2, key);
    let r = call(&mut api, start("u2", "userDataStream.ping"));
    assert_eq!(r["result"]["listenKey"].as_str(), Some(k2.as_str()), "{r}");
    let r = call(&mut api, start("u3", "userDataStream.stop"));
    assert_eq!(
        (r["status"].as_u64(), r["result"].clone()),
        (Some(200), serde_json::json!({})),
        "{r}"
    );
    let r = call(&mut api, start("u4", "userDataStream.ping"));
    assert_eq!(r["error"]["code"].as_i64(), Some(-1125), "{r}");
}

#[test]
fn drop_private_cuts_the_stream() {
    let m = mock("drop-private=1.0");
    let (bid, _) = touch_opt(&m).unwrap();
    let key = listen_key(&m);
    let mut stream = connect(&m, &format!("/private/ws/{key}")).unwrap();
    let o = order(
        "ws-drop",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -20),
        "0.001",
    );
    let (st, v) = send_signed(&m, &binance::rest_new_order(&signer(), &o, now_ms()));
    assert_eq!(st, 200, "{v}");
    match stream.read() {
        Ok(Message::Close(_)) | Err(_) => {}
        Ok(other) => panic!("the message should have been dropped: {other:?}"),
    }
    assert!(m.counters.private_drops.load(Ordering::Relaxed) >= 1);
    assert_eq!(m.counters.private_sent.load(Ordering::Relaxed), 0);
}

#[test]
fn countdown_cancels_resting_orders() {
    let m = mock("");
    let (bid, _) = touch_opt(&m).unwrap();
    let key = listen_key(&m);
    let mut stream = connect(&m, &format!("/private/ws/{key}")).unwrap();
    let o = order(
        "ws-dead",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -20),
        "0.001",
    );
    let (st, v) = send_signed(&m, &binance::rest_new_order(&signer(), &o, now_ms()));
    assert_eq!((st, v["status"].as_str()), (200, Some("NEW")), "{v}");
    let (st, v) = signed(
        &m,
        "POST",
        "/fapi/v1/countdownCancelAll",
        "symbol=BTCUSDT&countdownTime=200",
    );
    assert_eq!(
        (st, v),
        (
            200,
            serde_json::json!({"symbol": "BTCUSDT", "countdownTime": "200"})
        )
    );
    let events = read_until(&mut stream, |v| v["o"]["x"] == "CANCELED");
    assert_eq!(events.last().unwrap()["o"]["c"], "ws-dead");
    let (st, v) = signed(
        &m,
        "GET",
        "/fapi/v1/order",
        "symbol=BTCUSDT&origClientOrderId=ws-dead",
    );
    assert_eq!((st, v["status"].as_str()), (200, Some("CANCELED")), "{v}");
    assert!(m.counters.deadman_fired.load(Ordering::Relaxed) >= 1);
    // Unknown symbol and missing countdown: REST's errors.
    let (st, v) = signed(
        &m,
        "POST",
        "/fapi/v1/countdownCancelAll",
        "symbol=ETHUSDT&countdownTime=0",
    );
    assert_eq!((st, v["code"].as_i64()), (400, Some(-1121)), "{v}");
    let (st, v) = signed(&m, "POST", "/fapi/v1/countdownCancelAll", "symbol=BTCUSDT");
    assert_eq!((st, v["code"].as_i64()), (400, Some(-1102)), "{v}");
}
