//! The simulated account of a backtest: the risk crate's exact [`Ledger`] (average cost, fees,
//! funding, marks) plus what a report needs on top — closed round trips with entry and exit, the
//! equity curve, fee/funding/turnover totals and the order log. One account holds every symbol of
//! a run (one margin balance, one equity), each with its own position and round trips.

use std::collections::BTreeMap;

use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_risk::ledger::Ledger;
use qalpha_risk::Money;
use serde::Serialize;

use super::metrics::{ClosedTrade, EquityPoint, Totals};

/// One order the backtest sent (accepted or refused by risk), as the report lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OrderRecord {
    pub ts_ns: u64,
    #[serde(serialize_with = "symbol_str")]
    pub symbol: Symbol,
    #[serde(serialize_with = "side_str")]
    pub side: Side,
    #[serde(serialize_with = "qty_str")]
    pub qty: Qty,
    /// The limit price, or the price it filled at for a market order.
    #[serde(serialize_with = "price_str")]
    pub price: Price,
    pub reduce_only: bool,
    /// Risk's refusal (`None`: sent).
    pub rejected: Option<&'static str>,
}

/// The round trip now open.
#[derive(Clone, Copy, Debug)]
struct OpenTrade {
    side: Side,
    entry_time: u64,
    /// Σ px × qty of the fills that opened or added, and their quantity.
    entry_notional: i128,
    entry_qty: i64,
    exit_notional: i128,
    exit_qty: i64,
    fees: Money,
}

/// A backtest's account: every symbol's position on one venue, one equity.
#[derive(Debug)]
pub struct Account {
    venue: Venue,
    pub ledger: Ledger,
    /// The round trip open per symbol.
    open: BTreeMap<Symbol, OpenTrade>,
    pub trades: Vec<ClosedTrade>,
    pub totals: Totals,
    pub curve: Vec<EquityPoint>,
    pub orders: Vec<OrderRecord>,
}

impl Account {
    pub fn new(venue: Venue, initial_equity: Money) -> Self {
        Self {
            venue,
            ledger: Ledger::new(initial_equity),
            open: BTreeMap::new(),
            trades: Vec::new(),
            totals: Totals::default(),
            curve: Vec::new(),
            orders: Vec::new(),
        }
    }

    pub fn position(&self, symbol: Symbol) -> Qty {
        self.ledger.position(self.venue, symbol)
    }

    pub fn equity(&self) -> Money {
        self.ledger.equity()
    }

    /// Marks `symbol`'s position at `px`.
    pub fn mark(&mut self, symbol: Symbol, px: Price) {
        self.ledger.on_mark(self.venue, symbol, px);
    }

    /// Appends an equity sample at `t_ms` (a sample at the same time replaces the previous one).
    pub fn sample(&mut self, t_ms: u64) {
        let p = EquityPoint {
            t_ms,
            equity: self.equity(),
        };
        match self.curve.last_mut() {
            Some(last) if last.t_ms == t_ms => *last = p,
            _ => self.curve.push(p),
        }
    }

    /// Funding at a funding time (`rate` 10⁻⁸, positive: longs pay).
    pub fn funding(&mut self, symbol: Symbol, rate: Qty, mark: Price) {
        let got = self.ledger.on_funding(self.venue, symbol, rate, mark);
        self.totals.funding += got;
    }

    /// One fill of `symbol` at `t_ms`; `fee` in quote 10⁻⁸ units. Closes, opens or flips round
    /// trips.
    pub fn fill(&mut self, symbol: Symbol, t_ms: u64, side: Side, px: Price, qty: Qty, fee: Qty) {
        if qty.raw() <= 0 {
            return;
        }
        let before = self.position(symbol).raw();
        let fee_m = Money::from_qty(fee);
        self.totals.fees += fee_m;
        self.totals.traded_notional += Money::notional(px, qty);
        let outcome = self.ledger.on_fill(self.venue, symbol, side, px, qty, fee);
        let dir = if side == Side::Buy { 1 } else { -1 };
        let notional = |q: i64| px.raw() as i128 * q as i128;
        let adds = before == 0 || (before > 0) == (dir > 0);
        if adds {
            let t = self.open.entry(symbol).or_insert(OpenTrade {
                side,
                entry_time: t_ms,
                entry_notional: 0,
                entry_qty: 0,
                exit_notional: 0,
                exit_qty: 0,
                fees: Money::ZERO,
            });
            t.entry_notional += notional(qty.raw());
            t.entry_qty += qty.raw();
            t.fees += fee_m;
            return;
        }
        // Reduces, closes or flips: the ledger's pro-rata fee split, mirrored.
        let closed = qty.raw().min(before.abs());
        let rest = qty.raw() - closed;
        let closing_fee = if rest == 0 {
            fee_m
        } else {
            Money(fee_m.raw() * closed as i128 / qty.raw() as i128)
        };
        if let Some(t) = self.open.get_mut(&symbol) {
            t.exit_notional += notional(closed);
            t.exit_qty += closed;
            t.fees += closing_fee;
        }
        if let (Some(net), Some(t)) = (outcome.closed_trade, self.open.remove(&symbol)) {
            let avg = |n: i128, q: i64| Price((n / q.max(1) as i128) as i64);
            self.trades.push(ClosedTrade {
                symbol,
                side: t.side,
                entry_time: t.entry_time,
                entry_price: avg(t.entry_notional, t.entry_qty),
                exit_time: t_ms,
                exit_price: avg(t.exit_notional, t.exit_qty),
                qty: Qty(t.entry_qty),
                pnl: net,
                fees: t.fees,
            });
        }
        if rest > 0 {
            self.open.insert(
                symbol,
                OpenTrade {
                    side,
                    entry_time: t_ms,
                    entry_notional: notional(rest),
                    entry_qty: rest,
                    exit_notional: 0,
                    exit_qty: 0,
                    fees: fee_m - closing_fee,
                },
            );
        }
    }

