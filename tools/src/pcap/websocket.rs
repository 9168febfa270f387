//! RFC 6455 de-framing of one direction of a WebSocket connection, from reassembled TCP bytes.
//!
//! The importer records what the engine would have read: whole *messages* (fragments joined,
//! control frames taken out), not frames. Server frames are unmasked; client frames are masked
//! (RFC 6455 §5.3) and unmasked here so they can be counted. Control frames may arrive between the
//! fragments of a message (§5.4) and are reported on their own.
//!
//! `permessage-deflate` (RFC 7692) is undone when the handshake negotiated it: one raw-deflate
//! context per direction, fed each compressed message plus the `00 00 ff ff` tail the sender
//! stripped. With context takeover the window carries over; without, the sender simply never
//! refers back, so the same decoder serves both.
//!
//! A protocol violation never panics: the bad frame is skipped by its length when the length is
//! readable, otherwise the direction stops ([`Deframer::is_broken`]) — after that the bytes can
//! not be framed again, just as after a capture gap.

use flate2::{Decompress, FlushDecompress, Status};

/// Largest message accepted (the capture format's payload limit).
pub const MAX_MESSAGE: usize = 64 << 20;

/// What came out of the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// A whole data message.
    Message {
        binary: bool,
        payload: Vec<u8>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close {
        code: Option<u16>,
        reason: String,
    },
    /// Something that is not valid RFC 6455; the deframer went on if it could.
    Violation(String),
}

/// Counters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WsStats {
    pub frames: u64,
    pub messages: u64,
    pub fragmented_messages: u64,
    pub masked_frames: u64,
    pub control_frames: u64,
    pub compressed_messages: u64,
    pub violations: u64,
}

/// De-frames one direction.
pub struct Deframer {
    buf: Vec<u8>,
    pos: usize,
    /// Opcode, payload and "compressed" of a message whose fragments are still arriving.
    partial: Option<(u8, Vec<u8>, bool)>,
    inflater: Option<Decompress>,
    broken: bool,
    /// An event to hand out before reading further (a message that followed a violation).
    queued: Option<WsEvent>,
    pub stats: WsStats,
}

