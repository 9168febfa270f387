//! The mock's market: a tape of venue frames (from a capture or generated), the exchange-side
//! books it implies, and the hub that fans frames out to connections.
//!
//! Book and broadcast change together under one lock, so a REST snapshot (Binance) or a subscription
//! snapshot (Bybit) always corresponds exactly to a point in the stream every connection sees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crossbeam::channel::{bounded, unbounded, Receiver, Sender};

use super::book::ExchangeBook;
use super::orders::OrderUpdate;

/// One frame on the tape.
#[derive(Clone, Debug)]
pub struct TapeFrame {
    /// Binance: the normalised stream key (`btcusdt@depth`, `btcusdt@bookTicker`); Bybit: the topic.
    pub key: String,
    /// Binance: the event object (a combined-stream connection wraps it with its own stream name);
    /// Bybit: the whole frame.
    pub body: String,
    /// A book diff (Binance) or delta (Bybit): what `drop-diff` drops.
    pub is_diff: bool,
    /// Bybit delta: its topic `u` (a subscriber skips deltas at or before its snapshot's `u`).
    pub topic_u: u64,
    /// Capture time of the frame (ns), for pacing.
    pub recv_ns: u64,
}

/// Per-symbol exchange state.
#[derive(Clone, Debug, Default)]
pub struct SymbolState {
    pub book: ExchangeBook,
    /// Binance: `u` of the last diff published.
    pub last_update_id: u64,
    /// Bybit: per-topic `u` of the last frame published, and the cross sequence.
    pub topic_u: HashMap<String, u64>,
    pub seq: u64,
    /// Exchange time of the last frame (ms).
    pub last_ms: u64,
    /// Our simulated orders on this symbol (order entry), matched against `book`.
    pub orders: super::orders::SymbolOrders,
}

pub(crate) struct HubInner {
    subs: Vec<(u64, Sender<Arc<TapeFrame>>)>,
    next_id: u64,
    pub symbols: HashMap<String, SymbolState>,
    /// Private-stream connections: every change to our orders, in the order it happened.
    private: Vec<(u64, Sender<Arc<OrderUpdate>>)>,
    /// Sequence stamped on each [`OrderUpdate`] (1, 2, …).
    update_seq: u64,
}

impl HubInner {
    /// Hands every queued order update to the private-stream connections (called whenever the hub
    /// lock is released, so updates leave in the order they were made, whoever made them).
    fn flush_private(&mut self) {
        for s in self.symbols.values_mut() {
            for mut u in s.orders.take_updates() {
                self.update_seq += 1;
                u.seq = self.update_seq;
                let u = Arc::new(u);
                self.private.retain(|(_, tx)| tx.send(u.clone()).is_ok());
            }
        }
    }
}

/// The hub lock; releasing it publishes the order updates made while it was held.
pub(crate) struct HubGuard<'a>(MutexGuard<'a, HubInner>);

impl std::ops::Deref for HubGuard<'_> {
    type Target = HubInner;
    fn deref(&self) -> &HubInner {
        &self.0
    }
}

impl std::ops::DerefMut for HubGuard<'_> {
    fn deref_mut(&mut self) -> &mut HubInner {
        &mut self.0
    }
}

impl Drop for HubGuard<'_> {
    fn drop(&mut self) {
        self.0.flush_private();
    }
}

/// Fan-out of tape frames to every connection, plus the books.
pub struct Hub {
    inner: Mutex<HubInner>,
    /// Set once a client has subscribed to something (capture playback waits for it).
    pub has_subscriber: AtomicBool,
    /// Set when the tape is exhausted.
    pub finished: AtomicBool,
    /// While set, the market stands still: no frame is published, so no resting order fills
    /// (tests that inspect the venue between two runs of the engine).
    pub paused: AtomicBool,
    /// Frames published so far.
    pub published: AtomicU64,
    /// The latency benchmark's probe (frame sends and order arrivals), when set.
    pub probe: OnceLock<Arc<super::probe::WireProbe>>,
    queue: usize,
}

impl Hub {
    pub fn new(queue: usize) -> Self {
        Self {
            inner: Mutex::new(HubInner {
                subs: Vec::new(),
                next_id: 0,
                symbols: HashMap::new(),
                private: Vec::new(),
                update_seq: 0,
            }),
            has_subscriber: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            published: AtomicU64::new(0),
            probe: OnceLock::new(),
            queue,
        }
    }

