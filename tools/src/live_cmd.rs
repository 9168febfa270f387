//! `qalpha record` (live feeds → capture) and `qalpha mock-exchange` (the loopback exchange).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::WriterOptions;
use qalpha_engine::config::{EngineConfig, FeedThreadConfig, VenueConfig};
use qalpha_engine::event::MarketEvent;
use qalpha_engine::replay::EventConsumer;
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_feeds::live::{plan_venue, recorder_ring, FeedRunner, LiveOptions, VenuePlan};
use qalpha_feeds::replay::ReplayConsumer;

/// Command-line overrides for `record` (they win over the config file).
#[derive(Clone, Debug, Default)]
pub struct RecordOverrides {
    pub venue: Option<String>,
    pub symbols: Option<Vec<String>>,
    pub streams: Option<Vec<String>>,
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub wait: Option<WaitMode>,
}

/// Merges flags into the config: with `--venue`, the flags describe that venue (replacing a
/// configured entry of the same venue, or adding one); other flags then apply to it.
pub fn effective_config(cfg: Option<EngineConfig>, o: &RecordOverrides) -> Result<EngineConfig> {
    let mut cfg = cfg.unwrap_or_default();
    if let Some(v) = &o.venue {
        let idx = cfg.venues.iter().position(|x| &x.venue == v);
        let base = idx.map(|i| cfg.venues[i].clone()).unwrap_or(VenueConfig {
            venue: v.clone(),
            ws_url: None,
            rest_url: None,
            symbols: Vec::new(),
            streams: Vec::new(),
            feed_thread: None,
            ca_file: None,
            snapshot_limit: None,
        });
        match idx {
            Some(i) => cfg.venues[i] = base,
            None => cfg.venues.push(base),
        }
    }
    if cfg.venues.is_empty() {
        bail!("nothing to record: give --config FILE or --venue binance|bybit --symbols A,B");
    }
    let targets: Vec<usize> = match &o.venue {
        Some(v) => cfg
            .venues
            .iter()
            .enumerate()
            .filter(|(_, x)| &x.venue == v)
            .map(|(i, _)| i)
            .collect(),
        None => (0..cfg.venues.len()).collect(),
    };
    for i in targets {
        let vc = &mut cfg.venues[i];
        if let Some(s) = &o.symbols {
            vc.symbols = s.clone();
        }
        if let Some(s) = &o.streams {
            vc.streams = s.clone();
        }
        if let Some(u) = &o.ws_url {
            vc.ws_url = Some(u.clone());
        }
        if let Some(u) = &o.rest_url {
            vc.rest_url = Some(u.clone());
        }
        if let Some(c) = &o.ca_file {
            vc.ca_file = Some(c.clone());
        }
        if vc.symbols.is_empty() {
            bail!("venue {}: no symbols (use --symbols A,B)", vc.venue);
        }
    }
    if cfg.feed_threads.is_empty() {
        cfg.feed_threads.push(FeedThreadConfig {
            name: "feed-0".into(),
            core: None,
            wait: "yield".into(),
        });
    }
    if let Some(w) = o.wait {
        for t in &mut cfg.feed_threads {
            t.wait = w.to_string();
        }
    }
    let text = toml_roundtrip_check(&cfg);
    EngineConfig::parse(&text, "effective config").map_err(Into::into)
}

/// Re-validates the merged config through the same checks as a file (keeps one validator).
fn toml_roundtrip_check(cfg: &EngineConfig) -> String {
    let mut s = String::new();
    for t in &cfg.feed_threads {
        s.push_str(&format!(
            "[[feed_threads]]\nname = {:?}\nwait = {:?}\n",
            t.name, t.wait
        ));
        if let Some(c) = t.core {
            s.push_str(&format!("core = {c}\n"));
        }
    }
    for v in &cfg.venues {
        s.push_str(&format!(
            "[[venues]]\nvenue = {:?}\nsymbols = {:?}\nstreams = {:?}\n",
            v.venue, v.symbols, v.streams
        ));
        for (k, val) in [
            ("ws_url", &v.ws_url),
            ("rest_url", &v.rest_url),
            ("feed_thread", &v.feed_thread),
        ] {
            if let Some(x) = val {
                s.push_str(&format!("{k} = {x:?}\n"));
            }
        }
        if let Some(c) = &v.ca_file {
            s.push_str(&format!("ca_file = {:?}\n", c.display().to_string()));
        }
        if let Some(l) = v.snapshot_limit {
            s.push_str(&format!("snapshot_limit = {l}\n"));
        }
    }
    if let Some(r) = cfg.recorder.rotate_bytes {
        s.push_str(&format!("[recorder]\nrotate_bytes = {r}\n"));
    }
    s
}

