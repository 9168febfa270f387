//! Alerts: Telegram (Bot API), Discord (webhook), a generic JSON webhook and e-mail (SMTP), sent by
//! a thread of their own — never the engine threads — rate-limited and deduplicated.
//!
//! The engine raises an [`Alert`] with a **key** (`halt:daily_loss`, `stall:gateway`,
//! `disconnects`, `summary:2026-11-26`); an alert whose key was sent within `dedup_window` is
//! dropped and counted, and at most `max_per_minute` alerts go out per minute (the rest are dropped
//! and counted, except critical ones, which wait for the window). Delivery failures are retried
//! once after a second, then counted and logged (`tracing`), never fatal.
//!
//! ```toml
//! [alerts]
//! dedup_window_s = 600          # same key again within this: dropped (default 600)
//! max_per_minute = 6            # per-minute budget (default 6)
//! disconnect_storm = 5          # this many disconnects (feed + order streams) …
//! disconnect_window_s = 300     # … within this window raise an alert (defaults 5 / 300 s)
//! daily_summary_utc_hour = 0    # the daily summary's hour (UTC; default 0); one also at shutdown
//!
//! [alerts.telegram]
//! chat_id = "-100123456"
//! token_env = "QALPHA_TELEGRAM_TOKEN"   # the bot token is a secret: read from this variable
//! api_url = "https://api.telegram.org"  # default
//!
//! [alerts.discord]
//! url_env = "QALPHA_DISCORD_WEBHOOK"
//!
//! [alerts.webhook]
//! url = "https://ops.example.com/hooks/qalpha"   # or url_env
//!
//! [alerts.email]
//! smtp = "smtp.example.com:587"   # HOST:PORT; "127.0.0.1:25" for a local relay (postfix, msmtpd)
//! tls = "starttls"             # "tls" (SMTPS), "starttls" (required, not opportunistic) or "none";
//!                              # default by port: 465 tls, 587 starttls, others none
//! username = "qalpha@example.com"          # AUTH PLAIN (or LOGIN), only ever inside TLS
//! password_env = "QALPHA_SMTP_PASSWORD"    # (AUTH over tls = "none" only to loopback)
//! # ca_file = "/etc/qalpha/relay-ca.pem"   # trust this CA instead of the webpki roots
//! from = "qalpha@example.com"
//! to = ["ops@example.com"]
//! ```
//!
//! Secrets (the bot token, webhook URLs that embed one) come from environment variables named in
//! the config, never from the file itself, and never appear in errors, logs or `Debug` output.

mod config;
mod send;
mod smtp;

pub use config::{AlertConfig, Sink};
pub use send::send;
pub use smtp::{EmailSink, SmtpTls};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam::channel::{Receiver, Sender};

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One alert.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Alert {
    /// Deduplication key.
    pub key: String,
    pub severity: Severity,
    pub title: String,
    pub text: String,
    pub ts_ms: u64,
}

impl Alert {
    pub fn new(key: &str, severity: Severity, title: &str, text: &str) -> Self {
        Self {
            key: key.to_string(),
            severity,
            title: title.to_string(),
            text: text.to_string(),
            ts_ms: qalpha_engine::clock::now_ns() / 1_000_000,
        }
    }

    fn line(&self) -> String {
        let tag = match self.severity {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        };
        format!("[qalpha {tag}] {}\n{}", self.title, self.text)
    }
}

/// What the alert thread counted.
#[derive(Debug, Default)]
pub struct AlertCounters {
    pub raised: AtomicU64,
    pub sent: AtomicU64,
    pub deduplicated: AtomicU64,
    pub rate_limited: AtomicU64,
    pub failed: AtomicU64,
}

/// The alert thread's handle: [`Alerter::raise`] never blocks the caller.
pub struct Alerter {
    tx: Option<Sender<Alert>>,
    handle: Option<JoinHandle<()>>,
    pub counters: Arc<AlertCounters>,
}

