//! The `train-all` report: data ranges, model sizes, training curves, validation losses, the
//! held-out backtests side by side with the baselines, and the caveats that go with them.

use std::path::Path;

use serde_json::Value;

/// What the report is made of.
pub struct Inputs<'a> {
    pub smoke: bool,
    pub out: &'a Path,
    pub dataset: &'a Value,
    pub reports: &'a [(&'a str, Value)],
    pub check: &'a str,
    /// (symbol, strategy, backtest report JSON)
    pub backtests: &'a [(String, &'a str, Value)],
    pub elapsed_s: f64,
}

fn date(ms: &Value) -> String {
    match ms.as_u64() {
        Some(t) => {
            let (y, m) = crate::backtest::metrics::month_of(t);
            let d = (t / 86_400_000) as i64 - crate::backtest::cmd::days_from_civil(y, m, 1) + 1;
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "—".into(),
    }
}

fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => v.as_str().map_or("—".into(), str::to_string),
    }
}

/// Renders the report.
pub fn render(i: &Inputs<'_>) -> String {
    let mut s = String::new();
    let d = i.dataset;
    s.push_str(&format!(
        "Quantum Alpha training report{}\n{}\n\n",
        if i.smoke {
            " (--smoke: the bundled sample, 1 epoch)"
        } else {
            ""
        },
        i.out.display()
    ));
    s.push_str("DATA\n");
    s.push_str(&format!(
        "  symbols {}, bars of {} ms, {} features (unavailable in this input: {}), horizons {} bars\n",
        d["symbols"],
        d["interval_ms"],
        d["features"].as_array().map_or(0, Vec::len),
        d["unavailable_features"],
        d["horizons"],
    ));
    for split in ["train", "val", "test"] {
        let p = &d["splits"][split];
        s.push_str(&format!(
            "  {split:<5} {} → {}  {} rows\n",
            date(&p["from_ms"]),
            date(&p["to_ms"]),
            p["rows"]
        ));
    }
    s.push_str(&format!("  dropped rows: {}\n\n", d["dropped"]));

    s.push_str("MODELS\n");
    for (m, r) in i.reports {
        let onnx = r["onnx"].as_str().map(Path::new);
        let bytes = onnx
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let curve: Vec<String> = r["val_loss_by_epoch"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| num(v, 5))
            .collect();
        s.push_str(&format!(
            "  {m:<10} params {:>8}  onnx {:>7} bytes  epochs {}  best val loss {}  val loss by epoch [{}]\n",
            r["params"],
            bytes,
            r["epochs"],
            num(&r["best_val_loss"], 5),
            curve.join(", ")
        ));
    }
    s.push_str(&format!("  engine check: {}\n\n", i.check));

    s.push_str("BACKTEST (held-out test split, bar mode: decisions on closed bars, market fills at the next open, taker fee 5 bps)\n");
    s.push_str(&format!(
        "  {:<9} {:<12} {:>14} {:>10} {:>9} {:>9} {:>7}\n",
        "symbol", "strategy", "PnL", "return", "Sharpe", "max DD", "trades"
    ));
    for (sym, strategy, r) in i.backtests {
        let rows = [
            (*strategy, &r["metrics"]),
            ("buy & hold", &r["baselines"]["buy_and_hold"]),
            ("flat", &r["baselines"]["flat"]),
        ];
        for (name, m) in rows {
            if name != *strategy && *strategy != "trinity" {
                continue; // the baselines are shown once, with the Trinity
            }
            s.push_str(&format!(
                "  {:<9} {:<12} {:>14} {:>9.3}% {:>9} {:>8.3}% {:>7}\n",
                sym,
                name,
                m["pnl"].as_str().unwrap_or("—"),
                m["total_return"].as_f64().unwrap_or(0.0) * 100.0,
                num(&m["sharpe"], 3),
                m["max_drawdown"].as_f64().unwrap_or(0.0) * 100.0,
                m["trades"],
            ));
        }
        if *strategy == "trinity" {
            let t = &r["strategy_summary"];
            s.push_str(&format!(
                "  {:<9} {:<12} {} bars, {} inference runs ({} errors), {} intents; risk ended {} ({})\n",
                "",
                "",
                t["bars"].as_str().unwrap_or("?"),
                t["inference_runs"].as_str().unwrap_or("?"),
                t["inference_errors"].as_str().unwrap_or("?"),
                t["intents"].as_str().unwrap_or("?"),
                r["final_state"].as_str().unwrap_or("?"),
                r["halt_reason"].as_str().unwrap_or("no halt")
            ));
        }
    }
    s.push_str(&format!("\nelapsed {:.0} s\n\n", i.elapsed_s));
    s.push_str("CAVEATS\n");
    let mut caveats = vec![
        "Backtests on the held-out split only; no hyper-parameter was tuned on it. One split is one \
         sample of the market: the numbers are not a forecast.",
        "Bar mode has no spread, queue or latency beyond the next open (the tick backtester on \
         captures models those); funding is not applied in bar mode.",
        "Models this small, trained this briefly, mostly learn noise: compare them with the \
         baselines, not with zero. No profit is claimed.",
    ];
    if i.smoke {
        caveats.push(
            "--smoke: 1 epoch on a few thousand 1m bars of the bundled sample — it proves the chain \
             works; the models are not meant to mean anything.",
        );
    }
    for c in caveats {
        s.push_str(&format!("  - {c}\n"));
    }
    s
}
