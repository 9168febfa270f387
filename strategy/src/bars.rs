//! Bars: the OHLCV unit the bar features update on.
//!
//! - [`Bar`]: floats — features and models are floats (money stays in the engine's exact types).
//! - [`read_klines`]: Binance's kline CSV layout (DATA.md §1: `open_time,open,high,low,close,volume,
//!   close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore`, epoch ms, with or
//!   without the header row) and the short `timestamp,open,high,low,close,volume` layout; the header is
//!   detected, never assumed. A malformed row is an error naming the line.
//! - [`TimeBars`]: time bars of a fixed interval built from trades (`open_time` aligned to the
//!   interval), for live and capture inputs.

use std::io::BufRead;

use qalpha_engine::event::{Side, Trade, TradeKind};

/// One OHLCV bar.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bar {
    /// Start of the bar, ms since the epoch.
    pub open_time_ms: u64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Base volume.
    pub volume: f64,
    /// Quote volume (0 when the input has none).
    pub quote_volume: f64,
    /// Number of trades (0 when unknown).
    pub trades: u64,
    /// Base volume bought by takers (0 when unknown).
    pub taker_buy_volume: f64,
}

/// A kline file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BarError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {why}")]
    Malformed {
        path: String,
        line: usize,
        why: String,
    },
}

fn num(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses kline CSV text (`origin` names it in errors). Empty lines are skipped.
pub fn parse_klines(text: impl BufRead, origin: &str) -> Result<Vec<Bar>, BarError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.map_err(|source| BarError::Io {
            path: origin.to_string(),
            source,
        })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| BarError::Malformed {
            path: origin.to_string(),
            line: i + 1,
            why,
        };
        let f: Vec<&str> = line.split(',').collect();
        // A header: the first field is not a number.
        if f[0].trim().parse::<u64>().is_err() {
            if i == 0 {
                continue;
            }
            return Err(bad(format!("not a kline row: {line:?}")));
        }
        if f.len() < 6 {
            return Err(bad(format!("{} fields, need at least 6", f.len())));
        }
        let field = |k: usize, name: &str| {
            num(f[k]).ok_or_else(|| bad(format!("{name} {:?} is not a number", f[k])))
        };
        let bar = Bar {
            open_time_ms: f[0].trim().parse().map_err(|_| bad("open_time".into()))?,
            open: field(1, "open")?,
            high: field(2, "high")?,
            low: field(3, "low")?,
            close: field(4, "close")?,
            volume: field(5, "volume")?,
            quote_volume: if f.len() > 7 {
                field(7, "quote_volume")?
            } else {
                0.0
            },
            trades: if f.len() > 8 {
                f[8].trim()
                    .parse()
                    .map_err(|_| bad(format!("count {:?}", f[8])))?
            } else {
                0
            },
            taker_buy_volume: if f.len() > 9 {
                field(9, "taker_buy_volume")?
            } else {
                0.0
            },
        };
        if !(bar.low <= bar.open
            && bar.open <= bar.high
            && bar.low <= bar.close
            && bar.close <= bar.high)
        {
            return Err(bad(format!("inconsistent OHLC {line:?}")));
        }
        out.push(bar);
    }
    Ok(out)
}

/// Reads a kline CSV file.
pub fn read_klines(path: &std::path::Path) -> Result<Vec<Bar>, BarError> {
    let f = std::fs::File::open(path).map_err(|source| BarError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_klines(std::io::BufReader::new(f), &path.display().to_string())
}

/// Time bars from trades: a bar closes when a trade of a later interval arrives (or on `flush`).
#[derive(Clone, Debug)]
pub struct TimeBars {
    interval_ms: u64,
    cur: Option<Bar>,
}

impl TimeBars {
    pub fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms: interval_ms.max(1),
            cur: None,
        }
    }

    /// A trade (`buy`: the taker bought); returns the bar it closed, if any.
    pub fn on_trade(&mut self, time_ms: u64, px: f64, qty: f64, buy: bool) -> Option<Bar> {
        let start = time_ms - time_ms % self.interval_ms;
        let closed = match self.cur {
            Some(b) if b.open_time_ms != start && start > b.open_time_ms => self.cur.take(),
            _ => None,
        };
        let b = self.cur.get_or_insert(Bar {
            open_time_ms: start,
            open: px,
            high: px,
            low: px,
            close: px,
            ..Bar::default()
        });
        b.high = b.high.max(px);
        b.low = b.low.min(px);
        b.close = px;
        b.volume += qty;
        b.quote_volume += px * qty;
        b.trades += 1;
        if buy {
            b.taker_buy_volume += qty;
        }
        closed
    }

    /// A trade event: market trades (single or aggregated) at their matching-engine time; insurance
    /// fund and ADL fills are not market prices and are skipped. Returns the bar it closed, if any.
    pub fn on_trade_event(&mut self, t: &Trade) -> Option<Bar> {
        match t.kind {
            TradeKind::Market | TradeKind::Aggregated => self.on_trade(
                t.trade_time_ms,
                t.px.to_f64(),
                t.qty.to_f64(),
                t.aggressor == Side::Buy,
            ),
            _ => None,
        }
    }

    /// The bar in progress, closed now (end of data).
    pub fn flush(&mut self) -> Option<Bar> {
        self.cur.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_with_or_without_header() {
        let full = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n1784073600000,65014.60,65031.80,64996.80,65011.50,327.207,1784073659999,21273110.50730,5998,222.863,14489221.32700,0\n";
        let b = parse_klines(full.as_bytes(), "t").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].trades, b[0].taker_buy_volume), (5998, 222.863));
        let headless = full.lines().nth(1).unwrap();
        assert_eq!(parse_klines(headless.as_bytes(), "t").unwrap(), b);
        let short = "timestamp,open,high,low,close,volume\n1776606960000,75901.45,75928.59,75901.45,75921.45,3.49275\n";
        assert_eq!(
            parse_klines(short.as_bytes(), "t").unwrap()[0].close,
            75921.45
        );
        let e = parse_klines("1,2,1,3,2,1\n".as_bytes(), "f.csv").unwrap_err();
        assert!(e.to_string().contains("f.csv:1"), "{e}");
    }

    #[test]
    fn time_bars_close_on_the_next_interval() {
        let mut t = TimeBars::new(1000);
        assert!(t.on_trade(1500, 10.0, 1.0, true).is_none());
        assert!(t.on_trade(1900, 12.0, 2.0, false).is_none());
        let b = t.on_trade(2100, 11.0, 1.0, true).unwrap();
        assert_eq!(
            (b.open_time_ms, b.open, b.high, b.low, b.close),
            (1000, 10.0, 12.0, 10.0, 12.0)
        );
        assert_eq!((b.volume, b.trades, b.taker_buy_volume), (3.0, 2, 1.0));
        assert_eq!(t.flush().unwrap().open_time_ms, 2000);
    }
}
