//! `qalpha download`: Binance's public archive (data.binance.vision, USD-M futures) → CSV files.
//!
//! For each symbol and month of `--from..=--to`:
//! - a month that has ended is fetched as its monthly zip; when that is missing (404: recent data,
//!   or a symbol listed mid-month), as the month's daily zips instead;
//! - the current month (UTC) is fetched as daily zips up to yesterday (a month's file appears after
//!   it ends, a day's the day after);
//! - `fundingRate` and the `3d`/`1w`/`1mo` intervals exist monthly only.
//!
//! Every zip is checked against the sha256 of its `.CHECKSUM` file before it is unzipped; a
//! mismatch is downloaded once more, then reported, and nothing of it is kept. A zip that matches
//! its checksum but cannot be unzipped is reported as corrupt. The CSV is written as `*.csv.part`
//! and renamed when complete, then a `*.ok` marker (the zip's sha256 and name) records it: a rerun
//! skips every file with its marker, without a request. Downloads go to `*.zip.part`, continued
//! with a `Range` request after an interruption, and are deleted once unzipped.
//!
//! A 404 for a period that ended over [`REMEMBER_MISSING_AFTER_DAYS`] days ago is remembered in
//! the folder's `.missing` file and not asked again (`--retry-missing` does); a month fetched as
//! daily files stays daily, so a month never has both forms. See [`layout`] for the paths.
//!
//! Exit status: non-zero when any file had a checksum mismatch, was corrupt or failed (network,
//! disk); files missing from the archive are listed but are not an error.

pub mod extract;
pub mod fetch;
pub mod layout;
mod progress;
mod summary;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use extract::{extract, ExtractError, Header};
use fetch::{hex, FetchError, Http};
use layout::{ArchiveFile, Kind, Month, Period};
pub use summary::Summary;

/// A 404 for a period that ended at least this long ago is remembered (Binance publishes a day's
/// file the next day and a month's in the first days of the next month).
pub const REMEMBER_MISSING_AFTER_DAYS: i64 = 7;

const INTERVALS: [&str; 15] = [
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo",
];

#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    /// Symbols, comma-separated (USD-M futures, e.g. BTCUSDT,ETHUSDT).
    #[arg(long, required = true, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// What to fetch: klines, aggTrades, bookTicker, fundingRate (monthly only) or markPriceKlines.
    #[arg(long, value_enum, ignore_case = true)]
    pub kind: Kind,
    /// Bar interval for klines and markPriceKlines: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d, and
    /// (monthly files only) 3d 1w 1mo.
    #[arg(long)]
    pub interval: Option<String>,
    /// First month, YYYY-MM (UTC).
    #[arg(long, value_parser = parse_month)]
    pub from: Month,
    /// Last month, YYYY-MM; default: the current month (fetched up to yesterday).
    #[arg(long, value_parser = parse_month)]
    pub to: Option<Month>,
    /// Archive root.
    #[arg(long, default_value = "https://data.binance.vision")]
    pub base_url: String,
    /// Output folder: {out}/{kind}/{SYMBOL}/[{interval}/]{SYMBOL}-{interval|kind}-{period}.csv.
    #[arg(long, default_value = "data/binance")]
    pub out: PathBuf,
    /// Files downloaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Ask again for files an earlier run found missing (remembered in each folder's `.missing`).
    #[arg(long)]
    pub retry_missing: bool,
    /// Seconds to wait for a connection, a response, or the next bytes of a body.
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("invalid month {s:?}: use YYYY-MM, e.g. 2024-01"))
}

/// One file to fetch; `fallback`: on 404, fetch the month's daily files instead.
#[derive(Clone, Debug)]
struct Job {
    file: ArchiveFile,
    fallback: bool,
}

/// How a job ended.
#[derive(Debug)]
enum Outcome {
    Downloaded {
        bytes: u64,
        rows: u64,
        header: Header,
    },
    Missing,
    ChecksumMismatch(String),
    Corrupt(String),
    Failed(FetchError),
    Cancelled,
}

/// The run's fixed inputs, shared by the planner and the workers.
struct Plan {
    base: String,
    out: PathBuf,
    today: i64,
    retry_missing: bool,
    /// Per output folder: stems remembered as missing (empty with `--retry-missing`).
    remembered: HashMap<PathBuf, BTreeSet<String>>,
    /// Per output folder: stems to add to `.missing` at the end.
    newly_missing: HashMap<PathBuf, BTreeSet<String>>,
}

