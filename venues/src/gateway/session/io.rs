//! The gateway's sockets and timers: the order WebSocket and the private stream (frames in,
//! (re)connects, authentication, subscriptions) and the periodic work — ack timeouts, delayed
//! retries, polling while the private stream is down, keep-alives, the dead-man refresh.

use std::time::{Duration, Instant};

use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::ring::Consumer;
use qalpha_engine::transport::ws::Progress;
use qalpha_engine::Venue;

use super::{
    client_of, Gateway, Pending, Via, HANDSHAKE_DEADLINE, LISTEN_KEY_KEEPALIVE, PING_EVERY,
    POSITIONS_EVERY,
};
use crate::errors::RetryPolicy;
use crate::gateway::account::private_account;
use crate::gateway::protocol::WsMessage;
use crate::gateway::request::Method;

impl Gateway {
    /// Reads the order WebSocket; `cmds`: commands to take between its messages. Whether any
    /// command was taken.
    pub(super) fn drive_order_ws(
        &mut self,
        out: &mut Vec<ExecReport>,
        mut cmds: Option<&mut Consumer<OrderCommand>>,
    ) -> bool {
        if !self.order_ws.is_up() {
            return false;
        }
        self.frames.clear();
        let res = self.order_ws.drive(&mut self.frames);
        let mut took = false;
        for i in 0..self.frames.len() {
            if let Some(c) = cmds.as_deref_mut().filter(|_| i > 0) {
                took |= self.take_commands(c, out);
            }
            let msg = self.proto.parse_ws(self.frames.get(i).1);
            match msg {
                WsMessage::Auth(Ok(())) => self.order_ws.set_ready(),
                WsMessage::Auth(Err(e)) => {
                    self.stats.last_error = Some(format!("order WebSocket auth: {e}"));
                    self.stats.halted = e.retry_policy() == RetryPolicy::Halt;
                }
                WsMessage::Answer { id, result } => {
                    let Some(p) = id.parse().ok().and_then(|id: u64| self.pending.remove(&id))
                    else {
                        continue;
                    };
                    if let Ok(v) = serde_json::from_slice(self.frames.get(i).1) {
                        self.throttle
                            .observe_ws(&p.cmd.action, &v, p.sent_ns, now_ns());
                    }
                    self.on_answer(&p.cmd, p.retried, result, out);
                }
                WsMessage::Other => {}
            }
        }
        match res {
            Ok(Progress::Opened) => {
                if self.order_ws.opened > 1 {
                    self.stats.order_ws_reconnects += 1;
                }
                match self.proto.ws_auth(self.clock.server_ms(now_ns()) + 10_000) {
                    Some(auth) => {
                        if self.order_ws.send(&auth).is_err() {
                            self.order_ws_down(out);
                        }
                    }
                    None => self.order_ws.set_ready(),
                }
            }
            Ok(_) => {}
            Err(e) => {
                self.note_transport(&e.to_string());
                self.order_ws_down(out);
            }
        }
        took
    }

    /// Reads the private stream; `cmds` as for [`Self::drive_order_ws`].
    pub(super) fn drive_private(
        &mut self,
        out: &mut Vec<ExecReport>,
        mut cmds: Option<&mut Consumer<OrderCommand>>,
    ) -> bool {
        if !self.private_ws.is_up() {
            return false;
        }
        self.frames.clear();
        let res = self.private_ws.drive(&mut self.frames);
        let mut expired = false;
        let mut became_ready = false;
        let mut took = false;
        for i in 0..self.frames.len() {
            if let Some(c) = cmds.as_deref_mut().filter(|_| i > 0) {
                took |= self.take_commands(c, out);
            }
            let (t, f) = self.frames.get(i);
            if self.cfg.venue == Venue::BybitLinear && !self.private_ws.ready {
                match self.proto.parse_ws(f) {
                    WsMessage::Auth(Err(e)) => {
                        self.stats.last_error = Some(format!("private stream auth: {e}"));
                        continue;
                    }
                    WsMessage::Auth(Ok(())) => continue,
                    _ => {}
                }
                if let Some(ok) = self.proto.private_subscribed(f) {
                    if ok {
                        became_ready = true;
                    } else {
                        self.stats.last_error = Some("private subscription refused".into());
                    }
                    continue;
                }
            }
            let mut reports = Vec::new();
            match self.proto.parse_private(f, t, &mut reports) {
                Ok(true) => {}
                Ok(false) => expired = true,
                Err(e) => {
                    self.stats.bad_private += 1;
                    tracing::warn!("{}: unreadable private message: {e}", self.cfg.venue.name());
                }
            }
            for r in &reports {
                self.tracker.on_report(r, out);
            }
            if reports.is_empty() {
                if let Some(u) = private_account(self.frames.get(i).1) {
                    self.apply_account(u);
                }
            }
        }
        if became_ready {
            self.private_ready_now(out);
        }
        match res {
            Ok(Progress::Opened) => {
                if self.private_ws.opened > 1 {
                    self.stats.private_reconnects += 1;
                }
                let auth = self.proto.ws_auth(self.clock.server_ms(now_ns()) + 10_000);
                let sub = self.proto.private_subscribe(self.cfg.dead_man_ms.is_some());
                match (auth, sub) {
                    (Some(a), Some(s)) => {
                        if self
                            .private_ws
                            .send(&a)
                            .and_then(|_| self.private_ws.send(&s))
                            .is_err()
                        {
                            self.private_down();
                        }
                    }
                    _ => self.private_ready_now(out),
                }
            }
            Ok(_) if expired => {
                self.listen_key = None;
                self.private_down();
            }
            Ok(_) => {}
            Err(e) => {
                self.note_transport(&e.to_string());
                self.private_down();
            }
        }
        took
    }

