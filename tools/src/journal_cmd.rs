//! `qalpha journal FILE… [--since T] [--until T] [--kind K,…] [--csv]`: reads the engine's journals in
//! time order — the risk journal (`--risk-journal`: every pre-trade decision on an order, every risk
//! state change, the day's PnL after fills, API-error counts), the order journal (`--journal`: every
//! order command, ack, fill, cancel, reject, amend and the engine's system events) and the control
//! API's audit file (`--control-audit`: operator commands and refusals). A journal cut by a crash
//! reads up to its last whole record and says where it stopped; a file that is none of these is an
//! error naming it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_risk::journal::{JournalError, JournalReader, RiskEventKind, TailStatus};

use crate::backtest::cmd::parse_time;
use crate::backtest::report_dir::utc;

/// The kinds `--kind` accepts.
pub const KINDS: [&str; 12] = [
    "decision",
    "state",
    "day_pnl",
    "api_errors",
    "control",
    "order",
    "ack",
    "fill",
    "cancel",
    "reject",
    "amend",
    "system",
];

/// The order journal's kinds (rendered like decisions: venue, symbol, side, qty @ price).
const ORDER_KINDS: [&str; 6] = ["order", "ack", "fill", "cancel", "reject", "amend"];

#[derive(clap::Args, Debug, Clone)]
pub struct JournalArgs {
    /// Risk journals and control audit files (detected by content).
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// From this time on: epoch ms or YYYY-MM-DD (UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time: epoch ms or YYYY-MM-DD (UTC).
    #[arg(long)]
    pub until: Option<String>,
    /// Only these kinds (comma-separated): decision, state, day_pnl, api_errors (risk journal),
    /// control (control audit), order, ack, fill, cancel, reject, amend, system (order journal).
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// CSV (ts_ms,utc,kind,venue,symbol,side,price,qty,client_id,detail) instead of text.
    #[arg(long)]
    pub csv: bool,
}

/// One journal entry, flattened for printing.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ts_ms: u64,
    pub kind: &'static str,
    pub venue: String,
    pub symbol: String,
    pub side: String,
    pub price: String,
    pub qty: String,
    pub client_id: String,
    pub detail: String,
}

impl Row {
    fn new(ts_ms: u64, kind: &'static str, detail: String) -> Self {
        Row {
            ts_ms,
            kind,
            venue: String::new(),
            symbol: String::new(),
            side: String::new(),
            price: String::new(),
            qty: String::new(),
            client_id: String::new(),
            detail,
        }
    }
}

fn risk_rows(r: &JournalReader) -> Vec<Row> {
    r.events()
        .map(|e| {
            let ts = e.ts_ns / 1_000_000;
            match e.kind {
                RiskEventKind::Decision {
                    venue,
                    symbol,
                    client_id,
                    side,
                    price,
                    qty,
                    reduce_only,
                    reject,
                } => Row {
                    venue: venue.name().to_string(),
                    symbol: symbol.to_string(),
                    side: format!("{side:?}").to_ascii_lowercase(),
                    price: price.to_string(),
                    qty: qty.to_string(),
                    client_id: client_id.as_str().to_string(),
                    ..Row::new(
                        ts,
                        "decision",
                        match reject {
                            None if reduce_only => "accepted (reduce-only)".into(),
                            None => "accepted".into(),
                            Some(r) => format!("refused: {}", r.name()),
                        },
                    )
                },
                RiskEventKind::StateChange {
                    from,
                    to,
                    conservative,
                    switch,
                    detail,
                } => Row::new(
                    ts,
                    "state",
                    format!(
                        "{} -> {} by {} (detail {detail}){}",
                        from.name(),
                        to.name(),
                        switch.name(),
                        if conservative { ", conservative" } else { "" }
                    ),
                ),
                RiskEventKind::DayPnl {
                    utc_day,
                    day_pnl,
                    realized_today,
                    consecutive_losses,
                } => Row::new(
                    ts,
                    "day_pnl",
                    format!(
                        "day {utc_day}: pnl {day_pnl}, realized {realized_today}, {consecutive_losses} losses in a row"
                    ),
                ),
                RiskEventKind::ApiErrors { in_last_min } => Row::new(
                    ts,
                    "api_errors",
                    format!("{in_last_min} in the last minute"),
                ),
            }
        })
        .collect()
}

fn control_rows(path: &Path, text: &str) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not a JSON line of a control audit file",
                path.display(),
                i + 1
            )
        })?;
        let Some(ts) = v["ts_ms"].as_u64().filter(|_| v["kind"] == "control") else {
            bail!("{}:{}: not a control audit entry", path.display(), i + 1);
        };
        out.push(Row::new(
            ts,
            "control",
            format!(
                "{} {} from {}: {} {}",
                v["method"].as_str().unwrap_or("?"),
                v["path"].as_str().unwrap_or("?"),
                v["peer"].as_str().unwrap_or("?"),
                v["status"],
                v["outcome"].as_str().unwrap_or("")
            ),
        ));
    }
    Ok(out)
}

