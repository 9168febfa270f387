//! Binance USD-M order entry on the mock (PROTOCOLS.md B.1–B.3, B.5, B.7): `POST` / `DELETE` /
//! `PUT` / `GET /fapi/v1/order`, `DELETE /fapi/v1/allOpenOrders`, `GET /fapi/v1/openOrders`,
//! `GET /fapi/v2/positionRisk` (one-way mode: one `BOTH` entry per symbol),
//! `POST /fapi/v1/countdownCancelAll` (the dead-man switch, [`super::deadman`]) and the user data
//! stream's `POST` / `PUT` / `DELETE /fapi/v1/listenKey`.
//!
//! Every request but the listen-key ones is signed (`X-MBX-APIKEY` + `signature`); the listen-key
//! endpoints need only the API-key header, as on Binance. Answers are the order object of B.2, or the
//! venue's `{"code":…,"msg":…}` error body with its HTTP status. The WebSocket API
//! ([`super::ws_binance`]) calls the same order functions through [`ws_method`], so REST and ws-fapi
//! behave identically.
//!
//! Listen keys: `PUT` and `DELETE` act on the account's current key (futures take no parameter);
//! an optional `listenKey` parameter must name that key, else -1125.
//!
//! New orders and amends must pass the symbol's filters ([`super::instruments`]: tick, step,
//! precision, minimum notional) before anything else is decided; a refused order is not placed.
//!
//! Faults: `reject=P` refuses a new order with -2019; `rate-limit=P` refuses it (before any
//! parameter check, as a venue's limiter would) with HTTP 429 `-1015`, the order not placed. The
//! `timestamp` window is checked against the mock's clock ([`Ctx::clock_ns`], moved by `clock-jump`).

use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use serde_json::json;

use super::auth::verify_binance;
use super::http::Request;
use super::instruments;
use super::orders::{now_ns, url_decode, Answer, OrderRecord, OrderStatus, SymbolOrders};
use super::positions::Position;
use super::server::Ctx;

const VENUE: Venue = Venue::BinanceUsdm;

/// The message Binance sends with `code` (B.7).
fn message(code: i32) -> &'static str {
    match code {
        -1111 => "Precision is over the maximum defined for this asset.",
        -1115 => "Invalid timeInForce.",
        -1116 => "Invalid orderType.",
        -1117 => "Invalid side.",
        -1015 => "Too many new orders; current limit is 300 orders per TEN_SECONDS.",
        -1121 => "Invalid symbol.",
        -2011 => "Unknown order sent.",
        -2013 => "Order does not exist.",
        -2019 => "Margin is insufficient.",
        -2022 => "ReduceOnly Order is rejected.",
        -4001 => "Price less than 0.",
        -4003 => "Quantity less than or equal to zero.",
        -4015 => "Client order id is not valid.",
        -4116 => "ClientOrderId is duplicated.",
        -5022 => "Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history",
        _ => "An unknown error occured while processing the request.",
    }
}

fn error(code: i32) -> Answer {
    Answer {
        status: 400,
        body: json!({"code": code, "msg": message(code)}).to_string(),
    }
}

/// A filter refusal ([`instruments::refuse`]): HTTP 400 with the venue's code and message.
fn rule_error(r: instruments::Refusal) -> Answer {
    Answer {
        status: 400,
        body: json!({"code": r.code, "msg": r.msg}).to_string(),
    }
}

fn mandatory(name: &str) -> Answer {
    Answer {
        status: 400,
        body: json!({
            "code": -1102,
            "msg": format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        })
        .to_string(),
    }
}

/// Verified request parameters (query values win over body values).
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    fn get(&self, k: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(p, _)| p == k)
            .map(|(_, v)| url_decode(v))
            .filter(|v| !v.is_empty())
    }

    fn require(&self, k: &str) -> Result<String, Answer> {
        self.get(k).ok_or_else(|| mandatory(k))
    }

    fn price(&self, k: &str) -> Result<Price, Answer> {
        Price::parse(&self.require(k)?).map_err(|_| error(-1111))
    }

    fn qty(&self, k: &str) -> Result<Qty, Answer> {
        Qty::parse(&self.require(k)?).map_err(|_| error(-1111))
    }

    /// `origClientOrderId` / `orderId` of cancel, amend and query.
    fn order_ref(&self) -> Result<(Option<String>, Option<u64>), Answer> {
        let client = self.get("origClientOrderId");
        let id = self.get("orderId").and_then(|v| v.parse::<u64>().ok());
        if client.is_none() && id.is_none() {
            return Err(mandatory("orderId"));
        }
        Ok((client, id))
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::New => "NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Expired => "EXPIRED",
    }
}

