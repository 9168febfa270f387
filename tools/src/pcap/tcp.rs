//! TCP reassembly: captured segments back into the two byte streams of each connection.
//!
//! A capture is not what the application read: segments arrive out of order, are retransmitted
//! (whole or overlapping), and some are missing because the capture dropped them (tcpdump's
//! "dropped by kernel") or cut them (snap length). Each direction of a 5-tuple is a
//! [`HalfStream`] that delivers its bytes in sequence order exactly once, as [`Piece`]s:
//!
//! - duplicates and the already-delivered part of overlaps are dropped (counted);
//! - segments ahead of the next expected byte wait in an ordered buffer until the hole fills;
//! - a hole that can never fill becomes an explicit [`Piece::Gap`] — never silently skipped. A
//!   hole is known to be permanent when the *other* side acknowledges bytes past it (the receiver
//!   had them; only the capture lost them: Wireshark's "ACKed unseen segment"), when the snap
//!   length cut the bytes off, when the connection ends, or when the wait buffer passes
//!   [`MAX_BUFFERED`]. An acknowledged hole is given [`REORDER_WINDOW_NS`] of capture time to
//!   fill first: packets captured on different CPUs can land in the file slightly out of order, so
//!   an ACK may precede the data it acknowledges. Once the peer acknowledges the sender's FIN,
//!   nothing before it can still arrive and holes become gaps at once.
//!
//! Sequence numbers are 32-bit and wrap; each half keeps a 64-bit offset from its first byte and
//! maps every segment to it relative to the next expected byte, so streams longer than 4 GiB work.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::net::TcpSegment;

/// Out-of-order bytes one direction may hold while waiting for a hole to fill.
pub const MAX_BUFFERED: usize = 16 << 20;
/// A segment further than this from the expected position is not part of this stream.
const MAX_JUMP: i64 = 1 << 30;
/// Capture time an acknowledged hole may wait for its data before it is declared a gap.
pub const REORDER_WINDOW_NS: u64 = 50_000_000;

/// In-order output of a half stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Data(Vec<u8>),
    /// This many bytes of the stream are not in the capture.
    Gap(u64),
    /// The sender closed its direction (all bytes up to its FIN were delivered).
    Fin,
}

/// Counters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    pub segments: u64,
    pub bytes: u64,
    pub retransmitted_bytes: u64,
    pub out_of_order_segments: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments far outside the stream's window (a different connection or garbage).
    pub stray_segments: u64,
}

#[derive(Clone, Debug)]
enum Held {
    Bytes(Vec<u8>),
    /// Bytes known to be absent from the capture (cut by the snap length).
    Lost(u64),
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Bytes(b) => b.len() as u64,
            Held::Lost(n) => *n,
        }
    }
}

/// One direction of a TCP connection.
#[derive(Clone, Debug, Default)]
pub struct HalfStream {
    started: bool,
    /// Saw this side's SYN (so the stream is known from its first byte).
    pub saw_syn: bool,
    isn: u32,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Next expected stream offset.
    next: u64,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    fin: Option<u64>,
    closed: bool,
    /// The peer acknowledged everything before this offset.
    acked_upto: u64,
    /// Capture time at which an acknowledged hole was first seen (still unfilled).
    hole_since: Option<u64>,
    pub stats: StreamStats,
}

