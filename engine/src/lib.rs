//! `qalpha-engine`: the core every other Quantum Alpha crate builds on.
//!
//! - [`decimal`]: exact fixed-point [`Price`] and [`Qty`] parsed straight from exchange decimal strings.
//! - [`event`]: fixed-size, heap-free [`MarketEvent`]s that travel through the rings (rkyv-archivable).
//! - [`ring`]: the SPSC ring wrapper (on `rtrb`) with an explicit full-ring policy.
//! - [`runtime`]: named threads pinned with `core_affinity`, with spin/yield/park waiting.
//! - [`clock`]: a monotonic nanosecond clock anchored to the Unix epoch.
//! - [`capture`]: the `.qcap` capture format (writer with rotation, memory-mapped reader).
//! - [`transport`]: the non-blocking TLS WebSocket client on mio and the cold-path HTTPS GET, shared
//!   by the market-data feeds and the order gateways.
//! - [`replay`]: the replay pipeline: a feed thread driving a [`replay::CaptureHandler`], a ring, a consumer.
//!
//! This crate depends on no sibling crate (DESIGN §2).

pub mod book_view;
pub mod capture;
pub mod clock;
pub mod config;
pub mod decimal;
pub mod event;
pub mod journal;
pub mod metrics;
pub mod order;
pub mod replay;
pub mod ring;
pub mod runtime;
pub mod symbol;
pub mod transport;

pub use decimal::{Price, Qty, FIXED_SCALE};
pub use event::{MarketEvent, MarketPayload, Side, Venue};
pub use symbol::Symbol;
