//! A gateway WebSocket connection that comes back by itself: connect (non-blocking, on the gateway
//! thread's `mio` poll), collect frames into a reused buffer, fail, and reconnect with exponential
//! backoff (100 ms doubling to 5 s, reset once a connection is ready).

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};
use qalpha_engine::transport::url::Endpoint;
use qalpha_engine::transport::ws::{Progress, WsClient};
use qalpha_engine::transport::TransportError;
use rustls::ClientConfig;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Frames received in one drive: payload bytes back to back, with (recv_ns, start, end) spans, so
/// reading allocates nothing once warm.
#[derive(Default)]
pub struct FrameBuf {
    bytes: Vec<u8>,
    spans: Vec<(u64, usize, usize)>,
}

impl FrameBuf {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Frame `i`: (recv_ns, payload).
    pub fn get(&self, i: usize) -> (u64, &[u8]) {
        let (t, a, b) = self.spans[i];
        (t, &self.bytes[a..b])
    }
}

/// One reconnecting WebSocket.
pub struct Conn {
    pub name: &'static str,
    token: Token,
    ws: Option<WsClient>,
    /// Usable for requests: open, and (Bybit) authenticated and subscribed — the session decides.
    pub ready: bool,
    next_attempt: Instant,
    backoff: Duration,
    /// Connections opened (the first one included).
    pub opened: u64,
    pub last_ping: Instant,
    /// When the current connection attempt started (for the handshake deadline).
    pub started: Instant,
}

impl Conn {
    pub fn new(name: &'static str, token: Token) -> Self {
        let now = Instant::now();
        Self {
            name,
            token,
            ws: None,
            ready: false,
            next_attempt: now,
            backoff: BACKOFF_MIN,
            opened: 0,
            last_ping: now,
            started: now,
        }
    }

    pub fn token(&self) -> Token {
        self.token
    }

    /// A connection exists (connecting, handshaking or open).
    pub fn is_up(&self) -> bool {
        self.ws.is_some()
    }

    /// Time for a reconnect attempt.
    pub fn due(&self, now: Instant) -> bool {
        self.ws.is_none() && now >= self.next_attempt
    }

    /// Starts connecting to `url` (DNS is resolved here: cold path); nothing if a connection is
    /// already up.
    pub fn start(
        &mut self,
        url: &str,
        tls: Option<&Arc<ClientConfig>>,
        registry: &Registry,
    ) -> Result<(), TransportError> {
        if self.ws.is_some() {
            return Ok(());
        }
        let ep = Endpoint::parse(url)?;
        let addr = (ep.host.as_str(), ep.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| TransportError::Connect {
                addr: ep.authority(),
                source: std::io::Error::other("host did not resolve"),
            })?;
        let ws = WsClient::connect(addr, ep, tls.cloned(), registry, self.token);
        match ws {
            Ok(ws) => {
                self.ws = Some(ws);
                self.started = Instant::now();
                Ok(())
            }
            Err(e) => {
                self.schedule_retry();
                Err(e)
            }
        }
    }

    /// Drives the connection, appending data frames to `buf`.
    pub fn drive(&mut self, buf: &mut FrameBuf) -> Result<Progress, TransportError> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(Progress::Pending);
        };
        let p = ws.drive(&mut |t, _text, payload| {
            let a = buf.bytes.len();
            buf.bytes.extend_from_slice(payload);
            buf.spans.push((t, a, buf.bytes.len()));
        })?;
        if p == Progress::Opened {
            self.opened += 1;
            self.last_ping = Instant::now();
        }
        Ok(p)
    }

    pub fn send(&mut self, text: &str) -> Result<(), TransportError> {
        match self.ws.as_mut() {
            Some(ws) => ws.send_text(text),
            None => Err(TransportError::Closed {
                url: self.name.into(),
                why: "not connected".into(),
            }),
        }
    }

    /// Marks the connection ready and resets the backoff.
    pub fn set_ready(&mut self) {
        self.ready = true;
        self.backoff = BACKOFF_MIN;
    }

    /// Drops the connection and schedules the next attempt.
    pub fn fail(&mut self, registry: &Registry) {
        if let Some(ws) = self.ws.take() {
            ws.close(registry);
        }
        self.ready = false;
        self.schedule_retry();
    }

    fn schedule_retry(&mut self) {
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}
