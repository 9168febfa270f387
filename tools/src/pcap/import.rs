//! `qalpha import pcap`: plaintext market-data traffic captured with tcpdump → `.qcap`.
//!
//! packets ([`super::read`]) → TCP segments ([`super::net`]) → per-direction byte streams
//! ([`super::tcp`]) → HTTP/1.1 ([`super::http`]) → either a WebSocket upgrade, after which the
//! server's bytes are de-framed into messages ([`super::websocket`]), or plain REST responses.
//!
//! Each TCP connection that speaks HTTP becomes capture connections: one WebSocket connection
//! (`ws://HOST:PORT/PATH?QUERY`, from the request line and the Host header) or one REST connection
//! per request URL (`http://…`; replay takes a depth snapshot's symbol from its `symbol=`). Every
//! record carries the timestamp of the packet that completed it — the moment the engine could
//! have read it. `Connect` is written when the handshake names the URL (the 101 response, or the
//! REST response), `Disconnect` when TCP closes (FIN both ways, or RST).
//!
//! Nothing is dropped silently: a hole in a stream the capture never filled is a counted gap; on
//! a WebSocket's server stream it also ends the connection with a `Disconnect` ("capture gap"),
//! because frame boundaries after a gap are unknowable — replay then marks the venue's books
//! stale instead of applying diffs that may have lost a predecessor.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::{CaptureWriter, Connection, RecordKind, Transport, WriterOptions};
use qalpha_engine::event::Venue;

use super::http::{self, BodyLen, Parse};
use super::net::{self, Decoded};
use super::read::{CaptureEnd, PacketReader};
use super::report::PcapImportReport;
use super::tcp::{Flow, FlowTable, Piece};
use super::websocket::{Deframer, WsEvent};

/// Import settings.
#[derive(Clone, Debug)]
pub struct PcapImportOptions {
    /// The venue every connection in the capture belongs to.
    pub venue: Venue,
}

impl Default for PcapImportOptions {
    fn default() -> Self {
        Self {
            venue: Venue::BinanceUsdm,
        }
    }
}

const MAX_WARNINGS: usize = 50;

#[derive(Default)]
enum State {
    #[default]
    Undecided,
    Http,
    WebSocket(Box<[Deframer; 2]>),
    /// Not followed any further (not HTTP, or a gap broke it).
    Ignored,
}

/// Application state of one TCP connection.
#[derive(Default)]
struct Conn {
    state: State,
    /// Delivered bytes not consumed yet, per side.
    pending: [Vec<u8>; 2],
    fin: [bool; 2],
    client: Option<usize>,
    /// Requests awaiting their response: method and URL.
    requests: VecDeque<(String, String, bool)>,
    /// Capture connection ids declared for this TCP connection.
    ws_id: Option<u16>,
    rest_ids: Vec<(String, u16)>,
    close_reason: Option<String>,
    disconnected: bool,
    /// TCP closed and its remains delivered; later packets (final ACKs) change nothing.
    closed: bool,
}

struct Importer {
    w: CaptureWriter,
    venue: Venue,
    next_id: u32,
    rep: PcapImportReport,
}

impl Importer {
    fn warn(&mut self, msg: String) {
        if self.rep.warnings.len() < MAX_WARNINGS {
            tracing::warn!("import pcap: {msg}");
            self.rep.warnings.push(msg);
        }
    }

    fn declare(&mut self, ts: u64, transport: Transport, url: String) -> Result<u16> {
        let Ok(id) = u16::try_from(self.next_id) else {
            bail!("the capture has more than 65536 HTTP connections, more than one .qcap can declare: split it first (editcap -c)");
        };
        self.next_id += 1;
        let mut url = url;
        while url.len() > qalpha_engine::capture::format::MAX_URL_LEN {
            url.pop();
        }
        self.w.connect(
            ts,
            Connection {
                id,
                venue: Some(self.venue),
                transport,
                url,
            },
        )?;
        self.rep.connects += 1;
        Ok(id)
    }

    fn disconnect(&mut self, c: &mut Conn, ts: u64, reason: &str) -> Result<()> {
        if c.disconnected {
            return Ok(());
        }
        c.disconnected = true;
        let ids: Vec<u16> = c
            .ws_id
            .iter()
            .copied()
            .chain(c.rest_ids.iter().map(|r| r.1))
            .collect();
        for id in ids {
            self.w
                .write(ts, id, RecordKind::Disconnect, reason.as_bytes())?;
            self.rep.disconnects += 1;
        }
        Ok(())
    }

