//! The mock's Bybit v5 Trade WS (`/v5/trade`) and private stream (`/v5/private`), over real TLS on
//! 127.0.0.1, driven with the gateway's own encoders (`ws_auth`, `ws_request`, `create_args`) and
//! checked with its decoder (`parse_private`) and the REST queries.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::replay::Speed;
use qalpha_engine::transport::rest;
use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_venues::gateway::bybit::{create_args, parse_private, ws_auth, ws_request};
use qalpha_venues::mock::{
    FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec, TEST_API_KEY,
    TEST_API_SECRET,
};
use qalpha_venues::sign::Signer;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

type Client = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

/// A running mock and what a client needs to reach it.
struct Mock {
    m: MockExchange,
    tls: Arc<ClientConfig>,
    dir: PathBuf,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(name: &str, faults: &str) -> Mock {
    let dir = std::env::temp_dir().join(format!("qa-bybit-ws-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = MockExchange::start(MockOptions {
        venue: Venue::BybitLinear,
        source: MarketSource::Synthetic(SyntheticSpec::default()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: Some(dir.clone()),
        speed: Speed::Factor(1.0),
        faults: FaultSpec::parse(faults).unwrap(),
        seed: 7,
    })
    .unwrap();
    let tls = qalpha_engine::transport::tls::client_config(m.ca_file.as_deref()).unwrap();
    let mock = Mock { m, tls, dir };
    // The market thread seeds the book: poll for it (500 × 20 ms at most).
    let seeded = (0..500).any(|_| {
        let ok = touch_opt(&mock).is_some();
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(seeded, "book never seeded");
    mock
}

fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

fn signer() -> Signer {
    Signer::new(TEST_API_KEY, TEST_API_SECRET)
}

fn http(m: &Mock, method: &str, target: &str, headers: &[(String, String)], body: &str) -> Value {
    let url = format!("https://{}{target}", m.m.addr);
    let r = rest::request(
        method,
        &url,
        headers,
        body.as_bytes(),
        Some(&m.tls),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

fn signed_get(m: &Mock, path: &str, query: &str) -> Value {
    let ts = now_ms();
    let h = headers(ts, signer().bybit_rest(ts, 5000, query));
    http(m, "GET", &format!("{path}?{query}"), &h, "")
}

fn signed_post(m: &Mock, path: &str, body: &str) -> Value {
    let ts = now_ms();
    let mut h = headers(ts, signer().bybit_rest(ts, 5000, body));
    h.push(("Content-Type".into(), "application/json".into()));
    http(m, "POST", path, &h, body)
}

fn headers(ts: u64, sign: String) -> Vec<(String, String)> {
    vec![
        ("X-BAPI-API-KEY".into(), TEST_API_KEY.into()),
        ("X-BAPI-TIMESTAMP".into(), ts.to_string()),
        ("X-BAPI-RECV-WINDOW".into(), "5000".into()),
        ("X-BAPI-SIGN".into(), sign),
    ]
}

fn touch_opt(m: &Mock) -> Option<(Price, Price)> {
    let v = http(
        m,
        "GET",
        "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=5",
        &[],
        "",
    );
    let px = |l: &Value| Price::parse(l[0][0].as_str()?).ok();
    Some((px(&v["result"]["b"])?, px(&v["result"]["a"])?))
}

fn ticks(p: Price, n: i64) -> Price {
    Price(p.raw() + n * 10_000_000)
}

fn order(id: &str, side: Side, tif: TimeInForce, price: Price, qty: &str) -> NewOrder {
    NewOrder {
        venue: Venue::BybitLinear,
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

fn realtime(m: &Mock, link: &str) -> Value {
    let v = signed_get(
        m,
        "/v5/order/realtime",
        &format!("category=linear&symbol=BTCUSDT&orderLinkId={link}"),
    );
    assert_eq!(v["retCode"], 0, "{v}");
    v["result"]["list"][0].clone()
}

fn q(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap()).unwrap()
}

fn connect(m: &Mock, path: &str) -> Client {
    let tcp = TcpStream::connect(m.m.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(m.tls.clone(), name).unwrap();
    let url = format!("wss://localhost:{}{path}", m.m.addr.port());
    let (ws, _) = tungstenite::client::client(url, StreamOwned::new(conn, tcp)).unwrap();
    ws
}

enum Recv {
    Msg(Value),
    Timeout,
    Closed,
}

fn recv(ws: &mut Client, within: Duration) -> Recv {
    let t0 = Instant::now();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Recv::Msg(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) => return Recv::Closed,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if t0.elapsed() >= within {
                    return Recv::Timeout;
                }
            }
            Err(_) => return Recv::Closed,
        }
    }
}

fn next(ws: &mut Client) -> Value {
    match recv(ws, Duration::from_secs(5)) {
        Recv::Msg(v) => v,
        Recv::Timeout => panic!("no message within 5 s"),
        Recv::Closed => panic!("connection closed"),
    }
}

fn ask(ws: &mut Client, text: &str) -> Value {
    ws.send(Message::text(text.to_string())).unwrap();
    next(ws)
}

fn auth_trade(m: &Mock) -> Client {
    let mut t = connect(m, "/v5/trade");
    let r = ask(&mut t, &ws_auth(&signer(), now_ms() + 10_000));
    assert_eq!(
        (r["retCode"].as_i64(), r["op"].as_str()),
        (Some(0), Some("auth")),
        "{r}"
    );
    assert!(r["connId"].as_str().is_some_and(|c| !c.is_empty()), "{r}");
    t
}

fn private(m: &Mock, topics: &[&str]) -> Client {
    let mut p = connect(m, "/v5/private");
    let r = ask(&mut p, &ws_auth(&signer(), now_ms() + 10_000));
    assert_eq!(
        (r["success"].as_bool(), r["op"].as_str()),
        (Some(true), Some("auth")),
        "{r}"
    );
    let sub = json!({"req_id": "s1", "op": "subscribe", "args": topics}).to_string();
    let r = ask(&mut p, &sub);
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(
        (r["req_id"].as_str(), r["op"].as_str()),
        (Some("s1"), Some("subscribe"))
    );
    p
}

/// Private messages until one satisfies `done` (bounded), all of them returned.
fn collect_until(p: &mut Client, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    while t0.elapsed() < Duration::from_secs(5) {
        if let Recv::Msg(v) = recv(p, Duration::from_millis(200)) {
            let stop = done(&v);
            out.push(v);
            if stop {
                return out;
            }
        }
    }
    panic!("condition not met within 5 s; got {out:?}");
}

fn is_order(v: &Value, link: &str, status: &str) -> bool {
    v["topic"] == "order"
        && v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["orderLinkId"] == link && d["orderStatus"] == status)
}

#[test]
fn trade_ws_create_amend_cancel_seen_on_the_private_stream() {
    let m = start("lifecycle", "");
    let mut p = private(&m, &["order", "execution", "position"]);
    let mut t = auth_trade(&m);
    let (bid, _) = touch_opt(&m).unwrap();
    let o = order(
        "ws-po-1",
        Side::Buy,
        TimeInForce::PostOnly,
        ticks(bid, -200),
        "0.001",
    );
    let r = ask(
        &mut t,
        &ws_request("c-1", "order.create", &create_args(&o), now_ms()),
    );
    assert_eq!(
        (r["retCode"].as_i64(), r["op"].as_str()),
        (Some(0), Some("order.create")),
        "{r}"
    );
    assert_eq!(r["reqId"], "c-1");
    assert_eq!(r["data"]["orderLinkId"], "ws-po-1");
    assert_eq!(r["data"]["orderId"].as_str().map(str::len), Some(36));
    for k in [
        "X-Bapi-Limit",
        "X-Bapi-Limit-Status",
        "X-Bapi-Limit-Reset-Timestamp",
        "Traceid",
    ] {
        assert!(r["header"][k].is_string(), "{k} missing: {r}");
    }
    assert!(
        r["retExtInfo"].is_object() && r["connId"].is_string(),
        "{r}"
    );
    // Amend and cancel by orderLinkId, with REST bodies.
    let new_px = ticks(bid, -210);
    let amend = json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "ws-po-1",
        "price": new_px.to_string()});
    let r = ask(
        &mut t,
        &ws_request("c-2", "order.amend", &amend.to_string(), now_ms()),
    );
    assert_eq!(r["retCode"], 0, "{r}");
    assert_eq!(
        Price::parse(realtime(&m, "ws-po-1")["price"].as_str().unwrap()).unwrap(),
        new_px
    );
    let cancel = json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "ws-po-1"});
    let r = ask(
        &mut t,
        &ws_request("c-3", "order.cancel", &cancel.to_string(), now_ms()),
    );
    assert_eq!(
        (r["retCode"].as_i64(), r["data"]["orderLinkId"].as_str()),
        (Some(0), Some("ws-po-1"))
    );
    assert_eq!(realtime(&m, "ws-po-1")["orderStatus"], "Cancelled");
    assert!(m.m.counters.ws_orders.load(Ordering::Relaxed) >= 3);
    // The private stream: New, then (after the amend) Cancelled; a position message per change.
    let msgs = collect_until(&mut p, |v| is_order(v, "ws-po-1", "Cancelled"));
    let new_at = msgs
        .iter()
        .position(|v| is_order(v, "ws-po-1", "New"))
        .expect("New first");
    assert!(new_at < msgs.len() - 1);
    let positions = msgs.iter().filter(|v| v["topic"] == "position").count();
    assert!(positions >= 2, "{msgs:?}");
    assert!(
        !msgs.iter().any(|v| v["topic"] == "execution"),
        "no fill expected"
    );
    for v in msgs.iter().filter(|v| v["topic"] == "order") {
        let d = &v["data"][0];
        assert_eq!(
            (d["category"].as_str(), d["positionIdx"].as_i64()),
            (Some("linear"), Some(0))
        );
        assert!(v["creationTime"].is_u64() && v["id"].is_string(), "{v}");
        let r = parse_private(v.to_string().as_bytes(), 1).unwrap();
        assert_eq!(r[0].client_id.as_str(), "ws-po-1");
    }
    let last = msgs.last().unwrap();
    assert_eq!(last["data"][0]["rejectReason"], "EC_NoError");
    assert_eq!(last["data"][0]["cancelType"], "CancelByUser");
}

