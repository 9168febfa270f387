//! The fill model shared by paper trading, backtests and the mock exchange (DESIGN §2, §3): one
//! implementation of how *our* orders would have been matched against a venue's book and trades.
//!
//! One file per modelling decision, after hftbacktest's `QueueModel` / `LatencyModel` split:
//!
//! - [`model`]: [`FillModel`] — entry checks, taking liquidity, resting fills from prints, amend,
//!   cancel, reduce-only, IOC/FOK expiry, emitting `ExecReport`s that `OrderState` consumes as-is.
//! - [`queue`]: [`QueueModel`] — where a resting order stands in its price's queue and what moves
//!   it ([`RiskAverse`], [`ProportionalCancel`]).
//! - [`fees`]: [`FeeSchedule`] — exact maker/taker fees in ppm, rounded against us.
//! - [`reject`]: [`RejectReason`] — refusals and the code each venue uses for them.
//! - [`taken`]: what our orders took from the displayed book, hidden until the venue updates it.
//!
//! The model reads books through `qalpha_engine::book_view::BookView` (implemented by the feeds'
//! `OrderBook` and the mock's `ExchangeBook`), so it depends on no sibling crate.

pub mod fees;
pub mod model;
pub mod queue;
pub mod reject;
pub mod taken;

pub use fees::FeeSchedule;
pub use model::{FillModel, OpenOrder};
pub use queue::{ProportionalCancel, QueueModel, QueuePos, RiskAverse};
pub use reject::RejectReason;
