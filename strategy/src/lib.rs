//! `qalpha-strategy`: the streaming feature library (one implementation for live trading and for
//! training datasets), and — in later steps of issue 6 — the model runtime, the Trinity and the
//! rule-based baselines.
//!
//! - [`bars`]: OHLCV bars, Binance kline CSVs (with or without a header), time bars from trades.
//! - [`features`]: indicators updated in O(1) per bar with TA-Lib's definitions (same seeding and
//!   smoothing), collected into a [`features::FeatureSet`] with stable column names.

pub mod bars;
pub mod baselines;
pub mod features;
pub mod model;
pub mod orderflow;
