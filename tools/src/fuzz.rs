//! Fuzz targets for everything that reads outside input, and a stable-Rust mutation fuzzer that runs
//! them (`qalpha fuzz`). The same targets are libFuzzer targets in `fuzz/` for coverage-guided runs
//! with `cargo +nightly fuzz` (`tools/fuzz.sh` runs whichever is available).
//!
//! | target | input | what must hold |
//! |---|---|---|
//! | `binance_frames` | newline-separated WebSocket frames | decode + book sync never panic; every event's book is uncrossed |
//! | `bybit_frames` | newline-separated WebSocket frames | the same for Bybit v5 |
//! | `capture` | a `.qcap` file | the reader opens or refuses it with an error; every record routes through the feed |
//! | `journals` | a risk journal, an order journal or a control audit | `qalpha journal`'s reader reads or refuses it |
//! | `config` | a TOML config | the config, `[risk]`, `[alerts]` and `[strategy]` readers accept or name the error |
//!
//! A target "finds" something when it panics. `qalpha fuzz` catches the panic, writes the input to
//! `--findings DIR` and fails; a finding fixed becomes a file under `fuzz/regressions/<target>/`,
//! replayed by `tools/tests/fuzz.rs` on every test run.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_feeds::binance::feed::BinanceFeed;
use qalpha_feeds::bybit::feed::BybitFeed;
use qalpha_venues::mock::rng::Rng;

/// The targets, by name.
pub const TARGETS: [&str; 5] = [
    "binance_frames",
    "bybit_frames",
    "capture",
    "journals",
    "config",
];

/// A book event's top is never crossed (bid < ask when both sides exist).
fn check_events(ev: &[MarketEvent]) {
    for e in ev {
        if let MarketPayload::BookTop(t) = &e.payload {
            if t.bid_px.raw() > 0 && t.ask_px.raw() > 0 {
                assert!(t.bid_px < t.ask_px, "crossed book published: {t:?}");
            }
        }
    }
}

fn frames(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').filter(|f| !f.is_empty())
}

/// A scratch file for the targets that read files (one per thread).
fn scratch(data: &[u8], ext: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "qalpha-fuzz-{}-{:?}.{ext}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::write(&p, data);
    p
}

/// Runs one target on one input. Returns normally whatever the input; a panic is a finding.
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "binance_frames" => {
            let mut f = BinanceFeed::new();
            let mut ev = Vec::new();
            let btc = qalpha_engine::Symbol::parse("BTCUSDT").unwrap_or_default();
            for (i, fr) in frames(data).enumerate() {
                if fr.starts_with(b"{\"lastUpdateId\"") {
                    f.on_snapshot(i as u64 + 1, btc, fr, &mut ev);
                } else {
                    f.on_ws_frame(i as u64 + 1, fr, &mut ev);
                }
            }
            f.on_disconnect(u64::MAX, &mut ev);
            check_events(&ev);
        }
        "bybit_frames" => {
            let mut f = BybitFeed::new();
            let mut ev = Vec::new();
            for (i, fr) in frames(data).enumerate() {
                f.on_ws_frame(i as u64 + 1, fr, &mut ev);
            }
            f.on_disconnect(u64::MAX, &mut ev);
            check_events(&ev);
        }
        "capture" => {
            let p = scratch(data, "qcap");
            if let Ok(r) = qalpha_engine::capture::CaptureReader::open(&p) {
                let mut router = qalpha_feeds::replay::VenueRouter::new();
                for c in r.connections() {
                    router.learn(c);
                }
                let mut ev = Vec::new();
                for rec in r.records() {
                    router.route(&rec, &mut ev);
                    if ev.len() > 4096 {
                        ev.clear();
                    }
                }
            }
            let _ = std::fs::remove_file(&p);
        }
        "journals" => {
            let p = scratch(data, "journal");
            let _ = crate::journal_cmd::read(std::slice::from_ref(&p));
            let _ = std::fs::remove_file(&p);
        }
        "config" => {
            let text = String::from_utf8_lossy(data);
            if let Ok(cfg) = qalpha_engine::config::EngineConfig::parse(&text, "fuzz") {
                let _ = qalpha_risk::RiskConfig::from_engine(&cfg);
                let _ = crate::alerts::AlertConfig::from_table(cfg.alerts.as_ref());
                for name in ["maker", "obi-taker", "sma-cross"] {
                    if let Ok(s) = crate::demo_cmd::strategy::StrategySpec::from_config(name, &cfg)
                    {
                        let _ = s.build();
                    }
                }
                for i in 0..cfg.venues.len() {
                    let _ = qalpha_feeds::live::plan_venue(&cfg.venues[i]);
                }
            }
        }
        _ => {}
    }
}

