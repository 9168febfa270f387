//! The monitor: Prometheus metrics at `--metrics ADDR` and the supervisor's thread watch.
//!
//! The metrics server is a thread of its own (DESIGN §1: the monitor does everything slow). It
//! reads the blocks the engine threads publish ([`qalpha_engine::metrics`]) only when scraped and
//! renders the text exposition format; the hot threads never wait for it.
//!
//! `GET /metrics` answers the exposition (`text/plain; version=0.0.4`); `GET /` a short index; other
//! paths 404. Bind it to loopback or a management network: it carries positions and PnL.
//!
//! The [`Supervisor`] watches every engine thread's heartbeat; a thread whose heartbeat has not moved
//! for the stall window is stuck (or dead), and the caller halts trading.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use qalpha_engine::metrics::{
    render_feeds, render_gateways, render_heartbeats, render_strategy, Exposition, FeedMetrics,
    GatewayMetrics, StrategyMetrics,
};
use qalpha_engine::Venue;

/// What the monitor reads.
#[derive(Clone, Default)]
pub struct Sources {
    pub feeds: Vec<Arc<FeedMetrics>>,
    pub gateways: Vec<Arc<GatewayMetrics>>,
    /// The strategy thread's block and the market it trades.
    pub strategy: Option<(Arc<StrategyMetrics>, Venue, String)>,
    /// Threads the supervisor found stalled (a count per stall).
    pub stalls: Arc<AtomicU64>,
    /// Scrapes served.
    pub scrapes: Arc<AtomicU64>,
    /// The mode label (`mock`, `paper`, `testnet`, `live`) for `qalpha_build_info`.
    pub mode: String,
}

impl Sources {
    /// Every thread's heartbeat: (`thread`, beats).
    pub fn heartbeats(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (i, f) in self.feeds.iter().enumerate() {
            out.push((numbered("feed", i, self.feeds.len()), f.beats.get()));
        }
        if let Some((s, _, _)) = &self.strategy {
            out.push(("strategy".into(), s.beats.load(Ordering::Relaxed)));
        }
        for (i, g) in self.gateways.iter().enumerate() {
            out.push((numbered("gateway", i, self.gateways.len()), g.beats.get()));
        }
        out
    }

    /// The whole exposition.
    pub fn render(&self, started: Instant) -> String {
        let mut e = Exposition::default();
        e.header(
            "qalpha_build_info",
            "gauge",
            "The engine's version and run mode (always 1).",
        );
        e.sample(
            "qalpha_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("mode", &self.mode)],
            1.0,
        );
        e.single(
            "qalpha_uptime_seconds",
            "gauge",
            "Seconds since the engine started.",
            started.elapsed().as_secs_f64(),
        );
        render_feeds(&mut e, &self.feeds);
        render_gateways(&mut e, &self.gateways);
        if let Some((s, venue, symbol)) = &self.strategy {
            render_strategy(&mut e, s, *venue, symbol, &self.gateways);
        }
        let beats = self.heartbeats();
        let named: Vec<(&str, u64)> = beats.iter().map(|(t, b)| (t.as_str(), *b)).collect();
        render_heartbeats(&mut e, &named);
        e.single(
            "qalpha_thread_stalls_total",
            "counter",
            "Engine threads the supervisor found stuck (heartbeat still for the stall window).",
            self.stalls.load(Ordering::Relaxed) as f64,
        );
        e.single(
            "qalpha_metrics_scrapes_total",
            "counter",
            "Scrapes of this endpoint served.",
            self.scrapes.load(Ordering::Relaxed) as f64,
        );
        e.finish()
    }
}

fn numbered(base: &str, i: usize, n: usize) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}{i}")
    }
}

/// The `/metrics` server.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (e.g. `127.0.0.1:9184`; port 0 picks a free one) and serves until dropped.
    pub fn start(addr: &str, sources: Sources) -> Result<MetricsServer> {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("--metrics {addr:?}: use HOST:PORT, e.g. 127.0.0.1:9184"))?;
        let listener =
            TcpListener::bind(addr).with_context(|| format!("--metrics {addr}: cannot listen"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let started = Instant::now();
        let handle = std::thread::Builder::new()
            .name("qa-metrics".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &sources, started),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut stream: TcpStream, sources: &Sources, started: Instant) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Some(req) = crate::control::read_request(&mut stream) else {
        return;
    };
    let (code, ctype, body) = match (req.method.as_str(), req.path.as_str()) {
        ("GET", p) if p == "/metrics" || p.starts_with("/metrics?") => {
            sources.scrapes.fetch_add(1, Ordering::Relaxed);
            (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                sources.render(started),
            )
        }
        ("GET", "/") => (
            200,
            "text/plain; charset=utf-8",
            "qalpha engine: metrics at /metrics\n".to_string(),
        ),
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: GET /metrics\n".to_string(),
        ),
    };
    crate::control::write_response(&mut stream, code, ctype, &body);
}

/// Watches the engine threads' heartbeats: a heartbeat that has not moved for `window` is a stuck
/// or dead thread.
pub struct Supervisor {
    window: Duration,
    last: Vec<(String, u64, Instant)>,
}

impl Supervisor {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last: Vec::new(),
        }
    }

    /// One look at the heartbeats (`thread`, beats); the first thread found stalled, if any.
    pub fn check(&mut self, beats: &[(String, u64)]) -> Option<String> {
        let now = Instant::now();
        let mut stalled = None;
        for (name, b) in beats {
            match self.last.iter_mut().find(|(n, _, _)| n == name) {
                Some(e) if e.1 != *b => {
                    e.1 = *b;
                    e.2 = now;
                }
                Some(e) => {
                    if now.duration_since(e.2) >= self.window && stalled.is_none() {
                        stalled = Some(name.clone());
                    }
                }
                None => self.last.push((name.clone(), *b, now)),
            }
        }
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_names_the_thread_whose_heartbeat_stopped() {
        let mut s = Supervisor::new(Duration::ZERO);
        let beats = |f: u64, g: u64| vec![("feed".to_string(), f), ("gateway".to_string(), g)];
        assert_eq!(s.check(&beats(1, 1)), None, "first look only records");
        assert_eq!(s.check(&beats(2, 1)).as_deref(), Some("gateway"));
        assert_eq!(s.check(&beats(3, 2)), None);
        let mut s = Supervisor::new(Duration::from_secs(3600));
        s.check(&beats(1, 1));
        assert_eq!(s.check(&beats(1, 1)), None, "still within the window");
    }
}
