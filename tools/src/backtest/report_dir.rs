//! `qalpha backtest --report DIR`: the report as a person reads it.
//!
//! - `report.txt`: the summary of [`super::text`], the months and the first and last trades;
//! - `equity.png`: the strategy's equity next to its baselines; `drawdown.png`: the strategy's
//!   drawdown below its running peak, in % ([`chart`]);
//! - `report.html`: one self-contained page — tables, the charts as `data:` URIs, no external
//!   file, font or script — that can be mailed or archived as it is ([`html`]).
//!
//! Everything is read from the JSON report (the same numbers as `--json`) except the equity
//! curves, which the JSON does not carry. Times are UTC. [`Progress`] is the command's progress
//! line on stderr.

mod chart;
mod html;
mod progress;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use super::metrics::{EquityPoint, DAY_MS};

pub use chart::{DRAWDOWN_SIZE, EQUITY_SIZE};
pub use progress::Progress;

/// Trades `report.txt` lists at the start and at the end.
const TXT_TRADES: usize = 5;

/// Writes `report.txt`, `equity.png`, `drawdown.png` and `report.html` into `dir` (created with
/// its parents) and returns their paths in that order.
///
/// `curves`: the strategy's equity curve first, then the baselines', each with its label. The
/// drawdown chart is the first curve's.
pub fn write_report_dir(
    dir: &Path,
    report: &Value,
    curves: &[(&str, &[EquityPoint])],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the report folder {}: give --report a folder that can be created \
             (not a path under a file) and that you may write to",
            dir.display()
        )
    })?;
    let name = report["strategy"]["name"].as_str().unwrap_or("strategy");
    let symbol = report["data"]["symbol"].as_str().unwrap_or("");
    let equity = chart::equity_png(&format!("{name} vs baselines: equity, {symbol}"), curves)?;
    let drawdown = chart::drawdown_png(
        &format!("{name}: drawdown below the running peak"),
        curves.first().map_or(&[][..], |c| c.1),
    )?;
    let txt = text_report(report);
    let page = html::page(report, &equity, &drawdown);
    let files: [(&str, &[u8]); 4] = [
        ("report.txt", txt.as_bytes()),
        ("equity.png", &equity),
        ("drawdown.png", &drawdown),
        ("report.html", page.as_bytes()),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (file, bytes) in files {
        let path = dir.join(file);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `report.txt`: the summary, the months, the first and the last trades.
pub fn text_report(report: &Value) -> String {
    let mut out = super::text::summary(report);
    let months = report["metrics"]["monthly"]
        .as_array()
        .map_or(&[][..], |v| v);
    out.push_str("\nmonths (UTC)\n");
    let _ = writeln!(
        out,
        "{:<10}{:>22}{:>22}{:>10}{:>22}",
        "month", "start equity", "end equity", "return", "PnL"
    );
    for m in months {
        let _ = writeln!(
            out,
            "{:<10}{:>22}{:>22}{:>10}{:>22}",
            show(&m["month"]),
            show(&m["start_equity"]),
            show(&m["end_equity"]),
            pct(&m["return"]),
            show(&m["pnl"]),
        );
    }
    let trades = report["trades"].as_array().map_or(&[][..], |v| v);
    if trades.is_empty() {
        out.push_str("\nno closed trades\n");
        return out;
    }
    let head = trades.len().min(TXT_TRADES);
    let _ = writeln!(out, "\nfirst {head} of {} trades", trades.len());
    for (i, t) in trades.iter().enumerate().take(head) {
        out.push_str(&trade_line(i, t));
    }
    let tail_from = trades.len().saturating_sub(TXT_TRADES).max(head);
    if tail_from < trades.len() {
        let _ = writeln!(out, "\nlast {} trades", trades.len() - tail_from);
        for (i, t) in trades.iter().enumerate().skip(tail_from) {
            out.push_str(&trade_line(i, t));
        }
    }
    out
}

fn trade_line(i: usize, t: &Value) -> String {
    format!(
        "#{:<5} {:<10} {:<5} {} @ {} {} -> {} {}  pnl {}  fees {}\n",
        i + 1,
        show(&t["symbol"]),
        show(&t["side"]),
        show(&t["qty"]),
        show(&t["entry_price"]),
        time(&t["entry_time"]),
        show(&t["exit_price"]),
        time(&t["exit_time"]),
        show(&t["pnl"]),
        show(&t["fees"]),
    )
}

/// A JSON value as text: strings without quotes, `null` as a dash.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A fraction as a percentage with two decimals.
fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("—".into(), |x| format!("{:.2}%", x * 100.0))
}

/// An epoch-ms JSON value as a UTC time.
fn time(v: &Value) -> String {
    v.as_u64().map_or_else(|| show(v), utc)
}

/// `YYYY-MM-DD HH:MM` (UTC), with `:SS` when the time is not on a minute.
pub fn utc(t_ms: u64) -> String {
    let (y, mo, d) = civil(t_ms / DAY_MS);
    let s = t_ms % DAY_MS / 1000;
    let (h, mi, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if sec == 0 {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}")
    }
}

/// (year, month, day) of a day count since 1970-01-01 (civil-from-days, proleptic Gregorian).
fn civil(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(utc(1_704_067_199_999), "2023-12-31 23:59:59");
        assert_eq!(utc(1_776_606_960_000), "2026-04-19 13:56");
    }

    #[test]
    fn text_lists_months_and_the_first_and_last_trades() {
        let trade = |i: u64| {
            json!({ "side": "long", "qty": "0.001", "entry_price": "100", "entry_time": i * 60_000,
                    "exit_price": "101", "exit_time": i * 60_000 + 60_000, "pnl": format!("0.{i}"),
                    "fees": "0" })
        };
        let report = json!({
            "strategy": { "name": "sma-cross" },
            "metrics": { "monthly": [{ "month": "1970-01", "start_equity": "100",
                                       "end_equity": "101", "return": 0.01, "pnl": "1" }] },
            "trades": (1..=12).map(trade).collect::<Vec<_>>(),
        });
        let t = text_report(&report);
        assert!(t.starts_with("backtest sma-cross"), "{t}");
        assert!(t.contains("1970-01") && t.contains("1.00%"), "{t}");
        assert!(
            t.contains("first 5 of 12 trades") && t.contains("last 5 trades"),
            "{t}"
        );
        assert!(
            t.contains("#1 ") && t.contains("#12 ") && !t.contains("#6 "),
            "{t}"
        );
        assert!(
            t.contains("1970-01-01 00:01 -> 101 1970-01-01 00:02"),
            "{t}"
        );
    }
}
