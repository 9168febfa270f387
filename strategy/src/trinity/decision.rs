//! The Trinity's decision layer: the three models' latest outputs ([`Signals`]) and the book's
//! spread in, a target position and an order type ([`Decision`]) out. A pure function
//! ([`decide`]) of its inputs, so a table of cases pins it down (see the tests).
//!
//! # Rules
//!
//! 1. **Scores in [−1, 1]**, one per directional model:
//!    - Oracle: `clamp(q50 / ((q_hi − q_lo) / 2))` at the chosen horizon — the median return in units
//!      of the forecast's half-width, a signal-to-noise ratio (a wide forecast says little);
//!    - Strategist: `P(long) − P(short)` from the softmax of its action logits.
//! 2. **Disagreement** `|oracle − strategist| / 2` ∈ [0, 1]: 0 when they agree fully, 1 when they
//!    point opposite ways with full conviction. Risk reads it (`RiskEngine::on_model_disagreement`)
//!    and goes conservative above `risk.model_disagreement_max`.
//! 3. **Direction**: long (short) only when both scores are positive (negative) and the weaker one
//!    is at least `min_conviction`; otherwise flat. `conviction` = the weaker |score|.
//! 4. **Exposure** from the Guardian: `(1 − P(shock)) × (1 − change)`; zero when `P(shock) ≥
//!    shock_max` or `change ≥ change_max` (a regime break: get flat, whatever the others say).
//! 5. **Size**: `max_qty × conviction × exposure`, rounded *down* to whole `qty_step`s (integer lots;
//!    the float factor only sizes).
//! 6. **Order type**: a Guardian exit from a position is [`OrderStyle::Exit`] (market, now). Otherwise
//!    taker when the expected edge `|q50|` in bps, less half the spread paid to cross, reaches
//!    `taker_edge_bps`; else maker (post-only at the touch).

use qalpha_engine::Qty;

/// The models' latest outputs, as the decision layer reads them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signals {
    /// Guardian: probability of the shock regime.
    pub p_shock: f64,
    /// Guardian: regime-change score in [0, 1].
    pub change: f64,
    /// Oracle at the chosen horizon: lowest, median and highest quantile of the return (a fraction:
    /// 0.001 = 10 bps).
    pub q_lo: f64,
    pub q50: f64,
    pub q_hi: f64,
    /// Strategist: action probabilities (softmax of its logits).
    pub p_long: f64,
    pub p_short: f64,
    pub p_flat: f64,
}

/// The decision layer's settings (`[strategy]` keys of the `trinity` strategy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionParams {
    /// Largest |target position| (base qty).
    pub max_qty: Qty,
    /// Lot size the target is rounded down to.
    pub qty_step: Qty,
    /// Both scores must reach this (0…1) to take a side.
    pub min_conviction: f64,
    /// Expected edge (bps, net of half the spread) from which the decision crosses the spread.
    pub taker_edge_bps: f64,
    /// `P(shock)` at or above which exposure is zero.
    pub shock_max: f64,
    /// Change score at or above which exposure is zero.
    pub change_max: f64,
}

impl Default for DecisionParams {
    fn default() -> Self {
        Self {
            max_qty: Qty(100_000),  // 0.001
            qty_step: Qty(100_000), // 0.001
            min_conviction: 0.2,
            taker_edge_bps: 8.0,
            shock_max: 0.5,
            change_max: 0.8,
        }
    }
}

/// How to trade towards the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStyle {
    /// Post-only at the touch.
    Maker,
    /// Cross the spread (IOC at the far touch).
    Taker,
    /// Leave now at market: the Guardian saw a shock or a regime change.
    Exit,
}

/// Why the target is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Both directional models agree with enough conviction.
    Consensus,
    /// They point different ways (or one is flat).
    NoConsensus,
    /// They agree but one is below `min_conviction`.
    Weak,
    /// The Guardian zeroed the exposure.
    Guardian,
    /// A side is wanted but the size rounds down to zero lots.
    TooSmall,
}

/// What the layer decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Signed target position (base qty, whole `qty_step`s).
    pub target: Qty,
    pub style: OrderStyle,
    pub reason: Reason,
    /// −1, 0 or +1 before sizing.
    pub direction: i8,
    pub oracle_score: f64,
    pub strategist_score: f64,
    /// The weaker |score| (0 when the scores differ in sign).
    pub conviction: f64,
    /// Guardian's exposure scale, 0…1.
    pub exposure: f64,
    /// `|oracle_score − strategist_score| / 2`, 0…1.
    pub disagreement: f64,
}

