//! Pre-trade checks: a pure function of the limits, the risk state, the order, the market and the
//! account, answering "send" or a named [`RejectReason`].
//!
//! Every money and limit comparison is exact: prices and quantities are 10⁻⁸ fixed-point counts,
//! their products are compared cross-multiplied in `i128` (never divided, never through a float), and
//! an intermediate that would overflow `i128` refuses the order rather than wrap.
//!
//! Hot path: called inline on the strategy thread for every new order; allocates nothing, takes no
//! lock, makes no syscall.
//!
//! # Order of the checks (the first failure is the answer)
//!
//! 1. **Halted** → only orders that [`reduces`] the position; anything else is `Halted`.
//! 2. **Reducing** → only orders that reduce; anything else is `Reducing`.
//! 3. **Conservative** → orders that open or add are `Conservative`.
//! 4. **Orders that reduce** skip every remaining check except the price band: a reducing order is
//!    always allowed to get out — a stale book, a full open-order slot, the order rate or any
//!    exposure limit must never trap the account in a position. The band still guards them against
//!    a fat-fingered price, when a reference price is known (without one there is nothing to judge
//!    the price against, and getting out wins).
//! 5. `StaleBook`: the symbol's book is not in sync.
//! 6. `NoReferencePrice`: the reference is the mark, else the touch on the order's side (best ask for
//!    a buy, best bid for a sell); neither known → refused.
//! 7. `PriceBand`: a limit buy above reference × (1 + band) or a limit sell below
//!    reference × (1 − band). A market order's price *is* the reference, so it always passes.
//! 8. `MaxOrderNotional`: price × qty, at the order's price (its limit price; market orders: the
//!    reference).
//! 9. `MaxPositionQty`, then `MaxPositionNotional`: |position after a full fill| (× price), against
//!    the symbol's limits ([`RiskConfig::limits_for`]).
//! 10. `MaxLeverage`: gross notional after the fill ≤ `max_leverage` × equity; equity ≤ 0 refuses.
//! 11. `RiskPerTrade`: the loss at the stop ≤ `risk_per_trade_pct` % of equity.
//! 12. `MaxOpenOrders`, then `OrderRate`: counting this order.

use qalpha_engine::order::{NewOrder, OrderType};
use qalpha_engine::{Price, Qty, Side, FIXED_SCALE};

use crate::{Money, RejectReason, RiskConfig, RiskState};

/// 10⁸: one unit in 10⁻⁸ counts.
const SCALE: i128 = FIXED_SCALE as i128;
/// 10 000 basis points, as a 10⁻⁸ count (the scale `price_band_bps` and `volatility_proxy_bps` are in).
const BPS_WHOLE: i128 = 10_000 * SCALE;

/// What the order is judged against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderContext {
    pub mark: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    pub book_stale: bool,
    /// The strategy's stop for this order, if it gave one.
    pub stop_px: Option<Price>,
}

/// The account as the check needs it (the risk engine fills it from its ledger).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Signed position in this symbol.
    pub position: Qty,
    pub equity: Money,
    /// Σ |size| × mark over all symbols.
    pub gross_notional: Money,
    pub open_orders: u32,
    pub orders_last_s: u32,
}

/// Whether `o` only reduces `position`: the opposite side with `0 < qty ≤ |position|`.
///
/// The order's `reduce_only` flag is not looked at: a reduce-only order that would not reduce (same
/// side, or larger than the position) is *not* reducing here — the venue would cancel or trim it, and
/// a flag must not buy a way around the halted / reducing / conservative gates.
pub fn reduces(o: &NewOrder, position: Qty) -> bool {
    let (q, p) = (o.qty.raw() as i128, position.raw() as i128);
    q > 0
        && match o.side {
            Side::Buy => p < 0 && q <= -p,
            Side::Sell => p > 0 && q <= p,
        }
}

