//! The demo's strategy thread: market events in, the executor's orders out, in one of two shapes.
//!
//! - **Mock mode** ([`with_gateway`]): orders go to the gateway thread over the order ring, its
//!   reports come back over the report ring; the executor reads the wall clock.
//! - **Paper mode** ([`with_paper`]): the paper venue runs inline on this thread, on **event time**
//!   — there is no network hop to simulate, so a hop would only add scheduling noise. For each
//!   market event, in order:
//!
//!   ```text
//!   clock = max(clock, ev.recv_ns)            the executor's (and risk's) time
//!   paper.on_market(ev) → reports → executor  a print reached our resting orders before we saw it
//!   executor.on_market(ev) → commands
//!   loop: commands → paper.submit → reports → executor (+ risk's actions) → commands, until none
//!   ```
//!
//!   Nothing here reads the wall clock, so the run is a function of the events it received: its
//!   recorded capture (`--record`), backtested with `--fill top` and zero latencies
//!   (`backtest::tick_sim`, which follows the same order step for step), sends the same orders.
//!   `PaperVenue::submit` stamps its reports with the wall clock; the executor never reads a
//!   report's stamp (it uses its own clock), so that does not leak in.
//!
//! Hot path (per event): ring pops and pushes, the executor, the paper venue's fill model; the
//! report buffer is reused. Keeping commands for the caller (`keep_commands`) appends to a vector.

use std::sync::atomic::{AtomicBool, Ordering};

use qalpha_risk::RiskState;
use std::time::{Duration, Instant};

use qalpha_engine::event::MarketEvent;
use qalpha_engine::journal::{JournalEntry, JournalTx};
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::replay::EventConsumer;
use qalpha_engine::ring::{ring, Consumer, FullPolicy, Producer};
use qalpha_engine::runtime::WaitMode;
use qalpha_feeds::replay::ReplayConsumer;
use qalpha_venues::paper::PaperVenue;

use super::executor::{ExecCounters, Executor};
use super::ledger::Ledger;
use super::parts::{GatewaySummary, RiskSummary};
use crate::backtest::tick_sim::SETTLE_ROUNDS;

/// What the strategy thread publishes for the progress line, the monitor (`/metrics`) and the
/// supervisor (its heartbeat): relaxed stores, no locks.
pub(super) type LiveView = qalpha_engine::metrics::StrategyMetrics;

/// Publishes the thread's state (after each busy turn; a handful of relaxed stores).
fn publish(v: &LiveView, q: &Executor, events: u64, md_level: usize) {
    let c = &q.counters;
    v.events.store(events, Ordering::Relaxed);
    v.orders.store(c.orders, Ordering::Relaxed);
    v.acks.store(c.acks, Ordering::Relaxed);
    v.fills.store(c.fills, Ordering::Relaxed);
    v.rejects.store(c.rejects, Ordering::Relaxed);
    v.intents.store(c.intents, Ordering::Relaxed);
    v.risk_rejects.store(c.risk_rejects, Ordering::Relaxed);
    v.position.store(q.ledger.position, Ordering::Relaxed);
    v.pnl.set(q.ledger.net() as f64 / 1e16);
    v.open_orders.set(q.live_orders() as i64);
    v.md_ring_level.set(md_level as i64);
    let state = q.risk.as_ref().map_or(RiskState::Active, |r| r.state());
    let why = q.risk.as_ref().and_then(|r| r.halt_reason());
    v.halt_reason.set(qalpha_risk::SwitchKind::to_gauge(why));
    v.risk_state.set(match state {
        RiskState::Active => 0,
        RiskState::Reducing => 1,
        RiskState::Halted => 2,
    });
    if let Some([f, a, r]) = q.model_outputs() {
        v.model_forecast.set(f);
        v.model_action.set(a);
        v.model_regime.set(r);
    }
}

