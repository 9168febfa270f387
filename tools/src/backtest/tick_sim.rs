//! Tick-mode backtests: a capture replayed through the engine's own decode, book, strategy, executor
//! and risk code, against a simulated venue, on one simulated clock.
//!
//! ```text
//! capture record (t) ──► VenueRouter (decode + book) ──► events
//!        venue side at t:   trades fill resting orders (queue model), depth moves queues
//!        strategy side at t + feed latency:   Executor::on_market ──► commands
//! command (t) ──► venue at t + order latency: fill model against the book as it is then
//! reports ──► strategy at venue time + order latency: Executor::on_report (ledger, risk, strategy)
//! ```
//!
//! Everything happens in simulated time, in order (a heap keyed by time, then arrival): the executor
//! reads that clock ([`Executor::set_time`]) and numbers its orders from the data's start, so the
//! same capture, config and seed give the same run. Latencies ([`Latency`]) are constant or drawn
//! from recorded samples with the seed.
//!
//! The venue ([`Fill`]):
//! - `book` (default): the fill model (`qalpha_venues::fill`) against the feed's rebuilt order book —
//!   market and marketable orders walk the book (slippage through the levels), resting orders queue
//!   behind the displayed size and fill on the prints that reach them (queue model `RiskAverse`),
//!   maker/taker fees;
//! - `top`: the paper venue itself (`qalpha_venues::paper`: top-of-book matching on the engine's
//!   events) — what a paper run does, so a paper run's capture backtests to the same orders.
//!
//! Funding is paid at each funding time announced by the mark-price stream, on the position then.
//! At the end the strategy settles (bar strategies go flat), resting orders are cancelled and the
//! position is marked at the last mid.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_engine::order::{
    ClientIdGen, ClientOrderId, ExecKind, ExecReport, OrderAction, OrderCommand,
};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::ring::{ring, Consumer, FullPolicy, Producer};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::{Price, Qty, Symbol, Venue};
use qalpha_feeds::book::OrderBook;
use qalpha_feeds::replay::VenueRouter;
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::RiskConfig;
use qalpha_venues::fill::{FeeSchedule, FillModel, RejectReason, RiskAverse};
use qalpha_venues::paper::PaperVenue;

use super::account::{Account, OrderRecord};
use super::latency::{Latency, SplitMix64};
use crate::demo_cmd::executor::{Executor, Market};
use crate::demo_cmd::strategy::Decider;

/// Shutdown steps at the end of the data (cancel what rests, trade the settling target), at most.
/// A paper run settles in as many (`demo --mode paper`), so both end with the same orders.
pub const SETTLE_ROUNDS: usize = 16;

/// How the simulated venue matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The fill model against the rebuilt order book (depth, queues, prints).
    Book,
    /// The paper venue: top of book and prints, as a paper run.
    Top,
}

/// A tick backtest's settings.
#[derive(Clone, Debug)]
pub struct TickSimConfig {
    pub venue: Venue,
    pub symbol: Symbol,
    pub fees: FeeSchedule,
    pub risk: RiskConfig,
    /// Exchange → strategy.
    pub feed_latency: Latency,
    /// Strategy → exchange, and the answer back.
    pub order_latency: Latency,
    pub seed: u64,
    pub fill: Fill,
    /// Equity sampling period, ms.
    pub sample_ms: u64,
}

/// What a tick backtest produced.
pub struct TickSimOutput {
    pub account: Account,
    pub executor: Executor,
    /// Every command that reached the venue, in order (the replay-equivalence test compares these).
    pub commands: Vec<OrderCommand>,
    pub events: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    pub venue_rejects: u64,
    /// The mid at each equity sample `(ms, mid)` (the baselines are marked on the same prices).
    pub marks: Vec<(u64, Price)>,
}

