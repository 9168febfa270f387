//! The mock's instrument descriptions and the order rules they imply, in one place: Binance USD-M
//! `GET /fapi/v1/exchangeInfo` (PROTOCOLS.md B.4) and Bybit v5
//! `GET /v5/market/instruments-info?category=linear` (C.6), and the check every new order and amend
//! passes before it reaches the book, refused with the venue's own codes (B.7, C.9).
//!
//! Every symbol the mock serves gets the same BTCUSDT-like rules (the synthetic market quotes in
//! ticks of 0.1 and lots of 0.001; see [`super::synthetic`]): tick 0.10, step 0.001, minimum
//! quantity 0.001, and a minimum notional of 5 USDT. That notional is the example value of B.4 and
//! Bybit's documented BTCUSDT value; Binance's live BTCUSDT asks for 100, but 5 keeps the 0.001-lot
//! orders the project's tests place valid. Binance's PERCENT_PRICE filter is not published (and not
//! enforced): the mock has no index price to bound it by.
//!
//! Refusals, checked in this order (the order is not placed):
//! - Binance: too many decimals for `pricePrecision` 2 / `quantityPrecision` 3 → -1111; quantity
//!   ≤ 0 → -4003; price ≤ 0 → -4001; off tick → -4014; price below / above the range → -4013 /
//!   -4002; off step → -4023; quantity below / above the range → -4004 / -4005; notional below the
//!   minimum (reduce-only exempt) → -4164.
//! - Bybit: off tick, off step, quantity ≤ 0 or above the maximum → 10001 with a `params error: …`
//!   message; a positive quantity below one step ("truncated to zero") → 110017; price out of range
//!   → 110003; notional below `minNotionalValue` (reduce-only exempt) → 110094.
//!
//! A market order's notional is judged at the mock's mark (the book mid, as
//! [`super::positions::Position::mark_price`] computes it); with an empty book it is not judged.
//!
//! Cold path: plain allocation, JSON built with `serde_json`.

use qalpha_engine::order::{NewOrder, OrderType};
use qalpha_engine::{Price, Qty, Symbol, Venue};
use serde_json::{json, Value};

use super::book::ExchangeBook;
use super::http::{respond, Request};
use super::positions::Position;
use super::server::{Ctx, ServerIo};
use crate::instrument::{InstrumentRules, RuleError};

const TICK: &str = "0.10";
const MIN_PRICE: &str = "0.10";
const BINANCE_MAX_PRICE: &str = "4529764";
const BYBIT_MAX_PRICE: &str = "1999999.80";
const STEP: &str = "0.001";
const MIN_QTY: &str = "0.001";
const BINANCE_MAX_QTY: &str = "1000";
const BINANCE_MARKET_MAX_QTY: &str = "120";
const BYBIT_MAX_QTY: &str = "1190";
const BYBIT_MARKET_MAX_QTY: &str = "500";
const MIN_NOTIONAL: &str = "5";
/// Binance's `pricePrecision` / `quantityPrecision` for BTCUSDT: the most decimals accepted (-1111
/// beyond), not the tick or step (B.4).
const PRICE_PRECISION: u32 = 2;
const QTY_PRECISION: u32 = 3;

/// The instrument-description endpoints of `venue` (public, unsigned).
pub fn handles(venue: Venue, path: &str) -> bool {
    match venue {
        Venue::BinanceUsdm => path == "/fapi/v1/exchangeInfo",
        Venue::BybitLinear => path == "/v5/market/instruments-info",
    }
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap_or(Price::ZERO)
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap_or(Qty::ZERO)
}

/// The rules the mock applies to `symbol` on `venue` (what its own description publishes).
pub fn rules(venue: Venue, symbol: Symbol) -> InstrumentRules {
    let (max_price, max_qty, market_step, market_max) = match venue {
        Venue::BinanceUsdm => (
            BINANCE_MAX_PRICE,
            BINANCE_MAX_QTY,
            q(STEP),
            BINANCE_MARKET_MAX_QTY,
        ),
        // Bybit publishes no separate market step.
        Venue::BybitLinear => (
            BYBIT_MAX_PRICE,
            BYBIT_MAX_QTY,
            Qty::ZERO,
            BYBIT_MARKET_MAX_QTY,
        ),
    };
    InstrumentRules {
        venue,
        symbol,
        trading: true,
        tick: p(TICK),
        min_price: p(MIN_PRICE),
        max_price: p(max_price),
        step: q(STEP),
        min_qty: q(MIN_QTY),
        max_qty: q(max_qty),
        market_step,
        market_max_qty: q(market_max),
        min_notional: q(MIN_NOTIONAL),
    }
}

/// A refused order: the venue's code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: i32,
    pub msg: String,
}

