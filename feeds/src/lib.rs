//! `qalpha-feeds`: market data. Venue decoders, exact L2 books and their sync rules.
//!
//! Hot-path rules for everything in this crate that runs per frame: no heap allocation after
//! warm-up (buffers are reused and only grow to the largest frame seen), no locks, no syscalls,
//! no logging per frame (malformed input is counted and logged once per kind).
//!
//! - [`json`]: the reusable simd-json tape parser every decoder runs on.
//! - [`book`]: [`book::OrderBook`], the exact price-level book.
//! - [`binance`]: Binance USD-M decoders and the snapshot + diff book sync.
//! - [`bybit`]: Bybit v5 linear public decoders, in-stream snapshot + delta books, merged tickers.
//! - [`book_check`]: compares rebuilt books with the venue's own best bid/offer.
//! - [`stats`]: per-kind decode counters.
//! - [`replay`]: the capture handler that routes recorded frames to the venue feeds.
//! - [`EventSink`]: where every feed sends its events (the ring producer; a `Vec` in tests).
//!
//! Shared by both venue feeds, inside the crate: `tape` (field readers on the simd-json tape and
//! the lazy depth-level list, public as [`binance::Levels`] = [`bybit::Levels`]), `sink` (sending
//! a stamped event, counting ring drops) and `stale` (the stale clock each book carries).

pub mod binance;
pub mod book;
pub mod book_check;
pub mod bybit;
pub mod dedupe;
pub mod json;
pub mod live;
pub mod replay;
mod sink;
mod stale;
pub mod stats;
mod tape;
/// The transport moved to `qalpha-engine` (the order gateways in `qalpha-venues` use it too).
pub use qalpha_engine::transport;

pub use sink::EventSink;
