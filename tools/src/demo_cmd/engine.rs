//! The engine's threads wired to a target — the demo's mock exchange or a config's venue — and
//! watched until the run ends: feed, strategy and gateway threads, the monitor (metrics), the
//! supervisor, alerts, journals and the control API.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What the feed thread hands back.
struct FeedResult {
    frames: u64,
    connects: u64,
    resyncs: u64,
    gaps: u64,
    ring_drops: u64,
    last_error: Option<String>,
}

/// Where the engine's market data comes from and its orders go: the demo's mock exchange, or a
/// config's venue (`qalpha run`).
pub(crate) struct Target<'a> {
    pub plans: Vec<qalpha_feeds::live::VenuePlan>,
    /// The venue gateway's settings; `None`: the local paper venue (nothing is sent).
    pub gateway: Option<qalpha_venues::gateway::session::GatewayConfig>,
    pub venue: Venue,
    pub symbol: Symbol,
    /// The demo's mock exchange: the run stops when its capture has played.
    pub mock: Option<&'a qalpha_venues::mock::MockExchange>,
}

/// The engine's threads on `t` until `o.duration`, `stop`, the capture's end or a stall.
pub(crate) fn run_engine(
    o: &DemoOptions,
    decider: strategy::Decider,
    t: Target<'_>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Result<DemoReport> {
    let (plans, symbol) = (t.plans, t.symbol);
    let ws_conns = FeedRunner::connection_table(&plans)
        .iter()
        .filter(|c| c.transport == Transport::WebSocket)
        .count() as u64;
    // The threads' metric blocks (the monitor and the supervisor read them).
    let feed_metrics = Arc::new(FeedMetrics::default());
    let gw_metrics = Arc::new(GatewayMetrics::new(t.venue));
    let gw_cfg = t.gateway.map(|mut c| {
        c.metrics = Some(gw_metrics.clone());
        c
    });
    let (journal, mut journal_tx) = match &o.journal {
        Some(p) => {
            let (j, tx) = OrderJournal::start(p)?;
            j.system(
                "start",
                json!({"mode": o.mode, "strategy": o.strategy.name, "pid": std::process::id(),
                       "version": env!("CARGO_PKG_VERSION")}),
            );
            (Some(j), Some(tx))
        }
        None => (None, None),
    };
    let mut gw = match &gw_cfg {
        Some(c) => Venues::Gateway(Box::new(Gateway::connect(c.clone())?)),
        None => Venues::Paper(Box::new(PaperVenue::new(t.venue, fee_schedule(t.venue)))),
    };
    // Orders an earlier run left open are cancelled and the venue's position restored before the
    // strategy starts (`startup`); the journal is attached after, so it holds this run's orders.
    let restored = match &mut gw {
        Venues::Gateway(g) => Some(super::startup::reconcile(g, symbol)),
        Venues::Paper(_) => None,
    };

    match &mut gw {
        Venues::Gateway(g) => {
            if let Some(tx) = journal_tx.take() {
                g.set_journal(tx);
            }
        }
        Venues::Paper(_) => {}
    }
    // Paper mode needs no gateway thread: the paper venue runs on the strategy thread.
    let names: &[&str] = match gw_cfg {
        Some(_) => &["qa-feed", "qa-strategy", "qa-gateway"],
        None => &["qa-feed", "qa-strategy"],
    };
    let specs: Vec<ThreadSpec> = names
        .iter()
        .map(|n| ThreadSpec {
            name: n.to_string(),
            core: None,
            wait: o.wait,
        })
        .collect();
    let pl = Runtime::place(&specs);
    let (md_tx, mut md_rx) = ring::<MarketEvent>(o.md_ring, FullPolicy::DropNewest, pl[0].wait);
    // The recorder: one producer (the feed thread), the runner's connection table as the header.
    let rec_stop = Arc::new(AtomicBool::new(false));
    let (rec_tx, rec_handle) = match &o.record {
        Some(path) => {
            let (mut txs, handle) = recorder_ring(
                path.clone(),
                FeedRunner::connection_table(&plans),
                WriterOptions::default(),
                64 << 20,
                1,
                rec_stop.clone(),
            )
            .with_context(|| {
                format!(
                    "--record {}: cannot create the capture (is the directory there and writable?)",
                    path.display()
                )
            })?;
            (txs.pop(), Some(handle))
        }
        None => (None, None),
    };
    let mut runner = FeedRunner::new(
        &plans,
        LiveOptions {
            wait: pl[0].wait,
            metrics: Some(feed_metrics.clone()),
            ..Default::default()
        },
        md_tx,
        rec_tx,
    )?;
    // Operator and supervisor commands to the strategy thread (mock mode), over a channel; the
    // control API, if asked for, is a thread of its own.
    let (ctl_tx, ctl_rx) = crossbeam::channel::bounded(16);
    let status = Arc::new(std::sync::Mutex::new(json!({"risk_state": "starting"})));
    let control = match (&o.control, gw_cfg.is_some()) {
        (None, _) => None,
        (Some(_), false) => bail!("--control needs a venue gateway (not paper mode)"),
        (Some(cfg), true) => {
            let server =
                crate::control::ControlServer::start(cfg.clone(), status.clone(), ctl_tx.clone())?;
            eprintln!("control API on {}", server.addr);
            Some(server)
        }
    };
    let view = Arc::new(LiveView::default());
    let sources = Sources {
        feeds: vec![feed_metrics.clone()],
        gateways: match gw_cfg {
            Some(_) => vec![gw_metrics.clone()],
            None => Vec::new(),
        },
        strategy: Some((view.clone(), t.venue, symbol.as_str().to_string())),
        mode: format!("{:?}", o.mode).to_lowercase(),
        ..Default::default()
    };
    if let Some(tx) = &o.sources_out {
        let _ = tx.send(sources.clone());
    }
    let metrics_server = match &o.metrics {
        Some(addr) => {
            let m = MetricsServer::start(addr, sources.clone())?;
            eprintln!("metrics on http://{}/metrics", m.addr);
            Some(m)
        }
        None => None,
    };
    let mut rt = Runtime::new();

    let (feed_res_tx, feed_res_rx) = std::sync::mpsc::channel();
    let feed_stop = stop.clone();
    rt.spawn(&specs[0].name, pl[0], move |_| {
        runner.run(&feed_stop);
        let (live, r) = (runner.stats().clone(), &runner.router);
        let (bc, yc) = (r.binance.counters(), r.bybit.counters());
        let _ = feed_res_tx.send(FeedResult {
            frames: live.frames,
            connects: live.connects,
            resyncs: bc.resyncs + yc.resyncs,
            gaps: r.binance.sync_counters().gaps + r.bybit.sync_counters().gaps,
            ring_drops: bc.ring_drops + yc.ring_drops,
            last_error: live.last_error,
        });
    })?;

    let mut risk = RiskEngine::new(
        o.risk.clone(),
        o.risk_journal.as_deref(),
        qalpha_engine::clock::now_ns(),
    )
    .context("risk engine")?;
    // The instrument's lot step (from the venue's rules when the gateway loaded them; else
    // BTCUSDT's 0.001 on both venues): risk's position cuts are rounded to it.
    let step = match &gw {
        Venues::Gateway(g) => g.rules_of(symbol).map(|r| r.step),
        Venues::Paper(_) => None,
    };
    risk.set_step(t.venue, symbol, step.unwrap_or(Qty(100_000)));
    let mut strategy_params = o.strategy.params.clone();
    if let Some(ms) = decider.bar_ms() {
        strategy_params.insert("bar_ms".into(), ms.to_string());
    }
    let market = Market {
        venue: t.venue,
        symbol,
    };
    let mut q = Executor::with_risk(market, decider, risk);
    q.flatten_on_exit = o.flatten_on_exit;
    if let Some(r) = &restored {
        q.restore_position(r.size, r.entry);
    }
    let (strat_res_tx, strat_res_rx) = std::sync::mpsc::channel();
    let (gw_res_tx, gw_res_rx) = std::sync::mpsc::channel();
    let v = view.clone();
    match gw {
        Venues::Paper(paper) => {
            let keep = o.keep_commands;
            rt.spawn(&specs[1].name, pl[1], move |p| {
                let res = thread::with_paper(q, &mut md_rx, *paper, (keep, journal_tx), p.wait, &v);
                let _ = strat_res_tx.send(res);
            })?;
        }
        Venues::Gateway(g) => {
            let (cmd_tx, mut cmd_rx) =
                ring::<OrderCommand>(1024, FullPolicy::Backpressure, pl[1].wait);
            let (mut rep_tx, mut rep_rx) =
                ring::<ExecReport>(4096, FullPolicy::Backpressure, pl[2].wait);
            // The gateway runs until the strategy thread has wound down (its last cancels get
            // answered), not merely until `stop`.
            let gw_stop = Arc::new(AtomicBool::new(false));
            let strat_done = gw_stop.clone();
            let link = Some(thread::ControlLink::new(ctl_rx.clone(), status.clone()));
            let stall_at = o.stall_strategy_after.map(|d| Instant::now() + d);
            let slow = o.slow_strategy;
            rt.spawn(&specs[1].name, pl[1], move |p| {
                let res = thread::with_gateway(
                    q,
                    &mut md_rx,
                    &mut rep_rx,
                    cmd_tx,
                    p.wait,
                    thread::Side {
                        view: &v,
                        done: &strat_done,
                        control: link,
                        stall_at,
                        slow,
                    },
                );
                let _ = strat_res_tx.send(res);
            })?;
            rt.spawn(&specs[2].name, pl[2], move |p| {
                let stats = g.run(&mut cmd_rx, &mut rep_tx, p.wait, &gw_stop);
                let _ = gw_res_tx.send(GatewaySummary::from_gateway(stats));
            })?;
        }
    }

    let mut next_progress = o.progress_every.map(|d| Instant::now() + d);
    let mut tape_end: Option<Instant> = None;
    // systemd (Type=notify): ready now; watchdog pings while the strategy thread's heartbeat moves.
    let _ = crate::sdnotify::notify("READY=1\nSTATUS=trading");
    let mut watchdog = crate::sdnotify::Watchdog::new(o.stall_after);
    let mut supervisor = crate::monitor::Supervisor::new(o.stall_after);
    let mut stall = None;
    let mut faults = supervise::FaultWatch::new();
    let mut alerts = match o.alerts.sinks.is_empty() {
        true => None,
        false => Some(supervise::AlertWatch::start(o.alerts.clone())?),
    };
    while !stop.load(Ordering::Relaxed) && started.elapsed() < o.duration {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(w) = alerts.as_mut() {
            let drops = feed_metrics.disconnects.get() + gw_metrics.ws_reconnects.get();
            w.tick(&view, drops);
        }
        if let Some(j) = &journal {
            faults.look(&sources, j);
        }
        let stuck = supervisor.check(&sources.heartbeats());
        // systemd's watchdog pings stop with the strategy's heartbeat (or any stall).
        let beating = watchdog.tick(view.beats.load(Ordering::Relaxed));
        if let Some(thread) = stuck.or_else(|| (!beating).then(|| "strategy".to_string())) {
            sources.stalls.fetch_add(1, Ordering::Relaxed);
            let ctl = gw_cfg.is_some().then_some(&ctl_tx);
            let e = supervise::on_stall(&thread, ctl, &view, gw_cfg.as_ref(), symbol);
            if let Some(w) = &alerts {
                w.alerter.raise(crate::alerts::Alert::new(
                    &format!("stall:{thread}"),
                    crate::alerts::Severity::Critical,
                    &format!("the {thread} thread stalled: trading halted"),
                    &format!(
                        "Open orders cancelled over REST ({}); open at the venue after: {}. The engine stopped (exit 3).",
                        e.rest_error.as_deref().unwrap_or("done"),
                        e.venue_open_orders_after
                            .map_or("unknown".into(), |n| n.to_string())
                    ),
                ));
            }
            if let Some(j) = &journal {
                j.system("stall", json!(e));
            }
            stall = Some(e);
            break;
        }
        // The capture is finite: once it has played, give the engine a moment to drain, then stop.
        if t.mock.is_some_and(|m| m.tape_finished()) {
            let at = *tape_end.get_or_insert_with(Instant::now);
            if at.elapsed() >= Duration::from_millis(500) {
                if o.progress_every.is_some() {
                    eprintln!("demo: the capture has played to its end; stopping");
                }
                break;
            }
        }
        if let Some(at) = next_progress.filter(|at| Instant::now() >= *at) {
            eprintln!(
                "demo {:>5.1}s  events {}  orders {}  acks {}  fills {}  rejects {}  position {}",
                started.elapsed().as_secs_f64(),
                view.events.load(Ordering::Relaxed),
                view.orders.load(Ordering::Relaxed),
                view.acks.load(Ordering::Relaxed),
                view.fills.load(Ordering::Relaxed),
                view.rejects.load(Ordering::Relaxed),
                decimal(view.position.load(Ordering::Relaxed) as i128, 8),
            );
            next_progress = o.progress_every.map(|d| at + d);
        }
    }
    let _ = crate::sdnotify::notify("STOPPING=1\nSTATUS=cancelling open orders");
    stop.store(true, Ordering::Relaxed);
    let panicked = match stall {
        // A stuck thread may never return: wait a bounded time for the others.
        Some(ref e) => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(rt.join());
            });
            rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
                anyhow::Error::new(crate::ExitWith {
                    code: EXIT_STALLED,
                    why: format!(
                        "the {} thread stalled and did not stop; trading was halted: {e:?}",
                        e.thread
                    ),
                })
            })?
        }
        None => rt.join(),
    };
    drop(control);
    drop(metrics_server);
    let journal_records = match journal {
        Some(j) => {
            faults.look(&sources, &j);
            j.system(
                "stop",
                json!({
                    "why": if stall.is_some() { "stall" } else if tape_end.is_some() { "capture ended" }
                           else if stop.load(Ordering::Relaxed) && started.elapsed() < o.duration { "signal" }
                           else { "duration" },
                    "elapsed_s": started.elapsed().as_secs_f64(),
                    "orders": view.orders.load(Ordering::Relaxed),
                    "fills": view.fills.load(Ordering::Relaxed),
                    "risk_state": view.risk_state.get(),
                }),
            );
            Some(j.finish().context("--journal")?)
        }
        None => None,
    };
    let alert_counts = alerts.map(|mut w| {
        // A halt (or any state change) during the wind-down is alerted on its own, before the
        // summary: the threads have stopped, so the view holds their last word.
        w.tick(
            &view,
            feed_metrics.disconnects.get() + gw_metrics.ws_reconnects.get(),
        );
        w.alerter.raise(supervise::summary_alert(
            "summary:shutdown",
            "engine stopped: run summary",
            &view,
        ));
        AlertCounts::of(&w.alerter.finish())
    });
    if !panicked.is_empty() {
        bail!("engine thread(s) panicked: {panicked:?}");
    }
    let feed = feed_res_rx.recv().context("feed thread result")?;
    let st = strat_res_rx.recv().context("strategy thread result")?;
    let g = match st.paper {
        Some(p) => p,
        None => gw_res_rx.recv().context("gateway thread result")?,
    };
    // The feed thread has ended: its recorder ring is closed, the recorder drains it and finishes.
    rec_stop.store(true, Ordering::Relaxed);
    let recorded = match (rec_handle, &o.record) {
        (Some(h), Some(path)) => {
            let rs = h
                .join()
                .map_err(|_| anyhow::anyhow!("recorder thread panicked"))?
                .with_context(|| format!("--record {}", path.display()))?;
            Some(Recorded {
                file: path.clone(),
                records: rs.records,
            })
        }
        _ => None,
    };
    let (c, ledger, checker, risk) = (st.counters, st.ledger, st.checker, st.risk);
    Ok(DemoReport {
        stall,
        restored,
        alerts: alert_counts,
        journal_records,
        flattened: st.flattened.map(|p| decimal(p as i128, 8)),
        strategy: o.strategy.name.clone(),
        strategy_params,
        intents: c.intents,
        strategy_summary: st
            .summary
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        frames: feed.frames,
        events: checker.events,
        reconnects: feed.connects.saturating_sub(ws_conns),
        resyncs: feed.resyncs,
        gaps: feed.gaps,
        ring_drops: feed.ring_drops,
        book_checks: checker.checker.counters().checks,
        book_mismatches: checker.checker.counters().mismatches,
        orders: c.orders,
        acks: c.acks,
        fills: c.fills,
        rejects: c.rejects,
        cancels: g.cancels,
        canceled: c.canceled,
        expired: c.expired,
        duplicate_orders: g.duplicate_orders,
        orders_on_stale_book: c.orders_on_stale_book,
        duplicate_reports: c.ignored_reports,
        unknown_reports: c.unknown_reports,
        risk_rejects: c.risk_rejects,
        risk_orders: c.risk_orders,
        final_state: risk.final_state,
        halt_reason: risk.halt_reason,
        halted_at_ns: risk.halted_at_ns,
        final_positions: risk.final_positions,
        open_orders: risk.open_orders,
        risk_events: risk.risk_events,
        risk_transitions: risk.transitions,
        risk_rejected_by: risk.rejected_by,
        position: decimal(ledger.position as i128, 8),
        bought: decimal(ledger.bought as i128, 8),
        sold: decimal(ledger.sold as i128, 8),
        pnl: decimal(ledger.net(), 16),
        pnl_before_fees: decimal(ledger.gross(), 16),
        fees: decimal(ledger.fees as i128, 8),
        fee_model: match (t.mock.is_some(), t.venue) {
            (true, _) => "mock schedule, Binance USD-M regular: maker 0.02 %, taker 0.05 %".into(),
            (false, Venue::BinanceUsdm) => {
                "Binance USD-M regular (paper) or the venue's fills".into()
            }
            (false, Venue::BybitLinear) => "Bybit linear VIP0 (paper) or the venue's fills".into(),
        },
        mode: Some(o.mode),
        tick_to_order: Latency::of(&g.tick_to_wire),
        tick_to_answer: Latency::of(&g.tick_to_answer),
        ws_requests: g.ws_requests,
        rest_requests: g.rest_requests,
        reconciliations: g.reconciliations,
        private_reconnects: g.private_reconnects,
        transport_errors: g.transport_errors,
        clock_offset_ms: g.clock_offset_ns as f64 / 1e6,
        last_error: g.last_error.or(feed.last_error),
        speed: o.speed,
        tape_finished: tape_end.is_some(),
        elapsed_s: started.elapsed().as_secs_f64(),
        recorded,
        commands: st.commands,
    })
}

