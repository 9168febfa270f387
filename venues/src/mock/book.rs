//! The exchange-side book the mock keeps for each symbol, to answer REST snapshots and Bybit
//! subscription snapshots consistently with the stream position it has reached. Cold path: a
//! `BTreeMap` keyed by exact price; formatting keeps the venue's string style.

use std::collections::BTreeMap;

use qalpha_engine::{Price, Qty};

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
