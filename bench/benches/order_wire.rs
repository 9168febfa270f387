//! Order command → bytes written on the socket, per venue (Binance ws-fapi, Bybit Trade WS) and per
//! path (WebSocket API vs REST keep-alive), through the real gateway (`Gateway::submit`) against the
//! mock exchange on 127.0.0.1 over TLS.
//!
//! Each order is a new post-only BTCUSDT buy 200 USDT under the best bid, so it rests and never
//! trades. What one timed `submit` covers depends on the path:
//!
//! - `*_ws_write`: validate (tracker) + encode + sign + hand the frame to the TLS socket (rustls
//!   encrypts, `write` to the kernel). The answer comes later, on `poll_io`.
//! - `*_rest_round_trip`: the whole blocking HTTPS request on the keep-alive connection — encode,
//!   sign, write, the mock's matching and answer, parse. A **round trip**, not comparable to the
//!   WebSocket write; compare it with the WebSocket's `tick_to_answer` printed after the group.
//!
//! Only the `submit` calls are timed (`iter_custom`). After each one, untimed, the bench busy-polls
//! the gateway (`poll_io` with a zero timeout, as the engine's spin mode does) until the venue's answer
//! to that order was processed, so every order leaves on an idle connection — one order per tick, not
//! a burst — and the gateway's `tick_to_answer` is one clean round trip, not a queue. Every
//! [`CANCEL_ALL_EVERY`] orders a cancel-all (REST on both venues: neither WebSocket API has one) empties
//! the mock's book of resting orders, again untimed, so the venue-side lists stay small.
//!
//! After the criterion group the gateway's own histograms from `finish()` are printed per variant:
//! `tick_to_wire` (the command's `tick_recv_ns`, stamped right before `submit`, → bytes handed to the
//! socket; on REST the gateway stamps it *before* the request is written, so it is encode + sign only)
//! and `tick_to_answer` (→ the venue's answer processed).
//!
//! With two cores or more, the mock exchange (all its threads) runs on the last core and the gateway
//! on the one before: on a shared core, the mock thread woken by the order's `write` preempts the
//! gateway inside the syscall and the "write" then includes the mock's work.
//!
//! The private stream is connected on both paths (as in live trading): without it the gateway would
//! poll open orders over REST every 250 ms.
//!
//! Run: `cargo bench -p qalpha-bench --bench order_wire` (≈ 30 s; `-- --quick` for a shorter run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{
    ClientIdGen, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand, OrderType, TimeInForce,
};
use qalpha_engine::replay::Speed;
use qalpha_engine::{Price, Qty, Side, Symbol, Venue, FIXED_SCALE};
use qalpha_venues::gateway::session::{Gateway, GatewayConfig, GatewayStats, Via};
use qalpha_venues::mock::{
    FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec, TEST_API_KEY,
    TEST_API_SECRET,
};
use qalpha_venues::sign::Signer;

/// Orders placed between two cancel-alls (the most that rest at the mock at once).
const CANCEL_ALL_EVERY: u64 = 100;
/// How far under the best bid the post-only buys rest, in USDT (the synthetic walk never gets there
/// within one cancel-all cycle).
const UNDER_BID: i64 = 200;
/// The longest the bench waits for one answer before counting the order as unanswered.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// One variant: a mock exchange and a connected gateway, kept for the whole criterion run.
struct Rig {
    name: &'static str,
    venue: Venue,
    symbol: Symbol,
    _mock: MockExchange,
    cert_dir: PathBuf,
    gw: Option<Gateway>,
    ids: ClientIdGen,
    out: Vec<ExecReport>,
    bid: Price,
    /// New orders submitted / since the last cancel-all.
    sent: u64,
    since_cancel: u64,
    rejected: u64,
    unanswered: u64,
    cancel_alls: u64,
}

