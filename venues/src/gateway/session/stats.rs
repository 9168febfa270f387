//! The gateway's counters and latency records.

use hdrhistogram::Histogram;

use crate::gateway::tracker::TrackerStats;
use qalpha_engine::metrics::GatewayMetrics;

use super::Gateway;
use qalpha_engine::order::ClientOrderId;

/// When one new order passed the gateway's stages (ns, the engine clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderStamp {
    pub client_id: ClientOrderId,
    /// The command's `tick_recv_ns` and `decided_ns`.
    pub tick_recv_ns: u64,
    pub decided_ns: u64,
    /// Taken off the command ring (the gateway began with it).
    pub dequeued_ns: u64,
    /// Encoded and signed.
    pub encoded_ns: u64,
    /// Handed to the socket (TLS encrypt + `write` done).
    pub written_ns: u64,
}

/// What the gateway counted.
#[derive(Clone, Debug)]
pub struct GatewayStats {
    pub orders: u64,
    pub cancels: u64,
    pub amends: u64,
    pub cancel_alls: u64,
    /// Requests sent over the WebSocket API / over REST.
    pub ws_requests: u64,
    pub rest_requests: u64,
    /// Order requests that went over REST because the WebSocket was not ready.
    pub rest_fallbacks: u64,
    /// Reconnects of the order WebSocket and the private stream (after the first connection).
    pub order_ws_reconnects: u64,
    pub private_reconnects: u64,
    /// Reconciliation passes (start, after reconnects, polls while the stream is down).
    pub reconciliations: u64,
    /// Requests resent under a retry policy (clock re-sync, rate limit).
    pub retries: u64,
    /// Requests whose answer did not come within `ack_timeout`.
    pub ack_timeouts: u64,
    pub transport_errors: u64,
    pub venue_errors: u64,
    /// Private-stream messages that could not be read.
    pub bad_private: u64,
    pub dead_man_refreshes: u64,
    /// New orders refused locally because trading is halted (credentials, ban).
    pub halted_refusals: u64,
    /// New orders refused locally by the instrument's rules (never sent).
    pub rule_refusals: u64,
    /// Requests held back by the client-side rate limits (new orders refused with the venue's
    /// rate-limit code; cancels and amends sent when the window turns; reconciliation passes skipped).
    pub throttled: u64,
    pub halted: bool,
    pub tracker: TrackerStats,
    /// Tick `recv_ns` → the order's bytes handed to the socket (WS), or the signed request ready for
    /// the blocking REST round trip (whose end is in `tick_to_answer`), ns.
    pub tick_to_wire: Histogram<u64>,
    /// Tick → the venue's answer processed, ns.
    pub tick_to_answer: Histogram<u64>,
    pub clock_offset_ns: i64,
    pub last_error: Option<String>,
    /// Per-stage times of new orders (only with [`GatewayConfig::trace_orders`]).
    pub order_trace: Vec<OrderStamp>,
    /// Order journal entries dropped because its ring was full (the writer fell behind).
    pub journal_drops: u64,
}

impl GatewayStats {
    pub(super) fn new(trace_orders: usize) -> Self {
        Self {
            orders: 0,
            cancels: 0,
            amends: 0,
            cancel_alls: 0,
            ws_requests: 0,
            rest_requests: 0,
            rest_fallbacks: 0,
            order_ws_reconnects: 0,
            private_reconnects: 0,
            reconciliations: 0,
            retries: 0,
            ack_timeouts: 0,
            transport_errors: 0,
            venue_errors: 0,
            bad_private: 0,
            dead_man_refreshes: 0,
            halted_refusals: 0,
            rule_refusals: 0,
            throttled: 0,
            halted: false,
            tracker: TrackerStats::default(),
            tick_to_wire: latency_histogram(),
            tick_to_answer: latency_histogram(),
            clock_offset_ns: 0,
            last_error: None,
            order_trace: Vec::with_capacity(trace_orders),
            journal_drops: 0,
        }
    }
}

/// A latency histogram, 1 ns … 60 s at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

impl Gateway {
    /// Counters for the monitor, and the heartbeat (a few relaxed stores; when idle and every
    /// 1,024 busy turns).
    pub(super) fn publish_metrics(&self, m: &GatewayMetrics, ring_level: usize) {
        let s = &self.stats;
        m.beats.inc();
        m.sent.set(s.orders);
        m.cancels_sent.set(s.cancels + s.cancel_alls);
        m.ws_reconnects
            .set(s.order_ws_reconnects + s.private_reconnects);
        m.rest_fallbacks.set(s.rest_fallbacks);
        m.transport_errors.set(s.transport_errors);
        m.venue_errors.set(s.venue_errors);
        m.throttled.set(s.throttled);
        m.pending.set(self.pending.len() as i64);
        m.cmd_ring_level.set(ring_level as i64);
        m.halted.set(i64::from(s.halted));
    }
}
