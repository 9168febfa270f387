//! A synthetic market: a random-walk mid with a 50-level book on each side and random trades,
//! published in the chosen venue's real message formats (Binance `depthUpdate` diffs with
//! `U/u/pu`, `bookTicker`, `trade`, `markPriceUpdate`; Bybit `orderbook.50` deltas and
//! `orderbook.1` snapshots with `u`/`seq`, `publicTrade`, `tickers`). Deterministic for a seed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::replay::Speed;
use qalpha_engine::{Price, Qty, Side};

use super::market::{Hub, SymbolState, TapeFrame};
use super::rng::Rng;

/// Levels per side.
const DEPTH: i64 = 50;
/// Tick size (0.1) in fixed-point units.
const TICK: i64 = 10_000_000;
/// Steps per second at speed 1x.
const BASE_RATE: f64 = 200.0;

/// Synthetic market settings.
#[derive(Clone, Debug)]
pub struct SyntheticSpec {
    pub symbol: String,
    pub seed: u64,
    /// Starting mid in ticks of 0.1 (default 600_000 = 60,000.0).
    pub mid_ticks: i64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            symbol: "BTCUSDT".into(),
            seed: 7,
            mid_ticks: 600_000,
        }
    }
}

struct Gen {
    venue: Venue,
    sym: String,
    rng: Rng,
    mid: i64,
    /// qty (lots of 0.001) per price tick.
    bids: std::collections::BTreeMap<i64, i64>,
    asks: std::collections::BTreeMap<i64, i64>,
    update_id: u64,
    bybit_u: u64,
    bybit_u1: u64,
    seq: u64,
    trade_id: u64,
    step: u64,
    ms: u64,
}

fn px(ticks: i64) -> Price {
    Price(ticks * TICK)
}
fn qty(lots: i64) -> Qty {
    Qty(lots * 100_000)
}

impl Gen {
    fn new(venue: Venue, spec: &SyntheticSpec) -> Self {
        let mut g = Self {
            venue,
            sym: spec.symbol.to_ascii_uppercase(),
            rng: Rng::new(spec.seed),
            mid: spec.mid_ticks,
            bids: Default::default(),
            asks: Default::default(),
            update_id: 1_000_000_000,
            bybit_u: 1,
            bybit_u1: 1,
            seq: 5_000_000_000,
            trade_id: 1,
            step: 0,
            ms: qalpha_engine::clock::now_ns() / 1_000_000,
        };
        for k in 1..=DEPTH {
            let q = g.rng.range(1, 5000);
            g.bids.insert(g.mid - k, q);
            let q = g.rng.range(1, 5000);
            g.asks.insert(g.mid + k, q);
        }
        g
    }

    /// The `venue-restart` fault (Bybit): the service comes back with `u = 1` — a full
    /// `orderbook.50` snapshot of the current book; the next deltas count on from 2.
    fn bybit_restart(&mut self, hub: &Hub) {
        self.bybit_u = 1;
        self.seq += 1;
        let (sym, ms, seq) = (self.sym.clone(), self.ms, self.seq);
        let all: Vec<(bool, i64, i64)> = self
            .bids
            .iter()
            .rev()
            .map(|(p, q)| (true, *p, *q))
            .chain(self.asks.iter().map(|(p, q)| (false, *p, *q)))
            .collect();
        let topic = format!("orderbook.50.{sym}");
        let body = format!(
            "{{\"topic\":\"{topic}\",\"type\":\"snapshot\",\"ts\":{ms},\"data\":{{\"s\":\"{sym}\",\"b\":{},\"a\":{},\"u\":1,\"seq\":{seq}}},\"cts\":{ms}}}",
            Self::levels(&all, true),
            Self::levels(&all, false)
        );
        let t = topic.clone();
        hub.publish(
            &sym,
            TapeFrame {
                key: topic,
                body,
                is_diff: false,
                topic_u: 1,
                recv_ns: 0,
            },
            |s| {
                s.topic_u.insert(t, 1);
                s.seq = seq;
            },
        );
    }

