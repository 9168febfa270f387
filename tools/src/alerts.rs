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
//! smtp = "127.0.0.1:25"        # a local relay (postfix, msmtpd): plain SMTP, no AUTH
//! from = "qalpha@example.com"
//! to = ["ops@example.com"]
//! ```
//!
//! Secrets (the bot token, webhook URLs that embed one) come from environment variables named in
//! the config, never from the file itself, and never appear in errors, logs or `Debug` output.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam::channel::{Receiver, Sender};
use serde_json::json;
use zeroize::Zeroizing;

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
            ts_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
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

/// A delivery channel.
#[derive(Clone)]
pub enum Sink {
    Telegram {
        api_url: String,
        token: Zeroizing<String>,
        chat_id: String,
    },
    Discord {
        url: Zeroizing<String>,
    },
    Webhook {
        url: Zeroizing<String>,
    },
    Email {
        smtp: String,
        from: String,
        to: Vec<String>,
    },
}

impl Sink {
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Telegram { .. } => "telegram",
            Sink::Discord { .. } => "discord",
            Sink::Webhook { .. } => "webhook",
            Sink::Email { .. } => "email",
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Telegram {
                api_url, chat_id, ..
            } => write!(
                f,
                "Telegram {{ api_url: {api_url:?}, chat_id: {chat_id:?}, token: <redacted> }}"
            ),
            Sink::Discord { .. } => f.write_str("Discord { url: <redacted> }"),
            Sink::Webhook { .. } => f.write_str("Webhook { url: <redacted> }"),
            Sink::Email { smtp, from, to } => {
                write!(f, "Email {{ smtp: {smtp:?}, from: {from:?}, to: {to:?} }}")
            }
        }
    }
}

/// `[alerts]`.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    pub sinks: Vec<Sink>,
    pub dedup_window: Duration,
    pub max_per_minute: u32,
    pub disconnect_storm: u32,
    pub disconnect_window: Duration,
    pub daily_summary_utc_hour: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            dedup_window: Duration::from_secs(600),
            max_per_minute: 6,
            disconnect_storm: 5,
            disconnect_window: Duration::from_secs(300),
            daily_summary_utc_hour: 0,
        }
    }
}

fn secret(t: &toml::Table, what: &str, key: &str, env_key: &str) -> Result<Zeroizing<String>> {
    match (t.get(key), t.get(env_key)) {
        (Some(_), Some(_)) => bail!("[alerts.{what}]: give {key} or {env_key}, not both"),
        (Some(v), None) => Ok(Zeroizing::new(
            v.as_str()
                .ok_or_else(|| anyhow!("[alerts.{what}] {key}: must be a string"))?
                .to_string(),
        )),
        (None, Some(v)) => {
            let var = v
                .as_str()
                .ok_or_else(|| anyhow!("[alerts.{what}] {env_key}: must be a string"))?;
            let val = std::env::var(var).map_err(|_| {
                anyhow!("[alerts.{what}] {env_key}: the environment variable {var} is not set")
            })?;
            Ok(Zeroizing::new(val))
        }
        (None, None) => bail!("[alerts.{what}]: {key} or {env_key} is required"),
    }
}

fn string(t: &toml::Table, what: &str, key: &str) -> Result<String> {
    t.get(key)
        .ok_or_else(|| anyhow!("[alerts.{what}] {key}: required"))?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("[alerts.{what}] {key}: must be a string"))
}

fn check_keys(t: &toml::Table, what: &str, allowed: &[&str]) -> Result<()> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            bail!(
                "[alerts{what}] {k}: unknown key (known: {})",
                allowed.join(", ")
            );
        }
    }
    Ok(())
}

fn http_url(what: &str, u: &str) -> Result<()> {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        bail!("[alerts.{what}]: the URL must start with https:// or http://");
    }
    Ok(())
}

