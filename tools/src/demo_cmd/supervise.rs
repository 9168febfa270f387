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