/// Something due at a simulated time.
#[derive(Clone, Copy, Debug)]
enum Due {
    /// A market event reaches the strategy.
    Deliver(MarketEvent),
    /// An order command reaches the venue.
    Submit(OrderCommand),
    /// A venue answer reaches the strategy.
    Report(ExecReport),
}

/// The heap entry: (time, arrival sequence) order, so equal times keep their arrival order.
struct Entry {
    at: u64,
    seq: u64,
    due: Due,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The venue: the book-based fill model, or the paper venue.
enum SimVenue {
    Book {
        model: Box<FillModel<RiskAverse>>,
        stale: bool,
        used: HashSet<ClientOrderId>,
    },
    Top(Box<PaperVenue>),
}

impl SimVenue {
    /// A market event at the venue (the book in `book` already reflects it).
    fn on_market(
        &mut self,
        ev: &MarketEvent,
        book: Option<&OrderBook>,
        now: u64,
        out: &mut Vec<ExecReport>,
    ) {
        match self {
            SimVenue::Top(p) => p.on_market(ev, out),
            SimVenue::Book { model, stale, .. } => match ev.payload {
                MarketPayload::Trade(t) => {
                    if matches!(
                        t.kind,
                        qalpha_engine::event::TradeKind::Market
                            | qalpha_engine::event::TradeKind::Aggregated
                    ) {
                        out.extend_from_slice(model.on_trade(t.px, t.qty, t.aggressor, now));
                    }
                }
                MarketPayload::BookTop(_) => {
                    if let Some(b) = book {
                        model.sync_with_book(b);
                    }
                    *stale = false;
                }
                MarketPayload::BookStale { .. } => *stale = true,
                MarketPayload::BookSynced { .. } => *stale = false,
                _ => {}
            },
        }
    }

    fn submit(
        &mut self,
        cmd: &OrderCommand,
        book: Option<&OrderBook>,
        now: u64,
        out: &mut Vec<ExecReport>,
    ) {
        match self {
            SimVenue::Top(p) => p.submit(cmd, out),
            SimVenue::Book { model, stale, used } => match cmd.action {
                OrderAction::New(o) => {
                    let refuse = |reason: i32| ExecReport {
                        reason,
                        recv_ns: now,
                        ..ExecReport::about(&o, ExecKind::Rejected)
                    };
                    if !used.insert(o.client_id) {
                        out.push(refuse(RejectReason::DuplicateClientId.code(o.venue)));
                    } else if *stale || book.is_none() {
                        out.push(refuse(-1));
                    } else if let Some(b) = book {
                        out.extend_from_slice(model.submit(o, b, now));
                    }
                }
                OrderAction::Cancel { client_id } => {
                    if let Ok(r) = model.cancel(client_id, now) {
                        out.extend_from_slice(r);
                    }
                }
                OrderAction::Amend {
                    client_id,
                    price,
                    qty,
                } => {
                    if let Some(b) = book {
                        if let Ok(r) = model.amend(client_id, price, qty, b, now) {
                            out.extend_from_slice(r);
                        }
                    }
                }
                OrderAction::CancelAll => out.extend_from_slice(model.cancel_all(now)),
            },
        }
    }
}

/// The rebuilt book of `symbol` on `venue` (Bybit: its deepest subscribed topic).
fn book_of(router: &VenueRouter, venue: Venue, symbol: Symbol) -> Option<&OrderBook> {
    match venue {
        Venue::BinanceUsdm => router.binance.book(symbol).map(|b| b.book()),
        Venue::BybitLinear => [1000u16, 500, 200, 50, 1]
            .into_iter()
            .find_map(|d| router.bybit.book(symbol, d))
            .map(|b| b.book()),
    }
}

/// The simulation's state.
struct Sim<'a> {
    cfg: &'a TickSimConfig,
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    rng: SplitMix64,
    exec: Executor,
    venue: SimVenue,
    account: Account,
    tx: Producer<OrderCommand>,
    rx: Consumer<OrderCommand>,
    reports: Vec<ExecReport>,
    commands: Vec<OrderCommand>,
    now: u64,
    next_sample_ms: u64,
    /// Funding announced by the mark stream: (time ms, rate), paid once its time passes.
    funding: Option<(u64, Qty)>,
    /// The last mid the strategy saw.
    mid: Option<Price>,
    marks: Vec<(u64, Price)>,
    venue_rejects: u64,
}

