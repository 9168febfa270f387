//! Bybit v5 linear order entry (REST and Trade WebSocket) and the private `order` / `execution`
//! topics.

use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use super::request::{Method, SignedRequest};
use super::{hash_order_id, json};
use crate::sign::Signer;

/// Default `X-BAPI-RECV-WINDOW` (ms).
pub const RECV_WINDOW_MS: u64 = 5000;

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

/// The `order/create` arguments as a JSON object (all values strings, as v5 requires).
pub fn create_args(o: &NewOrder) -> String {
    let mut f = vec![
        ("category", "linear".to_string()),
        ("symbol", o.symbol.to_string()),
        ("side", side(o.side).into()),
        (
            "orderType",
            match o.order_type {
                OrderType::Limit => "Limit",
                OrderType::Market => "Market",
            }
            .into(),
        ),
        ("qty", o.qty.to_string()),
    ];
    if o.order_type == OrderType::Limit {
        f.push(("price", o.price.to_string()));
        f.push((
            "timeInForce",
            match o.tif {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "PostOnly",
            }
            .into(),
        ));
    }
    f.push(("orderLinkId", o.client_id.to_string()));
    let mut s = String::with_capacity(200);
    s.push('{');
    for (i, (k, v)) in f.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{k}\":\"{v}\""));
    }
    if o.reduce_only {
        s.push_str(",\"reduceOnly\":true");
    }
    s.push('}');
    s
}

fn signed_post(signer: &Signer, path: &str, body: String, timestamp_ms: u64) -> SignedRequest {
    let sig = signer.bybit_rest(timestamp_ms, RECV_WINDOW_MS, &body);
    SignedRequest {
        method: Method::Post,
        path: path.into(),
        query: String::new(),
        headers: vec![
            ("X-BAPI-API-KEY".into(), signer.api_key().into()),
            ("X-BAPI-TIMESTAMP".into(), timestamp_ms.to_string()),
            ("X-BAPI-RECV-WINDOW".into(), RECV_WINDOW_MS.to_string()),
            ("X-BAPI-SIGN".into(), sig),
            ("Content-Type".into(), "application/json".into()),
        ],
        body,
    }
}

/// `POST /v5/order/create`.
pub fn rest_create(signer: &Signer, o: &NewOrder, timestamp_ms: u64) -> SignedRequest {
    signed_post(signer, "/v5/order/create", create_args(o), timestamp_ms)
}

/// `POST /v5/order/cancel` by `orderLinkId`.
pub fn rest_cancel(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    timestamp_ms: u64,
) -> SignedRequest {
    let body = format!(
        "{{\"category\":\"linear\",\"symbol\":\"{symbol}\",\"orderLinkId\":\"{client_id}\"}}"
    );
    signed_post(signer, "/v5/order/cancel", body, timestamp_ms)
}

/// `POST /v5/order/amend` (only the changed fields are sent).
pub fn rest_amend(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    price: Price,
    qty: Qty,
    timestamp_ms: u64,
) -> SignedRequest {
    let body = format!("{{\"category\":\"linear\",\"symbol\":\"{symbol}\",\"orderLinkId\":\"{client_id}\",\"qty\":\"{qty}\",\"price\":\"{price}\"}}");
    signed_post(signer, "/v5/order/amend", body, timestamp_ms)
}

/// `POST /v5/order/cancel-all` for one symbol.
pub fn rest_cancel_all(signer: &Signer, symbol: Symbol, timestamp_ms: u64) -> SignedRequest {
    signed_post(
        signer,
        "/v5/order/cancel-all",
        format!("{{\"category\":\"linear\",\"symbol\":\"{symbol}\"}}"),
        timestamp_ms,
    )
}

/// A signed GET: the signature covers the query string (C.5).
fn signed_get(signer: &Signer, path: &str, query: String, timestamp_ms: u64) -> SignedRequest {
    let sig = signer.bybit_rest(timestamp_ms, RECV_WINDOW_MS, &query);
    SignedRequest {
        method: Method::Get,
        path: path.into(),
        query,
        body: String::new(),
        headers: vec![
            ("X-BAPI-API-KEY".into(), signer.api_key().into()),
            ("X-BAPI-TIMESTAMP".into(), timestamp_ms.to_string()),
            ("X-BAPI-RECV-WINDOW".into(), RECV_WINDOW_MS.to_string()),
            ("X-BAPI-SIGN".into(), sig),
        ],
    }
}

