//! Where a feed's [`MarketEvent`]s go: [`EventSink`].
//!
//! Hot path: a feed stamps and hands over every event it decodes through [`emit`], which allocates
//! nothing. What a full ring does is the ring's policy: live market data drops (`DropNewest`; the
//! feed counts the drop and marks an affected book stale), replay waits (`Backpressure`).

use qalpha_engine::event::{MarketEvent, MarketPayload, Venue};
use qalpha_engine::ring::PushOutcome;
use qalpha_engine::Symbol;

/// Where events go. The ring producer implements it; tests collect into a `Vec`.
pub trait EventSink {
    /// Hands one event over; [`PushOutcome::Dropped`] when it was refused (the feed counts it in
    /// its `ring_drops`).
    fn emit(&mut self, ev: MarketEvent) -> PushOutcome;
}

impl EventSink for Vec<MarketEvent> {
    fn emit(&mut self, ev: MarketEvent) -> PushOutcome {
        self.push(ev);
        PushOutcome::Pushed
    }
}

impl EventSink for qalpha_engine::ring::Producer<MarketEvent> {
    #[inline]
    fn emit(&mut self, ev: MarketEvent) -> PushOutcome {
        self.push(ev)
    }
}

/// A venue feed's counters, as far as [`emit`] needs them: the venue the events come from, and
/// where a refused event is counted.
pub(crate) trait VenueCounters {
    const VENUE: Venue;
    fn ring_drops(&mut self) -> &mut u64;
}

/// Sends one event, stamped with the decode time; a drop (ring full) is counted in `c`.
#[inline]
pub(crate) fn emit<C: VenueCounters, S: EventSink>(
    c: &mut C,
    sink: &mut S,
    symbol: Symbol,
    recv_ns: u64,
    exch_ms: u64,
    payload: MarketPayload,
) -> PushOutcome {
    let out = sink.emit(MarketEvent {
        venue: C::VENUE,
        symbol,
        recv_ns,
        decoded_ns: qalpha_engine::clock::now_ns(),
        exch_ms,
        payload,
    });
    if out == PushOutcome::Dropped {
        *c.ring_drops() += 1;
    }
    out
}
