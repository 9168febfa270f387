//! What the gateway knows of each order it sent or adopted, and the one rule that turns everything
//! the venue says into clean execution reports: **fills are keyed on the cumulative filled
//! quantity**. A WebSocket answer, a private-stream event and a reconciliation query can all reveal
//! the same fill, in any order; each increase of the cumulative quantity becomes exactly one fill
//! report, and anything at or below what is known is a duplicate, counted and dropped. A terminal
//! state (canceled, expired, rejected) is reported once.
//!
//! Client ids are refused a second time (`register`), so a retry or a restart can never place an
//! order twice under the same id.

use std::collections::{HashMap, HashSet, VecDeque};

use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Venue, FIXED_SCALE};

use super::snapshot::{OrderSnapshot, VenueStatus};
use super::used_ids::UsedIds;
use crate::fill::FeeSchedule;

/// Closed orders kept for late reports before the oldest are forgotten (their ids stay refused).
/// A late report about a forgotten order is counted as unknown. At the soak's pace (~20 orders a
/// second) this is several minutes of orders; it bounds the tracker's memory (~2 MiB) however
/// long the engine runs.
pub const KEPT_CLOSED: usize = 8_192;

/// One order as the gateway knows it.
#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    pub order: NewOrder,
    pub venue_order_id: u64,
    pub cum_qty: Qty,
    /// Σ price × qty of the fills reported, raw `10^-16` quote units.
    pub cum_quote_raw: i128,
    /// Not yet known to be final.
    pub open: bool,
    /// An acknowledgement (or a fill) has been reported.
    pub acked: bool,
}

/// Counters of what the tracker refused or dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackerStats {
    /// New orders refused because their client id was used before.
    pub duplicate_orders: u64,
    /// Reports dropped because they told nothing new (duplicates, replays, races).
    pub duplicate_reports: u64,
    /// Reports about orders this gateway does not know.
    pub unknown_reports: u64,
    /// Open orders found at the venue that this gateway did not send (adopted).
    pub adopted: u64,
}

/// The gateway's order book-keeping.
pub struct Tracker {
    venue: Venue,
    fees: FeeSchedule,
    orders: HashMap<ClientOrderId, Tracked>,
    /// Every id ever sent or adopted (bounded memory: [`UsedIds`]).
    used: UsedIds,
    /// Closed orders still in `orders`, in the order they closed.
    closed: VecDeque<ClientOrderId>,
    /// Ids of the orders with `open` set, so open-order scans cost O(open), not O(all ever sent).
    open_ids: HashSet<ClientOrderId>,
    pub stats: TrackerStats,
}

impl Tracker {
    pub fn new(venue: Venue, fees: FeeSchedule) -> Self {
        Self {
            venue,
            fees,
            orders: HashMap::new(),
            used: UsedIds::default(),
            closed: VecDeque::with_capacity(KEPT_CLOSED + 1),
            open_ids: HashSet::new(),
            stats: TrackerStats::default(),
        }
    }

    /// Records a new order about to be sent; `false` (and counted) if its client id was used before.
    pub fn register(&mut self, o: NewOrder) -> bool {
        if !self.used.insert(o.client_id) {
            self.stats.duplicate_orders += 1;
            return false;
        }
        self.orders.insert(
            o.client_id,
            Tracked {
                order: o,
                venue_order_id: 0,
                cum_qty: Qty::ZERO,
                cum_quote_raw: 0,
                open: true,
                acked: false,
            },
        );
        self.open_ids.insert(o.client_id);
        true
    }

    pub fn get(&self, id: &ClientOrderId) -> Option<&Tracked> {
        self.orders.get(id)
    }