/// The order object of B.2 (`time` only on queries).
pub fn order_object(r: &OrderRecord, with_time: bool) -> serde_json::Value {
    let o = &r.order;
    let (typ, tif) = match o.order_type {
        OrderType::Market => ("MARKET", "GTC"),
        OrderType::Limit => (
            "LIMIT",
            match o.tif {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "GTX",
            },
        ),
    };
    let mut v = json!({
        "orderId": r.order_id,
        "symbol": o.symbol.as_str(),
        "status": status_name(r.status),
        "clientOrderId": o.client_id.as_str(),
        "price": o.price.to_string(),
        "avgPrice": r.avg_price().to_string(),
        "origQty": o.qty.to_string(),
        "executedQty": r.cum_qty.to_string(),
        "cumQty": r.cum_qty.to_string(),
        "cumQuote": r.cum_quote().to_string(),
        "timeInForce": tif,
        "type": typ,
        "reduceOnly": o.reduce_only,
        "closePosition": false,
        "side": side_name(o.side),
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": false,
        "origType": typ,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": r.updated_ms,
    });
    if with_time {
        v["time"] = json!(r.created_ms);
    }
    v
}

/// Serves one Binance order-entry request.
pub(crate) fn handle(req: &Request, body: &str, ctx: &Ctx) -> Answer {
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let now = now_ns();
    if req.path() == "/fapi/v1/listenKey" {
        return listen_key(req, query, body, ctx);
    }
    let params = match verify_binance(
        &ctx.orders.accounts,
        req.header("x-mbx-apikey"),
        query,
        body,
        ctx.clock_ns() / 1_000_000,
    ) {
        Ok(p) => Params(p),
        Err(r) => {
            return Answer {
                status: r.http_status,
                body: r.body,
            }
        }
    };
    let res = match (req.method.as_str(), req.path()) {
        ("POST", "/fapi/v1/order") => new_order(&params, ctx, now),
        ("DELETE", "/fapi/v1/order") => cancel(&params, ctx, now),
        ("PUT", "/fapi/v1/order") => amend(&params, ctx, now),
        ("GET", "/fapi/v1/order") => query_order(&params, ctx),
        ("DELETE", "/fapi/v1/allOpenOrders") => cancel_all(&params, ctx, now),
        ("GET", "/fapi/v1/openOrders") => open_orders(&params, ctx),
        ("GET", "/fapi/v2/positionRisk") => position_risk(&params, ctx),
        ("POST", "/fapi/v1/countdownCancelAll") => countdown_cancel_all(&params, ctx),
        _ => Ok(Answer {
            status: 404,
            body: json!({"code": -1, "msg": "not found"}).to_string(),
        }),
    };
    res.unwrap_or_else(|a| a)
}

/// Runs `f` on the symbol's orders and book under the hub lock; -1121 for a symbol not served.
fn with_orders<R>(
    ctx: &Ctx,
    symbol: &str,
    f: impl FnOnce(&mut SymbolOrders, &super::book::ExchangeBook) -> R,
) -> Result<R, Answer> {
    let mut g = ctx.hub.lock();
    let s = g.symbols.get_mut(symbol).ok_or_else(|| error(-1121))?;
    Ok(f(&mut s.orders, &s.book))
}

fn symbol_of(p: &Params) -> Result<(String, Symbol), Answer> {
    let s = p.require("symbol")?.to_ascii_uppercase();
    let sym = Symbol::parse(&s).ok_or_else(|| error(-1121))?;
    Ok((s, sym))
}

