//! The gateway's client-side rate limits ([`crate::limits`]): an order request the venue would
//! refuse for its rate is not sent. Budgets are the venues' published ones (PROTOCOLS A.5, C.8):
//!
//! - Binance USD-M: orders (new and amend) 300 / 10 s and 1200 / min per account; request weight
//!   2400 / min per IP. The venue's own counts are adopted from `X-MBX-ORDER-COUNT-*` /
//!   `X-MBX-USED-WEIGHT-1M` headers and the ws-fapi answers' `rateLimits`.
//! - Bybit v5 linear: create, amend, cancel and cancel-all 10 / s each per UID. When the venue says
//!   an operation's budget is spent (`X-Bapi-Limit-Status` 0 in the REST headers or the Trade WS
//!   answer's `header`: other clients on the same UID), that operation waits until its
//!   `X-Bapi-Limit-Reset-Timestamp`.
//!
//! A refused new order is reported rejected with the venue's own rate-limit code (-1015 / 10006) —
//! the strategy re-decides; a refused cancel or amend is sent as soon as the window allows.

use qalpha_engine::order::OrderAction;
use qalpha_engine::Venue;
use serde_json::Value;

use crate::limits::{RateLimiter, Throttled};

/// The per-venue budgets.
pub(super) struct Throttle {
    venue: Venue,
    /// Binance: new + amend; Bybit: create.
    orders: RateLimiter,
    /// Bybit only (Binance amends share `orders`).
    amend: RateLimiter,
    cancel: RateLimiter,
    cancel_all: RateLimiter,
    /// Binance REST weight.
    pub(super) weight: RateLimiter,
    /// Per operation ([`op_index`]): the venue said its budget is spent until then (Bybit).
    blocked_until_ns: [u64; 4],
}

fn op_index(a: &OrderAction) -> usize {
    match a {
        OrderAction::New(_) => 0,
        OrderAction::Amend { .. } => 1,
        OrderAction::Cancel { .. } => 2,
        OrderAction::CancelAll => 3,
    }
}

impl Throttle {
    pub(super) fn new(venue: Venue) -> Self {
        match venue {
            Venue::BinanceUsdm => Self {
                venue,
                orders: RateLimiter::binance_orders(),
                amend: RateLimiter::default(),
                cancel: RateLimiter::default(),
                cancel_all: RateLimiter::default(),
                weight: RateLimiter::binance_weight(),
                blocked_until_ns: [0; 4],
            },
            Venue::BybitLinear => Self {
                venue,
                orders: RateLimiter::bybit_orders(),
                amend: RateLimiter::bybit_orders(),
                cancel: RateLimiter::bybit_orders(),
                cancel_all: RateLimiter::bybit_orders(),
                weight: RateLimiter::default(),
                blocked_until_ns: [0; 4],
            },
        }
    }

    fn limiter(&mut self, a: &OrderAction) -> &mut RateLimiter {
        match (self.venue, a) {
            (_, OrderAction::New(_)) | (Venue::BinanceUsdm, OrderAction::Amend { .. }) => {
                &mut self.orders
            }
            (Venue::BybitLinear, OrderAction::Amend { .. }) => &mut self.amend,
            (_, OrderAction::Cancel { .. }) => &mut self.cancel,
            (_, OrderAction::CancelAll) => &mut self.cancel_all,
        }
    }

    /// Spends one request of `a`'s budget, or says how long to wait.
    pub(super) fn acquire(&mut self, a: &OrderAction, now_ns: u64) -> Result<(), Throttled> {
        let until = self.blocked_until_ns[op_index(a)];
        if now_ns < until {
            return Err(Throttled {
                window: "venue: budget spent",
                used: 0,
                cost: 1,
                limit: 0,
                wait: std::time::Duration::from_nanos(until - now_ns),
            });
        }
        self.limiter(a).try_acquire(1, now_ns)
    }