    /// Orders not yet known to be final.
    pub fn open(&self) -> impl Iterator<Item = &Tracked> + '_ {
        self.open_ids.iter().filter_map(|id| self.orders.get(id))
    }

    pub fn has_open(&self) -> bool {
        !self.open_ids.is_empty()
    }

    /// Orders tracked (open, and closed ones kept for late reports).
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Keeps `open_ids` in step with the order's `open` flag after a change; an order that just
    /// closed joins the closed queue, and the oldest closed orders past [`KEPT_CLOSED`] are
    /// forgotten.
    fn sync_open(&mut self, id: &ClientOrderId) {
        match self.orders.get(id) {
            Some(t) if t.open => {
                self.open_ids.insert(*id);
            }
            Some(_) => {
                if self.open_ids.remove(id) {
                    self.closed.push_back(*id);
                    self.prune();
                }
            }
            None => {
                self.open_ids.remove(id);
            }
        }
    }

    /// Takes over an open order found at the venue (after a restart): tracked from now on, its id
    /// refused for new orders; reported once as an acknowledgement carrying its filled quantity.
    pub fn adopt(&mut self, s: &OrderSnapshot, out: &mut Vec<ExecReport>) {
        if self.orders.contains_key(&s.client_id) {
            return;
        }
        let order = NewOrder {
            venue: self.venue,
            symbol: s.symbol,
            client_id: s.client_id,
            side: s.side,
            order_type: OrderType::Limit,
            tif: if s.post_only {
                TimeInForce::PostOnly
            } else {
                TimeInForce::Gtc
            },
            price: s.price,
            qty: s.qty,
            reduce_only: s.reduce_only,
        };
        self.used.insert(s.client_id);
        self.stats.adopted += 1;
        let quote = s
            .cum_quote
            .map_or(s.avg_price.raw() as i128 * s.cum_qty.raw() as i128, |q| {
                q.raw() as i128 * FIXED_SCALE as i128
            });
        self.orders.insert(
            s.client_id,
            Tracked {
                order,
                venue_order_id: s.venue_order_id,
                cum_qty: s.cum_qty,
                cum_quote_raw: quote,
                open: s.status.is_open(),
                acked: true,
            },
        );
        if s.status.is_open() {
            self.sync_open(&s.client_id);
        } else {
            self.closed.push_back(s.client_id);
            self.prune();
        }
        let mut r = blank(&order, ExecKind::Ack);
        r.venue_order_id = s.venue_order_id;
        r.cum_qty = s.cum_qty;
        r.leaves_qty = Qty(s.qty.raw() - s.cum_qty.raw());
        r.exch_ms = s.exch_ms;
        out.push(r);
    }

    fn on_report_inner(&mut self, r: &ExecReport, out: &mut Vec<ExecReport>) {
        let Some(t) = self.orders.get_mut(&r.client_id) else {
            self.stats.unknown_reports += 1;
            return;
        };
        if r.venue_order_id != 0 {
            t.venue_order_id = r.venue_order_id;
        }
        let fresh = match r.kind {
            ExecKind::Ack => {
                let fresh = !t.acked && t.open;
                t.acked = true;
                fresh.then_some(*r)
            }
            ExecKind::Amended => {
                t.acked = true;
                Some(*r)
            }
            ExecKind::PartialFill | ExecKind::Fill => {
                if r.cum_qty > t.cum_qty {
                    let dq = Qty(r.cum_qty.raw() - t.cum_qty.raw());
                    let mut f = *r;
                    if dq != r.last_qty {
                        // Part of this fill was learnt before (by a query): report the rest.
                        f.last_qty = dq;
                        f.fee = self.fees.fee(r.last_px, dq, r.is_maker);
                    }
                    t.cum_qty = r.cum_qty;
                    t.cum_quote_raw += f.last_px.raw() as i128 * dq.raw() as i128;
                    t.acked = true;
                    if r.kind == ExecKind::Fill {
                        t.open = false;
                    }
                    Some(f)
                } else {
                    None
                }
            }
            ExecKind::Canceled | ExecKind::Expired | ExecKind::Rejected => {
                let fresh = t.open;
                t.open = false;
                fresh.then_some(*r)
            }
        };
        match fresh {
            Some(f) => out.push(f),
            None => self.stats.duplicate_reports += 1,
        }
    }

    fn on_snapshot_inner(
        &mut self,
        s: &OrderSnapshot,
        answer_to_new: bool,
        out: &mut Vec<ExecReport>,
    ) {
        let Some(t) = self.orders.get_mut(&s.client_id) else {
            self.stats.unknown_reports += 1;
            return;
        };
        let mut base = blank(&t.order, ExecKind::Ack);
        base.venue_order_id = s.venue_order_id;
        base.exch_ms = s.exch_ms;
        t.venue_order_id = s.venue_order_id;
        if !t.acked && s.status != VenueStatus::Rejected {
            t.acked = true;
            out.push(ExecReport {
                leaves_qty: Qty(t.order.qty.raw() - t.cum_qty.raw()),
                cum_qty: t.cum_qty,
                ..base
            });
        }
        if s.cum_qty > t.cum_qty {
            let dq = s.cum_qty.raw() - t.cum_qty.raw();
            let known_quote = t.cum_quote_raw;
            let quote_raw = s
                .cum_quote
                .map_or(s.avg_price.raw() as i128 * s.cum_qty.raw() as i128, |q| {
                    q.raw() as i128 * FIXED_SCALE as i128
                });
            let dquote = quote_raw - known_quote;
            // The fill's price from the change in notional; the average or limit price otherwise.
            let px = if dquote > 0 {
                Price((dquote / dq as i128) as i64)
            } else if s.avg_price.raw() > 0 {
                s.avg_price
            } else {
                t.order.price
            };
            let is_maker = t.order.tif == TimeInForce::PostOnly || !answer_to_new;
            let filled = s.status == VenueStatus::Filled;
            out.push(ExecReport {
                kind: if filled {
                    ExecKind::Fill
                } else {
                    ExecKind::PartialFill
                },
                last_px: px,
                last_qty: Qty(dq),
                cum_qty: s.cum_qty,
                leaves_qty: if s.status.is_open() {
                    Qty(t.order.qty.raw() - s.cum_qty.raw())
                } else {
                    Qty::ZERO
                },
                fee: self.fees.fee(px, Qty(dq), is_maker),
                is_maker,
                ..base
            });
            t.cum_qty = s.cum_qty;
            t.cum_quote_raw = quote_raw.max(known_quote + px.raw() as i128 * dq as i128);
        } else if !answer_to_new {
            self.stats.duplicate_reports += 1;
        }
        let end = match s.status {
            VenueStatus::Canceled => Some(ExecKind::Canceled),
            VenueStatus::Expired => Some(ExecKind::Expired),
            VenueStatus::Rejected => Some(ExecKind::Rejected),
            VenueStatus::Filled | VenueStatus::New | VenueStatus::PartiallyFilled => None,
        };
        if let Some(kind) = end {
            if t.open {
                out.push(ExecReport {
                    kind,
                    cum_qty: s.cum_qty,
                    ..base
                });
            }
        }
        t.open = s.status.is_open();
    }

    fn on_reject_inner(&mut self, id: &ClientOrderId, code: i32, out: &mut Vec<ExecReport>) {
        if let Some(t) = self.orders.get_mut(id) {
            if t.open {
                t.open = false;
                let mut r = blank(&t.order, ExecKind::Rejected);
                r.reason = code;
                r.cum_qty = t.cum_qty;
                out.push(r);
            }
        }
    }

    fn on_unknown_inner(&mut self, id: &ClientOrderId, code: i32, out: &mut Vec<ExecReport>) {
        let acked = self.orders.get(id).is_some_and(|t| t.acked);
        if acked {
            if let Some(t) = self.orders.get_mut(id) {
                if t.open {
                    t.open = false;
                    let mut r = blank(&t.order, ExecKind::Canceled);
                    r.cum_qty = t.cum_qty;
                    out.push(r);
                }
            }
        } else {
            self.on_reject_inner(id, code, out);
        }
    }

    /// A report from the private stream (or a WebSocket answer already turned into a report).
    pub fn on_report(&mut self, r: &ExecReport, out: &mut Vec<ExecReport>) {
        self.on_report_inner(r, out);
        self.sync_open(&r.client_id);
    }

    /// What a query or an order answer says about an order. `answer_to_new`: this is the venue's
    /// answer to placing it (so an acknowledgement is due, and fills in it were taker fills).
    pub fn on_snapshot(
        &mut self,
        s: &OrderSnapshot,
        answer_to_new: bool,
        out: &mut Vec<ExecReport>,
    ) {
        self.on_snapshot_inner(s, answer_to_new, out);
        self.sync_open(&s.client_id);
    }

    /// The venue refused the order (or it never reached the venue): final, with the venue's code.
    pub fn on_reject(&mut self, id: &ClientOrderId, code: i32, out: &mut Vec<ExecReport>) {
        self.on_reject_inner(id, code, out);
        self.sync_open(id);
    }

    /// The venue does not know an order we were waiting on: if nothing was ever heard of it, it was
    /// never placed (rejected); an acknowledged order it no longer lists ended without notice.
    pub fn on_unknown_at_venue(
        &mut self,
        id: &ClientOrderId,
        code: i32,
        out: &mut Vec<ExecReport>,
    ) {
        self.on_unknown_inner(id, code, out);
        self.sync_open(id);
    }

    /// Forgets the oldest closed orders past [`KEPT_CLOSED`] (one that opened again since it was
    /// queued is skipped: it is queued again when it closes).
    fn prune(&mut self) {
        while self.closed.len() > KEPT_CLOSED {
            let Some(id) = self.closed.pop_front() else {
                break;
            };
            if self.orders.get(&id).is_some_and(|t| !t.open) {
                self.orders.remove(&id);
            }
        }
    }
}