/// Judges a new order; `Ok(())` means it may be sent. See the module doc for the order of the checks.
///
/// `o.qty` is the order's size (positive); `conservative` is the switches' modifier.
pub fn pre_trade(
    cfg: &RiskConfig,
    state: RiskState,
    conservative: bool,
    o: &NewOrder,
    ctx: &OrderContext,
    x: &Exposure,
) -> Result<(), RejectReason> {
    let reducing = reduces(o, x.position);
    match state {
        RiskState::Halted if !reducing => return Err(RejectReason::Halted),
        RiskState::Reducing if !reducing => return Err(RejectReason::Reducing),
        _ => {}
    }
    if conservative && !reducing {
        return Err(RejectReason::Conservative);
    }

    if reducing {
        // Getting out is always allowed; only a fat-fingered price is stopped.
        return match reference_price(o.side, ctx) {
            Some(reference) => price_band(cfg, o, reference),
            None => Ok(()),
        };
    }

    if ctx.book_stale {
        return Err(RejectReason::StaleBook);
    }
    let reference = reference_price(o.side, ctx).ok_or(RejectReason::NoReferencePrice)?;
    price_band(cfg, o, reference)?;
    let px = match o.order_type {
        OrderType::Limit => o.price,
        OrderType::Market => reference,
    };
    // Products of two i64 counts fit i128 (< 2¹²⁶); so does |position after| × price once the
    // position is within its i64 limit. Only the leverage and per-trade sums need checked arithmetic.
    let (px_raw, qty_raw) = (px.raw() as i128, o.qty.raw() as i128);

    // price × qty (10⁻¹⁶) against a 10⁻⁸ limit scaled to 10⁻¹⁶.
    if px_raw * qty_raw > Money::from_qty(cfg.max_order_notional).raw() {
        return Err(RejectReason::MaxOrderNotional);
    }

    let (max_qty, max_notional) = cfg.limits_for(o.symbol.as_str());
    let pos = x.position.raw() as i128;
    let pos_after = match o.side {
        Side::Buy => pos + qty_raw,
        Side::Sell => pos - qty_raw,
    };
    if pos_after.abs() > max_qty.raw() as i128 {
        return Err(RejectReason::MaxPositionQty);
    }
    if pos_after.abs() * px_raw > Money::from_qty(max_notional).raw() {
        return Err(RejectReason::MaxPositionNotional);
    }

    // Leverage: this symbol's share of the gross re-valued at the order's price.
    let equity = x.equity.raw();
    if equity <= 0 {
        return Err(RejectReason::MaxLeverage);
    }
    // gross_after (10⁻¹⁶) ≤ max_leverage (10⁻⁸ ×) × equity (10⁻¹⁶): both sides × 10⁸.
    let gross_after = x
        .gross_notional
        .raw()
        .checked_sub(pos.abs() * px_raw)
        .and_then(|g| g.checked_add(pos_after.abs() * px_raw));
    if !le(
        gross_after.and_then(|g| g.checked_mul(SCALE)),
        (cfg.max_leverage.raw() as i128).checked_mul(equity),
    ) {
        return Err(RejectReason::MaxLeverage);
    }

    // Risk per trade: loss ≤ equity × pct / 100, with pct a 10⁻⁸ count.
    let pct = cfg.risk_per_trade_pct.raw() as i128;
    let within = match ctx.stop_px {
        // qty × |px − stop| (10⁻¹⁶) × 100 × 10⁸ ≤ equity (10⁻¹⁶) × pct.
        Some(stop) => le(
            qty_raw
                .checked_mul((px_raw - stop.raw() as i128).abs())
                .and_then(|l| l.checked_mul(100 * SCALE)),
            equity.checked_mul(pct),
        ),
        // The assumed stop distance is px × bps / 10 000; the loss qty × px × bps / (10⁴ × 10⁸)
        // (10⁻¹⁶). Cross-multiplied: qty × px × bps × 100 ≤ equity × pct × 10⁴.
        None => le(
            qty_raw
                .checked_mul(px_raw)
                .and_then(|l| l.checked_mul(cfg.volatility_proxy_bps.raw() as i128))
                .and_then(|l| l.checked_mul(100)),
            equity.checked_mul(pct).and_then(|r| r.checked_mul(10_000)),
        ),
    };
    if !within {
        return Err(RejectReason::RiskPerTrade);
    }

    if x.open_orders as u64 + 1 > cfg.max_open_orders as u64 {
        return Err(RejectReason::MaxOpenOrders);
    }
    if x.orders_last_s as u64 + 1 > cfg.max_orders_per_s as u64 {
        return Err(RejectReason::OrderRate);
    }
    Ok(())
}

