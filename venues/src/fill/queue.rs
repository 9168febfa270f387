//! Queue position of a resting order: how much displayed quantity is still ahead of it at its
//! price.
//!
//! Our simulated orders are not in the venue's book — the displayed size at a price is everyone
//! else's. An order joining a price starts behind all of it (the venue gives time priority, and we
//! arrived last); from then on two things move it forward: trades at its price (the queue is eaten
//! from the front) and the displayed size shrinking (someone cancelled — ahead of us or behind us,
//! which the L2 feed does not say). *That* ambiguity is the modelling decision, so it is a trait,
//! [`QueueModel`] (after hftbacktest's `QueueModel`), with two implementations:
//!
//! - [`RiskAverse`]: every cancellation is assumed to be *behind* us; a shrinking level moves us up
//!   only when it becomes smaller than what we think is ahead (`ahead = min(ahead, displayed)`).
//!   Fills come as late as the L2 data allows; the right default for judging a strategy.
//! - [`ProportionalCancel`]: a decrease not explained by trades at our price is cancellations
//!   spread pro rata over the quantity ahead of and behind us. Closer to an average queue, and
//!   optimistic whenever the cancellations really came mostly from behind us.
//!
//! All arithmetic is exact integers; the models never allocate.

use qalpha_engine::Qty;

/// Queue state of one resting order, owned by the fill model, advanced by a [`QueueModel`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuePos {
    /// Displayed quantity still ahead of us at our price (never negative).
    pub ahead: Qty,
    /// The displayed size at our price as of the last book update there.
    pub level_qty: Qty,
    /// Quantity traded at our price since that update: the part of the next decrease that trades
    /// already explain (used by models that infer cancellations).
    pub traded: Qty,
}

/// How a resting order's queue position starts and advances.
///
/// The fill model calls `join` when an order starts resting (again, after an amend), `on_trade` for
/// each trade at the order's price that reaches the order's queue, and `on_level` for each book
/// update at the order's price and side.
pub trait QueueModel {
    /// Position of an order that joins a price where `displayed` is resting: behind all of it.
    fn join(&self, displayed: Qty) -> QueuePos {
        let displayed = non_negative(displayed);
        QueuePos {
            ahead: displayed,
            level_qty: displayed,
            traded: Qty::ZERO,
        }
    }

    /// A trade of `qty` at our price: it eats the queue from the front. Returns how much of it is
    /// left once the quantity ahead of us is consumed — what can fill us.
    fn on_trade(&self, pos: &mut QueuePos, qty: Qty) -> Qty {
        let qty = non_negative(qty);
        let eaten = qty.min(pos.ahead);
        pos.ahead = Qty(pos.ahead.raw() - eaten.raw());
        pos.traded = Qty(pos.traded.raw().saturating_add(qty.raw()));
        Qty(qty.raw() - eaten.raw())
    }

    /// The displayed size at our price is now `new_qty`.
    fn on_level(&self, pos: &mut QueuePos, new_qty: Qty);
}

/// Cancellations are always behind us: only trades at our price and a level shrinking below our
/// estimate move us up (hftbacktest's `RiskAdverseQueueModel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskAverse;

impl QueueModel for RiskAverse {
    fn on_level(&self, pos: &mut QueuePos, new_qty: Qty) {
        let new_qty = non_negative(new_qty);
        pos.ahead = pos.ahead.min(new_qty);
        pos.level_qty = new_qty;
        pos.traded = Qty::ZERO;
    }
}

/// Decreases not explained by trades are cancellations spread pro rata ahead of and behind us.
///
/// `step` is the instrument's lot step: the share credited to the queue ahead is rounded *down* to
/// it (so ahead stays on the venue's lot grid and the estimate errs towards a longer queue). Zero
/// disables the rounding.
///
/// Trades and book updates arrive on separate streams and race; as in hftbacktest, trades counted
/// since the previous update at our price are taken to explain the next decrease, then forgotten.
/// A decrease that arrives *before* its trades is read as cancellations and the later trades move
/// us again — the optimistic side of this model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProportionalCancel {
    pub step: Qty,
}

impl ProportionalCancel {
    pub fn new(step: Qty) -> Self {
        Self { step }
    }
}

impl QueueModel for ProportionalCancel {
    fn on_level(&self, pos: &mut QueuePos, new_qty: Qty) {
        let new_qty = non_negative(new_qty);
        let prev = pos.level_qty.raw();
        if new_qty.raw() < prev {
            let decrease = prev - new_qty.raw();
            let cancelled = decrease - decrease.min(pos.traded.raw());
            // Quantity that was resting at our price just before this update: the last displayed
            // size less what has traded since (never less than our own estimate of ahead).
            let before = (prev - pos.traded.raw().min(prev)).max(pos.ahead.raw());
            if cancelled > 0 && before > 0 {
                let mut share =
                    (cancelled as i128 * pos.ahead.raw() as i128 / before as i128) as i64;
                if self.step.raw() > 0 {
                    share -= share % self.step.raw();
                }
                pos.ahead = Qty(pos.ahead.raw() - share.min(pos.ahead.raw()));
            }
        }
        pos.ahead = pos.ahead.min(new_qty);
        pos.level_qty = new_qty;
        pos.traded = Qty::ZERO;
    }
}

