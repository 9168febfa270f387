//! Every baseline through the demo's strategy thread: the mock exchange serves the bundled real
//! capture, the feed rebuilds the book, the named strategy decides, the executor turns its intents
//! into orders through the risk engine, and the paper venue (or, once, the mock's order API) fills
//! them. Params go in the way a user sets them (`--set strategy.KEY=VALUE`).
//!
//! The last test checks the executor's hot path allocates nothing per event after warm-up (a
//! counting global allocator, per thread and only inside counted sections).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qalpha_engine::capture::CaptureReader;
use qalpha_engine::config::EngineConfig;
use qalpha_engine::event::{MarketEvent, Venue};
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::Symbol;
use qalpha_feeds::replay::VenueRouter;
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::RiskConfig;
use qalpha_tools::demo_cmd::executor::{Executor, Market};
use qalpha_tools::demo_cmd::strategy::StrategySpec;
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions, DemoReport};
use qalpha_venues::fill::FeeSchedule;
use qalpha_venues::paper::PaperVenue;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

/// One demo at a time: each runs four threads and a mock exchange, and the box has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The demo with `--strategy name --set …`, its JSON summary written to `json`.
fn run(name: &str, sets: &[&str], mode: DemoMode, json: &Path) -> DemoReport {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = EngineConfig::load_with_overrides(None, &sets).unwrap();
    let o = DemoOptions {
        duration: Duration::from_secs(6),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        json: Some(json.to_path_buf()),
        mode,
        risk: RiskConfig::from_engine(&cfg).unwrap(),
        risk_journal: None,
        strategy: StrategySpec::from_config(name, &cfg).unwrap(),
        ..Default::default()
    };
    run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap()
}

/// An exact decimal string in 10⁻⁸ units.
fn units(s: &str) -> i128 {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 8, "{s}");
    let v = whole.parse::<i128>().unwrap() * 100_000_000
        + format!("{frac:0<8}").parse::<i128>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

/// What every run must show, whatever the strategy: it traded, never on a stale book, every report
/// matched an order once, and the position is the sum of the fills — by the executor's ledger and
/// by risk's own.
fn check_common(r: &DemoReport, json: &Path, name: &str) -> serde_json::Value {
    assert_eq!(r.strategy, name);
    assert!(r.intents >= 1, "{r:?}");
    assert!(r.orders >= 1, "{r:?}");
    assert_eq!(r.orders_on_stale_book, 0, "{r:?}");
    assert_eq!(r.unknown_reports, 0, "{r:?}");
    assert_eq!(r.duplicate_reports, 0, "{r:?}");
    assert_eq!(r.duplicate_orders, 0, "{r:?}");
    assert_eq!(r.book_mismatches, 0, "{r:?}");
    assert_eq!(
        units(&r.position),
        units(&r.bought) - units(&r.sold),
        "position = bought − sold: {r:?}"
    );
    let risk_view = r.final_positions.get("BTCUSDT").map_or("0", |s| s.as_str());
    assert_eq!(units(risk_view), units(&r.position), "risk agrees: {r:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(v["strategy"], name, "{v}");
    assert!(v["strategy_params"].is_object(), "{v}");
    v
}

/// The Trinity on the strategy thread: 1 s bars cut from the prints, the test models in
/// `strategy/tests/models` inferring after every bar once the features are warm, the decision layer
/// turning their outputs into targets the executor trades, and the models' disagreement reaching
/// risk — first with conservative mode out of reach (so it trades), then at risk's default limit.
#[test]
fn trinity_infers_on_the_strategy_thread_and_trades_through_risk() {
    let dir = tempfile::tempdir().unwrap();
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../strategy/tests/models");
    let models_set = format!("strategy.models={models}");
    let base = [
        models_set.as_str(),
        "strategy.max_qty=0.1",
        "strategy.min_conviction=0",
    ];
    let json = dir.path().join("trinity.json");
    let mut sets = base.to_vec();
    sets.push("risk.model_disagreement_max=1");
    let r = run("trinity", &sets, DemoMode::Paper, &json);
    check_common(&r, &json, "trinity");
    let s = &r.strategy_summary;
    let runs: u64 = s["inference_runs"].parse().unwrap();
    let bars: u64 = s["bars"].parse().unwrap();
    assert!(
        runs >= 10 && runs < bars,
        "inference after warm bars only: {s:?}"
    );
    assert_eq!(s["inference_errors"], "0", "{s:?}");
    assert!(r.fills >= 1, "{r:?}");
    let d: f64 = s["last_disagreement"].parse().unwrap();
    assert!((0.0..=1.0).contains(&d), "{s:?}");

    // At the default limit (0.5) the same run reaches risk's model-disagreement switch whenever the
    // test models disagree that much; either way nothing opens while conservative.
    let json = dir.path().join("trinity-default.json");
    let r = run("trinity", &base, DemoMode::Paper, &json);
    check_common(&r, &json, "trinity");
    let conservative = r.risk_rejected_by.get("conservative").copied().unwrap_or(0);
    assert!(
        r.risk_transitions >= 1 || conservative == 0,
        "conservative refusals without a risk transition: {r:?}"
    );
}

#[test]
fn sma_cross_trades_bars_cut_from_the_prints_and_ends_flat() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sma.json");
    // 1 s bars, SMA(2) vs SMA(3): the first signal three bars in (seconds of the tape).
    let sets = ["strategy.bar_ms=1000", "strategy.fast=2", "strategy.slow=3"];
    let r = run("sma-cross", &sets, DemoMode::Paper, &json);
    let v = check_common(&r, &json, "sma-cross");
    assert!(r.fills >= 1, "market orders take liquidity: {r:?}");
    assert_eq!(r.cancels, 0, "market orders are never cancelled: {r:?}");
    for (k, want) in [("bar_ms", "1000"), ("fast", "2"), ("slow", "3")] {
        assert_eq!(v["strategy_params"][k], want, "{v}");
    }
    // At the end the strategy settles flat (its `on_end`), before the final cancel-all.
    assert_eq!(units(&r.position), 0, "{r:?}");
    assert_eq!(r.open_orders, 0, "{r:?}");
}