/// `GET /v5/order/realtime` for one order by `orderLinkId` (open or recently closed).
pub fn rest_query_order(
    signer: &Signer,
    symbol: Symbol,
    client_id: ClientOrderId,
    timestamp_ms: u64,
) -> SignedRequest {
    let query = format!("category=linear&symbol={symbol}&orderLinkId={client_id}");
    signed_get(signer, "/v5/order/realtime", query, timestamp_ms)
}

/// `POST /v5/order/disconnected-cancel-all`: cancel every derivatives order when the `dcp`
/// private connection is lost for `window_s` seconds (3…300).
pub fn rest_disconnected_cancel_all(
    signer: &Signer,
    window_s: u64,
    timestamp_ms: u64,
) -> SignedRequest {
    let body = format!("{{\"product\":\"DERIVATIVES\",\"timeWindow\":{window_s}}}");
    signed_post(
        signer,
        "/v5/order/disconnected-cancel-all",
        body,
        timestamp_ms,
    )
}

/// `GET /v5/order/realtime` for one symbol (open orders).
pub fn rest_open_orders(signer: &Signer, symbol: Symbol, timestamp_ms: u64) -> SignedRequest {
    let query = format!("category=linear&symbol={symbol}");
    signed_get(signer, "/v5/order/realtime", query, timestamp_ms)
}

/// `GET /v5/position/list`: one symbol's position, or every USDT-settled one without a symbol
/// (Bybit requires `symbol` or `settleCoin`).
pub fn rest_positions(signer: &Signer, symbol: Option<Symbol>, timestamp_ms: u64) -> SignedRequest {
    let query = match symbol {
        Some(s) => format!("category=linear&symbol={s}"),
        None => "category=linear&settleCoin=USDT".to_string(),
    };
    signed_get(signer, "/v5/position/list", query, timestamp_ms)
}

/// A Trade WebSocket request (`order.create`, `order.cancel`, `order.amend`) after `auth`.
pub fn ws_request(req_id: &str, op: &str, args_json: &str, timestamp_ms: u64) -> String {
    format!(
        "{{\"reqId\":\"{req_id}\",\"header\":{{\"X-BAPI-TIMESTAMP\":\"{timestamp_ms}\",\"X-BAPI-RECV-WINDOW\":\"{RECV_WINDOW_MS}\"}},\"op\":\"{op}\",\"args\":[{args_json}]}}"
    )
}

/// The private/trade stream's `auth` message, valid until `expires_ms`.
pub fn ws_auth(signer: &Signer, expires_ms: u64) -> String {
    format!(
        "{{\"req_id\":\"auth\",\"op\":\"auth\",\"args\":[\"{}\",{expires_ms},\"{}\"]}}",
        signer.api_key(),
        signer.bybit_ws_auth(expires_ms)
    )
}

/// Why a private message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bybit private stream: {0}")]
pub struct PrivateStreamError(pub String);

fn common(e: &serde_json::Value) -> Result<(Symbol, ClientOrderId, u64, Side), PrivateStreamError> {
    let symbol = e["symbol"]
        .as_str()
        .and_then(Symbol::parse)
        .ok_or_else(|| {
            PrivateStreamError(format!(
                "symbol {} is not a linear contract this engine trades",
                e["symbol"]
            ))
        })?;
    let client_id = e["orderLinkId"]
        .as_str()
        .and_then(ClientOrderId::parse)
        .unwrap_or_default();
    let oid = e["orderId"].as_str().map(hash_order_id).unwrap_or(0);
    let side = match e["side"].as_str() {
        Some("Buy") => Side::Buy,
        Some("Sell") => Side::Sell,
        other => return Err(PrivateStreamError(format!("side {other:?}"))),
    };
    Ok((symbol, client_id, oid, side))
}

