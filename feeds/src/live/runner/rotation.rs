//! Planned rotation of the feed runner's connections (see [`crate::live::rotation`]).

use mio::Token;
use qalpha_engine::capture::{Record, RecordKind};
use qalpha_engine::event::Venue;
use qalpha_engine::metrics::venue_index;

use super::{FeedRunner, St, MS};
use crate::live::rotation::Standby;
use crate::transport::ws::{Progress, WsClient};

impl FeedRunner {
    /// Starts, completes or abandons planned rotations (see [`super::rotation`]).
    pub(super) fn rotate(&mut self, now: u64) {
        let Some(after) = self.opts.rotate_after else {
            return;
        };
        let after = after.as_nanos() as u64;
        for i in 0..self.conns.len() {
            let m = &mut self.conns[i];
            if m.plan.venue != Venue::BinanceUsdm || !matches!(m.state, St::Open(_)) {
                continue;
            }
            match &m.standby {
                None if now.saturating_sub(m.opened_ns) >= after => {
                    let Some(addr) = m.addr else { continue };
                    match WsClient::connect(
                        addr,
                        m.endpoint.clone(),
                        m.tls.clone(),
                        self.poll.registry(),
                        Token(i * 2 + 1),
                    ) {
                        Ok(c) => m.standby = Some(Box::new(Standby::new(c, now))),
                        Err(e) => {
                            self.stats.rotations_abandoned += 1;
                            self.stats.last_error = Some(e.to_string());
                            m.opened_ns = now; // try again after another period
                        }
                    }
                }
                Some(sb) => {
                    let binance = &self.router.binance;
                    if sb.caught_up(&m.plan.book_symbols, |s| {
                        binance.book(s).and_then(|b| b.last_id())
                    }) {
                        self.switch_to_standby(i, now);
                    } else if now.saturating_sub(sb.started_ns) > 10_000 * MS {
                        if let Some(sb) = m.standby.take() {
                            sb.client.close(self.poll.registry());
                        }
                        self.stats.rotations_abandoned += 1;
                        m.opened_ns = now;
                    }
                }
                None => {}
            }
        }
    }

    pub(super) fn drive_standby(&mut self, idx: usize) {
        let Some(m) = self.conns.get_mut(idx) else {
            return;
        };
        let Some(sb) = m.standby.as_mut() else { return };
        let mut frames: Vec<(u64, bool, Vec<u8>)> = Vec::new();
        let res = sb
            .client
            .drive(&mut |recv_ns, text, payload| frames.push((recv_ns, text, payload.to_vec())));
        for (t, text, p) in frames {
            sb.hold(t, text, &p);
        }
        match res {
            Ok(Progress::Opened) => sb.open = true,
            Ok(_) => {}
            Err(e) => {
                self.stats.rotations_abandoned += 1;
                self.stats.last_error = Some(format!("standby: {e}"));
                if let Some(sb) = m.standby.take() {
                    sb.client.close(self.poll.registry());
                }
                m.opened_ns = qalpha_engine::clock::now_ns();
            }
        }
    }

    /// The standby takes over: the old primary closes without invalidating books, held frames are
    /// routed (and recorded) under the same connection id.
    pub(super) fn switch_to_standby(&mut self, idx: usize, now: u64) {
        let Some(mut sb) = self.conns[idx].standby.take() else {
            return;
        };
        if sb
            .client
            .reregister(self.poll.registry(), Token(idx * 2))
            .is_err()
        {
            self.stats.rotations_abandoned += 1;
            sb.client.close(self.poll.registry());
            return;
        }
        let old = std::mem::replace(&mut self.conns[idx].state, St::Open(sb.client));
        if let St::Open(c) | St::Connecting(c) = old {
            c.close(self.poll.registry());
        }
        let conn_id = self.conns[idx].conn.id;
        if let Some(r) = self.rec.as_mut() {
            r.connect(now, &self.conns[idx].conn);
        }
        for (recv_ns, text, payload) in &sb.held {
            let kind = if *text {
                RecordKind::WsText
            } else {
                RecordKind::WsBinary
            };
            if let Some(r) = self.rec.as_mut() {
                r.push(*recv_ns, conn_id, kind, payload);
            }
            self.router.route(
                &Record {
                    recv_ns: *recv_ns,
                    conn_id,
                    kind,
                    payload,
                },
                &mut self.out,
            );
            self.stats.frames += 1;
            self.stats.venue_frames[venue_index(self.conns[idx].plan.venue)] += 1;
        }
        let m = &mut self.conns[idx];
        m.opened_ns = now;
        m.last_rx_ns = now;
        self.stats.rotations += 1;
    }
}