/// The decision for `s`, given the current `position` (base qty, signed) and the book's spread in
/// bps (`NaN` when unknown: then a taker decision needs the edge alone). See the module docs.
pub fn decide(s: &Signals, p: &DecisionParams, position: Qty, spread_bps: f64) -> Decision {
    let half_width = ((s.q_hi - s.q_lo) / 2.0).max(1e-12);
    let oracle_score = clamp_unit(s.q50 / half_width);
    let strategist_score = clamp_unit(s.p_long - s.p_short);
    let disagreement = (oracle_score - strategist_score).abs() / 2.0;
    let same_sign = oracle_score * strategist_score > 0.0;
    let conviction = if same_sign {
        oracle_score.abs().min(strategist_score.abs())
    } else {
        0.0
    };
    let guardian_exit = !(s.p_shock < p.shock_max && s.change < p.change_max);
    let exposure = if guardian_exit {
        0.0
    } else {
        ((1.0 - s.p_shock) * (1.0 - s.change)).clamp(0.0, 1.0)
    };
    let (direction, mut reason) = if !same_sign {
        (0i8, Reason::NoConsensus)
    } else if conviction < p.min_conviction {
        (0, Reason::Weak)
    } else {
        (oracle_score.signum() as i8, Reason::Consensus)
    };
    if guardian_exit {
        reason = Reason::Guardian;
    }
    let step = p.qty_step.raw().max(1);
    let lots = if direction == 0 || guardian_exit {
        0
    } else {
        let raw = p.max_qty.raw() as f64 * conviction * exposure;
        // Finite and ≥ 0 by construction; `as` saturates anyway.
        ((raw / step as f64).floor() as i64).min(p.max_qty.raw() / step)
    };
    if direction != 0 && !guardian_exit && lots == 0 {
        reason = Reason::TooSmall;
    }
    let target = Qty(direction as i64 * lots * step);
    let half_spread = if spread_bps.is_finite() {
        spread_bps / 2.0
    } else {
        0.0
    };
    let style = if guardian_exit && position.raw() != 0 {
        OrderStyle::Exit
    } else if s.q50.abs() * 1e4 - half_spread >= p.taker_edge_bps {
        OrderStyle::Taker
    } else {
        OrderStyle::Maker
    };
    Decision {
        target,
        style,
        reason,
        direction,
        oracle_score,
        strategist_score,
        conviction,
        exposure,
        disagreement,
    }
}

