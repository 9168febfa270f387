//! Bybit v5 linear order entry on the mock (PROTOCOLS.md C.5, C.6, C.9): `POST /v5/order/create`,
//! `cancel`, `amend`, `cancel-all`, `disconnected-cancel-all`, `GET /v5/order/realtime` and
//! `GET /v5/position/list` (one-way mode, `positionIdx` 0). Every request is signed with the
//! `X-BAPI-*` headers; every answer is HTTP 200 with the v5 envelope, business errors as a non-zero
//! `retCode`. As on Bybit, a post-only order that would take is *accepted* (`retCode` 0) and then
//! shows `Cancelled` with `rejectReason` `EC_PostOnlyWillTakeLiquidity`.
//!
//! `create`, `amend` and `cancel` are shared with the Trade WebSocket ([`trade_op`], used by
//! [`super::ws_bybit`]), so REST and WebSocket order entry apply the same rules and codes.
//!
//! Disconnection protection (`POST /v5/order/disconnected-cancel-all`, body
//! `{"product":"DERIVATIVES","timeWindow":N}`, N in seconds 3…300) sets the window the dead-man
//! thread ([`super::deadman`]) uses once a private connection subscribed to `dcp` is lost. Only the
//! `DERIVATIVES` product is accepted (Bybit's default, `OPTIONS`, and `SPOT` get 10001).
//!
//! New orders and amends must pass the symbol's filters ([`super::instruments`]: tick, step,
//! minimum notional) before anything else is decided; a refused order is not placed.
//!
//! Faults: `reject=P` refuses a new order with 110007; `rate-limit=P` refuses it (before any
//! parameter check) with 10006 "Too many visits!" (C.8), the order not placed. `X-BAPI-TIMESTAMP`
//! is checked against the mock's clock ([`Ctx::clock_ns`], moved by `clock-jump`).

use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use serde_json::{json, Value};

use super::auth::{split_params, verify_bybit};
use super::http::Request;
use super::instruments;
use super::orders::{now_ns, url_decode, Answer, OrderRecord, OrderStatus, SymbolOrders};
use super::positions::Position;
use super::server::Ctx;
use crate::fill::reject::BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY;
use crate::gateway::hash_order_id;

const VENUE: Venue = Venue::BybitLinear;

/// A refused request: Bybit's `retCode` and `retMsg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub code: i32,
    pub msg: String,
}

fn message(code: i32) -> &'static str {
    match code {
        10001 => "params error",
        10006 => "Too many visits!",
        110001 => "order not exists or too late to cancel",
        110007 => "ab not enough for new order",
        110017 => "Reduce-only rule not satisfied",
        110072 => "OrderLinkedID is duplicate",
        _ => "Internal error.",
    }
}

fn envelope(code: i32, msg: &str, result: Value) -> Answer {
    Answer::ok(
        json!({
            "retCode": code,
            "retMsg": msg,
            "result": result,
            "retExtInfo": {},
            "time": now_ns() / 1_000_000,
        })
        .to_string(),
    )
}

fn error(code: i32) -> Refused {
    Refused {
        code,
        msg: message(code).to_string(),
    }
}

fn params_error(what: &str) -> Refused {
    Refused {
        code: 10001,
        msg: format!("params error: {what}"),
    }
}

/// Bybit order ids are UUIDs: the mock derives one from the symbol and the model's order id.
pub fn order_id_string(symbol: &str, order_id: u64) -> String {
    let h = hash_order_id(symbol);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) & 0xffff,
        (h >> 4) & 0xfff,
        h & 0xfff,
        order_id & 0xffff_ffff_ffff
    )
}

/// The model's order id back from [`order_id_string`] (`None` if it is not one of this symbol's).
fn parse_order_id(symbol: &str, s: &str) -> Option<u64> {
    let (_, tail) = s.rsplit_once('-')?;
    let id = u64::from_str_radix(tail, 16).ok()?;
    (order_id_string(symbol, id) == s).then_some(id)
}

