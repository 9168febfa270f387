//! Orders: the commands a strategy sends to a gateway and the execution reports that come back,
//! as fixed-size `Copy` events (rkyv-archivable like market events), plus the per-order state machine.
//!
//! Venues report asynchronously and not always in order: a fill can overtake its acknowledgement, a
//! private stream can repeat a message after a reconnect, a cancel can race a fill. [`OrderState`]
//! therefore keys everything on the cumulative filled quantity (monotonic) and treats terminal states
//! as absorbing, so duplicate and late reports are recognised and ignored rather than double-counted.

use std::fmt;

use crate::{Price, Qty, Side, Symbol, Venue};

/// Longest client order id carried inline (Binance allows 36, Bybit `orderLinkId` 36).
pub const CLIENT_ID_CAP: usize = 31;

/// A client order id: ASCII `[A-Za-z0-9_-]`, unique across restarts (see [`ClientIdGen`]).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
pub struct ClientOrderId {
    len: u8,
    bytes: [u8; CLIENT_ID_CAP],
}

impl ClientOrderId {
    /// Accepts 1..=31 characters of `[A-Za-z0-9_-]` (the intersection of both venues' rules).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.is_empty()
            || b.len() > CLIENT_ID_CAP
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        {
            return None;
        }
        let mut bytes = [0u8; CLIENT_ID_CAP];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientOrderId({})", self.as_str())
    }
}

/// Generates client order ids unique across restarts: `qa` + the process start time in
/// milliseconds (base 36, 8–9 chars) + `-` + a per-process sequence (base 36). Two runs collide only if
/// they start in the same millisecond *and* reach the same sequence number; a clock stepped backwards
/// past an earlier run's start is the remaining risk, so gateways also treat the venues'
/// duplicate-id errors (-4116, 110072) as "already placed" and reconcile instead of resending.
#[derive(Clone, Debug)]
pub struct ClientIdGen {
    prefix: String,
    next: u64,
}

fn base36(mut v: u64) -> String {
    const D: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while v > 0 {
        out.push(D[(v % 36) as usize]);
        v /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl ClientIdGen {
    /// A generator for a process started at `start_unix_ms`.
    pub fn new(start_unix_ms: u64) -> Self {
        Self {
            prefix: format!("qa{}-", base36(start_unix_ms)),
            next: 1,
        }
    }

    /// A generator anchored to now.
    pub fn from_clock() -> Self {
        Self::new(crate::clock::now_ns() / 1_000_000)
    }

    /// The next id. Cold path (allocates a small string); the hot path pre-generates ids.
    pub fn next_id(&mut self) -> ClientOrderId {
        let s = format!("{}{}", self.prefix, base36(self.next));
        self.next += 1;
        // prefix ≤ 12 chars, sequence ≤ 13: always fits.
        ClientOrderId::parse(&s).unwrap_or_default()
    }

    /// The inverse of [`ClientIdGen::next_id`]: an id in the generator's form (`qa…-` + canonical
    /// base-36 sequence: lower case, no leading zero) as its prefix (with the `-`) and sequence
    /// number; `None` for any other id. Distinct ids never split to the same pair.
    pub fn split(id: &ClientOrderId) -> Option<(&str, u64)> {
        let s = id.as_str();
        let dash = s.rfind('-')?;
        let (prefix, seq) = (&s[..=dash], &s[dash + 1..]);
        if !prefix.starts_with("qa") || seq.is_empty() || seq.len() > 12 || seq.starts_with('0') {
            return None;
        }
        let mut v: u64 = 0;
        for c in seq.bytes() {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'z' => c - b'a' + 10,
                _ => return None,
            };
            v = v * 36 + d as u64;
        }
        Some((prefix, v))
    }
}

/// Order type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum OrderType {
    Limit,
    Market,
}

/// Time in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    /// Maker only: rejected if it would take (Binance `GTX`, Bybit `PostOnly`).
    PostOnly,
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct NewOrder {
    pub venue: Venue,
    pub symbol: Symbol,
    pub client_id: ClientOrderId,
    pub side: Side,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// Limit price (ignored for market orders).
    pub price: Price,
    pub qty: Qty,
    pub reduce_only: bool,
}

/// What a strategy asks the gateway to do.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub enum OrderAction {
    New(NewOrder),
    Cancel {
        client_id: ClientOrderId,
    },
    /// New price and quantity (Binance requires both; the order loses its queue position).
    Amend {
        client_id: ClientOrderId,
        price: Price,
        qty: Qty,
    },
    CancelAll,
}