    /// The private stream is (again) delivering: reconcile what may have been missed.
    pub(super) fn private_ready_now(&mut self, out: &mut Vec<ExecReport>) {
        self.private_ws.set_ready();
        if self.private_ws.opened > 1 || self.tracker.has_open() {
            let _ = self.reconcile(false, out);
        }
        if self.private_ws.opened > 1 {
            // Fills missed while the stream was down moved the position too.
            let _ = self.refresh_positions();
        }
    }

    pub(super) fn order_ws_down(&mut self, out: &mut Vec<ExecReport>) {
        self.order_ws.fail(self.poll.registry());
        // Requests in flight on the lost connection: their fate is unknown — ask.
        let lost: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in lost {
            if let Some(c) = client_of(&p.cmd) {
                self.query_order(p.cmd.symbol, c, out);
            }
        }
    }

    pub(super) fn private_down(&mut self) {
        self.private_ws.fail(self.poll.registry());
    }

    pub(super) fn timers(&mut self, out: &mut Vec<ExecReport>) {
        let now = Instant::now();
        // Reconnects.
        if self.cfg.via == Via::Ws && self.cfg.order_ws_url.is_some() && self.order_ws.due(now) {
            self.start_order_ws();
        }
        if self.cfg.private_ws_url.is_some() && self.private_ws.due(now) {
            self.start_private();
        }
        for c in [&mut self.order_ws, &mut self.private_ws] {
            if c.is_up() && !c.ready && now.duration_since(c.started) > HANDSHAKE_DEADLINE {
                c.fail(self.poll.registry());
            }
        }
        // Answers overdue: reconcile those orders.
        let overdue: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) > self.cfg.ack_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            if let Some(p) = self.pending.remove(&id) {
                self.stats.ack_timeouts += 1;
                if let Some(c) = client_of(&p.cmd) {
                    self.query_order(p.cmd.symbol, c, out);
                }
            }
        }
        // Delayed retries (rate limits).
        if !self.retry_queue.is_empty() {
            let due: Vec<OrderCommand> = {
                let (due, keep): (Vec<_>, Vec<_>) =
                    self.retry_queue.drain(..).partition(|(at, _)| *at <= now);
                self.retry_queue = keep;
                due.into_iter().map(|(_, c)| c).collect()
            };
            for c in due {
                self.send(&c, true, out);
            }
        }
        // Polling while the private stream is not delivering.
        if !self.private_ws.ready
            && self.tracker.has_open()
            && now.duration_since(self.last_reconcile) >= self.cfg.reconcile_every
        {
            let _ = self.reconcile(false, out);
        }
        if !self.private_ws.ready && now.duration_since(self.last_positions) >= POSITIONS_EVERY {
            let _ = self.refresh_positions();
        }
        // Keep-alives.
        for c in [&mut self.order_ws, &mut self.private_ws] {
            if self.cfg.venue == Venue::BybitLinear
                && c.ready
                && now.duration_since(c.last_ping) >= PING_EVERY
            {
                c.last_ping = now;
                let _ = c.send(r#"{"op":"ping"}"#);
            }
        }
        if self.listen_key.is_some()
            && now.duration_since(self.last_keepalive) >= LISTEN_KEY_KEEPALIVE
        {
            self.last_keepalive = now;
            if let Some(req) = self.proto.listen_key(Method::Put) {
                if self.rest_call(&req).map(|(s, _)| s >= 400).unwrap_or(true) {
                    self.listen_key = None; // expired: a new one on the next connect
                    self.private_down();
                }
            }
        }
        self.arm_dead_man(false);
    }

    pub(super) fn start_order_ws(&mut self) {
        let Some(url) = self.cfg.order_ws_url.clone() else {
            return;
        };
        if let Err(e) = self
            .order_ws
            .start(&url, self.tls.as_ref(), self.poll.registry())
        {
            self.note_transport(&e.to_string());
        }
    }

    pub(super) fn start_private(&mut self) {
        let Some(base) = self.cfg.private_ws_url.clone() else {
            return;
        };
        let url = match self.cfg.venue {
            Venue::BybitLinear => base,
            Venue::BinanceUsdm => {
                if self.listen_key.is_none() {
                    self.listen_key = self.new_listen_key();
                    self.last_keepalive = Instant::now();
                }
                let Some(k) = &self.listen_key else {
                    self.private_ws.fail(self.poll.registry());
                    return;
                };
                format!("{}/ws/{k}", base.trim_end_matches('/'))
            }
        };
        if let Err(e) = self
            .private_ws
            .start(&url, self.tls.as_ref(), self.poll.registry())
        {
            self.note_transport(&e.to_string());
        }
    }

    pub(super) fn new_listen_key(&mut self) -> Option<String> {
        let req = self.proto.listen_key(Method::Post)?;
        let (status, body) = self.rest_call(&req).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        match v["listenKey"].as_str() {
            Some(k) if status < 400 => Some(k.to_string()),
            _ => {
                self.stats.last_error = Some(format!(
                    "listenKey: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
                None
            }
        }
    }

    /// Blocks (bounded) until the order WebSocket or the private stream is ready (start-up only).
    pub(super) fn wait_ready(&mut self, order: bool) {
        let deadline = Instant::now() + HANDSHAKE_DEADLINE;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            let c = if order {
                &self.order_ws
            } else {
                &self.private_ws
            };
            if c.ready || !c.is_up() {
                break;
            }
            self.poll_io(Some(Duration::from_millis(5)), &mut out);
        }
        self.backlog.append(&mut out);
    }
}
