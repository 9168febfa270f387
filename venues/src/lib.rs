//! `qalpha-venues`: execution venues. Today: the mock exchange's market-data side ([`mock`]), which
//! speaks Binance USD-M's and Bybit v5's real public protocols over real TLS on loopback, and request
//! signing for both venues ([`sign`], tested with the documented vectors). Order gateways, rate limits
//! and the shared matching model arrive with the order-entry issue.

pub mod errors;
pub mod instrument;
pub mod mock;
pub mod sign;
