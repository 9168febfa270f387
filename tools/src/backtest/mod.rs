//! `qalpha backtest`: the engine's strategy and risk code on replayed data against a simulated
//! venue (issue 7, in progress). [`metrics`]: the report's metrics from an equity curve and trades.

pub mod metrics;