fn refusal(code: i32, msg: impl Into<String>) -> Refusal {
    Refusal {
        code,
        msg: msg.into(),
    }
}

/// Whether `raw` (10^-8 units) has at most `decimals` decimals.
fn within_precision(raw: i64, decimals: u32) -> bool {
    raw % 10i64.pow(8 - decimals.min(8)) == 0
}

/// Checks a new (or amended) order against the symbol's rules; `book` gives a market order's mark.
/// `None` when the order may be placed.
pub fn refuse(o: &NewOrder, book: &ExchangeBook) -> Option<Refusal> {
    let market = o.order_type == OrderType::Market;
    if o.venue == Venue::BinanceUsdm {
        let price_ok = market || within_precision(o.price.raw(), PRICE_PRECISION);
        if !price_ok || !within_precision(o.qty.raw(), QTY_PRECISION) {
            return Some(refusal(
                -1111,
                "Precision is over the maximum defined for this asset.",
            ));
        }
        if o.qty.raw() <= 0 {
            return Some(refusal(-4003, "Quantity less than or equal to zero."));
        }
        if !market && o.price.raw() <= 0 {
            return Some(refusal(-4001, "Price less than 0."));
        }
    }
    let mark = Position::default().mark_price(book);
    let reference = (mark.raw() > 0).then_some(mark);
    let e = rules(o.venue, o.symbol).check(o, reference).err()?;
    match o.venue {
        Venue::BinanceUsdm => binance_refusal(&e),
        Venue::BybitLinear => bybit_refusal(&e),
    }
}

fn binance_refusal(e: &RuleError) -> Option<Refusal> {
    Some(match e {
        RuleError::OffTick { .. } => refusal(-4014, "Price not increased by tick size."),
        RuleError::PriceOutOfRange { price, min, .. } if price < min => {
            refusal(-4013, "Price less than min price.")
        }
        RuleError::PriceOutOfRange { .. } => refusal(-4002, "Price greater than max price."),
        RuleError::OffStep { .. } => refusal(-4023, "Quantity not increased by step size."),
        RuleError::QtyOutOfRange { qty, min, .. } if qty < min => {
            refusal(-4004, "Quantity less than min quantity.")
        }
        RuleError::QtyOutOfRange { .. } => refusal(-4005, "Quantity greater than max quantity."),
        RuleError::NotionalTooSmall { min, .. } => refusal(
            -4164,
            format!(
                "Order's notional must be no smaller than {min} (unless you choose reduce only)."
            ),
        ),
        // No mark to judge a market order by (empty book): let the fill model answer.
        RuleError::NoReferencePrice { .. } => return None,
        RuleError::NotTrading { .. } => {
            refusal(-4140, "Invalid symbol status for opening position.")
        }
    })
}

fn bybit_refusal(e: &RuleError) -> Option<Refusal> {
    Some(match e {
        RuleError::OffTick { tick, .. } => refusal(
            10001,
            format!("params error: price must be a multiple of tickSize {tick}"),
        ),
        RuleError::PriceOutOfRange { .. } => {
            refusal(110003, "Order price is out of permissible range")
        }
        // Below one step the venue would truncate the quantity to nothing.
        RuleError::OffStep { qty, step, .. } if qty.raw() > 0 && qty < step => {
            refusal(110017, "orderQty will be truncated to zero.")
        }
        RuleError::OffStep { step, .. } => refusal(
            10001,
            format!("params error: qty must be a multiple of qtyStep {step}"),
        ),
        RuleError::QtyOutOfRange { qty, .. } if qty.raw() <= 0 => {
            refusal(10001, "params error: qty must be greater than 0")
        }
        RuleError::QtyOutOfRange { qty, min, .. } if qty < min => {
            refusal(110017, "orderQty will be truncated to zero.")
        }
        RuleError::QtyOutOfRange { max, .. } => refusal(
            10001,
            format!("params error: qty exceeds the maximum order quantity {max}"),
        ),
        RuleError::NotionalTooSmall { min, .. } => refusal(
            110094,
            format!("Order does not meet minimum order value {min}USDT"),
        ),
        RuleError::NoReferencePrice { .. } => return None,
        RuleError::NotTrading { .. } => refusal(10001, "params error: symbol is not trading"),
    })
}

/// Base and quote asset of a symbol (`BTCUSDT` → `BTC`, `USDT`); USDT when no known quote ends it.
fn assets(symbol: &str) -> (&str, &str) {
    for quote in ["USDT", "USDC", "BUSD", "USD"] {
        if let Some(base) = symbol.strip_suffix(quote).filter(|b| !b.is_empty()) {
            return (base, quote);
        }
    }
    (symbol, "USDT")
}

