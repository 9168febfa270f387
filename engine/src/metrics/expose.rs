//! The Prometheus text exposition format (0.0.4) of the metric blocks: `# HELP` / `# TYPE` once
//! per family, samples grouped by family, histograms as `_bucket{le}`, `_sum`, `_count` in seconds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{
    Counter, FeedMetrics, GatewayMetrics, LatencyHistogram, StrategyMetrics, EXEC_KIND_NAMES,
    LATENCY_BOUNDS_NS, VENUES,
};
use crate::event::Venue;

/// Renders the Prometheus text exposition format (version 0.0.4).
#[derive(Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    /// `# HELP` and `# TYPE` lines; call once per metric name, before its samples.
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = if v.is_nan() {
            writeln!(self.out, " NaN")
        } else if v.is_infinite() {
            writeln!(self.out, " {}", if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            writeln!(self.out, " {v}")
        };
    }

    /// A whole metric with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.header(name, kind, help);
        self.sample(name, &[], v);
    }

    /// A histogram's `_bucket`, `_sum` and `_count` series (seconds), under `labels`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &LatencyHistogram) {
        let (cum, sum_ns, count) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (i, c) in cum.iter().enumerate() {
            let le = match LATENCY_BOUNDS_NS.get(i) {
                Some(b) => format!("{}", *b as f64 / 1e9),
                None => "+Inf".to_string(),
            };
            let mut l: Vec<(&str, &str)> = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *c as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum_ns as f64 / 1e9);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The feed threads' metrics, all venues (each feed block contributes its venues' series).
pub fn render_feeds(e: &mut Exposition, feeds: &[Arc<FeedMetrics>]) {
    type Pick = fn(&FeedMetrics) -> &[Counter; 2];
    let per_venue: [(&str, &str, Pick); 5] = [
        (
            "qalpha_frames_total",
            "WebSocket frames received from the venue.",
            |f| &f.frames,
        ),
        (
            "qalpha_book_resyncs_total",
            "Order books resynchronised (snapshot + diffs) after going stale.",
            |f| &f.resyncs,
        ),
        (
            "qalpha_book_gaps_total",
            "Sequence gaps detected in the venue's book diffs.",
            |f| &f.gaps,
        ),
        (
            "qalpha_malformed_frames_total",
            "Frames that could not be decoded (malformed or truncated), counted and skipped.",
            |f| &f.malformed,
        ),
        (
            "qalpha_ring_drops_total",
            "Market events dropped because the ring to the strategy was full.",
            |f| &f.ring_drops,
        ),
    ];
    for (name, help, pick) in per_venue {
        e.header(name, "counter", help);
        for (i, v) in VENUES.iter().enumerate() {
            let total: u64 = feeds.iter().map(|f| pick(f)[i].get()).sum();
            e.sample(name, &[("venue", v.name())], total as f64);
        }
    }
    let sum = |pick: fn(&FeedMetrics) -> u64| feeds.iter().map(|f| pick(f)).sum::<u64>() as f64;
    e.single(
        "qalpha_feed_connects_total",
        "counter",
        "Market data connection attempts (first connections included; see connect_failures).",
        sum(|f| f.connects.get()),
    );
    e.single(
        "qalpha_feed_disconnects_total",
        "counter",
        "Market data connections lost or closed.",
        sum(|f| f.disconnects.get()),
    );
    e.single(
        "qalpha_feed_connect_failures_total",
        "counter",
        "Market data connections lost before they opened (TCP, TLS or WebSocket handshake).",
        sum(|f| f.connect_failures.get()),
    );
    e.single(
        "qalpha_feed_connections_open",
        "gauge",
        "Market data connections open now.",
        feeds.iter().map(|f| f.connections_open.get()).sum::<i64>() as f64,
    );
    e.single(
        "qalpha_snapshot_failures_total",
        "counter",
        "REST depth snapshots that failed.",
        sum(|f| f.snapshot_failures.get()),
    );
}