    /// Hands one piece of one side's stream to the connection's application layer.
    fn on_piece(
        &mut self,
        flow: &mut Flow<Conn>,
        side: usize,
        piece: Piece,
        ts: u64,
    ) -> Result<()> {
        let endpoints = flow.endpoints;
        let syn_side = flow.syn_side;
        let c = &mut flow.app;
        match piece {
            Piece::Data(d) => {
                let mut ws = false;
                match &mut c.state {
                    State::Ignored => self.rep.skipped_bytes += d.len() as u64,
                    State::WebSocket(df) if df[side].is_broken() => {
                        self.rep.skipped_bytes += d.len() as u64
                    }
                    State::WebSocket(df) => {
                        df[side].feed(&d);
                        ws = true;
                    }
                    State::Undecided | State::Http => c.pending[side].extend_from_slice(&d),
                }
                if ws {
                    self.drain_ws(c, side, ts)?;
                } else if matches!(c.state, State::Undecided | State::Http) {
                    self.advance_http(c, endpoints, syn_side, ts)?;
                }
            }
            Piece::Gap(n) => {
                let dir = if Some(side) == c.client {
                    "client→server"
                } else {
                    "server→client"
                };
                let what = format!(
                    "{} ⇄ {}: {n} bytes of the {dir} stream are missing from the capture",
                    endpoints[0], endpoints[1]
                );
                match &mut c.state {
                    State::WebSocket(df) => {
                        df[side].break_off();
                        if Some(side) != c.client {
                            self.warn(format!(
                                "{what}; the WebSocket connection ends there (Disconnect recorded)"
                            ));
                            self.disconnect(c, ts, &format!("capture gap: {n} bytes missing"))?;
                        } else {
                            self.warn(format!("{what}; client frames after it are not counted"));
                        }
                    }
                    State::Ignored => {}
                    State::Undecided | State::Http => {
                        self.warn(format!(
                            "{what}; the HTTP exchange cannot be followed further"
                        ));
                        self.ignore(c);
                    }
                }
            }
            Piece::Fin => {
                c.fin[side] = true;
                if matches!(c.state, State::Http) {
                    self.advance_http(c, endpoints, syn_side, ts)?;
                }
            }
        }
        Ok(())
    }

    fn ignore(&mut self, c: &mut Conn) {
        self.rep.skipped_bytes += (c.pending[0].len() + c.pending[1].len()) as u64;
        c.pending = [Vec::new(), Vec::new()];
        c.state = State::Ignored;
    }