impl Sim<'_> {
    fn push(&mut self, at: u64, due: Due) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            due,
        }));
    }

    /// Runs everything due up to and including `t`.
    fn until(&mut self, t: u64, router: &VenueRouter) {
        while self.heap.peek().is_some_and(|Reverse(e)| e.at <= t) {
            let Some(Reverse(e)) = self.heap.pop() else {
                break;
            };
            self.now = self.now.max(e.at);
            self.exec.set_time(self.now);
            match e.due {
                Due::Deliver(ev) => self.deliver(&ev),
                Due::Submit(cmd) => self.at_venue(&cmd, router),
                Due::Report(r) => self.report(&r),
            }
        }
    }

    fn deliver(&mut self, ev: &MarketEvent) {
        if ev.venue == self.cfg.venue && ev.symbol == self.cfg.symbol {
            if let MarketPayload::BookTop(t) | MarketPayload::Quote(t) = ev.payload {
                if t.bid_px.raw() > 0 && t.ask_px > t.bid_px {
                    let mid = Price((t.bid_px.raw() + t.ask_px.raw()) / 2);
                    self.account.mark(self.cfg.symbol, mid);
                    self.mid = Some(mid);
                }
            }
        }
        self.exec.on_market(ev, &mut self.tx);
        self.sample();
        self.flush_commands();
    }

    fn report(&mut self, r: &ExecReport) {
        if r.kind == ExecKind::Rejected && r.reason != 0 {
            self.venue_rejects += 1;
        }
        if matches!(r.kind, ExecKind::PartialFill | ExecKind::Fill) && r.last_qty.raw() > 0 {
            self.account.fill(
                r.symbol,
                self.now / 1_000_000,
                r.side,
                r.last_px,
                r.last_qty,
                r.fee,
            );
        }
        self.exec.on_report(r);
        self.exec.run_risk_actions(self.now, &mut self.tx);
        self.flush_commands();
    }

    fn at_venue(&mut self, cmd: &OrderCommand, router: &VenueRouter) {
        let book = book_of(router, cmd.venue, cmd.symbol);
        self.reports.clear();
        let mut out = std::mem::take(&mut self.reports);
        self.venue.submit(cmd, book, self.now, &mut out);
        let back = self.now + self.cfg.order_latency.sample(&mut self.rng);
        for r in &out {
            self.push(back, Due::Report(*r));
        }
        self.reports = out;
    }

    fn flush_commands(&mut self) {
        while let Ok(cmd) = self.rx.pop() {
            if let OrderAction::New(o) = cmd.action {
                self.account.orders.push(OrderRecord {
                    ts_ns: cmd.decided_ns,
                    symbol: o.symbol,
                    side: o.side,
                    qty: o.qty,
                    price: o.price,
                    reduce_only: o.reduce_only,
                    rejected: None,
                });
            }
            self.commands.push(cmd);
            let at = self.now + self.cfg.order_latency.sample(&mut self.rng);
            self.push(at, Due::Submit(cmd));
        }
    }

    fn sample(&mut self) {
        let ms = self.now / 1_000_000;
        if ms >= self.next_sample_ms {
            self.account.sample(ms);
            if let Some(mid) = self.mid {
                self.marks.push((ms, mid));
            }
            self.next_sample_ms = ms - ms % self.cfg.sample_ms + self.cfg.sample_ms;
        }
    }

    /// One market event at `t`: the venue sees it, the strategy gets it after the feed latency,
    /// and everything now due happens before the next event reaches the venue. With zero latencies
    /// that is the paper run's order, event by event (`demo --mode paper`).
    fn step(&mut self, ev: &MarketEvent, t: u64, router: &VenueRouter) {
        self.venue_event(ev, router);
        let at = t + self.cfg.feed_latency.sample(&mut self.rng);
        self.push(at, Due::Deliver(*ev));
        self.until(t, router);
    }

    /// The venue side of one event at its receive time.
    fn venue_event(&mut self, ev: &MarketEvent, router: &VenueRouter) {
        if ev.venue != self.cfg.venue || ev.symbol != self.cfg.symbol {
            return;
        }
        if let MarketPayload::MarkPrice(m) = ev.payload {
            if let Some((at, rate)) = self.funding {
                if ev.exch_ms >= at {
                    self.account.funding(self.cfg.symbol, rate, m.mark_px);
                    self.funding = None;
                }
            }
            if m.next_funding_ms > ev.exch_ms {
                self.funding = Some((m.next_funding_ms, m.funding_rate));
            }
        }
        let book = book_of(router, ev.venue, ev.symbol);
        self.reports.clear();
        let mut out = std::mem::take(&mut self.reports);
        self.venue.on_market(ev, book, ev.recv_ns, &mut out);
        if !out.is_empty() {
            let back = ev.recv_ns + self.cfg.order_latency.sample(&mut self.rng);
            for r in &out {
                self.push(back, Due::Report(*r));
            }
        }
        self.reports = out;
    }
}

