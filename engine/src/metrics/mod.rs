//! The metrics registry: what the hot threads publish and the monitor thread reads (DESIGN §1: the
//! monitor does everything slow, the hot threads only store to their own atomics).
//!
//! Each engine thread owns one block ([`FeedMetrics`], [`GatewayMetrics`], [`StrategyMetrics`]),
//! shared with the monitor through an `Arc`. The thread writes with relaxed stores and adds (a few
//! nanoseconds, no locks, no allocation); the monitor reads whenever it is scraped and renders the
//! Prometheus text exposition ([`Exposition`]). A block is cache-line aligned so two threads never
//! write the same line.
//!
//! Every block carries a heartbeat (`beats`): the thread advances it while it runs (when idle, and
//! every so many busy turns). The supervisor reads the heartbeats; one that stops moving is a stuck
//! or dead thread.
//!
//! Latency histograms ([`LatencyHistogram`]) use fixed buckets (1 µs … 5 s, the Prometheus
//! `le` bounds) so that recording is one search over 20 bounds and two atomic adds; the exact
//! distributions (hdrhistogram) stay in the threads' own stats for the reports.

mod expose;

pub use expose::{render_feeds, render_gateways, render_heartbeats, render_strategy, Exposition};

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::event::Venue;
use crate::order::ExecKind;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Publishes a count the thread keeps itself (single writer).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (integer: positions in base units, states, levels).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A floating-point gauge (model outputs, PnL for display): the `f64`'s bits in an atomic.
#[derive(Debug)]
pub struct FloatGauge(AtomicU64);

impl Default for FloatGauge {
    fn default() -> Self {
        Self(AtomicU64::new(f64::NAN.to_bits()))
    }
}

