//! Checks rebuilt books against the venue's own best bid/offer.
//!
//! The venue publishes its top of book with the same update-id sequence as the diffs (Binance
//! `bookTicker.u`; Bybit `orderbook.1` `seq`, the cross sequence — each Bybit depth has its own `u`,
//! so the Bybit feed stamps both quotes and rebuilt tops with `seq`). A quote can be compared with
//! the rebuilt book only at exactly the same update id, and the two streams race: the quote often
//! arrives *before* the diff that ends at its id. So the checker keeps a short history of rebuilt
//! tops (for late quotes) and a short queue of pending quotes (for early ones). A quote whose id the
//! book passes without ever stopping at it cannot be verified and is counted as such, not as a
//! check. A stale book clears both: nothing is ever compared against a book that is not in sync.
//!
//! Runs on the consumer thread from events alone, so it checks what a strategy would see.

use std::collections::VecDeque;

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook, Venue};
use qalpha_engine::Symbol;

const HISTORY: usize = 64;
const PENDING: usize = 1024;

/// One mismatch, kept for the report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mismatch {
    pub venue: Venue,
    pub symbol: Symbol,
    pub recv_ns: u64,
    pub book: TopOfBook,
    pub quote: TopOfBook,
}

/// Check counters.
#[derive(Clone, Debug, Default)]
pub struct CheckCounters {
    pub checks: u64,
    pub mismatches: u64,
    /// Quotes whose update id the in-sync book never stopped at.
    pub unverifiable: u64,
    /// Rebuilt tops with best bid ≥ best ask.
    pub crossed: u64,
    /// First few mismatches, for diagnosis.
    pub first_mismatches: Vec<Mismatch>,
    /// Checks per venue, indexed by `Venue as usize` (0 unused).
    pub checks_by_venue: [u64; 3],
}

struct SymbolCheck {
    venue: Venue,
    symbol: Symbol,
    history: VecDeque<TopOfBook>,
    pending: VecDeque<(u64, TopOfBook)>,
}

/// Compares [`MarketPayload::Quote`] with [`MarketPayload::BookTop`] at equal update ids.
#[derive(Default)]
pub struct BookChecker {
    symbols: Vec<SymbolCheck>,
    counters: CheckCounters,
}

impl BookChecker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counters(&self) -> &CheckCounters {
        &self.counters
    }

    fn slot(&mut self, venue: Venue, symbol: Symbol) -> usize {
        if let Some(i) = self
            .symbols
            .iter()
            .position(|s| s.symbol == symbol && s.venue == venue)
        {
            return i;
        }
        self.symbols.push(SymbolCheck {
            venue,
            symbol,
            history: VecDeque::with_capacity(HISTORY),
            pending: VecDeque::with_capacity(PENDING),
        });
        self.symbols.len() - 1
    }

    /// Feeds one event.
    pub fn on_event(&mut self, ev: &MarketEvent) {
        match ev.payload {
            MarketPayload::BookTop(top) => {
                let i = self.slot(ev.venue, ev.symbol);
                if top.bid_qty.raw() > 0 && top.ask_qty.raw() > 0 && top.bid_px >= top.ask_px {
                    self.counters.crossed += 1;
                }
                let s = &mut self.symbols[i];
                if s.history.len() == HISTORY {
                    s.history.pop_front();
                }
                s.history.push_back(top);
                while let Some(&(recv_ns, q)) = s.pending.front() {
                    if q.update_id > top.update_id {
                        break;
                    }
                    s.pending.pop_front();
                    if q.update_id == top.update_id {
                        compare(&mut self.counters, s.venue, s.symbol, recv_ns, top, q);
                    } else {
                        self.counters.unverifiable += 1;
                    }
                }
            }
            MarketPayload::Quote(q) => {
                let i = self.slot(ev.venue, ev.symbol);
                let s = &mut self.symbols[i];
                let newest = s.history.back().map(|t| t.update_id);
                match newest {
                    Some(n) if q.update_id <= n => {
                        match s.history.iter().rev().find(|t| t.update_id == q.update_id) {
                            Some(&top) => {
                                compare(&mut self.counters, s.venue, s.symbol, ev.recv_ns, top, q)
                            }
                            None => self.counters.unverifiable += 1,
                        }
                    }
                    _ => {
                        if s.pending.len() == PENDING {
                            s.pending.pop_front();
                            self.counters.unverifiable += 1;
                        }
                        s.pending.push_back((ev.recv_ns, q));
                    }
                }
            }
            MarketPayload::BookStale { .. } => {
                let i = self.slot(ev.venue, ev.symbol);
                let s = &mut self.symbols[i];
                self.counters.unverifiable += s.pending.len() as u64;
                s.pending.clear();
                s.history.clear();
            }
            _ => {}
        }
    }
}

fn compare(
    c: &mut CheckCounters,
    venue: Venue,
    symbol: Symbol,
    recv_ns: u64,
    book: TopOfBook,
    quote: TopOfBook,
) {
    c.checks += 1;
    c.checks_by_venue[venue as usize] += 1;
    let same = book.bid_px == quote.bid_px
        && book.bid_qty == quote.bid_qty
        && book.ask_px == quote.ask_px
        && book.ask_qty == quote.ask_qty;
    if !same {
        c.mismatches += 1;
        if c.first_mismatches.len() < 8 {
            c.first_mismatches.push(Mismatch {
                venue,
                symbol,
                recv_ns,
                book,
                quote,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::{Price, Qty};

    fn ev(payload: MarketPayload) -> MarketEvent {
        MarketEvent {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            recv_ns: 0,
            decoded_ns: 0,
            exch_ms: 0,
            payload,
        }
    }
    fn top(u: u64, bid: i64) -> TopOfBook {
        TopOfBook {
            update_id: u,
            bid_px: Price::from_units(bid),
            bid_qty: Qty::from_units(1),
            ask_px: Price::from_units(bid + 1),
            ask_qty: Qty::from_units(1),
        }
    }

    #[test]
    fn early_and_late_quotes_are_checked_at_equal_ids() {
        let mut c = BookChecker::new();
        c.on_event(&ev(MarketPayload::Quote(top(10, 100)))); // early
        c.on_event(&ev(MarketPayload::BookTop(top(10, 100))));
        c.on_event(&ev(MarketPayload::BookTop(top(12, 101))));
        c.on_event(&ev(MarketPayload::Quote(top(12, 101)))); // late
        c.on_event(&ev(MarketPayload::Quote(top(11, 100)))); // between two book states: unverifiable
        c.on_event(&ev(MarketPayload::Quote(top(13, 999)))); // early, wrong
        c.on_event(&ev(MarketPayload::BookTop(top(13, 102))));
        let k = c.counters();
        assert_eq!((k.checks, k.mismatches, k.unverifiable), (3, 1, 1));
        assert_eq!(k.first_mismatches[0].quote.bid_px, Price::from_units(999));
    }

    #[test]
    fn stale_book_is_never_compared() {
        let mut c = BookChecker::new();
        c.on_event(&ev(MarketPayload::BookTop(top(10, 100))));
        c.on_event(&ev(MarketPayload::BookStale {
            reason: qalpha_engine::event::StaleReason::SequenceGap,
            last_update_id: 10,
        }));
        c.on_event(&ev(MarketPayload::Quote(top(10, 5))));
        assert_eq!(c.counters().checks, 0);
        assert_eq!(c.counters().mismatches, 0);
    }
}