/// An order command with its routing and latency stamps.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct OrderCommand {
    pub venue: Venue,
    pub symbol: Symbol,
    /// `recv_ns` of the market event that caused this command (tick-to-order starts here).
    pub tick_recv_ns: u64,
    /// When the strategy decided.
    pub decided_ns: u64,
    pub action: OrderAction,
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum ExecKind {
    /// The venue accepted the order (resting or working).
    Ack,
    /// Refused; `reason` carries the venue's code.
    Rejected,
    /// A fill that leaves quantity open.
    PartialFill,
    /// The fill that completes the order.
    Fill,
    Canceled,
    /// Ended by the venue without a fill of the rest (IOC remainder, post-only would take, STP).
    Expired,
    /// Price/quantity changed.
    Amended,
}

/// An execution report, normalised across venues.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct ExecReport {
    pub venue: Venue,
    pub symbol: Symbol,
    pub client_id: ClientOrderId,
    /// The venue's order id (Binance numeric; Bybit's UUID hashed to 64 bits).
    pub venue_order_id: u64,
    pub kind: ExecKind,
    pub side: Side,
    /// Price and quantity of this fill (zero for non-fill reports).
    pub last_px: Price,
    pub last_qty: Qty,
    /// Cumulative filled quantity after this report — the field duplicates are detected by.
    pub cum_qty: Qty,
    /// Quantity still open after this report.
    pub leaves_qty: Qty,
    /// Fee of this fill in quote units (negative = rebate).
    pub fee: Qty,
    pub is_maker: bool,
    /// Venue reject / error code (0 when not a reject).
    pub reason: i32,
    /// Venue time of the event, ms.
    pub exch_ms: u64,
    /// Local receive time, ns.
    pub recv_ns: u64,
}

impl ExecReport {
    /// A report about `o` with nothing filled and no times (callers set what they know).
    pub fn about(o: &NewOrder, kind: ExecKind) -> Self {
        Self {
            venue: o.venue,
            symbol: o.symbol,
            client_id: o.client_id,
            venue_order_id: 0,
            kind,
            side: o.side,
            last_px: Price::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: Qty::ZERO,
            leaves_qty: Qty::ZERO,
            fee: Qty::ZERO,
            is_maker: false,
            reason: 0,
            exch_ms: 0,
            recv_ns: 0,
        }
    }
}

/// Whether a reject is the venue's normal answer to a post-only order that would have taken
/// liquidity (Binance -5022 `GTX_ORDER_REJECT`; Bybit accepts such an order and cancels it, so it
/// never rejects one). A maker in a moving market meets it all the time: it is not an API failure
/// (risk's API-error switch does not count it). `venues::errors::classify` agrees (its test).
pub fn is_post_only_bounce(venue: Venue, reason: i32) -> bool {
    matches!((venue, reason), (Venue::BinanceUsdm, -5022))
}

/// Whether a reject is the venue's (or the gateway's own throttle's) rate-limit refusal: Binance
/// -1003 / -1008 / -1015, Bybit 10006 / 10018. The order was not placed; sending the next one at
/// once only earns another (and, on a venue, a ban). `venues::errors` agrees (its test).
pub fn is_rate_limited(venue: Venue, reason: i32) -> bool {
    matches!(
        (venue, reason),
        (Venue::BinanceUsdm, -1003 | -1008 | -1015) | (Venue::BybitLinear, 10006 | 10018)
    )
}

/// Lifecycle of one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Sent, not yet acknowledged.
    PendingNew,
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    /// No report can change a terminal order (except a late fill that moves `cum_qty`, see
    /// [`OrderState::apply`]).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Canceled | Self::Rejected | Self::Expired
        )
    }
}

/// How a report was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It changed the order.
    Changed,
    /// Already known (duplicate) or older than what is known (late): ignored.
    Ignored,
}

/// One order's state, built only from reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderState {
    pub order: NewOrder,
    pub status: OrderStatus,
    pub cum_qty: Qty,
    pub venue_order_id: u64,
    /// Notional filled so far (Σ px × qty in 10^-8 units of price × qty / 10^8), for the average price.
    pub filled_notional: i128,
    pub fees: Qty,
}

impl OrderState {
    pub fn new(order: NewOrder) -> Self {
        Self {
            order,
            status: OrderStatus::PendingNew,
            cum_qty: Qty::ZERO,
            venue_order_id: 0,
            filled_notional: 0,
            fees: Qty::ZERO,
        }
    }

