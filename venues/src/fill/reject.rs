//! Why the fill model refuses an order or a request, and the code each venue uses for it.
//!
//! A refused *new order* comes back as an [`ExecReport`](qalpha_engine::order::ExecReport) of kind
//! `Rejected` whose `reason` is [`RejectReason::code`] for the model's venue, so the order state
//! machine and the strategy see the same number the real venue would send (or, where the venue
//! accepts the order and ends it on its stream instead — [`RejectReason::ends_accepted_order`] —
//! an Ack then an `Expired` carrying that code). A refused *cancel or
//! amend* leaves the order untouched, so it is an `Err(RejectReason)` instead: a `Rejected` report
//! would wrongly end a live order in `OrderState`. The mock exchange turns either into the venue's
//! error body.

use qalpha_engine::Venue;

/// Codes for reasons Bybit reports only as a `rejectReason` string on the order stream, never as a
/// `retCode`. They sit in a range no Bybit `retCode` uses, so a gateway decoding Bybit's order
/// stream can map the same strings to the same numbers.
pub const BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY: i32 = 9_000_001;

/// Why an order or request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectReason {
    /// Zero or negative quantity (Binance -4003 `QTY_LESS_THAN_ZERO`, Bybit 10001).
    #[error("quantity must be positive")]
    NonPositiveQty,
    /// Zero or negative limit price (Binance -4001 `PRICE_LESS_THAN_ZERO`, Bybit 10001).
    #[error("limit price must be positive")]
    NonPositivePrice,
    /// A post-only order would take liquidity (Binance -5022 `GTX_ORDER_REJECT`; Bybit cancels it
    /// with `EC_PostOnlyWillTakeLiquidity`).
    #[error("post-only order would take liquidity")]
    PostOnlyWouldTake,
    /// A reduce-only order on the side that would open or increase the position (Binance -2022
    /// `REDUCE_ONLY_REJECT`, Bybit 110017 "reduce-only quantity truncated to zero").
    #[error("reduce-only order would increase the position")]
    ReduceOnlyWouldIncrease,
    /// The client id is already used by an open order (Binance -4116, Bybit 110072).
    #[error("client order id is already used by an open order")]
    DuplicateClientId,
    /// Cancel/amend of an order that is not open (Binance -2011 "Unknown order sent.", Bybit
    /// 110001).
    #[error("unknown order: not open")]
    UnknownOrder,
    /// The order names another venue or symbol than the model simulates (Binance -1121, Bybit
    /// 10001).
    #[error("order is for another venue or symbol")]
    WrongInstrument,
    /// A time in force the order type cannot carry, e.g. a post-only market order (Binance -1115
    /// `INVALID_TIMEINFORCE`, Bybit 10001).
    #[error("time in force not valid for this order type")]
    InvalidTimeInForce,
}

impl RejectReason {
    /// Whether `venue` *accepts* the order and then ends it on its order stream for this reason,
    /// instead of refusing the request. Bybit does that for post-only orders that would take
    /// (`orderStatus=Cancelled`, `rejectReason=EC_PostOnlyWillTakeLiquidity`), so the model reports
    /// Ack then Expired there, and `Rejected` on Binance, which refuses with -5022.
    pub fn ends_accepted_order(self, venue: Venue) -> bool {
        venue == Venue::BybitLinear && self == Self::PostOnlyWouldTake
    }

    /// The code `venue` reports for this reason (the `reason` field of a `Rejected` report).
    pub fn code(self, venue: Venue) -> i32 {
        match venue {
            Venue::BinanceUsdm => match self {
                Self::NonPositiveQty => -4003,
                Self::NonPositivePrice => -4001,
                Self::PostOnlyWouldTake => -5022,
                Self::ReduceOnlyWouldIncrease => -2022,
                Self::DuplicateClientId => -4116,
                Self::UnknownOrder => -2011,
                Self::WrongInstrument => -1121,
                Self::InvalidTimeInForce => -1115,
            },
            Venue::BybitLinear => match self {
                Self::NonPositiveQty
                | Self::NonPositivePrice
                | Self::WrongInstrument
                | Self::InvalidTimeInForce => 10001,
                Self::PostOnlyWouldTake => BYBIT_EC_POST_ONLY_WILL_TAKE_LIQUIDITY,
                Self::ReduceOnlyWouldIncrease => 110017,
                Self::DuplicateClientId => 110072,
                Self::UnknownOrder => 110001,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_nonzero_code_on_each_venue() {
        use RejectReason::*;
        let all = [
            NonPositiveQty,
            NonPositivePrice,
            PostOnlyWouldTake,
            ReduceOnlyWouldIncrease,
            DuplicateClientId,
            UnknownOrder,
            WrongInstrument,
            InvalidTimeInForce,
        ];
        for r in all {
            // Zero means "not a reject" in an ExecReport.
            assert_ne!(r.code(Venue::BinanceUsdm), 0, "{r}");
            assert_ne!(r.code(Venue::BybitLinear), 0, "{r}");
        }
        // Binance's codes are distinct, so a reject can be traced back to its cause.
        let mut codes: Vec<_> = all.iter().map(|r| r.code(Venue::BinanceUsdm)).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(PostOnlyWouldTake.code(Venue::BinanceUsdm), -5022);
        assert_eq!(ReduceOnlyWouldIncrease.code(Venue::BybitLinear), 110017);
    }
}
