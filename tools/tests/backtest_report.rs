//! `qalpha backtest --report DIR` on real BTCUSDT 1m klines (the bundled sample `data/sample/klines` (copies of `../shared/data/klines`)): the folder
//! holds the text report, two PNG charts that decode at their stated sizes and one HTML page that
//! links nothing outside itself and shows the JSON report's numbers; a folder that cannot be
//! created is a clear error.

use std::path::{Path, PathBuf};

use clap::Parser;
use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use qalpha_tools::backtest::report_dir::{self, DRAWDOWN_SIZE, EQUITY_SIZE};
use serde_json::Value;

/// The command's arguments as a user gives them (robust to flags added later).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BacktestArgs,
}

fn klines() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/klines/BTCUSDT-1m-2026-04-sample.csv");
    assert!(
        p.is_file(),
        "{} is missing (the bundled sample klines)",
        p.display()
    );
    p
}

/// Runs the backtest through the library and writes the report folder into `dir`.
fn write(data: &Path, dir: &Path) -> (Value, Vec<PathBuf>) {
    let data = data.to_str().unwrap();
    let a = Cli::try_parse_from([
        "qalpha",
        "--data",
        data,
        "--set",
        "strategy.fast=5",
        "--set",
        "strategy.slow=20",
        "--period",
        "1h",
    ])
    .unwrap()
    .args;
    let (report, runs) = cmd::bar_report(&a).unwrap();
    let (main, hold, flat) = &runs;
    let curves = [
        ("sma-cross", &main.out.account.curve[..]),
        ("buy & hold", &hold.out.account.curve[..]),
        ("flat", &flat.out.account.curve[..]),
    ];
    let files = report_dir::write_report_dir(dir, &report, &curves).unwrap();
    (report, files)
}

/// (width, height, RGB pixels) of a PNG file.
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut r = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Every `src=`/`href=` value in `html`.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let q = rest.chars().next().unwrap_or(' ');
            let v = if q == '"' || q == '\'' {
                rest[1..].split(q).next().unwrap_or("")
            } else {
                rest.split([' ', '>']).next().unwrap_or("")
            };
            out.push(v.to_string());
        }
    }
    out
}

#[test]
fn report_folder_from_real_klines() {
    let data = klines();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/report");
    let (report, files) = write(&data, &dir);
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["report.txt", "equity.png", "drawdown.png", "report.html"]
    );
    assert!(files.iter().all(|p| p.is_file() && p.starts_with(&dir)));
    let m = &report["metrics"];
    assert!(m["trades"].as_u64().unwrap() > 0, "the run should trade");

    let txt = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(txt.starts_with("backtest sma-cross on 3000 bars"), "{txt}");
    assert!(
        txt.contains("months (UTC)") && txt.contains("first 5 of"),
        "{txt}"
    );
    assert!(txt.contains("Past results on historical data are no promise of future returns."));

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let links = links(&html);
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links
        .iter()
        .all(|l| l.starts_with("data:image/png;base64,")));
    for external in ["http://", "https://", "<link", "<script", "@import", "url("] {
        assert!(
            !html.contains(external),
            "report.html contains {external:?}"
        );
    }
    let pnl = m["pnl"].as_str().unwrap();
    let hold_pnl = report["baselines"]["buy_and_hold"]["pnl"].as_str().unwrap();
    assert!(html.contains(&format!("<td>{pnl}</td>")), "no PnL {pnl}");
    assert!(html.contains(&format!("<td>{hold_pnl}</td>")));
    assert!(html.contains(m["fees"].as_str().unwrap()));
    for month in m["monthly"].as_array().unwrap() {
        let month = month["month"].as_str().unwrap();
        assert!(
            html.contains(&format!("<td>{month}</td>")),
            "no month {month}"
        );
    }
    let first = &report["trades"][0];
    assert!(html.contains(first["entry_price"].as_str().unwrap()));
    assert!(html.contains(&format!(
        "<td>{}</td>",
        report["final_state"].as_str().unwrap()
    )));
    assert!(html.contains("taker fee (bps)") && html.contains("BTCUSDT-1m-2026-04-sample.csv"));
    assert!(html.contains("Past results on historical data are no promise of future returns."));
    assert!(html.contains("Sharpe and Sortino: simple returns of the equity sampled every 1h 0m"));

    for (file, size) in [("equity.png", EQUITY_SIZE), ("drawdown.png", DRAWDOWN_SIZE)] {
        let (w, h, px) = decode(&dir.join(file));
        assert_eq!((w, h), size, "{file}");
        let white = px.chunks(3).filter(|p| p == &[255, 255, 255]).count();
        let n = (w * h) as usize;
        assert!(
            white < n * 97 / 100 && white > n / 4,
            "{file}: {white} of {n} white"
        );
    }
}

#[test]
fn a_folder_under_a_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let dir = file.join("report");
    let report = serde_json::json!({});
    let err = report_dir::write_report_dir(&dir, &report, &[]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot create the report folder") && msg.contains(&*dir.to_string_lossy()),
        "{msg}"
    );
}