#[test]
fn trade_ws_refuses_with_bybit_codes() {
    let m = start("errors", "");
    let s = signer();
    let mut t = connect(&m, "/v5/trade");
    let (bid, _) = touch_opt(&m).unwrap();
    let args = |id: &str| {
        create_args(&order(
            id,
            Side::Buy,
            TimeInForce::Gtc,
            ticks(bid, -300),
            "0.001",
        ))
    };
    // Before auth.
    let r = ask(
        &mut t,
        &ws_request("e-0", "order.create", &args("e0"), now_ms()),
    );
    assert_eq!(r["retCode"], 10003, "{r}");
    // Bad signature, unknown key, malformed auth.
    let bad = ws_auth(
        &Signer::new(TEST_API_KEY, "wrong-secret"),
        now_ms() + 10_000,
    );
    assert_eq!(ask(&mut t, &bad)["retCode"], 10004);
    let unknown = ws_auth(&Signer::new("nobody", TEST_API_SECRET), now_ms() + 10_000);
    assert_eq!(ask(&mut t, &unknown)["retCode"], 10003);
    let expired = ws_auth(&s, now_ms() - 1_000);
    assert_eq!(ask(&mut t, &expired)["retCode"], 10001);
    assert_eq!(ask(&mut t, r#"{"op":"auth","args":[]}"#)["retCode"], 10001);
    // Malformed JSON: an error reply, the connection stays usable.
    assert_eq!(ask(&mut t, "{nope")["retCode"], 10001);
    let pong = ask(&mut t, r#"{"op":"ping"}"#);
    assert_eq!(
        (pong["retCode"].as_i64(), pong["op"].as_str()),
        (Some(0), Some("pong")),
        "{pong}"
    );
    assert!(
        pong["data"][0].is_string() && pong["connId"].is_string(),
        "{pong}"
    );
    // Authenticate; twice is 20001.
    assert_eq!(ask(&mut t, &ws_auth(&s, now_ms() + 10_000))["retCode"], 0);
    assert_eq!(
        ask(&mut t, &ws_auth(&s, now_ms() + 10_000))["retCode"],
        20001
    );
    // Stale timestamp header.
    let r = ask(
        &mut t,
        &ws_request("e-1", "order.create", &args("e1"), now_ms() - 10_000),
    );
    assert_eq!(r["retCode"], 10002, "{r}");
    // Duplicate reqId.
    assert_eq!(
        ask(
            &mut t,
            &ws_request("e-2", "order.create", &args("e2"), now_ms())
        )["retCode"],
        0
    );
    let r = ask(
        &mut t,
        &ws_request("e-2", "order.create", &args("e3"), now_ms()),
    );
    assert_eq!(
        (r["retCode"].as_i64(), r["reqId"].as_str()),
        (Some(20006), Some("e-2")),
        "{r}"
    );
    // Two args, unknown op, business error (duplicate orderLinkId) as on REST.
    let two = format!("{},{}", args("e4"), args("e5"));
    assert_eq!(
        ask(&mut t, &ws_request("e-4", "order.create", &two, now_ms()))["retCode"],
        10001
    );
    assert_eq!(
        ask(
            &mut t,
            &ws_request("e-5", "order.explode", &args("e6"), now_ms())
        )["retCode"],
        10404
    );
    assert_eq!(
        ask(
            &mut t,
            &ws_request("e-6", "order.create", &args("e2"), now_ms())
        )["retCode"],
        110072
    );
    let cancel = json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "never"});
    assert_eq!(
        ask(
            &mut t,
            &ws_request("e-7", "order.cancel", &cancel.to_string(), now_ms())
        )["retCode"],
        110001
    );
    // Private stream: subscribe before auth, mixing forms, ping.
    let mut p = connect(&m, "/v5/private");
    let r = ask(
        &mut p,
        r#"{"req_id":"x","op":"subscribe","args":["order"]}"#,
    );
    assert_eq!(r["success"], false, "{r}");
    let bad = ws_auth(
        &Signer::new(TEST_API_KEY, "wrong-secret"),
        now_ms() + 10_000,
    );
    assert_eq!(ask(&mut p, &bad)["success"], false);
    assert_eq!(
        ask(&mut p, &ws_auth(&s, now_ms() + 10_000))["success"],
        true
    );
    let r = ask(
        &mut p,
        r#"{"req_id":"y","op":"subscribe","args":["order","execution.linear"]}"#,
    );
    assert_eq!(r["success"], false, "{r}");
    let r = ask(
        &mut p,
        r#"{"req_id":"z","op":"subscribe","args":["orderbook.1.BTCUSDT"]}"#,
    );
    assert_eq!(r["success"], false, "{r}");
    let r = ask(&mut p, r#"{"req_id":"p1","op":"ping"}"#);
    assert_eq!(
        (r["op"].as_str(), r["req_id"].as_str()),
        (Some("pong"), Some("p1")),
        "{r}"
    );
    assert!(
        r["args"][0]
            .as_str()
            .is_some_and(|ms| ms.parse::<u64>().is_ok()),
        "{r}"
    );
}

#[test]
fn fills_reach_execution_order_position_and_wallet() {
    let m = start("fills", "");
    let mut p = private(&m, &["order.linear", "execution.linear", "position.linear"]);
    // Another request may add wallet (all-in-one and per-category are only exclusive per request).
    let r = ask(
        &mut p,
        r#"{"req_id":"w","op":"subscribe","args":["wallet"]}"#,
    );
    assert_eq!(r["success"], true, "{r}");
    let mut t = auth_trade(&m);
    let (bid, _) = touch_opt(&m).unwrap();
    let o = order(
        "ws-ioc",
        Side::Sell,
        TimeInForce::Ioc,
        ticks(bid, -50),
        "0.010",
    );
    let r = ask(
        &mut t,
        &ws_request("f-1", "order.create", &create_args(&o), now_ms()),
    );
    assert_eq!(r["retCode"], 0, "{r}");
    let rest = realtime(&m, "ws-ioc");
    let cum = q(&rest["cumExecQty"]);
    assert!(cum.raw() > 0, "{rest}");
    let status = rest["orderStatus"].as_str().unwrap().to_string();
    let final_status = if status == "Filled" {
        "Filled"
    } else {
        "Cancelled"
    };
    let mut msgs = collect_until(&mut p, |v| {
        v["topic"] == "order.linear"
            && v["data"][0]["orderLinkId"] == "ws-ioc"
            && v["data"][0]["orderStatus"] == final_status
    });
    // The wallet and position follow the last fill's order message: take what is left.
    while let Recv::Msg(v) = recv(&mut p, Duration::from_millis(300)) {
        msgs.push(v);
    }
    let mut exec_sum = Qty::ZERO;
    let mut last_cum = Qty::ZERO;
    let mut exec_ids = std::collections::HashSet::new();
    for v in &msgs {
        let topic = v["topic"].as_str().unwrap();
        if topic == "execution.linear" {
            let d = &v["data"][0];
            assert_eq!(
                (d["execType"].as_str(), d["feeCurrency"].as_str()),
                (Some("Trade"), Some("USDT"))
            );
            assert!(
                exec_ids.insert(d["execId"].as_str().unwrap().to_string()),
                "execId reused"
            );
            exec_sum = Qty(exec_sum.raw() + q(&d["execQty"]).raw());
            let r = parse_private(v.to_string().as_bytes(), 1).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(
                (r[0].last_qty, r[0].cum_qty),
                (q(&d["execQty"]), exec_sum),
                "{v}"
            );
            assert_eq!(
                r[0].last_px,
                Price::parse(d["execPrice"].as_str().unwrap()).unwrap()
            );
            last_cum = r[0].cum_qty;
        } else if topic == "order.linear" {
            parse_private(v.to_string().as_bytes(), 1).unwrap();
        }
    }
    assert_eq!(exec_sum, cum, "Σ execQty vs REST cumExecQty");
    assert_eq!(last_cum, cum);
    // Position: the last pushed size equals REST's.
    let pos = msgs
        .iter()
        .rev()
        .find(|v| v["topic"] == "position.linear")
        .expect("position");
    let listed = signed_get(&m, "/v5/position/list", "category=linear&symbol=BTCUSDT");
    let item = &listed["result"]["list"][0];
    assert_eq!(
        q(&pos["data"][0]["size"]),
        q(&item["size"]),
        "{pos} vs {item}"
    );
    assert_eq!(
        (pos["data"][0]["side"].as_str(), item["side"].as_str()),
        (Some("Sell"), Some("Sell"))
    );
    // Wallet: 100000 USDT less the fees (nothing realised yet).
    let w = msgs
        .iter()
        .rev()
        .find(|v| v["topic"] == "wallet")
        .expect("wallet");
    let fee = q(&rest["cumExecFee"]);
    let expect = Qty(Qty::from_units(100_000).raw() - fee.raw());
    assert_eq!(q(&w["data"][0]["totalWalletBalance"]), expect, "{w}");
    assert_eq!(q(&w["data"][0]["coin"][0]["walletBalance"]), expect);
    assert!(m.m.counters.private_sent.load(Ordering::Relaxed) >= msgs.len() as u64);
}

#[test]
fn drop_private_closes_the_connection_on_its_first_message() {
    let m = start("drop", "drop-private=1.0");
    let mut p = private(&m, &["order"]);
    let mut t = auth_trade(&m);
    let (bid, _) = touch_opt(&m).unwrap();
    let o = order(
        "ws-drop",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -300),
        "0.001",
    );
    assert_eq!(
        ask(
            &mut t,
            &ws_request("d-1", "order.create", &create_args(&o), now_ms())
        )["retCode"],
        0
    );
    // Bounded polling (25 × 200 ms): the mock closes the stream after dropping the message.
    let mut closed = false;
    for _ in 0..25 {
        match recv(&mut p, Duration::from_millis(200)) {
            Recv::Closed => {
                closed = true;
                break;
            }
            Recv::Msg(v) => panic!("the message should have been dropped: {v}"),
            Recv::Timeout => {}
        }
    }
    assert!(closed, "the private stream is still open after 25 polls");
    assert!(m.m.counters.private_drops.load(Ordering::Relaxed) >= 1);
    assert_eq!(m.m.counters.private_sent.load(Ordering::Relaxed), 0);
}

fn dcp_body(window: Value, product: &str) -> String {
    json!({"product": product, "timeWindow": window}).to_string()
}

#[test]
fn disconnection_protection_cancels_only_when_no_connection_returns() {
    let m = start("dcp", "");
    let path = "/v5/order/disconnected-cancel-all";
    assert_eq!(
        signed_post(&m, path, &dcp_body(json!(2), "DERIVATIVES"))["retCode"],
        10001
    );
    assert_eq!(
        signed_post(&m, path, &dcp_body(json!(3), "OPTIONS"))["retCode"],
        10001
    );
    let r = signed_post(&m, path, &dcp_body(json!(3), "DERIVATIVES"));
    assert_eq!(
        (r["retCode"].as_i64(), r["retMsg"].as_str()),
        (Some(0), Some("success")),
        "{r}"
    );
    let (bid, _) = touch_opt(&m).unwrap();
    let o = order(
        "ws-dcp",
        Side::Buy,
        TimeInForce::Gtc,
        ticks(bid, -2000),
        "0.001",
    );
    let r = signed_post(&m, "/v5/order/create", &create_args(&o));
    assert_eq!(r["retCode"], 0, "{r}");
    // Drop a dcp connection and come back inside the window: nothing is cancelled.
    let p1 = private(&m, &["dcp"]);
    drop(p1);
    let mut p2 = private(&m, &["dcp"]);
    std::thread::sleep(Duration::from_millis(3_800));
    assert_eq!(realtime(&m, "ws-dcp")["orderStatus"], "New");
    let r = ask(&mut p2, r#"{"req_id":"k","op":"ping"}"#);
    assert_eq!(r["op"], "pong");
    // Now lose it for good: cancelled once the window has passed.
    let lost = Instant::now();
    drop(p2);
    // Right after the loss it still rests: the switch waits for its window.
    assert_eq!(realtime(&m, "ws-dcp")["orderStatus"], "New", "fired early");
    loop {
        let status = realtime(&m, "ws-dcp")["orderStatus"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "Cancelled" {
            break;
        }
        assert!(
            lost.elapsed() < Duration::from_secs(5),
            "not cancelled: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(m.m.counters.deadman_fired.load(Ordering::Relaxed) >= 1);
}