    fn seed_state(&self) -> SymbolState {
        let mut s = SymbolState::default();
        for (p, q) in &self.bids {
            s.book.set(true, px(*p), qty(*q));
        }
        for (p, q) in &self.asks {
            s.book.set(false, px(*p), qty(*q));
        }
        s.last_update_id = self.update_id;
        s.topic_u
            .insert(format!("orderbook.50.{}", self.sym), self.bybit_u);
        s.topic_u
            .insert(format!("orderbook.1.{}", self.sym), self.bybit_u1);
        s.seq = self.seq;
        s.last_ms = self.ms;
        s
    }

    /// One market step: returns changed (is_bid, tick, lots) levels; lots 0 = delete.
    fn step_book(&mut self) -> Vec<(bool, i64, i64)> {
        let mut changes = Vec::new();
        if self.rng.chance(0.2) {
            self.mid += if self.rng.chance(0.5) { 1 } else { -1 };
            // Keep bids strictly below and asks strictly above the mid, DEPTH levels each.
            let (lo, hi) = (self.mid - DEPTH, self.mid + DEPTH);
            let stale_b: Vec<i64> = self
                .bids
                .keys()
                .copied()
                .filter(|p| *p >= self.mid || *p < lo)
                .collect();
            for p in stale_b {
                self.bids.remove(&p);
                changes.push((true, p, 0));
            }
            let stale_a: Vec<i64> = self
                .asks
                .keys()
                .copied()
                .filter(|p| *p <= self.mid || *p > hi)
                .collect();
            for p in stale_a {
                self.asks.remove(&p);
                changes.push((false, p, 0));
            }
        }
        for _ in 0..self.rng.range(1, 3) {
            let bid = self.rng.chance(0.5);
            let k = self.rng.range(1, DEPTH);
            let p = if bid { self.mid - k } else { self.mid + k };
            let q = if self.rng.chance(0.1) {
                0
            } else {
                self.rng.range(1, 5000)
            };
            let side = if bid { &mut self.bids } else { &mut self.asks };
            if q == 0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
            changes.push((bid, p, q));
        }
        // Refill so both sides keep DEPTH levels and never empty.
        for k in 1..=DEPTH {
            if let std::collections::btree_map::Entry::Vacant(e) = self.bids.entry(self.mid - k) {
                if k <= 2 || self.rng.chance(0.05) {
                    let q = self.rng.range(1, 5000);
                    e.insert(q);
                    changes.push((true, self.mid - k, q));
                }
            }
            if let std::collections::btree_map::Entry::Vacant(e) = self.asks.entry(self.mid + k) {
                if k <= 2 || self.rng.chance(0.05) {
                    let q = self.rng.range(1, 5000);
                    e.insert(q);
                    changes.push((false, self.mid + k, q));
                }
            }
        }
        // Last write per price wins, as on the venue.
        let mut dedup: Vec<(bool, i64, i64)> = Vec::with_capacity(changes.len());
        for c in changes.into_iter().rev() {
            if !dedup.iter().any(|d| d.0 == c.0 && d.1 == c.1) {
                dedup.push(c);
            }
        }
        dedup.reverse();
        dedup
    }

    fn levels(changes: &[(bool, i64, i64)], bid: bool) -> String {
        let v: Vec<String> = changes
            .iter()
            .filter(|c| c.0 == bid)
            .map(|c| format!("[\"{}\",\"{}\"]", px(c.1), qty(c.2)))
            .collect();
        format!("[{}]", v.join(","))
    }

    fn best(&self) -> ((i64, i64), (i64, i64)) {
        let b = self
            .bids
            .iter()
            .next_back()
            .map(|(p, q)| (*p, *q))
            .unwrap_or((0, 0));
        let a = self
            .asks
            .iter()
            .next()
            .map(|(p, q)| (*p, *q))
            .unwrap_or((0, 0));
        (b, a)
    }

