//! `qalpha features`: the standard feature set over bars, as CSV (the training dataset's columns).
//!
//! Input is a kline CSV (both layouts of [`qalpha_strategy::bars::read_klines`]) or a `.qcap`
//! capture, whose trades are decoded as `qalpha replay` decodes them and cut into time bars of
//! `--interval`. Output: `open_time,<feature names…>`, one row per bar, an empty cell for `NaN`
//! (warm-up) and every other value in Rust's shortest round-trip form, so the numbers read back
//! exactly as the live engine computed them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketPayload, Side, TradeKind};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::{MarketEvent, Symbol};
use qalpha_feeds::replay::VenueRouter;
use qalpha_strategy::bars::{read_klines, Bar, TimeBars};
use qalpha_strategy::features::standard::standard;

#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// A kline CSV (Binance's 12 columns or `timestamp,open,high,low,close,volume`, header or not)
    /// or a `.qcap` capture (its trades are cut into time bars of `--interval`).
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV: `open_time` then one column per feature.
    #[arg(long)]
    pub out: PathBuf,
    /// Bar length for capture input: e.g. 500ms, 1s, 1m, 5m, 1h, 1d (ignored for kline CSVs).
    #[arg(long, default_value = "1m", value_parser = parse_interval)]
    pub interval: u64,
    /// Symbol to build bars for when a capture holds trades of several.
    #[arg(long)]
    pub symbol: Option<String>,
}

/// `500ms`, `1s`, `1m`, `5m`, `1h`, `1d` → milliseconds.
pub fn parse_interval(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid interval {s:?}: use e.g. 500ms, 1s, 1m, 5m, 1h or 1d");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match n.checked_mul(ms) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(bad()),
    }
}

fn is_capture(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("qcap"))
}

/// Bars of one symbol being built from one kind of trade.
struct Builder {
    symbol: Symbol,
    /// Aggregated trades (`aggTrade`) and single matches (`trade`) describe the same volume, so
    /// they are never mixed: single matches win when a capture has both.
    aggregated: bool,
    bars: TimeBars,
    closed: Vec<Bar>,
    trades: u64,
}

/// Time bars of `interval_ms` from a capture's trades (insurance-fund and ADL fills excluded).
pub fn capture_bars(path: &Path, interval_ms: u64, symbol: Option<&str>) -> Result<Vec<Bar>> {
    let want = match symbol {
        Some(s) => Some(Symbol::parse(s).with_context(|| format!("invalid --symbol {s:?}"))?),
        None => None,
    };
    let reader = CaptureReader::open(path)
        .with_context(|| format!("cannot read capture {}", path.display()))?;
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());
    let mut events: Vec<MarketEvent> = Vec::new();
    let mut builders: Vec<Builder> = Vec::new();
    for rec in reader.records() {
        router.route(&rec, &mut events);
        for ev in events.drain(..) {
            let MarketPayload::Trade(t) = ev.payload else {
                continue;
            };
            let aggregated = match t.kind {
                TradeKind::Market => false,
                TradeKind::Aggregated => true,
                _ => continue,
            };
            if want.is_some_and(|w| w != ev.symbol) {
                continue;
            }
            let i = match builders
                .iter()
                .position(|b| b.symbol == ev.symbol && b.aggregated == aggregated)
            {
                Some(i) => i,
                None => {
                    builders.push(Builder {
                        symbol: ev.symbol,
                        aggregated,
                        bars: TimeBars::new(interval_ms),
                        closed: Vec::new(),
                        trades: 0,
                    });
                    builders.len() - 1
                }
            };
            let b = &mut builders[i];
            b.trades += 1;
            let buy = t.aggressor == Side::Buy;
            if let Some(bar) = b
                .bars
                .on_trade(t.trade_time_ms, t.px.to_f64(), t.qty.to_f64(), buy)
            {
                b.closed.push(bar);
            }
        }
    }
    router.finish();

    let mut symbols: Vec<&str> = builders.iter().map(|b| b.symbol.as_str()).collect();
    symbols.sort_unstable();
    symbols.dedup();
    match (symbols.len(), &want) {
        (0, Some(w)) => bail!("{}: no trades for {}", path.display(), w.as_str()),
        (0, None) => bail!("{}: the capture holds no trades", path.display()),
        (1, _) => {}
        _ => bail!(
            "{}: trades for several symbols ({}); choose one with --symbol",
            path.display(),
            symbols.join(", ")
        ),
    }
    // One symbol left: its single matches if it has any, else its aggregated trades.
    builders.sort_by_key(|b| b.aggregated);
    let mut b = builders.swap_remove(0);
    b.closed.extend(b.bars.flush());
    tracing::info!(
        trades = b.trades,
        bars = b.closed.len(),
        symbol = b.symbol.as_str(),
        "capture bars"
    );
    Ok(b.closed)
}

/// The bars of `input`: a kline CSV, or time bars from a `.qcap` capture.
pub fn load_bars(input: &Path, interval_ms: u64, symbol: Option<&str>) -> Result<Vec<Bar>> {
    if is_capture(input) {
        capture_bars(input, interval_ms, symbol)
    } else {
        // BarError names the file and line.
        Ok(read_klines(input)?)
    }
}

/// Writes the header and one row per bar of the standard feature set.
pub fn write_features(bars: &[Bar], out: &mut impl Write) -> std::io::Result<()> {
    let mut set = standard();
    write!(out, "open_time")?;
    for n in set.names() {
        write!(out, ",{n}")?;
    }
    writeln!(out)?;
    let mut row = Vec::new();
    for b in bars {
        set.update(b, &mut row);
        write!(out, "{}", b.open_time_ms)?;
        for v in &row {
            if v.is_nan() {
                write!(out, ",")?;
            } else {
                write!(out, ",{v}")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()
}

/// The subcommand: reads `--input`, writes `--out`, prints a one-line summary.
pub fn run(a: FeaturesArgs) -> Result<()> {
    let bars = load_bars(&a.input, a.interval, a.symbol.as_deref())?;
    let f = std::fs::File::create(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut w = std::io::BufWriter::new(f);
    write_features(&bars, &mut w).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "wrote {} rows x {} features to {}",
        bars.len(),
        standard().len(),
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1s"), Ok(1_000));
        assert_eq!(parse_interval("5m"), Ok(300_000));
        assert_eq!(parse_interval("250ms"), Ok(250));
        assert_eq!(parse_interval("1h"), Ok(3_600_000));
        assert_eq!(parse_interval("1d"), Ok(86_400_000));
        for bad in ["", "m", "0s", "1x", "1.5m", "-1m"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capture_detection_by_extension() {
        assert!(is_capture(Path::new("a/b.qcap")));
        assert!(is_capture(Path::new("B.QCAP")));
        assert!(!is_capture(Path::new("k.csv")));
    }
}
