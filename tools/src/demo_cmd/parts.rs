//! The demo's pieces that are not the run itself: the venue side (the engine's gateway or the
//! paper venue) and what each side hands back, and the human summary.

use hdrhistogram::Histogram;
use qalpha_venues::gateway::session::{Gateway, GatewayStats};
use qalpha_venues::paper::{PaperStats, PaperVenue};

use super::executor::Executor;
use super::DemoReport;

/// What the strategy thread reports of risk at the end.
pub(super) struct RiskSummary {
    pub(super) final_state: String,
    pub(super) halt_reason: Option<String>,
    pub(super) halted_at_ns: Option<u64>,
    pub(super) final_positions: std::collections::BTreeMap<String, String>,
    pub(super) open_orders: u64,
    pub(super) risk_events: u64,
    /// State changes of risk (halts, reducing, conservative on/off).
    pub(super) transitions: u64,
    pub(super) rejected_by: std::collections::BTreeMap<String, u64>,
}

impl RiskSummary {
    pub(super) fn of(q: &mut Executor) -> Self {
        let open_orders = q.live_orders() as u64;
        let Some(r) = q.risk.as_mut() else {
            return Self {
                final_state: "active".into(),
                halt_reason: None,
                halted_at_ns: None,
                final_positions: Default::default(),
                open_orders,
                risk_events: 0,
                transitions: 0,
                rejected_by: Default::default(),
            };
        };
        r.sync();
        Self {
            final_state: r.state().name().into(),
            halt_reason: r.halt_reason().map(|s| s.name().to_string()),
            halted_at_ns: r.halted_at_ns(),
            final_positions: r
                .ledger()
                .positions()
                .map(|((_, s), p)| (s.to_string(), p.size.to_string()))
                .collect(),
            open_orders,
            risk_events: r.stats.risk_events,
            transitions: r.stats.transitions,
            rejected_by: r
                .stats
                .rejected_by
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// The demo's venue side: the engine's gateway to the mock, or the paper venue.
pub(super) enum Venues {
    Gateway(Box<Gateway>),
    Paper(Box<PaperVenue>),
}

/// What the venue side hands back, whichever it was.
pub(super) struct GatewaySummary {
    pub(super) cancels: u64,
    pub(super) duplicate_orders: u64,
    pub(super) tick_to_wire: Histogram<u64>,
    pub(super) tick_to_answer: Histogram<u64>,
    pub(super) ws_requests: u64,
    pub(super) rest_requests: u64,
    pub(super) reconciliations: u64,
    pub(super) private_reconnects: u64,
    pub(super) transport_errors: u64,
    pub(super) clock_offset_ns: i64,
    pub(super) last_error: Option<String>,
}

impl GatewaySummary {
    pub(super) fn from_gateway(g: GatewayStats) -> Self {
        Self {
            cancels: g.cancels,
            duplicate_orders: g.tracker.duplicate_orders,
            tick_to_wire: g.tick_to_wire,
            tick_to_answer: g.tick_to_answer,
            ws_requests: g.ws_requests,
            rest_requests: g.rest_requests,
            reconciliations: g.reconciliations,
            private_reconnects: g.private_reconnects,
            transport_errors: g.transport_errors,
            clock_offset_ns: g.clock_offset_ns,
            last_error: g.last_error,
        }
    }

    /// Paper: tick-to-order ends where the order reaches the paper venue; its answer is immediate.
    pub(super) fn from_paper(p: PaperStats) -> Self {
        Self {
            cancels: p.cancels,
            duplicate_orders: p.duplicate_orders,
            tick_to_answer: p.tick_to_order.clone(),
            tick_to_wire: p.tick_to_order,
            ws_requests: 0,
            rest_requests: 0,
            reconciliations: 0,
            private_reconnects: 0,
            transport_errors: 0,
            clock_offset_ns: 0,
            last_error: None,
        }
    }
}

/// The human summary printed on stdout.
pub fn summary_text(r: &DemoReport) -> String {
    let params: Vec<String> = r
        .strategy_params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "demo: {:.1}s at {}x of the bundled capture\n\
         strategy: {} ({}), {} intents\n\
         market: {} frames, {} events, {} book checks, {} mismatches, {} resyncs, {} reconnects\n\
         orders: {} sent, {} acked, {} fills, {} rejects, {} cancels sent, {} duplicates, {} on a stale book\n\
         position {} BTC (bought {}, sold {}), PnL {} USDT (before fees {}, fees {})\n\
         tick-to-order p50 {:.1} µs, p99 {:.1} µs; tick-to-answer p50 {:.1} µs, p99 {:.1} µs",
        r.elapsed_s,
        r.speed,
        r.strategy,
        if params.is_empty() {
            "default params".to_string()
        } else {
            params.join(", ")
        },
        r.intents,
        r.frames,
        r.events,
        r.book_checks,
        r.book_mismatches,
        r.resyncs,
        r.reconnects,
        r.orders,
        r.acks,
        r.fills,
        r.rejects,
        r.cancels,
        r.duplicate_orders,
        r.orders_on_stale_book,
        r.position,
        r.bought,
        r.sold,
        r.pnl,
        r.pnl_before_fees,
        r.fees,
        r.tick_to_order.p50_us,
        r.tick_to_order.p99_us,
        r.tick_to_answer.p50_us,
        r.tick_to_answer.p99_us,
    ) + &strategy_state(r)
}

/// The strategy's own counters (the Trinity's bars, inference runs, last decision), one line.
fn strategy_state(r: &DemoReport) -> String {
    if r.strategy_summary.is_empty() {
        return String::new();
    }
    let kv: Vec<String> = r
        .strategy_summary
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("\nstrategy state: {}", kv.join(", "))
}

/// Percentiles of a latency histogram, µs.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            max_us: us(h.max()),
        }
    }
}