impl Plan {
    fn url(&self, f: &ArchiveFile) -> String {
        format!("{}/{}", self.base, f.archive_path())
    }

    fn is_done(&self, f: &ArchiveFile) -> bool {
        f.ok_path(&self.out).is_file() && f.csv_path(&self.out).is_file()
    }

    /// Reads a folder's `.missing` list once, before any worker starts.
    fn load_remembered(&mut self, dir: PathBuf) {
        if !self.retry_missing {
            self.remembered
                .entry(dir)
                .or_insert_with_key(|d| read_missing(d));
        }
    }

    fn is_remembered_missing(&self, f: &ArchiveFile) -> bool {
        self.remembered
            .get(&f.out_dir(&self.out))
            .is_some_and(|set| set.contains(&f.stem()))
    }

    fn remember_missing(&mut self, f: &ArchiveFile) {
        if f.period.last_epoch_day() + REMEMBER_MISSING_AFTER_DAYS <= self.today {
            self.newly_missing
                .entry(f.out_dir(&self.out))
                .or_default()
                .insert(f.stem());
        }
    }

    /// Sorts one file into skipped / remembered missing / to fetch.
    fn consider(&self, file: ArchiveFile, fallback: bool, sum: &mut Summary) -> Option<Job> {
        if self.is_done(&file) {
            sum.skipped += 1;
            None
        } else if self.is_remembered_missing(&file) {
            sum.missing += 1;
            sum.missing_remembered += 1;
            sum.missing_files.push(file.stem());
            None
        } else {
            Some(Job { file, fallback })
        }
    }

    /// The daily files of `month` (up to yesterday) still to fetch.
    fn days(&self, monthly: &ArchiveFile, month: Month, sum: &mut Summary) -> Vec<Job> {
        let (this_month, today) = Month::of_epoch_day(self.today);
        let last = if month == this_month {
            today - 1
        } else {
            month.days()
        };
        (1..=last)
            .filter_map(|d| self.consider(monthly.day(month, d), false, sum))
            .collect()
    }

    /// Every file of the request that is not there yet.
    fn jobs(&mut self, a: &DownloadArgs, to: Month, sum: &mut Summary) -> Vec<Job> {
        let (this_month, _) = Month::of_epoch_day(self.today);
        let daily_ok =
            a.kind.has_daily() && !matches!(a.interval.as_deref(), Some("3d" | "1w" | "1mo"));
        let mut jobs = Vec::new();
        for symbol in &a.symbols {
            let mut month = a.from;
            while month <= to && month <= this_month {
                let monthly = ArchiveFile {
                    symbol: symbol.clone(),
                    kind: a.kind,
                    interval: a.interval.clone(),
                    period: Period::Month(month),
                };
                self.load_remembered(monthly.out_dir(&self.out));
                let any_day_done =
                    daily_ok && (1..=month.days()).any(|d| self.is_done(&monthly.day(month, d)));
                if self.is_done(&monthly) {
                    sum.skipped += 1;
                } else if daily_ok
                    && (month == this_month || any_day_done || self.is_remembered_missing(&monthly))
                {
                    jobs.extend(self.days(&monthly, month, sum));
                } else {
                    jobs.extend(self.consider(monthly, daily_ok, sum));
                }
                month = month.next();
            }
        }
        jobs
    }
}