    /// Adopts the usage a REST answer to `a` (`None`: not an order request), sent at `sent_ns`,
    /// reports.
    pub(super) fn observe_headers(
        &mut self,
        a: Option<&OrderAction>,
        headers: &[(String, String)],
        sent_ns: u64,
        now_ns: u64,
    ) {
        match self.venue {
            Venue::BinanceUsdm => {
                self.orders
                    .observe_binance_headers(headers, sent_ns, now_ns);
                self.weight
                    .observe_binance_headers(headers, sent_ns, now_ns);
            }
            Venue::BybitLinear => {
                let get = |n: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(n))
                        .and_then(|(_, v)| v.parse::<u64>().ok())
                };
                if let Some(a) = a {
                    let (left, reset) = (
                        get("x-bapi-limit-status"),
                        get("x-bapi-limit-reset-timestamp"),
                    );
                    self.bybit_spent(a, left, reset);
                }
                let _ = (sent_ns, now_ns);
            }
        }
    }

    /// Bybit counts in a rolling second, ours in calendar seconds, so its partial counts are not
    /// adopted (ours would over-count); when it says the budget is spent (`left == 0`: other
    /// clients on the same UID), that operation waits until the venue's reset time.
    fn bybit_spent(&mut self, a: &OrderAction, left: Option<u64>, reset_ms: Option<u64>) {
        if let (Some(0), Some(reset)) = (left, reset_ms) {
            let i = op_index(a);
            self.blocked_until_ns[i] = self.blocked_until_ns[i].max(reset * 1_000_000);
        }
    }

    /// Adopts the usage an order-WebSocket answer (to a request sent at `sent_ns`) reports.
    pub(super) fn observe_ws(
        &mut self,
        a: &OrderAction,
        answer: &Value,
        sent_ns: u64,
        now_ns: u64,
    ) {
        match self.venue {
            Venue::BinanceUsdm => {
                for l in answer["rateLimits"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    let count = l["count"].as_u64().unwrap_or(0) as u32;
                    let window = match (
                        l["rateLimitType"].as_str(),
                        l["interval"].as_str(),
                        l["intervalNum"].as_u64(),
                    ) {
                        (Some("ORDERS"), Some("SECOND"), Some(10)) => "ORDERS 10s",
                        (Some("ORDERS"), Some("MINUTE"), Some(1)) => "ORDERS 1m",
                        (Some("REQUEST_WEIGHT"), Some("MINUTE"), Some(1)) => {
                            self.weight
                                .observe_sent("REQUEST_WEIGHT 1m", count, sent_ns, now_ns);
                            continue;
                        }
                        _ => continue,
                    };
                    self.orders.observe_sent(window, count, sent_ns, now_ns);
                }
            }
            Venue::BybitLinear => {
                let h = &answer["header"];
                let num = |k: &str| h[k].as_str().and_then(|v| v.parse::<u64>().ok());
                self.bybit_spent(
                    a,
                    num("X-Bapi-Limit-Status"),
                    num("X-Bapi-Limit-Reset-Timestamp"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::order::ClientOrderId;

    const S: u64 = 1_000_000_000;

    fn cancel() -> OrderAction {
        OrderAction::Cancel {
            client_id: ClientOrderId::parse("a").unwrap(),
        }
    }

    #[test]
    fn bybit_budgets_are_per_operation_and_follow_the_venues_count() {
        let mut t = Throttle::new(Venue::BybitLinear);
        let now = 1_700_000_000 * S;
        for _ in 0..10 {
            t.acquire(&cancel(), now).unwrap();
        }
        assert!(t.acquire(&cancel(), now).is_err());
        assert!(
            t.acquire(&OrderAction::CancelAll, now).is_ok(),
            "another operation's budget"
        );
        // A partial count is not adopted (Bybit's window rolls, ours does not) …
        let reset_ms = now / 1_000_000 + 500;
        let left = |n: &str| {
            serde_json::json!({"header":{"X-Bapi-Limit":"10","X-Bapi-Limit-Status":n,
                "X-Bapi-Limit-Reset-Timestamp": reset_ms.to_string()}})
        };
        t.observe_ws(&OrderAction::CancelAll, &left("1"), now, now);
        assert!(t.acquire(&OrderAction::CancelAll, now).is_ok());
        // … an exhausted budget (other clients on the same UID) holds until the venue's reset.
        t.observe_ws(&OrderAction::CancelAll, &left("0"), now, now);
        let e = t.acquire(&OrderAction::CancelAll, now).unwrap_err();
        assert_eq!(e.wait, std::time::Duration::from_millis(500));
        assert!(t
            .acquire(&OrderAction::CancelAll, now + 500_000_000)
            .is_ok());
    }

    #[test]
    fn binance_ws_answers_carry_the_order_count() {
        let mut t = Throttle::new(Venue::BinanceUsdm);
        let now = 1_700_000_000 * S;
        let answer: Value = serde_json::json!({"rateLimits":[
            {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":300},
            {"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":7}]});
        t.observe_ws(&cancel(), &answer, now, now);
        let e = t.acquire(&OrderAction::CancelAll, now).map(|_| ());
        assert!(e.is_ok(), "Binance cancels are not order-counted");
        let amend = OrderAction::Amend {
            client_id: ClientOrderId::parse("a").unwrap(),
            price: qalpha_engine::Price::ZERO,
            qty: qalpha_engine::Qty::ZERO,
        };
        assert_eq!(t.acquire(&amend, now).unwrap_err().window, "ORDERS 10s");
        assert_eq!(t.weight.windows()[0].used(), 7);
    }
}