fn status_name(r: &OrderRecord) -> &'static str {
    match r.status {
        OrderStatus::New => "New",
        OrderStatus::PartiallyFilled => "PartiallyFilled",
        OrderStatus::Filled => "Filled",
        OrderStatus::Canceled | OrderStatus::Expired if r.cum_qty.raw() > 0 => {
            "PartiallyFilledCanceled"
        }
        OrderStatus::Canceled | OrderStatus::Expired => "Cancelled",
    }
}

/// One `list` item of `GET /v5/order/realtime`.
pub fn order_item(r: &OrderRecord) -> Value {
    let o = &r.order;
    let sym = o.symbol.as_str();
    let (typ, tif) = match o.order_type {
        OrderType::Market => ("Market", "IOC"),
        OrderType::Limit => (
            "Limit",
            match o.tif {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "PostOnly",
            },
        ),
    };
    let leaves = r.leaves_qty();
    let leaves_value = Qty((leaves.raw() as i128 * o.price.raw() as i128 / 100_000_000)
        .clamp(0, i64::MAX as i128) as i64);
    let reject = if r.reason == BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY {
        "EC_PostOnlyWillTakeLiquidity"
    } else {
        "EC_NoError"
    };
    let cancel_type = match r.status {
        OrderStatus::Canceled => "CancelByUser",
        _ => "UNKNOWN",
    };
    json!({
        "orderId": order_id_string(sym, r.order_id),
        "orderLinkId": o.client_id.as_str(),
        "blockTradeId": "",
        "symbol": sym,
        "price": o.price.to_string(),
        "qty": o.qty.to_string(),
        "side": match o.side { Side::Buy => "Buy", Side::Sell => "Sell" },
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": status_name(r),
        "cancelType": cancel_type,
        "rejectReason": reject,
        "avgPrice": if r.cum_qty.raw() > 0 { r.avg_price().to_string() } else { String::new() },
        "leavesQty": leaves.to_string(),
        "leavesValue": leaves_value.to_string(),
        "cumExecQty": r.cum_qty.to_string(),
        "cumExecValue": r.cum_quote().to_string(),
        "cumExecFee": r.fee.to_string(),
        "timeInForce": tif,
        "orderType": typ,
        "stopOrderType": "",
        "orderIv": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": false,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createdTime": r.created_ms.to_string(),
        "updatedTime": r.updated_ms.to_string(),
    })
}

fn ids(r: &OrderRecord) -> Value {
    json!({
        "orderId": order_id_string(r.order.symbol.as_str(), r.order_id),
        "orderLinkId": r.order.client_id.as_str(),
    })
}

/// Serves one Bybit order-entry request.
pub(crate) fn handle(req: &Request, body: &str, ctx: &Ctx) -> Answer {
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let payload = if req.method == "GET" { query } else { body };
    let now = now_ns();
    if let Err(r) = verify_bybit(
        &ctx.orders.accounts,
        |k| req.header(&k.to_ascii_lowercase()).map(str::to_string),
        payload,
        ctx.clock_ns() / 1_000_000,
    ) {
        return Answer {
            status: r.http_status,
            body: r.body,
        };
    }
    let args = if req.method == "GET" {
        let mut m = serde_json::Map::new();
        for (k, v) in split_params(query) {
            m.insert(k, Value::String(url_decode(&v)));
        }
        Value::Object(m)
    } else {
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.is_object() => v,
            _ => return refused(params_error("request body is not a JSON object")),
        }
    };
    // Disconnection protection is account-wide: no category.
    if (req.method.as_str(), req.path()) == ("POST", "/v5/order/disconnected-cancel-all") {
        return match set_dcp_window(&args, ctx) {
            Ok(()) => envelope(0, "success", json!({})),
            Err(r) => refused(r),
        };
    }
    if args["category"].as_str() != Some("linear") {
        return refused(params_error("category only support linear on this mock"));
    }
    let res = match (req.method.as_str(), req.path()) {
        ("POST", "/v5/order/create") => create(&args, ctx, now),
        ("POST", "/v5/order/cancel") => cancel(&args, ctx, now),
        ("POST", "/v5/order/amend") => amend(&args, ctx, now),
        ("POST", "/v5/order/cancel-all") => cancel_all(&args, ctx, now),
        ("GET", "/v5/order/realtime") => realtime(&args, ctx),
        ("GET", "/v5/position/list") => position_list(&args, ctx),
        _ => {
            return Answer {
                status: 404,
                body: json!({"retCode": 10404, "retMsg": "not found"}).to_string(),
            }
        }
    };
    match res {
        Ok(result) => envelope(0, "OK", result),
        Err(r) => refused(r),
    }
}

