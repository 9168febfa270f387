//! The Bybit v5 private-topic messages the mock pushes (PROTOCOLS.md C.4), built from one
//! [`OrderUpdate`]: `order`, `execution`, `execution.fast`, `position` and `wallet`.
//!
//! Every number is a string, as on Bybit. What the mock does not model is reported as a fixed,
//! neutral value rather than left out, so a decoder written for the real venue finds every field:
//!
//! - **Account.** One USDT unified account starting at [`STARTING_WALLET`] USDT. Its wallet balance
//!   is that plus every symbol's realised PnL, minus fees (Bybit's realised PnL includes fees). The
//!   realised PnL is recomputed from the kept order records when a message is built: the cash of
//!   every fill plus the entry cost of what is still open. A mock that forgot old closed orders
//!   (beyond 10,000 per symbol) reports a balance without them.
//! - **Margin, leverage, liquidation** are not modelled: leverage `"10"`, every IM / MM figure
//!   `"0"`, `liqPrice` and `bustPrice` `""`, `positionStatus` `"Normal"`.
//! - **PnL per order / fill:** `closedPnl` and `execPnl` are `"0"`; the position's
//!   `curRealisedPnl` equals `cumRealisedPnl` (the mock has no position lifecycle to reset it).
//! - **Mark price** is the mid of the served book (see [`super::positions`]), read when the message
//!   is built.
//! - A cancelled order is always `Cancelled` (never the spot-only `PartiallyFilledCanceled`), and an
//!   accepted post-only order that would take is `Cancelled` with `EC_PostOnlyWillTakeLiquidity`.
//!
//! Cold path: `serde_json`, one allocation per message.

use qalpha_engine::order::{ExecKind, OrderType};
use qalpha_engine::{Price, Qty, Side};
use serde_json::{json, Value};

use super::book::ExchangeBook;
use super::orders::{now_ns, OrderStatus, OrderUpdate, SymbolOrders};
use super::orders_bybit::{order_id_string, order_item};
use super::positions::Position;
use super::server::Ctx;
use crate::fill::FeeSchedule;
use crate::gateway::hash_order_id;

/// The mock account's starting USDT wallet balance.
pub const STARTING_WALLET: i64 = 100_000;

/// Leverage reported on positions (not modelled).
const LEVERAGE: &str = "10";

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

fn frame(id: String, topic: &str, data: Value) -> String {
    json!({
        "id": id,
        "topic": topic,
        "creationTime": now_ms(),
        "data": [data],
    })
    .to_string()
}

fn is_fill(u: &OrderUpdate) -> bool {
    matches!(u.report.kind, ExecKind::PartialFill | ExecKind::Fill)
}

/// A symbol's realised PnL (before fees) and fees paid, in `10^-8` USDT: the cash of every kept
/// fill plus the entry cost of the open position (added back for a long, taken off for a short).
fn realised(orders: &SymbolOrders) -> (i128, i128) {
    let mut cash: i128 = 0;
    let mut fees: i128 = 0;
    for r in orders.all() {
        let n = r.notional_raw / 100_000_000;
        cash += match r.order.side {
            Side::Buy => -n,
            Side::Sell => n,
        };
        fees += i128::from(r.fee.raw());
    }
    let pos = orders.position();
    let open = i128::from(pos.entry_value().raw());
    let open = if pos.size().raw() < 0 { -open } else { open };
    (cash + open, fees)
}

fn qty128(v: i128) -> Qty {
    Qty(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// What a `position` message needs from the hub at send time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SymbolView {
    pub mark: Price,
    /// Realised PnL net of fees, `10^-8` USDT.
    pub realised_net: Qty,
}

/// The account at send time, for `wallet`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AccountView {
    pub wallet: Qty,
    pub upl: Qty,
    pub cum_realised: Qty,
}

fn view_of(orders: &SymbolOrders, book: &ExchangeBook, pos: &Position) -> SymbolView {
    let (pnl, fees) = realised(orders);
    SymbolView {
        mark: pos.mark_price(book),
        realised_net: qty128(pnl - fees),
    }
}