    /// Applies a report; duplicates and out-of-order leftovers are recognised and ignored.
    ///
    /// Rules: fills count only when they raise `cum_qty` (so a repeated fill never double-counts,
    /// and a fill that overtook its ack still counts); an ack after a fill or after a terminal state is
    /// stale; terminal states absorb everything but fills that raise `cum_qty` (a cancel that raced a
    /// fill: the venue reports the fill after the cancel — Bybit's double `Filled` case).
    pub fn apply(&mut self, r: &ExecReport) -> Applied {
        if r.venue_order_id != 0 && self.venue_order_id == 0 {
            self.venue_order_id = r.venue_order_id;
        }
        match r.kind {
            ExecKind::PartialFill | ExecKind::Fill => {
                if r.cum_qty <= self.cum_qty {
                    return Applied::Ignored;
                }
                self.filled_notional +=
                    r.last_px.raw() as i128 * r.last_qty.raw() as i128 / crate::FIXED_SCALE as i128;
                self.fees = Qty(self.fees.raw() + r.fee.raw());
                self.cum_qty = r.cum_qty;
                self.status = if r.cum_qty >= self.order.qty || r.kind == ExecKind::Fill {
                    OrderStatus::Filled
                } else if self.status.is_terminal() {
                    self.status
                } else {
                    OrderStatus::PartiallyFilled
                };
                Applied::Changed
            }
            _ if self.status.is_terminal() => Applied::Ignored,
            ExecKind::Ack => {
                if self.status == OrderStatus::PendingNew {
                    self.status = OrderStatus::New;
                    Applied::Changed
                } else {
                    Applied::Ignored
                }
            }
            ExecKind::Amended => {
                if self.status == OrderStatus::PendingNew {
                    self.status = OrderStatus::New;
                }
                // The amended size is what is filled plus what is still open.
                let new_qty = r.cum_qty.raw() + r.leaves_qty.raw();
                if new_qty > 0 {
                    self.order.qty = Qty(new_qty);
                }
                Applied::Changed
            }
            ExecKind::Rejected => {
                self.status = OrderStatus::Rejected;
                Applied::Changed
            }
            ExecKind::Canceled => {
                self.status = OrderStatus::Canceled;
                Applied::Changed
            }
            ExecKind::Expired => {
                self.status = OrderStatus::Expired;
                Applied::Changed
            }
        }
    }

    /// Open quantity.
    pub fn leaves(&self) -> Qty {
        if self.status.is_terminal() {
            Qty::ZERO
        } else {
            Qty(self.order.qty.raw() - self.cum_qty.raw())
        }
    }

