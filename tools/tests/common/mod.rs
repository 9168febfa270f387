//! Helpers shared by the integration test files (each test binary uses a subset): the pcap interop
//! tools, and archive CSVs made from a capture for the backtester.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);
pub const EXE: &str = env!("CARGO_BIN_EXE_qalpha");
pub const DEPTH_PATH: &str = "/fapi/v1/depth?symbol=BTCUSDT&limit=1000";
pub const STREAMS: &str =
    "/stream?streams=btcusdt@bookTicker/btcusdt@trade/btcusdt@depth@0ms/btcusdt@markPrice@1s";

pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skip: `{tool}` not found (tools/test.sh installs tshark and tcpdump)");
    }
    ok
}

pub fn qalpha(args: &[&str]) -> serde_json::Value {
    let out = Command::new(EXE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qalpha {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// `1680652700.423575000` → ns, exactly (no float).
pub fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + frac[..9].parse::<u64>().unwrap()
}

pub fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=\t"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// A capture's own trades and venue quotes written as Binance archive `aggTrades` and `bookTicker`
/// CSVs (the archive's exact columns) named for `symbol`, for the backtester's CSV input path.
pub fn archive_csvs(capture: &Path, dir: &Path, symbol: &str) -> [PathBuf; 2] {
    use qalpha_engine::event::MarketPayload;
    use qalpha_engine::replay::CaptureHandler;
    let r = qalpha_engine::capture::CaptureReader::open(capture).unwrap();
    let mut router = qalpha_feeds::replay::VenueRouter::new();
    router.begin_file(r.connections());
    let mut events = Vec::new();
    for rec in r.records() {
        router.route(&rec, &mut events);
    }
    let mut agg = String::from(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n",
    );
    let mut tick = String::from(
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n",
    );
    for (i, ev) in events.iter().enumerate() {
        match ev.payload {
            MarketPayload::Trade(t) => agg.push_str(&format!(
                "{i},{},{},{},{},{},{}\n",
                t.px,
                t.qty,
                t.trade_id,
                t.last_trade_id,
                t.trade_time_ms,
                t.aggressor == qalpha_engine::Side::Sell
            )),
            MarketPayload::Quote(q) => tick.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                q.update_id, q.bid_px, q.bid_qty, q.ask_px, q.ask_qty, ev.exch_ms, ev.exch_ms
            )),
            _ => {}
        }
    }
    let files = [
        dir.join(format!("{symbol}-aggTrades-2023-04-04.csv")),
        dir.join(format!("{symbol}-bookTicker-2023-04-04.csv")),
    ];
    std::fs::write(&files[0], agg).unwrap();
    std::fs::write(&files[1], tick).unwrap();
    files
}