/// The order journal's lines (`--journal`; the header line first).
fn order_rows(path: &Path, text: &str) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            // A crash mid-write leaves a partial last line: read up to it and say so.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {
                eprintln!("warning: {}: the last line is cut short (a crash while writing); read the lines before it", at());
                break;
            }
            Err(e) => bail!("{}: not a JSON line of an order journal: {e}", at()),
        };
        let kind = v["kind"].as_str().unwrap_or("");
        let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
            bail!("{}: unknown order journal kind {kind:?}", at());
        };
        let ts = v["ts_ms"]
            .as_u64()
            .with_context(|| format!("{}: no ts_ms", at()))?;
        let text_of = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let mut row = Row::new(ts, kind, String::new());
        if kind == "system" {
            row.detail = format!("{} {}", text_of("event"), v["detail"]);
        } else {
            row.venue = text_of("venue");
            row.symbol = text_of("symbol");
            row.side = text_of("side");
            row.client_id = text_of("client_id");
            if kind == "order" {
                row.price = text_of("price");
                row.qty = text_of("qty");
                row.detail = match text_of("action").as_str() {
                    "new" => format!(
                        "new {} {}{}",
                        text_of("type"),
                        text_of("tif"),
                        if v["reduce_only"] == true {
                            " reduce-only"
                        } else {
                            ""
                        }
                    ),
                    a => a.to_string(),
                };
            } else {
                row.price = text_of("last_px");
                row.qty = text_of("last_qty");
                row.detail = format!(
                    "{} cum {} leaves {}{}",
                    text_of("report"),
                    text_of("cum_qty"),
                    text_of("leaves_qty"),
                    match v["reason"].as_i64() {
                        Some(r) if r != 0 => format!(" reason {r}"),
                        _ => String::new(),
                    }
                );
            }
        }
        out.push(row);
    }
    Ok(out)
}

/// Every entry of `files`, in time order (stable: a file's own order kept on ties); warnings on
/// stderr for journals cut short.
pub fn read(files: &[PathBuf]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for f in files {
        match JournalReader::open(f) {
            Ok(r) => {
                match r.tail() {
                    TailStatus::Clean => {}
                    TailStatus::Truncated { at } => eprintln!(
                        "warning: {} ends inside a record at byte {at} (a crash while writing); read {} whole records",
                        f.display(),
                        r.event_count()
                    ),
                    TailStatus::Corrupt { at } => eprintln!(
                        "warning: {}: a damaged record at byte {at}; read the {} records before it",
                        f.display(),
                        r.event_count()
                    ),
                }
                rows.extend(risk_rows(&r));
            }
            Err(JournalError::NotAJournal { .. }) => {
                let text = std::fs::read_to_string(f).with_context(|| {
                    format!(
                        "{}: neither a risk journal, an order journal nor a control audit file",
                        f.display()
                    )
                })?;
                if text
                    .lines()
                    .next()
                    .is_some_and(|l| l.contains(crate::order_journal::HEADER_KEY))
                {
                    rows.extend(order_rows(f, &text)?);
                } else {
                    rows.extend(control_rows(f, &text)?);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    rows.sort_by_key(|r| r.ts_ms);
    Ok(rows)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The rows as text or CSV.
pub fn render(rows: &[Row], csv: bool) -> String {
    let mut out = String::new();
    if csv {
        out.push_str("ts_ms,utc,kind,venue,symbol,side,price,qty,client_id,detail\n");
    }
    for r in rows {
        if csv {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{}",
                r.ts_ms,
                utc(r.ts_ms),
                r.kind,
                r.venue,
                r.symbol,
                r.side,
                r.price,
                r.qty,
                csv_field(&r.client_id),
                csv_field(&r.detail)
            );
        } else if r.kind == "decision" || ORDER_KINDS.contains(&r.kind) {
            let _ = writeln!(
                out,
                "{}  {:<10} {} {} {} {} @ {}  {}  ({})",
                utc(r.ts_ms),
                r.kind,
                r.venue,
                r.symbol,
                r.side,
                r.qty,
                r.price,
                r.detail,
                r.client_id
            );
        } else {
            let _ = writeln!(out, "{}  {:<10} {}", utc(r.ts_ms), r.kind, r.detail);
        }
    }
    out
}

/// `qalpha journal`.
pub fn run(a: JournalArgs) -> Result<()> {
    if let Some(k) = a.kind.iter().find(|k| !KINDS.contains(&k.as_str())) {
        bail!("--kind {k:?}: use {}", KINDS.join(", "));
    }
    let since = a.since.as_deref().map(parse_time).transpose()?;
    let until = a.until.as_deref().map(parse_time).transpose()?;
    let rows: Vec<Row> = read(&a.files)?
        .into_iter()
        .filter(|r| a.kind.is_empty() || a.kind.iter().any(|k| k == r.kind))
        .filter(|r| since.is_none_or(|s| r.ts_ms >= s) && until.is_none_or(|u| r.ts_ms < u))
        .collect();
    print!("{}", render(&rows, a.csv));
    Ok(())
}
