//! The Trinity on real data: the bundled Binance USD-M BTCUSDT capture (216 s) replayed through the
//! feed's decoder and book sync, and a real BTCUSDT 1m kline file for warm-up — with the test models
//! in `tests/models`. Checks that inference runs at the configured cadence, that its outputs are the
//! models' outputs on windows built independently from the same bars, that intents follow the
//! decision layer, and that misconfigurations are refused with clear errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketEvent, MarketPayload, StaleReason};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::Qty;
use qalpha_feeds::replay::VenueRouter;
use qalpha_strategy::bars::{read_klines, TimeBars};
use qalpha_strategy::baselines::{tick_strategy, Intent, Style, TickStrategy};
use qalpha_strategy::features::standard::standard;
use qalpha_strategy::model::{FeatureWindow, Model};
use qalpha_strategy::trinity::{Trinity, TrinityConfig, TrinityError};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

fn capture_events() -> Vec<MarketEvent> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample/btcusdt-usdm-20230404.qcap");
    let reader = CaptureReader::open(&path).expect("the bundled sample capture opens");
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());
    let mut events = Vec::new();
    for rec in reader.records() {
        router.route(&rec, &mut events);
    }
    router.finish();
    assert!(events.len() > 20_000, "{} events", events.len());
    events
}

fn klines_1m() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/klines/BTCUSDT-1m-2026-04-sample.csv");
    assert!(
        p.is_file(),
        "{} is missing (the bundled sample klines)",
        p.display()
    );
    p
}

fn config(bar_ms: u64, cadence_ms: u64) -> TrinityConfig {
    TrinityConfig {
        bar_ms,
        cadence_ms,
        ..TrinityConfig::new(models_dir())
    }
}

#[test]
fn infers_after_each_bar_with_the_models_outputs_on_independent_windows() {
    let events = capture_events();
    let mut trinity = Trinity::new(config(1000, 0)).unwrap();

    // The independent side: bars from the same trades, the standard features, the guardian's own
    // window, and a run of the guardian loaded on its own.
    let set_names = Trinity::feature_columns();
    let mut guardian = Model::load(
        models_dir().join("guardian.onnx"),
        models_dir().join("guardian.json"),
        &set_names,
    )
    .unwrap();
    let shock = guardian.meta().outputs[0]
        .names
        .as_ref()
        .unwrap()
        .iter()
        .position(|n| n == "shock")
        .unwrap();
    let mut bars = TimeBars::new(1000);
    let mut features = standard();
    let mut row = Vec::new();
    let mut engine_row = vec![f64::NAN; set_names.len()];
    let mut window = FeatureWindow::new(guardian.meta().window, guardian.meta().features.len());
    let mut finite_run = 0usize;

    let (mut closed, mut expected_runs, mut compared, mut intents) = (0u64, 0u64, 0u64, 0u64);
    for ev in &events {
        let intent = trinity.on_event(ev);
        if let MarketPayload::Trade(t) = ev.payload {
            if let Some(bar) = bars.on_trade_event(&t) {
                closed += 1;
                features.update(&bar, &mut row);
                engine_row[..row.len()].copy_from_slice(&row);
                let finite = window.push_with(|r| guardian.normalize_row(&engine_row, r));
                finite_run = if finite { (finite_run + 1).min(16) } else { 0 };
                if finite_run == 16 {
                    expected_runs += 1;
                    let want =
                        f64::from(guardian.run(window.as_slice().unwrap()).unwrap()[0][shock]);
                    let got = trinity
                        .latest()
                        .expect("a run after a ready bar")
                        .signals
                        .p_shock;
                    assert!(
                        (got - want).abs() < 1e-7,
                        "bar {closed}: p_shock {got} vs {want}"
                    );
                    compared += 1;
                }
            }
        }
        if let Some(Intent::Target { qty, style }) = intent {
            intents += 1;
            let d = trinity.latest().unwrap().decision;
            assert_eq!(qty, d.target, "the intent carries the decision's target");
            assert_eq!(qty.raw() % 100_000, 0, "whole lots of 0.001");
            assert!(qty.raw().abs() <= 100_000);
            assert!(matches!(
                style,
                Style::PostOnly | Style::Ioc { .. } | Style::Market
            ));
        }
    }
    let stats = trinity.stats();
    assert_eq!(
        stats.bars, closed,
        "the Trinity's bars are the independent bars"
    );
    assert!(closed > 200, "{closed} one-second bars in 216 s");
    assert!(
        expected_runs > 100,
        "warm-up must end within the capture: {expected_runs}"
    );
    assert_eq!(stats.runs, expected_runs, "one run per ready bar");
    assert_eq!(compared, expected_runs);
    assert_eq!(stats.run_errors, 0, "{:?}", trinity.last_error());
    assert!(
        intents >= 1 && stats.intents == intents,
        "{intents} intents"
    );
    let summary = trinity.summary();
    let field = |k: &str| {
        summary
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("inference_runs"), Some(stats.runs.to_string()));
    assert_eq!(field("oracle_horizon_bars").as_deref(), Some("1"));
    let d = trinity
        .disagreement()
        .expect("a disagreement once the models ran");
    assert!((0.0..=1.0).contains(&d), "{d}");
    let s = trinity.latest().unwrap().signals;
    assert!((s.p_long + s.p_short + s.p_flat - 1.0).abs() < 1e-9);
    assert!(s.q_lo <= s.q50 && s.q50 <= s.q_hi, "{s:?}");
}