impl HalfStream {
    /// Stream offset of `seq`, relative to the next expected byte; `None` if absurdly far.
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let expected = self.base.wrapping_add(self.next as u32);
        let d = i64::from(seq.wrapping_sub(expected) as i32);
        let off = self.next as i64 + d;
        (d.abs() < MAX_JUMP && off >= 0).then_some(off as u64)
    }

    /// Whether this side's FIN has been delivered.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The ISN, if this side's SYN was seen.
    pub fn isn(&self) -> Option<u32> {
        self.saw_syn.then_some(self.isn)
    }

    /// Takes one segment sent by this side; appends what became deliverable to `out`.
    pub fn push(&mut self, seg: &TcpSegment<'_>, out: &mut Vec<Piece>) {
        self.stats.segments += 1;
        let mut seq = seg.seq;
        if seg.flags.syn() {
            if !self.saw_syn && (!self.started || self.next == 0) {
                self.saw_syn = true;
                self.started = true;
                self.isn = seg.seq;
                self.base = seg.seq.wrapping_add(1);
                self.next = 0;
            }
            seq = seq.wrapping_add(1); // SYN occupies one sequence number
        }
        if !self.started {
            // Picked up mid-stream: the first segment seen defines offset 0.
            self.started = true;
            self.base = seq;
        }
        let Some(off) = self.offset_of(seq) else {
            self.stats.stray_segments += 1;
            return;
        };
        let len = seg.payload.len() as u64;
        if !seg.payload.is_empty() {
            self.insert(off, Held::Bytes(seg.payload.to_vec()));
        }
        if seg.missing > 0 {
            self.insert(off + len, Held::Lost(u64::from(seg.missing)));
        }
        if seg.flags.fin() {
            self.fin.get_or_insert(off + len + u64::from(seg.missing));
        }
        self.drain(out);
        if self.held_bytes > MAX_BUFFERED {
            self.skip_to_held(out);
        }
        if self.next >= self.acked_upto {
            self.hole_since = None;
        }
    }

    /// The other side acknowledged everything before `ack` at capture time `now`: a hole below
    /// it is a capture loss, declared once it stayed unfilled for [`REORDER_WINDOW_NS`] (at once
    /// when the ACK covers this side's FIN).
    pub fn acked(&mut self, ack: u32, now: u64, out: &mut Vec<Piece>) {
        if !self.started {
            return;
        }
        let Some(a) = self.offset_of(ack) else {
            return;
        };
        let fin_acked = self.fin.is_some_and(|f| a > f);
        // The FIN's own sequence number is acknowledged too; it is not a byte.
        let upto = self.fin.map_or(a, |f| a.min(f));
        if upto > self.next {
            self.acked_upto = self.acked_upto.max(upto);
            self.hole_since.get_or_insert(now);
        }
        if fin_acked {
            self.settle_holes(out);
        } else {
            self.settle(now, out);
        }
    }

    /// Declares acknowledged holes older than the reorder window as gaps.
    pub fn settle(&mut self, now: u64, out: &mut Vec<Piece>) {
        if self
            .hole_since
            .is_some_and(|t| now.saturating_sub(t) >= REORDER_WINDOW_NS)
        {
            self.settle_holes(out);
        }
    }

    fn settle_holes(&mut self, out: &mut Vec<Piece>) {
        let upto = self.acked_upto;
        while self.next < upto {
            let hole_end = self.held.keys().next().map_or(upto, |&k| k.min(upto));
            if hole_end > self.next {
                self.gap(hole_end - self.next, out);
            }
            let before = self.next;
            self.drain(out);
            if self.next == before && hole_end <= before {
                break;
            }
        }
        self.hole_since = None;
    }

    /// The connection is over (reset or end of capture): deliver what is held, holes as gaps.
    pub fn flush(&mut self, out: &mut Vec<Piece>) {
        while !self.held.is_empty() {
            self.skip_to_held(out);
        }
    }

    fn gap(&mut self, n: u64, out: &mut Vec<Piece>) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += n;
        self.next += n;
        out.push(Piece::Gap(n));
    }

    /// Gives up on the hole before the first held segment.
    fn skip_to_held(&mut self, out: &mut Vec<Piece>) {
        if let Some(&k) = self.held.keys().next() {
            if k > self.next {
                self.gap(k - self.next, out);
            }
            self.drain(out);
        }
    }

    fn insert(&mut self, mut off: u64, mut h: Held) {
        let end = off + h.len();
        if end <= self.next {
            self.stats.retransmitted_bytes += h.len();
            return;
        }
        if off < self.next {
            let cut = self.next - off;
            self.stats.retransmitted_bytes += cut;
            h = match h {
                Held::Bytes(mut b) => {
                    b.drain(..cut as usize);
                    Held::Bytes(b)
                }
                Held::Lost(n) => Held::Lost(n - cut),
            };
            off = self.next;
        }
        if off > self.next {
            self.stats.out_of_order_segments += 1;
        }
        match self.held.get(&off) {
            Some(old) if old.len() >= h.len() => {
                self.stats.retransmitted_bytes += h.len();
            }
            old => {
                let old_len = old.map_or(0, Held::len) as usize;
                self.held_bytes = self.held_bytes - old_len + h.len() as usize;
                self.held.insert(off, h);
            }
        }
    }

    /// Delivers held pieces that start at or before the next expected byte.
    fn drain(&mut self, out: &mut Vec<Piece>) {
        while let Some(entry) = self.held.first_entry() {
            let off = *entry.key();
            if off > self.next {
                break;
            }
            let h = entry.remove();
            self.held_bytes -= h.len() as usize;
            let end = off + h.len();
            if end <= self.next {
                self.stats.retransmitted_bytes += h.len();
                continue;
            }
            let skip = (self.next - off) as usize;
            self.stats.retransmitted_bytes += skip as u64;
            match h {
                Held::Bytes(mut b) => {
                    if skip > 0 {
                        b.drain(..skip);
                    }
                    self.stats.bytes += b.len() as u64;
                    self.next = end;
                    match out.last_mut() {
                        Some(Piece::Data(prev)) => prev.extend_from_slice(&b),
                        _ => out.push(Piece::Data(b)),
                    }
                }
                Held::Lost(n) => self.gap(n - skip as u64, out),
            }
        }
        if let Some(f) = self.fin {
            if !self.closed && self.next >= f {
                self.closed = true;
                out.push(Piece::Fin);
            }
        }
    }
}