/// The paper venue's fee schedule for a venue.
fn fee_schedule(v: Venue) -> FeeSchedule {
    match v {
        Venue::BinanceUsdm => FeeSchedule::BINANCE_USDM_REGULAR,
        Venue::BybitLinear => FeeSchedule::BYBIT_LINEAR_VIP0,
    }
}

impl EngineArgs {
    /// The engine's options from these flags and `--config` with the `--set`s applied; the caller
    /// fills in where it runs.
    pub fn options(&self) -> Result<(DemoOptions, EngineConfig)> {
        let wait = WaitMode::parse(&self.wait)
            .with_context(|| format!("--wait {:?}: use spin, yield or park", self.wait))?;
        let cfg = EngineConfig::load_with_overrides(self.config.as_deref(), &self.sets)?;
        let risk = RiskConfig::from_engine(&cfg)?;
        let strategy = StrategySpec::from_config(&self.strategy, &cfg)
            .map_err(|e| anyhow::anyhow!("--strategy {}: {e}", self.strategy))?;
        let control = self
            .control
            .as_deref()
            .map(|addr| {
                crate::control::ControlConfig::from_args(
                    addr,
                    &self.control_allow,
                    self.control_audit.clone(),
                )
            })
            .transpose()?;
        let o = DemoOptions {
            strategy,
            risk,
            risk_journal: self.risk_journal.clone(),
            wait,
            json: self.json.clone(),
            record: self.record.clone(),
            metrics: self.metrics.clone(),
            alerts: crate::alerts::AlertConfig::from_table(cfg.alerts.as_ref())?,
            journal: self.journal.clone(),
            flatten_on_exit: self.flatten_on_exit,
            stall_after: self.stall_after,
            control,
            ..Default::default()
        };
        Ok((o, cfg))
    }
}

/// Prints a run's summary; a stall becomes exit code 3.
pub(crate) fn finish_run(rep: &DemoReport) -> Result<()> {
    println!("{}", summary_text(rep));
    println!("{}", json!(rep));
    if let Some(e) = &rep.stall {
        return Err(crate::ExitWith {
            code: EXIT_STALLED,
            why: format!(
                "the {} thread stalled: trading halted, open orders cancelled ({} open at the venue after)",
                e.thread,
                e.venue_open_orders_after
                    .map_or("unknown".into(), |n| n.to_string())
            ),
        }
        .into());
    }
    Ok(())
}