#[test]
fn a_cadence_in_ms_runs_between_bars_at_least_that_far_apart() {
    let events = capture_events();
    let mut per_bar = Trinity::new(config(2000, 0)).unwrap();
    let mut timed = Trinity::new(config(2000, 500)).unwrap();
    let mut run_times = Vec::new();
    for ev in &events {
        per_bar.on_event(ev);
        timed.on_event(ev);
        if let Some(l) = timed.latest() {
            if run_times.last() != Some(&l.at_ms) {
                run_times.push(l.at_ms);
            }
        }
    }
    // 2 s bars: ~108 in 216 s, ~50 of them warming up; the 500 ms cadence runs ~4× as often.
    let (bar_runs, timed_runs) = (per_bar.stats().runs, timed.stats().runs);
    assert!(bar_runs >= 20, "per-bar runs: {bar_runs}");
    assert!(
        timed_runs >= 3 * bar_runs,
        "timed {timed_runs} vs per bar {bar_runs}"
    );
    assert_eq!(timed_runs as usize, run_times.len());
    assert!(
        run_times.windows(2).all(|w| w[1] >= w[0] + 500),
        "runs at least 500 ms apart"
    );
    assert_eq!(timed.stats().run_errors, 0);
}

#[test]
fn warms_up_from_klines_and_runs_before_the_first_live_bar() {
    let path = klines_1m();
    let bars = read_klines(&path).unwrap();
    let t = Trinity::new(TrinityConfig {
        warmup: Some(path.clone()),
        ..config(60_000, 0)
    })
    .unwrap();
    assert_eq!(t.stats().warmup_bars, bars.len() as u64);
    assert_eq!(t.stats().runs, 1, "one run at the end of the warm-up");
    assert!(t.latest().is_some() && t.disagreement().is_some());
    let last = bars.last().unwrap();
    assert_eq!(t.latest().unwrap().at_ms, last.open_time_ms + 60_000);

    // 1m klines are not 1 s bars.
    let err = Trinity::new(TrinityConfig {
        warmup: Some(path),
        ..config(1000, 0)
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("60000 ms apart") && msg.contains("bar_ms is 1000"),
        "{msg}"
    );
}

#[test]
fn refuses_misconfigurations_with_clear_errors() {
    let params = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let dir = models_dir().display().to_string();
    let e = tick_strategy("trinity", &params(&[])).err().unwrap();
    assert!(e.contains("models=DIR is required"), "{e}");
    let e = tick_strategy("trinity", &params(&[("models", &dir), ("gamma", "1")]))
        .err()
        .unwrap();
    assert!(
        e.contains("\"gamma\"") && e.contains("target_return"),
        "{e}"
    );
    let e = tick_strategy("trinity", &params(&[("models", &dir), ("horizon", "7")]))
        .err()
        .unwrap();
    assert!(e.contains("horizon=7") && e.contains("[1, 5, 15]"), "{e}");
    let e = tick_strategy("trinity", &params(&[("models", "/nonexistent/models")]))
        .err()
        .unwrap();
    assert!(e.contains("/nonexistent/models/guardian"), "{e}");
    let e = tick_strategy(
        "trinity",
        &params(&[("models", &dir), ("max_qty", "0.0001")]),
    )
    .err()
    .unwrap();
    assert!(e.contains("qty_step <= max_qty"), "{e}");
    let ok = tick_strategy(
        "trinity",
        &params(&[("models", &dir), ("horizon", "5"), ("cadence_ms", "100")]),
    );
    assert_eq!(ok.unwrap().name(), "trinity");

    // A model in the wrong role: the guardian's files where the oracle's should be.
    let tmp = tempfile::tempdir().unwrap();
    for name in ["guardian", "strategist"] {
        for ext in ["onnx", "json"] {
            let f = format!("{name}.{ext}");
            std::fs::copy(models_dir().join(&f), tmp.path().join(&f)).unwrap();
        }
    }
    for ext in ["onnx", "json"] {
        std::fs::copy(
            models_dir().join(format!("guardian.{ext}")),
            tmp.path().join(format!("oracle.{ext}")),
        )
        .unwrap();
    }
    let err = Trinity::new(TrinityConfig::new(tmp.path())).unwrap_err();
    assert!(matches!(err, TrinityError::Role { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("oracle.json") && msg.contains("no output `quantiles`"),
        "{msg}"
    );
}

#[test]
fn fills_move_the_position_and_a_stale_book_silences_it() {
    let events = capture_events();
    let mut t = Trinity::new(config(1000, 0)).unwrap();
    t.on_fill(qalpha_engine::Side::Buy, Qty(300_000));
    t.on_fill(qalpha_engine::Side::Sell, Qty(100_000));
    assert_eq!(t.position(), Qty(200_000));

    // Two identical Trinities up to the middle of the capture; then one is told the book is stale.
    // Sized so the target moves with the signals: up to 10 lots, any conviction.
    let lively = || {
        let mut c = config(1000, 0);
        c.decision.max_qty = Qty(1_000_000);
        c.decision.min_conviction = 0.0;
        Trinity::new(c).unwrap()
    };
    let half = events.len() / 2;
    let (mut live, mut silenced) = (lively(), lively());
    for ev in &events[..half] {
        live.on_event(ev);
        silenced.on_event(ev);
    }
    let stale_ev = MarketEvent {
        payload: MarketPayload::BookStale {
            reason: StaleReason::SequenceGap,
            last_update_id: 0,
        },
        ..events[half]
    };
    assert!(silenced.on_event(&stale_ev).is_none());
    let (mut live_intents, mut stale_intents) = (0, 0);
    for ev in &events[half..] {
        if matches!(ev.payload, MarketPayload::BookSynced { .. }) {
            continue;
        }
        live_intents += live.on_event(ev).is_some() as u32;
        stale_intents += silenced.on_event(ev).is_some() as u32;
    }
    assert!(
        live_intents >= 1,
        "the same events ask for something on an in-sync book"
    );
    assert_eq!(stale_intents, 0, "nothing is asked on a stale book");
    assert_eq!(
        silenced.stats().runs,
        live.stats().runs,
        "inference goes on"
    );
}
