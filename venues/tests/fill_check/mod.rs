//! The invariants `fill_real_data` holds the fill model to, kept apart from the replay that drives
//! it. Everything here is recomputed from the reports and the market events alone — never read back
//! from the model — except where the point is to compare with it (queue position, position).

use qalpha_engine::book_view::at_least_as_good;
use qalpha_engine::order::{
    Applied, ClientOrderId, ExecKind, ExecReport, NewOrder, OrderState, OrderStatus, OrderType,
    TimeInForce,
};
use qalpha_engine::{Price, Qty, Side, FIXED_SCALE};
use qalpha_venues::fill::{FeeSchedule, FillModel, QueueModel};

pub fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

/// `ceil(px × qty × ppm / 10^14)` written differently from the model's (no split; sign cases).
pub fn fee_independent(px: Price, qty: Qty, ppm: i32) -> Qty {
    let n = px.raw() as i128 * qty.raw() as i128 * ppm as i128;
    let d: i128 = 100_000_000_000_000;
    Qty((if n > 0 { (n + d - 1) / d } else { n / d }) as i64)
}

/// Where a batch of reports came from.
#[derive(Clone, Copy, Debug)]
pub enum Ctx {
    Submit,
    Amend,
    Cancel,
    Trade { px: Price, aggressor: Side },
}

/// What the test knows about one order, independently of the model.
pub struct Track {
    pub order: NewOrder,
    state: OrderState,
    cum: Qty,
    terminal: bool,
    last_kind: ExecKind,
    fees: i64,
    /// Σ trunc(px × qty / 10^8), as `OrderState` accumulates it.
    notional: i128,
    px_range: Option<(Price, Price)>,
    /// Risk-averse queue mirror, while resting.
    resting: bool,
    ahead: Qty,
}

/// What a run exercised.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub orders: usize,
    pub post_only_rejects: usize,
    pub reduce_only_rejects: usize,
    pub taker_fills: usize,
    pub queue_fills: usize,
    pub through_fills: usize,
    pub expired: usize,
    pub canceled: usize,
    pub amended: usize,
    pub reduce_only_fills: usize,
}

/// An order a print could reach, as it stood before the print.
pub struct Reached {
    track: usize,
    ahead: Qty,
    leaves: Qty,
}

pub struct Checker {
    tracks: Vec<Track>,
    position: Qty,
    pub log: Vec<ExecReport>,
    pub stats: Stats,
    fees: FeeSchedule,
    /// The model under test is the risk-averse one: its queue must equal the mirror exactly (any
    /// other model must never be behind it).
    exact_mirror: bool,
}

impl Checker {
    pub fn new(fees: FeeSchedule, exact_mirror: bool) -> Self {
        Self {
            tracks: Vec::new(),
            position: Qty::ZERO,
            log: Vec::new(),
            stats: Stats::default(),
            fees,
            exact_mirror,
        }
    }

    /// The id the next order must carry (`o<n>`, so reports find their track by index).
    pub fn next_id(&self) -> ClientOrderId {
        ClientOrderId::parse(&format!("o{}", self.tracks.len())).unwrap()
    }

    fn idx(id: &ClientOrderId) -> usize {
        id.as_str()[1..].parse().expect("our ids are o<n>")
    }

    pub fn register(&mut self, o: NewOrder) {
        assert_eq!(o.client_id, self.next_id());
        self.tracks.push(Track {
            order: o,
            state: OrderState::new(o),
            cum: Qty::ZERO,
            terminal: false,
            last_kind: ExecKind::Ack,
            fees: 0,
            notional: 0,
            px_range: None,
            resting: false,
            ahead: Qty::ZERO,
        });
        self.stats.orders += 1;
    }

    pub fn is_terminal(&self, id: &ClientOrderId) -> bool {
        self.tracks[Self::idx(id)].terminal
    }

    /// A (price-only) amend is about to be sent: the order leaves its queue.
    pub fn amending(&mut self, id: &ClientOrderId, price: Price) {
        let t = &mut self.tracks[Self::idx(id)];
        t.order.price = price;
        t.resting = false;
    }

    /// The order now rests (after entry or an amend): behind the whole displayed size at its price.
    pub fn joined(&mut self, id: &ClientOrderId, displayed: Qty) {
        let t = &mut self.tracks[Self::idx(id)];
        t.resting = true;
        t.ahead = displayed;
    }

