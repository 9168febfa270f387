//! The kill switches and the `active → reducing → halted` state machine, with `conservative` as a
//! modifier beside it.
//!
//! | switch | measures | moves to |
//! |---|---|---|
//! | [`SwitchKind::DailyLoss`] | today's (UTC) PnL against the day's start equity | halted at a loss ≥ `daily_loss_limit` |
//! | [`SwitchKind::ConsecutiveLosses`] | losing round trips in a row | halted on reaching `max_consecutive_losses` |
//! | [`SwitchKind::VolatilitySpike`] | realized volatility of the mid, bps | reducing above `vol_spike_bps`; active again under half of it |
//! | [`SwitchKind::ApiErrorRate`] | venue rejects (but post-only bounces, `is_post_only_bounce`) + timeouts in the last 60 s | halted above `api_errors_per_min` |
//! | [`SwitchKind::ModelDisagreement`] | the Trinity's disagreement (0…1) | conservative above `model_disagreement_max`, off at or below |
//! | [`SwitchKind::Operator`] | an operator's command | halted / active |
//!
//! Severity orders the states (`Active` < `Reducing` < `Halted`): a switch only ever raises it, so a
//! halt is never downgraded to reducing, and `Halted` is sticky — only [`Switches::resume`] leaves it.
//! The one way down without an operator is the volatility switch calming `Reducing` back to `Active`.
//! A switch that fires while the state is already at or above its target produces no transition
//! (the first halt's reason and time are kept).
//!
//! Money is exact ([`Money`]); only the volatility (a statistic) and the disagreement (a model
//! output) are floats.
//!
//! Hot path: `on_mid`, `on_equity`, `on_trade_closed` and `on_model_disagreement` run on the strategy
//! thread and allocate nothing (the volatility window is allocated at start). `on_api_error` is an
//! error path: its 60 s window is pre-sized for `api_errors_per_min + 1` errors and only grows past
//! that while errors keep coming after the halt.

use std::collections::VecDeque;

use qalpha_engine::Price;

use crate::RiskState::{self, Active, Halted, Reducing};
use crate::{Money, RiskConfig, SwitchKind};

const NS_PER_S: u64 = 1_000_000_000;
#[cfg(test)]
const NS_PER_DAY: u64 = 86_400 * NS_PER_S;
/// The API-error window.
const API_WINDOW_NS: u64 = 60 * NS_PER_S;

/// A change of state or of the conservative modifier, for the journal, the alert and the actions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub from: RiskState,
    pub to: RiskState,
    /// The conservative modifier after the transition.
    pub conservative: bool,
    pub switch: SwitchKind,
    /// The measured value in the switch's unit: loss (10⁻⁸ quote) for `DailyLoss`, a count for
    /// `ConsecutiveLosses` and `ApiErrorRate`, bps for `VolatilitySpike`, disagreement × 10⁶ for
    /// `ModelDisagreement`, 0 for `Operator`.
    pub detail: i64,
    pub at_ns: u64,
}

pub use crate::journal::utc_day;

/// The kill switches' state. Single writer: the strategy thread.
#[derive(Clone, Debug)]
pub struct Switches {
    // Thresholds, copied from the config at start.
    daily_loss_limit: Money,
    max_consecutive_losses: u32,
    vol_window: usize,
    vol_spike_bps: f64,
    api_errors_per_min: u32,
    model_disagreement_max: f64,

    state: RiskState,
    conservative: bool,
    halt_reason: Option<SwitchKind>,
    halted_at_ns: Option<u64>,
    consecutive_losses: u32,

    /// The UTC day `day_pnl` belongs to.
    day: Option<u32>,
    /// Equity at the day's first `on_equity` (or the first after a restore or a resume).
    day_start_equity: Option<Money>,
    /// PnL the day had before `day_start_equity` was taken (a restored day's PnL, else 0).
    day_pnl_offset: Money,
    day_pnl: Money,