/// The `record` summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RecordReport {
    pub files: Vec<PathBuf>,
    pub records_written: u64,
    pub recorder_drops: u64,
    pub frames: u64,
    pub decoded: u64,
    pub malformed: u64,
    pub connects: u64,
    pub disconnects: u64,
    /// Connections lost before they opened (TCP, TLS or WebSocket handshake failed).
    pub connect_failures: u64,
    pub liveness_timeouts: u64,
    /// Planned connection rotations (before Binance's 24 h cut-off) completed without a gap.
    pub rotations: u64,
    pub snapshot_requests: u64,
    pub snapshot_failures: u64,
    pub gaps: u64,
    pub syncs: u64,
    pub resyncs: u64,
    pub events: u64,
    pub book_checks: u64,
    pub binance_book_checks: u64,
    pub bybit_book_checks: u64,
    pub book_mismatches: u64,
    /// Duplicate or late diffs and trades dropped.
    pub duplicates: u64,
    pub ring_drops: u64,
    pub last_error: Option<String>,
    pub elapsed_s: f64,
}

struct Counting(ReplayConsumer);
impl EventConsumer for Counting {
    fn on_event(&mut self, ev: &MarketEvent) {
        self.0.on_event(ev)
    }
}

/// Records until `duration` passes or `stop` is set (Ctrl-C).
pub fn record(
    cfg: &EngineConfig,
    out: PathBuf,
    duration: Option<Duration>,
    stop: Arc<AtomicBool>,
    opts: LiveOptions,
) -> Result<RecordReport> {
    let started = Instant::now();
    // Group venues by feed thread.
    let mut groups: Vec<(FeedThreadConfig, Vec<VenuePlan>)> = cfg
        .feed_threads
        .iter()
        .map(|t| (t.clone(), Vec::new()))
        .collect();
    for v in &cfg.venues {
        let plan = plan_venue(v).map_err(|e| anyhow::anyhow!("venue {}: {e}", v.venue))?;
        let t = v
            .feed_thread
            .as_deref()
            .unwrap_or(&cfg.feed_threads[0].name);
        let g = groups
            .iter_mut()
            .find(|g| g.0.name == t)
            .context("feed thread")?;
        g.1.push(plan);
    }
    groups.retain(|g| !g.1.is_empty());
    // One connection table across threads: each thread's ids start after the previous thread's.
    let mut tables = Vec::new();
    let mut offset = 0u16;
    for g in &groups {
        let t = FeedRunner::connection_table(&g.1);
        tables.push(offset);
        offset += t.len() as u16;
    }
    let mut all_conns = Vec::new();
    for (g, off) in groups.iter().zip(&tables) {
        for mut c in FeedRunner::connection_table(&g.1) {
            c.id += off;
            all_conns.push(c);
        }
    }
    let wopts = WriterOptions {
        rotate_bytes: cfg.recorder.rotate_bytes,
        ..Default::default()
    };
    let rec_stop = Arc::new(AtomicBool::new(false));
    let (rec_txs, rec_handle) = recorder_ring(
        out.clone(),
        all_conns,
        wopts,
        64 << 20,
        groups.len(),
        rec_stop.clone(),
    )
    .with_context(|| format!("cannot record to {}", out.display()))?;

    let specs: Vec<ThreadSpec> = groups
        .iter()
        .map(|g| ThreadSpec {
            name: format!("qa-{}", g.0.name),
            core: g.0.core,
            wait: EngineConfig::wait_of(&g.0),
        })
        .collect();
    let placements = Runtime::place(&specs);
    let mut rt = Runtime::new();
    let (res_tx, res_rx) = std::sync::mpsc::channel();
    let mut consumers = Vec::new();
    for ((((g, off), rec_tx), spec), pl) in groups
        .into_iter()
        .zip(tables)
        .zip(rec_txs)
        .zip(&specs)
        .zip(placements)
    {
        let (ev_tx, mut ev_rx) = ring::<MarketEvent>(1 << 16, FullPolicy::DropNewest, pl.wait);
        let plans = g.1;
        // Shift this thread's connection ids into the shared table.
        let mut runner = FeedRunner::new_with_offset(
            &plans,
            off,
            LiveOptions {
                wait: pl.wait,
                ..opts.clone()
            },
            ev_tx,
            Some(rec_tx),
        )?;
        let feed_stop = stop.clone();
        let res_tx = res_tx.clone();
        rt.spawn(&spec.name, pl, move |_| {
            runner.run(&feed_stop);
            let _ = res_tx.send((
                runner.stats().clone(),
                runner.router.decode_stats(),
                runner.router.binance.sync_counters(),
                runner.router.binance.counters().clone(),
                {
                    let b = runner.router.bybit.sync_counters();
                    (
                        b.gaps,
                        b.syncs,
                        runner.router.bybit.counters().resyncs,
                        b.duplicates,
                    )
                },
            ));
        })?;
        consumers.push(std::thread::spawn(move || {
            let mut c = Counting(ReplayConsumer {
                check_books: true,
                ..Default::default()
            });
            loop {
                match ev_rx.pop() {
                    Ok(ev) => c.on_event(&ev),
                    Err(_) if ev_rx.is_abandoned() => break,
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            c.0
        }));
    }
    drop(res_tx);
    // systemd (Type=notify): ready, then watchdog pings from this loop (the process is alive and
    // serving; the feed threads reconnect on their own).
    let _ = crate::sdnotify::notify("READY=1\nSTATUS=recording");
    let mut watchdog = crate::sdnotify::Watchdog::new(Duration::from_secs(5));
    let mut turns = 0u64;
    // Duration / Ctrl-C.
    while !stop.load(Ordering::Relaxed) {
        turns += 1;
        watchdog.tick(turns);
        if duration.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = crate::sdnotify::notify("STOPPING=1");
    let panicked = rt.join();
    if !panicked.is_empty() {
        bail!("feed thread(s) panicked: {panicked:?}");
    }
    let mut rep = RecordReport::default();
    for (live, dec, sync, fc, bybit) in res_rx.iter() {
        rep.frames += live.frames;
        rep.connects += live.connects + live.rotations + live.rotations_abandoned;
        rep.disconnects += live.disconnects;
        rep.connect_failures += live.connect_failures;
        rep.liveness_timeouts += live.liveness_timeouts;
        rep.rotations += live.rotations;
        rep.snapshot_requests += live.snapshot_requests;
        rep.snapshot_failures += live.snapshot_failures;
        rep.decoded += dec.decoded;
        rep.malformed += dec.malformed;
        rep.gaps += sync.gaps + bybit.0;
        rep.syncs += sync.syncs + bybit.1;
        rep.resyncs += fc.resyncs + bybit.2;
        rep.ring_drops += fc.ring_drops;
        rep.duplicates += sync.duplicates + fc.duplicate_trades + bybit.3;
        if live.last_error.is_some() {
            rep.last_error = live.last_error;
        }
    }
    for c in consumers {
        if let Ok(c) = c.join() {
            rep.events += c.events;
            rep.book_checks += c.checker.counters().checks;
            rep.binance_book_checks += c.checker.counters().checks_by_venue
                [qalpha_engine::event::Venue::BinanceUsdm as usize];
            rep.bybit_book_checks += c.checker.counters().checks_by_venue
                [qalpha_engine::event::Venue::BybitLinear as usize];
            rep.book_mismatches += c.checker.counters().mismatches;
        }
    }
    rec_stop.store(true, Ordering::Relaxed);
    let rs = rec_handle
        .join()
        .map_err(|_| anyhow::anyhow!("recorder thread panicked"))?
        .context("recorder")?;
    rep.files = rs.files;
    rep.records_written = rs.records;
    rep.elapsed_s = started.elapsed().as_secs_f64();
    Ok(rep)
}

/// `qalpha record` arguments.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// Engine config (TOML: feed threads, venues, symbols, streams).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Venue to record (binance or bybit); with it, the flags below describe that venue.
    #[arg(long)]
    pub venue: Option<String>,
    /// Symbols, comma-separated (BTCUSDT,ETHUSDT).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// Streams per symbol, comma-separated (Binance: depth@0ms,bookTicker,trade,aggTrade,markPrice@1s; Bybit: orderbook.50,orderbook.1,publicTrade,tickers).
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<String>>,
    /// WebSocket base URL (e.g. wss://127.0.0.1:9443 for the mock exchange).
    #[arg(long)]
    pub ws_url: Option<String>,
    /// REST base URL (depth snapshots).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Trust this CA (PEM) instead of the public roots (the mock writes DIR/ca.pem).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Stop after this long (e.g. 15s, 2m); otherwise Ctrl-C ends the recording.
    #[arg(long, value_parser = parse_dur)]
    pub duration: Option<Duration>,
    /// Output capture file.
    #[arg(long)]
    pub out: PathBuf,
    /// Reconnect a connection that received nothing for this long.
    #[arg(long, value_parser = parse_dur, default_value = "30s")]
    pub liveness_timeout: Duration,
    /// Feed thread wait mode override: spin, yield or park.
    #[arg(long)]
    pub wait: Option<String>,
}

/// `qalpha mock-exchange` arguments.
#[derive(clap::Args, Debug)]
pub struct MockArgs {
    /// Venue protocol to speak: binance or bybit.
    #[arg(long)]
    pub venue: String,
    /// Serve this capture (.qcap) of the venue.
    #[arg(long, conflicts_with = "synthetic")]
    pub capture: Option<PathBuf>,
    /// Serve a generated random-walk market.
    #[arg(long)]
    pub synthetic: bool,
    /// Symbol of the synthetic market.
    #[arg(long, default_value = "BTCUSDT")]
    pub symbol: String,
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Write the CA certificate clients must trust to DIR/ca.pem.
    #[arg(long)]
    pub cert_out: Option<PathBuf>,
    /// Serve plaintext ws:// and http:// (for tcpdump captures).
    #[arg(long)]
    pub no_tls: bool,
    /// Pace: 1 (recorded/real time), N (N times faster) or max.
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// Faults to inject. Kinds: disconnect-every=DUR, drop-diff=P, duplicate=P, reorder=P, malformed=P, fragment=P, stall=DUR@DUR, ping-timeout.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Random seed (synthetic market and fault draws).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Stop after this long; otherwise run until Ctrl-C.
    #[arg(long, value_parser = parse_dur)]
    pub duration: Option<Duration>,
}

/// A `--duration`-style flag (`500ms`, `15s`, `2m`, `1h`), for clap.
pub(crate) fn parse_dur(s: &str) -> Result<Duration, String> {
    qalpha_venues::mock::faults::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: use e.g. 500ms, 15s, 2m, 1h"))
}

/// Installs a handler for Ctrl-C (SIGINT), SIGTERM (what systemd sends) and SIGHUP that sets the
/// returned flag: the commands that watch it stop new orders, cancel what rests and exit 0
/// (`tools/tests/shutdown.rs`).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed)) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
    stop
}

/// Runs `qalpha record`.
pub fn run_record(a: RecordArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => Some(EngineConfig::load(p)?),
        None => None,
    };
    let wait = match &a.wait {
        Some(w) => Some(
            WaitMode::parse(w).with_context(|| format!("--wait {w:?}: use spin, yield or park"))?,
        ),
        None => None,
    };
    let o = RecordOverrides {
        venue: a.venue.clone(),
        symbols: a.symbols.clone(),
        streams: a.streams.clone(),
        ws_url: a.ws_url.clone(),
        rest_url: a.rest_url.clone(),
        ca_file: a.ca_file.clone(),
        wait,
    };
    let cfg = effective_config(cfg, &o)?;
    let stop = ctrl_c_flag();
    let opts = LiveOptions {
        liveness_timeout: a.liveness_timeout,
        ..Default::default()
    };
    let rep = record(&cfg, a.out, a.duration, stop, opts)?;
    println!("{}", serde_json::to_string(&rep)?);
    Ok(())
}

