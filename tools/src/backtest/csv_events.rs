//! Binance archive CSVs as market events, for tick strategies (DATA.md §1):
//!
//! - `aggTrades`: `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
//!   is_buyer_maker` → `Trade` (aggregated; the taker sold when the buyer was the maker);
//! - `bookTicker`: `update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,
//!   transaction_time,event_time` → the top of book.
//!
//! The header row is detected, never assumed. Numbers are parsed exactly (fixed point, no float).
//! A malformed row is an error naming the file and line. The archives carry no depth, so a
//! `bookTicker` row plays the role of the rebuilt book's top (`BookTop`, after one `BookSynced`):
//! it *is* the venue's best bid and offer, and the executor trades only on a book it trusts. The
//! receive time of each event is its exchange time (the archive has no local clock): latency
//! models then add the delays.
//!
//! [`merge`] orders several files' events by time (stable: a quote and a trade at the same
//! millisecond keep file order).

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook, Trade, TradeKind};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

/// What an archive CSV holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvKind {
    AggTrades,
    BookTicker,
}

const AGG_HEADER: &str = "agg_trade_id";
const TICKER_HEADER: &str = "update_id";

/// Which layout a file has: by its header, or by its column count (7 both…) and file name.
pub fn detect(path: &Path) -> Result<CsvKind> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut first = String::new();
    BufReader::new(f)
        .read_line(&mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let first = first.trim();
    if first.starts_with(AGG_HEADER) {
        return Ok(CsvKind::AggTrades);
    }
    if first.starts_with(TICKER_HEADER) {
        return Ok(CsvKind::BookTicker);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let cols = first.split(',').count();
    if name.contains("aggtrades") && cols == 7 {
        Ok(CsvKind::AggTrades)
    } else if name.contains("bookticker") && cols == 7 {
        Ok(CsvKind::BookTicker)
    } else {
        bail!(
            "{}: not a Binance aggTrades or bookTicker CSV (no header, and the file name says neither)",
            path.display()
        )
    }
}

fn event(symbol: Symbol, time_ms: u64, payload: MarketPayload) -> MarketEvent {
    MarketEvent {
        venue: Venue::BinanceUsdm,
        symbol,
        recv_ns: time_ms.saturating_mul(1_000_000),
        decoded_ns: time_ms.saturating_mul(1_000_000),
        exch_ms: time_ms,
        payload,
    }
}

/// Reads one archive CSV of `symbol` (the files do not name it).
pub fn read(path: &Path, symbol: Symbol) -> Result<Vec<MarketEvent>> {
    let kind = detect(path)?;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let line = line.trim();
        if line.is_empty() || (i == 0 && !line.starts_with(|c: char| c.is_ascii_digit())) {
            continue;
        }
        let bad = |why: String| anyhow::anyhow!("{}:{}: {why}", path.display(), i + 1);
        let c: Vec<&str> = line.split(',').map(str::trim).collect();
        if c.len() != 7 {
            return Err(bad(format!("{} columns, expected 7", c.len())));
        }
        let int = |k: usize, what: &str| -> Result<u64> {
            c[k].parse::<u64>()
                .map_err(|_| bad(format!("{what} {:?} is not a whole number", c[k])))
        };
        let px = |k: usize, what: &str| -> Result<Price> {
            Price::parse(c[k]).map_err(|e| bad(format!("{what} {:?}: {e:?}", c[k])))
        };
        let qty = |k: usize, what: &str| -> Result<Qty> {
            Qty::parse(c[k]).map_err(|e| bad(format!("{what} {:?}: {e:?}", c[k])))
        };
        match kind {
            CsvKind::AggTrades => {
                let buyer_maker = match c[6] {
                    "true" | "True" | "TRUE" => true,
                    "false" | "False" | "FALSE" => false,
                    other => {
                        return Err(bad(format!("is_buyer_maker {other:?} is not true/false")))
                    }
                };
                let t = Trade {
                    // As the live aggTrade decoder: ids of the underlying trades.
                    trade_id: int(3, "first_trade_id")?,
                    last_trade_id: int(4, "last_trade_id")?,
                    px: px(1, "price")?,
                    qty: qty(2, "quantity")?,
                    aggressor: if buyer_maker { Side::Sell } else { Side::Buy },
                    kind: TradeKind::Aggregated,
                    trade_time_ms: int(5, "transact_time")?,
                };
                out.push(event(symbol, t.trade_time_ms, MarketPayload::Trade(t)));
            }
            CsvKind::BookTicker => {
                let top = TopOfBook {
                    update_id: int(0, "update_id")?,
                    bid_px: px(1, "best_bid_price")?,
                    bid_qty: qty(2, "best_bid_qty")?,
                    ask_px: px(3, "best_ask_price")?,
                    ask_qty: qty(4, "best_ask_qty")?,
                };
                if out.is_empty() {
                    let t = int(6, "event_time")?;
                    out.push(event(
                        symbol,
                        t,
                        MarketPayload::BookSynced {
                            update_id: top.update_id,
                        },
                    ));
                }
                out.push(event(
                    symbol,
                    int(6, "event_time")?,
                    MarketPayload::BookTop(top),
                ));
            }
        }
    }
    if out.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(out)
}

/// The events of several files in time order (stable).
pub fn merge(mut files: Vec<Vec<MarketEvent>>) -> Vec<MarketEvent> {
    let mut all: Vec<MarketEvent> = files.drain(..).flatten().collect();
    all.sort_by_key(|e| e.recv_ns);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn both_layouts_with_or_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let btc = Symbol::parse("BTCUSDT").unwrap();
        let agg = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n\
                   3383271130,65014.6,0.03,7900100566,7900100566,1784073600069,true\n";
        let a = read(&write(dir.path(), "a.csv", agg), btc).unwrap();
        let MarketPayload::Trade(t) = a[0].payload else {
            panic!()
        };
        assert_eq!(
            (t.px, t.qty, t.aggressor),
            (
                Price::parse("65014.6").unwrap(),
                Qty::parse("0.03").unwrap(),
                Side::Sell
            )
        );
        assert_eq!(a[0].exch_ms, 1784073600069);
        let headless = write(
            dir.path(),
            "BTCUSDT-aggTrades-2026-07-15.csv",
            agg.lines().nth(1).unwrap(),
        );
        assert_eq!(read(&headless, btc).unwrap(), a);

        let bt = "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n\
                  2948552298577,25115.90000000,13.09700000,25116.00000000,1.23000000,1686787200009,1686787200015\n";
        let b = read(&write(dir.path(), "b.csv", bt), btc).unwrap();
        assert!(matches!(b[0].payload, MarketPayload::BookSynced { .. }));
        let MarketPayload::BookTop(top) = b[1].payload else {
            panic!()
        };
        assert_eq!(top.ask_qty, Qty::parse("1.23").unwrap());
        assert_eq!(b[1].exch_ms, 1686787200015);
        let m = merge(vec![a, b]);
        assert!(m.windows(2).all(|w| w[0].recv_ns <= w[1].recv_ns));
    }

    #[test]
    fn malformed_rows_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let btc = Symbol::parse("BTCUSDT").unwrap();
        let p = write(
            dir.path(),
            "x.csv",
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n1,2,3,4,5,6,maybe\n",
        );
        let e = read(&p, btc).unwrap_err().to_string();
        assert!(e.contains("x.csv:2") && e.contains("maybe"), "{e}");
        let p = write(dir.path(), "y.csv", "1,2,3\n");
        assert!(read(&p, btc).unwrap_err().to_string().contains("neither"));
    }
}