    /// Parses whatever whole requests and responses the pending bytes hold.
    fn advance_http(
        &mut self,
        c: &mut Conn,
        endpoints: [SocketAddr; 2],
        syn_side: Option<usize>,
        ts: u64,
    ) -> Result<()> {
        if matches!(c.state, State::Undecided) {
            let client = syn_side.or_else(|| {
                (0..2)
                    .find(|&s| !c.pending[s].is_empty() && http::looks_like_request(&c.pending[s]))
            });
            // Until the client's first bytes are in, wait: captures can reorder packets slightly,
            // so a reply may be in the file before its request. A side that sends more than a
            // request head's worth while nothing HTTP comes from the other is not HTTP.
            let waited_too_long = c.pending.iter().any(|p| p.len() > http::MAX_HEAD);
            let Some(client) = client.filter(|&cl| !c.pending[cl].is_empty()) else {
                if waited_too_long {
                    self.rep.unidentified_flows += 1;
                    self.ignore(c);
                }
                return Ok(());
            };
            if !http::looks_like_request(&c.pending[client]) {
                self.rep.unidentified_flows += 1;
                self.warn(format!(
                    "{} → {}: not plaintext HTTP/1.1 (TLS?); connection skipped",
                    endpoints[client],
                    endpoints[1 - client]
                ));
                self.ignore(c);
                return Ok(());
            }
            c.client = Some(client);
            c.state = State::Http;
        }
        let Some(cl) = c.client else { return Ok(()) };
        let sv = 1 - cl;
        loop {
            // Requests: stop after an upgrade request; what follows it is WebSocket, not HTTP.
            while !c.requests.back().is_some_and(|r| r.2) {
                match http::parse_request_with_body(&c.pending[cl]) {
                    Parse::Done(req, n) => {
                        c.pending[cl].drain(..n);
                        let scheme = if req.upgrade_websocket { "ws" } else { "http" };
                        let url = http::url_of(scheme, &req, endpoints[sv]);
                        c.requests
                            .push_back((req.method, url, req.upgrade_websocket));
                    }
                    Parse::Partial => break,
                    Parse::Invalid(why) => {
                        self.warn(format!(
                            "{} → {}: {why}; connection skipped",
                            endpoints[cl], endpoints[sv]
                        ));
                        self.ignore(c);
                        return Ok(());
                    }
                }
            }
            let Some((method, url, upgrade)) = c.requests.front().cloned() else {
                if c.pending[sv].len() > http::MAX_HEAD {
                    self.warn(format!(
                        "{}: server data without a request; connection skipped",
                        endpoints[sv]
                    ));
                    self.ignore(c);
                }
                return Ok(());
            };
            let (head, n) = match http::parse_response(&c.pending[sv]) {
                Parse::Done(h, n) => (h, n),
                Parse::Partial => return Ok(()),
                Parse::Invalid(why) => {
                    self.warn(format!("{}: {why}; connection skipped", endpoints[sv]));
                    self.ignore(c);
                    return Ok(());
                }
            };
            if head.status == 101 && upgrade && head.upgrade_websocket {
                c.pending[sv].drain(..n);
                c.requests.clear();
                c.ws_id = Some(self.declare(ts, Transport::WebSocket, url)?);
                self.rep.websocket_connections += 1;
                let mut df = Box::new([Deframer::new(head.deflate), Deframer::new(head.deflate)]);
                for s in [sv, cl] {
                    df[s].feed(&std::mem::take(&mut c.pending[s]));
                }
                c.state = State::WebSocket(df);
                self.drain_ws(c, sv, ts)?;
                return self.drain_ws(c, cl, ts);
            }
            if (100..200).contains(&head.status) {
                c.pending[sv].drain(..n); // interim response; the real one follows
                continue;
            }
            let framing = head.body_len(&method);
            let body = match http::parse_body(&c.pending[sv][n..], framing, c.fin[sv]) {
                Parse::Done(b, m) => {
                    c.pending[sv].drain(..n + m);
                    b
                }
                Parse::Partial => return Ok(()),
                Parse::Invalid(why) => {
                    self.warn(format!("{url}: {why}; connection skipped"));
                    self.ignore(c);
                    return Ok(());
                }
            };
            c.requests.pop_front();
            if upgrade {
                self.warn(format!(
                    "{url}: WebSocket upgrade refused with status {}",
                    head.status
                ));
            }
            if !(200..300).contains(&head.status) {
                self.rep.http_errors += 1;
                self.warn(format!("{url}: HTTP {} response not recorded", head.status));
                continue;
            }
            let body = match http::decode_content(body, head.content_encoding.as_deref()) {
                Ok(b) => b,
                Err(why) => {
                    self.warn(format!("{url}: {why}; response not recorded"));
                    continue;
                }
            };
            let id = match c.rest_ids.iter().find(|r| r.0 == url) {
                Some(r) => r.1,
                None => {
                    let id = self.declare(ts, Transport::Rest, url.clone())?;
                    self.rep.rest_connections += 1;
                    c.rest_ids.push((url, id));
                    id
                }
            };
            self.w.write(ts, id, RecordKind::RestResponse, &body)?;
            self.rep.rest_responses += 1;
            if framing == BodyLen::UntilClose {
                return Ok(());
            }
        }
    }

    /// Records the server's messages, counts the client's.
    fn drain_ws(&mut self, c: &mut Conn, side: usize, ts: u64) -> Result<()> {
        let State::WebSocket(df) = &mut c.state else {
            return Ok(());
        };
        let from_server = Some(side) != c.client;
        while let Some(ev) = df[side].next_event() {
            match ev {
                WsEvent::Message { binary, payload } if from_server => {
                    let Some(id) = c.ws_id.filter(|_| !c.disconnected) else {
                        continue;
                    };
                    let kind = if binary {
                        RecordKind::WsBinary
                    } else {
                        RecordKind::WsText
                    };
                    self.w.write(ts, id, kind, &payload)?;
                    if binary {
                        self.rep.ws_binary += 1;
                    } else {
                        self.rep.ws_text += 1;
                    }
                }
                WsEvent::Close { code, reason } if from_server => {
                    let code = code.map_or("(no code)".to_string(), |c| c.to_string());
                    c.close_reason = Some(
                        format!("websocket close {code} {reason}")
                            .trim_end()
                            .to_string(),
                    );
                }
                WsEvent::Violation(why) => {
                    let dir = if from_server { "server" } else { "client" };
                    self.warn(format!("{dir} WebSocket frames: {why}"));
                }
                _ => {}
            }
        }
        if from_server && df[side].is_broken() {
            // Like a gap: frame boundaries are lost, later messages cannot be recorded.
            self.disconnect(c, ts, "websocket stream unframeable")?;
        }
        Ok(())
    }

