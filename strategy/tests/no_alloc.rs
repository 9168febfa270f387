//! The hot paths allocate nothing after warm-up, checked with a counting global allocator on real
//! data:
//!
//! - per bar: the standard feature set (44 columns) over real Binance klines, and the model-side
//!   per-bar step (normalize the engine row into a [`FeatureWindow`]);
//! - per event: the bundled Binance USD-M capture replayed through `qalpha-feeds`, feeding
//!   [`OrderFlow`] (`on_event`, `on_book` with the feed's rebuilt book, `write`), the tick baselines
//!   (`obi-taker`, `maker` with simulated fills), [`TimeBars`] and the bar baseline `sma-cross` plus
//!   the feature set on the time bars they close;
//! - the Trinity's per-event path on the same replay, events that ran an inference left out (a
//!   tract run allocates; see `Model::run`).
//!
//! Counting is per thread and only while a section is open ([`counted`]), so the test harness's
//! other threads, the kline parser and the feed's decoder (not strategy code) are never counted.
//! When a section allocates, rerun with `QALPHA_ALLOC_BACKTRACE=1` to print a backtrace of the
//! first few allocations it made.
//!
//! The kline files are the real exchange data in the bundled sample `data/sample/klines` (copies of `../shared/data/klines`); unlike the feature tests
//! (which skip), this test fails when they are missing: an allocation check that silently checks
//! nothing is worse than none.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketEvent, MarketPayload, Side};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::Qty;
use qalpha_feeds::replay::VenueRouter;
use qalpha_strategy::bars::{read_klines, Bar, TimeBars};
use qalpha_strategy::baselines::{bar_strategy, tick_strategy, BarStrategy, Intent, TickStrategy};
use qalpha_strategy::features::standard::standard;
use qalpha_strategy::features::FeatureSet;
use qalpha_strategy::model::{FeatureWindow, Model};
use qalpha_strategy::orderflow::OrderFlow;
use qalpha_strategy::trinity::{Trinity, TrinityConfig};

/// [`System`], counting the allocations (`alloc`, `alloc_zeroed`, `realloc`) a thread makes while
/// it has a [`counted`] section open.
struct CountingAllocator;