fn clamp_unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calm regime, a bullish Oracle (q50 = +5 bps, half-width 5 bps → score 1) and a Strategist
    /// at P(long) 0.8 / P(short) 0.1 (score 0.7).
    const CALM_LONG: Signals = Signals {
        p_shock: 0.0,
        change: 0.0,
        q_lo: 0.0,
        q50: 0.0005,
        q_hi: 0.001,
        p_long: 0.8,
        p_short: 0.1,
        p_flat: 0.1,
    };

    fn params() -> DecisionParams {
        DecisionParams {
            max_qty: Qty(1_000_000), // 0.01
            qty_step: Qty(100_000),  // 0.001
            ..DecisionParams::default()
        }
    }

    struct Case {
        name: &'static str,
        signals: Signals,
        position: i64,
        spread_bps: f64,
        target: i64,
        style: OrderStyle,
        reason: Reason,
        disagreement: f64,
    }

    #[test]
    fn table() {
        let long = CALM_LONG;
        let short = Signals {
            q_lo: -0.001,
            q50: -0.0005,
            q_hi: 0.0,
            p_long: 0.1,
            p_short: 0.8,
            ..long
        };
        let cases = [
            Case {
                name: "agreement long: 0.01 × min(1, 0.7) = 0.007",
                signals: long,
                position: 0,
                spread_bps: 0.1,
                target: 700_000,
                style: OrderStyle::Maker,
                reason: Reason::Consensus,
                disagreement: 0.15,
            },
            Case {
                name: "agreement short, mirrored",
                signals: short,
                position: 0,
                spread_bps: 0.1,
                target: -700_000,
                style: OrderStyle::Maker,
                reason: Reason::Consensus,
                disagreement: 0.15,
            },
            Case {
                name: "opposite views: flat, full disagreement",
                signals: Signals {
                    p_long: 0.0,
                    p_short: 1.0,
                    p_flat: 0.0,
                    ..long
                },
                position: 300_000,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::NoConsensus,
                disagreement: 1.0,
            },
            Case {
                name: "strategist flat: no consensus",
                signals: Signals {
                    p_long: 0.1,
                    p_short: 0.1,
                    p_flat: 0.8,
                    ..long
                },
                position: 0,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::NoConsensus,
                disagreement: 0.5,
            },
            Case {
                name: "weak strategist (0.1 < 0.2)",
                signals: Signals {
                    p_long: 0.4,
                    p_short: 0.3,
                    p_flat: 0.3,
                    ..long
                },
                position: 0,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::Weak,
                disagreement: 0.45,
            },
            Case {
                name: "guardian scales: (1 − 0.2) × (1 − 0.5) × 0.007 → 0.0028 → 2 lots",
                signals: Signals {
                    p_shock: 0.2,
                    change: 0.5,
                    ..long
                },
                position: 0,
                spread_bps: 0.1,
                target: 200_000,
                style: OrderStyle::Maker,
                reason: Reason::Consensus,
                disagreement: 0.15,
            },
            Case {
                name: "shock: exit the position at market",
                signals: Signals {
                    p_shock: 0.6,
                    ..long
                },
                position: 500_000,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Exit,
                reason: Reason::Guardian,
                disagreement: 0.15,
            },
            Case {
                name: "regime change while flat: stay flat, nothing to exit",
                signals: Signals {
                    change: 0.9,
                    ..long
                },
                position: 0,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::Guardian,
                disagreement: 0.15,
            },
            Case {
                name: "edge 10 bps − half of 2 bps spread ≥ 8: taker",
                signals: Signals {
                    q_lo: 0.0,
                    q50: 0.001,
                    q_hi: 0.002,
                    ..long
                },
                position: 0,
                spread_bps: 2.0,
                target: 700_000,
                style: OrderStyle::Taker,
                reason: Reason::Consensus,
                disagreement: 0.15,
            },
            Case {
                name: "edge 10 bps − half of 6 bps spread < 8: maker",
                signals: Signals {
                    q_lo: 0.0,
                    q50: 0.001,
                    q_hi: 0.002,
                    ..long
                },
                position: 0,
                spread_bps: 6.0,
                target: 700_000,
                style: OrderStyle::Maker,
                reason: Reason::Consensus,
                disagreement: 0.15,
            },
            Case {
                name: "tiny size rounds down to zero lots",
                signals: Signals {
                    p_shock: 0.45,
                    change: 0.79,
                    ..long
                },
                position: 0,
                spread_bps: 0.1,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::TooSmall,
                disagreement: 0.15,
            },
            Case {
                name: "a degenerate forecast (NaN median) is no view",
                signals: Signals {
                    q50: f64::NAN,
                    ..long
                },
                position: 0,
                spread_bps: f64::NAN,
                target: 0,
                style: OrderStyle::Maker,
                reason: Reason::NoConsensus,
                disagreement: 0.35,
            },
        ];
        for c in cases {
            let d = decide(&c.signals, &params(), Qty(c.position), c.spread_bps);
            assert_eq!(d.target, Qty(c.target), "{}: {d:?}", c.name);
            assert_eq!(d.style, c.style, "{}: {d:?}", c.name);
            assert_eq!(d.reason, c.reason, "{}: {d:?}", c.name);
            assert!(
                (d.disagreement - c.disagreement).abs() < 1e-9,
                "{}: disagreement {} != {}",
                c.name,
                d.disagreement,
                c.disagreement
            );
            assert_eq!(d.target.raw() % params().qty_step.raw(), 0, "{}", c.name);
            assert!(d.target.raw().abs() <= params().max_qty.raw(), "{}", c.name);
        }
    }

    #[test]
    fn size_never_exceeds_max_and_grows_with_conviction() {
        let p = params();
        let mut last = 0;
        for k in 0..=10 {
            let pl = 0.5 + k as f64 * 0.05;
            let s = Signals {
                p_long: pl,
                p_short: 1.0 - pl,
                p_flat: 0.0,
                ..CALM_LONG
            };
            let d = decide(&s, &p, Qty(0), 0.0);
            assert!(d.target.raw() >= last && d.target.raw() <= p.max_qty.raw());
            last = d.target.raw();
        }
        assert_eq!(last, p.max_qty.raw(), "full conviction buys max_qty");
    }
}