fn refused(r: Refused) -> Answer {
    envelope(r.code, &r.msg, json!({}))
}

/// One Trade-WebSocket order request (`order.create`, `order.amend`, `order.cancel`) with its
/// single `args` item, the same JSON object as the REST body: `{orderId, orderLinkId}` or the
/// refusal, exactly as the REST endpoint would answer. `None` for any other op.
pub(crate) fn trade_op(op: &str, args: &Value, ctx: &Ctx) -> Option<Result<Value, Refused>> {
    let now = now_ns();
    let run = |f: fn(&Value, &Ctx, u64) -> Result<Value, Refused>| {
        if !args.is_object() {
            return Err(params_error("args[0] is not a JSON object"));
        }
        if args["category"].as_str() != Some("linear") {
            return Err(params_error("category only support linear on this mock"));
        }
        f(args, ctx, now)
    };
    match op {
        "order.create" => Some(run(create)),
        "order.amend" => Some(run(amend)),
        "order.cancel" => Some(run(cancel)),
        _ => None,
    }
}

/// `disconnected-cancel-all`: `product` (default `OPTIONS`, only `DERIVATIVES` here) and
/// `timeWindow` in whole seconds, 3…300 (a JSON number or a numeric string).
fn set_dcp_window(args: &Value, ctx: &Ctx) -> Result<(), Refused> {
    let product = text(args, "product").unwrap_or("OPTIONS");
    if product != "DERIVATIVES" {
        return Err(params_error(
            "product: this mock protects DERIVATIVES only (Bybit's default is OPTIONS)",
        ));
    }
    let w = &args["timeWindow"];
    let secs = w
        .as_u64()
        .or_else(|| w.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| params_error("timeWindow is required (seconds, 3..300)"))?;
    if !(3..=300).contains(&secs) {
        return Err(params_error("timeWindow must be within 3..300 seconds"));
    }
    ctx.deadman
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .dcp_window = Some(std::time::Duration::from_secs(secs));
    Ok(())
}

fn text<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args[k].as_str().filter(|s| !s.is_empty())
}

fn require<'a>(args: &'a Value, k: &str) -> Result<&'a str, Refused> {
    text(args, k).ok_or_else(|| params_error(&format!("{k} is required")))
}

fn with_orders<R>(
    ctx: &Ctx,
    symbol: &str,
    f: impl FnOnce(&mut SymbolOrders, &super::book::ExchangeBook) -> R,
) -> Result<R, Refused> {
    let mut g = ctx.hub.lock();
    let s = g
        .symbols
        .get_mut(symbol)
        .ok_or_else(|| params_error("symbol invalid"))?;
    Ok(f(&mut s.orders, &s.book))
}

fn symbol_of(args: &Value) -> Result<(String, Symbol), Refused> {
    let s = require(args, "symbol")?.to_ascii_uppercase();
    let sym = Symbol::parse(&s).ok_or_else(|| params_error("symbol invalid"))?;
    Ok((s, sym))
}

/// `orderId` / `orderLinkId` of cancel, amend and queries.
fn order_ref(args: &Value, symbol: &str) -> Result<(Option<String>, Option<u64>), Refused> {
    let link = text(args, "orderLinkId").map(str::to_string);
    // An id of another symbol, or never issued, matches no order (the model never reaches u64::MAX).
    let id = text(args, "orderId").map(|s| parse_order_id(symbol, s).unwrap_or(u64::MAX));
    if link.is_none() && id.is_none() {
        return Err(params_error("orderId or orderLinkId is required"));
    }
    Ok((link, id))
}

fn decimal<T>(
    args: &Value,
    k: &str,
    parse: fn(&str) -> Result<T, qalpha_engine::decimal::DecimalError>,
) -> Result<Option<T>, Refused> {
    match text(args, k) {
        None => Ok(None),
        Some(s) => parse(s)
            .map(Some)
            .map_err(|_| params_error(&format!("{k} is invalid"))),
    }
}

