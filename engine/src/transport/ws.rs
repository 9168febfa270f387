//! One non-blocking WebSocket client connection (plain or TLS) on a `mio` socket.
//!
//! The feed thread owns it and calls [`WsClient::drive`] after every readiness event for its token
//! (and, in spin mode, on every loop). `drive` advances the state machine as far as the socket allows
//! and returns; it never blocks. Data frames are handed to a callback with `recv_ns` stamped right
//! after the read that produced them.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::{Message, WebSocket};

/// The largest WebSocket message (and frame) accepted: the venues' largest are book snapshots of a
/// few hundred KiB; anything over this is a broken or hostile peer, and the connection is dropped
/// (and, for market data, reconnected and resynced) rather than buffering it.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

use super::url::Endpoint;
use super::{describe_io, TransportError};

/// The byte stream under the WebSocket: plain TCP or rustls over TCP.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Io {
    fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => {
                s.flush()?;
                // Push out TLS records rustls still holds.
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                Ok(())
            }
        }
    }
}

enum State {
    Connecting(Option<TcpStream>),
    Handshaking(Option<MidHandshake<ClientHandshake<Io>>>),
    Open(Box<WebSocket<Io>>),
    Closed,
}

/// Where a connection stands after [`WsClient::drive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still connecting or handshaking.
    Pending,
    /// The handshake completed during this call.
    Opened,
    /// Open; frames (if any) were delivered.
    Open,
}

/// A WebSocket client connection driven by readiness events.
pub struct WsClient {
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    token: Token,
    state: State,
}