fn read_missing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(".missing"))
        .map(|t| {
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Fetches one file: checksum, zip (one retry on a mismatch or a broken transfer), unzip.
fn work(job: &Job, plan: &Plan, http: &Http, stop: &AtomicBool) -> Outcome {
    if stop.load(Ordering::Relaxed) {
        return Outcome::Cancelled;
    }
    let f = &job.file;
    let url = plan.url(f);
    let zip_name = format!("{}.zip", f.stem());
    let want = match http.checksum(&format!("{url}.CHECKSUM"), &zip_name) {
        Ok(Some(h)) => h,
        Ok(None) => return Outcome::Missing,
        Err(e) => return Outcome::Failed(e),
    };
    let dir = f.out_dir(&plan.out);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Outcome::Failed(FetchError::Io {
            path: dir,
            source: e,
        });
    }
    let zip_part = dir.join(format!("{zip_name}.part"));
    let mut tries = 0;
    let (bytes, got) = loop {
        tries += 1;
        match http.zip(&url, &zip_part) {
            Ok(Some(d)) if d.sha256 == want => break (d.transferred, d),
            Ok(Some(d)) => {
                let _ = std::fs::remove_file(&zip_part);
                if tries < 2 {
                    continue;
                }
                return Outcome::ChecksumMismatch(format!(
                    "{url}: sha256 {} twice, its .CHECKSUM says {} (deleted)",
                    hex(&d.sha256),
                    hex(&want)
                ));
            }
            // The checksum exists but the zip does not: the archive is mid-publication.
            Ok(None) => return Outcome::Missing,
            Err(e) if tries < 2 && !e.is_unreachable() => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Outcome::Failed(e),
        }
    };
    let csv = f.csv_path(&plan.out);
    let csv_part = dir.join(format!("{}.csv.part", f.stem()));
    let done = extract(&zip_part, &csv_part, f.kind);
    let _ = std::fs::remove_file(&zip_part);
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&csv_part);
            return match e {
                ExtractError::Corrupt(why) => {
                    Outcome::Corrupt(format!("{url}: {why} (checksum matched; deleted)"))
                }
                ExtractError::Write { path, source } => {
                    Outcome::Failed(FetchError::Io { path, source })
                }
            };
        }
    };
    let finish = std::fs::rename(&csv_part, &csv).and_then(|()| {
        std::fs::write(
            f.ok_path(&plan.out),
            format!("{}  {zip_name}\n", hex(&got.sha256)),
        )
    });
    if let Err(e) = finish {
        return Outcome::Failed(FetchError::Io {
            path: csv,
            source: e,
        });
    }
    Outcome::Downloaded {
        bytes,
        rows: done.rows,
        header: done.header,
    }
}

/// Runs `qalpha download`: prints the summary; an error when any file failed.
pub fn run(a: DownloadArgs) -> Result<()> {
    let sum = download(a)?;
    if sum.error_count() > 0 {
        bail!(
            "{} file(s) not downloaded: {} checksum mismatch, {} corrupt, {} failed, {} not attempted (see above)",
            sum.error_count(),
            sum.checksum_mismatch,
            sum.corrupt,
            sum.failed,
            sum.not_attempted
        );
    }
    Ok(())
}

/// Downloads what `a` asks for, prints the summary (and writes `--json`), returns it.
pub fn download(mut a: DownloadArgs) -> Result<Summary> {
    a.symbols = a
        .symbols
        .iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = a
        .symbols
        .iter()
        .find(|s| !s.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        bail!("invalid symbol {bad:?}: use exchange symbols such as BTCUSDT");
    }
    if a.symbols.is_empty() {
        bail!("--symbols is empty: give e.g. --symbols BTCUSDT,ETHUSDT");
    }
    match (&a.interval, a.kind.has_interval()) {
        (None, true) => bail!("--kind {} needs --interval (e.g. 5m)", a.kind.name()),
        (Some(_), false) => bail!(
            "--interval applies to klines and markPriceKlines, not {}",
            a.kind.name()
        ),
        (Some(iv), true) if !INTERVALS.contains(&iv.as_str()) => {
            bail!(
                "invalid --interval {iv:?}: use one of {}",
                INTERVALS.join(" ")
            )
        }
        _ => {}
    }
    let base = a.base_url.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--base-url {base:?} must start with http:// or https://");
    }
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs() as i64
        / 86_400;
    let to = a.to.unwrap_or(Month::of_epoch_day(today).0);
    if to < a.from {
        bail!("--to {to} is before --from {}", a.from);
    }
    let mut sum = Summary {
        base_url: base.clone(),
        out: a.out.clone(),
        kind: Some(a.kind),
        interval: a.interval.clone(),
        symbols: a.symbols.clone(),
        from: a.from.to_string(),
        to: to.to_string(),
        ..Summary::default()
    };
    let mut plan = Plan {
        base,
        out: a.out.clone(),
        today,
        retry_missing: a.retry_missing,
        remembered: HashMap::new(),
        newly_missing: HashMap::new(),
    };
    let jobs = plan.jobs(&a, to, &mut sum);
    let http = Http::new(Duration::from_secs(a.timeout_s.max(1)));
    execute(jobs, &mut plan, &http, a.jobs.max(1), &mut sum);
    for (dir, stems) in &plan.newly_missing {
        let mut all = read_missing(dir);
        all.extend(stems.iter().cloned());
        let text: String = all.iter().map(|s| format!("{s}\n")).collect();
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join(".missing"), text))
            .with_context(|| format!("cannot write {}", dir.join(".missing").display()))?;
    }
    sum.missing_files.sort();
    summary::print(&sum);
    if let Some(path) = &a.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&sum)? + "\n")
            .with_context(|| format!("cannot write --json {}", path.display()))?;
    }
    Ok(sum)
}

