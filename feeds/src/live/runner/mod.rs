//! The live feed thread: connections kept open, frames decoded into books, every frame recorded.
//!
//! One `mio::Poll` serves all of the thread's connections (several venues at once). With `spin` the
//! loop polls with a zero timeout and never sleeps; `yield` polls with a zero timeout and yields when
//! idle; `park` waits up to 1 ms in epoll. Everything slow — DNS, REST snapshots, disk — is on other
//! threads. Timers (reconnect backoff, pings, liveness, snapshot requests) are checked once per
//! millisecond, not per frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token};
use qalpha_engine::capture::{Connection, Record, RecordKind};
use qalpha_engine::event::{MarketEvent, Venue};
use qalpha_engine::metrics::{venue_index, FeedMetrics};
use qalpha_engine::ring::Producer;
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::Symbol;
use rustls::ClientConfig;

mod requests;
mod rotation;

use super::cold::{ColdPath, ColdReply, ColdRequest};
use super::plan::{ConnPlan, VenuePlan};
use super::recorder::RecorderTx;
use super::rotation::Standby;
use crate::replay::VenueRouter;
use crate::transport::url::Endpoint;
use crate::transport::ws::{Progress, WsClient};
use crate::transport::{tls, TransportError};

/// Live feed settings.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub wait: WaitMode,
    /// Reconnect when a connection has received nothing for this long.
    pub liveness_timeout: Duration,
    /// Bybit app-level ping interval (the venue recommends 20 s).
    pub app_ping_interval: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub rest_timeout: Duration,
    /// Least time between two snapshot requests for one symbol.
    pub snapshot_retry: Duration,
    /// REST weight budget per minute (Binance: 2400 per IP; keep headroom).
    pub weight_budget: u32,
    pub seed: u64,
    /// Open a replacement Binance connection this long after a connection opened (Binance cuts
    /// connections at 24 h), switching without a gap.
    pub rotate_after: Option<Duration>,
    /// Where the thread publishes its counters for the monitor (`/metrics`) and its heartbeat for
    /// the supervisor (every millisecond of its loop).
    pub metrics: Option<Arc<FeedMetrics>>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            wait: WaitMode::Yield,
            liveness_timeout: Duration::from_secs(30),
            app_ping_interval: Duration::from_secs(20),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            rest_timeout: Duration::from_secs(10),
            snapshot_retry: Duration::from_millis(500),
            weight_budget: 2000,
            seed: 0x5EED,
            rotate_after: Some(Duration::from_secs(23 * 3600)),
            metrics: None,
        }
    }
}

/// What the feed thread counted.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub connects: u64,
    pub opened: u64,
    pub disconnects: u64,
    /// Connections lost before they opened (TCP, TLS or WebSocket handshake failed).
    pub connect_failures: u64,
    pub liveness_timeouts: u64,
    pub frames: u64,
    pub snapshot_requests: u64,
    pub snapshot_failures: u64,
    /// REST weight the venue reported as used this minute (last seen).
    pub rest_weight_used: u32,
    pub last_error: Option<String>,
    /// Planned connection rotations completed without a gap.
    pub rotations: u64,
    /// Streams added with a live `SUBSCRIBE`.
    pub live_subscriptions: u64,
    /// Standby connections given up (did not catch up in time or failed).
    pub rotations_abandoned: u64,
    /// Frames by venue (`metrics::venue_index`).
    pub venue_frames: [u64; 2],
}

enum St {
    Idle { retry_at_ns: u64 },
    Resolving,
    Connecting(WsClient),
    Open(WsClient),
}

struct Managed {
    plan: ConnPlan,
    conn: Connection,
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    state: St,
    attempts: u32,
    last_rx_ns: u64,
    last_ping_ns: u64,
    got_frame: bool,
    opened_ns: u64,
    addr: Option<std::net::SocketAddr>,
    standby: Option<Box<Standby>>,
}

struct SnapshotSlot {
    symbol: Symbol,
    conn_id: u16,
    url: String,
    tls: Option<Arc<ClientConfig>>,
    in_flight: bool,
    last_request_ns: u64,
}