/// One `symbols[]` entry of Binance's exchangeInfo.
fn binance_symbol(name: &str) -> Value {
    let (base, quote) = assets(name);
    json!({
        "symbol": name,
        "pair": name,
        "contractType": "PERPETUAL",
        "deliveryDate": 4_133_404_800_000u64,
        "onboardDate": 1_569_398_400_000u64,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": PRICE_PRECISION,
        "quantityPrecision": QTY_PRECISION,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": MIN_PRICE, "maxPrice": BINANCE_MAX_PRICE,
             "tickSize": TICK},
            {"filterType": "LOT_SIZE", "minQty": MIN_QTY, "maxQty": BINANCE_MAX_QTY,
             "stepSize": STEP},
            {"filterType": "MARKET_LOT_SIZE", "minQty": MIN_QTY,
             "maxQty": BINANCE_MARKET_MAX_QTY, "stepSize": STEP},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": MIN_NOTIONAL},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    })
}

/// The body of `GET /fapi/v1/exchangeInfo` for `symbols` (sorted by the caller).
pub fn binance_exchange_info(symbols: &[String], server_ms: u64) -> Value {
    json!({
        "timezone": "UTC",
        "serverTime": server_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": true, "autoAssetExchange": "-10000"}],
        "symbols": symbols.iter().map(|s| binance_symbol(s)).collect::<Vec<_>>(),
    })
}

/// One `result.list[]` item of Bybit's instruments-info.
fn bybit_item(name: &str) -> Value {
    let (base, quote) = assets(name);
    json!({
        "symbol": name,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": base,
        "quoteCoin": quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": MIN_PRICE, "maxPrice": BYBIT_MAX_PRICE, "tickSize": TICK},
        "lotSizeFilter": {
            "maxOrderQty": BYBIT_MAX_QTY,
            "minOrderQty": MIN_QTY,
            "qtyStep": STEP,
            "postOnlyMaxOrderQty": BYBIT_MAX_QTY,
            "maxMktOrderQty": BYBIT_MARKET_MAX_QTY,
            "minNotionalValue": MIN_NOTIONAL,
        },
        "unifiedMarginTrade": true,
        "fundingInterval": 480,
        "settleCoin": quote,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": false,
        "preListingInfo": null,
    })
}

/// The body of `GET /v5/market/instruments-info` for `category` and an optional `symbol`: every
/// served symbol (sorted by the caller), only the named one, or an empty list for one not served.
pub fn bybit_instruments(
    symbols: &[String],
    category: Option<&str>,
    symbol: Option<&str>,
    now_ms: u64,
) -> Value {
    let envelope = |code: i32, msg: &str, result: Value| json!({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms});
    if category != Some("linear") {
        return envelope(
            10001,
            "params error: category only support linear on this mock",
            json!({}),
        );
    }
    let wanted = symbol.map(str::to_ascii_uppercase);
    let list: Vec<Value> = symbols
        .iter()
        .filter(|s| wanted.as_ref().is_none_or(|w| w == *s))
        .map(|s| bybit_item(s))
        .collect();
    envelope(
        0,
        "OK",
        json!({"category": "linear", "list": list, "nextPageCursor": ""}),
    )
}

/// Serves one instrument-description request (see [`handles`]); Binance's costs weight 1 of the
/// mock's per-minute REST weight (429 / -1003 over 2400), reported in `X-MBX-USED-WEIGHT-1M`.
pub fn serve(io: &mut ServerIo, req: &Request, ctx: &Ctx) -> std::io::Result<()> {
    let mut symbols: Vec<String> = ctx.hub.lock().symbols.keys().cloned().collect();
    symbols.sort();
    let now_ms = ctx.clock_ns() / 1_000_000;
    match ctx.venue {
        Venue::BinanceUsdm => {
            let used = {
                let mut w = ctx.weight.lock().unwrap_or_else(|p| p.into_inner());
                if w.0.elapsed() >= std::time::Duration::from_secs(60) {
                    *w = (std::time::Instant::now(), 0);
                }
                w.1 += 1;
                w.1
            };
            let hdr = [("X-MBX-USED-WEIGHT-1M", used.to_string())];
            if used > 2400 {
                let body = br#"{"code":-1003,"msg":"Too many requests."}"#;
                return respond(io, 429, "Too Many Requests", &hdr, body);
            }
            let body = binance_exchange_info(&symbols, now_ms).to_string();
            respond(io, 200, "OK", &hdr, body.as_bytes())
        }
        Venue::BybitLinear => {
            let body =
                bybit_instruments(&symbols, req.query("category"), req.query("symbol"), now_ms);
            respond(io, 200, "OK", &[], body.to_string().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::{parse_binance_exchange_info, parse_bybit_instruments};
    use qalpha_engine::order::{ClientOrderId, TimeInForce};
    use qalpha_engine::Side;

    fn served() -> Vec<String> {
        vec!["BTCUSDT".into(), "ETHUSDT".into()]
    }

    fn order(venue: Venue, px: &str, qty: &str) -> NewOrder {
        NewOrder {
            venue,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("t").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse(px).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            reduce_only: false,
        }
    }

    fn book() -> ExchangeBook {
        let mut b = ExchangeBook::default();
        b.set(true, p("60000"), q("1"));
        b.set(false, p("60000.2"), q("1"));
        b
    }

    #[test]
    fn descriptions_parse_into_the_mocks_own_rules() {
        let bn = parse_binance_exchange_info(&binance_exchange_info(&served(), 1).to_string());
        let bn = bn.unwrap();
        assert_eq!(bn.len(), 2);
        for r in &bn {
            assert_eq!(*r, rules(Venue::BinanceUsdm, r.symbol));
        }
        let body = bybit_instruments(&served(), Some("linear"), None, 1).to_string();
        let by = parse_bybit_instruments(&body).unwrap();
        assert_eq!(by.len(), 2);
        for r in &by {
            assert_eq!(*r, rules(Venue::BybitLinear, r.symbol));
        }
        let one = bybit_instruments(&served(), Some("linear"), Some("ethusdt"), 1);
        assert_eq!(one["result"]["list"].as_array().map(Vec::len), Some(1));
        let none = bybit_instruments(&served(), Some("linear"), Some("XRPUSDT"), 1);
        assert_eq!(none["result"]["list"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            bybit_instruments(&served(), Some("spot"), None, 1)["retCode"],
            10001
        );
        assert_eq!(
            bybit_instruments(&served(), None, None, 1)["retCode"],
            10001
        );
    }

    #[test]
    fn binance_codes() {
        let b = book();
        let code =
            |px: &str, qty: &str| refuse(&order(Venue::BinanceUsdm, px, qty), &b).map(|r| r.code);
        assert_eq!(code("60000.1", "0.001"), None);
        assert_eq!(code("60000.15", "0.001"), Some(-4014));
        assert_eq!(code("60000.123", "0.001"), Some(-1111));
        assert_eq!(code("60000", "0.0015"), Some(-1111));
        assert_eq!(code("60000", "0"), Some(-4003));
        assert_eq!(code("0", "0.001"), Some(-4001));
        assert_eq!(code("60000", "1001"), Some(-4005));
        assert_eq!(code("4000", "0.001"), Some(-4164));
        let r = refuse(&order(Venue::BinanceUsdm, "4000", "0.001"), &b).unwrap();
        assert_eq!(
            r.msg,
            "Order's notional must be no smaller than 5 (unless you choose reduce only)."
        );
        let mut ro = order(Venue::BinanceUsdm, "4000", "0.001");
        ro.reduce_only = true;
        assert_eq!(refuse(&ro, &b), None);
        // Market orders: notional at the mid (60000.1 × 0.001 ≥ 5), MARKET_LOT_SIZE maximum.
        let mut mkt = order(Venue::BinanceUsdm, "0", "0.001");
        mkt.order_type = OrderType::Market;
        assert_eq!(refuse(&mkt, &b), None);
        mkt.qty = q("121");
        assert_eq!(refuse(&mkt, &b).map(|r| r.code), Some(-4005));
        mkt.qty = q("0.001");
        let mut cheap = ExchangeBook::default();
        cheap.set(true, p("100"), q("1"));
        assert_eq!(refuse(&mkt, &cheap).map(|r| r.code), Some(-4164));
        assert_eq!(refuse(&mkt, &ExchangeBook::default()), None);
    }

    #[test]
    fn bybit_codes() {
        let b = book();
        let code =
            |px: &str, qty: &str| refuse(&order(Venue::BybitLinear, px, qty), &b).map(|r| r.code);
        assert_eq!(code("60000.1", "0.001"), None);
        assert_eq!(code("60000.15", "0.001"), Some(10001));
        assert_eq!(code("60000", "0.0015"), Some(10001));
        assert_eq!(code("60000", "0.0005"), Some(110017));
        assert_eq!(code("60000", "0"), Some(10001));
        assert_eq!(code("4000", "0.001"), Some(110094));
        assert_eq!(code("2000000", "0.001"), Some(110003));
        let r = refuse(&order(Venue::BybitLinear, "60000.15", "0.001"), &b).unwrap();
        assert!(r
            .msg
            .starts_with("params error: price must be a multiple of tickSize"));
    }

    #[test]
    fn assets_split() {
        assert_eq!(assets("BTCUSDT"), ("BTC", "USDT"));
        assert_eq!(assets("ETHUSDC"), ("ETH", "USDC"));
        assert_eq!(assets("USDT"), ("USDT", "USDT"));
    }
}