fn create(args: &Value, ctx: &Ctx, now: u64) -> Result<Value, Refused> {
    if ctx.orders.reject_fault(ctx.faults.rate_limit) {
        return Err(error(10006));
    }
    let (name, symbol) = symbol_of(args)?;
    let side = match require(args, "side")? {
        "Buy" => Side::Buy,
        "Sell" => Side::Sell,
        _ => return Err(params_error("side invalid")),
    };
    let order_type = match require(args, "orderType")? {
        "Limit" => OrderType::Limit,
        "Market" => OrderType::Market,
        _ => return Err(params_error("orderType invalid")),
    };
    let qty = decimal(args, "qty", Qty::parse)?.ok_or_else(|| params_error("qty is required"))?;
    let (price, tif) = match order_type {
        OrderType::Limit => {
            let tif = match text(args, "timeInForce").unwrap_or("GTC") {
                "GTC" => TimeInForce::Gtc,
                "IOC" => TimeInForce::Ioc,
                "FOK" => TimeInForce::Fok,
                "PostOnly" => TimeInForce::PostOnly,
                _ => return Err(params_error("timeInForce invalid")),
            };
            let price = decimal(args, "price", Price::parse)?
                .ok_or_else(|| params_error("price is required for Limit orders"))?;
            (price, tif)
        }
        // Market orders always use IOC (C.6).
        OrderType::Market => (Price::ZERO, TimeInForce::Ioc),
    };
    let client_id = match text(args, "orderLinkId") {
        Some(c) => ClientOrderId::parse(c).ok_or_else(|| params_error("orderLinkId invalid"))?,
        None => ctx.orders.generated_client_id(),
    };
    let reduce_only = args["reduceOnly"].as_bool().unwrap_or(false)
        || args["reduceOnly"].as_str() == Some("true");
    let order = NewOrder {
        venue: VENUE,
        symbol,
        client_id,
        side,
        order_type,
        tif,
        price,
        qty,
        reduce_only,
    };
    // The symbol's filters come before the balance check, as on the venue.
    let refused = ctx
        .hub
        .with_symbol(&name, |s| s.map(|s| instruments::refuse(&order, &s.book)))
        .ok_or_else(|| params_error("symbol invalid"))?;
    if let Some(r) = refused {
        return Err(Refused {
            code: r.code,
            msg: r.msg,
        });
    }
    if ctx.orders.reject_fault(ctx.faults.reject) {
        return Err(error(110007));
    }
    let rec = with_orders(ctx, &name, |o, book| o.submit(order, book, now))?.map_err(error)?;
    Ok(ids(&rec))
}

fn cancel(args: &Value, ctx: &Ctx, now: u64) -> Result<Value, Refused> {
    let (name, _) = symbol_of(args)?;
    let (link, id) = order_ref(args, &name)?;
    let rec = with_orders(ctx, &name, |o, _| {
        let open = o
            .find(link.as_deref(), id)
            .filter(|r| r.is_open())
            .map(|r| r.order.client_id)
            .ok_or(110001)?;
        o.cancel(VENUE, open, now)
    })?
    .map_err(error)?;
    Ok(ids(&rec))
}

fn amend(args: &Value, ctx: &Ctx, now: u64) -> Result<Value, Refused> {
    let (name, _) = symbol_of(args)?;
    let (link, id) = order_ref(args, &name)?;
    let qty = decimal(args, "qty", Qty::parse)?;
    let price = decimal(args, "price", Price::parse)?;
    if qty.is_none() && price.is_none() {
        return Err(params_error("nothing to amend: send qty and/or price"));
    }
    let rec = with_orders(ctx, &name, |o, book| {
        let open = o
            .find(link.as_deref(), id)
            .filter(|r| r.is_open())
            .map(|r| r.order)
            .ok_or_else(|| error(110001))?;
        // The amended order must pass the symbol's filters like a new one.
        let amended = NewOrder {
            price: price.unwrap_or(open.price),
            qty: qty.unwrap_or(open.qty),
            ..open
        };
        if let Some(r) = instruments::refuse(&amended, book) {
            return Err(Refused {
                code: r.code,
                msg: r.msg,
            });
        }
        o.amend(VENUE, open.client_id, amended.price, amended.qty, book, now)
            .map_err(error)
    })??;
    Ok(ids(&rec))
}

