//! `report.html`: one self-contained page — the strategy against its baselines, the months, the
//! trades, the risk outcome and the settings, with the two charts embedded as `data:` URIs.
//!
//! It links nothing (no stylesheet, script, font or image from elsewhere), so it opens the same
//! offline, from a mail attachment or an archive years later. Every string taken from the report
//! goes through [`esc`]: strategy parameters and file names come from the user.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;

use super::super::text::{cell, duration, ROWS as METRICS};
use super::{pct, show, time};

/// Rows of the trades and risk-event tables at most; the JSON report has them all.
pub const MAX_ROWS: usize = 500;

const DISCLAIMER: &str = "Past results on historical data are no promise of future returns.";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;\
max-width:1240px;padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;\
border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.9em}th,td{padding:.25em .7em;\
border-bottom:1px solid #eee;text-align:right}th:first-child,td:first-child{text-align:left}\
th{background:#f5f5f5}.neg{color:#b00}.pos{color:#070}.note{color:#555;font-size:.9em}\
img{max-width:100%;height:auto;border:1px solid #eee}.disclaimer{margin-top:2em;font-weight:bold}";

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `neg`/`pos` class of a signed number or decimal string, for colouring.
fn sign_class(v: &Value) -> &'static str {
    let neg = match v {
        Value::String(s) => s.starts_with('-'),
        v => v.as_f64().is_some_and(|x| x < 0.0),
    };
    let zero = match v {
        Value::String(s) => s
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.'),
        v => v.as_f64() == Some(0.0),
    };
    match (neg, zero) {
        (_, true) => "",
        (true, _) => " class=\"neg\"",
        (false, _) => " class=\"pos\"",
    }
}

/// One table row; `cells` are already escaped HTML.
fn row(out: &mut String, cells: &[String]) {
    out.push_str("<tr>");
    for c in cells {
        let _ = write!(out, "<td>{c}</td>");
    }
    out.push_str("</tr>\n");
}

fn head(out: &mut String, cols: &[&str]) {
    out.push_str("<table>\n<tr>");
    for c in cols {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr>\n");
}

fn signed(v: &Value, text: String) -> String {
    format!("<span{}>{}</span>", sign_class(v), esc(&text))
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[][..], |a| a)
}

/// The page.
pub fn page(report: &Value, equity_png: &[u8], drawdown_png: &[u8]) -> String {
    let name = report["strategy"]["name"].as_str().unwrap_or("strategy");
    let d = &report["data"];
    let mut out =
        String::with_capacity(64 * 1024 + (equity_png.len() + drawdown_png.len()) * 4 / 3);
    let title = format!(
        "Backtest: {name} on {}",
        d["symbol"].as_str().unwrap_or("?")
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(
        out,
        "<p>{} bars of {} from {} to {} (UTC).</p>",
        esc(&show(&d["bars"])),
        esc(&d["interval_ms"].as_f64().map_or("?".into(), duration)),
        esc(&time(&d["from_ms"])),
        esc(&time(&d["to_ms"])),
    );

    metrics_section(&mut out, report, name);
    out.push_str("<h2>Equity</h2>\n");
    image(
        &mut out,
        equity_png,
        &format!("equity of {name} and the baselines"),
    );
    out.push_str("<h2>Drawdown</h2>\n");
    image(&mut out, drawdown_png, &format!("drawdown of {name}"));
    months_section(&mut out, &report["metrics"]["monthly"]);
    symbols_section(&mut out, &report["per_symbol"]);
    trades_section(&mut out, &report["trades"]);
    risk_section(&mut out, report);
    settings_section(&mut out, report);
    let _ = write!(
        out,
        "<p class=\"disclaimer\">{}</p>\n</body>\n</html>\n",
        esc(DISCLAIMER)
    );
    out
}

fn image(out: &mut String, png: &[u8], alt: &str) {
    let _ = writeln!(
        out,
        "<p><img alt=\"{}\" src=\"data:image/png;base64,{}\"></p>",
        esc(alt),
        base64::engine::general_purpose::STANDARD.encode(png)
    );
}

fn metrics_section(out: &mut String, report: &Value, name: &str) {
    let cols = [
        (name, &report["metrics"]),
        ("buy & hold", &report["baselines"]["buy_and_hold"]),
        ("flat", &report["baselines"]["flat"]),
    ];
    out.push_str("<h2>Strategy and baselines</h2>\n");
    head(out, &["", cols[0].0, cols[1].0, cols[2].0]);
    for (label, key, f) in METRICS {
        let mut cells = vec![esc(label)];
        cells.extend(cols.iter().map(|(_, m)| esc(&cell(&m[*key], *f))));
        row(out, &cells);
    }
    out.push_str("</table>\n");
    let p = &report["metrics"]["periodicity"];
    let _ = writeln!(
        out,
        "<p class=\"note\">Sharpe and Sortino: simple returns of the equity sampled every {} \
         ({} returns), annualized by √{} periods a year, risk-free rate 0. Buy &amp; hold buys \
         the strategy's quantity at the first open and sells at the last close, through the same \
         fills and fees; flat never trades.</p>",
        esc(&p["period_ms"].as_f64().map_or("?".into(), duration)),
        esc(&show(&p["samples"])),
        esc(&p["periods_per_year"]
            .as_f64()
            .map_or("?".into(), |x| format!("{x:.2}"))),
    );
}

fn months_section(out: &mut String, months: &Value) {
    out.push_str("<h2>Months (UTC)</h2>\n");
    let months = items(months);
    if months.is_empty() {
        out.push_str("<p>No months.</p>\n");
        return;
    }
    head(
        out,
        &["month", "start equity", "end equity", "return", "PnL"],
    );
    for m in months {
        row(
            out,
            &[
                esc(&show(&m["month"])),
                esc(&show(&m["start_equity"])),
                esc(&show(&m["end_equity"])),
                signed(&m["return"], pct(&m["return"])),
                signed(&m["pnl"], show(&m["pnl"])),
            ],
        );
    }
    out.push_str("</table>\n");
}

/// Each symbol's share, when the run had several.
fn symbols_section(out: &mut String, per_symbol: &Value) {
    let Some(rows) = per_symbol.as_object().filter(|m| m.len() > 1) else {
        return;
    };
    out.push_str("<h2>Symbols</h2>\n");
    head(
        out,
        &[
            "symbol",
            "PnL (net)",
            "fees",
            "funding",
            "trades",
            "wins",
            "orders",
            "position",
        ],
    );
    for (sym, r) in rows {
        row(
            out,
            &[
                esc(sym),
                signed(&r["pnl"], show(&r["pnl"])),
                esc(&show(&r["fees"])),
                esc(&show(&r["funding"])),
                esc(&show(&r["trades"])),
                esc(&show(&r["wins"])),
                esc(&show(&r["orders"])),
                esc(&show(&r["position"])),
            ],
        );
    }
    out.push_str("</table>\n");
}

fn trades_section(out: &mut String, trades: &Value) {
    let trades = items(trades);
    let _ = writeln!(out, "<h2>Trades ({})</h2>", trades.len());
    if trades.is_empty() {
        out.push_str("<p>No closed trades.</p>\n");
        return;
    }
    if trades.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">The first {MAX_ROWS} of {} trades; the JSON report (--json) has \
             them all.</p>",
            trades.len()
        );
    }
    head(
        out,
        &[
            "#",
            "symbol",
            "side",
            "qty",
            "entry (UTC)",
            "entry price",
            "exit (UTC)",
            "exit price",
            "PnL",
            "fees",
        ],
    );
    for (i, t) in trades.iter().take(MAX_ROWS).enumerate() {
        row(
            out,
            &[
                (i + 1).to_string(),
                esc(&show(&t["symbol"])),
                esc(&show(&t["side"])),
                esc(&show(&t["qty"])),
                esc(&time(&t["entry_time"])),
                esc(&show(&t["entry_price"])),
                esc(&time(&t["exit_time"])),
                esc(&show(&t["exit_price"])),
                signed(&t["pnl"], show(&t["pnl"])),
                esc(&show(&t["fees"])),
            ],
        );
    }
    out.push_str("</table>\n");
}

fn risk_section(out: &mut String, report: &Value) {
    out.push_str("<h2>Risk</h2>\n");
    let orders = items(&report["orders"]);
    let refused = orders.iter().filter(|o| !o["rejected"].is_null()).count();
    let halted_at = report["halted_at_ns"]
        .as_u64()
        .map_or("—".into(), |ns| super::utc(ns / 1_000_000));
    out.push_str("<table>\n");
    for (k, v) in [
        ("final state", show(&report["final_state"])),
        ("halt reason", show(&report["halt_reason"])),
        ("halted at (UTC)", halted_at),
        ("orders", orders.len().to_string()),
        ("refused by risk", refused.to_string()),
        ("open orders at the end", show(&report["open_orders"])),
    ] {
        row(out, &[esc(k), esc(&v)]);
    }
    if let Some(p) = report["final_positions"].as_object() {
        for (sym, q) in p {
            row(out, &[esc(&format!("final position {sym}")), esc(&show(q))]);
        }
    }
    out.push_str("</table>\n");
    let events = items(&report["risk_events"]);
    let _ = writeln!(out, "<h3>Risk events ({})</h3>", events.len());
    if events.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    if events.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">The first {MAX_ROWS} of {} events; the JSON report has them \
             all.</p>",
            events.len()
        );
    }
    head(
        out,
        &["time (UTC)", "switch", "state", "conservative", "detail"],
    );
    for e in events.iter().take(MAX_ROWS) {
        let t = e["ts_ns"]
            .as_u64()
            .map_or_else(|| show(&e["ts_ns"]), |ns| super::utc(ns / 1_000_000));
        row(
            out,
            &[
                esc(&t),
                esc(&show(&e["switch"])),
                esc(&show(&e["state"])),
                esc(&show(&e["conservative"])),
                esc(&show(&e["detail"])),
            ],
        );
    }
    out.push_str("</table>\n");
}

