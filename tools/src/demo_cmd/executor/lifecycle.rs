//! The executor's start and end: a position found at the venue restored at start; the shutdown's
//! settling, cancelling and optional flattening.

use qalpha_engine::order::{ExecKind, ExecReport, OrderCommand};
use qalpha_engine::ring::Producer;
use qalpha_engine::{Price, Qty, Side};

use qalpha_strategy::baselines::Style;

use super::{Executor, MARKET_IOC};

impl Executor {
    /// At start (`qalpha run` after a crash or a restart): the venue's position for this market
    /// enters the executor's ledger, the strategy's own count and risk's ledger at the venue's
    /// entry price, fee-free. The PnL of the run counts from that price.
    pub fn restore_position(&mut self, size: Qty, entry: Price) {
        if size.raw() == 0 {
            return;
        }
        let side = if size.raw() > 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = Qty(size.raw().abs());
        let r = ExecReport {
            venue: self.m.venue,
            symbol: self.m.symbol,
            client_id: Default::default(),
            venue_order_id: 0,
            kind: ExecKind::Fill,
            side,
            last_px: entry,
            last_qty: qty,
            cum_qty: qty,
            leaves_qty: Qty::ZERO,
            fee: Qty::ZERO,
            is_maker: false,
            reason: 0,
            exch_ms: 0,
            recv_ns: 0,
        };
        self.ledger.on_fill(&r);
        self.strategy.on_fill(side, qty);
        if let Some(risk) = self.risk.as_mut() {
            risk.restore_position(self.m.venue, self.m.symbol, size, entry);
        }
    }

    /// The run is ending: the strategy's settling intent (bar strategies: flat) replaces the
    /// standing one, and nothing else is placed. Call [`Self::wind_down`] until [`Self::settled`].
    ///
    /// With [`Self::flatten_on_exit`] the position left once nothing rests is closed too: one
    /// reduce-only market order for all of it, sent whether or not the book is in sync (the feed
    /// may already be closed) — [`Self::flattened`] keeps what it was.
    pub fn begin_shutdown(&mut self) {
        let end = self.strategy.on_end();
        self.want_bid = None;
        self.want_ask = None;
        self.target = None;
        if let Some(i) = end {
            self.apply(i);
        }
        self.flatten_sent = false;
    }

    /// The shutdown's flattening order, once nothing else is live.
    fn flatten(&mut self, now: u64, out: &mut Producer<OrderCommand>) {
        let pos = self.ledger.position;
        if !self.flatten_on_exit || self.flatten_sent || pos == 0 || self.live.count > 0 {
            return;
        }
        self.flatten_sent = true;
        self.flattened = Some(pos);
        let side = if pos > 0 { Side::Sell } else { Side::Buy };
        self.send_new(now, side, MARKET_IOC, Qty(pos.abs()), true, out);
    }

    /// One shutdown step: cancel what rests, trade the settling target.
    pub fn wind_down(&mut self, out: &mut Producer<OrderCommand>) {
        let now = self.now();
        if self.in_sync {
            self.work(now, out);
        } else {
            self.cancel_resting(now, out);
        }
        let target_open = self.target.is_some_and(|t| t.qty != self.ledger.position);
        if !target_open || !self.in_sync {
            self.flatten(now, out);
        }
    }

    /// Nothing is live and the settling target is reached (or cannot be traded: the book is not in
    /// sync, or risk does not let the strategy trade).
    pub fn settled(&self) -> bool {
        let target_open = self.target.is_some_and(|t| {
            t.qty != self.ledger.position
                && !(matches!(t.style, Style::Ioc { .. }) && t.tried)
                && self.in_sync
                && self.top.is_some()
                && self.may_trade()
        });
        let flatten_open = self.flatten_on_exit && !self.flatten_sent && self.ledger.position != 0;
        self.live.count == 0 && !target_open && !flatten_open
    }
}