/// Venues never send negative sizes; a corrupt input is read as an empty level rather than
/// trusted (a negative `ahead` would fill orders from nothing).
#[inline]
fn non_negative(q: Qty) -> Qty {
    q.max(Qty::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: i64) -> Qty {
        Qty::from_units(v)
    }

    #[test]
    fn risk_averse_starts_behind_everything_and_moves_only_on_trades_or_shrinks_below_ahead() {
        let m = RiskAverse;
        let mut pos = m.join(q(10));
        assert_eq!(pos.ahead, q(10));
        // Trades at our price eat the front.
        assert_eq!(m.on_trade(&mut pos, q(3)), Qty::ZERO);
        assert_eq!(pos.ahead, q(7));
        // The book now shows 7 (the trade) — no move; then someone cancels 4: assumed behind us.
        m.on_level(&mut pos, q(7));
        m.on_level(&mut pos, q(3));
        assert_eq!(pos.ahead, q(3), "only down to the displayed size");
        // Size added behind us does not push us back.
        m.on_level(&mut pos, q(20));
        assert_eq!(pos.ahead, q(3));
        // A trade bigger than the queue ahead reaches us with the excess.
        assert_eq!(m.on_trade(&mut pos, q(5)), q(2));
        assert_eq!(pos.ahead, Qty::ZERO);
        // A level that empties puts us at the front.
        let mut p2 = m.join(q(4));
        m.on_level(&mut p2, Qty::ZERO);
        assert_eq!(p2.ahead, Qty::ZERO);
    }

    #[test]
    fn proportional_cancel_spreads_unexplained_decreases_pro_rata() {
        let m = ProportionalCancel::new(Qty::ZERO);
        let mut pos = m.join(q(10));
        // 10 ahead, then 10 more join behind us.
        m.on_level(&mut pos, q(20));
        assert_eq!(pos.ahead, q(10));
        // 4 cancelled somewhere in the 20: half ahead of us.
        m.on_level(&mut pos, q(16));
        assert_eq!(pos.ahead, q(8));
        // 2 trade (ahead → 6), then the book shows 14 − 4 = 10: 2 explained by the trade,
        // 4 cancelled out of 14 resting, 6/14 of it ahead → 4×6/14 = 1.71428571 (floored).
        m.on_trade(&mut pos, q(2));
        assert_eq!(pos.ahead, q(6));
        m.on_level(&mut pos, q(10));
        assert_eq!(pos.ahead, Qty(600_000_000 - 171_428_571));
        // RiskAverse would not have moved at all on the same cancels.
        let r = RiskAverse;
        let mut rp = r.join(q(10));
        r.on_level(&mut rp, q(20));
        r.on_level(&mut rp, q(16));
        assert_eq!(rp.ahead, q(10));
    }

    #[test]
    fn proportional_cancel_credit_is_rounded_down_to_the_lot_step() {
        let m = ProportionalCancel::new(Qty::parse("0.001").unwrap());
        let mut pos = m.join(Qty::parse("0.003").unwrap());
        m.on_level(&mut pos, Qty::parse("0.010").unwrap());
        // 0.001 cancelled of 0.010, 3/10 ahead → 0.0003, rounded down to 0 lots.
        m.on_level(&mut pos, Qty::parse("0.009").unwrap());
        assert_eq!(pos.ahead, Qty::parse("0.003").unwrap());
        // 0.005 cancelled of 0.009 → 0.005×3/9 = 0.00166… → 0.001.
        m.on_level(&mut pos, Qty::parse("0.004").unwrap());
        assert_eq!(pos.ahead, Qty::parse("0.002").unwrap());
    }

    #[test]
    fn decreases_explained_by_trades_are_not_cancels() {
        let m = ProportionalCancel::new(Qty::ZERO);
        let mut pos = m.join(q(10));
        m.on_level(&mut pos, q(20));
        m.on_trade(&mut pos, q(5));
        assert_eq!(pos.ahead, q(5));
        m.on_level(&mut pos, q(15));
        assert_eq!(
            pos.ahead,
            q(5),
            "the 5 decrease is the trade, already counted"
        );
    }

    #[test]
    fn corrupt_inputs_never_make_the_queue_negative() {
        let models: [&dyn QueueModel; 2] = [&RiskAverse, &ProportionalCancel::new(Qty(3))];
        for m in models {
            let mut pos = m.join(Qty(-5));
            assert_eq!(pos.ahead, Qty::ZERO);
            assert_eq!(m.on_trade(&mut pos, Qty(-3)), Qty::ZERO);
            m.on_level(&mut pos, Qty(-7));
            assert!(pos.ahead >= Qty::ZERO && pos.level_qty >= Qty::ZERO);
            pos = m.join(Qty(i64::MAX));
            m.on_trade(&mut pos, Qty(i64::MAX));
            m.on_trade(&mut pos, Qty(i64::MAX));
            m.on_level(&mut pos, Qty(1));
            m.on_level(&mut pos, Qty::ZERO);
            assert_eq!(pos.ahead, Qty::ZERO);
        }
    }
}