thread_local! {
    // `const` initializers with no destructor: reading these never allocates nor registers a
    // thread-exit hook, so the allocator may touch them.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// Backtraces still to print in this section (`QALPHA_ALLOC_BACKTRACE`).
    static TRACES_LEFT: Cell<u32> = const { Cell::new(0) };
    /// Set while a backtrace is captured and printed, which allocates itself.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

/// Backtraces printed per section when `QALPHA_ALLOC_BACKTRACE` is set.
const TRACES_PER_SECTION: u32 = 3;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

impl CountingAllocator {
    fn note(layout: Layout) {
        // `try_with`: the thread's locals may already be gone while it exits.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if !counting || IN_TRACE.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        let left = TRACES_LEFT.try_with(Cell::get).unwrap_or(0);
        if left > 0 {
            TRACES_LEFT.with(|t| t.set(left - 1));
            IN_TRACE.with(|t| t.set(true));
            let trace = Backtrace::force_capture();
            eprintln!(
                "allocation of {} bytes in a counted section:\n{trace}",
                layout.size()
            );
            IN_TRACE.with(|t| t.set(false));
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// `note` only reads and writes this thread's const-initialized `Cell`s (no allocation, no
// unwinding), except while printing a backtrace, which it does with `IN_TRACE` set so the
// allocations that makes are neither counted nor traced again.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout);
        // SAFETY: the caller's `layout` contract is passed through to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(layout);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(layout);
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through this type) with
        // `layout`; the caller upholds `realloc`'s contract for `new_size`.
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

/// Arms the backtrace printer for the next allocations counted on this thread, when
/// `QALPHA_ALLOC_BACKTRACE` is set (read here, outside any counted section).
fn arm_backtraces() {
    if std::env::var_os("QALPHA_ALLOC_BACKTRACE").is_some() {
        TRACES_LEFT.with(|t| t.set(TRACES_PER_SECTION));
    }
}

fn assert_none(what: &str, allocations: u64, steps: u64) {
    assert_eq!(
        allocations, 0,
        "{what}: {allocations} allocations over {steps} steps after warm-up; rerun with \
         QALPHA_ALLOC_BACKTRACE=1 to see where"
    );
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A real kline file from the bundled sample (`data/sample/klines`), read in full (cold path, not counted).
fn klines(file: &str) -> Vec<Bar> {
    let path: PathBuf = manifest().join("../data/sample/klines").join(file);
    assert!(
        path.exists(),
        "{} not found: the bundled sample klines are part of the repository (data/sample/klines, \
         see its NOTICE.md)",
        path.display()
    );
    read_klines(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The Guardian test model, loaded against the standard set (cold path).
fn guardian(names: &[String]) -> Model {
    let dir = manifest().join("tests/models");
    Model::load(dir.join("guardian.onnx"), dir.join("guardian.json"), names)
        .unwrap_or_else(|e| panic!("guardian: {e}"))
}

/// The counter itself: a check that passes because counting is broken would be worthless.
#[test]
fn the_counter_sees_allocations_on_this_thread_only() {
    arm_backtraces(); // with QALPHA_ALLOC_BACKTRACE set, shows what a report looks like
    let (v, n) = counted(|| {
        let mut v: Vec<u64> = Vec::with_capacity(1);
        v.extend([1, 2, 3]); // grows: a realloc
        std::hint::black_box(v)
    });
    assert_eq!((v.len(), n), (3, 2));
    // Spawning allocates on this thread; the child's thousand allocations are its own.
    let child = || (1..=1000).map(|i| vec![0u8; i].len()).sum::<usize>();
    let (sum, n) = counted(|| std::thread::spawn(child).join().ok());
    assert_eq!(sum, Some(500_500));
    assert!((1..1000).contains(&n), "{n} allocations counted");
    let ((), n) = counted(|| ());
    assert_eq!(n, 0);
}

const WARM_UP_BARS: usize = 300;

#[test]
fn bar_features_and_model_rows_allocate_nothing_per_bar() {
    for file in [
        "BTCUSDT-1m-2026-04-sample.csv",
        "ETHUSDT-1m-2026-04-sample.csv",
    ] {
        let bars = klines(file);
        assert!(
            bars.len() >= WARM_UP_BARS + 1000,
            "{file}: {} bars",
            bars.len()
        );
        let mut set = standard();
        let model = guardian(set.names());
        let (rows, width) = (model.meta().window, model.meta().features.len());
        let mut window = FeatureWindow::new(rows, width);
        let mut row = Vec::with_capacity(set.len());
        let mut finite = 0u64;
        let mut step = |b: &Bar| {
            set.update(b, &mut row);
            if window.push_with(|r| model.normalize_row(&row, r)) && window.is_full() {
                finite += 1;
            }
        };
        bars[..WARM_UP_BARS].iter().for_each(&mut step);
        arm_backtraces();
        let ((), allocations) = counted(|| bars[WARM_UP_BARS..].iter().for_each(&mut step));
        assert_none(
            &format!("{file}: FeatureSet::update + normalize_row + FeatureWindow::push_with"),
            allocations,
            (bars.len() - WARM_UP_BARS) as u64,
        );
        assert_eq!(row.len(), 44, "the standard set's width");
        assert!(finite > 1000, "{file}: only {finite} finite model rows");
    }
}

/// Records replayed before counting starts (about 50 s of the 216 s capture): every ring and
/// buffer the strategy side owns is sized at construction, so this only has to cover first-use
/// effects, and the bar strategies' first closed bars.
const WARM_UP_RECORDS: usize = 8_000;
/// Time-bar interval for the bar-side of the event replay.
const BAR_MS: u64 = 1_000;

/// Everything the strategy side does with one market event, as a live strategy thread would.
struct Consumer {
    flow: OrderFlow,
    flow_row: Vec<f64>,
    obi: Box<dyn TickStrategy + Send>,
    maker: Box<dyn TickStrategy + Send>,
    /// The maker's resting quote, for the simulated fills.
    maker_quote: Option<Intent>,
    time_bars: TimeBars,
    sma: Box<dyn BarStrategy + Send>,
    set: FeatureSet,
    bar_row: Vec<f64>,
    intents: u64,
    fills: u64,
    bars: u64,
}

impl Consumer {
    fn new() -> Self {
        let none = BTreeMap::new();
        let set = standard();
        let flow = OrderFlow::new(&[1_000, 10_000, 60_000]);
        Self {
            flow_row: vec![0.0; flow.len()],
            flow,
            obi: tick_strategy("obi-taker", &none).expect("obi-taker"),
            maker: tick_strategy("maker", &none).expect("maker"),
            maker_quote: None,
            time_bars: TimeBars::new(BAR_MS),
            sma: bar_strategy("sma-cross", &none).expect("sma-cross"),
            bar_row: Vec::with_capacity(set.len()),
            set,
            intents: 0,
            fills: 0,
            bars: 0,
        }
    }

    /// One event; `book` is the feed's rebuilt book when the event is a `BookTop` from it.
    fn on_event(&mut self, ev: &MarketEvent, book: Option<&qalpha_feeds::book::OrderBook>) {
        self.flow.on_event(ev);
        if let Some(book) = book {
            self.flow.on_book(book);
        }
        self.flow.write(&mut self.flow_row);

        self.intents += u64::from(self.obi.on_event(ev).is_some());
        if let Some(q) = self.maker.on_event(ev) {
            self.maker_quote = Some(q);
            self.intents += 1;
        }
        if let MarketPayload::Trade(t) = &ev.payload {
            // A taker trading through the maker's price fills it (a crude fill model: enough to
            // drive `on_fill` and the position limits on real prices).
            if let Some(Intent::Quote { bid, ask }) = self.maker_quote {
                let fill = match t.aggressor {
                    Side::Sell => bid
                        .filter(|&(px, _)| t.px <= px)
                        .map(|(_, q)| (Side::Buy, q)),
                    Side::Buy => ask
                        .filter(|&(px, _)| t.px >= px)
                        .map(|(_, q)| (Side::Sell, q)),
                };
                if let Some((side, qty)) = fill {
                    self.maker.on_fill(side, qty);
                    self.obi.on_fill(side, qty);
                    self.fills += 1;
                }
            }
            let buy = t.aggressor == Side::Buy;
            let closed =
                self.time_bars
                    .on_trade(t.trade_time_ms, t.px.to_f64(), t.qty.to_f64(), buy);
            if let Some(bar) = closed {
                self.bars += 1;
                self.set.update(&bar, &mut self.bar_row);
                self.intents += u64::from(self.sma.on_bar(&bar).is_some());
            }
        }
    }
}

#[test]
fn order_flow_and_baselines_allocate_nothing_per_event() {
    let path = manifest().join("../data/sample/btcusdt-usdm-20230404.qcap");
    let reader = CaptureReader::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the bundled sample capture)", path.display()));
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());
    let mut events: Vec<MarketEvent> = Vec::with_capacity(1024);
    let mut consumer = Consumer::new();
    let (mut allocations, mut counted_events, mut books) = (0u64, 0u64, 0u64);

    for (i, rec) in reader.records().enumerate() {
        // The feed (decoding, book sync) is not strategy code: it runs outside the counter.
        events.clear();
        router.route(&rec, &mut events);
        if i == WARM_UP_RECORDS {
            arm_backtraces();
        }
        for ev in &events {
            let book = match ev.payload {
                MarketPayload::BookTop(_) => router
                    .binance
                    .book(ev.symbol)
                    .filter(|s| s.is_synced())
                    .map(|s| s.book()),
                _ => None,
            };
            let ((), n) = counted(|| consumer.on_event(ev, book));
            if i >= WARM_UP_RECORDS {
                allocations += n;
                counted_events += 1;
                books += u64::from(book.is_some());
            }
        }
    }
    assert_none(
        "OrderFlow + obi-taker + maker + TimeBars + sma-cross + FeatureSet per event",
        allocations,
        counted_events,
    );
    // The check covered the real paths, not an idle loop.
    assert!(counted_events > 20_000, "{counted_events} events counted");
    assert!(books > 1_000, "{books} on_book calls counted");
    assert!(consumer.bars > 100, "{} time bars", consumer.bars);
    assert!(consumer.intents > 10, "{} intents", consumer.intents);
    assert!(consumer.fills > 0, "no simulated maker fill");
    eprintln!(
        "{counted_events} events ({books} books) counted: {} intents, {} fills, {} time bars",
        consumer.intents, consumer.fills, consumer.bars
    );
}

/// The Trinity's per-event path (order flow, time bars, feature rows into the model windows, the
/// decision layer, fills, disagreement), with the test models, inference after each 1 s bar and
/// at a 250 ms cadence. An event on which an inference ran is left out of the check: a run
/// allocates inside tract (see `Model::run`); every other event must allocate nothing.
#[test]
fn trinity_allocates_nothing_per_event_outside_inference() {
    let path = manifest().join("../data/sample/btcusdt-usdm-20230404.qcap");
    let reader = CaptureReader::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the bundled sample capture)", path.display()));
    let mut events: Vec<MarketEvent> = Vec::new();
    let mut records_before = Vec::new(); // events routed before each record: the warm-up cut
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());
    for rec in reader.records() {
        records_before.push(events.len());
        router.route(&rec, &mut events);
    }
    let warm = records_before[WARM_UP_RECORDS];

    for cadence_ms in [0, 250] {
        let cfg = TrinityConfig {
            bar_ms: 1_000,
            cadence_ms,
            ..TrinityConfig::new(manifest().join("tests/models"))
        };
        let mut t = Trinity::new(cfg).unwrap_or_else(|e| panic!("trinity: {e}"));
        let (mut allocations, mut counted_events) = (0u64, 0u64);
        let (mut inference_events, mut inference_allocations) = (0u64, 0u64);
        let mut runs_before_count = 0;
        for (i, ev) in events.iter().enumerate() {
            if i == warm {
                arm_backtraces();
                runs_before_count = t.stats().runs;
            }
            let before = t.stats();
            let (_, n) = counted(|| {
                if let Some(Intent::Target { qty, .. }) = t.on_event(ev) {
                    // Filled at once: the position follows the target.
                    let delta = qty.raw() - t.position().raw();
                    let side = if delta > 0 { Side::Buy } else { Side::Sell };
                    t.on_fill(side, Qty(delta.abs()));
                }
                t.disagreement()
            });
            let after = t.stats();
            if i < warm {
                continue;
            }
            if (after.runs, after.run_errors) != (before.runs, before.run_errors) {
                inference_events += 1;
                inference_allocations += n;
            } else {
                allocations += n;
                counted_events += 1;
            }
        }
        assert_none(
            &format!("Trinity::on_event/on_fill/disagreement, cadence_ms={cadence_ms}"),
            allocations,
            counted_events,
        );
        let s = t.stats();
        assert_eq!(s.run_errors, 0, "{:?}", t.last_error());
        assert!(counted_events > 20_000, "{counted_events} events counted");
        // The check ran while the models were live, not only while the windows filled.
        assert!(
            s.runs - runs_before_count > 20,
            "cadence_ms={cadence_ms}: {} runs after warm-up",
            s.runs - runs_before_count
        );
        eprintln!(
            "trinity cadence_ms={cadence_ms}: {counted_events} events counted, \
             {inference_events} with an inference run left out ({} allocations per pass of the three \
             models in tract), {} intents",
            inference_allocations / inference_events.max(1),
            s.intents
        );
    }
}