/// `qty` × `conservative_size_factor`, rounded toward zero to a multiple of `step` (a `step` ≤ 0
/// means the 10⁻⁸ grid).
///
/// Rounding down here is a sizing decision (never trade more than the factor allows), not a price
/// rounding: the result is an exact multiple of the lot step, so the venue will not trim it.
pub fn conservative_qty(cfg: &RiskConfig, qty: Qty, step: Qty) -> Qty {
    let scaled = qty.raw() as i128 * cfg.conservative_size_factor.raw() as i128; // 10⁻¹⁶
    let step = (step.raw() as i128).max(1) * SCALE; // 10⁻¹⁶
    let q = scaled / step * step / SCALE; // `/` truncates toward zero
    Qty(q.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// The price the order is judged against: the mark, else the touch the order would take from.
fn reference_price(side: Side, ctx: &OrderContext) -> Option<Price> {
    ctx.mark.or(match side {
        Side::Buy => ctx.best_ask,
        Side::Sell => ctx.best_bid,
    })
}

/// The fat-finger band around `reference`, for limit orders.
fn price_band(cfg: &RiskConfig, o: &NewOrder, reference: Price) -> Result<(), RejectReason> {
    if o.order_type != OrderType::Limit {
        return Ok(());
    }
    // px × 10 000 × 10⁸ against reference × (10 000 × 10⁸ ± bps), bps a 10⁻⁸ count.
    let px = o.price.raw() as i128 * BPS_WHOLE;
    let reference = reference.raw() as i128;
    let band = cfg.price_band_bps.raw() as i128;
    let outside = match o.side {
        Side::Buy => px > reference * (BPS_WHOLE + band),
        Side::Sell => px < reference * (BPS_WHOLE - band),
    };
    if outside {
        Err(RejectReason::PriceBand)
    } else {
        Ok(())
    }
}

/// `a ≤ b`, where an overflowed side is unbounded: an overflowed left side (the exposure) fails, an
/// overflowed right side (the allowance) passes only if the left did not overflow. Overflow needs
/// amounts far beyond any account, so failing safe costs nothing.
fn le(a: Option<i128>, b: Option<i128>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a <= b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use qalpha_engine::order::{ClientOrderId, TimeInForce};
    use qalpha_engine::{Symbol, Venue};

    use super::*;
    use crate::config::SymbolLimits;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn m(s: &str) -> Money {
        Money::from_qty(q(s))
    }

    fn order(side: Side, ty: OrderType, px: &str, qty: &str) -> NewOrder {
        NewOrder {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::default(),
            side,
            order_type: ty,
            tif: TimeInForce::Gtc,
            price: p(px),
            qty: q(qty),
            reduce_only: false,
        }
    }
    fn buy(px: &str, qty: &str) -> NewOrder {
        order(Side::Buy, OrderType::Limit, px, qty)
    }
    fn sell(px: &str, qty: &str) -> NewOrder {
        order(Side::Sell, OrderType::Limit, px, qty)
    }

    /// Limits chosen so that each check can be hit on its own: a mark of 100, a 100 bps band,
    /// generous defaults for everything else, and one limit tightened per table row.
    fn cfg() -> RiskConfig {
        RiskConfig {
            initial_equity: q("10000"),
            max_leverage: q("1000"),
            max_position_qty: q("1000"),
            max_position_notional: q("1000000"),
            symbols: Default::default(),
            risk_per_trade_pct: q("100"),
            volatility_proxy_bps: q("50"),
            max_order_notional: q("1000000"),
            price_band_bps: q("100"),
            max_open_orders: 50,
            max_orders_per_s: 20,
            ..RiskConfig::default()
        }
    }
    fn ctx() -> OrderContext {
        OrderContext {
            mark: Some(p("100")),
            best_bid: Some(p("99.9")),
            best_ask: Some(p("100.1")),
            book_stale: false,
            stop_px: None,
        }
    }
    fn flat() -> Exposure {
        Exposure {
            position: Qty::ZERO,
            equity: m("10000"),
            gross_notional: Money::ZERO,
            open_orders: 0,
            orders_last_s: 0,
        }
    }
    fn check(
        c: &RiskConfig,
        o: &NewOrder,
        k: &OrderContext,
        x: &Exposure,
    ) -> Result<(), RejectReason> {
        pre_trade(c, RiskState::Active, false, o, k, x)
    }

    #[test]
    fn reduces_needs_the_opposite_side_and_at_most_the_position() {
        let rows: &[(NewOrder, &str, bool)] = &[
            (sell("100", "1"), "1", true),
            (sell("100", "0.5"), "1", true),
            (sell("100", "1.00000001"), "1", false),
            (buy("100", "1"), "1", false),
            (buy("100", "1"), "-1", true),
            (buy("100", "1.00000001"), "-1", false),
            (sell("100", "1"), "-1", false),
            (sell("100", "1"), "0", false),
            (buy("100", "1"), "0", false),
            (sell("100", "0"), "1", false),
        ];
        for (o, pos, want) in rows {
            assert_eq!(reduces(o, q(pos)), *want, "{o:?} against {pos}");
            // The flag changes nothing: a reduce-only order that adds is not reducing.
            let flagged = NewOrder {
                reduce_only: true,
                ..*o
            };
            assert_eq!(reduces(&flagged, q(pos)), *want);
        }
    }

    /// An order with its context and exposure (by default: mark 100, flat, equity 10 000).
    #[derive(Clone, Copy)]
    struct Case(NewOrder, OrderContext, Exposure);
    fn cb(px: &str, qty: &str) -> Case {
        Case(buy(px, qty), ctx(), flat())
    }
    fn cs(px: &str, qty: &str) -> Case {
        Case(sell(px, qty), ctx(), flat())
    }
    impl Case {
        fn pos(mut self, s: &str) -> Self {
            self.2.position = q(s);
            self
        }
        fn gross(mut self, s: &str) -> Self {
            self.2.gross_notional = m(s);
            self
        }
        fn stop(mut self, s: &str) -> Self {
            self.1.stop_px = Some(p(s));
            self
        }
        fn counts(mut self, open_orders: u32, orders_last_s: u32) -> Self {
            (self.2.open_orders, self.2.orders_last_s) = (open_orders, orders_last_s);
            self
        }
    }

    /// One row per limit: (the boundary, the limit tightened, a case exactly at the boundary that
    /// passes, the same case one 10⁻⁸ step over it, the reason it is refused).
    #[test]
    fn each_limit_passes_at_its_boundary_and_refuses_just_over() {
        use RejectReason as R;
        type Tweak = fn(&mut RiskConfig);
        #[rustfmt::skip]
        let rows: [(&str, Tweak, Case, Case, R); 13] = [
            ("band, buy: 100 × 1.01 = 101", |_| {},
                cb("101", "1"), cb("101.00000001", "1"), R::PriceBand),
            ("band, sell: 100 × 0.99 = 99", |_| {},
                cs("99", "1"), cs("98.99999999", "1"), R::PriceBand),
            ("band, 0.25 bps: 100 × 1.000025 = 100.0025", |c| c.price_band_bps = q("0.25"),
                cb("100.0025", "1"), cb("100.00250001", "1"), R::PriceBand),
            ("order notional: 100 × 5 = 500", |c| c.max_order_notional = q("500"),
                cb("100", "5"), cb("100", "5.00000001"), R::MaxOrderNotional),
            ("position qty: 2 + 3 = 5", |c| c.max_position_qty = q("5"),
                cb("100", "3").pos("2"), cb("100", "3.00000001").pos("2"), R::MaxPositionQty),
            ("position qty, short: -2 - 3 = -5", |c| c.max_position_qty = q("5"),
                cs("100", "3").pos("-2"), cs("100", "3.00000001").pos("-2"), R::MaxPositionQty),
            ("position notional: (1 + 2) × 100 = 300", |c| c.max_position_notional = q("300"),
                cb("100", "2").pos("1"), cb("100.00000001", "2").pos("1"),
                R::MaxPositionNotional),
            ("leverage: 1000 − 1 × 100 + 3 × 100 = 1200 = 0.12 × 10 000",
                |c| c.max_leverage = q("0.12"),
                cb("100", "2").pos("1").gross("1000"),
                cb("100", "2").pos("1").gross("1000.00000001"), R::MaxLeverage),
            ("risk at the stop: 2 × (100 − 95) = 10 = 0.1 % × 10 000",
                |c| c.risk_per_trade_pct = q("0.1"),
                cb("100", "2").stop("95"), cb("100", "2").stop("94.99999999"), R::RiskPerTrade),
            ("risk at a sell's stop: 2 × |100 − 105| = 10", |c| c.risk_per_trade_pct = q("0.1"),
                cs("100", "2").stop("105"), cs("100", "2").stop("105.00000001"), R::RiskPerTrade),
            ("risk at the proxy: 4 × 100 × 50 bps = 2 = 0.02 % × 10 000",
                |c| c.risk_per_trade_pct = q("0.02"),
                cb("100", "4"), cb("100", "4.00000001"), R::RiskPerTrade),
            ("open orders: 49 + 1 = 50", |_| {},
                cb("100", "1").counts(49, 0), cb("100", "1").counts(50, 0), R::MaxOpenOrders),
            ("order rate: 19 + 1 = 20", |_| {},
                cb("100", "1").counts(0, 19), cb("100", "1").counts(0, 20), R::OrderRate),
        ];
        for (name, tweak, inside, over, reason) in rows {
            let mut c = cfg();
            tweak(&mut c);
            let Case(o, k, x) = inside;
            assert_eq!(check(&c, &o, &k, &x), Ok(()), "{name} (inside)");
            let Case(o, k, x) = over;
            assert_eq!(check(&c, &o, &k, &x), Err(reason), "{name} (over)");
        }
    }

    #[test]
    fn equity_at_or_below_zero_refuses_new_risk() {
        for e in ["0", "-1"] {
            let x = Exposure {
                equity: m(e),
                ..flat()
            };
            assert_eq!(
                check(&cfg(), &buy("100", "0.01"), &ctx(), &x),
                Err(RejectReason::MaxLeverage)
            );
        }
    }

    #[test]
    fn symbol_limits_override_the_defaults() {
        let mut c = cfg();
        c.symbols.insert(
            "BTCUSDT".into(),
            SymbolLimits {
                max_position_qty: Some(q("0.5")),
                max_position_notional: None,
            },
        );
        assert_eq!(check(&c, &buy("100", "0.5"), &ctx(), &flat()), Ok(()));
        assert_eq!(
            check(&c, &buy("100", "0.50000001"), &ctx(), &flat()),
            Err(RejectReason::MaxPositionQty)
        );
    }

    #[test]
    fn market_orders_are_priced_at_the_reference_and_skip_the_band() {
        let mut c = cfg();
        c.max_order_notional = q("500");
        let mkt = |side, qty| order(side, OrderType::Market, "0", qty);
        // Mark 100: 5 × 100 = 500 fits, a hair more does not.
        assert_eq!(check(&c, &mkt(Side::Buy, "5"), &ctx(), &flat()), Ok(()));
        assert_eq!(
            check(&c, &mkt(Side::Buy, "5.00000001"), &ctx(), &flat()),
            Err(RejectReason::MaxOrderNotional)
        );
        // Without a mark, a buy is priced at the ask, a sell at the bid.
        let touch = OrderContext {
            mark: None,
            ..ctx()
        };
        assert_eq!(
            check(&c, &mkt(Side::Buy, "5"), &touch, &flat()),
            Err(RejectReason::MaxOrderNotional)
        );
        assert_eq!(check(&c, &mkt(Side::Sell, "5"), &touch, &flat()), Ok(()));
    }

    #[test]
    fn reference_falls_back_to_the_touch_on_the_orders_side() {
        let touch = OrderContext {
            mark: None,
            ..ctx()
        };
        // Ask 100.1 × 1.01 = 101.101; bid 99.9 × 0.99 = 98.901.
        assert_eq!(check(&cfg(), &buy("101.101", "1"), &touch, &flat()), Ok(()));
        assert_eq!(
            check(&cfg(), &buy("101.10100001", "1"), &touch, &flat()),
            Err(RejectReason::PriceBand)
        );
        assert_eq!(check(&cfg(), &sell("98.901", "1"), &touch, &flat()), Ok(()));
        assert_eq!(
            check(&cfg(), &sell("98.90099999", "1"), &touch, &flat()),
            Err(RejectReason::PriceBand)
        );
        // A buy needs the ask, a sell the bid.
        let bid_only = OrderContext {
            best_ask: None,
            ..touch
        };
        assert_eq!(
            check(&cfg(), &buy("100", "1"), &bid_only, &flat()),
            Err(RejectReason::NoReferencePrice)
        );
        assert_eq!(check(&cfg(), &sell("100", "1"), &bid_only, &flat()), Ok(()));
    }

    #[test]
    fn stale_book_and_missing_reference_refuse_new_risk() {
        let stale = OrderContext {
            book_stale: true,
            ..ctx()
        };
        assert_eq!(
            check(&cfg(), &buy("100", "1"), &stale, &flat()),
            Err(RejectReason::StaleBook)
        );
        let none = OrderContext {
            mark: None,
            best_bid: None,
            best_ask: None,
            ..ctx()
        };
        assert_eq!(
            check(&cfg(), &buy("100", "1"), &none, &flat()),
            Err(RejectReason::NoReferencePrice)
        );
        // Stale wins over no reference: it comes first.
        let both = OrderContext {
            book_stale: true,
            ..none
        };
        assert_eq!(
            check(&cfg(), &buy("100", "1"), &both, &flat()),
            Err(RejectReason::StaleBook)
        );
    }

    /// (state, conservative) × (opening, adding, reducing, reduce-only flag that adds).
    #[test]
    fn states_let_only_reducing_orders_through() {
        use RejectReason as R;
        use RiskState as S;
        let long = Exposure {
            position: q("1"),
            ..flat()
        };
        let opening = (buy("100", "1"), flat());
        let adding = (buy("100", "1"), long);
        let reducing = (sell("100", "1"), long);
        let flagged_adding = (
            NewOrder {
                reduce_only: true,
                ..buy("100", "1")
            },
            long,
        );
        let flipping = (sell("100", "2"), long);
        type Verdict = Result<(), R>;
        let rows: &[(S, bool, Verdict, Verdict)] = &[
            // (state, conservative, opening/adding/flipping, reducing)
            (S::Active, false, Ok(()), Ok(())),
            (S::Active, true, Err(R::Conservative), Ok(())),
            (S::Reducing, false, Err(R::Reducing), Ok(())),
            (S::Reducing, true, Err(R::Reducing), Ok(())),
            (S::Halted, false, Err(R::Halted), Ok(())),
            (S::Halted, true, Err(R::Halted), Ok(())),
        ];
        for (state, cons, new_risk, out) in rows {
            for (o, x) in [&opening, &adding, &flagged_adding, &flipping] {
                let got = pre_trade(&cfg(), *state, *cons, o, &ctx(), x);
                assert_eq!(
                    got, *new_risk,
                    "{state:?} cons={cons} {:?} {}",
                    o.side, o.qty
                );
            }
            let (o, x) = &reducing;
            assert_eq!(
                pre_trade(&cfg(), *state, *cons, o, &ctx(), x),
                *out,
                "{state:?} reduce"
            );
        }
    }

    #[test]
    fn reducing_orders_skip_every_limit_but_the_band() {
        let mut c = cfg();
        c.max_order_notional = q("1");
        c.max_position_qty = q("0.1");
        c.max_position_notional = q("1");
        c.max_leverage = q("0.01");
        c.risk_per_trade_pct = q("0.00000001");
        let x = Exposure {
            position: q("-3"),
            equity: m("-5"),
            gross_notional: m("1000000"),
            open_orders: 1000,
            orders_last_s: 1000,
        };
        let stale_no_ref = OrderContext {
            book_stale: true,
            mark: None,
            best_bid: None,
            best_ask: None,
            stop_px: None,
        };
        for state in [RiskState::Active, RiskState::Reducing, RiskState::Halted] {
            for cons in [false, true] {
                let out = |o: &NewOrder, k: &OrderContext| pre_trade(&c, state, cons, o, k, &x);
                assert_eq!(out(&buy("101", "3"), &ctx()), Ok(()));
                assert_eq!(
                    out(
                        &order(Side::Buy, OrderType::Market, "0", "1"),
                        &stale_no_ref
                    ),
                    Ok(())
                );
                assert_eq!(out(&buy("200", "1"), &stale_no_ref), Ok(()));
                // The band still guards against a fat finger when a reference is known.
                assert_eq!(
                    out(&buy("101.00000001", "3"), &ctx()),
                    Err(RejectReason::PriceBand)
                );
            }
        }
    }

    #[test]
    fn conservative_qty_rounds_down_to_the_step() {
        let mut c = cfg();
        c.conservative_size_factor = q("0.5");
        let rows = [
            ("1", "0.001", "0.5"),
            ("0.0031", "0.001", "0.001"),
            ("0.003", "0.001", "0.001"),
            ("0.002", "0.001", "0.001"),
            ("0.0019", "0.001", "0"),
            ("0.00000003", "0", "0.00000001"),
            ("7", "2", "2"),
        ];
        for (qty, step, want) in rows {
            assert_eq!(
                conservative_qty(&c, q(qty), q(step)),
                q(want),
                "{qty} step {step}"
            );
        }
        c.conservative_size_factor = q("0.3333");
        assert_eq!(conservative_qty(&c, q("3"), q("0.0001")), q("0.9999"));
    }

    #[test]
    fn overflow_refuses_instead_of_wrapping() {
        let mut c = cfg();
        c.max_leverage = Qty(i64::MAX);
        let rich = Exposure {
            equity: Money(i128::MAX / 4),
            ..flat()
        };
        // The allowance overflows, the exposure does not: within.
        assert_eq!(check(&c, &buy("100", "1"), &ctx(), &rich), Ok(()));
        // The exposure overflows too: refused, never wrapped.
        let x = Exposure {
            gross_notional: Money(i128::MAX / 2),
            ..rich
        };
        assert_eq!(
            check(&c, &buy("100", "1"), &ctx(), &x),
            Err(RejectReason::MaxLeverage)
        );
    }
}
