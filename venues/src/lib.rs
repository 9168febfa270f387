//! `qalpha-venues`: execution venues. Today: the mock exchange's market-data side ([`mock`]), which
//! speaks Binance USD-M's and Bybit v5's real public protocols over real TLS on loopback; and the
//! order-entry groundwork: request signing ([`sign`], tested with the documented vectors), instrument
//! rules checked before sending ([`instrument`]), typed venue errors with retry policies ([`errors`]),
//! client-side rate limits ([`limits`]) and the server-time offset ([`clock_sync`]). The gateways and
//! the mock's order entry build on these.

pub mod clock_sync;
pub mod endpoints;
pub mod errors;
pub mod fill;
pub mod gateway;
pub mod instrument;
pub mod keystore;
pub mod limits;
pub mod mock;
pub mod paper;
pub mod sign;