    last_sample_ns: Option<u64>,
    last_log_mid: Option<f64>,
    /// 1 s log returns of the mid, the newest `vol_window` of them.
    returns: VecDeque<f64>,
    /// Times of the API errors of the last 60 s, oldest first.
    api_errors: VecDeque<u64>,
}

impl Switches {
    /// Active, not conservative, nothing counted yet.
    pub fn new(cfg: &RiskConfig) -> Self {
        // A standard deviation needs two returns.
        let vol_window = (cfg.vol_window_s as usize).max(2);
        Self {
            daily_loss_limit: Money::from_qty(cfg.daily_loss_limit),
            max_consecutive_losses: cfg.max_consecutive_losses,
            vol_window,
            vol_spike_bps: cfg.vol_spike_bps.to_f64(),
            api_errors_per_min: cfg.api_errors_per_min,
            model_disagreement_max: cfg.model_disagreement_max,
            state: Active,
            conservative: false,
            halt_reason: None,
            halted_at_ns: None,
            consecutive_losses: 0,
            day: None,
            day_start_equity: None,
            day_pnl_offset: Money::ZERO,
            day_pnl: Money::ZERO,
            last_sample_ns: None,
            last_log_mid: None,
            returns: VecDeque::with_capacity(vol_window),
            api_errors: VecDeque::with_capacity(cfg.api_errors_per_min as usize + 1),
        }
    }

    pub fn state(&self) -> RiskState {
        self.state
    }

    pub fn conservative(&self) -> bool {
        self.conservative
    }

    /// What halted trading (`None` unless halted).
    pub fn halt_reason(&self) -> Option<SwitchKind> {
        self.halt_reason
    }

    pub fn halted_at_ns(&self) -> Option<u64> {
        self.halted_at_ns
    }

    pub fn consecutive_losses(&self) -> u32 {
        self.consecutive_losses
    }

    /// Today's PnL as of the last `on_equity` (or as restored).
    pub fn day_pnl(&self) -> Money {
        self.day_pnl
    }

    /// The UTC day [`Self::day_pnl`] belongs to.
    pub fn utc_day(&self) -> Option<u32> {
        self.day
    }

    /// Realized volatility over the window, bps (`None` until two returns are sampled).
    ///
    /// The sample standard deviation of the 1 s log returns × √(returns in the window): with a full
    /// window, the volatility over `vol_window_s`. A partly filled window (the first seconds after
    /// start) scales by fewer returns, so a start-up estimate errs low rather than cutting positions
    /// on two noisy samples.
    pub fn realized_vol_bps(&self) -> Option<f64> {
        let n = self.returns.len();
        if n < 2 {
            return None;
        }
        let mean = self.returns.iter().sum::<f64>() / n as f64;
        let squares: f64 = self.returns.iter().map(|r| (r - mean).powi(2)).sum();
        let stdev = (squares / (n - 1) as f64).sqrt();
        Some(stdev * (n as f64).sqrt() * 10_000.0)
    }

    /// Equity now. The UTC day's first call sets the day's start equity; `day_pnl` = equity − start
    /// (plus a restored day's PnL); a loss ≥ `daily_loss_limit` halts (`DailyLoss`). A new UTC day
    /// resets the start — a halt stays until an operator resumes.
    pub fn on_equity(&mut self, equity: Money, now_ns: u64) -> Option<Transition> {
        let day = utc_day(now_ns);
        if self.day != Some(day) {
            // Yesterday's loss does not count today.
            self.day = Some(day);
            self.day_start_equity = None;
            self.day_pnl_offset = Money::ZERO;
        }
        let start = *self.day_start_equity.get_or_insert(equity);
        self.day_pnl = self.day_pnl_offset + (equity - start);
        let loss = -self.day_pnl;
        if loss >= self.daily_loss_limit {
            return self.escalate(Halted, SwitchKind::DailyLoss, loss.to_qty().raw(), now_ns);
        }
        None
    }