    /// Average fill price, exact to 10^-8 (truncated), or `None` before any fill.
    pub fn avg_price(&self) -> Option<Price> {
        (self.cum_qty.raw() > 0).then(|| {
            Price(
                (self.filled_notional * crate::FIXED_SCALE as i128 / self.cum_qty.raw() as i128)
                    as i64,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(qty: &str) -> NewOrder {
        NewOrder {
            venue: Venue::BybitLinear,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa-1").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse("100").unwrap(),
            qty: Qty::parse(qty).unwrap(),
            reduce_only: false,
        }
    }

    fn rep(kind: ExecKind, px: &str, last: &str, cum: &str) -> ExecReport {
        ExecReport {
            venue: Venue::BybitLinear,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa-1").unwrap(),
            venue_order_id: 42,
            kind,
            side: Side::Buy,
            last_px: Price::parse(px).unwrap(),
            last_qty: Qty::parse(last).unwrap(),
            cum_qty: Qty::parse(cum).unwrap(),
            leaves_qty: Qty::ZERO,
            fee: Qty::parse("0.01").unwrap(),
            is_maker: true,
            reason: 0,
            exch_ms: 0,
            recv_ns: 0,
        }
    }

    #[test]
    fn normal_lifecycle_and_average_price() {
        let mut s = OrderState::new(order("3"));
        assert_eq!(
            s.apply(&rep(ExecKind::Ack, "0", "0", "0")),
            Applied::Changed
        );
        assert_eq!(
            s.apply(&rep(ExecKind::PartialFill, "100", "1", "1")),
            Applied::Changed
        );
        assert_eq!(s.status, OrderStatus::PartiallyFilled);
        assert_eq!(
            s.apply(&rep(ExecKind::Fill, "99", "2", "3")),
            Applied::Changed
        );
        assert_eq!(s.status, OrderStatus::Filled);
        assert_eq!(s.leaves(), Qty::ZERO);
        // (100 + 2×99) / 3 = 99.33333333
        assert_eq!(s.avg_price().unwrap(), Price::parse("99.33333333").unwrap());
        assert_eq!(s.fees, Qty::parse("0.02").unwrap());
    }

    #[test]
    fn duplicates_and_out_of_order_reports_are_ignored() {
        let mut s = OrderState::new(order("2"));
        // The fill overtakes the ack.
        assert_eq!(
            s.apply(&rep(ExecKind::PartialFill, "100", "1", "1")),
            Applied::Changed
        );
        assert_eq!(
            s.apply(&rep(ExecKind::Ack, "0", "0", "0")),
            Applied::Ignored
        );
        // The same fill again (private stream replay after reconnect).
        assert_eq!(
            s.apply(&rep(ExecKind::PartialFill, "100", "1", "1")),
            Applied::Ignored
        );
        assert_eq!(s.cum_qty, Qty::parse("1").unwrap());
        // A cancel races the last fill: the fill still counts, the order ends filled.
        assert_eq!(
            s.apply(&rep(ExecKind::Canceled, "0", "0", "1")),
            Applied::Changed
        );
        assert_eq!(
            s.apply(&rep(ExecKind::Fill, "100", "1", "2")),
            Applied::Changed
        );
        assert_eq!(s.status, OrderStatus::Filled);
        assert_eq!(
            s.apply(&rep(ExecKind::Canceled, "0", "0", "2")),
            Applied::Ignored
        );
    }

    #[test]
    fn amend_changes_the_open_quantity() {
        let mut s = OrderState::new(order("3"));
        s.apply(&rep(ExecKind::Ack, "0", "0", "0"));
        s.apply(&rep(ExecKind::PartialFill, "100", "1", "1"));
        let mut a = rep(ExecKind::Amended, "0", "0", "1");
        a.leaves_qty = Qty::parse("4").unwrap();
        assert_eq!(s.apply(&a), Applied::Changed);
        assert_eq!(
            (s.order.qty, s.leaves()),
            (Qty::parse("5").unwrap(), Qty::parse("4").unwrap())
        );
    }

    #[test]
    fn client_ids_are_valid_unique_and_bounded() {
        let mut g = ClientIdGen::new(1_795_621_440_753);
        let a = g.next_id();
        let b = g.next_id();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("qa") && a.as_str().len() <= CLIENT_ID_CAP);
        let mut later = ClientIdGen::new(1_795_621_440_754);
        assert_ne!(
            later.next_id(),
            a,
            "a restart one millisecond later never reuses an id"
        );
        assert!(ClientOrderId::parse("bad id!").is_none());
        assert!(ClientOrderId::parse(&"x".repeat(CLIENT_ID_CAP + 1)).is_none());
    }

    #[test]
    fn generated_ids_split_back_into_prefix_and_sequence() {
        let mut g = ClientIdGen::new(1_795_621_440_753);
        for n in 1..=2000u64 {
            let id = g.next_id();
            let (prefix, seq) = ClientIdGen::split(&id).unwrap();
            assert_eq!(seq, n, "{id}");
            assert_eq!(format!("{prefix}{}", base36(seq)), id.as_str());
        }
        // Only the canonical form: ids the generator never makes stay whole.
        for other in [
            "qa1-01", "qa1-", "qa1-A", "x-12", "plain", "mock-7", "qa1-1_2",
        ] {
            let id = ClientOrderId::parse(other).unwrap();
            assert_eq!(ClientIdGen::split(&id), None, "{other}");
        }
    }

    #[test]
    fn commands_and_reports_are_small_copy_and_archivable() {
        fn is_copy<T: Copy>() {}
        is_copy::<OrderCommand>();
        is_copy::<ExecReport>();
        assert!(
            std::mem::size_of::<OrderCommand>() <= 160,
            "{}",
            std::mem::size_of::<OrderCommand>()
        );
        assert!(
            std::mem::size_of::<ExecReport>() <= 160,
            "{}",
            std::mem::size_of::<ExecReport>()
        );
        let r = rep(ExecKind::Fill, "1", "1", "1");
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).unwrap();
        let back: ExecReport = rkyv::deserialize::<_, rkyv::rancor::Error>(
            rkyv::access::<ArchivedExecReport, rkyv::rancor::Error>(&bytes).unwrap(),
        )
        .unwrap();
        assert_eq!(back, r);
    }
}