/// The gateways' metrics.
pub fn render_gateways(e: &mut Exposition, gws: &[Arc<GatewayMetrics>]) {
    e.header(
        "qalpha_orders_total",
        "counter",
        "Orders by outcome: sent to the venue, then the venue's answers (acked, filled, partial, canceled, rejected, expired, amended).",
    );
    for g in gws {
        let v = g.venue.name();
        e.sample(
            "qalpha_orders_total",
            &[("venue", v), ("status", "sent")],
            g.sent.get() as f64,
        );
        for (i, s) in EXEC_KIND_NAMES.iter().enumerate() {
            e.sample(
                "qalpha_orders_total",
                &[("venue", v), ("status", s)],
                g.reports[i].get() as f64,
            );
        }
    }
    e.header(
        "qalpha_tick_to_order_seconds",
        "histogram",
        "Market data receive time to the order's bytes on the wire.",
    );
    for g in gws {
        e.histogram(
            "qalpha_tick_to_order_seconds",
            &[("venue", g.venue.name())],
            &g.tick_to_order,
        );
    }
    e.header(
        "qalpha_tick_to_answer_seconds",
        "histogram",
        "Market data receive time to the venue's answer to the order.",
    );
    for g in gws {
        e.histogram(
            "qalpha_tick_to_answer_seconds",
            &[("venue", g.venue.name())],
            &g.tick_to_answer,
        );
    }
    type Pick = fn(&GatewayMetrics) -> f64;
    let rows: [(&str, &str, &str, Pick); 8] = [
        (
            "qalpha_cancels_sent_total",
            "counter",
            "Cancel requests sent.",
            |g| g.cancels_sent.get() as f64,
        ),
        (
            "qalpha_order_ws_reconnects_total",
            "counter",
            "Reconnects of the order WebSocket and the private stream.",
            |g| g.ws_reconnects.get() as f64,
        ),
        (
            "qalpha_rest_fallbacks_total",
            "counter",
            "Orders sent over REST because the WebSocket was not ready.",
            |g| g.rest_fallbacks.get() as f64,
        ),
        (
            "qalpha_transport_errors_total",
            "counter",
            "Transport errors talking to the venue.",
            |g| g.transport_errors.get() as f64,
        ),
        (
            "qalpha_venue_errors_total",
            "counter",
            "Errors the venue answered.",
            |g| g.venue_errors.get() as f64,
        ),
        (
            "qalpha_throttled_total",
            "counter",
            "Requests held back by the client-side rate limits.",
            |g| g.throttled.get() as f64,
        ),
        (
            "qalpha_orders_pending",
            "gauge",
            "Requests awaiting the venue's answer.",
            |g| g.pending.get() as f64,
        ),
        (
            "qalpha_gateway_halted",
            "gauge",
            "1 while the gateway refuses new orders (credentials, ban).",
            |g| g.halted.get() as f64,
        ),
    ];
    for (name, kind, help, pick) in rows {
        e.header(name, kind, help);
        for g in gws {
            e.sample(name, &[("venue", g.venue.name())], pick(g));
        }
    }
}

/// The strategy thread's metrics for one market.
/// The ring levels are here too (one metric family: the md ring is the strategy's, the order
/// rings the gateways').
pub fn render_strategy(
    e: &mut Exposition,
    s: &StrategyMetrics,
    venue: Venue,
    symbol: &str,
    gws: &[Arc<GatewayMetrics>],
) {
    let l = [("venue", venue.name()), ("symbol", symbol)];
    e.header(
        "qalpha_ring_level",
        "gauge",
        "Entries waiting in an SPSC ring (ring=md: feed to strategy; ring=orders: strategy to gateway).",
    );
    e.sample(
        "qalpha_ring_level",
        &[("ring", "md"), ("venue", venue.name())],
        s.md_ring_level.get() as f64,
    );
    for g in gws {
        e.sample(
            "qalpha_ring_level",
            &[("ring", "orders"), ("venue", g.venue.name())],
            g.cmd_ring_level.get() as f64,
        );
    }
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    e.single(
        "qalpha_events_total",
        "counter",
        "Market events the strategy thread processed.",
        ld(&s.events),
    );
    e.single(
        "qalpha_intents_total",
        "counter",
        "Intents the strategy returned.",
        ld(&s.intents),
    );
    e.single(
        "qalpha_risk_rejects_total",
        "counter",
        "New orders the risk engine refused (never sent).",
        ld(&s.risk_rejects),
    );
    e.header(
        "qalpha_position",
        "gauge",
        "Signed position, base units (risk ledger).",
    );
    e.sample(
        "qalpha_position",
        &l,
        s.position.load(Ordering::Relaxed) as f64 / 1e8,
    );
    e.single(
        "qalpha_pnl_usd",
        "gauge",
        "Net PnL (realised + unrealised at mid − fees), quote currency (USDT).",
        s.pnl.get(),
    );
    e.header(
        "qalpha_risk_state",
        "gauge",
        "Risk state: 0 active, 1 reducing (only orders that cut exposure), 2 halted.",
    );
    e.sample("qalpha_risk_state", &[], s.risk_state.get() as f64);
    e.single(
        "qalpha_open_orders",
        "gauge",
        "Orders open at the venue (sent, not final).",
        s.open_orders.get() as f64,
    );
    e.header(
        "qalpha_model_output",
        "gauge",
        "The Trinity's latest outputs: output=forecast (Oracle median return), action (Strategist), regime (Guardian). NaN without a model.",
    );
    for (name, g) in [
        ("forecast", &s.model_forecast),
        ("action", &s.model_action),
        ("regime", &s.model_regime),
    ] {
        e.sample("qalpha_model_output", &[("output", name)], g.get());
    }
}

