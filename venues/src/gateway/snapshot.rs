//! An order as the venue reports it in a query or an answer — Binance's order object (REST answers,
//! `GET /fapi/v1/order`, `openOrders`, ws-fapi `result`) and Bybit's order row (`/v5/order/realtime`,
//! private `order` topic) — normalised, so reconciliation has one input type.

use qalpha_engine::order::ClientOrderId;
use qalpha_engine::{Price, Qty, Symbol};
use serde_json::Value;

use super::{hash_order_id, json};

/// An order's status at the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VenueStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
    Rejected,
}

impl VenueStatus {
    pub fn is_open(self) -> bool {
        matches!(self, VenueStatus::New | VenueStatus::PartiallyFilled)
    }
}

/// One order's state at the venue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderSnapshot {
    pub symbol: Symbol,
    pub client_id: ClientOrderId,
    pub venue_order_id: u64,
    pub status: VenueStatus,
    pub side: qalpha_engine::Side,
    pub price: Price,
    pub qty: Qty,
    pub cum_qty: Qty,
    /// Filled notional (`cumQuote` / `cumExecValue`), when the venue gives it.
    pub cum_quote: Option<Qty>,
    pub avg_price: Price,
    pub reduce_only: bool,
    pub post_only: bool,
    pub exch_ms: u64,
}

fn side(v: &Value) -> Option<qalpha_engine::Side> {
    match v.as_str()? {
        "BUY" | "Buy" => Some(qalpha_engine::Side::Buy),
        "SELL" | "Sell" => Some(qalpha_engine::Side::Sell),
        _ => None,
    }
}

/// A Binance order object (B.2); `None` if it lacks the identity fields.
pub fn binance_order(v: &Value) -> Option<OrderSnapshot> {
    let status = match v["status"].as_str()? {
        "NEW" => VenueStatus::New,
        "PARTIALLY_FILLED" => VenueStatus::PartiallyFilled,
        "FILLED" => VenueStatus::Filled,
        "CANCELED" => VenueStatus::Canceled,
        "EXPIRED" | "EXPIRED_IN_MATCH" => VenueStatus::Expired,
        "REJECTED" => VenueStatus::Rejected,
        _ => return None,
    };
    Some(OrderSnapshot {
        symbol: Symbol::parse(v["symbol"].as_str()?)?,
        client_id: ClientOrderId::parse(v["clientOrderId"].as_str()?)?,
        venue_order_id: v["orderId"].as_u64()?,
        status,
        side: side(&v["side"])?,
        price: json::price(&v["price"]),
        qty: json::qty(&v["origQty"]).unwrap_or(Qty::ZERO),
        cum_qty: json::qty(&v["executedQty"]).unwrap_or(Qty::ZERO),
        cum_quote: json::qty(&v["cumQuote"]),
        avg_price: json::price(&v["avgPrice"]),
        reduce_only: v["reduceOnly"].as_bool().unwrap_or(false),
        post_only: v["timeInForce"] == "GTX",
        exch_ms: json::ms(&v["updateTime"]),
    })
}

/// A Bybit order row (C.4 / C.6); `None` if it lacks the identity fields or is not linear.
pub fn bybit_order(v: &Value) -> Option<OrderSnapshot> {
    if v["category"].as_str().is_some_and(|c| c != "linear") {
        return None;
    }
    let status = match v["orderStatus"].as_str()? {
        "New" | "Untriggered" | "Triggered" => VenueStatus::New,
        "PartiallyFilled" => VenueStatus::PartiallyFilled,
        "Filled" => VenueStatus::Filled,
        "Cancelled" | "PartiallyFilledCanceled" | "Deactivated" => {
            if v["rejectReason"] == "EC_PostOnlyWillTakeLiquidity" {
                VenueStatus::Expired
            } else {
                VenueStatus::Canceled
            }
        }
        "Rejected" => VenueStatus::Rejected,
        _ => return None,
    };
    let oid = v["orderId"].as_str()?;
    Some(OrderSnapshot {
        symbol: Symbol::parse(v["symbol"].as_str()?)?,
        client_id: ClientOrderId::parse(v["orderLinkId"].as_str()?)?,
        venue_order_id: hash_order_id(oid),
        status,
        side: side(&v["side"])?,
        price: json::price(&v["price"]),
        qty: json::qty(&v["qty"]).unwrap_or(Qty::ZERO),
        cum_qty: json::qty(&v["cumExecQty"]).unwrap_or(Qty::ZERO),
        cum_quote: json::qty(&v["cumExecValue"]),
        avg_price: json::price(&v["avgPrice"]),
        reduce_only: v["reduceOnly"].as_bool().unwrap_or(false),
        post_only: v["timeInForce"] == "PostOnly",
        exch_ms: json::ms(&v["updatedTime"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_order_object_from_the_docs() {
        // B.2's response example, abridged to the fields read.
        let v: Value = serde_json::from_str(r#"{"clientOrderId":"testOrder","cumQty":"0","cumQuote":"0","executedQty":"0","orderId":22542179,"avgPrice":"0.00000","origQty":"10","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"NEW","stopPrice":"9300","closePosition":false,"symbol":"BTCUSDT","timeInForce":"GTD","type":"TRAILING_STOP_MARKET","origType":"TRAILING_STOP_MARKET","updateTime":1566818724722}"#).unwrap();
        let s = binance_order(&v).unwrap();
        assert_eq!(s.venue_order_id, 22542179);
        assert_eq!(s.status, VenueStatus::New);
        assert_eq!(s.qty, Qty::parse("10").unwrap());
        assert_eq!(s.cum_quote, Some(Qty::ZERO));
        assert_eq!(s.exch_ms, 1566818724722);
        assert!(binance_order(&serde_json::json!({"status":"NEW"})).is_none());
    }

    #[test]
    fn bybit_row_post_only_cancel_is_an_expiry() {
        let v = serde_json::json!({"category":"linear","symbol":"BTCUSDT","orderId":"a-b","orderLinkId":"x1","side":"Sell",
            "orderStatus":"Cancelled","rejectReason":"EC_PostOnlyWillTakeLiquidity","price":"100.5","qty":"0.010",
            "cumExecQty":"0","cumExecValue":"0","avgPrice":"","timeInForce":"PostOnly","updatedTime":"1700000000000"});
        let s = bybit_order(&v).unwrap();
        assert_eq!(s.status, VenueStatus::Expired);
        assert!(s.post_only);
        assert_eq!(s.avg_price, Price::ZERO);
        assert_eq!(s.exch_ms, 1_700_000_000_000);
        assert_eq!(s.venue_order_id, hash_order_id("a-b"));
    }
}
