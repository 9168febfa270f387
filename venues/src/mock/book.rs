//! The exchange-side book the mock keeps for each symbol, to answer REST snapshots and Bybit
//! subscription snapshots consistently with the stream position it has reached. Cold path: a
//! `BTreeMap` keyed by exact price; formatting keeps the venue's string style.

use std::collections::BTreeMap;

use qalpha_engine::book_view::{BookLevel, BookView};
use qalpha_engine::{Price, Qty, Side};

/// Both sides of one symbol's book.
#[derive(Clone, Debug, Default)]
pub struct ExchangeBook {
    pub bids: BTreeMap<Price, Qty>,
    pub asks: BTreeMap<Price, Qty>,
}

impl ExchangeBook {
    /// Sets an absolute quantity (zero deletes).
    pub fn set(&mut self, bid: bool, px: Price, qty: Qty) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if qty.is_zero() {
            side.remove(&px);
        } else {
            side.insert(px, qty);
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    /// `[["p","q"],…]` best first, at most `limit` levels.
    pub fn levels_json(&self, bid: bool, limit: usize) -> String {
        let mut out = String::with_capacity(limit.min(1000) * 24 + 2);
        out.push('[');
        let mut push = |i: usize, p: &Price, q: &Qty| {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("[\"{p}\",\"{q}\"]"));
        };
        if bid {
            for (i, (p, q)) in self.bids.iter().rev().take(limit).enumerate() {
                push(i, p, q);
            }
        } else {
            for (i, (p, q)) in self.asks.iter().take(limit).enumerate() {
                push(i, p, q);
            }
        }
        out.push(']');
        out
    }

    /// Applies `[["p","q"],…]` from a JSON value (capture frames).
    pub fn apply_json_levels(
        &mut self,
        bid: bool,
        levels: &serde_json::Value,
    ) -> Result<(), String> {
        let arr = levels.as_array().ok_or("levels are not an array")?;
        for l in arr {
            let p = l.get(0).and_then(|v| v.as_str()).ok_or("bad level")?;
            let q = l.get(1).and_then(|v| v.as_str()).ok_or("bad level")?;
            let p = Price::parse(p).map_err(|e| e.to_string())?;
            let q = Qty::parse(q).map_err(|e| e.to_string())?;
            self.set(bid, p, q);
        }
        Ok(())
    }
}

/// Lets the fill model match our orders against the book the mock is serving (and lets tests drive
/// the fill model with a book rebuilt from a capture).
impl BookView for ExchangeBook {
    fn best(&self, side: Side) -> Option<BookLevel> {
        let top = match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        };
        top.map(|(px, qty)| BookLevel { px, qty })
    }

    fn qty_at(&self, side: Side, px: Price) -> Qty {
        let levels = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        levels.get(&px).copied().unwrap_or(Qty::ZERO)
    }

    fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_ {
        // Bids are walked from the top of the map, asks from the bottom; the two iterator types
        // differ, so each side is an optional half of one chain (no boxing, no allocation).
        let (bids, asks) = match side {
            Side::Buy => (Some(self.bids.iter().rev()), None),
            Side::Sell => (None, Some(self.asks.iter())),
        };
        bids.into_iter()
            .flatten()
            .chain(asks.into_iter().flatten())
            .map(|(px, qty)| BookLevel { px: *px, qty: *qty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_view_walks_each_side_best_first() {
        let p = Price::from_units;
        let q = Qty::from_units;
        let mut b = ExchangeBook::default();
        b.set(true, p(99), q(2));
        b.set(true, p(100), q(1));
        b.set(false, p(102), q(4));
        b.set(false, p(101), q(3));
        assert_eq!(
            BookView::best(&b, Side::Buy),
            Some(BookLevel {
                px: p(100),
                qty: q(1)
            })
        );
        assert_eq!(BookView::best(&b, Side::Sell).map(|l| l.px), Some(p(101)));
        assert_eq!(b.qty_at(Side::Sell, p(102)), q(4));
        assert_eq!(b.qty_at(Side::Buy, p(101)), Qty::ZERO);
        let bids: Vec<_> = b.levels(Side::Buy).map(|l| l.px).collect();
        assert_eq!(bids, vec![p(100), p(99)]);
        let asks: Vec<_> = b.levels(Side::Sell).map(|l| l.px).collect();
        assert_eq!(asks, vec![p(101), p(102)]);
    }
}