/// A connection: its two endpoints (side 0 is the one seen first) and their half streams.
#[derive(Debug)]
pub struct Flow<T> {
    pub endpoints: [SocketAddr; 2],
    pub halves: [HalfStream; 2],
    /// The side that sent a SYN without ACK (the client), when the handshake was captured.
    pub syn_side: Option<usize>,
    pub reset: bool,
    /// Application state kept by the caller.
    pub app: T,
}

impl<T> Flow<T> {
    /// Both directions closed, or reset.
    pub fn is_over(&self) -> bool {
        self.reset || (self.halves[0].is_closed() && self.halves[1].is_closed())
    }
}

/// What one segment did to its flow.
#[derive(Debug, Default)]
pub struct Delivery {
    /// `(side, piece)` in the order the application should see them.
    pub pieces: Vec<(usize, Piece)>,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// All live flows, by 5-tuple (the protocol is always TCP).
pub struct FlowTable<T> {
    flows: HashMap<(SocketAddr, SocketAddr), Flow<T>>,
    /// Flows seen in total (including ended ones).
    pub flows_seen: u64,
}

impl<T: Default> Default for FlowTable<T> {
    fn default() -> Self {
        Self {
            flows: HashMap::new(),
            flows_seen: 0,
        }
    }
}

impl<T: Default> FlowTable<T> {
    /// If `seg` opens a new connection on the 5-tuple of a live flow (port reuse: a fresh SYN
    /// with another ISN, or a SYN after the old one ended), removes and returns the old flow so
    /// the caller can finish it first.
    pub fn take_replaced(&mut self, seg: &TcpSegment<'_>) -> Option<Flow<T>> {
        if !seg.flags.syn() || seg.flags.ack() {
            return None;
        }
        let k = key(seg.src, seg.dst);
        let f = self.flows.get(&k)?;
        let side = usize::from(f.endpoints[0] != seg.src);
        let same_syn = f.halves[side].isn() == Some(seg.seq);
        if same_syn && !f.is_over() {
            return None;
        }
        self.flows.remove(&k)
    }

