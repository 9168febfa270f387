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

use std::fmt::Write as _;
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

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
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

const VENUES: [Venue; 2] = [Venue::BinanceUsdm, Venue::BybitLinear];

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
    /// Connections established (first connections included) and lost.
    pub connects: Counter,
    pub disconnects: Counter,
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

    pub fn reports_of(&self, k: ExecKind) -> u64 {
        self.reports[exec_index(k)].get()
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

/// Renders the Prometheus text exposition format (version 0.0.4).
#[derive(Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    /// `# HELP` and `# TYPE` lines; call once per metric name, before its samples.
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = if v.is_nan() {
            writeln!(self.out, " NaN")
        } else if v.is_infinite() {
            writeln!(self.out, " {}", if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            writeln!(self.out, " {v}")
        };
    }

    /// A whole metric with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.header(name, kind, help);
        self.sample(name, &[], v);
    }

    /// A histogram's `_bucket`, `_sum` and `_count` series (seconds), under `labels`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &LatencyHistogram) {
        let (cum, sum_ns, count) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (i, c) in cum.iter().enumerate() {
            let le = match LATENCY_BOUNDS_NS.get(i) {
                Some(b) => format!("{}", *b as f64 / 1e9),
                None => "+Inf".to_string(),
            };
            let mut l: Vec<(&str, &str)> = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *c as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum_ns as f64 / 1e9);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The feed threads' metrics, all venues (each feed block contributes its venues' series).
pub fn render_feeds(e: &mut Exposition, feeds: &[std::sync::Arc<FeedMetrics>]) {
    type Pick = fn(&FeedMetrics) -> &[Counter; 2];
    let per_venue: [(&str, &str, Pick); 5] = [
        (
            "qalpha_frames_total",
            "WebSocket frames received from the venue.",
            |f| &f.frames,
        ),
        (
            "qalpha_book_resyncs_total",
            "Order books resynchronised (snapshot + diffs) after going stale.",
            |f| &f.resyncs,
        ),
        (
            "qalpha_book_gaps_total",
            "Sequence gaps detected in the venue's book diffs.",
            |f| &f.gaps,
        ),
        (
            "qalpha_malformed_frames_total",
            "Frames that could not be decoded (malformed or truncated), counted and skipped.",
            |f| &f.malformed,
        ),
        (
            "qalpha_ring_drops_total",
            "Market events dropped because the ring to the strategy was full.",
            |f| &f.ring_drops,
        ),
    ];
    for (name, help, pick) in per_venue {
        e.header(name, "counter", help);
        for (i, v) in VENUES.iter().enumerate() {
            let total: u64 = feeds.iter().map(|f| pick(f)[i].get()).sum();
            e.sample(name, &[("venue", v.name())], total as f64);
        }
    }
    let sum = |pick: fn(&FeedMetrics) -> u64| feeds.iter().map(|f| pick(f)).sum::<u64>() as f64;
    e.single(
        "qalpha_feed_connects_total",
        "counter",
        "Market data connections established (first connections included).",
        sum(|f| f.connects.get()),
    );
    e.single(
        "qalpha_feed_disconnects_total",
        "counter",
        "Market data connections lost or closed.",
        sum(|f| f.disconnects.get()),
    );
    e.single(
        "qalpha_feed_connections_open",
        "gauge",
        "Market data connections open now.",
        feeds.iter().map(|f| f.connections_open.get()).sum::<i64>() as f64,
    );
    e.single(
        "qalpha_snapshot_failures_total",
        "counter",
        "REST depth snapshots that failed.",
        sum(|f| f.snapshot_failures.get()),
    );
}