/// The seed inputs of a target: the bundled sample and `../shared/data` where present, plus the
/// regression files.
pub fn seeds(target: &str, repo: &Path) -> Vec<Vec<u8>> {
    let shared = repo.join("../shared/data");
    // Each frame alone, and all of them in order.
    let lines = |p: PathBuf| -> Vec<Vec<u8>> {
        let Ok(text) = std::fs::read_to_string(p) else {
            return Vec::new();
        };
        let mut v: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        v.push(text.into_bytes());
        v
    };
    let mut out: Vec<Vec<u8>> = match target {
        "binance_frames" => {
            let mut v = lines(shared.join("binance-usdm/public-frames-2019-2021.jsonl"));
            v.extend(capture_runs(&repo.join(crate::demo_cmd::SAMPLE_CAPTURE), 800, 80));
            v
        }
        "bybit_frames" => lines(shared.join("bybit-v5/public-frames.jsonl")),
        "capture" => std::fs::read(repo.join(crate::demo_cmd::SAMPLE_CAPTURE))
            .map(|b| vec![b[..b.len().min(48 << 10)].to_vec()])
            .unwrap_or_default(),
        "journals" => vec![
            b"{\"qalpha_journal\":\"orders\",\"version\":1}\n{\"ts_ms\":1,\"kind\":\"order\",\"action\":\"new\",\"venue\":\"binance\",\"symbol\":\"BTCUSDT\",\"client_id\":\"qa1-1\",\"side\":\"buy\",\"price\":\"1\",\"qty\":\"1\"}\n{\"ts_ms\":2,\"kind\":\"fill\",\"report\":\"Fill\",\"client_id\":\"qa1-1\",\"last_px\":\"1\",\"last_qty\":\"1\",\"cum_qty\":\"1\",\"leaves_qty\":\"0\",\"reason\":0}\n{\"ts_ms\":3,\"kind\":\"system\",\"event\":\"stop\",\"detail\":{}}\n".to_vec(),
            b"{\"ts_ms\":5,\"kind\":\"control\",\"peer\":\"127.0.0.1\",\"method\":\"POST\",\"path\":\"/halt\",\"status\":401,\"outcome\":\"bad code\"}\n".to_vec(),
        ],
        "config" => ["paper.toml", "live.toml", "testnet.toml", "mock.toml"]
            .iter()
            .filter_map(|f| std::fs::read(repo.join("configs").join(f)).ok())
            .collect(),
        _ => Vec::new(),
    };
    out.extend(regressions(target, repo).into_iter().map(|(_, b)| b));
    if out.is_empty() {
        out.push(b"{}".to_vec());
    }
    out
}

/// Runs of `per` consecutive payloads (WebSocket frames and REST snapshot bodies, in recorded
/// order) from the first `n` records of a capture: real snapshot + diff sequences.
fn capture_runs(path: &Path, n: usize, per: usize) -> Vec<Vec<u8>> {
    let Ok(r) = qalpha_engine::capture::CaptureReader::open(path) else {
        return Vec::new();
    };
    let payloads: Vec<&[u8]> = r
        .records()
        .filter(|rec| !rec.payload.is_empty() && !rec.payload.contains(&b'\n'))
        .take(n)
        .map(|rec| rec.payload)
        .collect();
    payloads.chunks(per).map(|c| c.join(&b'\n')).collect()
}

