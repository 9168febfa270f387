//! Supervision of the demo's engine threads: heartbeats watched by the main thread
//! ([`crate::monitor::Supervisor`]); a stuck or dead thread halts trading safely.
//!
//! On a stall the supervisor, in order:
//! 1. asks the strategy thread to halt (risk's operator halt: open orders cancelled through the
//!    gateway, the halt journaled and kept across restarts) and waits up to 2 s for the open orders
//!    to reach zero — unless the strategy thread is the stuck one;
//! 2. cancels every open order of the symbol **over REST**, with the gateway's own endpoint and keys
//!    (the path that needs neither the strategy nor the gateway thread), and asks the venue what is
//!    still open;
//! 3. stops the run: `qalpha demo` exits with code 3 ([`crate::monitor`] counts the stall).

use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use qalpha_engine::Symbol;
use qalpha_venues::gateway::session::GatewayConfig;

use super::thread::LiveView;
use crate::alerts::{Alert, AlertConfig, Alerter, DailyClock, Severity, Storm};
use crate::control::ControlCmd;

/// What the supervisor did about a stalled thread.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Emergency {
    /// The thread whose heartbeat stopped (`feed`, `strategy`, `gateway`).
    pub thread: String,
    /// Orders the strategy thread had open when the stall was found.
    pub open_orders_before: i64,
    /// The strategy thread acknowledged the halt (risk state halted, its orders closed) within 2 s.
    pub halted_by_strategy: bool,
    /// The REST cancel-all: the venue's answer, or why it failed (or did not run).
    pub rest_cancel_all: Option<String>,
    pub rest_error: Option<String>,
    /// Orders the venue still listed as open after the cancel-all.
    pub venue_open_orders_after: Option<usize>,
}

