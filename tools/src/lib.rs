//! The `qalpha` command-line tool's library: each subcommand's work, separate from argument parsing
//! (so tests and benches call the same code the binary runs).

pub mod alerts;
pub mod backtest;
pub mod bench_cmd;
pub mod check_config;
pub mod control;
pub mod dataset_cmd;
pub mod demo_cmd;
pub mod download_cmd;
pub mod features_cmd;
pub mod fuzz;
pub mod import_bybit;
pub mod import_lines;
pub mod journal_cmd;
pub mod keys_cmd;
pub mod live_cmd;
pub mod model_cmd;
pub mod monitor;
pub mod order_cmd;
pub mod order_journal;
pub mod order_ws;
pub mod pcap;
pub mod replay_cmd;
pub mod run_cmd;
pub mod sdnotify;
pub mod soak_cmd;
pub mod train_cmd;
pub mod train_report;

/// An error that asks `qalpha` for a particular exit code (docs/OPERATIONS.md lists them).
#[derive(Debug)]
pub struct ExitWith {
    pub code: u8,
    pub why: String,
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl std::error::Error for ExitWith {}