    /// Feeds a segment captured at `ts_ns` to its flow (creating the flow if needed); returns the
    /// flow and what became deliverable: first what this segment's ACK settles in the other
    /// direction, then this direction's bytes.
    pub fn push(&mut self, seg: &TcpSegment<'_>, ts_ns: u64) -> (&mut Flow<T>, Delivery) {
        let k = key(seg.src, seg.dst);
        let seen = &mut self.flows_seen;
        let flow = self.flows.entry(k).or_insert_with(|| {
            *seen += 1;
            Flow {
                endpoints: [seg.src, seg.dst],
                halves: [HalfStream::default(), HalfStream::default()],
                syn_side: None,
                reset: false,
                app: T::default(),
            }
        });
        let side = usize::from(flow.endpoints[0] != seg.src);
        let mut d = Delivery::default();
        let mut buf = Vec::new();
        if seg.flags.syn() && !seg.flags.ack() && flow.syn_side.is_none() {
            flow.syn_side = Some(side);
        }
        if seg.flags.ack() {
            flow.halves[1 - side].acked(seg.ack, ts_ns, &mut buf);
            d.pieces.extend(buf.drain(..).map(|p| (1 - side, p)));
        }
        flow.halves[side].push(seg, &mut buf);
        flow.halves[side].settle(ts_ns, &mut buf);
        d.pieces.extend(buf.drain(..).map(|p| (side, p)));
        if seg.flags.rst() {
            flow.reset = true;
            for s in [side, 1 - side] {
                flow.halves[s].flush(&mut buf);
                d.pieces.extend(buf.drain(..).map(|p| (s, p)));
            }
        }
        (flow, d)
    }