/// The gateways' metrics.
pub fn render_gateways(e: &mut Exposition, gws: &[std::sync::Arc<GatewayMetrics>]) {
    e.header(
        "qalpha_orders_total",
        "counter",
        "Orders by outcome: sent to the venue, then the venue's answers (acked, filled, partial, canceled, rejected, expired, amended).",
    );
    for g in gws {
        let v = g.venue.name();
        e.sample(
            "qalpha_orders_total",
            &[("venue", v), ("status", "sent")],
            g.sent.get() as f64,
        );
        for (i, s) in EXEC_KIND_NAMES.iter().enumerate() {
            e.sample(
                "qalpha_orders_total",
                &[("venue", v), ("status", s)],
                g.reports[i].get() as f64,
            );
        }
    }
    e.header(
        "qalpha_tick_to_order_seconds",
        "histogram",
        "Market data receive time to the order's bytes on the wire.",
    );
    for g in gws {
        e.histogram(
            "qalpha_tick_to_order_seconds",
            &[("venue", g.venue.name())],
            &g.tick_to_order,
        );
    }
    e.header(
        "qalpha_tick_to_answer_seconds",
        "histogram",
        "Market data receive time to the venue's answer to the order.",
    );
    for g in gws {
        e.histogram(
            "qalpha_tick_to_answer_seconds",
            &[("venue", g.venue.name())],
            &g.tick_to_answer,
        );
    }
    type Pick = fn(&GatewayMetrics) -> f64;
    let rows: [(&str, &str, &str, Pick); 8] = [
        (
            "qalpha_cancels_sent_total",
            "counter",
            "Cancel requests sent.",
            |g| g.cancels_sent.get() as f64,
        ),
        (
            "qalpha_order_ws_reconnects_total",
            "counter",
            "Reconnects of the order WebSocket and the private stream.",
            |g| g.ws_reconnects.get() as f64,
        ),
        (
            "qalpha_rest_fallbacks_total",
            "counter",
            "Orders sent over REST because the WebSocket was not ready.",
            |g| g.rest_fallbacks.get() as f64,
        ),
        (
            "qalpha_transport_errors_total",
            "counter",
            "Transport errors talking to the venue.",
            |g| g.transport_errors.get() as f64,
        ),
        (
            "qalpha_venue_errors_total",
            "counter",
            "Errors the venue answered.",
            |g| g.venue_errors.get() as f64,
        ),
        (
            "qalpha_throttled_total",
            "counter",
            "Requests held back by the client-side rate limits.",
            |g| g.throttled.get() as f64,
        ),
        (
            "qalpha_orders_pending",
            "gauge",
            "Requests awaiting the venue's answer.",
            |g| g.pending.get() as f64,
        ),
        (
            "qalpha_gateway_halted",
            "gauge",
            "1 while the gateway refuses new orders (credentials, ban).",
            |g| g.halted.get() as f64,
        ),
    ];
    for (name, kind, help, pick) in rows {
        e.header(name, kind, help);
        for g in gws {
            e.sample(name, &[("venue", g.venue.name())], pick(g));
        }
    }
}

/// The strategy thread's metrics for one market.
/// The ring levels are here too (one metric family: the md ring is the strategy's, the order
/// rings the gateways').
pub fn render_strategy(
    e: &mut Exposition,
    s: &StrategyMetrics,
    venue: Venue,
    symbol: &str,
    gws: &[std::sync::Arc<GatewayMetrics>],
) {
    let l = [("venue", venue.name()), ("symbol", symbol)];
    e.header(
        "qalpha_ring_level",
        "gauge",
        "Entries waiting in an SPSC ring (ring=md: feed to strategy; ring=orders: strategy to gateway).",
    );
    e.sample(
        "qalpha_ring_level",
        &[("ring", "md"), ("venue", venue.name())],
        s.md_ring_level.get() as f64,
    );
    for g in gws {
        e.sample(
            "qalpha_ring_level",
            &[("ring", "orders"), ("venue", g.venue.name())],
            g.cmd_ring_level.get() as f64,
        );
    }
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    e.single(
        "qalpha_events_total",
        "counter",
        "Market events the strategy thread processed.",
        ld(&s.events),
    );
    e.single(
        "qalpha_intents_total",
        "counter",
        "Intents the strategy returned.",
        ld(&s.intents),
    );
    e.single(
        "qalpha_risk_rejects_total",
        "counter",
        "New orders the risk engine refused (never sent).",
        ld(&s.risk_rejects),
    );
    e.header(
        "qalpha_position",
        "gauge",
        "Signed position, base units (risk ledger).",
    );
    e.sample(
        "qalpha_position",
        &l,
        s.position.load(Ordering::Relaxed) as f64 / 1e8,
    );
    e.single(
        "qalpha_pnl_usd",
        "gauge",
        "Net PnL (realised + unrealised at mid − fees), quote currency (USDT).",
        s.pnl.get(),
    );
    e.header(
        "qalpha_risk_state",
        "gauge",
        "Risk state: 0 active, 1 reducing (only orders that cut exposure), 2 halted.",
    );
    e.sample("qalpha_risk_state", &[], s.risk_state.get() as f64);
    e.single(
        "qalpha_open_orders",
        "gauge",
        "Orders open at the venue (sent, not final).",
        s.open_orders.get() as f64,
    );
    e.header(
        "qalpha_model_output",
        "gauge",
        "The Trinity's latest outputs: output=forecast (Oracle median return), action (Strategist), regime (Guardian). NaN without a model.",
    );
    for (name, g) in [
        ("forecast", &s.model_forecast),
        ("action", &s.model_action),
        ("regime", &s.model_regime),
    ] {
        e.sample("qalpha_model_output", &[("output", name)], g.get());
    }
}