/// Runs the jobs on `workers` threads; the caller's thread plans daily fallbacks and keeps count.
fn execute(jobs: Vec<Job>, plan: &mut Plan, http: &Http, workers: usize, sum: &mut Summary) {
    if jobs.is_empty() {
        return;
    }
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(Job, Outcome)>();
    let mut outstanding = jobs.len();
    let mut total = jobs.len() as u64;
    for j in jobs {
        let _ = job_tx.send(j);
    }
    let workers = workers.min(outstanding);
    let mut line = progress::Line::new();
    let shared: &Plan = plan;
    let mut results = Vec::new();
    let mut fallbacks = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (job_rx, stop) = (&job_rx, &stop);
            s.spawn(move || loop {
                // The lock is held only while waiting for the next job.
                let next = job_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(job)) = next else {
                    break;
                };
                let outcome = work(&job, shared, http, stop);
                // No server has answered yet: a wrong base URL or no network. The other files
                // would fail the same way, so they are not tried.
                if let Outcome::Failed(e) = &outcome {
                    if e.is_unreachable() && !http.reached.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                if done_tx.send((job, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut finished = 0u64;
        while outstanding > 0 {
            let (job, outcome) = match done_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    line.draw(finished, total, http.bytes.load(Ordering::Relaxed));
                    continue;
                }
                // Every worker is gone (a panic, reported by the scope): nothing more will come.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            outstanding -= 1;
            finished += 1;
            if job.fallback && matches!(outcome, Outcome::Missing) {
                fallbacks.push(job.file.clone());
            }
            results.push((job, outcome));
            // Daily files of a month whose monthly zip is missing: planned here, where the
            // counts live. Planning only reads markers, so it needs no lock against workers.
            for monthly in fallbacks.drain(..) {
                let Period::Month(month) = monthly.period else {
                    continue;
                };
                let days = shared.days(&monthly, month, sum);
                sum.monthly_fallbacks += 1;
                outstanding += days.len();
                total += days.len() as u64;
                for d in days {
                    let _ = job_tx.send(d);
                }
            }
            line.draw(finished, total, http.bytes.load(Ordering::Relaxed));
        }
        drop(job_tx);
    });
    line.finish(total, total, http.bytes.load(Ordering::Relaxed));
    for (job, outcome) in results {
        tally(&job, outcome, plan, sum);
    }
}

fn tally(job: &Job, outcome: Outcome, plan: &mut Plan, sum: &mut Summary) {
    let stem = job.file.stem();
    match outcome {
        Outcome::Downloaded {
            bytes,
            rows,
            header,
        } => {
            sum.downloaded += 1;
            sum.bytes += bytes;
            sum.rows += rows;
            match header {
                Header::Added => sum.headers_added += 1,
                Header::UnknownLayout => sum.unknown_layout.push(stem),
                Header::Kept => {}
            }
        }
        Outcome::Missing => {
            plan.remember_missing(&job.file);
            // A missing monthly zip whose days were fetched instead is not itself missing data.
            if !job.fallback {
                sum.missing += 1;
                sum.missing_files.push(stem);
            }
        }
        Outcome::ChecksumMismatch(why) => {
            sum.checksum_mismatch += 1;
            sum.errors.push(format!("checksum mismatch: {why}"));
        }
        Outcome::Corrupt(why) => {
            sum.corrupt += 1;
            sum.errors.push(format!("corrupt: {why}"));
        }
        Outcome::Failed(e) => {
            sum.failed += 1;
            sum.errors.push(format!("failed: {e}"));
        }
        Outcome::Cancelled => sum.not_attempted += 1,
    }
}