    /// A round trip closed with net `pnl`: a loss (< 0) counts, a win (> 0) resets the count, a
    /// scratch (0) leaves it; reaching `max_consecutive_losses` halts (`ConsecutiveLosses`).
    pub fn on_trade_closed(&mut self, pnl: Money, now_ns: u64) -> Option<Transition> {
        if pnl >= Money::ZERO {
            if pnl > Money::ZERO {
                self.consecutive_losses = 0;
            }
            return None;
        }
        self.consecutive_losses = self.consecutive_losses.saturating_add(1);
        if self.consecutive_losses >= self.max_consecutive_losses {
            let n = self.consecutive_losses as i64;
            return self.escalate(Halted, SwitchKind::ConsecutiveLosses, n, now_ns);
        }
        None
    }

    /// A mid price, sampled at most once a second (a later sample after a gap makes one return over
    /// the gap) into a window of `vol_window_s` log returns. Realized volatility
    /// ([`Self::realized_vol_bps`]) above `vol_spike_bps` → `Reducing` (from `Active`); back under
    /// half the threshold → `Active` (from `Reducing`): the gap between the two keeps the state from
    /// flapping around one value. Never leaves `Halted`.
    pub fn on_mid(&mut self, mid: Price, now_ns: u64) -> Option<Transition> {
        if mid.raw() <= 0 {
            return None; // no log of a non-positive price; a bad tick, not a market move
        }
        if let Some(t) = self.last_sample_ns {
            if now_ns < t.saturating_add(NS_PER_S) {
                return None;
            }
        }
        self.last_sample_ns = Some(now_ns);
        let log_mid = (mid.raw() as f64).ln();
        if let Some(prev) = self.last_log_mid.replace(log_mid) {
            if self.returns.len() == self.vol_window {
                self.returns.pop_front();
            }
            self.returns.push_back(log_mid - prev);
        }
        let vol = self.realized_vol_bps()?;
        let to = vol_step(self.state, vol, self.vol_spike_bps)?;
        let t = self.transition(to, SwitchKind::VolatilitySpike, vol.round() as i64, now_ns);
        self.state = to;
        Some(t)
    }

    /// A reject or timeout: more than `api_errors_per_min` in the last 60 s halts (`ApiErrorRate`).
    /// Returns the count in the window (for the journal) with the transition, if any.
    pub fn on_api_error(&mut self, now_ns: u64) -> (u32, Option<Transition>) {
        self.api_errors.retain(|t| in_api_window(*t, now_ns));
        self.api_errors.push_back(now_ns);
        let n = self.api_errors.len() as u32;
        if n <= self.api_errors_per_min {
            return (n, None);
        }
        (
            n,
            self.escalate(Halted, SwitchKind::ApiErrorRate, n as i64, now_ns),
        )
    }

    /// The Trinity's disagreement (0…1): above `model_disagreement_max` → conservative on; at or
    /// below → off. The state is unchanged; the transition (`from == to`) reports the toggle. A NaN
    /// (a model that produced nothing usable) counts as disagreement.
    pub fn on_model_disagreement(&mut self, d: f64, now_ns: u64) -> Option<Transition> {
        let on = d.is_nan() || d > self.model_disagreement_max;
        if on == self.conservative {
            return None;
        }
        self.conservative = on;
        // `as` saturates (and maps NaN to 0): the detail is for the journal only.
        let detail = (d * 1e6).round() as i64;
        Some(self.transition(self.state, SwitchKind::ModelDisagreement, detail, now_ns))
    }

    /// Operator: halt now (no transition if already halted).
    pub fn halt(&mut self, now_ns: u64) -> Option<Transition> {
        self.escalate(Halted, SwitchKind::Operator, 0, now_ns)
    }

