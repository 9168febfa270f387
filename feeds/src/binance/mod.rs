//! Binance USD-M futures market data (PROTOCOLS.md §A).
//!
//! - [`decode`](mod@decode): combined-stream envelopes and raw frames → [`decode::BinanceMsg`],
//!   plus the REST depth snapshot.
//! - [`sync`]: the local-book rules of §A.4 (buffer diffs, bridge the snapshot, `pu` continuity).
//! - [`feed`]: one venue feed: parser + decoder + per-symbol books, emitting [`MarketEvent`]s.
//!
//! [`MarketEvent`]: qalpha_engine::MarketEvent

pub mod decode;
pub mod feed;
pub mod sync;

pub use decode::{decode, BinanceMsg, DepthSnapshot, DepthUpdate, Levels};
pub use feed::{BinanceFeed, FeedCounters};
pub use sync::{BookSync, SyncCounters};