#[test]
fn obi_taker_takes_the_leaning_side_in_paper_mode() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("obi.json");
    let r = run(
        "obi-taker",
        &["strategy.threshold=0.3"],
        DemoMode::Paper,
        &json,
    );
    let v = check_common(&r, &json, "obi-taker");
    assert!(r.fills >= 1, "IOC orders take liquidity: {r:?}");
    assert_eq!(v["strategy_params"]["threshold"], "0.3", "{v}");
    assert_eq!(r.cancels, 0, "IOC orders are never cancelled: {r:?}");
}

#[test]
fn maker_quotes_the_touch_in_paper_mode() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("maker.json");
    let r = run("maker", &[], DemoMode::Paper, &json);
    check_common(&r, &json, "maker");
    assert!(r.acks >= 1, "{r:?}");
    assert!(
        r.fills >= 1,
        "resting quotes fill on the tape's prints: {r:?}"
    );
    // The default position limit (0.01) holds: risk's cuts aside, the maker never goes past it.
    if r.risk_orders == 0 {
        assert!(units(&r.position).abs() <= 1_000_000, "{r:?}");
    }
}

#[test]
fn obi_taker_trades_against_the_mock_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("obi-mock.json");
    let r = run("obi-taker", &[], DemoMode::Mock, &json);
    check_common(&r, &json, "obi-taker");
    assert_eq!(r.mode, Some(DemoMode::Mock));
    assert!(
        r.ws_requests >= 1,
        "orders went over the mock's WebSocket API: {r:?}"
    );
    assert!(r.fills >= 1, "{r:?}");
}

#[test]
fn bad_names_and_params_stop_the_demo_before_it_starts() {
    let bin = env!("CARGO_BIN_EXE_qalpha");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--strategy", "nope"],
            "strategies: sma-cross, obi-taker, maker",
        ),
        (
            &["--strategy", "obi-taker", "--set", "strategy.threshold=2"],
            "threshold",
        ),
        (
            &["--strategy", "maker", "--set", "strategy.size=1"],
            "unknown param \"size\"",
        ),
        (
            &["--strategy", "sma-cross", "--set", "strategy.bar_ms=0"],
            "bar_ms",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(bin)
            .arg("demo")
            .args(["--duration", "30s", "--capture", SAMPLE])
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
    }
}