/// Runs `decider` over the captures in `paths` (time order) with risk `cfg.risk`.
pub fn run(
    paths: &[PathBuf],
    decider: Decider,
    cfg: &TickSimConfig,
    journal: Option<&std::path::Path>,
) -> Result<TickSimOutput> {
    if paths.is_empty() {
        bail!("no capture to backtest");
    }
    run_source(Source::Captures(paths), decider, cfg, journal)
}

/// Runs `decider` over market events that did not come from a capture (Binance archive CSVs,
/// [`super::csv_events`]): the venue must be the paper venue (`Fill::Top`) — there is no depth.
pub fn run_events(
    events: Vec<MarketEvent>,
    decider: Decider,
    cfg: &TickSimConfig,
    journal: Option<&std::path::Path>,
) -> Result<TickSimOutput> {
    if events.is_empty() {
        bail!("no events to backtest");
    }
    if cfg.fill != Fill::Top {
        bail!("archive CSVs carry no order book depth: backtest them with --fill top");
    }
    run_source(Source::Events(events), decider, cfg, journal)
}

/// Where the market comes from.
enum Source<'a> {
    Captures(&'a [PathBuf]),
    Events(Vec<MarketEvent>),
}

fn run_source(
    source: Source<'_>,
    decider: Decider,
    cfg: &TickSimConfig,
    journal: Option<&std::path::Path>,
) -> Result<TickSimOutput> {
    let start_ns = match &source {
        Source::Captures(paths) => {
            let first_reader = CaptureReader::open(&paths[0])
                .with_context(|| format!("cannot read capture {}", paths[0].display()))?;
            let t = first_reader.records().next().map_or(0, |r| r.recv_ns);
            t
        }
        Source::Events(evs) => evs[0].recv_ns,
    };
    let risk = RiskEngine::new(cfg.risk.clone(), journal, start_ns).context("risk engine")?;
    let mut exec = Executor::with_risk(
        Market {
            venue: cfg.venue,
            symbol: cfg.symbol,
        },
        decider,
        risk,
    );
    exec.set_ids(ClientIdGen::new(start_ns / 1_000_000));
    exec.set_time(start_ns);
    let (tx, rx) = ring(1 << 12, FullPolicy::Backpressure, WaitMode::Yield);
    let venue = match cfg.fill {
        Fill::Book => SimVenue::Book {
            model: Box::new(FillModel::new(cfg.venue, cfg.symbol, cfg.fees, RiskAverse)),
            stale: true,
            used: HashSet::new(),
        },
        Fill::Top => SimVenue::Top(Box::new(PaperVenue::new(cfg.venue, cfg.fees))),
    };
    let initial = qalpha_risk::Money::from_qty(cfg.risk.initial_equity);
    let mut sim = Sim {
        cfg,
        heap: BinaryHeap::new(),
        seq: 0,
        rng: SplitMix64::new(cfg.seed),
        exec,
        venue,
        account: Account::new(cfg.venue, initial),
        tx,
        rx,
        reports: Vec::with_capacity(64),
        commands: Vec::new(),
        now: start_ns,
        next_sample_ms: 0,
        funding: None,
        mid: None,
        marks: Vec::new(),
        venue_rejects: 0,
    };
    sim.account.sample(start_ns / 1_000_000);
    let mut router = VenueRouter::new();
    let mut events: Vec<MarketEvent> = Vec::with_capacity(256);
    let mut n_events = 0u64;
    let mut last_ns = start_ns;
    let mut done = 0u64;
    let mut progress;
    match &source {
        Source::Captures(paths) => {
            // A progress line on long runs (drawn only when stderr is a terminal): records done.
            let mut total = 0u64;
            for path in paths.iter() {
                let r = CaptureReader::open(path)
                    .with_context(|| format!("cannot read capture {}", path.display()))?;
                total += r.records().count() as u64;
            }
            progress = super::report_dir::Progress::new(total, "backtest");
            for path in paths.iter() {
                let reader = CaptureReader::open(path)
                    .with_context(|| format!("cannot read capture {}", path.display()))?;
                router.begin_file(reader.connections());
                for rec in reader.records() {
                    done += 1;
                    if done.is_multiple_of(4096) {
                        progress.set(done);
                    }
                    let t = rec.recv_ns.max(last_ns);
                    sim.until(t, &router);
                    events.clear();
                    router.route(&rec, &mut events);
                    // Only records that produce events move the clock: the strategy's clock is the
                    // time of the events it has seen (a paper run cannot see a record that produced
                    // none, and a REST snapshot is stamped on another thread, possibly before the
                    // frames routed ahead of it).
                    if !events.is_empty() {
                        last_ns = t;
                    }
                    for ev in &events {
                        n_events += 1;
                        sim.step(ev, t, &router);
                    }
                }
            }
        }
        Source::Events(evs) => {
            progress = super::report_dir::Progress::new(evs.len() as u64, "backtest");
            for ev in evs {
                done += 1;
                if done.is_multiple_of(4096) {
                    progress.set(done);
                }
                let t = ev.recv_ns.max(last_ns);
                last_ns = t;
                sim.until(t, &router);
                n_events += 1;
                sim.step(ev, t, &router);
            }
        }
    }
    router.finish();
    progress.set(done);
    progress.finish();
    sim.until(u64::MAX, &router);
    // Settle: the strategy's end-of-data intent, then cancel what rests; answers take their time.
    sim.exec.begin_shutdown();
    for _ in 0..SETTLE_ROUNDS {
        if sim.exec.settled() && sim.heap.is_empty() {
            break;
        }
        sim.exec.wind_down(&mut sim.tx);
        sim.flush_commands();
        let next = sim.heap.peek().map_or(sim.now, |Reverse(e)| e.at);
        sim.until(next.max(sim.now), &router);
    }
    sim.until(u64::MAX, &router);
    let end_ms = sim.now / 1_000_000;
    sim.account.sample(end_ms);
    Ok(TickSimOutput {
        first_ms: start_ns / 1_000_000,
        last_ms: end_ms,
        events: n_events,
        venue_rejects: sim.venue_rejects,
        marks: sim.marks,
        commands: sim.commands,
        account: sim.account,
        executor: sim.exec,
    })
}