fn new_order(p: &Params, ctx: &Ctx, now: u64) -> Result<Answer, Answer> {
    if ctx.orders.reject_fault(ctx.faults.rate_limit) {
        // TOO_MANY_ORDERS comes with HTTP 429, like every Binance rate-limit refusal (A.5).
        return Err(Answer {
            status: 429,
            ..error(-1015)
        });
    }
    let (name, symbol) = symbol_of(p)?;
    let side = match p.require("side")?.as_str() {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(error(-1117)),
    };
    let order_type = match p.require("type")?.as_str() {
        "LIMIT" => OrderType::Limit,
        "MARKET" => OrderType::Market,
        _ => return Err(error(-1116)),
    };
    let qty = p.qty("quantity")?;
    let (price, tif) = match order_type {
        OrderType::Limit => {
            let tif = match p.require("timeInForce")?.as_str() {
                "GTC" => TimeInForce::Gtc,
                "IOC" => TimeInForce::Ioc,
                "FOK" => TimeInForce::Fok,
                "GTX" => TimeInForce::PostOnly,
                _ => return Err(error(-1115)),
            };
            (p.price("price")?, tif)
        }
        OrderType::Market => (Price::ZERO, TimeInForce::Ioc),
    };
    let client_id = match p.get("newClientOrderId") {
        Some(c) => ClientOrderId::parse(&c).ok_or_else(|| error(-4015))?,
        None => ctx.orders.generated_client_id(),
    };
    let order = NewOrder {
        venue: VENUE,
        symbol,
        client_id,
        side,
        order_type,
        tif,
        price,
        qty,
        reduce_only: p.get("reduceOnly").as_deref() == Some("true"),
    };
    // The symbol's filters come before the margin check, as on the venue.
    let refused = ctx
        .hub
        .with_symbol(&name, |s| s.map(|s| instruments::refuse(&order, &s.book)))
        .ok_or_else(|| error(-1121))?;
    if let Some(r) = refused {
        return Err(rule_error(r));
    }
    if ctx.orders.reject_fault(ctx.faults.reject) {
        return Err(error(-2019));
    }
    let rec = with_orders(ctx, &name, |o, book| o.submit(order, book, now))?.map_err(error)?;
    Ok(Answer::ok(order_object(&rec, false).to_string()))
}

fn cancel(p: &Params, ctx: &Ctx, now: u64) -> Result<Answer, Answer> {
    let (name, _) = symbol_of(p)?;
    let (client, id) = p.order_ref()?;
    let rec = with_orders(ctx, &name, |o, _| {
        let open = o
            .find(client.as_deref(), id)
            .filter(|r| r.is_open())
            .map(|r| r.order.client_id)
            .ok_or(-2011)?;
        o.cancel(VENUE, open, now)
    })?
    .map_err(error)?;
    Ok(Answer::ok(order_object(&rec, false).to_string()))
}

fn amend(p: &Params, ctx: &Ctx, now: u64) -> Result<Answer, Answer> {
    let (name, _) = symbol_of(p)?;
    let (client, id) = p.order_ref()?;
    p.require("side")?;
    let qty = p.qty("quantity")?;
    let price = p.price("price")?;
    let rec = with_orders(ctx, &name, |o, book| {
        let open = o
            .find(client.as_deref(), id)
            .filter(|r| r.is_open())
            .map(|r| r.order)
            .ok_or_else(|| error(-2013))?;
        // The amended order must pass the symbol's filters like a new one.
        let amended = NewOrder { price, qty, ..open };
        if let Some(r) = instruments::refuse(&amended, book) {
            return Err(rule_error(r));
        }
        o.amend(VENUE, open.client_id, price, qty, book, now)
            .map_err(error)
    })??;
    Ok(Answer::ok(order_object(&rec, false).to_string()))
}

fn query_order(p: &Params, ctx: &Ctx) -> Result<Answer, Answer> {
    let (name, _) = symbol_of(p)?;
    let (client, id) = p.order_ref()?;
    let rec = with_orders(ctx, &name, |o, _| o.find(client.as_deref(), id).copied())?
        .ok_or_else(|| error(-2013))?;
    Ok(Answer::ok(order_object(&rec, true).to_string()))
}

fn cancel_all(p: &Params, ctx: &Ctx, now: u64) -> Result<Answer, Answer> {
    let (name, _) = symbol_of(p)?;
    with_orders(ctx, &name, |o, _| o.cancel_all(now))?;
    Ok(Answer::ok(
        json!({"code": 200, "msg": "The operation of cancel all open order is done."}).to_string(),
    ))
}

fn open_orders(p: &Params, ctx: &Ctx) -> Result<Answer, Answer> {
    let list: Vec<serde_json::Value> = match p.get("symbol") {
        Some(_) => {
            let (name, _) = symbol_of(p)?;
            with_orders(ctx, &name, |o, _| {
                o.open().map(|r| order_object(r, true)).collect()
            })?
        }
        None => {
            let g = ctx.hub.lock();
            g.symbols
                .values()
                .flat_map(|s| s.orders.open().map(|r| order_object(r, true)))
                .collect()
        }
    };
    Ok(Answer::ok(serde_json::Value::Array(list).to_string()))
}