/// The regression inputs of a target (`fuzz/regressions/<target>/*`).
pub fn regressions(target: &str, repo: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo.join("fuzz/regressions").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A uniform index below `n` (0 when `n` is 0).
fn below(rng: &mut Rng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

const INTERESTING: [&[u8]; 12] = [
    b"0",
    b"-1",
    b"18446744073709551616",
    b"1e308",
    b"NaN",
    b"null",
    b"\"\"",
    b"[]",
    b"{}",
    b"99999999999999999999.99999999",
    b"\"u\":1",
    b"\n",
];

/// One mutation of `input` (byte flips, inserts, deletes, truncation, chunk duplication, splices
/// with another seed, interesting tokens, digit runs).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + below(rng, 4) {
        let len = v.len();
        match below(rng, 8) {
            0 if len > 0 => {
                let i = below(rng, len);
                v[i] ^= 1 << below(rng, 8);
            }
            1 => {
                let i = below(rng, len + 1);
                v.insert(i, rng.next_u64() as u8);
            }
            2 if len > 0 => {
                let i = below(rng, len);
                let n = 1 + below(rng, (len - i).min(16));
                v.drain(i..i + n);
            }
            3 if len > 0 => v.truncate(below(rng, len)),
            4 if len > 0 => {
                let i = below(rng, len);
                let n = 1 + below(rng, (len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = below(rng, len + 1);
                v.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let cut = below(rng, len + 1);
                let from = below(rng, other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 => {
                let t = INTERESTING[below(rng, INTERESTING.len())];
                let at = below(rng, len + 1);
                v.splice(at..at, t.iter().copied());
            }
            _ if len > 0 => {
                // Replace a digit run with another number.
                let i = below(rng, len);
                if v[i].is_ascii_digit() {
                    let mut j = i;
                    while j < len && v[j].is_ascii_digit() {
                        j += 1;
                    }
                    let n = (rng.next_u64() >> below(rng, 64)).to_string();
                    v.splice(i..j, n.into_bytes());
                }
            }
            _ => {}
        }
    }
    v.truncate(1 << 20);
    v
}

/// What a fuzz run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FuzzReport {
    pub target: String,
    pub runs: u64,
    pub seeds: usize,
    pub findings: Vec<PathBuf>,
}

/// Runs `target` on its seeds, then on `runs` mutations (seeded: the same `seed` gives the same
/// inputs). Panics are caught; each panicking input is written to `findings`.
pub fn fuzz(
    target: &str,
    runs: u64,
    seed: u64,
    repo: &Path,
    findings: &Path,
) -> Result<FuzzReport> {
    if !TARGETS.contains(&target) {
        bail!(
            "unknown fuzz target {target:?}: one of {}",
            TARGETS.join(", ")
        );
    }
    let seeds = seeds(target, repo);
    let mut rng = Rng::new(seed);
    let mut rep = FuzzReport {
        target: target.into(),
        seeds: seeds.len(),
        ..Default::default()
    };
    // Panics are findings here: keep their messages off the terminal but count them.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let try_one = |input: &[u8], rep: &mut FuzzReport| -> Result<()> {
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| run_target(target, input))).is_ok();
        if !ok {
            std::fs::create_dir_all(findings)
                .with_context(|| format!("cannot create {}", findings.display()))?;
            let h = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
            });
            let p = findings.join(format!("{target}-{h:016x}.bin"));
            std::fs::write(&p, input)?;
            rep.findings.push(p);
        }
        Ok(())
    };
    let mut res = Ok(());
    for s in &seeds {
        res = res.and(try_one(s, &mut rep));
    }
    for _ in 0..runs {
        let a = &seeds[below(&mut rng, seeds.len())];
        let b = &seeds[below(&mut rng, seeds.len())];
        let input = mutate(&mut rng, a, b);
        res = res.and(try_one(&input, &mut rep));
        rep.runs += 1;
    }
    std::panic::set_hook(hook);
    res?;
    Ok(rep)
}

/// `qalpha fuzz` arguments.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// A target, or `all`: binance_frames, bybit_frames, capture, journals, config.
    #[arg(long, default_value = "all")]
    pub target: String,
    /// Mutated inputs per target.
    #[arg(long, default_value_t = 20_000)]
    pub runs: u64,
    /// The mutation seed (the same seed replays the same inputs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where panicking inputs are written.
    #[arg(long, default_value = "target/fuzz-findings")]
    pub findings: PathBuf,
    /// Only write each target's seed inputs to DIR/<target>/ (a libFuzzer corpus) and stop.
    #[arg(long, value_name = "DIR")]
    pub seeds_out: Option<PathBuf>,
}

/// Runs `qalpha fuzz`.
pub fn run(a: FuzzArgs) -> Result<()> {
    let repo = crate::demo_cmd::default_capture()
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let targets: Vec<&str> = match a.target.as_str() {
        "all" => TARGETS.to_vec(),
        t => vec![t],
    };
    if let Some(dir) = &a.seeds_out {
        for t in targets {
            let d = dir.join(t);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            for (i, s) in seeds(t, &repo).iter().enumerate() {
                std::fs::write(d.join(format!("seed-{i:03}")), s)?;
            }
        }
        return Ok(());
    }
    let mut found = 0;
    for t in targets {
        let r = fuzz(t, a.runs, a.seed, &repo, &a.findings)?;
        println!(
            "{:<15} {} seeds + {} mutated inputs: {} finding(s)",
            r.target,
            r.seeds,
            r.runs,
            r.findings.len()
        );
        for f in &r.findings {
            println!("  {}", f.display());
        }
        found += r.findings.len();
    }
    if found > 0 {
        bail!("{found} input(s) made a target panic; see above (once fixed, add each under fuzz/regressions/<target>/)");
    }
    Ok(())
}