    /// Publishes one step in the venue's formats.
    fn publish(&mut self, hub: &Hub) {
        self.step += 1;
        self.ms += 1;
        let ms = self.ms;
        let changes = self.step_book();
        let sym = self.sym.clone();
        let lsym = sym.to_ascii_lowercase();
        let ((bp, bq), (ap, aq)) = self.best();
        let apply = |s: &mut SymbolState, changes: &[(bool, i64, i64)]| {
            for (bid, p, q) in changes {
                s.book.set(*bid, px(*p), qty(*q));
                let side = if *bid { Side::Buy } else { Side::Sell };
                s.orders.on_book_level(side, px(*p), qty(*q));
            }
            s.last_ms = ms;
        };
        match self.venue {
            Venue::BinanceUsdm => {
                let pu = self.update_id;
                let first = pu + 1;
                self.update_id = pu + changes.len().max(1) as u64;
                let u = self.update_id;
                let body = format!(
                    "{{\"e\":\"depthUpdate\",\"E\":{ms},\"T\":{ms},\"s\":\"{sym}\",\"U\":{first},\"u\":{u},\"pu\":{pu},\"b\":{},\"a\":{}}}",
                    Self::levels(&changes, true),
                    Self::levels(&changes, false)
                );
                let frame = TapeFrame {
                    key: format!("{lsym}@depth"),
                    body,
                    is_diff: true,
                    topic_u: 0,
                    recv_ns: 0,
                };
                hub.publish(&sym, frame, |s| {
                    apply(s, &changes);
                    s.last_update_id = u;
                });
                let body = format!(
                    "{{\"e\":\"bookTicker\",\"u\":{u},\"s\":\"{sym}\",\"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\",\"T\":{ms},\"E\":{ms}}}",
                    px(bp),
                    qty(bq),
                    px(ap),
                    qty(aq)
                );
                hub.publish(
                    &sym,
                    TapeFrame {
                        key: format!("{lsym}@bookticker"),
                        body,
                        is_diff: false,
                        topic_u: 0,
                        recv_ns: 0,
                    },
                    |_| {},
                );
                if self.rng.chance(0.3) {
                    self.trade_id += 1;
                    let buyer_maker = self.rng.chance(0.5);
                    let p = if buyer_maker { bp } else { ap };
                    let lots = self.rng.range(1, 500);
                    let aggressor = if buyer_maker { Side::Sell } else { Side::Buy };
                    let body = format!(
                        "{{\"e\":\"trade\",\"E\":{ms},\"T\":{ms},\"s\":\"{sym}\",\"t\":{},\"p\":\"{}\",\"q\":\"{}\",\"X\":\"MARKET\",\"m\":{buyer_maker}}}",
                        self.trade_id,
                        px(p),
                        qty(lots)
                    );
                    hub.publish(
                        &sym,
                        TapeFrame {
                            key: format!("{lsym}@trade"),
                            body,
                            is_diff: false,
                            topic_u: 0,
                            recv_ns: 0,
                        },
                        |s| {
                            let now = qalpha_engine::clock::now_ns();
                            s.orders.on_trade(px(p), qty(lots), aggressor, now);
                        },
                    );
                }
                if self.step.is_multiple_of(200) {
                    let body = format!(
                        "{{\"e\":\"markPriceUpdate\",\"E\":{ms},\"s\":\"{sym}\",\"p\":\"{}\",\"i\":\"{}\",\"P\":\"0\",\"r\":\"0.00010000\",\"T\":{}}}",
                        px(self.mid),
                        px(self.mid),
                        (ms / 28_800_000 + 1) * 28_800_000
                    );
                    hub.publish(
                        &sym,
                        TapeFrame {
                            key: format!("{lsym}@markprice@1s"),
                            body,
                            is_diff: false,
                            topic_u: 0,
                            recv_ns: 0,
                        },
                        |_| {},
                    );
                }
            }
            Venue::BybitLinear => {
                self.bybit_u += 1;
                self.seq += 1;
                let (u, seq) = (self.bybit_u, self.seq);
                let topic = format!("orderbook.50.{sym}");
                let body = format!(
                    "{{\"topic\":\"{topic}\",\"type\":\"delta\",\"ts\":{ms},\"data\":{{\"s\":\"{sym}\",\"b\":{},\"a\":{},\"u\":{u},\"seq\":{seq}}},\"cts\":{ms}}}",
                    Self::levels(&changes, true),
                    Self::levels(&changes, false)
                );
                let t2 = topic.clone();
                hub.publish(
                    &sym,
                    TapeFrame {
                        key: topic,
                        body,
                        is_diff: true,
                        topic_u: u,
                        recv_ns: 0,
                    },
                    |s| {
                        apply(s, &changes);
                        s.topic_u.insert(t2, u);
                        s.seq = seq;
                    },
                );
                self.bybit_u1 += 1;
                let u1 = self.bybit_u1;
                let topic1 = format!("orderbook.1.{sym}");
                let body = format!(
                    "{{\"topic\":\"{topic1}\",\"type\":\"snapshot\",\"ts\":{ms},\"data\":{{\"s\":\"{sym}\",\"b\":[[\"{}\",\"{}\"]],\"a\":[[\"{}\",\"{}\"]],\"u\":{u1},\"seq\":{seq}}},\"cts\":{ms}}}",
                    px(bp),
                    qty(bq),
                    px(ap),
                    qty(aq)
                );
                let t1 = topic1.clone();
                hub.publish(
                    &sym,
                    TapeFrame {
                        key: topic1,
                        body,
                        is_diff: false,
                        topic_u: u1,
                        recv_ns: 0,
                    },
                    |s| {
                        s.topic_u.insert(t1, u1);
                    },
                );
                if self.rng.chance(0.3) {
                    self.trade_id += 1;
                    let buy = self.rng.chance(0.5);
                    let p = if buy { ap } else { bp };
                    let lots = self.rng.range(1, 500);
                    let aggressor = if buy { Side::Buy } else { Side::Sell };
                    let body = format!(
                        "{{\"topic\":\"publicTrade.{sym}\",\"type\":\"snapshot\",\"ts\":{ms},\"data\":[{{\"T\":{ms},\"s\":\"{sym}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\",\"L\":\"PlusTick\",\"i\":\"synthetic-{}\",\"BT\":false,\"seq\":{seq}}}]}}",
                        if buy { "Buy" } else { "Sell" },
                        qty(lots),
                        px(p),
                        self.trade_id
                    );
                    hub.publish(
                        &sym,
                        TapeFrame {
                            key: format!("publicTrade.{sym}"),
                            body,
                            is_diff: false,
                            topic_u: 0,
                            recv_ns: 0,
                        },
                        |s| {
                            let now = qalpha_engine::clock::now_ns();
                            s.orders.on_trade(px(p), qty(lots), aggressor, now);
                        },
                    );
                }
                if self.step.is_multiple_of(50) {
                    let body = format!(
                        "{{\"topic\":\"tickers.{sym}\",\"type\":\"delta\",\"data\":{{\"symbol\":\"{sym}\",\"markPrice\":\"{}\",\"indexPrice\":\"{}\",\"bid1Price\":\"{}\",\"bid1Size\":\"{}\",\"ask1Price\":\"{}\",\"ask1Size\":\"{}\"}},\"cs\":{seq},\"ts\":{ms}}}",
                        px(self.mid),
                        px(self.mid),
                        px(bp),
                        qty(bq),
                        px(ap),
                        qty(aq)
                    );
                    hub.publish(
                        &sym,
                        TapeFrame {
                            key: format!("tickers.{sym}"),
                            body,
                            is_diff: false,
                            topic_u: 0,
                            recv_ns: 0,
                        },
                        |_| {},
                    );
                }
            }
        }
    }
}

/// Runs the synthetic market until `stop`, at `BASE_RATE × speed` steps per second (`max`: as fast
/// as connections take frames).
pub fn run(
    venue: Venue,
    spec: SyntheticSpec,
    hub: Arc<Hub>,
    speed: Speed,
    restart: Option<Duration>,
    stop: &AtomicBool,
) {
    let mut restart = restart.filter(|_| venue == Venue::BybitLinear);
    let mut g = Gen::new(venue, &spec);
    hub.seed(&g.sym.clone(), g.seed_state());
    let interval = match speed {
        Speed::Max => Duration::ZERO,
        Speed::Factor(f) => Duration::from_secs_f64(1.0 / (BASE_RATE * f)),
    };
    let mut start: Option<Instant> = None;
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        if !hub.has_subscriber.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let held = hub.hold_while_paused(stop);
        if let Some(s) = start.as_mut() {
            *s += held;
        }
        let start = *start.get_or_insert_with(Instant::now);
        if restart.is_some_and(|at| start.elapsed() >= at) {
            restart = None;
            g.bybit_restart(&hub);
        }
        g.publish(&hub);
        n = n.wrapping_add(1);
        if !interval.is_zero() {
            let due = interval * n;
            let now = start.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
}