/// The control API's side on the strategy thread: operator commands in, the status snapshot out.
/// Looked at when the thread is idle and every 1,024 busy iterations (never per event); the status is
/// rebuilt at most five times a second.
pub(super) struct ControlLink {
    pub(super) rx: crossbeam::channel::Receiver<crate::control::ControlCmd>,
    pub(super) status: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    n: u64,
    published: Option<Instant>,
    /// The event count at the last look, and when it last changed (feed liveness for `/status`).
    seen_events: u64,
    last_event: Instant,
}

impl ControlLink {
    pub(super) fn new(
        rx: crossbeam::channel::Receiver<crate::control::ControlCmd>,
        status: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    ) -> Self {
        Self {
            rx,
            status,
            n: 0,
            published: None,
            seen_events: 0,
            last_event: Instant::now(),
        }
    }

    fn step(
        &mut self,
        q: &mut Executor,
        out: &mut Producer<OrderCommand>,
        events: u64,
        idle: bool,
    ) {
        use crate::control::ControlCmd;
        self.n += 1;
        if !idle && !self.n.is_multiple_of(1024) {
            return;
        }
        if events != self.seen_events {
            self.seen_events = events;
            self.last_event = Instant::now();
        }
        let now = qalpha_engine::clock::now_ns();
        while let Ok(cmd) = self.rx.try_recv() {
            if let Some(r) = q.risk.as_mut() {
                match cmd {
                    // The risk engine's operator halt cancels the open orders and flattens.
                    ControlCmd::Halt | ControlCmd::Flatten => r.halt(now),
                    ControlCmd::Resume => r.resume(now),
                }
            }
            q.run_risk_actions(now, out);
            self.published = None;
        }
        if self
            .published
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.published = Some(Instant::now());
        let v = status_json(q, events, self.last_event.elapsed());
        if let Ok(mut s) = self.status.lock() {
            *s = v;
        }
    }
}

/// The `GET /status` document.
fn status_json(q: &Executor, events: u64, since_event: Duration) -> serde_json::Value {
    let c = q.counters;
    let risk = q.risk.as_ref();
    let positions: std::collections::BTreeMap<String, String> = risk
        .map(|r| {
            r.ledger()
                .positions()
                .map(|((v, s), p)| (format!("{}:{s}", v.name()), p.size.to_string()))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "risk_state": risk.map_or("active", |r| r.state().name()),
        "halt_reason": risk.and_then(|r| r.halt_reason()).map(|s| s.name()),
        "conservative": risk.is_some_and(|r| r.conservative()),
        "positions": positions,
        "pnl": {
            "net": super::ledger::decimal(q.ledger.net(), 16),
            "fees": super::ledger::decimal(q.ledger.fees as i128, 8),
            "equity": risk.map(|r| r.ledger().equity().to_string()),
        },
        "open_orders": q.live_orders(),
        "orders": c.orders,
        "fills": c.fills,
        "rejects": c.rejects,
        "connections": {
            "market_data_events": events,
            "last_event_ms_ago": since_event.as_millis() as u64,
        },
        "updated_ms": qalpha_engine::clock::now_ns() / 1_000_000,
    })
}