impl AlertConfig {
    /// From the `[alerts]` table (`None`: no alerts). Names the wrong key and why.
    pub fn from_table(t: Option<&toml::Table>) -> Result<AlertConfig> {
        let mut c = AlertConfig::default();
        let Some(t) = t else { return Ok(c) };
        check_keys(
            t,
            "",
            &[
                "dedup_window_s",
                "max_per_minute",
                "disconnect_storm",
                "disconnect_window_s",
                "daily_summary_utc_hour",
                "telegram",
                "discord",
                "webhook",
                "email",
            ],
        )?;
        let int = |k: &str, lo: i64, hi: i64| -> Result<Option<u64>> {
            match t.get(k) {
                None => Ok(None),
                Some(v) => {
                    let n = v
                        .as_integer()
                        .ok_or_else(|| anyhow!("[alerts] {k}: must be an integer"))?;
                    if n < lo || n > hi {
                        bail!("[alerts] {k} = {n}: must be {lo}..={hi}");
                    }
                    Ok(Some(n as u64))
                }
            }
        };
        if let Some(n) = int("dedup_window_s", 0, 7 * 86_400)? {
            c.dedup_window = Duration::from_secs(n);
        }
        if let Some(n) = int("max_per_minute", 1, 600)? {
            c.max_per_minute = n as u32;
        }
        if let Some(n) = int("disconnect_storm", 1, 10_000)? {
            c.disconnect_storm = n as u32;
        }
        if let Some(n) = int("disconnect_window_s", 1, 86_400)? {
            c.disconnect_window = Duration::from_secs(n);
        }
        if let Some(n) = int("daily_summary_utc_hour", 0, 23)? {
            c.daily_summary_utc_hour = n as u32;
        }
        let table = |k: &str| -> Result<Option<&toml::Table>> {
            match t.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_table()
                    .map(Some)
                    .ok_or_else(|| anyhow!("[alerts] {k}: must be a table ([alerts.{k}])")),
            }
        };
        if let Some(tg) = table("telegram")? {
            check_keys(
                tg,
                ".telegram",
                &["chat_id", "token", "token_env", "api_url"],
            )?;
            let api_url = match tg.get("api_url") {
                None => "https://api.telegram.org".to_string(),
                Some(_) => string(tg, "telegram", "api_url")?,
            };
            http_url("telegram", &api_url)?;
            c.sinks.push(Sink::Telegram {
                token: secret(tg, "telegram", "token", "token_env")?,
                chat_id: string(tg, "telegram", "chat_id")?,
                api_url: api_url.trim_end_matches('/').to_string(),
            });
        }
        for (k, make) in [
            (
                "discord",
                (|url| Sink::Discord { url }) as fn(Zeroizing<String>) -> Sink,
            ),
            ("webhook", |url| Sink::Webhook { url }),
        ] {
            if let Some(w) = table(k)? {
                check_keys(w, &format!(".{k}"), &["url", "url_env"])?;
                let url = secret(w, k, "url", "url_env")?;
                http_url(k, &url)?;
                c.sinks.push(make(url));
            }
        }
        if let Some(e) = table("email")? {
            check_keys(e, ".email", &["smtp", "from", "to"])?;
            let to: Vec<String> = match e.get("to") {
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| anyhow!("[alerts.email] to: a list of addresses"))
                    })
                    .collect::<Result<_>>()?,
                Some(toml::Value::String(s)) => vec![s.clone()],
                _ => bail!("[alerts.email] to: required (an address or a list)"),
            };
            if to.is_empty() {
                bail!("[alerts.email] to: at least one address");
            }
            let smtp = string(e, "email", "smtp")?;
            if !smtp.contains(':') {
                bail!("[alerts.email] smtp = {smtp:?}: use HOST:PORT");
            }
            c.sinks.push(Sink::Email {
                smtp,
                from: string(e, "email", "from")?,
                to,
            });
        }
        Ok(c)
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
    let http = http_agent();
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