impl FloatGauge {
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The histogram buckets' upper bounds, ns (the last bucket, `+Inf`, is implied).
pub const LATENCY_BOUNDS_NS: [u64; 20] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_NS`]), recorded lock-free.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    #[inline]
    pub fn record(&self, ns: u64) {
        let i = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the Prometheus `le` series; the last entry is `+Inf`), the sum
    /// in ns and the count. Read while the owner records, the buckets may run a sample ahead of or
    /// behind the count; the `+Inf` bucket is reported as the count so the series stays consistent.
    pub fn snapshot(&self) -> (Vec<u64>, u64, u64) {
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_ns.load(Ordering::Relaxed);
        let mut acc = 0u64;
        let mut cum: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc.min(count)
            })
            .collect();
        if let Some(last) = cum.last_mut() {
            *last = count;
        }
        (cum, sum, count)
    }
}

/// A venue's slot in the per-venue arrays.
pub fn venue_index(v: Venue) -> usize {
    match v {
        Venue::BinanceUsdm => 0,
        Venue::BybitLinear => 1,
    }
}

pub(crate) const VENUES: [Venue; 2] = [Venue::BinanceUsdm, Venue::BybitLinear];

/// What a feed thread publishes (per venue where the feed serves several).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct FeedMetrics {
    /// WebSocket frames received, by venue.
    pub frames: [Counter; 2],
    /// Books resynchronised after going stale, by venue.
    pub resyncs: [Counter; 2],
    /// Sequence gaps detected, by venue.
    pub gaps: [Counter; 2],
    /// Market events the ring to the strategy refused (drop-newest policy), by venue.
    pub ring_drops: [Counter; 2],
    /// Frames that could not be decoded (malformed or truncated JSON), by venue.
    pub malformed: [Counter; 2],
    /// Connection attempts (first connections included) and connections lost.
    pub connects: Counter,
    pub disconnects: Counter,
    /// Connections lost before they opened (TCP, TLS or WebSocket handshake failed).
    pub connect_failures: Counter,
    /// Connections open now.
    pub connections_open: Gauge,
    /// REST snapshot requests that failed.
    pub snapshot_failures: Counter,
    /// Heartbeat.
    pub beats: Counter,
}

impl FeedMetrics {
    pub fn frames_of(&self, v: Venue) -> &Counter {
        &self.frames[venue_index(v)]
    }
    pub fn resyncs_of(&self, v: Venue) -> &Counter {
        &self.resyncs[venue_index(v)]
    }
    pub fn gaps_of(&self, v: Venue) -> &Counter {
        &self.gaps[venue_index(v)]
    }
    pub fn ring_drops_of(&self, v: Venue) -> &Counter {
        &self.ring_drops[venue_index(v)]
    }
    pub fn malformed_of(&self, v: Venue) -> &Counter {
        &self.malformed[venue_index(v)]
    }
}

/// Execution report kinds as metric label values (index = `ExecKind as usize`).
pub const EXEC_KIND_NAMES: [&str; 7] = [
    "acked", "rejected", "partial", "filled", "canceled", "expired", "amended",
];

fn exec_index(k: ExecKind) -> usize {
    match k {
        ExecKind::Ack => 0,
        ExecKind::Rejected => 1,
        ExecKind::PartialFill => 2,
        ExecKind::Fill => 3,
        ExecKind::Canceled => 4,
        ExecKind::Expired => 5,
        ExecKind::Amended => 6,
    }
}

/// What an order gateway thread publishes.
#[derive(Debug)]
#[repr(align(64))]
pub struct GatewayMetrics {
    pub venue: Venue,
    /// New orders sent to the venue (`status="sent"`).
    pub sent: Counter,
    /// Execution reports handed to the strategy, by kind.
    pub reports: [Counter; 7],
    pub cancels_sent: Counter,
    /// Tick `recv_ns` → the order's bytes on the wire.
    pub tick_to_order: LatencyHistogram,
    /// Tick → the venue's answer processed.
    pub tick_to_answer: LatencyHistogram,
    pub ws_reconnects: Counter,
    pub rest_fallbacks: Counter,
    pub transport_errors: Counter,
    pub venue_errors: Counter,
    pub throttled: Counter,
    /// Orders in flight (sent, no final answer yet).
    pub pending: Gauge,
    /// Commands waiting in the ring from the strategy.
    pub cmd_ring_level: Gauge,
    /// 1 while the gateway refuses new orders (credentials, ban).
    pub halted: Gauge,
    pub beats: Counter,
}

impl GatewayMetrics {
    pub fn new(venue: Venue) -> Self {
        Self {
            venue,
            sent: Counter::default(),
            reports: Default::default(),
            cancels_sent: Counter::default(),
            tick_to_order: LatencyHistogram::default(),
            tick_to_answer: LatencyHistogram::default(),
            ws_reconnects: Counter::default(),
            rest_fallbacks: Counter::default(),
            transport_errors: Counter::default(),
            venue_errors: Counter::default(),
            throttled: Counter::default(),
            pending: Gauge::default(),
            cmd_ring_level: Gauge::default(),
            halted: Gauge::default(),
            beats: Counter::default(),
        }
    }

    #[inline]
    pub fn on_report(&self, k: ExecKind) {
        self.reports[exec_index(k)].inc();
    }
}

/// The risk state as a gauge value: 0 active, 1 reducing, 2 halted.
pub const RISK_STATE_NAMES: [&str; 3] = ["active", "reducing", "halted"];

/// What the strategy thread publishes (one market: `venue`, `symbol` are labels given to the
/// monitor).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct StrategyMetrics {
    /// Market events taken off the ring.
    pub events: AtomicU64,
    /// Orders the executor sent, acks, fills and rejects it got.
    pub orders: AtomicU64,
    pub acks: AtomicU64,
    pub fills: AtomicU64,
    pub rejects: AtomicU64,
    /// Intents the strategy returned; new orders risk refused.
    pub intents: AtomicU64,
    pub risk_rejects: AtomicU64,
    /// Signed position in base units × 10⁸ (exact).
    pub position: AtomicI64,
    /// Net PnL, quote currency (display: the exact figure is in the ledger).
    pub pnl: FloatGauge,
    /// [`RISK_STATE_NAMES`] index.
    pub risk_state: Gauge,
    /// What halted trading: 0 nothing, else the risk crate's `SwitchKind` as `1 + index`
    /// (`qalpha_risk::SwitchKind::from_gauge`).
    pub halt_reason: Gauge,
    /// Market events waiting in the ring from the feed.
    pub md_ring_level: Gauge,
    /// Orders open (sent, not final).
    pub open_orders: Gauge,
    /// The model's latest outputs (Trinity strategies; NaN when the strategy has no model):
    /// Oracle's median forecast, Strategist's action, Guardian's regime.
    pub model_forecast: FloatGauge,
    pub model_action: FloatGauge,
    pub model_regime: FloatGauge,
    /// Heartbeat: advanced when idle and every 1,024 busy turns.
    pub beats: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounded() {
        let h = LatencyHistogram::default();
        for ns in [500, 1_000, 1_001, 30_000, 2_000_000, 9_000_000_000] {
            h.record(ns);
        }
        let (cum, sum, count) = h.snapshot();
        assert_eq!(count, 6);
        assert_eq!(
            sum,
            500 + 1_000 + 1_001 + 30_000 + 2_000_000 + 9_000_000_000
        );
        // le=1µs holds 500 and 1000 (the bound is inclusive), le=2.5µs adds 1001.
        assert_eq!(cum[0], 2);
        assert_eq!(cum[1], 3);
        // le=25µs still 3, le=50µs 4.
        assert_eq!(cum[4], 3);
        assert_eq!(cum[5], 4);
        // 9 s lands only in +Inf.
        assert_eq!(cum[LATENCY_BOUNDS_NS.len() - 1], 5);
        assert_eq!(*cum.last().unwrap(), 6);
        assert!(cum.windows(2).all(|w| w[0] <= w[1]));
    }
}