/// Halts trading after `thread` stalled (see the module docs).
pub(super) fn on_stall(
    thread: &str,
    ctl: Option<&Sender<ControlCmd>>,
    view: &LiveView,
    gw: Option<&GatewayConfig>,
    symbol: Symbol,
) -> Emergency {
    let mut e = Emergency {
        thread: thread.to_string(),
        open_orders_before: view.open_orders.get(),
        rest_error: gw
            .is_none()
            .then(|| "no venue gateway (paper mode)".to_string()),
        ..Default::default()
    };
    if thread != "strategy" {
        if let Some(tx) = ctl {
            let _ = tx.send(ControlCmd::Halt);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if view.risk_state.get() == 2 && view.open_orders.get() == 0 {
                    e.halted_by_strategy = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if let Some(cfg) = gw {
        match crate::order_cmd::emergency_cancel_all(cfg, symbol) {
            Ok((answer, open)) => {
                e.rest_cancel_all = Some(answer);
                e.venue_open_orders_after = Some(open);
            }
            Err(err) => e.rest_error = Some(format!("{err:#}")),
        }
    }
    eprintln!(
        "supervisor: the {thread} thread has stalled; trading halted (strategy halt: {}, REST cancel-all: {}, open at the venue after: {})",
        e.halted_by_strategy,
        e.rest_error.as_deref().unwrap_or("done"),
        e.venue_open_orders_after
            .map_or("unknown".to_string(), |n| n.to_string()),
    );
    e
}

/// The engine events that raise alerts, watched from the main thread (never the hot threads):
/// risk state changes (halts with the kill switch's name, reducing), disconnect storms, the daily
/// summary; stalls are raised by the caller.
pub(super) struct AlertWatch {
    pub(super) alerter: Alerter,
    state: i64,
    storm: Storm,
    daily: DailyClock,
}

impl AlertWatch {
    pub(super) fn start(cfg: AlertConfig) -> anyhow::Result<AlertWatch> {
        let storm = Storm::new(cfg.disconnect_storm, cfg.disconnect_window);
        let daily = DailyClock::new(cfg.daily_summary_utc_hour, now_ms());
        Ok(AlertWatch {
            alerter: Alerter::start(cfg)?,
            state: 0,
            storm,
            daily,
        })
    }

    /// One look (every main-loop turn).
    pub(super) fn tick(&mut self, view: &LiveView, disconnects: u64) {
        let state = view.risk_state.get();
        if state != self.state {
            let why = qalpha_risk::SwitchKind::from_gauge(view.halt_reason.get())
                .map_or("unknown", |k| k.name());
            let a = match state {
                2 => Some(Alert::new(
                    &format!("halt:{why}"),
                    Severity::Critical,
                    &format!("trading halted ({why})"),
                    &format!(
                        "Kill switch or operator: {why}. Open orders cancelled, positions being flattened; only an operator resume trades again. PnL {:.2} USDT.",
                        view.pnl.get()
                    ),
                )),
                1 => Some(Alert::new(
                    "reducing",
                    Severity::Warning,
                    "risk is reducing positions",
                    "Volatility spike: only orders that cut exposure are accepted.",
                )),
                _ if self.state == 2 => Some(Alert::new(
                    "resumed",
                    Severity::Info,
                    "trading resumed",
                    "The halt was lifted by an operator.",
                )),
                _ => None,
            };
            if let Some(a) = a {
                self.alerter.raise(a);
            }
            self.state = state;
        }
        if let Some(n) = self.storm.update(disconnects, Instant::now()) {
            self.alerter.raise(Alert::new(
                "disconnects",
                Severity::Warning,
                "disconnect storm",
                &format!("{n} connections to the venue dropped within the alert window."),
            ));
        }
        if let Some(day) = self.daily.due(now_ms()) {
            self.alerter.raise(summary_alert(
                &format!("summary:{day}"),
                "daily summary",
                view,
            ));
        }
    }
}

/// A summary of the run so far (daily, and at shutdown).
pub(super) fn summary_alert(key: &str, title: &str, view: &LiveView) -> Alert {
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    Alert::new(
        key,
        Severity::Info,
        title,
        &format!(
            "PnL {:.4} USDT (net of fees), position {}, orders {}, fills {}, rejects {}, risk refusals {}, risk state {}.",
            view.pnl.get(),
            super::ledger::decimal(
                view.position.load(std::sync::atomic::Ordering::Relaxed) as i128,
                8
            ),
            ld(&view.orders),
            ld(&view.fills),
            ld(&view.rejects),
            ld(&view.risk_rejects),
            qalpha_engine::metrics::RISK_STATE_NAMES
                .get(view.risk_state.get() as usize)
                .unwrap_or(&"?"),
        ),
    )
}

fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

/// Journals what the engine detected: every increase of a fault counter (disconnects, gaps,
/// resyncs, malformed frames, ring drops, snapshot failures, order-stream reconnects, transport and
/// venue errors, throttling, REST fallbacks) becomes a `system` entry `detected` in the order
/// journal, at most once per look (the main loop's 20 ms) per counter.
pub(super) struct FaultWatch {
    last: Vec<u64>,
}

type Probe = (&'static str, fn(&crate::monitor::Sources) -> u64);

const PROBES: [Probe; 12] = [
    ("feed_disconnect", |s| sum_feeds(s, |f| f.disconnects.get())),
    ("feed_connect_failure", |s| {
        sum_feeds(s, |f| f.connect_failures.get())
    }),
    ("book_gap", |s| {
        sum_feeds(s, |f| f.gaps.iter().map(|c| c.get()).sum())
    }),
    ("book_resync", |s| {
        sum_feeds(s, |f| f.resyncs.iter().map(|c| c.get()).sum())
    }),
    ("malformed_frame", |s| {
        sum_feeds(s, |f| f.malformed.iter().map(|c| c.get()).sum())
    }),
    ("ring_drop", |s| {
        sum_feeds(s, |f| f.ring_drops.iter().map(|c| c.get()).sum())
    }),
    ("snapshot_failure", |s| {
        sum_feeds(s, |f| f.snapshot_failures.get())
    }),
    ("order_stream_reconnect", |s| {
        sum_gws(s, |g| g.ws_reconnects.get())
    }),
    ("transport_error", |s| {
        sum_gws(s, |g| g.transport_errors.get())
    }),
    ("venue_error", |s| sum_gws(s, |g| g.venue_errors.get())),
    ("throttled", |s| sum_gws(s, |g| g.throttled.get())),
    ("rest_fallback", |s| sum_gws(s, |g| g.rest_fallbacks.get())),
];

fn sum_feeds(
    s: &crate::monitor::Sources,
    f: fn(&qalpha_engine::metrics::FeedMetrics) -> u64,
) -> u64 {
    s.feeds.iter().map(|x| f(x)).sum()
}

fn sum_gws(
    s: &crate::monitor::Sources,
    f: fn(&qalpha_engine::metrics::GatewayMetrics) -> u64,
) -> u64 {
    s.gateways.iter().map(|x| f(x)).sum()
}

impl FaultWatch {
    pub(super) fn new() -> Self {
        Self {
            last: vec![0; PROBES.len()],
        }
    }

    pub(super) fn look(
        &mut self,
        s: &crate::monitor::Sources,
        journal: &crate::order_journal::OrderJournal,
    ) {
        for (i, (what, probe)) in PROBES.iter().enumerate() {
            let now = probe(s);
            if now > self.last[i] {
                journal.system(
                    "detected",
                    serde_json::json!({"what": what, "total": now, "new": now - self.last[i]}),
                );
                self.last[i] = now;
            }
        }
    }
}