/// What the strategy thread hands back.
pub(super) struct StrategyResult {
    pub(super) counters: ExecCounters,
    pub(super) ledger: Ledger,
    pub(super) checker: ReplayConsumer,
    pub(super) risk: RiskSummary,
    pub(super) summary: Vec<(&'static str, String)>,
    /// Paper mode: the paper venue's side of the run (it ran on this thread).
    pub(super) paper: Option<GatewaySummary>,
    /// Paper mode with `keep_commands`: every command the paper venue received, in order.
    pub(super) commands: Vec<OrderCommand>,
    /// The position the shutdown flattened (`--flatten-on-exit`).
    pub(super) flattened: Option<i64>,
}

impl StrategyResult {
    fn of(
        mut q: Executor,
        checker: ReplayConsumer,
        paper: Option<GatewaySummary>,
        commands: Vec<OrderCommand>,
    ) -> Self {
        let risk = RiskSummary::of(&mut q);
        Self {
            counters: q.counters,
            ledger: q.ledger,
            checker,
            risk,
            summary: q.strategy_summary(),
            paper,
            commands,
            flattened: q.flattened,
        }
    }
}

fn book_checker() -> ReplayConsumer {
    ReplayConsumer {
        check_books: true,
        ..Default::default()
    }
}

/// What the strategy thread shares with the rest of the demo besides its rings.
pub(super) struct Side<'a> {
    /// Counters for the progress line.
    pub(super) view: &'a LiveView,
    /// Set when the strategy thread has wound down (the gateway may stop).
    pub(super) done: &'a AtomicBool,
    /// Operator and supervisor commands, if any.
    pub(super) control: Option<ControlLink>,
    /// Fault injection (tests): from this moment the thread stops working and beating until the
    /// feed closes.
    pub(super) stall_at: Option<Instant>,
    /// Fault injection (tests): time spent on every market event.
    pub(super) slow: Option<Duration>,
}