/// [`System`], counting the allocations a thread makes while it has a [`counted`] section open.
struct CountingAllocator;

thread_local! {
    // `const` initializers with no destructor: reading them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn note() {
    // `try_with`: the thread's locals may already be gone while it exits.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// `note` only touches this thread's const-initialized `Cell`s (no allocation, no unwinding).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's `layout` contract is passed through to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` with this thread's allocations counted; returns its result and the count.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, COUNT.with(Cell::get))
}

/// Events before the check starts: risk's 60 s volatility window fills, the order map and the
/// risk ledger get their entries.
const WARM_UP_EVENTS: usize = 12_000;

/// Each strategy through the executor with risk inline, on the bundled capture's events, against
/// the paper venue (outside the counter, like the feed): after warm-up, the executor's market and
/// report steps allocate nothing — except a step that sent a new order (its client id and order
/// map entry, the documented cost per order).
#[test]
fn the_executor_allocates_nothing_per_event_after_warm_up() {
    let reader = CaptureReader::open(Path::new(SAMPLE)).unwrap();
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());
    let mut events: Vec<MarketEvent> = Vec::new();
    for rec in reader.records() {
        router.route(&rec, &mut events);
    }
    assert!(events.len() > WARM_UP_EVENTS * 2, "{}", events.len());
    let btc = Market {
        venue: Venue::BinanceUsdm,
        symbol: Symbol::parse("BTCUSDT").unwrap(),
    };
    let runs: [(&str, &[(&str, &str)]); 3] = [
        ("maker", &[]),
        ("obi-taker", &[("threshold", "0.3")]),
        (
            "sma-cross",
            &[("bar_ms", "1000"), ("fast", "2"), ("slow", "3")],
        ),
    ];
    for (name, kv) in runs {
        let mut spec = StrategySpec::named(name);
        spec.params = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The replay runs far faster than the tape: limits counted on the wall clock (order rate)
        // or that halt (losses in a row) would stop the trading this test needs.
        let cfg = RiskConfig {
            max_orders_per_s: 1_000_000,
            max_consecutive_losses: 1_000_000,
            api_errors_per_min: 1_000_000,
            ..RiskConfig::default()
        };
        let risk = RiskEngine::new(cfg, None, events[0].recv_ns).unwrap();
        let mut ex = Executor::with_risk(btc, spec.build().unwrap(), risk);
        let mut paper = PaperVenue::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let (mut tx, mut rx) =
            ring::<OrderCommand>(1024, FullPolicy::Backpressure, WaitMode::Yield);
        let mut reports: Vec<ExecReport> = Vec::with_capacity(64);
        let (mut allocations, mut steps, mut order_steps, mut order_allocations) = (0u64, 0, 0, 0);
        for (i, ev) in events.iter().enumerate() {
            paper.on_market(ev, &mut reports);
            let sent_before = ex.counters.orders + ex.counters.risk_orders;
            let ((), n) = counted(|| {
                for r in reports.drain(..) {
                    ex.on_report(&r);
                }
                ex.on_market(ev, &mut tx);
                ex.run_risk_actions(ev.recv_ns, &mut tx);
            });
            let sent = ex.counters.orders + ex.counters.risk_orders != sent_before;
            while let Ok(cmd) = rx.pop() {
                paper.submit(&cmd, &mut reports);
            }
            if i < WARM_UP_EVENTS {
                continue;
            }
            if sent {
                order_steps += 1;
                order_allocations += n;
            } else {
                allocations += n;
                steps += 1;
            }
        }
        // The counter is live: each order sent allocates its client id and map entry.
        assert!(
            order_allocations > 0,
            "{name}: {order_steps} order steps after warm-up: {:?}",
            ex.counters
        );
        assert_eq!(
            allocations, 0,
            "{name}: {allocations} allocations over {steps} event steps without a new order \
             ({order_steps} steps sent one)"
        );
    }
}
