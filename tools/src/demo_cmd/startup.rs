//! Start-up against a venue that may already hold our state (a restart after a crash or a
//! `kill -9`): the gateway has reconciled at connect — the open orders of the traded symbol
//! adopted, the venue's positions fetched. Before the strategy thread starts:
//!
//! - the adopted open orders are **cancelled** (their intent died with the old process; the
//!   strategy re-quotes from a clean slate — never two generations of orders at once), waited for
//!   (bounded, 3 s);
//! - the venue's **position** is restored into the executor's and risk's ledgers at its entry price
//!   (risk's state, today's PnL and counters come back from the risk journal as always).

use std::time::{Duration, Instant};

use qalpha_engine::order::{OrderAction, OrderCommand};
use qalpha_engine::{Price, Qty, Symbol};
use qalpha_venues::gateway::session::Gateway;

use super::ledger::decimal;

/// What the start-up found at the venue.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Restored {
    /// The venue's position (exact decimal, signed) and entry price, restored into the ledgers.
    pub position: String,
    pub entry_price: String,
    /// Open orders of an earlier run found at the venue and cancelled; still open after 3 s.
    pub canceled_orders: usize,
    pub still_open: usize,
    #[serde(skip)]
    pub size: Qty,
    #[serde(skip)]
    pub entry: Price,
}

fn open_of(g: &Gateway, symbol: Symbol) -> Vec<qalpha_engine::order::NewOrder> {
    g.open_orders()
        .filter(|t| t.open && t.order.symbol == symbol)
        .map(|t| t.order)
        .collect()
}

/// Cancels what an earlier run left open and reads the venue's position (see the module docs).
pub(super) fn reconcile(g: &mut Gateway, symbol: Symbol) -> Restored {
    let mut out = Vec::new();
    let left = open_of(g, symbol);
    let now = qalpha_engine::clock::now_ns();
    for o in &left {
        let cmd = OrderCommand {
            venue: o.venue,
            symbol,
            tick_recv_ns: now,
            decided_ns: now,
            action: OrderAction::Cancel {
                client_id: o.client_id,
            },
        };
        g.submit(&cmd, &mut out);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !open_of(g, symbol).is_empty() && Instant::now() < deadline {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
    }
    let still_open = open_of(g, symbol).len();
    let (size, entry) = g
        .position(symbol)
        .map_or((Qty::ZERO, Price::ZERO), |p| (p.size, p.entry_price));
    if !left.is_empty() || size.raw() != 0 {
        eprintln!(
            "start-up: {} open order(s) of an earlier run cancelled ({still_open} still open); position {} @ {} restored",
            left.len(),
            decimal(size.raw() as i128, 8),
            entry
        );
    }
    Restored {
        position: decimal(size.raw() as i128, 8),
        entry_price: entry.to_string(),
        canceled_orders: left.len(),
        still_open,
        size,
        entry,
    }
}