/// A private-topic message → reports. `order` gives status changes (fills come from `execution`,
/// which carries each fill's price, size and fee); other topics give none.
pub fn parse_private(frame: &[u8], recv_ns: u64) -> Result<Vec<ExecReport>, PrivateStreamError> {
    let v: serde_json::Value =
        serde_json::from_slice(frame).map_err(|e| PrivateStreamError(format!("not JSON: {e}")))?;
    let topic = v["topic"].as_str().unwrap_or("");
    let data = v["data"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut out = Vec::with_capacity(data.len());
    for e in data {
        if e["category"].as_str().is_some_and(|c| c != "linear") {
            continue;
        }
        let (symbol, client_id, venue_order_id, side) = common(e)?;
        let base = ExecReport {
            venue: Venue::BybitLinear,
            symbol,
            client_id,
            venue_order_id,
            kind: ExecKind::Ack,
            side,
            last_px: Price::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: json::qty_or_zero(&e["cumExecQty"]),
            leaves_qty: json::qty_or_zero(&e["leavesQty"]),
            fee: Qty::ZERO,
            is_maker: false,
            reason: 0,
            exch_ms: json::ms(&e["updatedTime"]),
            recv_ns,
        };
        match topic.split('.').next() {
            Some("order") => {
                let post_only_took = e["rejectReason"] == "EC_PostOnlyWillTakeLiquidity";
                let kind = match e["orderStatus"].as_str() {
                    Some("New") | Some("Untriggered") | Some("Triggered") => ExecKind::Ack,
                    Some("Rejected") => ExecKind::Rejected,
                    Some("Cancelled") | Some("PartiallyFilledCanceled") | Some("Deactivated") => {
                        // A post-only order that would take is cancelled with this reason.
                        if post_only_took {
                            ExecKind::Expired
                        } else {
                            ExecKind::Canceled
                        }
                    }
                    // Fill progress arrives on `execution`; the order topic's copy adds nothing.
                    Some("PartiallyFilled") | Some("Filled") => continue,
                    other => return Err(PrivateStreamError(format!("orderStatus {other:?}"))),
                };
                // The same reason code the fill model uses for this case, so paper and live agree.
                let reason = if post_only_took {
                    crate::fill::reject::BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY
                } else {
                    0
                };
                out.push(ExecReport {
                    kind,
                    reason,
                    ..base
                });
            }
            Some("execution") => {
                if !matches!(
                    e["execType"].as_str(),
                    Some("Trade") | Some("AdlTrade") | Some("BustTrade") | None
                ) {
                    continue; // funding, settlement: accounting events, not order fills
                }
                let order_qty = json::qty_or_zero(&e["orderQty"]);
                let leaves = json::qty_or_zero(&e["leavesQty"]);
                let cum = if order_qty.raw() > 0 {
                    Qty(order_qty.raw() - leaves.raw())
                } else {
                    json::qty_or_zero(&e["execQty"])
                };
                out.push(ExecReport {
                    kind: if leaves.is_zero() {
                        ExecKind::Fill
                    } else {
                        ExecKind::PartialFill
                    },
                    last_px: json::price(&e["execPrice"]),
                    last_qty: json::qty_or_zero(&e["execQty"]),
                    cum_qty: cum,
                    leaves_qty: leaves,
                    fee: json::qty_or_zero(&e["execFee"]),
                    is_maker: e["isMaker"].as_bool().unwrap_or(false),
                    exch_ms: json::ms(&e["execTime"]),
                    ..base
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_example(page: &str, section: &str) -> Option<serde_json::Value> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/bybit-v5/doc-examples.json");
        let Ok(text) = std::fs::read_to_string(&p) else {
            eprintln!("skip: {} not found", p.display());
            return None;
        };
        let d: serde_json::Value = serde_json::from_str(&text).unwrap();
        d[page]
            .as_array()?
            .iter()
            .find(|e| e["section"] == section)
            .map(|e| e["example"].clone())
    }

    fn order() -> NewOrder {
        NewOrder {
            venue: Venue::BybitLinear,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa-7").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::PostOnly,
            price: Price::parse("50000").unwrap(),
            qty: Qty::parse("0.001").unwrap(),
            reduce_only: false,
        }
    }

    #[test]
    fn rest_create_signs_the_exact_body() {
        let s = Signer::new("test_key", "test_secret");
        let r = rest_create(&s, &order(), 1658385579423);
        assert_eq!(
            r.body,
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"50000","timeInForce":"PostOnly","orderLinkId":"qa-7"}"#
        );
        assert_eq!(
            r.header("X-BAPI-SIGN").unwrap(),
            s.bybit_rest(1658385579423, 5000, &r.body)
        );
        // The documented vector (PROTOCOLS C.5) signs the same body without orderLinkId.
        let doc = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"50000","timeInForce":"PostOnly"}"#;
        assert_eq!(
            signed_post(&s, "/v5/order/create", doc.into(), 1658385579423).header("x-bapi-sign"),
            Some("d480b2d4a31b245dcc27f6676ea1c8dff5c8188f852de9f81f84c54f55efe8ab")
        );
        let mut m = order();
        m.order_type = OrderType::Market;
        m.reduce_only = true;
        let b = create_args(&m);
        assert!(
            b.contains(r#""orderType":"Market""#)
                && !b.contains("price")
                && b.ends_with(r#","reduceOnly":true}"#),
            "{b}"
        );
    }

    #[test]
    fn signed_gets_sign_the_query() {
        let s = Signer::new("test_key", "test_secret");
        let r = rest_positions(&s, Some(order().symbol), 9);
        assert_eq!(
            (r.method, r.target().as_str()),
            (
                Method::Get,
                "/v5/position/list?category=linear&symbol=BTCUSDT"
            )
        );
        assert_eq!(
            r.header("X-BAPI-SIGN").unwrap(),
            s.bybit_rest(9, 5000, &r.query)
        );
        assert_eq!(
            rest_positions(&s, None, 9).query,
            "category=linear&settleCoin=USDT"
        );
        assert_eq!(
            rest_open_orders(&s, order().symbol, 9).path,
            "/v5/order/realtime"
        );
    }

    #[test]
    fn trade_ws_and_auth_messages() {
        let s = Signer::new("test_key", "test_secret");
        let a: serde_json::Value = serde_json::from_str(&ws_auth(&s, 1662350400000)).unwrap();
        assert_eq!(
            a["args"][2],
            "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
        );
        let m: serde_json::Value =
            serde_json::from_str(&ws_request("r1", "order.create", &create_args(&order()), 5))
                .unwrap();
        assert_eq!(
            (m["op"].as_str(), m["args"][0]["orderLinkId"].as_str()),
            (Some("order.create"), Some("qa-7"))
        );
    }

    #[test]
    fn execution_doc_example_is_a_fill() {
        let Some(ex) = doc_example("docs/v5/websocket/private/execution.mdx", "Stream Example")
        else {
            return;
        };
        let r = parse_private(serde_json::to_string(&ex).unwrap().as_bytes(), 1).unwrap();
        assert_eq!(r.len(), 1);
        let f = r[0];
        assert_eq!(
            (f.kind, f.side, f.symbol.as_str(), f.is_maker),
            (ExecKind::Fill, Side::Sell, "BTCUSDT", false)
        );
        assert_eq!(
            (f.last_px, f.last_qty),
            (Price::parse("95900.1").unwrap(), Qty::parse("0.5").unwrap())
        );
        assert_eq!(
            (f.cum_qty, f.fee),
            (
                Qty::parse("0.5").unwrap(),
                Qty::parse("26.3725275").unwrap()
            )
        );
        assert_eq!(
            f.venue_order_id,
            hash_order_id("9aac161b-8ed6-450d-9cab-c5cc67c21784")
        );
    }

    #[test]
    fn order_doc_example_is_an_option_and_is_skipped() {
        // The docs' order example is an option (category "option"): not this engine's business.
        let Some(ex) = doc_example("docs/v5/websocket/private/order.mdx", "Stream Example") else {
            return;
        };
        assert!(
            parse_private(serde_json::to_string(&ex).unwrap().as_bytes(), 1)
                .unwrap()
                .is_empty()
        );
        // Without the category, its option symbol is refused with a message naming it.
        let mut no_cat = ex.clone();
        no_cat["data"][0]
            .as_object_mut()
            .unwrap()
            .remove("category");
        let e = parse_private(serde_json::to_string(&no_cat).unwrap().as_bytes(), 1).unwrap_err();
        assert!(e.to_string().contains("ETH-30DEC22-1400-C"), "{e}");
        // The same message for a linear order: status changes become reports; fills are skipped here.
        let mut lin = ex.clone();
        lin["data"][0]["category"] = "linear".into();
        lin["data"][0]["symbol"] = "ETHUSDT".into();
        lin["data"][0]["orderStatus"] = "Cancelled".into();
        let r = parse_private(serde_json::to_string(&lin).unwrap().as_bytes(), 1).unwrap();
        assert_eq!(r[0].kind, ExecKind::Canceled);
        lin["data"][0]["rejectReason"] = "EC_PostOnlyWillTakeLiquidity".into();
        let r = parse_private(serde_json::to_string(&lin).unwrap().as_bytes(), 1).unwrap();
        assert_eq!(
            (r[0].kind, r[0].reason),
            (
                ExecKind::Expired,
                crate::fill::reject::BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY
            )
        );
        lin["data"][0]["orderStatus"] = "Filled".into();
        assert!(
            parse_private(serde_json::to_string(&lin).unwrap().as_bytes(), 1)
                .unwrap()
                .is_empty()
        );
        assert!(parse_private(b"nope", 1).is_err());
    }
}