impl Deframer {
    /// `deflate`: whether `permessage-deflate` was negotiated for this connection.
    pub fn new(deflate: bool) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            partial: None,
            inflater: deflate.then(|| Decompress::new(false)),
            broken: false,
            queued: None,
            stats: WsStats::default(),
        }
    }

    /// Appends reassembled bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.broken {
            return;
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The stream can no longer be framed (a gap or an unreadable frame header).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Marks the stream unframeable (the caller saw a gap); buffered bytes are dropped.
    pub fn break_off(&mut self) {
        self.broken = true;
        self.buf.clear();
        self.pos = 0;
        self.partial = None;
    }

    /// Bytes buffered that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos + self.partial.as_ref().map_or(0, |p| p.1.len())
    }

    fn violation(&mut self, why: String) -> Option<WsEvent> {
        self.stats.violations += 1;
        Some(WsEvent::Violation(why))
    }

    /// The next event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<WsEvent> {
        if let Some(q) = self.queued.take() {
            return Some(q);
        }
        loop {
            if self.broken {
                return None;
            }
            let b = &self.buf[self.pos..];
            if b.len() < 2 {
                return None;
            }
            let (fin, rsv1, rsv23, opcode) =
                (b[0] & 0x80 != 0, b[0] & 0x40 != 0, b[0] & 0x30, b[0] & 0x0f);
            let masked = b[1] & 0x80 != 0;
            let (len, mut at) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(a), 10)
                }
                126 | 127 => return None,
                n => (u64::from(n), 2),
            };
            if len > MAX_MESSAGE as u64 {
                // A length this large is either garbage or unrecordable; the frame cannot be
                // skipped safely, so this direction stops.
                self.broken = true;
                return self.violation(format!("frame length {len} is impossible"));
            }
            let len = len as usize;
            let key = if masked {
                let k = b.get(at..at + 4)?;
                at += 4;
                Some([k[0], k[1], k[2], k[3]])
            } else {
                None
            };
            if b.len() < at + len {
                return None;
            }
            let mut payload = b[at..at + len].to_vec();
            self.pos += at + len;
            self.stats.frames += 1;
            if let Some(k) = key {
                self.stats.masked_frames += 1;
                for (i, x) in payload.iter_mut().enumerate() {
                    *x ^= k[i & 3];
                }
            }
            if rsv23 != 0 || (rsv1 && (self.inflater.is_none() || opcode == 0 || opcode >= 8)) {
                return self
                    .violation(format!("reserved bits set on a frame with opcode {opcode}"));
            }
            match opcode {
                8..=10 => {
                    self.stats.control_frames += 1;
                    if !fin || len > 125 {
                        return self.violation("fragmented or oversized control frame".into());
                    }
                    return Some(match opcode {
                        8 => WsEvent::Close {
                            code: (payload.len() >= 2)
                                .then(|| u16::from_be_bytes([payload[0], payload[1]])),
                            reason: String::from_utf8_lossy(payload.get(2..).unwrap_or_default())
                                .into_owned(),
                        },
                        9 => WsEvent::Ping(payload),
                        _ => WsEvent::Pong(payload),
                    });
                }
                1 | 2 => {
                    let dropped = self.partial.take().is_some();
                    let ev = if fin {
                        self.finish(opcode, payload, rsv1, false)
                    } else {
                        self.partial = Some((opcode, payload, rsv1));
                        None
                    };
                    if dropped {
                        self.queued = ev;
                        return self.violation(
                            "a new message started before the previous one finished".into(),
                        );
                    }
                    if ev.is_some() {
                        return ev;
                    }
                }
                0 => {
                    let Some((op, mut acc, compressed)) = self.partial.take() else {
                        return self
                            .violation("continuation frame without a message to continue".into());
                    };
                    if acc.len() + payload.len() > MAX_MESSAGE {
                        return self
                            .violation(format!("message longer than {MAX_MESSAGE} bytes dropped"));
                    }
                    acc.extend_from_slice(&payload);
                    if fin {
                        if let Some(ev) = self.finish(op, acc, compressed, true) {
                            return Some(ev);
                        }
                    } else {
                        self.partial = Some((op, acc, compressed));
                    }
                }
                _ => return self.violation(format!("reserved opcode {opcode}")),
            }
        }
    }

    fn finish(
        &mut self,
        opcode: u8,
        payload: Vec<u8>,
        compressed: bool,
        fragmented: bool,
    ) -> Option<WsEvent> {
        self.stats.messages += 1;
        self.stats.fragmented_messages += u64::from(fragmented);
        let payload = if compressed {
            self.stats.compressed_messages += 1;
            match self.inflate(&payload) {
                Ok(p) => p,
                Err(why) => return self.violation(why),
            }
        } else {
            payload
        };
        Some(WsEvent::Message {
            binary: opcode == 2,
            payload,
        })
    }

    fn inflate(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let Some(d) = self.inflater.as_mut() else {
            return Err("compressed message without permessage-deflate".into());
        };
        let mut input = Vec::with_capacity(data.len() + 4);
        input.extend_from_slice(data);
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        let mut used = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_MESSAGE {
                    return Err("inflated message exceeds the size limit".into());
                }
                out.reserve(out.len().max(1024));
            }
            let before_in = d.total_in();
            let before_out = d.total_out();
            let status = d
                .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                .map_err(|e| format!("permessage-deflate: {e}"))?;
            used += (d.total_in() - before_in) as usize;
            let progressed = d.total_in() != before_in || d.total_out() != before_out;
            if status == Status::StreamEnd || (used >= input.len() && out.len() < out.capacity()) {
                return Ok(out);
            }
            if !progressed && out.len() < out.capacity() {
                return Err("permessage-deflate: stream makes no progress".into());
            }
        }
    }
}