fn settings_section(out: &mut String, report: &Value) {
    out.push_str("<h2>Settings</h2>\n");
    let s = &report["settings"];
    let d = &report["data"];
    let params = report["strategy"]["params"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "defaults".into());
    let files = items(&d["files"])
        .iter()
        .map(|f| esc(&show(f)))
        .collect::<Vec<_>>()
        .join("<br>");
    out.push_str("<table>\n");
    for (k, v) in [
        ("strategy", show(&report["strategy"]["name"])),
        ("parameters", params),
        ("symbol", show(&d["symbol"])),
        ("initial equity", show(&s["initial_equity"])),
        ("maker fee (bps)", show(&s["fees"]["maker_bps"])),
        ("taker fee (bps)", show(&s["fees"]["taker_bps"])),
        ("fills", show(&s["fills"])),
        ("seed", show(&s["seed"])),
        ("mode", show(&report["mode"])),
    ] {
        row(out, &[esc(k), esc(&v)]);
    }
    row(out, &[esc("data files"), files]);
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::text::Fmt;
    use serde_json::json;

    #[test]
    fn report_strings_are_escaped() {
        let r = json!({
            "strategy": { "name": "<script>x</script>", "params": { "a": "\"&'" } },
            "data": { "symbol": "BTC<USDT", "files": ["/d/<a>.csv"] },
            "metrics": { "pnl": "-1.5", "monthly": [] },
            "trades": [],
        });
        let p = page(&r, b"\x89PNG", b"");
        assert!(!p.contains("<script>") && p.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(p.contains("a=&quot;&amp;&#39;") && p.contains("/d/&lt;a&gt;.csv"));
        assert!(p.contains("BTC&lt;USDT") && p.contains(DISCLAIMER));
        assert!(p.contains("src=\"data:image/png;base64,iVBORw==\""));
    }

    #[test]
    fn long_tables_are_capped_with_a_note() {
        let t = json!({ "side": "long", "pnl": "1", "entry_time": 0, "exit_time": 60_000 });
        let r = json!({ "trades": vec![t; MAX_ROWS + 3] });
        let p = page(&r, b"", b"");
        assert!(p.contains(&format!("The first {MAX_ROWS} of {} trades", MAX_ROWS + 3)));
        assert_eq!(p.matches("<td>long</td>").count(), MAX_ROWS);
    }

    #[test]
    fn cells_match_the_text_summary() {
        assert_eq!(cell(&json!(0.1234), Fmt::Pct), "12.34%");
        assert_eq!(cell(&json!(12), Fmt::Num), "12");
        assert_eq!(cell(&json!(1.23456), Fmt::Num), "1.235");
        assert_eq!(cell(&Value::Null, Fmt::Num), "—");
        assert_eq!(cell(&json!(3_600_000), Fmt::Dur), "1h 0m");
        assert_eq!(sign_class(&json!("-0.5")), " class=\"neg\"");
        assert_eq!(sign_class(&json!("0")), "");
    }
}