impl WsClient {
    /// Starts a non-blocking TCP connect to `addr` (already resolved, off the hot path) and registers
    /// the socket with `registry` under `token`. `tls` is required for `wss://`.
    pub fn connect(
        addr: SocketAddr,
        endpoint: Endpoint,
        tls: Option<Arc<ClientConfig>>,
        registry: &Registry,
        token: Token,
    ) -> Result<Self, TransportError> {
        if endpoint.tls && tls.is_none() {
            return Err(TransportError::Tls {
                host: endpoint.host.clone(),
                why: "wss:// needs a TLS client configuration".into(),
            });
        }
        let conn_err = |source| TransportError::Connect {
            addr: format!("{} ({addr})", endpoint.authority()),
            source,
        };
        let mut tcp = TcpStream::connect(addr).map_err(conn_err)?;
        // Register before wrapping (STACK-NOTES gotcha 2); edge-triggered read + write readiness.
        registry
            .register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(conn_err)?;
        Ok(Self {
            endpoint,
            tls,
            token,
            state: State::Connecting(Some(tcp)),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn token(&self) -> Token {
        self.token
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Advances the connection. Each data message is passed to `on_frame(recv_ns, is_text, payload)`.
    /// An `Err` means the connection is finished (closed by the peer, failed, or timed out): drop it.
    pub fn drive(
        &mut self,
        on_frame: &mut impl FnMut(u64, bool, &[u8]),
    ) -> Result<Progress, TransportError> {
        loop {
            match &mut self.state {
                State::Connecting(tcp) => {
                    let Some(sock) = tcp.as_ref() else {
                        return Err(self.closed("lost socket"));
                    };
                    // Connected only when writable with no pending error and a peer address.
                    match sock.take_error() {
                        Ok(Some(e)) | Err(e) => return Err(self.connect_err(e)),
                        Ok(None) => {}
                    }
                    match sock.peer_addr() {
                        Ok(_) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::NotConnected
                                || e.kind() == io::ErrorKind::WouldBlock =>
                        {
                            return Ok(Progress::Pending)
                        }
                        Err(e) => return Err(self.connect_err(e)),
                    }
                    let sock = tcp.take().ok_or_else(|| self.closed("lost socket"))?;
                    sock.set_nodelay(true).ok();
                    let io = self.wrap(sock)?;
                    self.start_handshake(io)?;
                    // The handshake can complete within this call (the 101 was already readable):
                    // report the opening here, or the caller would never see `Opened`.
                    if matches!(self.state, State::Open(_)) {
                        self.read_all(on_frame)?;
                        return Ok(Progress::Opened);
                    }
                }
                State::Handshaking(mid) => {
                    let Some(m) = mid.take() else {
                        return Err(self.closed("lost handshake"));
                    };
                    match m.handshake() {
                        Ok((ws, _resp)) => {
                            self.state = State::Open(Box::new(ws));
                            // Frames may already be buffered behind the 101 response.
                            self.read_all(on_frame)?;
                            return Ok(Progress::Opened);
                        }
                        Err(HandshakeError::Interrupted(m)) => {
                            self.state = State::Handshaking(Some(m));
                            return Ok(Progress::Pending);
                        }
                        Err(HandshakeError::Failure(e)) => return Err(self.handshake_err(e)),
                    }
                }
                State::Open(_) => {
                    self.read_all(on_frame)?;
                    return Ok(Progress::Open);
                }
                State::Closed => return Err(self.closed("connection closed")),
            }
        }
    }

    fn wrap(&self, sock: TcpStream) -> Result<Io, TransportError> {
        match (&self.tls, self.endpoint.tls) {
            (Some(cfg), true) => {
                let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|e| {
                    TransportError::Tls {
                        host: self.endpoint.host.clone(),
                        why: e.to_string(),
                    }
                })?;
                let conn =
                    ClientConnection::new(cfg.clone(), name).map_err(|e| TransportError::Tls {
                        host: self.endpoint.host.clone(),
                        why: e.to_string(),
                    })?;
                Ok(Io::Tls(Box::new(StreamOwned::new(conn, sock))))
            }
            _ => Ok(Io::Plain(sock)),
        }
    }

    fn start_handshake(&mut self, io: Io) -> Result<(), TransportError> {
        let cfg = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        match tungstenite::client::client_with_config(self.endpoint.url.as_str(), io, Some(cfg)) {
            Ok((ws, _)) => self.state = State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(m)) => self.state = State::Handshaking(Some(m)),
            Err(HandshakeError::Failure(e)) => return Err(self.handshake_err(e)),
        }
        Ok(())
    }

    /// Reads until the socket would block (edge-triggered readiness requires draining).
    fn read_all(
        &mut self,
        on_frame: &mut impl FnMut(u64, bool, &[u8]),
    ) -> Result<(), TransportError> {
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => on_frame(crate::clock::now_ns(), true, t.as_bytes()),
                Ok(Message::Binary(b)) => on_frame(crate::clock::now_ns(), false, &b),
                // tungstenite queues the pong itself; it goes out with the next flush.
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(c)) => {
                    let why = c
                        .map(|c| format!("closed by server: {} {}", c.code, c.reason))
                        .unwrap_or_else(|| "closed by server".into());
                    let _ = ws.flush();
                    self.state = State::Closed;
                    return Err(self.closed(&why));
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::Io(e)) => {
                    let why = describe_io(&e);
                    self.state = State::Closed;
                    return Err(self.closed(&why));
                }
                Err(e) => {
                    self.state = State::Closed;
                    return Err(self.closed(&e.to_string()));
                }
            }
        }
        self.flush()
    }

    /// Queues a text message; it is sent as far as the socket allows now and flushed later.
    pub fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        let State::Open(ws) = &mut self.state else {
            return Err(self.closed("send on a connection that is not open"));
        };
        match ws.write(Message::text(text)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(self.closed(&e.to_string())),
        }
        self.flush()
    }

    /// Sends a WebSocket ping (liveness probe; venues answer with a pong).
    pub fn send_ping(&mut self) -> Result<(), TransportError> {
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        match ws.write(Message::Ping(Vec::new().into())) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(self.closed(&e.to_string())),
        }
        self.flush()
    }

    /// Flushes queued frames; would-block leaves them queued for the next call.
    pub fn flush(&mut self) -> Result<(), TransportError> {
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        match ws.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(self.closed(&e.to_string())),
        }
    }

    /// Closes politely (best effort) and deregisters the socket.
    pub fn close(mut self, registry: &Registry) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Open(mut ws) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                let _ = registry.deregister(ws.get_mut().tcp_mut());
            }
            State::Connecting(Some(mut s)) => {
                let _ = registry.deregister(&mut s);
            }
            State::Handshaking(Some(mut m)) => {
                let _ = registry.deregister(m.get_mut().get_mut().tcp_mut());
            }
            _ => {}
        }
    }

    /// Moves the socket to another poll token (a standby connection becoming the primary).
    pub fn reregister(&mut self, registry: &Registry, token: Token) -> std::io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.token = token;
        match &mut self.state {
            State::Open(ws) => registry.reregister(ws.get_mut().tcp_mut(), token, interest),
            State::Connecting(Some(s)) => registry.reregister(s, token, interest),
            State::Handshaking(Some(m)) => {
                registry.reregister(m.get_mut().get_mut().tcp_mut(), token, interest)
            }
            _ => Ok(()),
        }
    }

    fn connect_err(&self, source: io::Error) -> TransportError {
        TransportError::Connect {
            addr: self.endpoint.authority(),
            source,
        }
    }

    fn handshake_err(&self, e: tungstenite::Error) -> TransportError {
        let why = match &e {
            tungstenite::Error::Io(io) => describe_io(io),
            other => other.to_string(),
        };
        TransportError::Handshake {
            url: super::redact_url(&self.endpoint.url),
            why,
        }
    }

    fn closed(&self, why: &str) -> TransportError {
        TransportError::Closed {
            url: super::redact_url(&self.endpoint.url),
            why: why.to_string(),
        }
    }
}