/// Encodes one frame (tests, and the synthetic captures of the test kit).
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Deframer) -> Vec<WsEvent> {
        std::iter::from_fn(|| d.next_event()).collect()
    }

    fn msg(p: &[u8]) -> WsEvent {
        WsEvent::Message {
            binary: false,
            payload: p.to_vec(),
        }
    }

    #[test]
    fn fragments_with_control_frames_between_byte_by_byte() {
        let big = vec![b'x'; 70_000];
        let mut wire = Vec::new();
        wire.extend(encode_frame(true, 1, b"{\"a\":1}", None));
        wire.extend(encode_frame(false, 1, b"{\"b\":", None));
        wire.extend(encode_frame(true, 9, b"ping!", None));
        wire.extend(encode_frame(false, 0, b"[1,", None));
        wire.extend(encode_frame(true, 0, b"2]}", None));
        wire.extend(encode_frame(true, 2, &big, None));
        wire.extend(encode_frame(true, 1, &[b'y'; 300], None));
        wire.extend(encode_frame(true, 8, &[0x03, 0xe8, b'b', b'y', b'e'], None));
        let mut d = Deframer::new(false);
        let mut got = Vec::new();
        for b in &wire {
            d.feed(std::slice::from_ref(b));
            got.extend(all(&mut d));
        }
        assert_eq!(
            got,
            vec![
                msg(b"{\"a\":1}"),
                WsEvent::Ping(b"ping!".to_vec()),
                msg(b"{\"b\":[1,2]}"),
                WsEvent::Message {
                    binary: true,
                    payload: big
                },
                msg(&[b'y'; 300]),
                WsEvent::Close {
                    code: Some(1000),
                    reason: "bye".into()
                },
            ]
        );
        assert_eq!(
            (
                d.stats.messages,
                d.stats.fragmented_messages,
                d.stats.control_frames
            ),
            (4, 1, 2)
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn masked_client_frames_are_unmasked() {
        let mut d = Deframer::new(false);
        d.feed(&encode_frame(
            true,
            1,
            b"{\"method\":\"SUBSCRIBE\"}",
            Some([1, 2, 3, 4]),
        ));
        d.feed(&encode_frame(true, 10, b"", Some([9, 9, 9, 9])));
        assert_eq!(
            all(&mut d),
            vec![msg(b"{\"method\":\"SUBSCRIBE\"}"), WsEvent::Pong(vec![])]
        );
        assert_eq!(d.stats.masked_frames, 2);
    }

    #[test]
    fn violations_are_reported_and_skipped() {
        let mut d = Deframer::new(false);
        d.feed(&encode_frame(true, 0, b"orphan", None));
        d.feed(&encode_frame(true, 3, b"reserved", None));
        d.feed(&encode_frame(false, 9, b"frag ping", None));
        d.feed(&encode_frame(false, 1, b"half", None));
        d.feed(&encode_frame(true, 1, b"whole", None));
        let ev = all(&mut d);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, WsEvent::Violation(_)))
                .count(),
            4
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, WsEvent::Message { .. }))
                .count(),
            1
        );
        let mut d = Deframer::new(false);
        d.feed(&[0x81, 127, 0xff, 0, 0, 0, 0, 0, 0, 0, b'x']);
        assert!(matches!(d.next_event(), Some(WsEvent::Violation(_))));
        assert!(d.is_broken() && d.next_event().is_none());
    }

    #[test]
    fn permessage_deflate_with_context_takeover() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut c = Compress::new(Compression::default(), false);
        let mut d = Deframer::new(true);
        for text in [
            &b"{\"e\":\"depthUpdate\",\"b\":[]}"[..],
            b"{\"e\":\"depthUpdate\",\"b\":[]}",
        ] {
            let mut out = Vec::with_capacity(256);
            c.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            let mut f = encode_frame(true, 1, &out, None);
            f[0] |= 0x40; // RSV1: compressed
            d.feed(&f);
            assert_eq!(d.next_event(), Some(msg(text)));
        }
        assert_eq!(d.stats.compressed_messages, 2);
        let mut plain = Deframer::new(false);
        let mut f = encode_frame(true, 1, b"x", None);
        f[0] |= 0x40;
        plain.feed(&f);
        assert!(matches!(plain.next_event(), Some(WsEvent::Violation(_))));
    }
}