/// Thread heartbeats, `thread` → beats.
pub fn render_heartbeats(e: &mut Exposition, beats: &[(&str, u64)]) {
    e.header(
        "qalpha_thread_heartbeats_total",
        "counter",
        "Engine thread heartbeats (a series that stops increasing is a stuck thread).",
    );
    for (t, b) in beats {
        e.sample(
            "qalpha_thread_heartbeats_total",
            &[("thread", t)],
            *b as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::ExecKind;

    #[test]
    fn exposition_text_format() {
        let mut e = Exposition::default();
        e.header("x_total", "counter", "An x.");
        e.sample("x_total", &[("venue", "a\"b")], 3.0);
        e.sample("x_total", &[], f64::NAN);
        let h = LatencyHistogram::default();
        h.record(2_000);
        e.histogram("lat_seconds", &[("venue", "v")], &h);
        let t = e.finish();
        assert!(t.starts_with("# HELP x_total An x.\n# TYPE x_total counter\n"));
        assert!(t.contains("x_total{venue=\"a\\\"b\"} 3\n"));
        assert!(t.contains("x_total NaN\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"0.000001\"} 0\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"0.0000025\"} 1\n"));
        assert!(t.contains("lat_seconds_bucket{venue=\"v\",le=\"+Inf\"} 1\n"));
        assert!(t.contains("lat_seconds_sum{venue=\"v\"} 0.000002\n"));
        assert!(t.contains("lat_seconds_count{venue=\"v\"} 1\n"));
    }

    #[test]
    fn per_venue_series_and_orders_by_status() {
        let f = std::sync::Arc::new(FeedMetrics::default());
        f.frames_of(Venue::BybitLinear).add(7);
        f.frames_of(Venue::BinanceUsdm).add(2);
        let g = std::sync::Arc::new(GatewayMetrics::new(Venue::BinanceUsdm));
        g.sent.add(3);
        g.on_report(ExecKind::Fill);
        g.on_report(ExecKind::Rejected);
        g.on_report(ExecKind::Rejected);
        let mut e = Exposition::default();
        render_feeds(&mut e, &[f]);
        render_gateways(&mut e, &[g]);
        let t = e.finish();
        let bn = Venue::BinanceUsdm.name();
        let by = Venue::BybitLinear.name();
        assert!(t.contains(&format!("qalpha_frames_total{{venue=\"{by}\"}} 7\n")));
        assert!(t.contains(&format!("qalpha_frames_total{{venue=\"{bn}\"}} 2\n")));
        assert!(t.contains(&format!(
            "qalpha_orders_total{{venue=\"{bn}\",status=\"rejected\"}} 2\n"
        )));
        assert!(t.contains(&format!(
            "qalpha_orders_total{{venue=\"{bn}\",status=\"sent\"}} 3\n"
        )));
        // Every sample's metric has its # TYPE line once.
        let types: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut dedup = types.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(types.len(), dedup.len(), "duplicate TYPE lines");
    }
}