    /// A book update at one level: a displayed decrease moves the mirror only to the new size.
    pub fn level(&mut self, side: Side, px: Price, qty: Qty) {
        for t in self.tracks.iter_mut().filter(|t| t.resting) {
            if t.order.side == side && t.order.price == px {
                t.ahead = t.ahead.min(qty);
            }
        }
    }

    /// Our resting orders a print at `px` by `aggressor` can reach, before it is applied.
    pub fn reached(&self, px: Price, aggressor: Side) -> Vec<Reached> {
        let side = opposite(aggressor);
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.resting && t.order.side == side && at_least_as_good(side, t.order.price, px)
            })
            .map(|(i, t)| Reached {
                track: i,
                ahead: t.ahead,
                leaves: Qty(t.order.qty.raw() - t.cum.raw()),
            })
            .collect()
    }

    /// After a print (its reports already `check`ed): no fill beyond the print, none at our price
    /// before the print exceeds the queue ahead, and the mirror advances.
    pub fn printed(&mut self, reached: Vec<Reached>, px: Price, qty: Qty, reports: &[ExecReport]) {
        let filled: i64 = reports.iter().map(|r| r.last_qty.raw()).sum();
        assert!(filled <= qty.raw(), "a print filled us beyond its size");
        for Reached {
            track,
            ahead,
            leaves,
        } in reached
        {
            let t = &mut self.tracks[track];
            let mine: i64 = reports
                .iter()
                .filter(|r| r.client_id == t.order.client_id)
                .map(|r| r.last_qty.raw())
                .sum();
            if t.order.price == px {
                // The schedule keeps one order of ours per price, so the whole print passes our
                // queue.
                let reach = (qty.raw() - ahead.raw()).max(0);
                if self.exact_mirror {
                    assert!(
                        mine <= reach,
                        "filled {mine} with only {reach} past the queue"
                    );
                    if filled == mine && !t.order.reduce_only {
                        assert_eq!(mine, reach.min(leaves.raw()), "queue fill size");
                    }
                }
                t.ahead = Qty((ahead.raw() - qty.raw()).max(0));
            } else {
                // Through our price: the level was swept.
                t.ahead = Qty::ZERO;
            }
        }
    }

    /// The model's queue against the mirror, and `OrderState`'s open quantity against the model's.
    pub fn check_queues<Q: QueueModel>(&self, model: &FillModel<Q>) {
        for o in model.open_orders() {
            let t = &self.tracks[Self::idx(&o.client_id)];
            assert!(t.resting, "{o:?} rests but the test never saw it join");
            if self.exact_mirror {
                assert_eq!(o.queue_ahead, t.ahead, "{o:?}");
            } else {
                assert!(
                    o.queue_ahead <= t.ahead,
                    "{o:?} behind the risk-averse bound"
                );
            }
            // No quantity amends here, so OrderState's idea of what is open must match.
            assert_eq!(t.state.leaves(), o.leaves_qty, "{o:?}");
        }
    }

    /// Every report of one model call.
    pub fn check<Q: QueueModel>(&mut self, ctx: Ctx, reports: &[ExecReport], model: &FillModel<Q>) {
        for r in reports {
            self.log.push(*r);
            self.check_one(ctx, r);
        }
        assert_eq!(model.position(), self.position);
    }

    fn check_one(&mut self, ctx: Ctx, r: &ExecReport) {
        let t = &mut self.tracks[Self::idx(&r.client_id)];
        assert!(!t.terminal, "a report after the terminal one: {r:?}");
        assert_eq!(t.state.apply(r), Applied::Changed, "{r:?}");
        assert!(r.cum_qty >= t.cum && r.cum_qty <= t.order.qty, "{r:?}");
        let o = t.order;
        match r.kind {
            ExecKind::Ack => {
                assert!(matches!(ctx, Ctx::Submit));
                assert_eq!((r.cum_qty, r.leaves_qty), (Qty::ZERO, o.qty));
            }
            ExecKind::Rejected => {
                assert!(matches!(ctx, Ctx::Submit));
                match r.reason {
                    -5022 => self.stats.post_only_rejects += 1,
                    -2022 => self.stats.reduce_only_rejects += 1,
                    other => panic!("unexpected reject {other}"),
                }
            }
            ExecKind::PartialFill | ExecKind::Fill => {
                assert!(r.last_qty.raw() > 0);
                assert_eq!(r.cum_qty.raw(), t.cum.raw() + r.last_qty.raw());
                assert_eq!(r.leaves_qty.raw(), o.qty.raw() - r.cum_qty.raw());
                assert_eq!(r.kind == ExecKind::Fill, r.leaves_qty.is_zero());
                let ppm = if r.is_maker {
                    self.fees.maker_ppm
                } else {
                    self.fees.taker_ppm
                };
                assert_eq!(r.fee, fee_independent(r.last_px, r.last_qty, ppm), "{r:?}");
                if o.tif == TimeInForce::PostOnly {
                    assert!(r.is_maker, "post-only filled as taker: {r:?}");
                }
                match ctx {
                    Ctx::Submit | Ctx::Amend => {
                        assert!(!r.is_maker);
                        if o.order_type == OrderType::Limit {
                            assert!(at_least_as_good(o.side, o.price, r.last_px), "{r:?}");
                        }
                        self.stats.taker_fills += 1;
                    }
                    Ctx::Trade { px, aggressor } => {
                        assert!(r.is_maker);
                        assert_eq!(r.last_px, o.price, "a resting order fills at its price");
                        assert_eq!(o.side, opposite(aggressor));
                        assert!(at_least_as_good(o.side, o.price, px));
                        if o.price == px {
                            self.stats.queue_fills += 1;
                        } else {
                            self.stats.through_fills += 1;
                        }
                    }
                    Ctx::Cancel => panic!("a cancel filled: {r:?}"),
                }
                let before = self.position.raw();
                let signed = match o.side {
                    Side::Buy => r.last_qty.raw(),
                    Side::Sell => -r.last_qty.raw(),
                };
                self.position = Qty(before + signed);
                if o.reduce_only {
                    self.stats.reduce_only_fills += 1;
                    let after = self.position.raw();
                    assert!(before != 0 && (after == 0 || after.signum() == before.signum()));
                    assert!(after.abs() < before.abs(), "reduce-only increased: {r:?}");
                }
                t.cum = r.cum_qty;
                t.fees += r.fee.raw();
                t.notional +=
                    r.last_px.raw() as i128 * r.last_qty.raw() as i128 / FIXED_SCALE as i128;
                t.px_range = Some(match t.px_range {
                    None => (r.last_px, r.last_px),
                    Some((lo, hi)) => (lo.min(r.last_px), hi.max(r.last_px)),
                });
            }
            ExecKind::Canceled => {
                assert!(matches!(ctx, Ctx::Cancel | Ctx::Amend));
                assert!(r.leaves_qty.is_zero());
                self.stats.canceled += 1;
            }
            ExecKind::Expired => {
                assert!(!matches!(ctx, Ctx::Cancel));
                assert!(r.leaves_qty.is_zero());
                self.stats.expired += 1;
            }
            ExecKind::Amended => {
                assert!(matches!(ctx, Ctx::Amend));
                assert_eq!(r.leaves_qty.raw(), o.qty.raw() - r.cum_qty.raw());
                self.stats.amended += 1;
            }
        }
        t.last_kind = r.kind;
        if matches!(
            r.kind,
            ExecKind::Fill | ExecKind::Canceled | ExecKind::Expired | ExecKind::Rejected
        ) {
            t.terminal = true;
            t.resting = false;
        }
    }

    /// After the final cancel-all: every order ended, and `OrderState` agrees with the reports.
    pub fn finish(&self) {
        for t in &self.tracks {
            assert!(t.terminal, "{:?} never ended", t.order.client_id);
            let s = &t.state;
            let want = match t.last_kind {
                ExecKind::Fill => OrderStatus::Filled,
                ExecKind::Canceled => OrderStatus::Canceled,
                ExecKind::Expired => OrderStatus::Expired,
                ExecKind::Rejected => OrderStatus::Rejected,
                k => panic!("ended on {k:?}"),
            };
            assert_eq!(s.status, want, "{:?}", t.order.client_id);
            assert_eq!(
                (s.cum_qty, s.leaves(), s.fees.raw()),
                (t.cum, Qty::ZERO, t.fees)
            );
            match t.px_range {
                None => assert_eq!(s.avg_price(), None),
                Some((lo, hi)) => {
                    let avg = s.avg_price().unwrap();
                    let want =
                        Price((t.notional * FIXED_SCALE as i128 / t.cum.raw() as i128) as i64);
                    assert_eq!(avg, want);
                    // Tick × step products are exact here, so only the final division truncates.
                    assert!(lo <= avg && avg <= hi, "{avg:?} outside {lo:?}..{hi:?}");
                }
            }
        }
    }
}
