//! `qalpha-strategy`: the streaming feature library (one implementation for live trading and for
//! training datasets), the model runtime, the Trinity and the rule-based baselines.
//!
//! - [`bars`]: OHLCV bars, Binance kline CSVs (with or without a header), time bars from trades.
//! - [`features`]: indicators updated in O(1) per bar with TA-Lib's definitions (same seeding and
//!   smoothing), collected into a [`features::FeatureSet`] with stable column names.
//! - [`orderflow`]: per-event order-flow features (trade imbalance, book imbalance, microprice…).
//! - [`model`]: ONNX models on `tract-onnx` with their metadata, checked against the feature set.
//! - [`trinity`]: Guardian, Oracle and Strategist, their decision layer, as a tick strategy.
//! - [`baselines`]: `sma-cross`, `obi-taker`, `maker`, and the by-name registries.

pub mod bars;
pub mod baselines;
pub mod features;
pub mod model;
pub mod orderflow;
pub mod trinity;