fn cancel_all(args: &Value, ctx: &Ctx, now: u64) -> Result<Value, Refused> {
    let canceled = match text(args, "symbol") {
        Some(_) => {
            let (name, _) = symbol_of(args)?;
            with_orders(ctx, &name, |o, _| o.cancel_all(now))?
        }
        None => {
            let mut g = ctx.hub.lock();
            g.symbols
                .values_mut()
                .flat_map(|s| s.orders.cancel_all(now))
                .collect()
        }
    };
    let list: Vec<Value> = canceled.iter().map(ids).collect();
    Ok(json!({"list": list, "success": "1"}))
}

fn realtime(args: &Value, ctx: &Ctx) -> Result<Value, Refused> {
    let (name, _) = symbol_of(args)?;
    let by_id = text(args, "orderId").is_some() || text(args, "orderLinkId").is_some();
    let closed = text(args, "openOnly") == Some("1");
    let list: Vec<Value> = if by_id {
        let (link, id) = order_ref(args, &name)?;
        with_orders(ctx, &name, |o, _| {
            o.find(link.as_deref(), id)
                .map(order_item)
                .into_iter()
                .collect()
        })?
    } else {
        with_orders(ctx, &name, |o, _| {
            // Newest first, as Bybit lists them.
            o.all()
                .iter()
                .rev()
                .filter(|r| r.is_open() != closed)
                .take(500)
                .map(order_item)
                .collect()
        })?
    };
    Ok(json!({"list": list, "nextPageCursor": "", "category": "linear"}))
}

/// One `list` item of `GET /v5/position/list`: `side` `Buy` / `Sell` / `""` (flat), unsigned `size`.
fn position_item(symbol: &str, pos: &Position, book: &super::book::ExchangeBook) -> Value {
    let size = pos.size().raw();
    let side = match size.signum() {
        1 => "Buy",
        -1 => "Sell",
        _ => "",
    };
    let mark = pos.mark_price(book);
    json!({
        "positionIdx": 0,
        "symbol": symbol,
        "side": side,
        "size": Qty(size.saturating_abs()).to_string(),
        "avgPrice": pos.entry_price().to_string(),
        "positionValue": pos.entry_value().to_string(),
        "tradeMode": 0,
        "autoAddMargin": 0,
        "positionStatus": "Normal",
        "markPrice": mark.to_string(),
        "unrealisedPnl": pos.unrealised(mark).to_string(),
        "liqPrice": "",
        "bustPrice": "",
        "isReduceOnly": false,
        "updatedTime": pos.updated_ms.to_string(),
    })
}

/// `symbol`, or every symbol settled in `settleCoin` (Bybit requires one of the two).
fn position_list(args: &Value, ctx: &Ctx) -> Result<Value, Refused> {
    let list: Vec<Value> = match (text(args, "symbol"), text(args, "settleCoin")) {
        (Some(_), _) => {
            let (name, _) = symbol_of(args)?;
            vec![with_orders(ctx, &name, |o, book| {
                position_item(&name, &o.position(), book)
            })?]
        }
        (None, Some(coin)) => {
            let coin = coin.to_ascii_uppercase();
            let g = ctx.hub.lock();
            let mut names: Vec<&String> = g.symbols.keys().filter(|n| n.ends_with(&coin)).collect();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    let s = &g.symbols[n];
                    position_item(n, &s.orders.position(), &s.book)
                })
                .collect()
        }
        (None, None) => return Err(params_error("symbol or settleCoin is required")),
    };
    Ok(json!({"list": list, "nextPageCursor": "", "category": "linear"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_round_trip() {
        let s = order_id_string("BTCUSDT", 42);
        assert_eq!(s.len(), 36);
        assert_eq!(parse_order_id("BTCUSDT", &s), Some(42));
        assert_eq!(parse_order_id("ETHUSDT", &s), None);
        assert_eq!(parse_order_id("BTCUSDT", "nonsense"), None);
    }
}