/// One feed thread's connections, books and recorder feed.
pub struct FeedRunner {
    poll: Poll,
    events: Events,
    conns: Vec<Managed>,
    snaps: Vec<SnapshotSlot>,
    pub router: VenueRouter,
    out: Producer<MarketEvent>,
    rec: Option<RecorderTx>,
    cold: ColdPath,
    opts: LiveOptions,
    stats: LiveStats,
    rng: u64,
    weight: (u64, u32),
    last_resubscribe_ns: u64,
    commands: Option<crossbeam::channel::Receiver<FeedCommand>>,
    next_request_id: u64,
}

/// Commands to a running feed thread, from the cold side (control API, strategy set-up).
#[derive(Clone, Debug)]
pub enum FeedCommand {
    /// Add Binance streams (full names, `btcusdt@aggTrade`) with a live `SUBSCRIBE` on the
    /// connection of each stream's route; they are also added to that connection's URL so a
    /// reconnect keeps them. Depth streams are accepted only for symbols the plan already books.
    SubscribeBinance(Vec<String>),
}

const MS: u64 = 1_000_000;

impl FeedRunner {
    /// Builds the runner for `plans` (connection ids are assigned in order, WebSocket first per venue,
    /// then that venue's REST snapshot URLs). Returns the runner and the connection table (for the
    /// recorder's header).
    pub fn new(
        plans: &[VenuePlan],
        opts: LiveOptions,
        out: Producer<MarketEvent>,
        rec: Option<RecorderTx>,
    ) -> Result<Self, TransportError> {
        Self::new_with_offset(plans, 0, opts, out, rec)
    }

    /// As [`new`](Self::new), numbering connections from `first_id` (several feed threads share
    /// one recording, each with its own id range).
    pub fn new_with_offset(
        plans: &[VenuePlan],
        first_id: u16,
        opts: LiveOptions,
        out: Producer<MarketEvent>,
        rec: Option<RecorderTx>,
    ) -> Result<Self, TransportError> {
        let mut conns = Vec::new();
        let mut snaps = Vec::new();
        let mut router = VenueRouter::new();
        let mut next_id = first_id;
        for vp in plans {
            let tls = Some(tls::client_config(vp.ca_file.as_deref())?);
            let table = vp.connections(next_id);
            for (i, c) in vp.conns.iter().enumerate() {
                let conn = table[i].clone();
                router.learn(&conn);
                conns.push(Managed {
                    endpoint: Endpoint::parse(&c.url)?,
                    plan: c.clone(),
                    conn,
                    tls: tls.clone(),
                    state: St::Idle { retry_at_ns: 0 },
                    attempts: 0,
                    last_rx_ns: 0,
                    last_ping_ns: 0,
                    got_frame: false,
                    opened_ns: 0,
                    addr: None,
                    standby: None,
                });
            }
            for (j, (sym, url)) in vp.snapshots.iter().enumerate() {
                let conn = table[vp.conns.len() + j].clone();
                router.learn(&conn);
                snaps.push(SnapshotSlot {
                    symbol: *sym,
                    conn_id: conn.id,
                    url: url.clone(),
                    tls: tls.clone(),
                    in_flight: false,
                    last_request_ns: 0,
                });
            }
            next_id += table.len() as u16;
        }
        let poll = Poll::new().map_err(|e| TransportError::Connect {
            addr: "epoll".into(),
            source: e,
        })?;
        let cold = ColdPath::start(opts.rest_timeout).map_err(|e| TransportError::Connect {
            addr: "cold-path thread".into(),
            source: e,
        })?;
        let rng = opts.seed | 1;
        Ok(Self {
            poll,
            events: Events::with_capacity(256),
            conns,
            snaps,
            router,
            out,
            rec,
            cold,
            opts,
            stats: LiveStats::default(),
            rng,
            weight: (0, 0),
            last_resubscribe_ns: 0,
            commands: None,
            next_request_id: 1,
        })
    }

    /// The connection table of `plans` as this runner numbers it.
    pub fn connection_table(plans: &[VenuePlan]) -> Vec<Connection> {
        let mut out = Vec::new();
        let mut next = 0u16;
        for vp in plans {
            let t = vp.connections(next);
            next += t.len() as u16;
            out.extend(t);
        }
        out
    }