/// One entry of `GET /fapi/v2/positionRisk` (flat symbols are listed too, as Binance does).
fn position_object(
    symbol: &str,
    pos: &Position,
    book: &super::book::ExchangeBook,
) -> serde_json::Value {
    let mark = pos.mark_price(book);
    json!({
        "symbol": symbol,
        "positionAmt": pos.size().to_string(),
        "entryPrice": pos.entry_price().to_string(),
        "markPrice": mark.to_string(),
        "unRealizedProfit": pos.unrealised(mark).to_string(),
        "marginType": "cross",
        "isolatedMargin": "0",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": pos.notional(mark).to_string(),
        "isolatedWallet": "0",
        "updateTime": pos.updated_ms,
    })
}

fn position_risk(p: &Params, ctx: &Ctx) -> Result<Answer, Answer> {
    let list: Vec<serde_json::Value> = match p.get("symbol") {
        Some(_) => {
            let (name, _) = symbol_of(p)?;
            vec![with_orders(ctx, &name, |o, book| {
                position_object(&name, &o.position(), book)
            })?]
        }
        None => {
            let g = ctx.hub.lock();
            let mut names: Vec<&String> = g.symbols.keys().collect();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    let s = &g.symbols[n];
                    position_object(n, &s.orders.position(), &s.book)
                })
                .collect()
        }
    };
    Ok(Answer::ok(serde_json::Value::Array(list).to_string()))
}

/// A ws-fapi order method (B.6) on already verified parameters: the same functions as REST.
/// `None` for a method the mock does not serve.
pub(crate) fn ws_method(method: &str, p: &Params, ctx: &Ctx) -> Option<Answer> {
    let now = now_ns();
    let res = match method {
        "order.place" => new_order(p, ctx, now),
        "order.cancel" => cancel(p, ctx, now),
        "order.modify" => amend(p, ctx, now),
        "order.status" => query_order(p, ctx),
        _ => return None,
    };
    Some(res.unwrap_or_else(|a| a))
}

/// `POST /fapi/v1/countdownCancelAll`: arms (or with 0 disarms) the symbol's dead-man switch.
fn countdown_cancel_all(p: &Params, ctx: &Ctx) -> Result<Answer, Answer> {
    let (name, _) = symbol_of(p)?;
    let ms = p
        .require("countdownTime")?
        .parse::<u64>()
        .map_err(|_| mandatory("countdownTime"))?;
    if !ctx.hub.with_symbol(&name, |s| s.is_some()) {
        return Err(error(-1121));
    }
    ctx.deadman
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .countdown(&name, ms);
    Ok(Answer::ok(
        json!({"symbol": name, "countdownTime": ms.to_string()}).to_string(),
    ))
}

fn unknown_listen_key() -> Answer {
    Answer {
        status: 400,
        body: json!({"code": -1125, "msg": "This listenKey does not exist."}).to_string(),
    }
}

/// `POST` / `PUT` / `DELETE /fapi/v1/listenKey` (API-key header only, no signature).
fn listen_key(req: &Request, query: &str, body: &str, ctx: &Ctx) -> Answer {
    let api_key = req.header("x-mbx-apikey").unwrap_or("");
    if !ctx.orders.accounts.iter().any(|s| s.api_key() == api_key) {
        return Answer {
            status: 401,
            body: json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
                .to_string(),
        };
    }
    let mut params = super::auth::split_params(query);
    params.extend(super::auth::split_params(body));
    let named = Params(params).get("listenKey");
    let mut keys = ctx.listen_keys.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    match req.method.as_str() {
        "POST" => Answer::ok(json!({"listenKey": keys.start(api_key, now)}).to_string()),
        "PUT" => match keys.keepalive(api_key, named.as_deref(), now) {
            Some(k) => Answer::ok(json!({"listenKey": k}).to_string()),
            None => unknown_listen_key(),
        },
        "DELETE" => {
            if keys.close(api_key, named.as_deref(), now) {
                Answer::ok("{}".into())
            } else {
                unknown_listen_key()
            }
        }
        _ => Answer {
            status: 404,
            body: json!({"code": -1, "msg": "not found"}).to_string(),
        },
    }
}
