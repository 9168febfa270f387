//! Client-side rate limits, so the venue never has to tell us (PROTOCOLS.md A.5, C.5).
//!
//! Binance counts per fixed calendar window (the minute, the 10 seconds) and reports its own count in
//! `X-MBX-USED-WEIGHT-1M` / `X-MBX-ORDER-COUNT-10S` / `X-MBX-ORDER-COUNT-1M`; Bybit reports the
//! remaining budget in `X-Bapi-Limit-Status` with `X-Bapi-Limit-Reset-Timestamp`. Each
//! [`RateLimiter`] holds several fixed windows; `try_acquire` refuses (with the wait until the window
//! turns) instead of sending a request the venue would reject, and `observe` adopts the venue's own
//! count when it is higher (other processes on the same key or IP spend the same budget).

use std::time::Duration;

/// One fixed window: at most `limit` units per `interval`, aligned to the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub name: &'static str,
    pub interval_ns: u64,
    pub limit: u32,
    used: u32,
    window_start_ns: u64,
}

impl Window {
    pub fn new(name: &'static str, interval: Duration, limit: u32) -> Self {
        Self {
            name,
            interval_ns: interval.as_nanos() as u64,
            limit,
            used: 0,
            window_start_ns: 0,
        }
    }

    fn roll(&mut self, now_ns: u64) {
        let start = now_ns - now_ns % self.interval_ns.max(1);
        if start != self.window_start_ns {
            self.window_start_ns = start;
            self.used = 0;
        }
    }

    pub fn used(&self) -> u32 {
        self.used
    }
}

/// Why a request may not go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limit {window}: {used}+{cost} > {limit}; retry in {wait:?}")]
pub struct Throttled {
    pub window: &'static str,
    pub used: u32,
    pub cost: u32,
    pub limit: u32,
    pub wait: Duration,
}

/// Several windows spent together (e.g. Binance orders: 300 / 10 s and 1200 / 1 min).
#[derive(Clone, Debug, Default)]
pub struct RateLimiter {
    windows: Vec<Window>,
}

impl RateLimiter {
    pub fn new(windows: Vec<Window>) -> Self {
        Self { windows }
    }

    /// Binance USD-M request weight: 2400 per minute per IP.
    pub fn binance_weight() -> Self {
        Self::new(vec![Window::new(
            "REQUEST_WEIGHT 1m",
            Duration::from_secs(60),
            2400,
        )])
    }

    /// Binance USD-M order count: 300 per 10 s and 1200 per minute per account.
    pub fn binance_orders() -> Self {
        Self::new(vec![
            Window::new("ORDERS 10s", Duration::from_secs(10), 300),
            Window::new("ORDERS 1m", Duration::from_secs(60), 1200),
        ])
    }

    /// Bybit v5 linear order create/amend/cancel: 10 per second per UID (the default tier).
    pub fn bybit_orders() -> Self {
        Self::new(vec![Window::new("ORDERS 1s", Duration::from_secs(1), 10)])
    }

    /// Spends `cost` in every window, or refuses without spending anything.
    pub fn try_acquire(&mut self, cost: u32, now_ns: u64) -> Result<(), Throttled> {
        for w in &mut self.windows {
            w.roll(now_ns);
            if w.used + cost > w.limit {
                let wait = Duration::from_nanos(w.window_start_ns + w.interval_ns - now_ns);
                return Err(Throttled {
                    window: w.name,
                    used: w.used,
                    cost,
                    limit: w.limit,
                    wait,
                });
            }
        }
        for w in &mut self.windows {
            w.used += cost;
        }
        Ok(())
    }

    /// Adopts the venue's count for a window (by name) when it is higher than ours.
    pub fn observe(&mut self, window: &str, venue_used: u32, now_ns: u64) {
        if let Some(w) = self.windows.iter_mut().find(|w| w.name == window) {
            w.roll(now_ns);
            w.used = w.used.max(venue_used);
        }
    }

    /// [`Self::observe`] for a count reported in answer to a request sent at `sent_ns`: adopted only
    /// when the request went out in the window that is current now (an answer arriving after the
    /// window turned describes the previous window, not this one).
    pub fn observe_sent(&mut self, window: &str, venue_used: u32, sent_ns: u64, now_ns: u64) {
        if let Some(w) = self.windows.iter().find(|w| w.name == window) {
            let i = w.interval_ns.max(1);
            if sent_ns - sent_ns % i != now_ns - now_ns % i {
                return;
            }
        }
        self.observe(window, venue_used, now_ns);
    }

    /// Reads Binance's usage headers (lower-cased names) of an answer to a request sent at
    /// `sent_ns`.
    pub fn observe_binance_headers(
        &mut self,
        headers: &[(String, String)],
        sent_ns: u64,
        now_ns: u64,
    ) {
        for (k, v) in headers {
            let Ok(n) = v.parse::<u32>() else { continue };
            match k.as_str() {
                "x-mbx-used-weight-1m" => {
                    self.observe_sent("REQUEST_WEIGHT 1m", n, sent_ns, now_ns)
                }
                "x-mbx-order-count-10s" => self.observe_sent("ORDERS 10s", n, sent_ns, now_ns),
                "x-mbx-order-count-1m" => self.observe_sent("ORDERS 1m", n, sent_ns, now_ns),
                _ => {}
            }
        }
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn refuses_before_the_venue_would_and_reopens_at_the_window_edge() {
        let mut l = RateLimiter::binance_orders();
        let t0 = 1_700_000_000 * S; // a 10 s and minute boundary
        for _ in 0..300 {
            l.try_acquire(1, t0 + S).unwrap();
        }
        let e = l.try_acquire(1, t0 + 2 * S).unwrap_err();
        assert_eq!((e.window, e.wait), ("ORDERS 10s", Duration::from_secs(8)));
        // Nothing was spent by the refused call; the next 10 s window has room, the minute keeps count.
        l.try_acquire(1, t0 + 10 * S).unwrap();
        assert_eq!(l.windows()[1].used(), 301);
    }

    #[test]
    fn adopts_the_venues_higher_count() {
        let mut l = RateLimiter::binance_weight();
        let now = 1_700_000_030 * S;
        l.try_acquire(20, now).unwrap();
        l.observe_binance_headers(&[("x-mbx-used-weight-1m".into(), "2390".into())], now, now);
        assert!(l.try_acquire(20, now).is_err());
        l.observe_binance_headers(&[("x-mbx-used-weight-1m".into(), "5".into())], now, now);
        assert_eq!(
            l.windows()[0].used(),
            2390,
            "a lower venue count never lowers ours"
        );
        // An answer to a request of the previous minute does not count in this one.
        let mut l = RateLimiter::binance_weight();
        let next_minute = 1_700_000_040 * S;
        l.observe_binance_headers(
            &[("x-mbx-used-weight-1m".into(), "2390".into())],
            now,
            next_minute,
        );
        assert_eq!(l.windows()[0].used(), 0);
    }
}