/// Thread heartbeats, `thread` → beats.
pub fn render_heartbeats(e: &mut Exposition, beats: &[(&str, u64)]) {
    e.header(
        "qalpha_thread_heartbeats_total",
        "counter",
        "Engine thread heartbeats (a series that stops increasing is a stuck thread).",
    );
    for (t, b) in beats {
        e.sample(
            "qalpha_thread_heartbeats_total",
            &[("thread", t)],
            *b as f64,
        );
    }
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

    #[test]
    fn exposition_text_format() {
        let mut e = Exposition::default();
        e.header("x_total", "counter", "An x.");
        e.sample("x_total", &[("venue", "a\"b")], 3.0);
        e.sample("x_total", &[], f64::NAN);
        let h = LatencyHistogram::default();
        h.record(2_000);
        e.histogram("lat_seconds", &[("venue", "v")], &h);
        let t = e.finish();
        assert!(t.starts_with("# HELP x_total An x.\n# TYPE x_total counter\n"));
        assert!(t.contains("x_total{venue=\"a\\\"b\"} 3\n"));
        assert!(t.contains("x_total NaN\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"0.000001\"} 0\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"0.0000025\"} 1\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"+Inf\"} 1\n"));
        assert!(t.contains("lat_seconds_sum{venue=\"v\"} 0.000002\n"));
        assert!(t.contains("lat_seconds_count{venue=\"v\"} 1\n"));
    }

    #[test]
    fn per_venue_series_and_orders_by_status() {
        let f = std::sync::Arc::new(FeedMetrics::default());
        f.frames_of(Venue::BybitLinear).add(7);
        f.frames_of(Venue::BinanceUsdm).add(2);
        let g = std::sync::Arc::new(GatewayMetrics::new(Venue::BinanceUsdm));
        g.sent.add(3);
        g.on_report(ExecKind::Fill);
        g.on_report(ExecKind::Rejected);
        g.on_report(ExecKind::Rejected);
        let mut e = Exposition::default();
        render_feeds(&mut e, &[f]);
        render_gateways(&mut e, &[g]);
        let t = e.finish();
        let bn = Venue::BinanceUsdm.name();
        let by = Venue::BybitLinear.name();
        assert!(t.contains(&format!("qalpha_frames_total{{venue=\"{by}\"}} 7\n")));
        assert!(t.contains(&format!("qalpha_frames_total{{venue=\"{bn}\"}} 2\n")));
        assert!(t.contains(&format!(
            "qalpha_orders_total{{venue=\"{bn}\",status=\"rejected\"}} 2\n"
        )));
        assert!(t.contains(&format!(
            "qalpha_orders_total{{venue=\"{bn}\",status=\"sent\"}} 3\n"
        )));
        // Every sample's metric has its # TYPE line once.
        let types: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut dedup = types.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(types.len(), dedup.len(), "duplicate TYPE lines");
    }
}
