//! `qalpha`: the Quantum Alpha command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use qalpha_engine::event::Venue;
use qalpha_engine::replay::{ReplayOptions, Speed};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_tools::import_bybit::{import_archive, ArchiveOptions};
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
    /// Run the engine against the in-process mock exchange on the bundled capture: feed, a rule-based
    /// quoting strategy and the REST order gateway, with progress and a summary (no internet, no keys).
    Demo(qalpha_tools::demo_cmd::DemoArgs),
    /// Run the engine on a config's venue (paper, testnet or live as its `mode` says): feed,
    /// strategy, risk and gateway threads with supervision, `--metrics`, `--control`, alerts and
    /// journals, until SIGINT/SIGTERM. Live mode needs `--live`. See docs/OPERATIONS.md.
    Run(qalpha_tools::run_cmd::RunArgs),
    /// The soak test: the whole engine for a long time (1 h by default) against the mock's endless
    /// synthetic market, sampling resident memory and ring levels; fails if memory grows.
    Soak(qalpha_tools::soak_cmd::SoakArgs),
    /// Mutation fuzzing of every reader of outside input (both venues' decoders and books, the
    /// capture reader, the journal readers, the config readers), seeded from the bundled and shared
    /// data; reproducible from `--seed`. `fuzz/` holds the same targets for cargo-fuzz.
    Fuzz(qalpha_tools::fuzz::FuzzArgs),
    /// Replay .qcap captures through the real pipeline (feed thread → SPSC ring → consumer).
    Replay(ReplayArgs),
    /// Convert other capture formats into .qcap.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Convert captures into other formats (pcapng for Wireshark/tshark).
    #[command(subcommand)]
    Export(ExportCmd),
    /// Record live market data (every raw frame and REST snapshot) to a capture.
    Record(qalpha_tools::live_cmd::RecordArgs),
    /// Run the mock exchange (Binance USD-M or Bybit v5 public market data over TLS WebSocket + REST).
    MockExchange(qalpha_tools::live_cmd::MockArgs),
    /// Place an order over REST and print the venue's answer (keys from QALPHA_<VENUE>_API_KEY/SECRET).
    Order(qalpha_tools::order_cmd::OrderArgs),
    /// Cancel an order by client id over REST.
    Cancel(qalpha_tools::order_cmd::CancelArgs),
    /// Cancel every open order of a symbol over REST.
    CancelAll(qalpha_tools::order_cmd::CancelAllArgs),
    /// List a symbol's open orders over REST.
    OpenOrders(qalpha_tools::order_cmd::OpenOrdersArgs),
    /// Show positions (size, entry and mark price, unrealised PnL) over REST.
    Positions(qalpha_tools::order_cmd::PositionsArgs),
    /// Compute the standard feature set over a kline CSV or a capture's trades (time bars) → CSV.
    Features(qalpha_tools::features_cmd::FeaturesArgs),
    /// Backtest a strategy on historical data (kline CSVs: bar strategies) with the engine's
    /// strategy and risk code; metrics next to buy & hold and flat, JSON report.
    Backtest(qalpha_tools::backtest::cmd::BacktestArgs),
    /// The latency benchmark suite: wire-to-wire tick-to-order against the mock exchange over TLS
    /// (spin vs epoll waits, with and without the Trinity on the path), a stage breakdown and
    /// micro-benchmarks; a table and `--json FILE`. See bench/README.md.
    Bench(qalpha_tools::bench_cmd::BenchArgs),
    /// Read the engine's journals (risk journal, control audit) in time order, as text or CSV.
    Journal(qalpha_tools::journal_cmd::JournalArgs),
    /// The encrypted API key store: add, list, remove (Argon2id + XChaCha20-Poly1305).
    Keys(qalpha_tools::keys_cmd::KeysArgs),
    /// Validate a config file as the engine reads it; names the wrong key and why.
    CheckConfig(qalpha_tools::check_config::CheckConfigArgs),
    /// Load an ONNX model as the engine does (metadata checked against the engine's features) and
    /// run it on given inputs (the parity check against PyTorch), or check a Trinity model folder.
    ModelCheck(qalpha_tools::model_cmd::ModelCheckArgs),
    /// Build a training dataset (Parquet + meta.json) from kline CSVs with the engine's features:
    /// forward-return labels, time splits, normalization fitted on train (docs/DATASET.md).
    Dataset(qalpha_tools::dataset_cmd::DatasetArgs),
    /// Train one model (guardian, oracle or strategist) on a dataset with tools/train (PyTorch).
    Train(qalpha_tools::train_cmd::TrainArgs),
    /// The research pipeline end to end: dataset → Guardian, Oracle, Strategist → ONNX checked by the
    /// engine → held-out backtest with the Trinity and baselines → training report (`--smoke`: the
    /// bundled sample in minutes).
    TrainAll(qalpha_tools::train_cmd::TrainAllArgs),
    /// Download Binance's public archive (data.binance.vision, USD-M futures): klines, aggTrades,
    /// bookTicker, fundingRate or markPriceKlines → verified CSVs; resumable, parallel.
    Download(qalpha_tools::download_cmd::DownloadArgs),
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
    /// Compare every venue quote (Binance bookTicker, Bybit orderbook.1) with the rebuilt top of book at the same update id.
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
    /// Plaintext WebSocket / REST traffic captured with tcpdump (pcap or pcapng) → one .qcap.
    ///
    /// TCP is reassembled per connection, HTTP/1.1 and the WebSocket upgrade followed, server frames
    /// de-framed into ws_text/ws_binary records; plain HTTP responses become rest_response records on a
    /// connection named by the request URL. Capture with e.g. `tcpdump -i lo -w X.pcap 'tcp port 9000'`
    /// started before the client connects.
    Pcap {
        /// The pcap or pcapng file.
        file: PathBuf,
        /// Output capture file.
        #[arg(long)]
        out: PathBuf,
        /// Venue every connection in the capture belongs to: binance or bybit.
        #[arg(long, default_value = "binance")]
        venue: String,
    },
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
    /// Bybit's public archive (`…_ob500.data`, zipped or not): raw v5 frames, timed by their `ts`.
    BybitArchive {
        /// Archive files (.zip with one member, gzip or plain NDJSON), concatenated in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output capture file.
        #[arg(long)]
        out: PathBuf,
        /// Stop after this many frames (cut a small sample).
        #[arg(long)]
        max_frames: Option<u64>,
        /// Rotate output files at this size in bytes.
        #[arg(long)]
        rotate_bytes: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ExportCmd {
    /// Captures → one pcapng file: a packet per record, stamped with its recv_ns (ns resolution),
    /// payload dissected as JSON by Wireshark/tshark, `conn=… kind=… url=…` in each packet comment.
    Pcapng {
        /// Capture files, in order (e.g. a rotated series).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output pcapng file.
        #[arg(long)]
        out: PathBuf,
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
            if let Some(x) = e.downcast_ref::<qalpha_tools::ExitWith>() {
                return ExitCode::from(x.code);
            }
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
        Cmd::Import(ImportCmd::BybitArchive {
            files,
            out,
            max_frames,
            rotate_bytes,
        }) => {
            let rep = import_archive(
                &files,
                &out,
                &ArchiveOptions {
                    max_frames,
                    rotate_bytes,
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
            Ok(())
        }
        Cmd::Record(a) => qalpha_tools::live_cmd::run_record(a),
        Cmd::Demo(a) => qalpha_tools::demo_cmd::run(a),
        Cmd::Run(a) => qalpha_tools::run_cmd::run(a),
        Cmd::Soak(a) => qalpha_tools::soak_cmd::run(a),
        Cmd::Fuzz(a) => qalpha_tools::fuzz::run(a),
        Cmd::Bench(a) => qalpha_tools::bench_cmd::run(a),
        Cmd::CheckConfig(a) => qalpha_tools::check_config::run(a),
        Cmd::Keys(a) => qalpha_tools::keys_cmd::run(a),
        Cmd::Journal(a) => qalpha_tools::journal_cmd::run(a),
        Cmd::MockExchange(a) => qalpha_tools::live_cmd::run_mock(a),
        Cmd::Order(a) => qalpha_tools::order_cmd::run_order(a),
        Cmd::Cancel(a) => qalpha_tools::order_cmd::run_cancel(a),
        Cmd::CancelAll(a) => qalpha_tools::order_cmd::run_cancel_all(a),
        Cmd::OpenOrders(a) => qalpha_tools::order_cmd::run_open_orders(a),
        Cmd::Positions(a) => qalpha_tools::order_cmd::run_positions(a),
        Cmd::Features(a) => qalpha_tools::features_cmd::run(a),
        Cmd::Backtest(a) => qalpha_tools::backtest::cmd::run(a),
        Cmd::ModelCheck(a) => qalpha_tools::model_cmd::run(a),
        Cmd::Dataset(a) => qalpha_tools::dataset_cmd::run(a),
        Cmd::Train(a) => qalpha_tools::train_cmd::run_train(a),
        Cmd::TrainAll(a) => qalpha_tools::train_cmd::run_all(a),
        Cmd::Download(a) => qalpha_tools::download_cmd::run(a),
        Cmd::Import(ImportCmd::Pcap { file, out, venue }) => {
            let Some(venue) = Venue::from_name(&venue) else {
                bail!("unknown venue {venue:?}: use binance or bybit");
            };
            let opts = qalpha_tools::pcap::PcapImportOptions { venue };
            let rep = qalpha_tools::pcap::import_pcap(&file, &out, &opts)?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
            Ok(())
        }
        Cmd::Export(ExportCmd::Pcapng { files, out }) => {
            let rep = qalpha_tools::pcap::export_pcapng(&files, &out)?;
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