/// The symbol's mark price and realised PnL now (`pos` is the update's position).
pub(crate) fn symbol_view(ctx: &Ctx, symbol: &str, pos: &Position) -> SymbolView {
    ctx.hub.with_symbol(symbol, |s| {
        s.map(|s| view_of(&s.orders, &s.book, pos))
            .unwrap_or_default()
    })
}

/// The whole account now: wallet balance, unrealised and realised PnL over every symbol.
pub(crate) fn account_view(ctx: &Ctx) -> AccountView {
    let g = ctx.hub.lock();
    let (mut pnl, mut fees, mut upl) = (0i128, 0i128, 0i128);
    for s in g.symbols.values() {
        let (p, f) = realised(&s.orders);
        pnl += p;
        fees += f;
        let pos = s.orders.position();
        upl += i128::from(pos.unrealised(pos.mark_price(&s.book)).raw());
    }
    drop(g);
    let net = pnl - fees;
    AccountView {
        wallet: qty128(i128::from(STARTING_WALLET) * 100_000_000 + net),
        upl: qty128(upl),
        cum_realised: qty128(net),
    }
}

/// The `order` topic message for one update: the order's state after it.
pub(crate) fn order_message(u: &OrderUpdate, topic: &str) -> String {
    let r = &u.record;
    let mut item = order_item(r);
    if let Some(o) = item.as_object_mut() {
        o.insert("category".into(), "linear".into());
        if matches!(r.status, OrderStatus::Canceled | OrderStatus::Expired) {
            o.insert("orderStatus".into(), "Cancelled".into());
        }
        o.insert("createType".into(), "CreateByUser".into());
        o.insert("cumFeeDetail".into(), json!({ "USDT": r.fee.to_string() }));
        o.insert("closedPnl".into(), "0".into());
        o.insert("positionIdx".into(), 0.into());
    }
    frame(format!("{}-order-{}", u.seq, r.order_id), topic, item)
}

