//! The trend indicators over a real 3000-bar BTCUSDT 1m file: internal consistency (the TA-Lib
//! comparison itself is `talib.rs`).

use qalpha_strategy::features::trend::{Adx, Aroon, Bbands, Cci, Ema, Macd, Sma};
use qalpha_strategy::features::{FeatureSet, Indicator};

fn all_indicators() -> Vec<Box<dyn Indicator>> {
    vec![
        Box::new(Sma::new(20)),
        Box::new(Ema::new(20)),
        Box::new(Macd::new(12, 26, 9)),
        Box::new(Bbands::new(20, 2.0)),
        Box::new(Adx::new(14)),
        Box::new(Cci::new(20)),
        Box::new(Aroon::new(14)),
    ]
}

#[test]
fn btcusdt_1m_file_is_internally_consistent() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv");
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let bars = qalpha_strategy::bars::read_klines(&path).expect("BTCUSDT klines");
    assert!(bars.len() >= 1000);
    let mut set = FeatureSet::new(all_indicators());
    let col = |name: &str| set.names().iter().position(|n| n == name).unwrap();
    let names = "sma_20 ema_20 macd macd_signal macd_hist bb_upper bb_middle bb_lower adx_14 \
                 plus_di_14 minus_di_14 cci_20 aroon_up_14 aroon_down_14";
    let cols: Vec<usize> = names.split_whitespace().map(col).collect();
    let [sma, ema, macd, sig, hist, up, mid, lo, adx, pdi, mdi, cci, aup, adn] = cols[..] else {
        unreachable!()
    };
    let mut row = Vec::new();
    let (mut lowest, mut highest) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, b) in bars.iter().enumerate() {
        set.update(b, &mut row);
        lowest = lowest.min(b.close);
        highest = highest.max(b.close);
        if i < 33 {
            continue; // every column is valid from bar 33 (the MACD's first)
        }
        let r = &row;
        assert!(r.iter().all(|v| v.is_finite()), "bar {i}: {r:?}");
        assert_eq!(r[mid].to_bits(), r[sma].to_bits(), "bar {i}");
        assert_eq!(r[hist], r[macd] - r[sig], "bar {i}");
        assert!(r[lo] <= r[mid] && r[mid] <= r[up], "bar {i}");
        assert!(lowest <= r[ema] && r[ema] <= highest, "bar {i}");
        for c in [adx, pdi, mdi, aup, adn] {
            assert!(
                (0.0..=100.0).contains(&r[c]),
                "bar {i}: column {c} = {}",
                r[c]
            );
        }
        // Aroon steps are multiples of 100/14.
        let steps = r[aup] * 14.0 / 100.0;
        assert!((steps - steps.round()).abs() < 1e-9, "bar {i}");
        // Loose bound: |tp − mean| ≤ (n−1)·mad·n/(2(n−1)) keeps a 20-bar CCI far inside this.
        assert!(r[cci].abs() <= 19.0 / 0.015, "bar {i}: cci {}", r[cci]);
    }
}
