//! Bybit v5 linear public market data (PROTOCOLS.md §C, DATA.md §3).
//!
//! - [`decode`](mod@decode): envelopes, control replies and every public topic → [`decode::BybitMsg`].
//! - [`sync`]: the in-stream snapshot + delta book rules of §C.3 (snapshot replaces, `u` + 1).
//! - [`ticker`]: ticker fields and the per-symbol merge of snapshot + deltas.
//! - [`trade`]: `publicTrade` and liquidation elements, and the stable trade-id hash.
//! - [`feed`]: one venue feed: parser + decoder + books + tickers, emitting [`MarketEvent`]s.
//!
//! The live subscribe transport drives [`BybitFeed`] with WebSocket frames; replay drives it from
//! captures (`feeds::replay::VenueRouter`).
//!
//! [`MarketEvent`]: qalpha_engine::MarketEvent

pub mod decode;
pub mod feed;
pub mod sync;
pub mod ticker;
pub mod trade;

pub use decode::{decode, BookUpdate, BybitMsg, Control, ControlOp, Levels};
pub use feed::{BookTopic, BybitFeed, FeedCounters};
pub use sync::{SyncCounters, TopicBook, TopicState};
pub use ticker::{Ticker, TickerFields};
pub use trade::{trade_id_hash, Liquidations, Trades};
