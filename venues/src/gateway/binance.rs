//! Binance USD-M order entry (REST and WebSocket API) and the user-data stream's order updates.

use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use super::json;
use super::request::{Method, SignedRequest};
use crate::sign::Signer;

/// Default `recvWindow` (ms); the docs advise ≤ 5000.
pub const RECV_WINDOW_MS: u64 = 5000;

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn tif(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::PostOnly => "GTX",
    }
}

/// The parameters of `POST /fapi/v1/order` / `order.place`, in a stable order.
pub fn new_order_params(o: &NewOrder) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("symbol", o.symbol.to_string()),
        ("side", side(o.side).to_string()),
    ];
    match o.order_type {
        OrderType::Limit => {
            p.push(("type", "LIMIT".into()));
            p.push(("timeInForce", tif(o.tif).into()));
            p.push(("quantity", o.qty.to_string()));
            p.push(("price", o.price.to_string()));
        }
        OrderType::Market => {
            p.push(("type", "MARKET".into()));
            p.push(("quantity", o.qty.to_string()));
        }
    }
    if o.reduce_only {
        p.push(("reduceOnly", "true".into()));
    }
    p.push(("newClientOrderId", o.client_id.to_string()));
    p
}

fn signed_rest(
    signer: &Signer,
    method: Method,
    path: &str,
    mut params: Vec<(&'static str, String)>,
    timestamp_ms: u64,
) -> SignedRequest {
    params.push(("recvWindow", RECV_WINDOW_MS.to_string()));
    params.push(("timestamp", timestamp_ms.to_string()));
    // Every value here is URL-safe ([A-Za-z0-9._-]); client ids are validated to that alphabet.
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sig = signer.binance_rest(&query, "");
    SignedRequest {
        method,
        path: path.into(),
        query: format!("{query}&signature={sig}"),
        body: String::new(),
        headers: vec![("X-MBX-APIKEY".into(), signer.api_key().into())],
    }
}

/// `POST /fapi/v1/order`.
pub fn rest_new_order(signer: &Signer, o: &NewOrder, timestamp_ms: u64) -> SignedRequest {
    signed_rest(
        signer,
        Method::Post,
        "/fapi/v1/order",
        new_order_params(o),
        timestamp_ms,
    )
}

/// `DELETE /fapi/v1/order` by client id.
pub fn rest_cancel(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    timestamp_ms: u64,
) -> SignedRequest {
    let p = vec![
        ("symbol", symbol.to_string()),
        ("origClientOrderId", client_id.to_string()),
    ];
    signed_rest(signer, Method::Delete, "/fapi/v1/order", p, timestamp_ms)
}

/// `PUT /fapi/v1/order` (amend: both price and quantity are required; the order loses its place).
pub fn rest_amend(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    s: Side,
    price: Price,
    qty: Qty,
    timestamp_ms: u64,
) -> SignedRequest {
    let p = vec![
        ("symbol", symbol.to_string()),
        ("origClientOrderId", client_id.to_string()),
        ("side", side(s).into()),
        ("quantity", qty.to_string()),
        ("price", price.to_string()),
    ];
    signed_rest(signer, Method::Put, "/fapi/v1/order", p, timestamp_ms)
}

/// `DELETE /fapi/v1/allOpenOrders`.
pub fn rest_cancel_all(signer: &Signer, symbol: Symbol, timestamp_ms: u64) -> SignedRequest {
    signed_rest(
        signer,
        Method::Delete,
        "/fapi/v1/allOpenOrders",
        vec![("symbol", symbol.to_string())],
        timestamp_ms,
    )
}

/// `GET /fapi/v1/order` by client id (open or recently closed).
pub fn rest_query_order(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    timestamp_ms: u64,
) -> SignedRequest {
    let p = vec![
        ("symbol", symbol.to_string()),
        ("origClientOrderId", client_id.to_string()),
    ];
    signed_rest(signer, Method::Get, "/fapi/v1/order", p, timestamp_ms)
}

/// `POST /fapi/v1/countdownCancelAll`: cancel every open order of `symbol` unless refreshed within
/// `countdown_ms` (0 disarms).
pub fn rest_countdown_cancel_all(
    signer: &Signer,
    symbol: Symbol,
    countdown_ms: u64,
    timestamp_ms: u64,
) -> SignedRequest {
    let p = vec![
        ("symbol", symbol.to_string()),
        ("countdownTime", countdown_ms.to_string()),
    ];
    signed_rest(
        signer,
        Method::Post,
        "/fapi/v1/countdownCancelAll",
        p,
        timestamp_ms,
    )
}

/// `GET /fapi/v1/openOrders` for one symbol.
pub fn rest_open_orders(signer: &Signer, symbol: Symbol, timestamp_ms: u64) -> SignedRequest {
    signed_rest(
        signer,
        Method::Get,
        "/fapi/v1/openOrders",
        vec![("symbol", symbol.to_string())],
        timestamp_ms,
    )
}

/// `GET /fapi/v2/positionRisk`: one symbol's position, or every symbol's without one.
pub fn rest_positions(signer: &Signer, symbol: Option<Symbol>, timestamp_ms: u64) -> SignedRequest {
    let p = symbol
        .map(|s| ("symbol", s.to_string()))
        .into_iter()
        .collect();
    signed_rest(
        signer,
        Method::Get,
        "/fapi/v2/positionRisk",
        p,
        timestamp_ms,
    )
}

/// A WebSocket API request (`order.place`, `order.cancel`, …): params signed sorted by name;
/// decimals as JSON strings, integers as numbers (B.6).
pub fn ws_request(
    signer: &Signer,
    id: &str,
    method: &str,
    params: Vec<(&'static str, String)>,
    timestamp_ms: u64,
) -> String {
    let mut p: Vec<(&str, String)> = params;
    p.push(("apiKey", signer.api_key().to_string()));
    p.push(("recvWindow", RECV_WINDOW_MS.to_string()));
    p.push(("timestamp", timestamp_ms.to_string()));
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sig = signer.binance_ws(&refs);
    p.push(("signature", sig));
    p.sort_by(|a, b| a.0.cmp(b.0));
    let fields = p
        .iter()
        .map(|(k, v)| match *k {
            "recvWindow" | "timestamp" => format!("\"{k}\":{v}"),
            _ => format!("\"{k}\":\"{v}\""),
        })
        .collect::<Vec<_>>()
        .join(",");
    format!("{{\"id\":\"{id}\",\"method\":\"{method}\",\"params\":{{{fields}}}}}")
}

/// Why a user-stream message could not become a report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("binance user stream: {0}")]
pub struct UserStreamError(pub String);

/// `ORDER_TRADE_UPDATE` → report. Other events (`ACCOUNT_UPDATE`, `TRADE_LITE`,
/// `listenKeyExpired`) return `Ok(None)`: positions and balances are reconciled elsewhere, and
/// TRADE_LITE lacks the cumulative quantity a report is keyed on.
pub fn parse_order_update(
    frame: &[u8],
    recv_ns: u64,
) -> Result<Option<ExecReport>, UserStreamError> {
    let v: serde_json::Value =
        serde_json::from_slice(frame).map_err(|e| UserStreamError(format!("not JSON: {e}")))?;
    if v["e"] != "ORDER_TRADE_UPDATE" {
        return Ok(None);
    }
    let o = &v["o"];
    let bad = |w: &str| UserStreamError(format!("ORDER_TRADE_UPDATE without a valid {w}"));
    let symbol = o["s"]
        .as_str()
        .and_then(Symbol::parse)
        .ok_or_else(|| bad("s"))?;
    let client_id = o["c"]
        .as_str()
        .and_then(ClientOrderId::parse)
        .unwrap_or_default();
    let side = match o["S"].as_str() {
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        _ => return Err(bad("S")),
    };
    let status = o["X"].as_str().ok_or_else(|| bad("X"))?;
    let kind = match o["x"].as_str().ok_or_else(|| bad("x"))? {
        "NEW" => ExecKind::Ack,
        "CANCELED" => ExecKind::Canceled,
        "EXPIRED" => ExecKind::Expired,
        "AMENDMENT" => ExecKind::Amended,
        "REJECTED" => ExecKind::Rejected,
        // CALCULATED: liquidation / ADL fills.
        "TRADE" | "CALCULATED" => {
            if status == "FILLED" {
                ExecKind::Fill
            } else {
                ExecKind::PartialFill
            }
        }
        other => return Err(UserStreamError(format!("unknown execution type {other:?}"))),
    };
    let qty = json::qty_or_zero(&o["q"]);
    let cum = json::qty_or_zero(&o["z"]);
    // Commission is absent when there is none; a rebate arrives negative.
    let fee = json::qty_or_zero(&o["n"]);
    Ok(Some(ExecReport {
        venue: Venue::BinanceUsdm,
        symbol,
        client_id,
        venue_order_id: o["i"].as_u64().unwrap_or(0),
        kind,
        side,
        last_px: json::price(&o["L"]),
        last_qty: json::qty_or_zero(&o["l"]),
        cum_qty: cum,
        leaves_qty: if matches!(status, "NEW" | "PARTIALLY_FILLED") {
            Qty(qty.raw() - cum.raw())
        } else {
            Qty::ZERO
        },
        fee,
        is_maker: o["m"].as_bool().unwrap_or(false),
        reason: 0,
        exch_ms: o["T"].as_u64().or_else(|| v["T"].as_u64()).unwrap_or(0),
        recv_ns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> NewOrder {
        NewOrder {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa1-1").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse("9000").unwrap(),
            qty: Qty::parse("1").unwrap(),
            reduce_only: false,
        }
    }

    #[test]
    fn rest_order_matches_the_documented_signature() {
        // B.1's official example, in the same parameter order, signs to the documented value.
        let s = Signer::new(
            "key",
            "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
        );
        let p = vec![
            ("symbol", "BTCUSDT".to_string()),
            ("side", "BUY".into()),
            ("type", "LIMIT".into()),
            ("quantity", "1".into()),
            ("price", "9000".into()),
            ("timeInForce", "GTC".into()),
        ];
        let r = signed_rest(&s, Method::Post, "/fapi/v1/order", p, 1591702613943);
        assert!(
            r.query.ends_with(
                "&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
            ),
            "{}",
            r.query
        );
        assert_eq!(r.header("x-mbx-apikey"), Some("key"));
    }

    #[test]
    fn new_order_parameters_by_type() {
        let s = Signer::new("k", "s");
        let mut o = order();
        o.tif = TimeInForce::PostOnly;
        o.reduce_only = true;
        let q = rest_new_order(&s, &o, 1).query;
        assert!(q.starts_with("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=1&price=9000&reduceOnly=true&newClientOrderId=qa1-1&recvWindow=5000&timestamp=1&signature="), "{q}");
        o.order_type = OrderType::Market;
        let q = rest_new_order(&s, &o, 1).query;
        assert!(
            q.contains("type=MARKET&quantity=1&")
                && !q.contains("price=")
                && !q.contains("timeInForce"),
            "{q}"
        );
        assert_eq!(
            rest_cancel_all(&s, o.symbol, 1).path,
            "/fapi/v1/allOpenOrders"
        );
        let p = rest_positions(&s, Some(o.symbol), 7);
        assert_eq!(
            (p.method, p.path.as_str()),
            (Method::Get, "/fapi/v2/positionRisk")
        );
        assert!(p
            .query
            .starts_with("symbol=BTCUSDT&recvWindow=5000&timestamp=7&signature="));
        assert!(rest_positions(&s, None, 7)
            .query
            .starts_with("recvWindow=5000&timestamp=7&"));
    }

    #[test]
    fn ws_api_message_is_signed_over_sorted_params() {
        let s = Signer::new("k", "secret");
        let msg = ws_request(
            &s,
            "r1",
            "order.place",
            new_order_params(&order()),
            1700000000000,
        );
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        let p = v["params"].as_object().unwrap();
        assert_eq!(
            (
                v["method"].as_str(),
                p["timestamp"].as_u64(),
                p["price"].as_str()
            ),
            (Some("order.place"), Some(1700000000000), Some("9000"))
        );
        let mut pairs: Vec<(String, String)> = p
            .iter()
            .filter(|(k, _)| *k != "signature")
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        pairs.sort();
        let joined = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            p["signature"].as_str().unwrap(),
            s.hmac_hex(&[joined.as_bytes()])
        );
    }

    #[test]
    fn order_trade_update_from_the_docs() {
        // Binance's documentation example (a trailing stop placed: execution type NEW).
        let f = br#"{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0","sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,"t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"TRAILING_STOP_MARKET","ps":"LONG","cp":false,"AP":"7476.89","cr":"5.0","rp":"0"}}"#;
        let r = parse_order_update(f, 9).unwrap().unwrap();
        assert_eq!(
            (r.kind, r.side, r.venue_order_id, r.client_id.as_str()),
            (ExecKind::Ack, Side::Sell, 8886774, "TEST")
        );
        assert_eq!(r.leaves_qty, Qty::parse("0.001").unwrap());
        // The same order partly and then fully filled.
        let fill = |x: &str, st: &str, l: &str, z: &str| {
            let t = std::str::from_utf8(f)
                .unwrap()
                .replace(
                    r#""x":"NEW","X":"NEW""#,
                    &format!(r#""x":"{x}","X":"{st}""#),
                )
                .replace(
                    r#""l":"0","z":"0","L":"0""#,
                    &format!(r#""l":"{l}","z":"{z}","L":"7103.1""#),
                )
                .replace(r#""q":"0.001""#, r#""q":"0.003""#);
            parse_order_update(t.as_bytes(), 9).unwrap().unwrap()
        };
        let p = fill("TRADE", "PARTIALLY_FILLED", "0.001", "0.001");
        assert_eq!(
            (p.kind, p.cum_qty, p.leaves_qty),
            (
                ExecKind::PartialFill,
                Qty::parse("0.001").unwrap(),
                Qty::parse("0.002").unwrap()
            )
        );
        let d = fill("TRADE", "FILLED", "0.002", "0.003");
        assert_eq!(
            (d.kind, d.last_px),
            (ExecKind::Fill, Price::parse("7103.1").unwrap())
        );
        assert!(parse_order_update(br#"{"e":"ACCOUNT_UPDATE"}"#, 0)
            .unwrap()
            .is_none());
        assert!(parse_order_update(b"{", 0).is_err());
        assert!(parse_order_update(
            br#"{"e":"ORDER_TRADE_UPDATE","o":{"s":"BTCUSDT","S":"UP"}}"#,
            0
        )
        .is_err());
    }
}
