//! `qalpha backtest`: the engine's strategy and risk code on replayed data against a simulated
//! venue (issue 7, in progress).
//!
//! - [`metrics`]: the report's metrics from an equity curve and the closed trades.
//! - [`account`]: the simulated account — the risk crate's exact ledger plus round trips, equity
//!   samples, totals and the order log.
//! - [`bar_sim`]: bar-mode backtests (klines), filled at the next bar's open through risk.
//! - [`sweep`]: parameter grids run in parallel and ranked (with the overfitting warning).
//! - [`report_dir`]: `--report DIR` — text, PNG charts and a self-contained HTML page;
//!   [`report_dir::Progress`]: the progress line.
//! - [`tick_sim`]: tick-mode backtests on captures — the engine's decode, book, executor and risk on
//!   a simulated clock against the fill model (or the paper venue), with latency models;
//!   [`tick_cmd`]: its report.
//! - [`inputs`]: which symbol each `--data` file holds; `fundingRate` files.
//! - [`cmd`]: the command — arguments, config, baselines, the JSON report; [`text`]: its summary.

pub mod account;
pub mod bar_sim;
pub mod cmd;
pub mod csv_events;
pub mod inputs;
pub mod latency;
pub mod metrics;
pub mod report_dir;
pub mod sweep;
pub mod text;
pub mod tick_cmd;
pub mod tick_sim;
