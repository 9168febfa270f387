//! The feed runner's requests that keep books syncable: REST snapshots (Binance), resubscribes
//! (Bybit), and operator/strategy commands (live `SUBSCRIBE`).

use qalpha_engine::event::Venue;
use qalpha_engine::Symbol;

use super::{FeedCommand, FeedRunner, St, MS};
use crate::binance::sync::SyncState;
use crate::live::cold::ColdRequest;
use crate::transport::url::Endpoint;

impl FeedRunner {
    pub(super) fn on_command(&mut self, cmd: FeedCommand, now: u64) {
        match cmd {
            FeedCommand::SubscribeBinance(streams) => {
                for stream in streams {
                    let stream = stream.to_string();
                    let Some((sym, suffix)) = stream.split_once('@') else {
                        self.stats.last_error =
                            Some(format!("SUBSCRIBE {stream:?}: not a stream name"));
                        continue;
                    };
                    let route = crate::live::plan::binance_route(suffix);
                    let symbol = Symbol::parse(sym);
                    let Some(m) = self.conns.iter_mut().find(|m| {
                        m.plan.venue == Venue::BinanceUsdm
                            && m.plan.url.contains(&format!("/{route}/stream"))
                    }) else {
                        self.stats.last_error = Some(format!(
                            "SUBSCRIBE {stream}: no /{route} connection in the plan"
                        ));
                        continue;
                    };
                    if suffix.starts_with("depth")
                        && !symbol.is_some_and(|s| m.plan.book_symbols.contains(&s))
                    {
                        self.stats.last_error = Some(format!("SUBSCRIBE {stream}: depth for a symbol not in the config needs a snapshot slot; add it to the config"));
                        continue;
                    }
                    if m.plan.url.contains(&format!("={stream}"))
                        || m.plan.url.contains(&format!("/{stream}"))
                    {
                        continue;
                    }
                    let url = format!("{}/{stream}", m.plan.url);
                    if let Ok(ep) = Endpoint::parse(&url) {
                        m.plan.url = url.clone();
                        m.endpoint = ep;
                        m.conn.url = url;
                        if let Some(r) = self.rec.as_mut() {
                            r.connect(now, &m.conn);
                        }
                    }
                    if let St::Open(c) = &mut m.state {
                        let id = self.next_request_id;
                        self.next_request_id += 1;
                        let msg = format!(
                            "{{\"method\":\"SUBSCRIBE\",\"params\":[\"{stream}\"],\"id\":{id}}}"
                        );
                        if let Err(e) = c.send_text(&msg) {
                            self.stats.last_error = Some(e.to_string());
                        }
                    }
                    self.stats.live_subscriptions += 1;
                }
            }
        }
    }

    /// A Bybit book with a `u` gap needs a fresh snapshot, and the only way to get one is to
    /// resubscribe its topic (Bybit has no REST bridging for the stream).
    pub(super) fn resubscribe_bybit(&mut self, now: u64) {
        if now.saturating_sub(self.last_resubscribe_ns) < self.opts.snapshot_retry.as_nanos() as u64
        {
            return;
        }
        let pending: Vec<String> = self
            .router
            .bybit
            .pending_resubscribes()
            .iter()
            .map(|t| format!("orderbook.{}.{}", t.depth, t.symbol))
            .collect();
        if pending.is_empty() {
            return;
        }
        self.last_resubscribe_ns = now;
        let args = pending
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut self.conns {
            if m.plan.venue != Venue::BybitLinear {
                continue;
            }
            if let St::Open(c) = &mut m.state {
                let unsub = format!(
                    "{{\"op\":\"unsubscribe\",\"args\":[{args}],\"req_id\":\"qa-resync\"}}"
                );
                let sub =
                    format!("{{\"op\":\"subscribe\",\"args\":[{args}],\"req_id\":\"qa-resync\"}}");
                let _ = c.send_text(&unsub).and_then(|()| c.send_text(&sub));
                self.stats.snapshot_requests += 1;
            }
        }
    }

    /// Asks the cold path for a REST snapshot for every book that is buffering diffs on an open
    /// connection and has no request in flight (rate-limited per symbol and by the weight budget).
    pub(super) fn request_snapshots(&mut self, now: u64) {
        if now.saturating_sub(self.weight.0) > 60_000 * MS {
            self.weight = (now, 0);
        }
        let retry = self.opts.snapshot_retry.as_nanos() as u64;
        for (tag, slot) in self.snaps.iter_mut().enumerate() {
            if slot.in_flight
                && now.saturating_sub(slot.last_request_ns)
                    < 2 * self.opts.rest_timeout.as_nanos() as u64
            {
                continue;
            }
            let needs =
                self.router.binance.book(slot.symbol).is_some_and(|b| {
                    b.state() == SyncState::AwaitingSnapshot && b.buffered_len() > 0
                });
            let carrier_open = self.conns.iter().any(|m| {
                matches!(m.state, St::Open(_))
                    && m.plan.venue == Venue::BinanceUsdm
                    && m.plan.book_symbols.contains(&slot.symbol)
            });
            if !needs || !carrier_open || now.saturating_sub(slot.last_request_ns) < retry {
                continue;
            }
            if self.weight.1 + 20 > self.opts.weight_budget {
                continue;
            }
            self.weight.1 += 20;
            slot.in_flight = true;
            slot.last_request_ns = now;
            self.stats.snapshot_requests += 1;
            let _ = self.cold.tx.send(ColdRequest::Get {
                tag,
                url: slot.url.clone(),
                tls: slot.tls.clone(),
            });
        }
    }
}