    /// Each symbol's share of the account: its round trips, PnL net of fees and funding, fees and
    /// traded notional (for a report's per-symbol table).
    pub fn by_symbol(&self) -> BTreeMap<Symbol, SymbolTotals> {
        let mut out: BTreeMap<Symbol, SymbolTotals> = BTreeMap::new();
        for t in &self.trades {
            let e = out.entry(t.symbol).or_default();
            e.trades += 1;
            e.wins += u64::from(t.pnl.raw() > 0);
        }
        for o in &self.orders {
            out.entry(o.symbol).or_default().orders += 1;
        }
        for (symbol, e) in out.iter_mut() {
            e.position = self.position(*symbol);
            if let Some(p) = self.ledger.get(self.venue, *symbol) {
                e.pnl = p.realized - p.fees + p.funding + p.unrealized();
                e.fees = p.fees;
                e.funding = p.funding;
            }
        }
        out
    }
}

/// One symbol's totals in [`Account::by_symbol`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SymbolTotals {
    pub orders: u64,
    pub trades: u64,
    pub wins: u64,
    #[serde(serialize_with = "qty_str")]
    pub position: Qty,
    /// Realized + unrealized at the last mark, net of fees and funding.
    #[serde(serialize_with = "money_str")]
    pub pnl: Money,
    #[serde(serialize_with = "money_str")]
    pub fees: Money,
    /// Received (+) or paid (−).
    #[serde(serialize_with = "money_str")]
    pub funding: Money,
}

fn money_str<S: serde::Serializer>(m: &Money, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&m.to_string())
}

fn symbol_str<S: serde::Serializer>(s: &Symbol, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn side_str<S: serde::Serializer>(s: &Side, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    })
}

fn qty_str<S: serde::Serializer>(q: &Qty, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&q.to_string())
}

fn price_str<S: serde::Serializer>(p: &Price, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: i64 = 100_000_000; // 1.0

    fn px(x: i64) -> Price {
        Price(x * Q)
    }

    #[test]
    fn round_trips_with_a_flip_and_exact_pnl() {
        let btc = Symbol::parse("BTCUSDT").unwrap();
        let mut a = Account::new(Venue::BinanceUsdm, Money::from_qty(Qty(1000 * Q)));
        a.fill(btc, 1, Side::Buy, px(100), Qty(Q), Qty(Q / 10)); // long 1 @100, fee 0.1
        a.fill(btc, 2, Side::Buy, px(110), Qty(Q), Qty(Q / 10)); // long 2, avg 105
        a.fill(btc, 3, Side::Sell, px(120), Qty(3 * Q), Qty(3 * Q / 10)); // close 2 @120, short 1 @120
        a.fill(btc, 4, Side::Buy, px(115), Qty(Q), Qty(Q / 10)); // close the short @115
        assert_eq!(a.trades.len(), 2);
        let (t0, t1) = (a.trades[0], a.trades[1]);
        assert_eq!((t0.side, t0.entry_time, t0.exit_time), (Side::Buy, 1, 3));
        assert_eq!(
            (t0.entry_price, t0.exit_price, t0.qty),
            (px(105), px(120), Qty(2 * Q))
        );
        // (120 − 105) × 2 − 0.1 − 0.1 − 0.2 (two thirds of the 0.3 fee)
        assert_eq!(t0.pnl.to_string(), "29.6");
        assert_eq!(
            (t1.side, t1.entry_price, t1.exit_price),
            (Side::Sell, px(120), px(115))
        );
        assert_eq!(t1.pnl.to_string(), "4.8"); // 5 − 0.1 − 0.1
        assert_eq!(a.totals.fees.to_string(), "0.6");
        assert_eq!(a.totals.traded_notional.to_string(), "685");
        assert_eq!(a.position(btc), Qty::ZERO);
        // Equity = initial + Σ net PnL.
        assert_eq!(a.equity().to_string(), "1034.4");
    }
}