/// Mock mode: the strategy thread against the gateway thread. Runs until the feed's ring is closed
/// and drained, then winds down (bounded: 2 s for the venue's answers) and sets `done`, which
/// lets the gateway thread stop.
pub(super) fn with_gateway(
    mut q: Executor,
    md_rx: &mut Consumer<MarketEvent>,
    rep_rx: &mut Consumer<ExecReport>,
    mut cmd_tx: Producer<OrderCommand>,
    wait: WaitMode,
    side: Side<'_>,
) -> StrategyResult {
    let Side {
        view,
        done,
        control: mut ctl,
        stall_at,
        slow,
    } = side;
    let mut checker = book_checker();
    let mut spins = 0u32;
    let mut turns = 0u64;
    loop {
        if stall_at.is_some_and(|t| Instant::now() >= t) {
            while !md_rx.is_abandoned() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let mut busy = false;
        while let Ok(r) = rep_rx.pop() {
            q.on_report(&r);
            busy = true;
        }
        if busy {
            q.run_risk_actions(qalpha_engine::clock::now_ns(), &mut cmd_tx);
        }
        match md_rx.pop() {
            Ok(ev) => {
                checker.on_event(&ev);
                q.on_market(&ev, &mut cmd_tx);
                busy = true;
                if let Some(d) = slow {
                    std::thread::sleep(d);
                }
            }
            Err(_) if md_rx.is_abandoned() => break,
            Err(_) => {}
        }
        if let Some(c) = ctl.as_mut() {
            c.step(&mut q, &mut cmd_tx, checker.events, !busy);
        }
        turns += 1;
        if !busy || turns.is_multiple_of(1024) {
            view.beats.fetch_add(1, Ordering::Relaxed);
        }
        if busy {
            spins = 0;
            publish(view, &q, checker.events, md_rx.slots());
        } else {
            wait.idle(&mut spins);
        }
    }
    // The feed stopped: settle (a bar strategy goes flat), cancel what rests and wait (bounded)
    // for the answers.
    q.begin_shutdown();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !q.settled() && Instant::now() < deadline {
        q.wind_down(&mut cmd_tx);
        while let Ok(r) = rep_rx.pop() {
            q.on_report(&r);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    publish(view, &q, checker.events, md_rx.slots());
    drop(cmd_tx);
    done.store(true, Ordering::Relaxed);
    StrategyResult::of(q, checker, None, Vec::new())
}

/// The paper venue inline, on event time (see the module docs).
struct InlinePaper {
    venue: PaperVenue,
    cmd_tx: Producer<OrderCommand>,
    cmd_rx: Consumer<OrderCommand>,
    reports: Vec<ExecReport>,
    /// Event time: the largest `recv_ns` seen (a REST snapshot is stamped on another thread and
    /// may be older than the frames routed before it; the clock never goes back).
    clock: u64,
    commands: Option<Vec<OrderCommand>>,
    /// The order journal (commands as submitted, reports as applied).
    journal: Option<JournalTx>,
}

impl InlinePaper {
    fn new(venue: PaperVenue, keep_commands: bool, journal: Option<JournalTx>) -> Self {
        // One thread pushes and pops: the ring must hold every command of one step (a handful),
        // or the back-pressured push would wait for itself.
        let (cmd_tx, cmd_rx) = ring(4096, FullPolicy::Backpressure, WaitMode::Yield);
        Self {
            venue,
            cmd_tx,
            cmd_rx,
            reports: Vec::with_capacity(64),
            clock: 0,
            commands: keep_commands.then(|| Vec::with_capacity(4096)),
            journal,
        }
    }

    /// One market event: the venue, then the strategy, then the orders until none is left.
    fn on_event(&mut self, q: &mut Executor, ev: &MarketEvent) {
        self.clock = self.clock.max(ev.recv_ns);
        q.set_time(self.clock);
        self.reports.clear();
        self.venue.on_market(ev, &mut self.reports);
        self.apply(q);
        q.on_market(ev, &mut self.cmd_tx);
        self.exchange(q);
    }

    /// The reports to the executor, each followed by what risk asks for.
    fn apply(&mut self, q: &mut Executor) {
        for r in self.reports.drain(..) {
            if let Some(j) = self.journal.as_mut() {
                j.push(JournalEntry::Report(r));
            }
            q.on_report(&r);
            q.run_risk_actions(self.clock, &mut self.cmd_tx);
        }
    }

    /// Commands to the venue and its answers back, round by round (every command of a round is
    /// submitted before any answer is applied), until a round sends nothing.
    fn exchange(&mut self, q: &mut Executor) {
        loop {
            let mut sent = false;
            while let Ok(cmd) = self.cmd_rx.pop() {
                sent = true;
                if let Some(log) = self.commands.as_mut() {
                    log.push(cmd);
                }
                if let Some(j) = self.journal.as_mut() {
                    j.push(JournalEntry::Command {
                        at_ns: self.clock,
                        cmd,
                    });
                }
                self.venue.submit(&cmd, &mut self.reports);
            }
            if !sent {
                return;
            }
            self.apply(q);
        }
    }

    /// The data ended: settle (a bar strategy goes flat) and cancel what rests, in at most as
    /// many rounds as a backtest's end (`tick_sim::SETTLE_ROUNDS`), on the last event's time.
    fn shut_down(&mut self, q: &mut Executor) {
        q.begin_shutdown();
        for _ in 0..SETTLE_ROUNDS {
            if q.settled() {
                break;
            }
            q.wind_down(&mut self.cmd_tx);
            self.exchange(q);
        }
    }
}

/// Paper mode: the strategy thread with the paper venue inline, until the feed's ring is closed
/// and drained; then it settles.
pub(super) fn with_paper(
    mut q: Executor,
    md_rx: &mut Consumer<MarketEvent>,
    venue: PaperVenue,
    (keep_commands, journal): (bool, Option<JournalTx>),
    wait: WaitMode,
    view: &LiveView,
) -> StrategyResult {
    let mut checker = book_checker();
    let mut paper = InlinePaper::new(venue, keep_commands, journal);
    let mut spins = 0u32;
    loop {
        match md_rx.pop() {
            Ok(ev) => {
                checker.on_event(&ev);
                paper.on_event(&mut q, &ev);
                spins = 0;
                publish(view, &q, checker.events, md_rx.slots());
            }
            Err(_) if md_rx.is_abandoned() => break,
            Err(_) => {
                view.beats.fetch_add(1, Ordering::Relaxed);
                wait.idle(&mut spins);
            }
        }
    }
    paper.shut_down(&mut q);
    publish(view, &q, checker.events, md_rx.slots());
    let summary = GatewaySummary::from_paper(paper.venue.stats);
    let commands = paper.commands.unwrap_or_default();
    StrategyResult::of(q, checker, Some(summary), commands)
}
