//! What the gateway learns from the venue over REST: reconciliation of open orders, single-order
//! queries, instrument rules, the server-time offset, the dead-man switch.

use std::time::{Duration, Instant};

use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{ClientOrderId, ExecReport, NewOrder, OrderAction};
use qalpha_engine::{Symbol, Venue};

use super::{client_of, rule_code, unknown_code, Gateway};
use crate::clock_sync::TimeSample;
use crate::errors::ErrorKind;
use crate::gateway::account::AccountUpdate;
use crate::gateway::request::SignedRequest;
use crate::instrument::{parse_binance_exchange_info, parse_bybit_instruments, RuleError};

impl Gateway {
    /// Adopts what the venue says about every order we believe open (and, at start, every open
    /// order of the configured symbols).
    pub(super) fn reconcile(
        &mut self,
        at_start: bool,
        out: &mut Vec<ExecReport>,
    ) -> Result<(), String> {
        self.last_reconcile = Instant::now();
        self.stats.reconciliations += 1;
        let mut symbols: Vec<Symbol> = self.tracker.open().map(|t| t.order.symbol).collect();
        if at_start {
            symbols.extend(self.cfg.symbols.iter().copied());
        }
        symbols.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        symbols.dedup();
        for symbol in symbols {
            // Binance: open orders of one symbol weigh 1; past the minute's budget, skip this pass.
            if let Err(t) = self.throttle.weight.try_acquire(1, now_ns()) {
                self.stats.throttled += 1;
                return Err(t.to_string());
            }
            let ts = self.clock.server_ms(now_ns());
            let req = self.proto.rest_open_orders(symbol, ts);
            let (status, body) = self.rest_call(&req).map_err(|()| {
                self.stats
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "open orders: no answer".into())
            })?;
            let listed = self
                .proto
                .parse_orders(status, &body)
                .map_err(|e| e.to_string())?;
            for s in &listed {
                if self.tracker.get(&s.client_id).is_some() {
                    self.tracker.on_snapshot(s, false, out);
                } else if at_start {
                    self.tracker.adopt(s, out);
                }
            }
            let gone: Vec<ClientOrderId> = self
                .tracker
                .open()
                .filter(|t| t.order.symbol == symbol)
                .filter(|t| !listed.iter().any(|s| s.client_id == t.order.client_id))
                .map(|t| t.order.client_id)
                .collect();
            for id in gone {
                self.query_order(symbol, id, out);
            }
        }
        Ok(())
    }

    /// Queries one order and adopts the answer; an order the venue does not know is settled.
    pub(super) fn query_order(
        &mut self,
        symbol: Symbol,
        id: ClientOrderId,
        out: &mut Vec<ExecReport>,
    ) {
        // Requests still in flight on the WebSocket will be answered there; a request waiting out
        // a back-off has not reached the venue yet (its absence there means nothing).
        if self.pending.values().any(|p| client_of(&p.cmd) == Some(id))
            || self
                .retry_queue
                .iter()
                .any(|(_, c)| client_of(c) == Some(id))
        {
            return;
        }
        let ts = self.clock.server_ms(now_ns());
        let req = self.proto.rest_query_order(symbol, id, ts);
        let Ok((status, body)) = self.rest_call(&req) else {
            return;
        };
        match self.proto.parse_orders(status, &body) {
            Ok(list) => match list.iter().find(|s| s.client_id == id) {
                Some(s) => self.tracker.on_snapshot(s, false, out),
                None => self
                    .tracker
                    .on_unknown_at_venue(&id, unknown_code(self.cfg.venue), out),
            },
            Err(e) if e.kind == ErrorKind::UnknownOrder => {
                self.tracker.on_unknown_at_venue(&id, e.code as i32, out)
            }
            Err(e) => {
                self.stats.venue_errors += 1;
                self.stats.last_error = Some(e.to_string());
            }
        }
    }

    /// Loads the rules of `symbols` (Binance: one `exchangeInfo`; Bybit: `instruments-info` per
    /// symbol). A symbol the venue does not list is an error.
    pub(super) fn load_rules(&mut self, symbols: &[Symbol]) -> Result<(), String> {
        let reqs: Vec<String> = match self.cfg.venue {
            Venue::BinanceUsdm => vec!["/fapi/v1/exchangeInfo".into()],
            Venue::BybitLinear => symbols
                .iter()
                .map(|s| format!("/v5/market/instruments-info?category=linear&symbol={s}"))
                .collect(),
        };
        for target in reqs {
            let r = self
                .rest
                .send("GET", &target, &[], b"")
                .map_err(|e| format!("instrument rules: {e}"))?;
            self.stats.rest_requests += 1;
            let body = String::from_utf8_lossy(&r.body);
            let parsed = match self.cfg.venue {
                Venue::BinanceUsdm => parse_binance_exchange_info(&body),
                Venue::BybitLinear => parse_bybit_instruments(&body),
            }
            .map_err(|e| format!("{target} (HTTP {}): {e}", r.status))?;
            for rule in parsed {
                if symbols.contains(&rule.symbol) {
                    self.rules.insert(rule.symbol, rule);
                }
            }
        }
        match symbols.iter().find(|s| !self.rules.contains_key(s)) {
            Some(s) => Err(format!("{s}: the venue lists no such instrument")),
            None => Ok(()),
        }
    }

    /// The instrument's rules applied to a new order: `Err(venue code)` refuses it locally. A market
    /// order's minimum notional is left to the venue (it is judged at the mark, which the gateway
    /// does not see).
    pub(super) fn check_rules(&mut self, o: &NewOrder) -> Result<(), i32> {
        if !self.cfg.check_rules {
            return Ok(());
        }
        if !self.rules.contains_key(&o.symbol) {
            if let Err(e) = self.load_rules(&[o.symbol]) {
                self.stats.last_error = Some(format!("order {} refused: {e}", o.client_id));
                return Err(rule_code(self.cfg.venue, None));
            }
        }
        let Some(rules) = self.rules.get(&o.symbol) else {
            return Err(rule_code(self.cfg.venue, None));
        };
        match rules.check(o, None) {
            Ok(()) | Err(RuleError::NoReferencePrice { .. }) => Ok(()),
            Err(e) => {
                tracing::warn!("order {} refused locally, not sent: {e}", o.client_id);
                let code = rule_code(self.cfg.venue, Some(&e));
                self.stats.last_error = Some(format!("order {} refused locally: {e}", o.client_id));
                Err(code)
            }
        }
    }

    /// Positions of the configured symbols and of every open order's symbol, from the venue
    /// (Binance `positionRisk` weighs 5; skipped past the weight budget).
    pub(super) fn refresh_positions(&mut self) -> Result<(), String> {
        self.last_positions = Instant::now();
        if let Err(t) = self.throttle.weight.try_acquire(5, now_ns()) {
            self.stats.throttled += 1;
            return Err(t.to_string());
        }
        let req = self
            .proto
            .rest_positions(None, self.clock.server_ms(now_ns()));
        let (status, body) = self
            .rest_call(&req)
            .map_err(|()| "positions: no answer".to_string())?;
        let positions = self.proto.parse_positions(status, &body)?;
        self.apply_account(AccountUpdate {
            positions,
            balances: Vec::new(),
        });
        Ok(())
    }

    pub(super) fn sync_clock(&mut self) -> Result<(), String> {
        let path = self.proto.time_path();
        for _ in 0..2 {
            let sent_ns = now_ns();
            let r = self
                .rest
                .send("GET", path, &[], b"")
                .map_err(|e| format!("server time: {e}"))?;
            let recv_ns = now_ns();
            let server_ms = self.proto.parse_time(&r.body).ok_or_else(|| {
                format!("{path}: no server time in the answer (HTTP {})", r.status)
            })?;
            self.clock.add(TimeSample {
                sent_ns,
                server_ms,
                recv_ns,
            });
        }
        self.stats.clock_offset_ns = self.clock.offset_ns();
        Ok(())
    }

    /// Arms (at start) or refreshes the dead-man switch.
    pub(super) fn arm_dead_man(&mut self, first: bool) {
        let Some(ms) = self.cfg.dead_man_ms else {
            return;
        };
        let due = match self.cfg.venue {
            Venue::BinanceUsdm => {
                first || self.last_dead_man.elapsed() >= Duration::from_millis(ms / 3)
            }
            // Bybit's window is account state: set once; the `dcp` subscription keeps it alive.
            Venue::BybitLinear => first,
        };
        if !due {
            return;
        }
        self.last_dead_man = Instant::now();
        let symbols: Vec<Symbol> = match self.cfg.venue {
            Venue::BinanceUsdm => self.cfg.symbols.clone(),
            Venue::BybitLinear => self.cfg.symbols.first().copied().into_iter().collect(),
        };
        for s in symbols {
            let req = self.proto.dead_man(s, ms, self.clock.server_ms(now_ns()));
            match self.rest_call(&req) {
                Ok((status, body)) if self.proto.parse_rest(status, &body).is_ok() => {
                    self.stats.dead_man_refreshes += 1
                }
                Ok((status, body)) => {
                    self.stats.last_error = Some(format!(
                        "dead-man switch: HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    ))
                }
                Err(()) => {}
            }
        }
    }

    /// One REST exchange: (status, body), or `Err` after counting a transport failure.
    pub(super) fn rest_call(&mut self, req: &SignedRequest) -> Result<(u16, Vec<u8>), ()> {
        self.rest_call_for(req, None)
    }

    /// [`Self::rest_call`] for an order request (`action`): the venue's rate-limit headers are
    /// adopted by that operation's budget.
    pub(super) fn rest_call_for(
        &mut self,
        req: &SignedRequest,
        action: Option<&OrderAction>,
    ) -> Result<(u16, Vec<u8>), ()> {
        self.stats.rest_requests += 1;
        let sent_ns = now_ns();
        match self.rest.send(
            req.method.as_str(),
            &req.target(),
            &req.headers,
            req.body.as_bytes(),
        ) {
            Ok(r) => {
                self.throttle
                    .observe_headers(action, &r.headers, sent_ns, now_ns());
                Ok((r.status, r.body))
            }
            Err(e) => {
                self.note_transport(&e.to_string());
                Err(())
            }
        }
    }

    pub(super) fn note_transport(&mut self, why: &str) {
        self.stats.transport_errors += 1;
        tracing::warn!("{} gateway: {why}", self.cfg.venue.name());
        self.stats.last_error = Some(why.to_string());
    }
}
