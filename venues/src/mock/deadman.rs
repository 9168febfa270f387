//! The venues' dead-man switches, as the mock runs them.
//!
//! - **Binance** `POST /fapi/v1/countdownCancelAll` (`symbol`, `countdownTime` ms; 0 disarms): if the
//!   countdown is not refreshed in time, every open order of the symbol is canceled.
//! - **Bybit** disconnection protection (`POST /v5/order/disconnected-cancel-all`, `timeWindow` s):
//!   armed while a private connection subscribed to `dcp`; when the last such connection is lost and
//!   none comes back within the window, every open order is canceled.
//!
//! A mock thread calls [`tick`] every few milliseconds; cancellations go through the fill model like
//! any cancel, so the private streams report them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::orders::now_ns;
use super::server::Ctx;

/// Armed switches.
#[derive(Debug, Default)]
pub struct DeadMan {
    /// Binance: symbol (upper case) → when its countdown runs out.
    pub countdowns: HashMap<String, Instant>,
    /// Bybit: the disconnection window, once set.
    pub dcp_window: Option<Duration>,
    /// Bybit: private connections currently subscribed to `dcp`.
    pub dcp_connections: u32,
    /// Bybit: when the last `dcp` connection went away (cleared when one comes back).
    pub dcp_lost_at: Option<Instant>,
}

impl DeadMan {
    /// Binance: (re)arms the symbol's countdown; 0 disarms it.
    pub fn countdown(&mut self, symbol: &str, ms: u64) {
        if ms == 0 {
            self.countdowns.remove(symbol);
        } else {
            self.countdowns.insert(
                symbol.to_string(),
                Instant::now() + Duration::from_millis(ms),
            );
        }
    }

    /// Bybit: a private connection subscribed to `dcp`.
    pub fn dcp_connected(&mut self) {
        self.dcp_connections += 1;
        self.dcp_lost_at = None;
    }

    /// Bybit: a `dcp`-subscribed private connection closed.
    pub fn dcp_disconnected(&mut self) {
        self.dcp_connections = self.dcp_connections.saturating_sub(1);
        if self.dcp_connections == 0 {
            self.dcp_lost_at = Some(Instant::now());
        }
    }

    /// The symbols whose switch fired now (`None` in the list = every symbol), disarming them.
    fn due(&mut self, now: Instant) -> Vec<Option<String>> {
        let mut out: Vec<Option<String>> = Vec::new();
        self.countdowns.retain(|s, at| {
            let fire = *at <= now;
            if fire {
                out.push(Some(s.clone()));
            }
            !fire
        });
        if let (Some(w), Some(lost)) = (self.dcp_window, self.dcp_lost_at) {
            if now.duration_since(lost) >= w {
                self.dcp_lost_at = None;
                out.push(None);
            }
        }
        out
    }
}

/// Fires the switches that ran out: cancels the open orders they cover.
pub fn tick(ctx: &Ctx) {
    let due = ctx
        .deadman
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .due(Instant::now());
    if due.is_empty() {
        return;
    }
    let now = now_ns();
    let mut g = ctx.hub.lock();
    for which in due {
        let mut canceled = 0u64;
        for (name, s) in g.symbols.iter_mut() {
            if which.as_deref().is_none_or(|w| w == name) {
                canceled += s.orders.cancel_all(now).len() as u64;
            }
        }
        ctx.counters.deadman_fired.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "mock {}: dead-man switch fired for {}: {canceled} open orders canceled",
            ctx.venue.name(),
            which.as_deref().unwrap_or("all symbols")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_fires_once_and_zero_disarms() {
        let mut d = DeadMan::default();
        d.countdown("BTCUSDT", 10);
        d.countdown("ETHUSDT", 10);
        d.countdown("ETHUSDT", 0);
        let later = Instant::now() + Duration::from_millis(20);
        assert_eq!(d.due(later), vec![Some("BTCUSDT".to_string())]);
        assert!(d.due(later).is_empty());
    }

    #[test]
    fn dcp_fires_only_after_the_window_without_a_connection() {
        let mut d = DeadMan {
            dcp_window: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        d.dcp_connected();
        d.dcp_connected();
        d.dcp_disconnected();
        assert!(d.dcp_lost_at.is_none(), "one connection is still up");
        d.dcp_disconnected();
        let lost = d.dcp_lost_at.expect("the last connection went away");
        assert!(d.due(lost + Duration::from_millis(10)).is_empty());
        d.dcp_connected();
        assert!(
            d.due(lost + Duration::from_millis(100)).is_empty(),
            "it came back"
        );
        d.dcp_disconnected();
        let lost = d.dcp_lost_at.unwrap();
        assert_eq!(d.due(lost + Duration::from_millis(60)), vec![None]);
    }
}