    /// Removes every live flow (end of capture), oldest endpoints first for a stable order.
    pub fn drain_all(&mut self) -> Vec<Flow<T>> {
        let mut v: Vec<_> = self.flows.drain().map(|(_, f)| f).collect();
        v.sort_by_key(|f| f.endpoints);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::net::TcpFlags;

    fn seg(seq: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
        TcpSegment {
            src: "127.0.0.1:1".parse().unwrap(),
            dst: "127.0.0.1:2".parse().unwrap(),
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            payload,
            missing: 0,
        }
    }

    fn run(h: &mut HalfStream, segs: &[TcpSegment<'_>]) -> Vec<Piece> {
        let mut out = Vec::new();
        for s in segs {
            h.push(s, &mut out);
        }
        out
    }

    fn data(p: &[Piece]) -> Vec<u8> {
        p.iter()
            .flat_map(|x| match x {
                Piece::Data(d) => d.clone(),
                _ => vec![],
            })
            .collect()
    }

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN | TcpFlags::ACK;

    #[test]
    fn reorder_retransmit_overlap_and_fin() {
        let mut h = HalfStream::default();
        let out = run(
            &mut h,
            &[
                seg(100, SYN, b""),
                seg(107, ACK, b"world"), // ahead: held
                seg(101, ACK, b"hel"),   // in order
                seg(101, ACK, b"hel"),   // duplicate
                seg(102, ACK, b"ello "), // overlaps, fills the hole
                seg(107, ACK, b"wor"),   // old
                seg(112, FIN, b"!"),
            ],
        );
        assert_eq!(data(&out), b"hello world!");
        assert_eq!(out.last(), Some(&Piece::Fin));
        assert!(h.is_closed());
        assert_eq!(h.stats.gaps, 0);
        assert_eq!(h.stats.retransmitted_bytes, 3 + 2 + 3);
        assert_eq!(h.stats.out_of_order_segments, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut h = HalfStream::default();
        let isn = u32::MAX - 2;
        let out = run(
            &mut h,
            &[
                seg(isn, SYN, b""),
                seg(isn.wrapping_add(3), ACK, b"cd"),
                seg(isn.wrapping_add(1), ACK, b"ab"),
                seg(isn.wrapping_add(2), ACK, b"b"),
            ],
        );
        assert_eq!(data(&out), b"abcd");
    }

    #[test]
    fn acked_hole_is_a_gap_and_later_bytes_flow() {
        let mut h = HalfStream::default();
        let mut out = run(
            &mut h,
            &[seg(0, SYN, b""), seg(1, ACK, b"aa"), seg(9, ACK, b"zz")],
        );
        assert_eq!(h.stats.gaps, 0, "a hole is not a gap until proven");
        h.acked(11, 1000, &mut out);
        assert_eq!(
            h.stats.gaps, 0,
            "the data may still come: captures reorder a little"
        );
        h.settle(1000 + REORDER_WINDOW_NS, &mut out);
        assert_eq!(
            out,
            vec![
                Piece::Data(b"aa".to_vec()),
                Piece::Gap(6),
                Piece::Data(b"zz".to_vec())
            ]
        );
        // An ACK past everything seen (a lost tail) is a gap too; the FIN's own number is not.
        let mut out = Vec::new();
        h.push(&seg(15, FIN, b""), &mut out);
        assert!(out.is_empty());
        // The FIN acknowledged: nothing before it can still come, the lost tail is a gap now.
        h.acked(16, 2000 + REORDER_WINDOW_NS, &mut out);
        assert_eq!(out, vec![Piece::Gap(4), Piece::Fin]);
        assert_eq!(h.stats.gap_bytes, 10);
    }

    #[test]
    fn snaplen_cut_and_flush_report_gaps() {
        let mut h = HalfStream::default();
        let mut cut = seg(1, ACK, b"abc");
        cut.missing = 5;
        let mut out = run(&mut h, &[seg(0, SYN, b""), cut, seg(9, ACK, b"x")]);
        assert_eq!(
            out,
            vec![
                Piece::Data(b"abc".to_vec()),
                Piece::Gap(5),
                Piece::Data(b"x".to_vec())
            ]
        );
        out.clear();
        h.push(&seg(20, ACK, b"late"), &mut out);
        assert!(out.is_empty());
        h.flush(&mut out);
        assert_eq!(out, vec![Piece::Gap(10), Piece::Data(b"late".to_vec())]);
    }

    #[test]
    fn stray_and_midstream_segments() {
        let mut h = HalfStream::default();
        let out = run(&mut h, &[seg(5000, ACK, b"mid"), seg(5003, ACK, b"dle")]);
        assert_eq!(data(&out), b"middle");
        let out = run(&mut h, &[seg(5000u32.wrapping_add(1 << 31), ACK, b"x")]);
        assert!(out.is_empty());
        assert_eq!(h.stats.stray_segments, 1);
    }

    #[test]
    fn flow_table_sides_reset_and_port_reuse() {
        let mut t: FlowTable<()> = FlowTable::default();
        let c: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let s: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let mk = |src, dst, seq, ack, flags, p| TcpSegment {
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload: p,
            missing: 0,
        };
        t.push(&mk(c, s, 10, 0, SYN, b""), 0);
        let (f, _) = t.push(&mk(s, c, 50, 11, SYN | ACK, b""), 0);
        assert_eq!(f.syn_side, Some(0));
        let (_, d) = t.push(&mk(c, s, 11, 51, ACK, b"GET"), 0);
        assert_eq!(d.pieces, vec![(0, Piece::Data(b"GET".to_vec()))]);
        assert!(
            t.take_replaced(&mk(c, s, 10, 0, SYN, b"")).is_none(),
            "SYN retransmission"
        );
        let (f, _) = t.push(&mk(s, c, 51, 14, TcpFlags::RST, b""), 0);
        assert!(f.is_over());
        let old = t.take_replaced(&mk(c, s, 999, 0, SYN, b"")).unwrap();
        assert!(old.reset);
        assert_eq!(t.flows_seen, 1);
        t.push(&mk(c, s, 999, 0, SYN, b""), 0);
        assert_eq!(t.flows_seen, 2);
        assert_eq!(t.drain_all().len(), 1);
    }
}