fn http_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .user_agent(concat!("qalpha/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Delivers one alert to one sink. Errors never carry the URL or token.
pub fn send(http: &ureq::Agent, sink: &Sink, a: &Alert) -> Result<()> {
    let post = |url: &str, body: serde_json::Value| -> Result<()> {
        let resp = http
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| {
                anyhow!(
                    "{} POST failed: {}",
                    sink.name(),
                    redact(&e.to_string(), url)
                )
            })?;
        let st = resp.status().as_u16();
        if !(200..300).contains(&st) {
            bail!("{} answered HTTP {st}", sink.name());
        }
        Ok(())
    };
    match sink {
        Sink::Telegram {
            api_url,
            token,
            chat_id,
        } => post(
            &format!("{api_url}/bot{}/sendMessage", token.as_str()),
            json!({"chat_id": chat_id, "text": a.line(), "disable_web_page_preview": true}),
        ),
        Sink::Discord { url } => post(url, json!({"content": a.line()})),
        Sink::Webhook { url } => post(url, json!(a)),
        Sink::Email { smtp, from, to } => smtp_send(smtp, from, to, a),
    }
}

fn redact(msg: &str, url: &str) -> String {
    msg.replace(url, "<url>")
}

/// Plain SMTP to a relay (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT).
fn smtp_send(addr: &str, from: &str, to: &[String], a: &Alert) -> Result<()> {
    let stream = TcpStream::connect(addr).with_context(|| format!("smtp {addr}: connect"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let expect = |r: &mut BufReader<TcpStream>, code: &str, what: &str| -> Result<()> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                bail!("smtp {addr}: closed during {what}");
            }
            if !line.starts_with(code) {
                bail!("smtp {addr}: {what}: {}", line.trim_end());
            }
            // Multi-line replies: "250-…" continue, "250 …" ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect(&mut r, "220", "greeting")?;
    write!(w, "EHLO qalpha\r\n")?;
    expect(&mut r, "250", "EHLO")?;
    write!(w, "MAIL FROM:<{from}>\r\n")?;
    expect(&mut r, "250", "MAIL FROM")?;
    for t in to {
        write!(w, "RCPT TO:<{t}>\r\n")?;
        expect(&mut r, "25", "RCPT TO")?;
    }
    write!(w, "DATA\r\n")?;
    expect(&mut r, "354", "DATA")?;
    let date = a.ts_ms / 1000;
    let subject = format!("[qalpha {:?}] {}", a.severity, a.title);
    let mut msg = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nX-Qalpha-Key: {}\r\nX-Qalpha-Time: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        to.join(", "),
        a.key
    );
    for line in a.line().lines() {
        // Dot-stuffing (RFC 5321 §4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    w.write_all(msg.as_bytes())?;
    expect(&mut r, "250", "message")?;
    write!(w, "QUIT\r\n")?;
    let _ = expect(&mut r, "221", "QUIT");
    Ok(())
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

    #[test]
    fn config_names_the_wrong_key() {
        let t: toml::Table = toml::from_str("max_per_minute = 0").unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("max_per_minute = 0"), "{e}");
        let t: toml::Table = toml::from_str("[webhook]\nuri = \"x\"").unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("[alerts.webhook] uri: unknown key"), "{e}");
        let t: toml::Table =
            toml::from_str("[telegram]\nchat_id = \"1\"\ntoken_env = \"QALPHA_TEST_UNSET_VAR\"")
                .unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("QALPHA_TEST_UNSET_VAR is not set"), "{e}");
        let t: toml::Table =
            toml::from_str("[email]\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = []").unwrap();
        assert!(AlertConfig::from_table(Some(&t)).is_err());
        let t: toml::Table = toml::from_str(
            "[webhook]\nurl = \"http://127.0.0.1:1/h\"\n[email]\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = \"c@d\"",
        )
        .unwrap();
        let c = AlertConfig::from_table(Some(&t)).unwrap();
        assert_eq!(c.sinks.len(), 2);
        assert!(
            !format!("{c:?}").contains("127.0.0.1:1"),
            "webhook URL in Debug output"
        );
    }
}
