//! Live market data: the feed thread that owns the sockets, the cold-path helper that does DNS and
//! REST, and the recorder thread that writes every raw frame to a capture.
//!
//! ```text
//!   cold helper (DNS, REST snapshots) ◄──requests── feed thread ──raw frames (byte ring)──► recorder
//!                                     ──replies──►  mio poll, WsClient×N,                   (CaptureWriter)
//!                                                   VenueRouter (same decode/book code as replay)
//!                                                        │ MarketEvent ring
//!                                                        ▼
//!                                                    consumer
//! ```
//!
//! Live frames go through exactly the same [`crate::replay::VenueRouter`] as replayed ones, so a
//! recording replays to the same books the live run had.

pub mod cold;
pub mod plan;
pub mod recorder;
pub mod rotation;
pub mod runner;

pub use plan::{plan_venue, ConnPlan, VenuePlan};
pub use recorder::{recorder_ring, RecorderStats, RecorderTx};
pub use runner::{FeedCommand, FeedRunner, LiveOptions, LiveStats};