    /// Blocks while the market is paused (or until `stop`); returns how long it stood still, for
    /// the player to shift its schedule (no burst of overdue frames on resume).
    pub fn hold_while_paused(&self, stop: &AtomicBool) -> std::time::Duration {
        // Not paused (every frame but a test's few): one atomic load, no clock read.
        if !self.paused.load(Ordering::Acquire) {
            return std::time::Duration::ZERO;
        }
        let t = std::time::Instant::now();
        while self.paused.load(Ordering::Acquire) && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        t.elapsed()
    }

    /// Turns the latency probe on (before the engine connects); false if one was set already.
    pub fn set_probe(&self, probe: Arc<super::probe::WireProbe>) -> bool {
        self.probe.set(probe).is_ok()
    }

    pub(crate) fn lock(&self) -> HubGuard<'_> {
        // A panicked holder leaves plain data behind; keep serving rather than cascade.
        HubGuard(self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A private-stream connection's feed of every order update made from now on (unbounded: the
    /// private flow is a few messages per order).
    pub fn subscribe_private(&self) -> (u64, Receiver<Arc<OrderUpdate>>) {
        let (tx, rx) = unbounded();
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.private.push((id, tx));
        (id, rx)
    }

    pub fn unsubscribe_private(&self, id: u64) {
        self.lock().private.retain(|(i, _)| *i != id);
    }

    /// A new connection's feed of every frame published from now on.
    pub fn subscribe(&self) -> (u64, Receiver<Arc<TapeFrame>>) {
        let (tx, rx) = bounded(self.queue);
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.subs.push((id, tx));
        (id, rx)
    }

    pub fn unsubscribe(&self, id: u64) {
        self.lock().subs.retain(|(i, _)| *i != id);
    }

    /// Applies `update` to the symbol state and publishes the frame, atomically.
    pub fn publish(&self, symbol: &str, frame: TapeFrame, update: impl FnOnce(&mut SymbolState)) {
        let frame = Arc::new(frame);
        let mut g = self.lock();
        update(g.symbols.entry(symbol.to_string()).or_default());
        // Blocking send: a slow connection slows the tape (test infrastructure, not an exchange).
        g.subs.retain(|(_, tx)| tx.send(frame.clone()).is_ok());
        drop(g);
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `f` on a symbol's state under the hub lock (snapshots).
    pub fn with_symbol<R>(&self, symbol: &str, f: impl FnOnce(Option<&SymbolState>) -> R) -> R {
        let g = self.lock();
        f(g.symbols.get(symbol))
    }

    /// Seeds a symbol's state before playback.
    pub fn seed(&self, symbol: &str, state: SymbolState) {
        self.lock().symbols.insert(symbol.to_string(), state);
    }
}

/// Binance stream names as the mock keys them: every diff-depth variant (`@depth`, `@depth@100ms`,
/// `@depth@0ms`) is one stream; everything else is itself. Lower case.
pub fn binance_stream_key(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if let Some(i) = n.find("@depth") {
        let rest = &n[i + 6..];
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("{}@depth", &n[..i]);
        }
    }
    n
}

/// Which route a Binance stream belongs to (PROTOCOLS §A.1): `public` or `market`.
pub fn binance_route_of(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.contains("@depth") || n.contains("bookticker") || n.ends_with("@trade") {
        // hftbacktest receives @trade with depth on one connection; PROTOCOLS lists it as unclear.
        "public"
    } else {
        "market"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_and_routes() {
        assert_eq!(binance_stream_key("btcusdt@depth@0ms"), "btcusdt@depth");
        assert_eq!(binance_stream_key("BTCUSDT@depth@100ms"), "btcusdt@depth");
        assert_eq!(
            binance_stream_key("btcusdt@depth20@100ms"),
            "btcusdt@depth20@100ms"
        );
        assert_eq!(binance_route_of("btcusdt@bookTicker"), "public");
        assert_eq!(binance_route_of("btcusdt@aggTrade"), "market");
        assert_eq!(binance_route_of("btcusdt@markPrice@1s"), "market");
    }

    #[test]
    fn publish_reaches_subscribers_and_updates_state() {
        let hub = Hub::new(16);
        let (_, rx) = hub.subscribe();
        hub.publish(
            "BTCUSDT",
            TapeFrame {
                key: "k".into(),
                body: "{}".into(),
                is_diff: true,
                topic_u: 0,
                recv_ns: 0,
            },
            |s| s.last_update_id = 7,
        );
        assert_eq!(rx.try_recv().unwrap().key, "k");
        assert_eq!(hub.with_symbol("BTCUSDT", |s| s.unwrap().last_update_id), 7);
    }
}
