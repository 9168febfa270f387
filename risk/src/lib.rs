//! `qalpha-risk`: exact positions and PnL, pre-trade checks, kill switches and their journal — called
//! inline on the strategy thread (no extra hop on the hot path).
//!
//! - [`config`]: every limit, from the `[risk]` TOML section, validated with errors naming the key.
//! - [`ledger`]: positions, realized / unrealized PnL, fees, funding, equity, margin, leverage — exact.
//! - [`checks`]: pre-trade checks, each refusal a named [`RejectReason`].
//! - [`switches`]: the kill switches and the `active → reducing → halted` state (+ `conservative`).
//! - [`journal`]: every decision and state change as a [`journal::RiskEvent`] in an append-only rkyv
//!   file; restart restores today's PnL, the state and the counters from it.
//! - [`engine`]: the facade the strategy thread calls.

pub mod checks;
pub mod config;
pub mod engine;
pub mod journal;
pub mod ledger;
pub mod money;
pub mod switches;

pub use config::RiskConfig;
pub use money::Money;

/// The risk state machine's states (`conservative` is a modifier, kept beside it).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum RiskState {
    /// Trading normally.
    #[default]
    Active,
    /// Only orders that reduce a position are accepted (volatility spike: the position is being cut).
    Reducing,
    /// Nothing but reduce-only orders until an operator resumes; open orders cancelled, positions
    /// flattened.
    Halted,
}

impl RiskState {
    pub fn name(self) -> &'static str {
        match self {
            RiskState::Active => "active",
            RiskState::Reducing => "reducing",
            RiskState::Halted => "halted",
        }
    }
}

/// Why a pre-trade check refused an order. Each has a stable name (`name()`), used in logs, the
/// journal and reports.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum RejectReason {
    /// Gross notional after the order over `max_leverage` × equity.
    MaxLeverage,
    /// |position| after a full fill over the symbol's `max_position_qty`.
    MaxPositionQty,
    /// |position| × price after a full fill over `max_position_notional`.
    MaxPositionNotional,
    /// The order's loss at its stop (or at the volatility proxy) over `risk_per_trade_pct` of equity.
    RiskPerTrade,
    /// price × qty over `max_order_notional`.
    MaxOrderNotional,
    /// Limit price farther than `price_band_bps` from the mark / best price (fat finger).
    PriceBand,
    /// Already `max_open_orders` open.
    MaxOpenOrders,
    /// More than `max_orders_per_s` new orders in the last second.
    OrderRate,
    /// The symbol's book is not in sync: no new risk.
    StaleBook,
    /// No mark or best price known for the symbol yet: nothing to judge the order against.
    NoReferencePrice,
    /// Halted: only reduce-only orders.
    Halted,
    /// Reducing: only orders that reduce a position.
    Reducing,
    /// Conservative mode: no new positions (orders that open or add).
    Conservative,
}

impl RejectReason {
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::MaxLeverage => "max_leverage",
            RejectReason::MaxPositionQty => "max_position_qty",
            RejectReason::MaxPositionNotional => "max_position_notional",
            RejectReason::RiskPerTrade => "risk_per_trade",
            RejectReason::MaxOrderNotional => "max_order_notional",
            RejectReason::PriceBand => "price_band",
            RejectReason::MaxOpenOrders => "max_open_orders",
            RejectReason::OrderRate => "order_rate",
            RejectReason::StaleBook => "stale_book",
            RejectReason::NoReferencePrice => "no_reference_price",
            RejectReason::Halted => "halted",
            RejectReason::Reducing => "reducing",
            RejectReason::Conservative => "conservative",
        }
    }
}

/// What moved the risk state.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum SwitchKind {
    /// Today's (UTC) loss reached `daily_loss_limit` → halted.
    DailyLoss,
    /// `max_consecutive_losses` losing trades in a row → halted.
    ConsecutiveLosses,
    /// Realized volatility over `vol_window_s` above `vol_spike_bps` → reducing (position cut by
    /// `vol_cut_factor`); back to active when it calms.
    VolatilitySpike,
    /// More than `api_errors_per_min` rejects / timeouts in a minute → halted.
    ApiErrorRate,
    /// The Trinity's outputs disagree beyond `model_disagreement_max` → conservative (and back).
    ModelDisagreement,
    /// An operator halted or resumed.
    Operator,
}

impl SwitchKind {
    pub const ALL: [SwitchKind; 6] = [
        SwitchKind::DailyLoss,
        SwitchKind::ConsecutiveLosses,
        SwitchKind::VolatilitySpike,
        SwitchKind::ApiErrorRate,
        SwitchKind::ModelDisagreement,
        SwitchKind::Operator,
    ];

    /// As a metrics gauge value: 0 for none, else `1 + ` its place in [`Self::ALL`].
    pub fn to_gauge(k: Option<SwitchKind>) -> i64 {
        k.and_then(|k| Self::ALL.iter().position(|x| *x == k))
            .map_or(0, |i| i as i64 + 1)
    }

    /// The inverse of [`Self::to_gauge`].
    pub fn from_gauge(v: i64) -> Option<SwitchKind> {
        usize::try_from(v - 1)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    pub fn name(self) -> &'static str {
        match self {
            SwitchKind::DailyLoss => "daily_loss",
            SwitchKind::ConsecutiveLosses => "consecutive_losses",
            SwitchKind::VolatilitySpike => "volatility_spike",
            SwitchKind::ApiErrorRate => "api_error_rate",
            SwitchKind::ModelDisagreement => "model_disagreement",
            SwitchKind::Operator => "operator",
        }
    }
}
