//! `sma-cross(10, 30)` over a real 3000-bar BTCUSDT 1m file, against an independent re-computation
//! of the same rules: SMAs from exact integer sums of the closes (in `10^-8` units) recomputed over
//! the whole window every bar, no running sums and no feature library.

use std::collections::BTreeMap;

use qalpha_engine::Qty;
use qalpha_strategy::bars::Bar;
use qalpha_strategy::baselines::{bar_strategy, Intent, Style};

const FAST: usize = 10;
const SLOW: usize = 30;

fn bars() -> Option<Vec<Bar>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv");
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return None;
    }
    let bars = qalpha_strategy::bars::read_klines(&path).expect("BTCUSDT klines");
    assert!(bars.len() > 1000, "{} bars", bars.len());
    Some(bars)
}

/// `sign(SMA(fast) − SMA(slow))` at every bar (`None` before SMA(slow) exists), exactly:
/// `sum_fast / fast` vs `sum_slow / slow` compared as `sum_fast · slow` vs `sum_slow · fast`.
fn exact_cross_signs(bars: &[Bar]) -> Vec<Option<i8>> {
    let units: Vec<i128> = bars
        .iter()
        .map(|b| {
            let u = (b.close * 1e8).round();
            assert!(
                (u / 1e8 - b.close).abs() < 1e-9,
                "close {} has > 8 decimals",
                b.close
            );
            u as i128
        })
        .collect();
    (0..bars.len())
        .map(|t| {
            if t + 1 < SLOW {
                return None;
            }
            let fast: i128 = units[t + 1 - FAST..=t].iter().sum();
            let slow: i128 = units[t + 1 - SLOW..=t].iter().sum();
            Some((fast * SLOW as i128 - slow * FAST as i128).signum() as i8)
        })
        .collect()
}

/// The rules written out plainly: `(bar index, target in units of qty)`, `on_end` at `bars.len()`.
fn reference_intents(signs: &[Option<i8>]) -> Vec<(usize, i64)> {
    let (mut signal, mut position) = (0i8, 0i8);
    let mut out = Vec::new();
    for (t, s) in signs.iter().enumerate() {
        match s {
            Some(1) => signal = 1,
            Some(-1) => signal = -1,
            _ => {} // no SMA(slow) yet, or equal SMAs: the signal is unchanged
        }
        if signal != 0 && signal != position {
            position = signal;
            out.push((t, position as i64));
        }
    }
    if position != 0 {
        out.push((signs.len(), 0));
    }
    out
}

#[test]
fn sma_cross_matches_an_independent_recomputation() {
    let Some(bars) = bars() else { return };
    let qty = Qty::parse("0.001").unwrap();
    let params: BTreeMap<String, String> = [("fast", "10"), ("slow", "30"), ("qty", "0.001")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut s = bar_strategy("sma-cross", &params).expect("sma-cross");
    let unit = |i: Intent| match i {
        Intent::Target {
            qty: q,
            style: Style::Market,
        } => {
            assert_eq!(q.raw() % qty.raw(), 0, "{q}");
            q.raw() / qty.raw()
        }
        other => panic!("sma-cross returned {other:?}"),
    };
    let mut got: Vec<(usize, i64)> = Vec::new();
    for (t, b) in bars.iter().enumerate() {
        got.extend(s.on_bar(b).map(|i| (t, unit(i))));
    }
    got.extend(s.on_end().map(|i| (bars.len(), unit(i))));

    let signs = exact_cross_signs(&bars);
    let want = reference_intents(&signs);
    assert!(want.len() > 20, "only {} intents: a weak test", want.len());
    assert_eq!(got.len(), want.len(), "intent counts differ");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "first differing intent (bar index, target)");
    }
    let ties = signs.iter().filter(|s| **s == Some(0)).count();
    eprintln!(
        "{} bars, {} intents, {} bars with equal SMAs",
        bars.len(),
        got.len(),
        ties
    );

    // Execute: an intent from bar t takes effect at bar t+1's open; the end close happens after the
    // last bar. `held[i]` is the position during bar i.
    let mut held = vec![0i64; bars.len()];
    let mut pending = got.iter().peekable();
    let mut pos = 0i64;
    for (i, h) in held.iter_mut().enumerate() {
        while let Some(&&(t, target)) = pending.peek() {
            if t + 1 > i {
                break;
            }
            if t + 1 == i {
                pos = target;
            }
            pending.next();
        }
        *h = pos;
    }
    // The position changes only at the open after a crossing: at bar i-1 the SMAs are strictly
    // ordered the new way round, and at the last bar with unequal SMAs before that they were not.
    let last_strict_before = |i: usize| signs[..i].iter().rev().find_map(|s| s.filter(|&v| v != 0));
    for i in 1..bars.len() {
        if held[i] == held[i - 1] {
            continue;
        }
        let now = signs[i - 1].unwrap_or_else(|| panic!("position change at {i} before SMA(slow)"));
        assert_eq!(
            now as i64, held[i],
            "bar {i}: position not in the SMAs' direction"
        );
        assert_ne!(
            last_strict_before(i - 1),
            Some(now),
            "bar {i}: position changed without a crossing at bar {}",
            i - 1
        );
    }
    // Every crossing (but one on the last bar) moves the position at the next open.
    for i in 1..bars.len() {
        if let Some(now @ (1 | -1)) = signs[i - 1] {
            if last_strict_before(i - 1) != Some(now) {
                assert_eq!(
                    held[i],
                    now as i64,
                    "bar {i}: crossing at {} not followed",
                    i - 1
                );
            }
        }
    }
    assert_eq!(
        got.last().map(|g| g.1),
        Some(0),
        "the end closes the position"
    );
}