    /// Operator: `Halted` | `Reducing` → `Active`. Clears the halt reason and time and the
    /// consecutive-loss count, and makes the next `on_equity` the day's new start (so the loss that
    /// halted does not halt again at once). The API-error window is kept: a venue still failing
    /// halts again. No transition (and no change) when already active.
    pub fn resume(&mut self, now_ns: u64) -> Option<Transition> {
        if self.state == Active {
            return None;
        }
        let t = self.transition(Active, SwitchKind::Operator, 0, now_ns);
        self.state = Active;
        self.halt_reason = None;
        self.halted_at_ns = None;
        self.consecutive_losses = 0;
        self.day_start_equity = None;
        self.day_pnl_offset = Money::ZERO;
        self.day_pnl = Money::ZERO;
        Some(t)
    }

    /// Restart, from the journal: the state, the modifier, the halt reason and time, today's PnL,
    /// the consecutive losses and the API errors of the last minute.
    ///
    /// The restored `day_pnl` of `utc_day` becomes the day's offset: the next `on_equity` of the same
    /// day takes its equity as the new start, so `day_pnl = restored + (equity − equity then)`. On a
    /// later day the offset is dropped like any other day's. The journal keeps only the count of API
    /// errors, so they are restored as if they happened at `now_ns` (they leave the window 60 s
    /// after the restart — the cautious side). The volatility window starts empty.
    #[allow(clippy::too_many_arguments)] // one argument per restored journal field
    pub fn restore(
        &mut self,
        state: RiskState,
        conservative: bool,
        halt_reason: Option<SwitchKind>,
        halted_at_ns: Option<u64>,
        utc_day: Option<u32>,
        day_pnl: Money,
        consecutive_losses: u32,
        api_errors_in_last_min: u32,
        now_ns: u64,
    ) {
        self.state = state;
        self.conservative = conservative;
        let halted = state == Halted;
        self.halt_reason = if halted { halt_reason } else { None };
        self.halted_at_ns = if halted { halted_at_ns } else { None };
        self.day = utc_day;
        self.day_start_equity = None;
        self.day_pnl_offset = day_pnl;
        self.day_pnl = day_pnl;
        self.consecutive_losses = consecutive_losses;
        self.api_errors.clear();
        self.api_errors
            .extend(std::iter::repeat_n(now_ns, api_errors_in_last_min as usize));
        self.returns.clear();
        self.last_sample_ns = None;
        self.last_log_mid = None;
    }

    /// Moves to `to` if it is more severe than the current state.
    fn escalate(
        &mut self,
        to: RiskState,
        k: SwitchKind,
        detail: i64,
        at: u64,
    ) -> Option<Transition> {
        if severity(to) <= severity(self.state) {
            return None;
        }
        let t = self.transition(to, k, detail, at);
        self.state = to;
        if to == Halted {
            self.halt_reason = Some(k);
            self.halted_at_ns = Some(at);
        }
        Some(t)
    }

    fn transition(&self, to: RiskState, switch: SwitchKind, detail: i64, at_ns: u64) -> Transition {
        Transition {
            from: self.state,
            to,
            conservative: self.conservative,
            switch,
            detail,
            at_ns,
        }
    }
}

fn severity(s: RiskState) -> u8 {
    match s {
        Active => 0,
        Reducing => 1,
        Halted => 2,
    }
}

fn in_api_window(t: u64, now_ns: u64) -> bool {
    now_ns.saturating_sub(t) < API_WINDOW_NS
}

