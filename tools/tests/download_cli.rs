//! `qalpha download` (the real binary) against a local HTTP server on 127.0.0.1 that serves a
//! temporary folder laid out exactly like data.binance.vision (docs/DATA.md §1): zips of one CSV,
//! each with a `<sha256>  <name>` `.CHECKSUM` beside it, 404 for anything absent, `Range` honoured.
//!
//! The rows are real: XRPUSDT 5m klines, 1h mark-price klines and funding rates from
//! `../shared/data/klines/` (2021-11-15 → 21, funding to 2021-12-18), CTKUSDT aggregated trades from
//! the cryptofeed capture. The kline source has six columns (freqtrade's), so the archive's other
//! six are derived (`close_time = open_time + 5m − 1 ms`) or 0. The source holds one week, so the
//! two "full months" of the first test are that week's rows moved back 61 and 31 days (to
//! 09-15…21 and 10-15…21); 2021-11 is served as its real daily files only, like a current month.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

const DAY_MS: u64 = 86_400_000;
const KLINE_HEADER: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore";

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// Requests seen by the server: `path` or `path range=bytes=N-`.
type Log = Arc<Mutex<Vec<String>>>;

/// A one-request-per-connection HTTP/1.1 file server over `root`, on 127.0.0.1 only.
fn serve(root: PathBuf) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let l = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let (root, log) = (root.clone(), l.clone());
            std::thread::spawn(move || answer(conn, &root, &log));
        }
    });
    (base, log)
}

fn answer(mut conn: TcpStream, root: &Path, log: &Log) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().unwrap().push(match &range {
        Some(r) => format!("{path} range={r}"),
        None => path.clone(),
    });
    let file = root.join(path.trim_start_matches('/'));
    let (status, extra, body) = match std::fs::read(&file) {
        Ok(b) if !path.contains("..") => {
            let from = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            match from {
                Some(n) if n < b.len() => (
                    "206 Partial Content",
                    format!("Content-Range: bytes {n}-{}/{}\r\n", b.len() - 1, b.len()),
                    b[n..].to_vec(),
                ),
                Some(_) => ("416 Range Not Satisfiable", String::new(), Vec::new()),
                None => ("200 OK", String::new(), b),
            }
        }
        _ => (
            "404 Not Found",
            String::new(),
            b"<Error>NoSuchKey</Error>".to_vec(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

fn zip_of(name: &str, body: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, opts).unwrap();
    w.write_all(body).unwrap();
    w.finish().unwrap().into_inner()
}

fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Puts `zip` at `path` (below the archive root) with a `.CHECKSUM` naming `sum`.
fn put_raw(root: &Path, path: &str, zip: &[u8], sum: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, zip).unwrap();
    let name = p.file_name().unwrap().to_str().unwrap();
    std::fs::write(
        format!("{}.CHECKSUM", p.display()),
        format!("{sum}  {name}\n"),
    )
    .unwrap();
}

/// Puts a correct archive file: `{stem}.zip` holding `{stem}.csv`, its checksum beside it.
fn put(root: &Path, path: &str, csv: &str) -> Vec<u8> {
    let stem = Path::new(path).file_stem().unwrap().to_str().unwrap();
    let zip = zip_of(&format!("{stem}.csv"), csv.as_bytes());
    put_raw(root, path, &zip, &sha_hex(&zip));
    zip
}

/// Real XRPUSDT 5m rows in the archive's 12 columns, moved by `shift_ms`.
fn kline_rows(shift_ms: u64) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(shared("klines/binance-usdm-xrpusdt-5m.csv")?).unwrap();
    Some(
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let t: u64 = f[0].parse::<u64>().unwrap() - shift_ms;
                format!(
                    "{t},{},{},{},{},{},{},0,0,0,0,0",
                    f[1],
                    f[2],
                    f[3],
                    f[4],
                    f[5],
                    t + 299_999
                )
            })
            .collect(),
    )
}