    /// A sender for [`FeedCommand`]s to this runner (checked once per millisecond).
    pub fn command_sender(&mut self) -> crossbeam::channel::Sender<FeedCommand> {
        let (tx, rx) = crossbeam::channel::unbounded();
        self.commands = Some(rx);
        tx
    }

    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }

    /// Runs until `stop` is set, then closes every connection (recording why).
    pub fn run(&mut self, stop: &AtomicBool) {
        let timeout = match self.opts.wait {
            WaitMode::Spin | WaitMode::Yield => Some(Duration::ZERO),
            WaitMode::Park => Some(Duration::from_millis(1)),
        };
        let mut last_tick = 0u64;
        let mut spins = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll.poll(&mut self.events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.stats.last_error = Some(format!("poll: {e}"));
                }
            }
            // Tokens: 2·i for connection i, 2·i + 1 for its standby during a rotation. The event
            // list is moved out while connections are driven (an empty `Events` does not allocate).
            let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
            let mut n = 0usize;
            for ev in events.iter() {
                n += 1;
                let t = ev.token().0;
                if t % 2 == 0 {
                    self.drive(t / 2);
                } else {
                    self.drive_standby(t / 2);
                }
            }
            self.events = events;
            if n == 0 {
                if self.opts.wait != WaitMode::Park {
                    self.opts.wait.idle(&mut spins);
                }
            } else {
                spins = 0;
            }
            while let Ok(reply) = self.cold.rx.try_recv() {
                self.on_cold(reply);
            }
            let now = qalpha_engine::clock::now_ns();
            if now >= last_tick + MS {
                last_tick = now;
                self.housekeep(now);
            }
        }
        let now = qalpha_engine::clock::now_ns();
        for i in 0..self.conns.len() {
            self.drop_conn(i, now, "shutdown", false);
        }
        self.router.binance.finish();
    }

    fn drive(&mut self, idx: usize) {
        let Self {
            conns,
            router,
            out,
            rec,
            stats,
            ..
        } = self;
        let Some(m) = conns.get_mut(idx) else { return };
        let conn_id = m.conn.id;
        let vi = venue_index(m.plan.venue);
        let mut last_rx = 0u64;
        let mut on_frame = |recv_ns: u64, text: bool, payload: &[u8]| {
            let kind = if text {
                RecordKind::WsText
            } else {
                RecordKind::WsBinary
            };
            if let Some(r) = rec.as_mut() {
                r.push(recv_ns, conn_id, kind, payload);
            }
            router.route(
                &Record {
                    recv_ns,
                    conn_id,
                    kind,
                    payload,
                },
                out,
            );
            stats.frames += 1;
            stats.venue_frames[vi] += 1;
            last_rx = recv_ns;
        };
        let res = match &mut m.state {
            St::Connecting(c) | St::Open(c) => c.drive(&mut on_frame),
            _ => return,
        };
        if last_rx != 0 {
            m.last_rx_ns = last_rx;
            if !m.got_frame {
                m.got_frame = true;
                m.attempts = 0;
            }
        }
        match res {
            Ok(Progress::Opened) => {
                if let St::Connecting(c) = std::mem::replace(&mut m.state, St::Resolving) {
                    m.state = St::Open(c);
                }
                stats.opened += 1;
                let now = qalpha_engine::clock::now_ns();
                m.opened_ns = now;
                m.last_rx_ns = m.last_rx_ns.max(now);
                m.last_ping_ns = now;
                if let St::Open(c) = &mut m.state {
                    for msg in &m.plan.subscribe {
                        if let Err(e) = c.send_text(msg) {
                            stats.last_error = Some(e.to_string());
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = e.to_string();
                tracing::warn!("{why}");
                stats.last_error = Some(why.clone());
                let now = qalpha_engine::clock::now_ns();
                self.drop_conn(idx, now, &why, true);
            }
        }
    }

    fn backoff_ns(&mut self, attempts: u32) -> u64 {
        let base = self.opts.backoff_min.as_nanos() as u64;
        let cap = self.opts.backoff_max.as_nanos() as u64;
        let exp = base.saturating_mul(1u64 << attempts.min(16)).min(cap);
        // ±25 % jitter so many clients (or connections) do not reconnect in lockstep.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let j = (self.rng % 1000) as f64 / 1000.0;
        (exp as f64 * (0.75 + 0.5 * j)) as u64
    }

    /// Closes a connection, records why, marks its books stale, and schedules a reconnect.
    fn drop_conn(&mut self, idx: usize, now: u64, why: &str, reconnect: bool) {
        if let Some(sb) = self.conns[idx].standby.take() {
            sb.client.close(self.poll.registry());
        }
        let state = std::mem::replace(&mut self.conns[idx].state, St::Resolving);
        let was_live = match state {
            St::Connecting(c) => {
                c.close(self.poll.registry());
                self.stats.connect_failures += 1;
                true
            }
            St::Open(c) => {
                c.close(self.poll.registry());
                true
            }
            _ => false,
        };
        let conn_id = self.conns[idx].conn.id;
        if was_live {
            self.stats.disconnects += 1;
            if let Some(r) = self.rec.as_mut() {
                r.push(now, conn_id, RecordKind::Disconnect, why.as_bytes());
            }
            self.router.route(
                &Record {
                    recv_ns: now,
                    conn_id,
                    kind: RecordKind::Disconnect,
                    payload: why.as_bytes(),
                },
                &mut self.out,
            );
        }
        let attempts = self.conns[idx].attempts;
        let delay = if reconnect {
            self.backoff_ns(attempts)
        } else {
            u64::MAX / 2
        };
        let m = &mut self.conns[idx];
        m.attempts = attempts.saturating_add(1);
        m.got_frame = false;
        m.state = St::Idle {
            retry_at_ns: now.saturating_add(delay),
        };
    }

    fn on_cold(&mut self, reply: ColdReply) {
        match reply {
            ColdReply::Resolved { conn, addr } => {
                let now = qalpha_engine::clock::now_ns();
                let Some(m) = self.conns.get_mut(conn) else {
                    return;
                };
                if !matches!(m.state, St::Resolving) {
                    return;
                }
                if let Ok(a) = &addr {
                    m.addr = Some(*a);
                }
                let started = addr.and_then(|a| {
                    WsClient::connect(
                        a,
                        m.endpoint.clone(),
                        m.tls.clone(),
                        self.poll.registry(),
                        Token(conn * 2),
                    )
                });
                match started {
                    Ok(c) => {
                        m.state = St::Connecting(c);
                        m.last_rx_ns = now;
                        self.stats.connects += 1;
                        if let Some(r) = self.rec.as_mut() {
                            r.connect(now, &m.conn);
                        }
                    }
                    Err(e) => {
                        self.stats.last_error = Some(e.to_string());
                        tracing::warn!("{e}");
                        let delay = self.backoff_ns(self.conns[conn].attempts);
                        let m = &mut self.conns[conn];
                        m.attempts += 1;
                        m.state = St::Idle {
                            retry_at_ns: now + delay,
                        };
                    }
                }
            }
            ColdReply::Got {
                tag,
                recv_ns,
                result,
            } => {
                let Some(slot) = self.snaps.get_mut(tag) else {
                    return;
                };
                slot.in_flight = false;
                match result {
                    Ok(resp) if resp.status == 200 => {
                        if let Some(w) = resp
                            .header("x-mbx-used-weight-1m")
                            .and_then(|v| v.parse().ok())
                        {
                            self.stats.rest_weight_used = w;
                        }
                        let conn_id = slot.conn_id;
                        if let Some(r) = self.rec.as_mut() {
                            r.push(recv_ns, conn_id, RecordKind::RestResponse, &resp.body);
                        }
                        self.router.route(
                            &Record {
                                recv_ns,
                                conn_id,
                                kind: RecordKind::RestResponse,
                                payload: &resp.body,
                            },
                            &mut self.out,
                        );
                    }
                    Ok(resp) => {
                        self.stats.snapshot_failures += 1;
                        let why = format!(
                            "snapshot {}: HTTP {} {}",
                            slot.url,
                            resp.status,
                            String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                        );
                        tracing::warn!("{why}");
                        self.stats.last_error = Some(why);
                    }
                    Err(e) => {
                        self.stats.snapshot_failures += 1;
                        tracing::warn!("{e}");
                        self.stats.last_error = Some(e.to_string());
                    }
                }
            }
        }
    }

    /// Publishes the counters for the monitor and advances the heartbeat (from `housekeep`).
    fn publish_metrics(&self) {
        let Some(m) = &self.opts.metrics else { return };
        m.beats.inc();
        let (bn, by) = (Venue::BinanceUsdm, Venue::BybitLinear);
        m.frames_of(bn)
            .set(self.stats.venue_frames[venue_index(bn)]);
        m.frames_of(by)
            .set(self.stats.venue_frames[venue_index(by)]);
        let (bc, yc) = (self.router.binance.counters(), self.router.bybit.counters());
        m.resyncs_of(bn).set(bc.resyncs);
        m.resyncs_of(by).set(yc.resyncs);
        m.ring_drops_of(bn).set(bc.ring_drops);
        m.ring_drops_of(by).set(yc.ring_drops);
        m.malformed_of(bn).set(bc.decode.malformed);
        m.malformed_of(by).set(yc.decode.malformed);
        m.gaps_of(bn).set(self.router.binance.sync_counters().gaps);
        m.gaps_of(by).set(self.router.bybit.sync_counters().gaps);
        m.connects.set(self.stats.connects);
        m.disconnects.set(self.stats.disconnects);
        m.connect_failures.set(self.stats.connect_failures);
        m.snapshot_failures.set(self.stats.snapshot_failures);
        let open = self
            .conns
            .iter()
            .filter(|c| matches!(c.state, St::Open(_)))
            .count();
        m.connections_open.set(open as i64);
    }

    fn housekeep(&mut self, now: u64) {
        self.publish_metrics();
        while let Some(cmd) = self.commands.as_ref().and_then(|r| r.try_recv().ok()) {
            self.on_command(cmd, now);
        }
        let liveness = self.opts.liveness_timeout.as_nanos() as u64;
        let ping_every = (self.opts.app_ping_interval.as_nanos() as u64).min(liveness / 3);
        for i in 0..self.conns.len() {
            enum Act {
                Resolve,
                Timeout(&'static str),
                Ping,
                None,
            }
            let m = &self.conns[i];
            let silent_for = now.saturating_sub(m.last_rx_ns);
            let act = match &m.state {
                St::Idle { retry_at_ns } if now >= *retry_at_ns => Act::Resolve,
                St::Connecting(_) if silent_for > liveness => {
                    Act::Timeout("connect/handshake timeout")
                }
                St::Open(_) if silent_for > liveness => {
                    Act::Timeout("liveness timeout: nothing received")
                }
                St::Open(_) if now.saturating_sub(m.last_ping_ns) > ping_every => Act::Ping,
                _ => Act::None,
            };
            match act {
                Act::Resolve => {
                    let m = &mut self.conns[i];
                    m.state = St::Resolving;
                    let _ = self.cold.tx.send(ColdRequest::Resolve {
                        conn: i,
                        host: m.endpoint.host.clone(),
                        port: m.endpoint.port,
                    });
                }
                Act::Timeout(why) => {
                    self.stats.liveness_timeouts += 1;
                    self.drop_conn(i, now, why, true);
                }
                Act::Ping => {
                    let m = &mut self.conns[i];
                    m.last_ping_ns = now;
                    let res = match (&mut m.state, &m.plan.app_ping) {
                        (St::Open(c), Some(p)) => c.send_text(p),
                        (St::Open(c), None) => c.send_ping(),
                        _ => Ok(()),
                    };
                    if let Err(e) = res {
                        self.drop_conn(i, now, &e.to_string(), true);
                    }
                }
                Act::None => {}
            }
        }
        self.request_snapshots(now);
        self.resubscribe_bybit(now);
        self.rotate(now);
    }
}