    /// Delivers what the flow still holds (holes become gaps) and, when TCP closed (`reason`),
    /// records the disconnect. The flow stays in the table so its last ACKs change nothing.
    fn close(&mut self, flow: &mut Flow<Conn>, ts: u64, reason: Option<&str>) -> Result<()> {
        if flow.app.closed {
            return Ok(());
        }
        flow.app.closed = true;
        let mut out = Vec::new();
        for s in 0..2 {
            flow.halves[s].flush(&mut out);
            for p in out.drain(..) {
                self.on_piece(flow, s, p, ts)?;
            }
        }
        if let Some(why) = reason {
            let c = &mut flow.app;
            let reason = match c.close_reason.take() {
                Some(r) => format!("{why}; {r}"),
                None => why.to_string(),
            };
            self.disconnect(c, ts, &reason)?;
        }
        Ok(())
    }

    /// The flow leaves the table: its counters join the report. `reason`: see [`Self::close`].
    fn retire(&mut self, mut flow: Flow<Conn>, ts: u64, reason: Option<&str>) -> Result<()> {
        self.close(&mut flow, ts, reason)?;
        let c = &flow.app;
        match &c.state {
            State::WebSocket(df) => {
                self.rep.incomplete_bytes_at_end +=
                    df.iter().map(|d| d.pending() as u64).sum::<u64>();
                let cl = c.client.unwrap_or(0);
                self.rep.server_ws.merge(&df[1 - cl].stats);
                self.rep.client_ws.merge(&df[cl].stats);
            }
            State::Http => {
                self.rep.incomplete_bytes_at_end +=
                    c.pending.iter().map(|p| p.len() as u64).sum::<u64>();
            }
            State::Undecided | State::Ignored => {}
        }
        for h in &flow.halves {
            self.rep.tcp.merge(&h.stats);
        }
        Ok(())
    }
}

/// Imports `input` (pcap or pcapng) into `out`.
pub fn import_pcap(input: &Path, out: &Path, opts: &PcapImportOptions) -> Result<PcapImportReport> {
    let mut reader =
        PacketReader::open(input).with_context(|| format!("cannot import {}", input.display()))?;
    let w = CaptureWriter::create(out, Vec::new(), WriterOptions::default())
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut imp = Importer {
        w,
        venue: opts.venue,
        next_id: 0,
        rep: PcapImportReport::default(),
    };
    let mut table: FlowTable<Conn> = FlowTable::default();
    let mut last_ts = 0u64;
    while let Some(pkt) = reader.next_packet()? {
        imp.rep.packets += 1;
        last_ts = pkt.ts_ns;
        let seg = match net::decode(pkt.link_type, pkt.data) {
            Decoded::Tcp(s) => s,
            Decoded::NotTcp | Decoded::NotIp => {
                imp.rep.non_tcp_packets += 1;
                continue;
            }
            Decoded::IpFragment => {
                imp.rep.ip_fragments += 1;
                continue;
            }
            Decoded::UnsupportedLink(lt) => {
                if imp.rep.unsupported_link_packets == 0 {
                    imp.warn(format!("link type {lt} is not supported (Ethernet, Linux cooked v1/v2, raw IP and loopback are); its packets are skipped"));
                }
                imp.rep.unsupported_link_packets += 1;
                continue;
            }
            Decoded::Malformed(why) => {
                if imp.rep.malformed_packets == 0 {
                    imp.warn(format!("packet {} malformed: {why}", imp.rep.packets));
                }
                imp.rep.malformed_packets += 1;
                continue;
            }
        };
        imp.rep.tcp_segments += 1;
        let ts = pkt.ts_ns;
        if let Some(old) = table.take_replaced(&seg) {
            imp.retire(old, ts, Some("tcp connection replaced (port reused)"))?;
        }
        let (flow, delivery) = table.push(&seg, ts);
        for (side, piece) in delivery.pieces {
            imp.on_piece(flow, side, piece, ts)?;
        }
        if flow.is_over() && !flow.app.closed {
            let why = if flow.reset {
                "tcp reset"
            } else {
                "tcp closed"
            };
            imp.close(flow, ts, Some(why))?;
        }
    }
    // Connections still open when the capture ended: no disconnect (they had not closed).
    for f in table.drain_all() {
        imp.retire(f, last_ts, None)?;
    }
    imp.rep.tcp_flows = table.flows_seen;
    imp.rep.unknown_interface_packets = reader.unknown_interface;
    imp.rep.capture_end = reader.end().clone();
    if imp.rep.capture_end != CaptureEnd::Clean {
        imp.warn(format!(
            "the capture file is damaged at its end: {:?}",
            imp.rep.capture_end
        ));
    }
    if imp.rep.websocket_connections + imp.rep.rest_connections == 0 {
        imp.warn("no plaintext HTTP or WebSocket connection found (was the capture started before the connection was opened, and is the traffic unencrypted?)".into());
    }
    imp.rep.files_written = imp.w.finish()?;
    Ok(imp.rep)
}