/// A report about `o` with nothing filled, received now.
pub fn blank(o: &NewOrder, kind: ExecKind) -> ExecReport {
    ExecReport {
        recv_ns: now_ns(),
        ..ExecReport::about(o, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::{Side, Symbol};

    fn order(id: &str) -> NewOrder {
        NewOrder {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse(id).unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse("100").unwrap(),
            qty: Qty::parse("3").unwrap(),
            reduce_only: false,
        }
    }

    fn snap(o: &NewOrder, status: VenueStatus, cum: &str, quote: &str) -> OrderSnapshot {
        OrderSnapshot {
            symbol: o.symbol,
            client_id: o.client_id,
            venue_order_id: 7,
            status,
            side: o.side,
            price: o.price,
            qty: o.qty,
            cum_qty: Qty::parse(cum).unwrap(),
            cum_quote: Some(Qty::parse(quote).unwrap()),
            avg_price: Price::ZERO,
            reduce_only: false,
            post_only: false,
            exch_ms: 1,
        }
    }

    fn fill(o: &NewOrder, last: &str, cum: &str, kind: ExecKind) -> ExecReport {
        ExecReport {
            last_px: Price::parse("99").unwrap(),
            last_qty: Qty::parse(last).unwrap(),
            cum_qty: Qty::parse(cum).unwrap(),
            fee: Qty::parse("0.01").unwrap(),
            ..blank(o, kind)
        }
    }

    #[test]
    fn a_client_id_is_sent_once() {
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        assert!(t.register(order("a")));
        assert!(!t.register(order("a")));
        assert_eq!(t.stats.duplicate_orders, 1);
    }

    #[test]
    fn closed_orders_are_forgotten_oldest_first_and_their_ids_stay_refused() {
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let mut g = qalpha_engine::order::ClientIdGen::new(1_795_621_440_753);
        let mut out = Vec::new();
        // One order stays open throughout; 3 × KEPT_CLOSED others come and go.
        let mut resting = order("a");
        resting.client_id = g.next_id();
        assert!(t.register(resting));
        let mut sent = Vec::new();
        for i in 0..3 * KEPT_CLOSED {
            let mut o = order("a");
            o.client_id = g.next_id();
            assert!(t.register(o));
            let kind = if i % 2 == 0 {
                ExecKind::Canceled
            } else {
                ExecKind::Expired
            };
            t.on_report(&blank(&o, kind), &mut out);
            sent.push(o);
        }
        assert_eq!(out.len(), 3 * KEPT_CLOSED, "each close reported once");
        // Bounded: the open order and the newest KEPT_CLOSED closed ones.
        assert_eq!(t.len(), KEPT_CLOSED + 1);
        assert!(t.get(&resting.client_id).is_some_and(|r| r.open));
        assert_eq!(t.open().count(), 1);
        // A late report about a kept order is a duplicate; about a forgotten one, unknown.
        out.clear();
        t.on_report(&blank(sent.last().unwrap(), ExecKind::Canceled), &mut out);
        assert_eq!(t.stats.duplicate_reports, 1);
        t.on_report(&blank(&sent[0], ExecKind::Canceled), &mut out);
        assert_eq!(t.stats.unknown_reports, 1);
        assert!(out.is_empty());
        // Forgotten or not, no id is accepted twice.
        assert!(!t.register(sent[0]) && !t.register(*sent.last().unwrap()));
        assert!(!t.register(resting));
        assert_eq!(t.stats.duplicate_orders, 3);
    }

    #[test]
    fn each_fill_is_reported_once_whichever_source_reveals_it() {
        let o = order("a");
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        t.register(o);
        let mut out = Vec::new();
        t.on_snapshot(&snap(&o, VenueStatus::New, "0", "0"), true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, ExecKind::Ack);
        // Stream: first fill of 1; then a query reveals cum 2; then the stream's copy of that fill
        // (cum 2) is a duplicate; the last fill (cum 3) completes the order.
        t.on_report(&fill(&o, "1", "1", ExecKind::PartialFill), &mut out);
        t.on_snapshot(
            &snap(&o, VenueStatus::PartiallyFilled, "2", "198"),
            false,
            &mut out,
        );
        t.on_report(&fill(&o, "1", "2", ExecKind::PartialFill), &mut out);
        t.on_report(&fill(&o, "1", "1", ExecKind::PartialFill), &mut out);
        t.on_report(&fill(&o, "1", "3", ExecKind::Fill), &mut out);
        t.on_snapshot(&snap(&o, VenueStatus::Filled, "3", "297"), false, &mut out);
        let fills: Vec<_> = out.iter().filter(|r| r.last_qty.raw() > 0).collect();
        assert_eq!(fills.len(), 3);
        let total: i64 = fills.iter().map(|r| r.last_qty.raw()).sum();
        assert_eq!(Qty(total), o.qty);
        assert_eq!(
            fills[1].last_px,
            Price::parse("99").unwrap(),
            "198 − 99 over 1"
        );
        assert_eq!(t.stats.duplicate_reports, 3);
        assert!(!t.has_open());
    }

    #[test]
    fn terminal_states_are_reported_once_and_a_partial_fill_before_a_cancel_is_kept() {
        let o = order("b");
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        t.register(o);
        let mut out = Vec::new();
        t.on_report(&blank(&o, ExecKind::Canceled), &mut out);
        t.on_report(&blank(&o, ExecKind::Canceled), &mut out);
        // The query shows a fill that happened before the cancel: still reported.
        t.on_snapshot(
            &snap(&o, VenueStatus::Canceled, "1", "100"),
            false,
            &mut out,
        );
        let kinds: Vec<_> = out.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            vec![ExecKind::Canceled, ExecKind::Ack, ExecKind::PartialFill]
        );
    }

    #[test]
    fn unknown_at_venue_rejects_an_unacknowledged_order() {
        let (a, b) = (order("a"), order("b"));
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        t.register(a);
        t.register(b);
        let mut out = Vec::new();
        t.on_snapshot(&snap(&b, VenueStatus::New, "0", "0"), true, &mut out);
        out.clear();
        t.on_unknown_at_venue(&a.client_id, -2013, &mut out);
        t.on_unknown_at_venue(&b.client_id, -2013, &mut out);
        assert_eq!(out[0].kind, ExecKind::Rejected);
        assert_eq!(out[0].reason, -2013);
        assert_eq!(out[1].kind, ExecKind::Canceled);
    }

    #[test]
    fn adopted_orders_block_their_ids() {
        let o = order("old-1");
        let mut t = Tracker::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let mut out = Vec::new();
        t.adopt(
            &snap(&o, VenueStatus::PartiallyFilled, "1", "100"),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].cum_qty, Qty::parse("1").unwrap());
        assert!(!t.register(o));
        t.on_report(&fill(&o, "1", "1", ExecKind::PartialFill), &mut out);
        assert_eq!(t.stats.duplicate_reports, 1);
    }
}