fn csv(header: Option<&str>, rows: &[String]) -> String {
    let mut s = header.map(|h| format!("{h}\n")).unwrap_or_default();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Runs `qalpha download ARGS` (whitespace-separated) with the summary in `out/summary.json`.
fn qalpha(base: &str, out: &Path, args: &str) -> (Output, Value) {
    let json = out.join("summary.json");
    let _ = std::fs::remove_file(&json);
    let o = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .arg("download")
        .args(args.split_whitespace())
        .args(["--base-url", base, "--timeout-s", "10"])
        .args(if args.contains("--jobs") {
            &[][..]
        } else {
            &["--jobs", "3"][..]
        })
        .arg("--out")
        .arg(out)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let v = std::fs::read_to_string(&json)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (o, v)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn months_then_days_normalized_then_a_rerun_asks_nothing() {
    let (Some(sep), Some(oct), Some(nov)) = (
        kline_rows(61 * DAY_MS),
        kline_rows(31 * DAY_MS),
        kline_rows(0),
    ) else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    let m = "data/futures/um/monthly/klines/XRPUSDT/5m";
    // Older files have no header, newer ones do (DATA.md §1).
    put(
        root,
        &format!("{m}/XRPUSDT-5m-2021-09.zip"),
        &csv(None, &sep),
    );
    put(
        root,
        &format!("{m}/XRPUSDT-5m-2021-10.zip"),
        &csv(Some(KLINE_HEADER), &oct),
    );
    let mut by_day: Vec<(u32, Vec<String>)> = Vec::new();
    for r in &nov {
        let t: u64 = r.split(',').next().unwrap().parse().unwrap();
        let day = 15 + ((t - 1_636_934_400_000) / DAY_MS) as u32;
        match by_day.last_mut() {
            Some((d, rows)) if *d == day => rows.push(r.clone()),
            _ => by_day.push((day, vec![r.clone()])),
        }
    }
    assert_eq!(by_day.len(), 7);
    for (d, rows) in &by_day {
        let p = format!("data/futures/um/daily/klines/XRPUSDT/5m/XRPUSDT-5m-2021-11-{d:02}.zip");
        put(root, &p, &csv(Some(KLINE_HEADER), rows));
    }
    let (base, log) = serve(root.to_path_buf());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("binance");
    let args = "--symbols xrpusdt --kind klines --interval 5m --from 2021-09 --to 2021-11";

    let (o, s) = qalpha(&base, &out, args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s["downloaded"], 9, "{s}");
    assert_eq!(s["missing"], 23, "2021-11-01…14 and 22…30: {s}");
    assert_eq!(s["monthly_fallbacks"], 1);
    assert_eq!(s["headers_added"], 1, "the 2021-09 file had none");
    assert_eq!(s["rows"], 3 * nov.len() as u64);
    assert_eq!(
        (s["checksum_mismatch"].as_u64(), s["corrupt"].as_u64()),
        (Some(0), Some(0))
    );
    let requests = log.lock().unwrap().clone();
    // 2 × (CHECKSUM + zip), the 2021-11 monthly CHECKSUM (404), 30 daily CHECKSUMs, 7 daily zips.
    assert_eq!(requests.len(), 4 + 1 + 30 + 7, "{requests:#?}");
    for want in [
        "/data/futures/um/monthly/klines/XRPUSDT/5m/XRPUSDT-5m-2021-09.zip",
        "/data/futures/um/monthly/klines/XRPUSDT/5m/XRPUSDT-5m-2021-10.zip.CHECKSUM",
        "/data/futures/um/monthly/klines/XRPUSDT/5m/XRPUSDT-5m-2021-11.zip.CHECKSUM",
        "/data/futures/um/daily/klines/XRPUSDT/5m/XRPUSDT-5m-2021-11-01.zip.CHECKSUM",
        "/data/futures/um/daily/klines/XRPUSDT/5m/XRPUSDT-5m-2021-11-21.zip",
    ] {
        assert!(requests.iter().any(|r| r == want), "{want} not requested");
    }
    assert!(!requests.iter().any(|r| r.ends_with("2021-11.zip")));

    // Every CSV: the documented header, then exactly the rows served.
    let dir = out.join("klines/XRPUSDT/5m");
    let mut expect: Vec<(String, &[String])> = vec![
        ("XRPUSDT-5m-2021-09.csv".into(), &sep),
        ("XRPUSDT-5m-2021-10.csv".into(), &oct),
    ];
    for (d, rows) in &by_day {
        expect.push((format!("XRPUSDT-5m-2021-11-{d:02}.csv"), rows));
    }
    let mut csvs = Vec::new();
    for (name, rows) in &expect {
        let p = dir.join(name);
        let got = std::fs::read_to_string(&p).unwrap();
        assert_eq!(got, csv(Some(KLINE_HEADER), rows), "{name}");
        csvs.push(p);
    }
    let all = files_under(&out);
    assert!(
        !all.iter().any(|p| p.to_string_lossy().ends_with(".part")),
        "{all:#?}"
    );
    // `qalpha dataset` and `backtest` read these through read_klines.
    let mut bars = Vec::new();
    for p in &csvs {
        bars.extend(qalpha_strategy::bars::read_klines(p).unwrap());
    }
    assert_eq!(bars.len(), 3 * nov.len());
    assert!(bars
        .windows(2)
        .all(|w| w[0].open_time_ms < w[1].open_time_ms));

    // A rerun: all there, 404s remembered, not one request.
    let (o, s) = qalpha(&base, &out, args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        (s["downloaded"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(9)),
        "{s}"
    );
    assert_eq!(s["missing_remembered"], 23);
    assert_eq!(
        log.lock().unwrap().len(),
        requests.len(),
        "the rerun sent requests"
    );
}

#[test]
fn a_checksum_mismatch_and_corrupt_zips_are_reported_and_not_kept() {
    let Some(rows) = kline_rows(31 * DAY_MS) else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    let m = "data/futures/um/monthly/klines/XRPUSDT/5m";
    let body = csv(None, &rows);
    // 2021-08: the checksum names other bytes.
    let good = zip_of("XRPUSDT-5m-2021-08.csv", body.as_bytes());
    put_raw(
        root,
        &format!("{m}/XRPUSDT-5m-2021-08.zip"),
        &good,
        &sha_hex(b"other bytes"),
    );
    // 2021-09: a byte flipped inside the deflate stream, the checksum taken after the damage.
    let mut flipped = zip_of("XRPUSDT-5m-2021-09.csv", body.as_bytes());
    let at = 30 + "XRPUSDT-5m-2021-09.csv".len() + 200;
    flipped[at] ^= 0x5a;
    put_raw(
        root,
        &format!("{m}/XRPUSDT-5m-2021-09.zip"),
        &flipped,
        &sha_hex(&flipped),
    );
    // 2021-10: cut short (no central directory), checksum of the cut file.
    let whole = zip_of("XRPUSDT-5m-2021-10.csv", body.as_bytes());
    let cut = &whole[..whole.len() / 2];
    put_raw(
        root,
        &format!("{m}/XRPUSDT-5m-2021-10.zip"),
        cut,
        &sha_hex(cut),
    );
    let (base, log) = serve(root.to_path_buf());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let (o, s) = qalpha(
        &base,
        &out,
        "--symbols XRPUSDT --kind klines --interval 5m --from 2021-08 --to 2021-10",
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert_eq!(
        (s["checksum_mismatch"].as_u64(), s["corrupt"].as_u64()),
        (Some(1), Some(2)),
        "{s}"
    );
    assert_eq!(s["downloaded"], 0);
    assert!(
        t.contains("checksum mismatch") && t.contains("corrupt"),
        "{t}"
    );
    let zip_gets = |p: &str| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.ends_with(p))
            .count()
    };
    assert_eq!(
        zip_gets("XRPUSDT-5m-2021-08.zip"),
        2,
        "a mismatch is downloaded once more"
    );
    assert_eq!(zip_gets("XRPUSDT-5m-2021-09.zip"), 1);
    let left: Vec<_> = files_under(&out)
        .into_iter()
        .filter(|p| !p.ends_with("summary.json"))
        .collect();
    assert!(left.is_empty(), "nothing of a bad file is kept: {left:#?}");
}

#[test]
fn funding_rate_is_monthly_only_and_a_missing_month_is_reported() {
    let Some(src) = shared("klines/binance-usdm-xrpusdt-8h-funding.csv") else {
        return;
    };
    let text_in = std::fs::read_to_string(src).unwrap();
    // `open` holds the rate; the archive's layout is calc_time,funding_interval_hours,rate.
    let rows: Vec<(String, String)> = text_in
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let t: u64 = f[0].parse().unwrap();
            let month = if t < 1_638_316_800_000 {
                "2021-11"
            } else {
                "2021-12"
            };
            (month.to_string(), format!("{},8,{}", f[0], f[1]))
        })
        .collect();
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    let header = "calc_time,funding_interval_hours,last_funding_rate";
    for month in ["2021-11", "2021-12"] {
        let of: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == month)
            .map(|r| r.1.clone())
            .collect();
        let p =
            format!("data/futures/um/monthly/fundingRate/XRPUSDT/XRPUSDT-fundingRate-{month}.zip");
        put(root, &p, &csv(Some(header), &of));
        let got_rows = of.len();
        assert!(got_rows > 0);
    }
    let (base, log) = serve(root.to_path_buf());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let (o, s) = qalpha(
        &base,
        &out,
        "--symbols XRPUSDT --kind fundingRate --from 2021-10 --to 2021-12",
    );
    assert!(o.status.success(), "missing is not an error: {}", text(&o));
    assert_eq!(
        (s["downloaded"].as_u64(), s["missing"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(s["missing_files"][0], "XRPUSDT-fundingRate-2021-10");
    assert_eq!(s["rows"], rows.len() as u64);
    assert!(text(&o).contains("missing: XRPUSDT-fundingRate-2021-10"));
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 1 + 2 * 2, "{requests:#?}");
    assert!(requests.iter().all(
        |r| r.starts_with("/data/futures/um/monthly/fundingRate/XRPUSDT/XRPUSDT-fundingRate-2021-")
    ));
    let nov =
        std::fs::read_to_string(out.join("fundingRate/XRPUSDT/XRPUSDT-fundingRate-2021-11.csv"))
            .unwrap();
    assert!(
        nov.starts_with(&format!("{header}\n1637193600017,8,0.0001\n")),
        "{nov}"
    );
}

#[test]
fn agg_trades_and_mark_price_paths_and_a_resumed_part() {
    let (Some(frames), Some(mark)) = (
        shared("binance-usdm/cryptofeed-2021/BINANCE_FUTURES.ws.1.0"),
        shared("klines/binance-usdm-xrpusdt-1h-mark.csv"),
    ) else {
        return;
    };
    // Real CTKUSDT aggTrade frames (2021-07-22) → the archive's aggTrades columns, no header.
    let mut trades = Vec::new();
    for line in std::fs::read_to_string(frames).unwrap().lines() {
        let Some((_, json)) = line.split_once(": ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let d = &v["data"];
        if d["e"] == "aggTrade" && d["s"] == "CTKUSDT" {
            trades.push(format!(
                "{},{},{},{},{},{},{}",
                d["a"],
                d["p"].as_str().unwrap(),
                d["q"].as_str().unwrap(),
                d["f"],
                d["l"],
                d["T"],
                d["m"]
            ));
        }
    }
    assert!(!trades.is_empty());
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    put(
        root,
        "data/futures/um/monthly/aggTrades/CTKUSDT/CTKUSDT-aggTrades-2021-07.zip",
        &csv(None, &trades),
    );
    let mark_rows: Vec<String> = std::fs::read_to_string(mark)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let t: u64 = f[0].parse().unwrap();
            format!(
                "{t},{},{},{},{},0,{},0,0,0,0,0",
                f[1],
                f[2],
                f[3],
                f[4],
                t + 3_599_999
            )
        })
        .collect();
    let mark_zip = put(
        root,
        "data/futures/um/monthly/markPriceKlines/XRPUSDT/1h/XRPUSDT-1h-2021-11.zip",
        &csv(Some(KLINE_HEADER), &mark_rows),
    );
    let (base, log) = serve(root.to_path_buf());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");

    let (o, s) = qalpha(
        &base,
        &out,
        "--symbols CTKUSDT --kind aggtrades --from 2021-07 --to 2021-07",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s["downloaded"], 1, "{s}");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "/data/futures/um/monthly/aggTrades/CTKUSDT/CTKUSDT-aggTrades-2021-07.zip.CHECKSUM",
            "/data/futures/um/monthly/aggTrades/CTKUSDT/CTKUSDT-aggTrades-2021-07.zip",
        ]
    );
    let got = std::fs::read_to_string(out.join("aggTrades/CTKUSDT/CTKUSDT-aggTrades-2021-07.csv"))
        .unwrap();
    let agg_header =
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker";
    assert_eq!(got, csv(Some(agg_header), &trades));
    assert!(
        got.contains("\n16599292,1.01100,10,23961322,23961322,1626992741421,false\n"),
        "{got}"
    );

    // An interrupted download left half the mark-price zip: it is continued, not restarted.
    let dir = out.join("markPriceKlines/XRPUSDT/1h");
    std::fs::create_dir_all(&dir).unwrap();
    let half = mark_zip.len() / 2;
    std::fs::write(dir.join("XRPUSDT-1h-2021-11.zip.part"), &mark_zip[..half]).unwrap();
    log.lock().unwrap().clear();
    let (o, s) = qalpha(
        &base,
        &out,
        "--symbols XRPUSDT --kind markPriceKlines --interval 1h --from 2021-11 --to 2021-11",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s["downloaded"], 1, "{s}");
    assert_eq!(s["bytes"], (mark_zip.len() - half) as u64);
    let p = "/data/futures/um/monthly/markPriceKlines/XRPUSDT/1h/XRPUSDT-1h-2021-11.zip";
    assert_eq!(
        *log.lock().unwrap(),
        [format!("{p}.CHECKSUM"), format!("{p} range=bytes={half}-")]
    );
    let got = std::fs::read_to_string(dir.join("XRPUSDT-1h-2021-11.csv")).unwrap();
    assert_eq!(got, csv(Some(KLINE_HEADER), &mark_rows));
    assert!(!dir.join("XRPUSDT-1h-2021-11.zip.part").exists());
}