impl Rig {
    fn start(
        name: &'static str,
        venue: Venue,
        via: Via,
        (mock_core, gateway_core): (Option<usize>, Option<usize>),
    ) -> Self {
        let cert_dir =
            std::env::temp_dir().join(format!("qa-order-wire-{}-{name}", std::process::id()));
        let opts = MockOptions {
            venue,
            source: MarketSource::Synthetic(SyntheticSpec::default()),
            listen: "127.0.0.1:0".parse().expect("literal address"),
            tls: true,
            cert_out: Some(cert_dir.clone()),
            speed: Speed::Factor(1.0),
            faults: FaultSpec::default(),
            seed: 11,
        };
        // The mock's threads inherit the mask of the thread that starts it: started from a thread
        // pinned to the last core, the whole exchange stays there, and the gateway (this thread,
        // pinned to the core before) is not preempted by the mock it has just woken with a write.
        let mock = std::thread::spawn(move || {
            pin(mock_core);
            MockExchange::start(opts)
        })
        .join()
        .expect("mock start thread")
        .unwrap_or_else(|e| panic!("{name}: the mock exchange did not start: {e}"));
        pin(gateway_core);
        let symbol = Symbol::parse("BTCUSDT").expect("literal symbol");
        let mut rig = Self {
            name,
            venue,
            symbol,
            cert_dir,
            gw: None,
            ids: ClientIdGen::from_clock(),
            out: Vec::with_capacity(64),
            bid: Price(0),
            sent: 0,
            since_cancel: 0,
            rejected: 0,
            unanswered: 0,
            cancel_alls: 0,
            _mock: mock,
        };
        rig.bid = rig.best_bid(Duration::from_secs(10));

        let m = &rig._mock;
        let base = format!("https://{}", m.addr);
        let ws = format!("wss://{}", m.addr);
        let mut cfg = GatewayConfig::new(venue, &base, Signer::new(TEST_API_KEY, TEST_API_SECRET));
        cfg.ca_file = m.ca_file.clone();
        cfg.via = via;
        cfg.symbols = vec![symbol];
        // The bench sends far faster than a venue account may (Bybit: 10 creates/s); the mock has
        // no limits, and the write path — not the client-side throttle — is what is measured.
        cfg.client_rate_limits = false;
        let (order_ws, private_ws) = match venue {
            Venue::BinanceUsdm => (format!("{ws}/ws-fapi/v1"), format!("{ws}/private")),
            Venue::BybitLinear => (format!("{ws}/v5/trade"), format!("{ws}/v5/private")),
        };
        cfg.order_ws_url = Some(order_ws);
        cfg.private_ws_url = Some(private_ws);
        let gw = Gateway::connect(cfg)
            .unwrap_or_else(|e| panic!("{name}: the gateway did not connect to the mock: {e}"));
        assert!(
            gw.private_ready(),
            "{name}: private stream not ready at start: {:?}",
            gw.stats.last_error
        );
        if via == Via::Ws {
            assert!(
                gw.order_ws_ready(),
                "{name}: order WebSocket not ready at start: {:?}",
                gw.stats.last_error
            );
        }
        rig.gw = Some(gw);
        rig
    }

    /// The mock's best bid (its market thread seeds the book shortly after start).
    fn best_bid(&self, wait: Duration) -> Price {
        let start = Instant::now();
        loop {
            let bid = self._mock.hub.with_symbol(self.symbol.as_str(), |s| {
                s.and_then(|s| s.book.best_bid()).map(|(px, _)| px)
            });
            match bid {
                Some(px) => return px,
                None if start.elapsed() < wait => std::thread::sleep(Duration::from_millis(20)),
                None => panic!("{}: the mock's book was never seeded", self.name),
            }
        }
    }

    fn gw(&mut self) -> &mut Gateway {
        self.gw.as_mut().expect("gateway taken only by finish")
    }

    /// The next command: a fresh client id, post-only, far under the touch.
    fn next_order(&mut self) -> OrderCommand {
        let o = NewOrder {
            venue: self.venue,
            symbol: self.symbol,
            client_id: self.ids.next_id(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::PostOnly,
            price: Price(self.bid.raw() - UNDER_BID * FIXED_SCALE),
            qty: Qty::parse("0.010").expect("literal quantity"),
            reduce_only: false,
        };
        self.command(OrderAction::New(o))
    }

    fn command(&self, action: OrderAction) -> OrderCommand {
        let now = now_ns();
        OrderCommand {
            venue: self.venue,
            symbol: self.symbol,
            tick_recv_ns: now,
            decided_ns: now,
            action,
        }
    }

    /// `iters` timed submits, each followed (untimed) by the wait for its answer.
    fn run(&mut self, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            // Built before the clock starts; `tick_recv_ns` is then re-stamped so the gateway's
            // tick-to-wire starts where this timer does.
            let mut cmd = self.next_order();
            let mut out = std::mem::take(&mut self.out);
            cmd.tick_recv_ns = now_ns();
            let t = Instant::now();
            self.gw().submit(&cmd, &mut out);
            timed += t.elapsed();
            self.out = out;
            self.sent += 1;
            self.since_cancel += 1;
            self.settle();
        }
        timed
    }

