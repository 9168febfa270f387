//! The human summary of a backtest report: the strategy next to its baselines.

use serde_json::Value;

/// Rows: (label, JSON key in `metrics`, how to show it) — the text summary's and the HTML page's.
pub(crate) const ROWS: &[(&str, &str, Fmt)] = &[
    ("PnL", "pnl", Fmt::Text),
    ("final equity", "final_equity", Fmt::Text),
    ("total return", "total_return", Fmt::Pct),
    ("CAGR", "cagr", Fmt::Pct),
    ("Sharpe", "sharpe", Fmt::Num),
    ("Sortino", "sortino", Fmt::Num),
    ("max drawdown", "max_drawdown", Fmt::Pct),
    ("max DD duration", "max_drawdown_duration_ms", Fmt::Dur),
    ("Calmar", "calmar", Fmt::Num),
    ("trades", "trades", Fmt::Num),
    ("win rate", "win_rate", Fmt::Pct),
    ("profit factor", "profit_factor", Fmt::Num),
    ("trades / day", "trades_per_day", Fmt::Num),
    ("avg holding", "avg_holding_ms", Fmt::Dur),
    ("turnover", "turnover", Fmt::Num),
    ("fees", "fees", Fmt::Text),
    ("funding", "funding", Fmt::Text),
];

/// How a metric is shown.
#[derive(Clone, Copy)]
pub(crate) enum Fmt {
    Text,
    Pct,
    Num,
    Dur,
}

/// One metric value as shown.
pub(crate) fn cell(v: &Value, f: Fmt) -> String {
    match (v, f) {
        (Value::Null, _) => "—".into(),
        (Value::String(s), _) => s.clone(),
        (v, Fmt::Pct) => v
            .as_f64()
            .map_or("—".into(), |x| format!("{:.2}%", x * 100.0)),
        (v, Fmt::Dur) => v.as_f64().map_or("—".into(), duration),
        (v, _) => match v.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            Some(x) => format!("{x:.3}"),
            None => v.to_string(),
        },
    }
}

/// `93784000` → `1d 2h 3m`.
pub fn duration(ms: f64) -> String {
    let s = (ms / 1000.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// The strategy and baseline metrics side by side, plus the risk outcome.
pub fn summary(report: &Value) -> String {
    let name = report["strategy"]["name"].as_str().unwrap_or("strategy");
    let cols = [
        (name, &report["metrics"]),
        ("buy & hold", &report["baselines"]["buy_and_hold"]),
        ("flat", &report["baselines"]["flat"]),
    ];
    let mut out = String::new();
    let d = &report["data"];
    let what = match d["bars"].as_u64() {
        Some(n) => format!("{n} bars"),
        None => format!("{} events", d["events"]),
    };
    out.push_str(&format!(
        "backtest {} on {} of {} ({} → {} ms), periodicity of the ratios: {}\n\n",
        name,
        what,
        d["symbol"].as_str().unwrap_or("?"),
        d["from_ms"],
        d["to_ms"],
        duration(
            report["metrics"]["periodicity"]["period_ms"]
                .as_f64()
                .unwrap_or(0.0)
        ),
    ));
    out.push_str(&format!("{:<18}", ""));
    for (c, _) in &cols {
        out.push_str(&format!("{c:>18}"));
    }
    out.push('\n');
    for (label, key, f) in ROWS {
        out.push_str(&format!("{label:<18}"));
        for (_, m) in &cols {
            out.push_str(&format!("{:>18}", cell(&m[*key], *f)));
        }
        out.push('\n');
    }
    if let Some(rows) = report["per_symbol"].as_object().filter(|m| m.len() > 1) {
        out.push_str(&format!(
            "\n{:<16}{:>18}{:>14}{:>8}{:>8}{:>14}{:>14}\n",
            "symbol", "pnl (net)", "fees", "trades", "wins", "funding", "position"
        ));
        for (sym, r) in rows {
            let s = |k: &str| r[k].as_str().unwrap_or("?").to_string();
            out.push_str(&format!(
                "{sym:<16}{:>18}{:>14}{:>8}{:>8}{:>14}{:>14}\n",
                s("pnl"),
                s("fees"),
                r["trades"],
                r["wins"],
                s("funding"),
                s("position"),
            ));
        }
    }
    out.push_str(&format!(
        "\nrisk: final state {}, halt reason {}, {} risk events, {} orders ({} refused by risk)\n",
        report["final_state"].as_str().unwrap_or("?"),
        report["halt_reason"].as_str().unwrap_or("none"),
        report["risk_events"].as_array().map_or(0, Vec::len),
        report["orders"].as_array().map_or(0, Vec::len),
        report["orders"]
            .as_array()
            .map_or(0, |o| o.iter().filter(|x| !x["rejected"].is_null()).count()),
    ));
    out.push_str("Past results on historical data are no promise of future returns.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations() {
        assert_eq!(duration(93_784_000.0), "1d 2h 3m");
        assert_eq!(duration(59_000.0), "59s");
        assert_eq!(duration(3_600_000.0), "1h 0m");
    }
}