/// Runs `qalpha mock-exchange` until Ctrl-C or `--duration`.
pub fn run_mock(a: MockArgs) -> Result<()> {
    use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec};
    let venue = qalpha_engine::event::Venue::from_name(&a.venue)
        .with_context(|| format!("--venue {:?}: use binance or bybit", a.venue))?;
    let source = match (&a.capture, a.synthetic) {
        (Some(p), false) => MarketSource::Capture(p.clone()),
        (None, true) => MarketSource::Synthetic(SyntheticSpec {
            symbol: a.symbol.clone(),
            seed: a.seed,
            ..Default::default()
        }),
        _ => bail!("give exactly one of --capture FILE.qcap or --synthetic"),
    };
    let speed = match a.speed.as_str() {
        "max" => qalpha_engine::replay::Speed::Max,
        s => qalpha_engine::replay::Speed::parse(s)
            .with_context(|| format!("--speed {s:?}: use 1, N or max"))?,
    };
    let mock = MockExchange::start(MockOptions {
        venue,
        source,
        listen: a.listen,
        tls: !a.no_tls,
        cert_out: a.cert_out.clone(),
        speed,
        faults: FaultSpec::parse(&a.faults)?,
        seed: a.seed,
    })?;
    let scheme = if a.no_tls {
        ("ws", "http")
    } else {
        ("wss", "https")
    };
    println!(
        "{}",
        serde_json::json!({
            "venue": venue.name(),
            "listen": mock.addr.to_string(),
            "ws_url": format!("{}://{}", scheme.0, mock.addr),
            "rest_url": format!("{}://{}", scheme.1, mock.addr),
            "ca_file": mock.ca_file.as_ref().map(|p| p.display().to_string()),
            // The account the mock's order endpoints accept (export as QALPHA_<VENUE>_API_KEY/SECRET).
            "api_key": qalpha_venues::mock::TEST_API_KEY,
            "api_secret": qalpha_venues::mock::TEST_API_SECRET,
        })
    );
    let stop = ctrl_c_flag();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && a.duration.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    mock.stop();
    Ok(())
}