    /// Busy-polls until every order sent so far was answered, then cancels all every
    /// [`CANCEL_ALL_EVERY`] orders.
    fn settle(&mut self) {
        let start = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        loop {
            let answered = self.gw().stats.tick_to_answer.len() + self.unanswered;
            if answered >= self.sent {
                break;
            }
            if start.elapsed() > ANSWER_WAIT {
                self.unanswered += self.sent - answered;
                break;
            }
            self.gw().poll_io(Some(Duration::ZERO), &mut out);
        }
        self.count(&mut out);
        if self.since_cancel >= CANCEL_ALL_EVERY {
            self.cancel_all(&mut out);
        }
        self.out = out;
    }

    /// Cancels every resting order and waits until the private stream reported them all.
    fn cancel_all(&mut self, out: &mut Vec<ExecReport>) {
        let cmd = self.command(OrderAction::CancelAll);
        self.gw().submit(&cmd, out);
        self.cancel_alls += 1;
        self.since_cancel = 0;
        let start = Instant::now();
        while self.gw().open_orders().next().is_some() && start.elapsed() < ANSWER_WAIT {
            self.gw().poll_io(Some(Duration::from_millis(1)), out);
        }
        self.count(out);
        // Follow the synthetic market so the orders stay far from the touch.
        self.bid = self.best_bid(Duration::ZERO);
    }

    fn count(&mut self, out: &mut Vec<ExecReport>) {
        self.rejected += out
            .iter()
            .filter(|r| matches!(r.kind, ExecKind::Rejected | ExecKind::Expired))
            .count() as u64;
        out.clear();
    }

    fn finish(mut self) -> (Self, GatewayStats) {
        let mut out = Vec::new();
        self.cancel_all(&mut out);
        let stats = self.gw.take().expect("finished once").finish();
        let _ = std::fs::remove_dir_all(&self.cert_dir);
        (self, stats)
    }
}

/// (mock core, gateway core): the last two cores this thread may run on, when there are two or more.
fn cores() -> (Option<usize>, Option<usize>) {
    match core_affinity::get_core_ids() {
        Some(ids) if ids.len() >= 2 => (Some(ids[ids.len() - 1].id), Some(ids[ids.len() - 2].id)),
        _ => (None, None),
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("order_wire: could not pin to core {id}; running unpinned");
        }
    }
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

fn print_stats(rig: &Rig, s: &GatewayStats) {
    println!(
        "{:<26} tick_to_wire p50 {:>7.1} µs p99 {:>7.1} µs | tick_to_answer p50 {:>7.1} µs p99 {:>7.1} µs \
         | n {} ws {} rest {} fallbacks {} rejected {} unanswered {} cancel-alls {} errors {:?}",
        rig.name,
        us(&s.tick_to_wire, 0.50),
        us(&s.tick_to_wire, 0.99),
        us(&s.tick_to_answer, 0.50),
        us(&s.tick_to_answer, 0.99),
        s.tick_to_wire.len(),
        s.ws_requests,
        s.rest_requests,
        s.rest_fallbacks,
        rig.rejected,
        rig.unanswered,
        rig.cancel_alls,
        s.last_error,
    );
}

fn bench(c: &mut Criterion) {
    let variants = [
        ("binance_ws_write", Venue::BinanceUsdm, Via::Ws),
        ("binance_rest_round_trip", Venue::BinanceUsdm, Via::Rest),
        ("bybit_ws_write", Venue::BybitLinear, Via::Ws),
        ("bybit_rest_round_trip", Venue::BybitLinear, Via::Rest),
    ];
    // Read before anything is pinned: a pinned thread sees only its own core.
    let cores = cores();
    let mut g = c.benchmark_group("order_wire");
    // Each timed submit carries an untimed answer wait (tens of µs to a REST round trip): criterion
    // sizes its samples by wall time, so these bound the run at ≈ 5 s per variant.
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut finished = Vec::new();
    for (name, venue, via) in variants {
        // Started on first use, so a filtered run (`-- bybit`) starts only the mocks it needs.
        let mut rig: Option<Rig> = None;
        g.bench_function(name, |b| {
            let r = rig.get_or_insert_with(|| Rig::start(name, venue, via, cores));
            b.iter_custom(|iters| r.run(iters))
        });
        if let Some(r) = rig {
            finished.push(r.finish());
        }
    }
    g.finish();
    if !finished.is_empty() {
        println!(
            "\norder_wire: the gateway's own histograms (tick = submit call; one order in flight; \
             mock/gateway cores {:?})",
            cores
        );
        for (rig, stats) in &finished {
            print_stats(rig, stats);
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