#[test]
fn an_unreachable_archive_is_a_clear_error() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let (o, s) = qalpha(
        &format!("http://127.0.0.1:{port}"),
        &out,
        "--symbols BTCUSDT --kind fundingRate --from 2021-01 --to 2021-06 --jobs 1",
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("cannot reach") && t.contains("--base-url"),
        "{t}"
    );
    assert_eq!(
        s["failed"].as_u64().unwrap() + s["not_attempted"].as_u64().unwrap(),
        6,
        "{s}"
    );
    // One worker: the first refusal stops the rest.
    assert_eq!(
        (s["failed"].as_u64(), s["not_attempted"].as_u64()),
        (Some(1), Some(5)),
        "{s}"
    );
}

#[test]
fn bad_arguments_say_what_to_do() {
    let run = |args: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_qalpha"))
            .arg("download")
            .args(args.split_whitespace())
            .args(["--base-url", "http://127.0.0.1:9"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(run("--symbols BTCUSDT --kind klines --from 2024-01").contains("needs --interval"));
    assert!(
        run("--symbols BTCUSDT --kind klines --interval 7m --from 2024-01")
            .contains("invalid --interval")
    );
    assert!(
        run("--symbols BTCUSDT --kind aggTrades --interval 1m --from 2024-01")
            .contains("--interval applies")
    );
    assert!(run("--symbols BTCUSDT --kind fundingRate --from 2024-13").contains("YYYY-MM"));
    assert!(
        run("--symbols BTCUSDT --kind fundingRate --from 2024-05 --to 2024-01")
            .contains("before --from")
    );
}