/// Bybit-style unique execution id, derived from the update's sequence.
fn exec_id(symbol: &str, seq: u64) -> String {
    let h = hash_order_id(symbol);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32 ^ 0x5eed_0000,
        (h >> 16) & 0xffff,
        (h >> 4) & 0xfff,
        h & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

/// The quantity of this fill that reduced the position (Bybit `closedSize`).
fn closed_size(u: &OrderUpdate) -> Qty {
    let q = u.report.last_qty.raw();
    let signed = match u.report.side {
        Side::Buy => q,
        Side::Sell => -q,
    };
    let before = u.position.size().raw().saturating_sub(signed);
    if before == 0 || (before > 0) == (signed > 0) {
        Qty::ZERO
    } else {
        Qty(before.saturating_abs().min(q))
    }
}

/// The `execution` topic message for a fill (`None` for other updates). `orderQty − leavesQty`
/// is the order's cumulative fill after this one, as decoders derive it.
pub(crate) fn execution_message(u: &OrderUpdate, topic: &str, mark: Price) -> Option<String> {
    if !is_fill(u) {
        return None;
    }
    let (r, o) = (&u.report, &u.record.order);
    let sym = o.symbol.as_str();
    let leaves = Qty((o.qty.raw() - r.cum_qty.raw()).max(0));
    let value = qty128(i128::from(r.last_px.raw()) * i128::from(r.last_qty.raw()) / 100_000_000);
    let fees = FeeSchedule::BYBIT_LINEAR_VIP0;
    let ppm = if r.is_maker {
        fees.maker_ppm
    } else {
        fees.taker_ppm
    };
    let (order_type, order_price) = match o.order_type {
        OrderType::Market => ("Market", String::new()),
        OrderType::Limit => ("Limit", o.price.to_string()),
    };
    let data = json!({
        "category": "linear",
        "symbol": sym,
        "orderId": order_id_string(sym, u.record.order_id),
        "orderLinkId": o.client_id.as_str(),
        "side": side_name(o.side),
        "orderType": order_type,
        "createType": "CreateByUser",
        "stopOrderType": "",
        "orderPrice": order_price,
        "orderQty": o.qty.to_string(),
        "leavesQty": leaves.to_string(),
        "execId": exec_id(sym, u.seq),
        "execPrice": r.last_px.to_string(),
        "execQty": r.last_qty.to_string(),
        "execValue": value.to_string(),
        "execFee": r.fee.to_string(),
        "feeRate": Qty(i64::from(ppm) * 100).to_string(),
        "feeCurrency": "USDT",
        "execType": "Trade",
        "execTime": r.exch_ms.to_string(),
        "execPnl": "0",
        "isMaker": r.is_maker,
        "closedSize": closed_size(u).to_string(),
        "markPrice": mark.to_string(),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "markIv": "",
        "tradeIv": "",
        "extraFees": "",
        "marketUnit": "",
        "seq": u.seq,
    });
    Some(frame(format!("{}-execution", u.seq), topic, data))
}

/// The `execution.fast` topic message for a fill (`orderLinkId` is `""` on maker fills, as on
/// Bybit).
pub(crate) fn execution_fast_message(u: &OrderUpdate, topic: &str) -> Option<String> {
    if !is_fill(u) {
        return None;
    }
    let (r, o) = (&u.report, &u.record.order);
    let sym = o.symbol.as_str();
    let data = json!({
        "category": "linear",
        "symbol": sym,
        "orderId": order_id_string(sym, u.record.order_id),
        "isMaker": r.is_maker,
        "orderLinkId": if r.is_maker { "" } else { o.client_id.as_str() },
        "execId": exec_id(sym, u.seq),
        "execPrice": r.last_px.to_string(),
        "execQty": r.last_qty.to_string(),
        "side": side_name(o.side),
        "execTime": r.exch_ms.to_string(),
        "seq": u.seq,
    });
    Some(frame(format!("{}-execution-fast", u.seq), topic, data))
}

/// The `position` topic message: the symbol's position after the update.
pub(crate) fn position_message(u: &OrderUpdate, topic: &str, view: SymbolView) -> String {
    let pos = &u.position;
    let sym = u.record.order.symbol.as_str();
    let size = pos.size().raw();
    let side = match size.signum() {
        1 => "Buy",
        -1 => "Sell",
        _ => "",
    };
    let entry = pos.entry_price();
    let realised = view.realised_net.to_string();
    let data = json!({
        "category": "linear",
        "symbol": sym,
        "side": side,
        "size": Qty(size.saturating_abs()).to_string(),
        "positionIdx": 0,
        "tradeMode": 0,
        "positionValue": pos.entry_value().to_string(),
        "riskId": 1,
        "riskLimitValue": "2000000",
        "entryPrice": entry.to_string(),
        "breakEvenPrice": entry.to_string(),
        "markPrice": view.mark.to_string(),
        "leverage": LEVERAGE,
        "positionBalance": "0",
        "autoAddMargin": 0,
        "positionIM": "0",
        "positionMM": "0",
        "liqPrice": "",
        "bustPrice": "",
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": pos.unrealised(view.mark).to_string(),
        "curRealisedPnl": realised,
        "cumRealisedPnl": realised,
        "sessionAvgPrice": "",
        "positionStatus": "Normal",
        "adlRankIndicator": if size == 0 { 0 } else { 2 },
        "isReduceOnly": false,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": pos.updated_ms.to_string(),
        "updatedTime": pos.updated_ms.to_string(),
        "seq": u.seq,
    });
    frame(format!("{}-position", u.seq), topic, data)
}

/// The `wallet` topic message: the unified account's USDT after a fill.
pub(crate) fn wallet_message(seq: u64, a: AccountView) -> String {
    let wallet = a.wallet.to_string();
    let equity = Qty(a.wallet.raw().saturating_add(a.upl.raw())).to_string();
    let upl = a.upl.to_string();
    let data = json!({
        "accountType": "UNIFIED",
        "accountIMRate": "0",
        "accountMMRate": "0",
        "accountLTV": "0",
        "totalEquity": equity,
        "totalWalletBalance": wallet,
        "totalMarginBalance": equity,
        "totalAvailableBalance": equity,
        "totalPerpUPL": upl,
        "totalInitialMargin": "0",
        "totalMaintenanceMargin": "0",
        "coin": [{
            "coin": "USDT",
            "equity": equity,
            "usdValue": equity,
            "walletBalance": wallet,
            "availableToWithdraw": "",
            "availableToBorrow": "",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": "0",
            "totalPositionMM": "0",
            "unrealisedPnl": upl,
            "cumRealisedPnl": a.cum_realised.to_string(),
            "bonus": "0",
            "collateralSwitch": true,
            "marginCollateral": true,
            "locked": "0",
            "spotHedgingQty": "0",
        }],
    });
    frame(format!("{seq}-wallet"), "wallet", data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::bybit::parse_private;
    use qalpha_engine::order::{ClientOrderId, NewOrder, TimeInForce};
    use qalpha_engine::{Symbol, Venue};

    fn book() -> ExchangeBook {
        let mut b = ExchangeBook::default();
        b.set(true, Price::from_units(100), Qty::from_units(1));
        b.set(false, Price::from_units(101), Qty::from_units(1));
        b.set(false, Price::from_units(102), Qty::from_units(2));
        b
    }

    fn order(id: &str, side: Side, px: i64, qty: i64, tif: TimeInForce) -> NewOrder {
        NewOrder {
            venue: Venue::BybitLinear,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse(id).unwrap(),
            side,
            order_type: OrderType::Limit,
            tif,
            price: Price::from_units(px),
            qty: Qty::from_units(qty),
            reduce_only: false,
        }
    }

    #[test]
    fn fills_round_trip_through_the_gateway_decoder() {
        let b = book();
        let mut s = SymbolOrders::default();
        // Takes 1 @ 101 and 1 @ 102.
        s.submit(
            order("t", Side::Buy, 102, 2, TimeInForce::Ioc),
            &b,
            1_000_000,
        )
        .unwrap();
        let ups = s.take_updates();
        let fills: Vec<_> = ups.iter().filter(|u| is_fill(u)).collect();
        assert_eq!(fills.len(), 2);
        for (i, u) in fills.iter().enumerate() {
            let u = OrderUpdate {
                seq: i as u64 + 1,
                ..**u
            };
            let m = execution_message(&u, "execution", Price::from_units(100)).unwrap();
            let r = parse_private(m.as_bytes(), 0).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(
                (r[0].cum_qty, r[0].last_qty, r[0].last_px, r[0].fee),
                (
                    u.report.cum_qty,
                    u.report.last_qty,
                    u.report.last_px,
                    u.report.fee
                )
            );
            assert_eq!(r[0].client_id.as_str(), "t");
            let v: Value = serde_json::from_str(&m).unwrap();
            assert_eq!(v["data"][0]["feeRate"], "0.00055");
            assert_eq!(v["data"][0]["closedSize"], "0");
        }
        // Sell 1 @ 100 against long 2 @ 101.5: closes 1.
        s.submit(
            order("u", Side::Sell, 100, 1, TimeInForce::Ioc),
            &b,
            2_000_000,
        )
        .unwrap();
        let u = *s.take_updates().iter().find(|u| is_fill(u)).unwrap();
        assert_eq!(closed_size(&u), Qty::from_units(1));
        let (pnl, fees) = realised(&s);
        assert_eq!(pnl, -150_000_000); // 1 × (100 − 101.5)
        assert!(fees > 0);
        let v: Value = serde_json::from_str(&order_message(&u, "order")).unwrap();
        assert_eq!(v["data"][0]["orderStatus"], "Filled");
        assert_eq!(v["data"][0]["category"], "linear");
    }

    #[test]
    fn post_only_that_would_take_is_cancelled_with_its_reason() {
        let b = book();
        let mut s = SymbolOrders::default();
        s.submit(order("p", Side::Buy, 101, 1, TimeInForce::PostOnly), &b, 1)
            .unwrap();
        let ups = s.take_updates();
        let last = ups.last().unwrap();
        let m = order_message(last, "order");
        let v: Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["data"][0]["orderStatus"], "Cancelled");
        assert_eq!(v["data"][0]["rejectReason"], "EC_PostOnlyWillTakeLiquidity");
        let r = parse_private(m.as_bytes(), 0).unwrap();
        assert_eq!(r[0].kind, ExecKind::Expired);
    }
}