/// Where the volatility switch moves `state`: over `spike` from active → reducing; under half of it
/// from reducing → active; otherwise nowhere (halted is never touched).
fn vol_step(state: RiskState, vol_bps: f64, spike_bps: f64) -> Option<RiskState> {
    match state {
        Active if vol_bps > spike_bps => Some(Reducing),
        Reducing if vol_bps < spike_bps / 2.0 => Some(Active),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use qalpha_engine::Qty;

    use super::*;
    use SwitchKind as K;

    const DAY: u64 = 20_000 * NS_PER_DAY;
    const S: u64 = NS_PER_S;

    fn m(s: &str) -> Money {
        Money::from_qty(Qty::parse(s).unwrap())
    }
    fn px(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn cfg() -> RiskConfig {
        RiskConfig {
            daily_loss_limit: Qty::parse("300").unwrap(),
            max_consecutive_losses: 3,
            vol_window_s: 10,
            vol_spike_bps: Qty::parse("300").unwrap(),
            api_errors_per_min: 5,
            model_disagreement_max: 0.5,
            ..RiskConfig::default()
        }
    }
    fn sw() -> Switches {
        Switches::new(&cfg())
    }
    /// Restored active, today (day 20 000).
    fn restored(c: bool, pnl: Money, losses: u32, errs: u32, now: u64) -> Switches {
        let mut s = sw();
        s.restore(Active, c, None, None, Some(20_000), pnl, losses, errs, now);
        s
    }
    type Seen = Option<(RiskState, RiskState, SwitchKind, i64)>;
    /// A transition's (from, to, switch, detail).
    fn seen(t: Option<Transition>) -> Seen {
        t.map(|t| (t.from, t.to, t.switch, t.detail))
    }
    fn tr(from: RiskState, to: RiskState, k: SwitchKind, detail: i64) -> Seen {
        Some((from, to, k, detail))
    }

    #[test]
    fn daily_loss_halts_at_the_limit() {
        // (equity later in the day, halts?) against a start of 10 000 and a limit of 300.
        let rows = [
            ("9700.00000001", false),
            ("9700", true), // detail 300 × 10⁸
            ("9699.99999999", true),
            ("12000", false),
        ];
        for (eq, halts) in rows {
            let mut s = sw();
            assert_eq!(s.on_equity(m("10000"), DAY), None);
            let t = s.on_equity(m(eq), DAY + S);
            assert_eq!(s.day_pnl(), m(eq) - m("10000"));
            assert_eq!(t.is_some(), halts, "equity {eq}");
            if halts {
                let loss = (m("10000") - m(eq)).to_qty().raw();
                assert_eq!(seen(t), tr(Active, Halted, K::DailyLoss, loss));
                assert_eq!(s.halt_reason(), Some(K::DailyLoss));
                assert_eq!(s.halted_at_ns(), Some(DAY + S));
            }
        }
    }

    #[test]
    fn a_new_utc_day_starts_from_the_current_equity() {
        let days = [0, NS_PER_DAY - 1, NS_PER_DAY, DAY + 3600 * S].map(utc_day);
        assert_eq!(days, [0, 0, 1, 20_000]);
        let mut s = sw();
        s.on_equity(m("10000"), DAY);
        assert_eq!(s.on_equity(m("9750"), DAY + NS_PER_DAY - 1), None);
        assert_eq!(s.day_pnl(), m("-250"));
        assert_eq!(s.utc_day(), Some(20_000));
        // Midnight: yesterday's −250 does not count; another −250 today is not 300.
        assert_eq!(s.on_equity(m("9750"), DAY + NS_PER_DAY), None);
        assert_eq!(s.day_pnl(), Money::ZERO);
        assert_eq!(s.utc_day(), Some(20_001));
        assert_eq!(s.on_equity(m("9500"), DAY + NS_PER_DAY + S), None);
        assert_eq!(s.day_pnl(), m("-250"));
        // A halt survives midnight.
        assert!(s.on_equity(m("9450"), DAY + NS_PER_DAY + 2 * S).is_some());
        assert_eq!(s.on_equity(m("9450"), DAY + 2 * NS_PER_DAY), None);
        assert_eq!(s.state(), Halted);
        assert_eq!(s.day_pnl(), Money::ZERO);
    }

    #[test]
    fn consecutive_losses_halt_on_reaching_the_limit_and_wins_reset() {
        let mut s = sw();
        let loss = m("-1");
        assert_eq!(s.on_trade_closed(loss, 1), None);
        assert_eq!(s.on_trade_closed(loss, 2), None);
        assert_eq!(s.consecutive_losses(), 2);
        // A scratch neither counts nor resets; a win resets.
        assert_eq!(s.on_trade_closed(Money::ZERO, 3), None);
        assert_eq!(s.consecutive_losses(), 2);
        assert_eq!(s.on_trade_closed(Money(1), 4), None);
        assert_eq!(s.consecutive_losses(), 0);
        // Just under (2), at (3).
        assert_eq!(s.on_trade_closed(loss, 5), None);
        assert_eq!(s.on_trade_closed(Money(-1), 6), None);
        let t = s.on_trade_closed(loss, 7);
        assert_eq!(seen(t), tr(Active, Halted, K::ConsecutiveLosses, 3));
        // Over: already halted, nothing new, the count goes on.
        assert_eq!(s.on_trade_closed(loss, 8), None);
        assert_eq!(s.consecutive_losses(), 4);
        assert_eq!(s.halt_reason(), Some(K::ConsecutiveLosses));
    }

    #[test]
    fn api_errors_halt_above_the_rate_and_old_ones_drop_out() {
        let mut s = sw();
        for i in 0..5u32 {
            assert_eq!(s.on_api_error(DAY + i as u64 * S), (i + 1, None));
        }
        // At 5 (the limit): still trading. 60 s after the first it has left the window.
        assert_eq!(s.on_api_error(DAY + 60 * S), (5, None));
        // The sixth within a minute halts.
        let (n, t) = s.on_api_error(DAY + 61 * S - 1);
        assert_eq!(n, 6);
        assert_eq!(seen(t), tr(Active, Halted, K::ApiErrorRate, 6));
        assert_eq!(s.on_api_error(DAY + 61 * S), (6, None));
    }

    #[test]
    fn vol_step_thresholds() {
        #[rustfmt::skip]
        let rows = [
            (Active, 299.999, None), (Active, 300.0, None), (Active, 300.001, Some(Reducing)),
            (Reducing, 150.001, None), (Reducing, 150.0, None), (Reducing, 149.999, Some(Active)),
            (Reducing, 1e9, None), (Halted, 1e9, None), (Halted, 0.0, None),
        ];
        for (state, vol, want) in rows {
            assert_eq!(vol_step(state, vol, 300.0), want, "{state:?} at {vol}");
        }
    }

    /// Feeds `mids` one second apart from `t0`; returns the transitions.
    fn feed(s: &mut Switches, t0: u64, mids: &[&str]) -> Vec<Transition> {
        mids.iter()
            .enumerate()
            .filter_map(|(i, p)| s.on_mid(px(p), t0 + i as u64 * S))
            .collect()
    }

    #[test]
    fn realized_vol_is_the_stdev_of_log_returns_scaled_by_the_window() {
        let mut s = sw();
        feed(&mut s, DAY, &["100", "101", "100", "101"]);
        let r = (101f64 / 100.0).ln();
        // Returns +r, −r, +r: mean r/3, sample variance ((2r/3)²·2 + (4r/3)²)/2 = 4r²/3.
        let want = (4.0 * r * r / 3.0).sqrt() * 3f64.sqrt() * 10_000.0;
        assert!((s.realized_vol_bps().unwrap() - want).abs() < 1e-9);
        // Ten returns at most.
        feed(&mut s, DAY + 10 * S, &["100"; 20]);
        assert_eq!(s.realized_vol_bps(), Some(0.0));
    }

    #[test]
    fn vol_spike_reduces_then_calm_returns_to_active() {
        let mut s = sw();
        let quiet = ["100", "100.01", "100", "100.01", "100"];
        assert!(feed(&mut s, DAY, &quiet).is_empty());
        let vol = s.realized_vol_bps().unwrap();
        assert!(vol < 10.0, "quiet vol {vol}");
        // 3 % swings: far above 300 bps.
        let ts = feed(&mut s, DAY + 5 * S, &["103", "100", "103"]);
        assert_eq!(ts.len(), 1);
        let (t, over) = (seen(Some(ts[0])).unwrap(), ts[0].detail > 300);
        assert_eq!(
            (t.0, t.1, t.2, over),
            (Active, Reducing, K::VolatilitySpike, true)
        );
        assert_eq!(s.state(), Reducing);
        // Calm: once the swings leave the window the vol drops under 150 → active.
        let ts = feed(&mut s, DAY + 8 * S, &["103"; 11]);
        assert_eq!(ts.len(), 1);
        assert_eq!((ts[0].from, ts[0].to), (Reducing, Active));
        assert_eq!(s.state(), Active);
    }

    #[test]
    fn mids_are_sampled_at_most_once_a_second() {
        let mut s = sw();
        for i in 0..50u64 {
            // 20 % moves every 100 ms: only every tenth is a sample.
            let p = if i % 2 == 0 { "100" } else { "120" };
            s.on_mid(px(p), DAY + i * S / 10);
        }
        // Samples at 0, 1 s, … 4 s all landed on even ticks (100): no move seen.
        assert_eq!(s.realized_vol_bps(), Some(0.0));
        assert_eq!(s.state(), Active);
        // A non-positive mid is ignored.
        assert_eq!(s.on_mid(Price(0), DAY + 10 * S), None);
    }

    #[test]
    fn model_disagreement_toggles_conservative_without_moving_the_state() {
        let mut s = sw();
        assert_eq!(s.on_model_disagreement(0.5, 1), None); // at the limit: off
        let t = s.on_model_disagreement(0.500001, 2).unwrap();
        assert_eq!((t.to, t.conservative, t.detail), (Active, true, 500_001));
        assert!(s.conservative());
        assert_eq!(s.on_model_disagreement(0.9, 3), None); // already on
        let t = s.on_model_disagreement(0.5, 4).unwrap();
        assert_eq!((t.conservative, t.switch), (false, K::ModelDisagreement));
        assert!(!s.conservative());
        assert!(s.on_model_disagreement(f64::NAN, 5).unwrap().conservative);
    }

    #[test]
    fn halted_is_sticky_across_every_other_switch() {
        let mut s = sw();
        s.on_equity(m("10000"), DAY);
        assert!(s.on_equity(m("9000"), DAY + S).is_some());
        assert_eq!(s.halted_at_ns(), Some(DAY + S));
        for i in 0..5 {
            assert_eq!(s.on_trade_closed(m("-1"), DAY + 2 * S + i), None);
        }
        for i in 0..10 {
            assert_eq!(s.on_api_error(DAY + 3 * S + i).1, None);
        }
        assert!(feed(&mut s, DAY + 4 * S, &["100", "110", "100", "110", "100"]).is_empty());
        assert!(feed(&mut s, DAY + 9 * S, &["100"; 12]).is_empty());
        assert_eq!(s.halt(DAY + 30 * S), None);
        // Conservative still toggles; the state stays.
        let t = s.on_model_disagreement(1.0, DAY + 31 * S).unwrap();
        assert_eq!((t.from, t.to, t.conservative), (Halted, Halted, true));
        assert_eq!(s.state(), Halted);
        assert_eq!(s.halt_reason(), Some(K::DailyLoss));
        assert_eq!(s.halted_at_ns(), Some(DAY + S));
    }

    #[test]
    fn halted_wins_over_reducing() {
        let mut s = sw();
        let ts = feed(&mut s, DAY, &["100", "103", "100", "103"]);
        assert_eq!(s.state(), Reducing, "{ts:?}");
        let t = s.halt(DAY + 10 * S);
        assert_eq!(seen(t), tr(Reducing, Halted, K::Operator, 0));
        // A calm market does not take a halt back to active.
        assert!(feed(&mut s, DAY + 11 * S, &["100"; 12]).is_empty());
        assert_eq!(s.state(), Halted);
    }

    #[test]
    fn resume_clears_the_halt_the_losses_and_the_days_start() {
        let mut s = sw();
        assert_eq!(s.resume(1), None); // already active
        s.on_equity(m("10000"), DAY);
        s.on_trade_closed(m("-1"), DAY);
        s.on_trade_closed(m("-1"), DAY);
        s.on_equity(m("9700"), DAY + S);
        assert_eq!(s.state(), Halted);
        let t = s.resume(DAY + 2 * S).unwrap();
        assert_eq!((t.from, t.to, t.switch), (Halted, Active, K::Operator));
        assert_eq!((s.halt_reason(), s.halted_at_ns()), (None, None));
        assert_eq!(s.consecutive_losses(), 0);
        // The next equity is the day's new start: the same 9700 no longer halts.
        assert_eq!(s.on_equity(m("9700"), DAY + 3 * S), None);
        assert_eq!(s.day_pnl(), Money::ZERO);
        assert!(s.on_equity(m("9400"), DAY + 4 * S).is_some());
        // Reducing resumes too.
        let mut s = sw();
        feed(&mut s, DAY, &["100", "103", "100", "103"]);
        assert_eq!(s.state(), Reducing);
        assert_eq!(s.resume(DAY + 5 * S).map(|t| t.from), Some(Reducing));
        assert_eq!(s.state(), Active);
    }

    #[test]
    fn restore_then_continue() {
        let mut s = restored(true, m("-200"), 2, 4, DAY + 100 * S);
        assert_eq!((s.state(), s.conservative()), (Active, true));
        assert_eq!(s.day_pnl(), m("-200"));
        assert_eq!(s.consecutive_losses(), 2);
        // day_pnl = −200 + (equity − equity at restore).
        assert_eq!(s.on_equity(m("5000"), DAY + 101 * S), None);
        assert_eq!(s.day_pnl(), m("-200"));
        assert_eq!(s.on_equity(m("4900.00000001"), DAY + 102 * S), None);
        assert_eq!(s.day_pnl(), m("-299.99999999"));
        let t = s.on_equity(m("4900"), DAY + 103 * S);
        assert_eq!(seen(t), tr(Active, Halted, K::DailyLoss, 300_0000_0000));

        // The counters continue from their restored values.
        let mut s = restored(false, Money::ZERO, 2, 4, DAY);
        assert_eq!(s.on_api_error(DAY + S), (5, None));
        assert_eq!(s.on_api_error(DAY + 2 * S).0, 6);
        assert_eq!(s.halt_reason(), Some(K::ApiErrorRate));
        let mut s = restored(false, Money::ZERO, 2, 5, DAY);
        // Restored errors leave the window 60 s after the restart.
        assert_eq!(s.on_api_error(DAY + 60 * S), (1, None));
        let t = s.on_trade_closed(m("-1"), DAY + 61 * S);
        assert_eq!(seen(t), tr(Active, Halted, K::ConsecutiveLosses, 3));
    }

    #[test]
    fn restore_of_a_halt_and_of_yesterday() {
        let mut s = sw();
        let (why, at, day) = (Some(K::DailyLoss), Some(DAY - S), Some(19_999));
        s.restore(Halted, false, why, at, day, m("-350"), 0, 0, DAY + S);
        assert_eq!(s.state(), Halted);
        assert_eq!((s.halt_reason(), s.halted_at_ns()), (why, at));
        // Yesterday's loss is gone today; the halt is not.
        assert_eq!(s.on_equity(m("9650"), DAY + 2 * S), None);
        assert_eq!((s.day_pnl(), s.utc_day()), (Money::ZERO, Some(20_000)));
        assert_eq!(s.state(), Halted);
        assert!(s.resume(DAY + 3 * S).is_some());
        assert_eq!(s.state(), Active);
    }
}
