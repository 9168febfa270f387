//! The demo's summary.

use std::path::PathBuf;

use qalpha_engine::order::OrderCommand;

use super::{DemoMode, Emergency, Latency};

/// The demo's summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DemoReport {
    /// The supervisor found an engine thread stuck and halted trading (the run then stopped).
    pub stall: Option<Emergency>,
    /// Gateway runs: what the start-up found at the venue (orders of an earlier run cancelled, the
    /// position restored).
    pub restored: Option<super::Restored>,
    /// What the alert thread did (when `[alerts]` has channels).
    pub alerts: Option<AlertCounts>,
    /// Records the order journal got this run (`--journal`).
    pub journal_records: Option<u64>,
    /// `--flatten-on-exit` closed this position (exact decimal) at shutdown.
    pub flattened: Option<String>,
    /// The strategy's registry name and the params it was given (bar strategies: `bar_ms` too).
    pub strategy: String,
    pub strategy_params: std::collections::BTreeMap<String, String>,
    /// Intents the strategy returned.
    pub intents: u64,
    /// What the strategy itself counted (the Trinity: bars, inference runs, last decision).
    pub strategy_summary: std::collections::BTreeMap<String, String>,
    pub frames: u64,
    pub events: u64,
    pub reconnects: u64,
    pub resyncs: u64,
    pub gaps: u64,
    pub ring_drops: u64,
    pub book_checks: u64,
    pub book_mismatches: u64,
    pub orders: u64,
    pub acks: u64,
    pub fills: u64,
    pub rejects: u64,
    pub cancels: u64,
    pub canceled: u64,
    pub expired: u64,
    pub duplicate_orders: u64,
    pub orders_on_stale_book: u64,
    /// Reports the order state machine ignored as repeats or late / for ids never sent.
    pub duplicate_reports: u64,
    pub unknown_reports: u64,
    /// New orders the risk engine refused (never sent) / reduce-only orders it sent.
    pub risk_rejects: u64,
    pub risk_orders: u64,
    /// `active`, `reducing` or `halted` at the end; the switch that halted and when.
    pub final_state: String,
    pub halt_reason: Option<String>,
    pub halted_at_ns: Option<u64>,
    /// Symbol → signed position (exact decimal) from the risk ledger.
    pub final_positions: std::collections::BTreeMap<String, String>,
    /// Orders not final at the end.
    pub open_orders: u64,
    /// Risk journal records written this run.
    /// Risk state changes (halts, reducing, conservative on and off).
    pub risk_transitions: u64,
    pub risk_events: u64,
    /// Risk refusals by reason.
    pub risk_rejected_by: std::collections::BTreeMap<String, u64>,
    /// Base quantity at the end, exact decimal (= bought − sold, the sums of the fills).
    pub position: String,
    pub bought: String,
    pub sold: String,
    /// Net PnL (cash flow + position at mid − fees), quote currency, exact decimal.
    pub pnl: String,
    pub pnl_before_fees: String,
    pub fees: String,
    pub fee_model: String,
    /// `mock` or `paper`.
    pub mode: Option<DemoMode>,
    pub tick_to_order: Latency,
    /// Tick → the venue's answer to the new order (REST round trip included).
    pub tick_to_answer: Latency,
    /// Order requests over the WebSocket API / REST requests of any kind (fallback, reconciliation).
    pub ws_requests: u64,
    pub rest_requests: u64,
    pub reconciliations: u64,
    pub private_reconnects: u64,
    pub transport_errors: u64,
    pub clock_offset_ms: f64,
    pub last_error: Option<String>,
    pub speed: f64,
    /// The mock played the whole capture (the run ended there, before `--duration`).
    pub tape_finished: bool,
    pub elapsed_s: f64,
    /// What `--record` wrote.
    pub recorded: Option<Recorded>,
    /// Paper mode with [`DemoOptions::keep_commands`]: every command the paper venue received, in
    /// order (not in the JSON summary).
    #[serde(skip)]
    pub commands: Vec<OrderCommand>,
}

/// The capture `--record` wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Recorded {
    pub file: PathBuf,
    pub records: u64,
}

/// The alert thread's counters at the end of a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AlertCounts {
    pub raised: u64,
    /// Deliveries (one per alert and channel).
    pub sent: u64,
    pub deduplicated: u64,
    pub rate_limited: u64,
    pub failed: u64,
}

impl AlertCounts {
    pub fn of(c: &crate::alerts::AlertCounters) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        Self {
            raised: c.raised.load(Relaxed),
            sent: c.sent.load(Relaxed),
            deduplicated: c.deduplicated.load(Relaxed),
            rate_limited: c.rate_limited.load(Relaxed),
            failed: c.failed.load(Relaxed),
        }
    }
}