impl Alerter {
    /// Starts the delivery thread (with no sinks, alerts are counted and dropped).
    pub fn start(cfg: AlertConfig) -> Result<Alerter> {
        let (tx, rx) = crossbeam::channel::bounded(256);
        let counters = Arc::new(AlertCounters::default());
        let c = counters.clone();
        let handle = std::thread::Builder::new()
            .name("qa-alerts".into())
            .spawn(move || deliver_loop(cfg, rx, &c))?;
        Ok(Alerter {
            tx: Some(tx),
            handle: Some(handle),
            counters,
        })
    }

    /// Queues an alert (dropped and counted as rate-limited if 256 are already waiting).
    pub fn raise(&self, a: Alert) {
        self.counters.raised.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.tx {
            if tx.try_send(a).is_err() {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends what is queued (bounded by the sinks' timeouts) and stops the thread.
    pub fn finish(mut self) -> Arc<AlertCounters> {
        self.close();
        self.counters.clone()
    }

    fn close(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Alerter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Deduplication and the per-minute budget.
pub struct Gate {
    dedup_window: Duration,
    max_per_minute: u32,
    last_by_key: HashMap<String, Instant>,
    sent_at: std::collections::VecDeque<Instant>,
}

/// What the gate says about an alert.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Duplicate,
    /// Over the budget: drop (`None`) or, for critical alerts, wait this long.
    RateLimited(Option<Duration>),
}

impl Gate {
    pub fn new(dedup_window: Duration, max_per_minute: u32) -> Self {
        Self {
            dedup_window,
            max_per_minute,
            last_by_key: HashMap::new(),
            sent_at: Default::default(),
        }
    }

    pub fn judge(&mut self, a: &Alert, now: Instant) -> Verdict {
        if let Some(t) = self.last_by_key.get(&a.key) {
            if now.duration_since(*t) < self.dedup_window {
                return Verdict::Duplicate;
            }
        }
        while self
            .sent_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.sent_at.pop_front();
        }
        if self.sent_at.len() >= self.max_per_minute as usize {
            let wait = self
                .sent_at
                .front()
                .map(|t| Duration::from_secs(60).saturating_sub(now.duration_since(*t)));
            return Verdict::RateLimited(
                (a.severity == Severity::Critical).then(|| wait.unwrap_or_default()),
            );
        }
        self.last_by_key.insert(a.key.clone(), now);
        self.sent_at.push_back(now);
        Verdict::Send
    }
}

fn deliver_loop(cfg: AlertConfig, rx: Receiver<Alert>, c: &AlertCounters) {
    let mut gate = Gate::new(cfg.dedup_window, cfg.max_per_minute);
    let http = send::http_agent();
    while let Ok(a) = rx.recv() {
        let mut verdict = gate.judge(&a, Instant::now());
        // A critical alert over the budget waits for the window (at most a minute), then goes.
        if let Verdict::RateLimited(Some(wait)) = verdict {
            std::thread::sleep(wait);
            verdict = gate.judge(&a, Instant::now());
        }
        match verdict {
            Verdict::Duplicate => {
                c.deduplicated.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Verdict::RateLimited(_) => {
                c.rate_limited.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Verdict::Send => {}
        }
        for sink in &cfg.sinks {
            let mut res = send(&http, sink, &a);
            if res.is_err() {
                std::thread::sleep(Duration::from_secs(1));
                res = send(&http, sink, &a);
            }
            match res {
                Ok(()) => c.sent.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(sink = sink.name(), key = %a.key, "alert not delivered: {e:#}");
                    c.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    }
}

/// When the daily summary is due: once per UTC day at `hour`.
pub struct DailyClock {
    hour: u32,
    last_day: Option<u64>,
}

impl DailyClock {
    /// `now_ms` at start: today's summary counts as done if the hour has passed (the first one
    /// comes at the next `hour`).
    pub fn new(hour: u32, now_ms: u64) -> Self {
        let day = now_ms / 86_400_000;
        let passed = (now_ms % 86_400_000) / 3_600_000 >= hour as u64;
        Self {
            hour,
            last_day: passed.then_some(day),
        }
    }

    /// The UTC day number if a summary is due now.
    pub fn due(&mut self, now_ms: u64) -> Option<u64> {
        let day = now_ms / 86_400_000;
        let hour = (now_ms % 86_400_000) / 3_600_000;
        if hour >= self.hour as u64 && self.last_day != Some(day) {
            self.last_day = Some(day);
            return Some(day);
        }
        None
    }
}

/// Counts events in a sliding window (disconnect storms).
pub struct Storm {
    window: Duration,
    threshold: u32,
    at: std::collections::VecDeque<Instant>,
    last_total: u64,
}

impl Storm {
    pub fn new(threshold: u32, window: Duration) -> Self {
        Self {
            window,
            threshold,
            at: Default::default(),
            last_total: 0,
        }
    }

    /// Feeds the running total of events; `Some(n)` when `n ≥ threshold` fell in the window.
    pub fn update(&mut self, total: u64, now: Instant) -> Option<usize> {
        for _ in self.last_total..total {
            self.at.push_back(now);
        }
        self.last_total = self.last_total.max(total);
        while self
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.at.pop_front();
        }
        (self.at.len() >= self.threshold as usize).then(|| {
            let n = self.at.len();
            self.at.clear();
            n
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(key: &str, sev: Severity) -> Alert {
        Alert::new(key, sev, "t", "x")
    }

    #[test]
    fn gate_deduplicates_and_limits_the_rate() {
        let mut g = Gate::new(Duration::from_secs(600), 2);
        let t0 = Instant::now();
        assert_eq!(g.judge(&alert("a", Severity::Info), t0), Verdict::Send);
        assert_eq!(g.judge(&alert("a", Severity::Info), t0), Verdict::Duplicate);
        assert_eq!(g.judge(&alert("b", Severity::Info), t0), Verdict::Send);
        assert_eq!(
            g.judge(&alert("c", Severity::Info), t0),
            Verdict::RateLimited(None)
        );
        match g.judge(
            &alert("c", Severity::Critical),
            t0 + Duration::from_secs(10),
        ) {
            Verdict::RateLimited(Some(w)) => assert_eq!(w, Duration::from_secs(50)),
            v => panic!("{v:?}"),
        }
        // A minute later the budget is back; a duplicate key is still a duplicate.
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(g.judge(&alert("c", Severity::Info), t1), Verdict::Send);
        assert_eq!(g.judge(&alert("a", Severity::Info), t1), Verdict::Duplicate);
        assert_eq!(
            g.judge(&alert("a", Severity::Info), t0 + Duration::from_secs(601)),
            Verdict::Send
        );
    }

    #[test]
    fn daily_clock_fires_once_per_day_at_the_hour() {
        let day = 20_000u64 * 86_400_000;
        let h = 3_600_000u64;
        let mut c = DailyClock::new(6, day + 7 * h);
        assert_eq!(c.due(day + 8 * h), None, "today's hour had passed at start");
        assert_eq!(c.due(day + 86_400_000 + 5 * h), None);
        assert_eq!(c.due(day + 86_400_000 + 6 * h), Some(20_001));
        assert_eq!(c.due(day + 86_400_000 + 7 * h), None);
        let mut c = DailyClock::new(6, day + h);
        assert_eq!(c.due(day + 6 * h), Some(20_000));
    }

    #[test]
    fn storm_needs_the_threshold_inside_the_window() {
        let t0 = Instant::now();
        let mut s = Storm::new(3, Duration::from_secs(60));
        assert_eq!(s.update(2, t0), None);
        assert_eq!(s.update(2, t0 + Duration::from_secs(120)), None, "aged out");
        assert_eq!(s.update(4, t0 + Duration::from_secs(121)), None);
        assert_eq!(s.update(5, t0 + Duration::from_secs(122)), Some(3));
        assert_eq!(
            s.update(5, t0 + Duration::from_secs(123)),
            None,
            "reset after firing"
        );
    }
}
