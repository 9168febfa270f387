//! `qalpha`: the Quantum Alpha command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use qalpha_engine::event::Venue;
use qalpha_engine::replay::{ReplayOptions, Speed};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_tools::import_lines::{import, ImportOptions};
use qalpha_tools::replay_cmd::replay;

#[derive(Parser)]
#[command(
    name = "qalpha",
    version,
    about = "Quantum Alpha: low-latency crypto-futures trading engine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay .qcap captures through the real pipeline (feed thread → SPSC ring → consumer).
    Replay(ReplayArgs),
    /// Convert other capture formats into .qcap.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Show a capture's header, connection table and record counts.
    Inspect {
        /// Capture files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture files, replayed in the order given (e.g. a rotated series).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Compare every venue quote (Binance bookTicker) with the rebuilt top of book at the same update id.
    #[arg(long)]
    check_book: bool,
    /// Pacing: `max` (as fast as possible), `1x` (recorded time), `Nx` (N times faster).
    #[arg(long, default_value = "max", value_parser = parse_speed)]
    speed: Speed,
    /// Print one JSON object with the counters on stdout.
    #[arg(long)]
    json: bool,
    /// Pin the feed thread to this core.
    #[arg(long)]
    feed_core: Option<usize>,
    /// Pin the consumer thread to this core.
    #[arg(long)]
    consumer_core: Option<usize>,
    /// How idle threads wait: spin, yield or park.
    #[arg(long, default_value = "yield", value_parser = parse_wait)]
    wait: WaitMode,
}

#[derive(Subcommand)]
enum ImportCmd {
    /// `<local_ts> <json>` line captures (gzip or plain; ns/µs/ms/s timestamps) → one .qcap.
    Lines {
        /// Input files, concatenated in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output capture file.
        #[arg(long)]
        out: PathBuf,
        /// Venue the frames come from.
        #[arg(long, default_value = "binance")]
        venue: String,
        /// Stop after this many frames (cut a small sample).
        #[arg(long)]
        max_frames: Option<u64>,
        /// Rotate output files at this size in bytes.
        #[arg(long)]
        rotate_bytes: Option<u64>,
    },
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    Speed::parse(s).ok_or_else(|| format!("invalid speed {s:?}: use max, 1x or Nx (N > 0)"))
}

fn parse_wait(s: &str) -> Result<WaitMode, String> {
    WaitMode::parse(s).ok_or_else(|| format!("invalid wait mode {s:?}: use spin, yield or park"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QALPHA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Replay(a) => {
            let specs = [
                ThreadSpec {
                    name: "qa-replay-feed".into(),
                    core: a.feed_core,
                    wait: a.wait,
                },
                ThreadSpec {
                    name: "qa-replay-consumer".into(),
                    core: a.consumer_core,
                    wait: a.wait,
                },
            ];
            let placements = Runtime::place(&specs);
            let opts = ReplayOptions {
                speed: a.speed,
                feed: placements[0],
                consumer: placements[1],
                ..Default::default()
            };
            let rep = replay(&a.files, a.check_book, &opts)?;
            if a.json {
                println!("{}", serde_json::to_string(&rep)?);
            } else {
                println!(
                    "replayed {} records from {} file(s) in {:.3} s ({:.0} frames/s)",
                    rep.records, rep.files, rep.elapsed_s, rep.frames_per_s
                );
                println!(
                    "frames {}  decoded {}  malformed {}  ignored {}  events {}",
                    rep.frames, rep.decoded, rep.malformed, rep.ignored, rep.events
                );
                println!(
                    "books: snapshots {}  syncs {}  diffs applied {}  gaps {}  resyncs {}  stale {:.3} s  crossed {}",
                    rep.snapshots,
                    rep.syncs,
                    rep.diffs_applied,
                    rep.gaps,
                    rep.resyncs,
                    rep.stale_ns as f64 / 1e9,
                    rep.crossed_books
                );
                if a.check_book {
                    println!(
                        "book checks {}  mismatches {}  unverifiable quotes {}",
                        rep.book_checks, rep.book_mismatches, rep.unverifiable_quotes
                    );
                    for m in &rep.first_mismatches {
                        println!("  mismatch: {m}");
                    }
                }
                if rep.lost_bytes > 0 {
                    println!(
                        "warning: {} bytes lost at damaged file tails",
                        rep.lost_bytes
                    );
                }
            }
            Ok(())
        }
        Cmd::Import(ImportCmd::Lines {
            files,
            out,
            venue,
            max_frames,
            rotate_bytes,
        }) => {
            let Some(venue) = Venue::from_name(&venue) else {
                bail!("unknown venue {venue:?}: use binance or bybit");
            };
            let rep = import(
                &files,
                &out,
                &ImportOptions {
                    venue,
                    max_frames,
                    rotate_bytes,
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
            Ok(())
        }
        Cmd::Inspect { files } => {
            for f in files {
                let r = qalpha_engine::capture::CaptureReader::open(&f)?;
                println!(
                    "{}: qcap v{} file #{} created_ns={}",
                    f.display(),
                    r.version(),
                    r.file_index(),
                    r.created_ns()
                );
                for c in r.connections() {
                    println!(
                        "  conn {:>3} {:<8} {:?} {}",
                        c.id,
                        c.venue.map_or("?", |v| v.name()),
                        c.transport,
                        c.url
                    );
                }
                let mut kinds = std::collections::BTreeMap::new();
                let (mut first, mut last) = (None, 0);
                for rec in r.records() {
                    *kinds.entry(rec.kind.name()).or_insert(0u64) += 1;
                    first.get_or_insert(rec.recv_ns);
                    last = rec.recv_ns;
                }
                println!("  records {} {:?}", r.record_count(), kinds);
                if let Some(first) = first {
                    println!(
                        "  recv_ns {first} .. {last} ({:.3} s)",
                        (last - first) as f64 / 1e9
                    );
                }
                println!("  tail {:?}", r.tail());
            }
            Ok(())
        }
    }
}
