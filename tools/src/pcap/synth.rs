//! Small pcap and pcapng captures built by hand: fixtures for the importer's tests (every link
//! type, byte order and block kind, damaged files) and reproducible examples for bug reports,
//! without needing tcpdump or root.
//!
//! [`Conversation`] plays one TCP connection (handshake, data cut into segments, close) and keeps
//! the sequence numbers honest, so tests can then reorder, duplicate or drop its packets.

use std::net::Ipv4Addr;

/// Builds an IPv4 packet holding one TCP segment (checksums left zero: nothing here checks them).
#[allow(clippy::too_many_arguments)]
pub fn ipv4_tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + 20 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(total.min(0xffff) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]); // id, DF, ttl, TCP, checksum
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&tcp_header(sport, dport, seq, ack, flags));
    p.extend_from_slice(payload);
    p
}

/// Builds an IPv6 packet `::a → ::b` holding one TCP segment.
pub fn ipv6_tcp(a: u8, sport: u16, b: u8, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[6, 64]);
    let mut addr = [0u8; 16];
    addr[15] = a;
    p.extend_from_slice(&addr);
    addr[15] = b;
    p.extend_from_slice(&addr);
    p.extend_from_slice(&tcp_header(sport, dport, 1, 1, 0x18));
    p.extend_from_slice(payload);
    p
}

fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t
}

/// Wraps an IP packet in an Ethernet header with zero MACs (as tcpdump writes for `lo`).
pub fn ethernet(ip: &[u8], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// One side of a [`Conversation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// A TCP connection over IPv4, as the list of IP packets a capture would hold.
pub struct Conversation {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
    /// `(ts_ns, ip packet)` in capture order.
    pub packets: Vec<(u64, Vec<u8>)>,
    /// Time of the next packet; each packet advances it by `step_ns`.
    pub ts_ns: u64,
    pub step_ns: u64,
    /// Largest payload per segment.
    pub mss: usize,
}

impl Conversation {
    /// A connection `client → server` starting at `ts_ns`; ISNs chosen near the 32-bit wrap so
    /// tests cross it.
    pub fn new(client: (Ipv4Addr, u16), server: (Ipv4Addr, u16), ts_ns: u64) -> Self {
        Self {
            client: (client.0.octets(), client.1),
            server: (server.0.octets(), server.1),
            seq: [u32::MAX - 1000, 0x7fff_0000],
            packets: Vec::new(),
            ts_ns,
            step_ns: 1000,
            mss: 1460,
        }
    }

    fn idx(s: Side) -> usize {
        match s {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    fn emit(&mut self, from: Side, flags: u8, payload: &[u8]) {
        let i = Self::idx(from);
        let (src, dst) = match from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        let ack = if flags & 0x10 != 0 {
            self.seq[1 - i]
        } else {
            0
        };
        let p = ipv4_tcp(src.0, src.1, dst.0, dst.1, self.seq[i], ack, flags, payload);
        self.seq[i] = self.seq[i].wrapping_add(payload.len() as u32);
        if flags & 0x03 != 0 {
            self.seq[i] = self.seq[i].wrapping_add(1); // SYN and FIN take a sequence number
        }
        self.packets.push((self.ts_ns, p));
        self.ts_ns += self.step_ns;
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        self.emit(Side::Client, 0x02, b"");
        self.emit(Side::Server, 0x12, b"");
        self.emit(Side::Client, 0x10, b"");
        self
    }

    /// `data` from `from`, cut into segments of at most `mss` bytes, each acknowledged.
    pub fn send(&mut self, from: Side, data: &[u8]) -> &mut Self {
        for chunk in data.chunks(self.mss.max(1)) {
            self.emit(from, 0x18, chunk);
            let other = if from == Side::Client {
                Side::Server
            } else {
                Side::Client
            };
            self.emit(other, 0x10, b"");
        }
        self
    }

    /// FIN from each side in turn, then the last ACK.
    pub fn close(&mut self, first: Side) -> &mut Self {
        let second = if first == Side::Client {
            Side::Server
        } else {
            Side::Client
        };
        self.emit(first, 0x11, b"");
        self.emit(second, 0x11, b"");
        self.emit(first, 0x10, b"");
        self
    }

    /// RST from `from`.
    pub fn reset(&mut self, from: Side) -> &mut Self {
        self.emit(from, 0x04, b"");
        self
    }
}

/// Classic pcap bytes: `nanos` picks the ns magic, `big_endian` the writer's byte order.
pub fn pcap_file(
    link_type: u16,
    nanos: bool,
    big_endian: bool,
    packets: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = Vec::new();
    f.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend_from_slice(&u16b(2));
    f.extend_from_slice(&u16b(4));
    f.extend_from_slice(&u32b(0));
    f.extend_from_slice(&u32b(0));
    f.extend_from_slice(&u32b(262_144));
    f.extend_from_slice(&u32b(u32::from(link_type)));
    for (ts, data) in packets {
        let frac = if nanos {
            ts % 1_000_000_000
        } else {
            ts % 1_000_000_000 / 1000
        };
        f.extend_from_slice(&u32b((ts / 1_000_000_000) as u32));
        f.extend_from_slice(&u32b(frac as u32));
        f.extend_from_slice(&u32b(data.len() as u32));
        f.extend_from_slice(&u32b(data.len() as u32));
        f.extend_from_slice(data);
    }
    f
}

/// A pcapng block the builder can write.
pub enum NgBlock<'a> {
    /// Interface: link type and `if_tsresol` (None: the default, microseconds).
    Interface { link_type: u16, tsresol: Option<u8> },
    /// Enhanced packet on `interface` at `ticks` of that interface's resolution.
    Packet {
        interface: u32,
        ticks: u64,
        data: &'a [u8],
    },
    /// Simple packet (interface 0, no timestamp).
    Simple { data: &'a [u8] },
    /// A block of another type, to be skipped.
    Other { btype: u32 },
    /// A new section (byte order may change).
    Section { big_endian: bool },
}

/// pcapng bytes: a section header, then `blocks`.
pub fn pcapng_file(big_endian: bool, blocks: &[NgBlock<'_>]) -> Vec<u8> {
    let mut f = Vec::new();
    let mut be = big_endian;
    let write = |f: &mut Vec<u8>, be: bool, btype: u32, body: &[u8]| {
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let len = 12 + body.len().div_ceil(4) * 4;
        f.extend_from_slice(&u32b(btype));
        f.extend_from_slice(&u32b(len as u32));
        f.extend_from_slice(body);
        f.resize(f.len() + len - 12 - body.len(), 0);
        f.extend_from_slice(&u32b(len as u32));
    };
    let shb = |be: bool| {
        let mut b = Vec::new();
        let u = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        b.extend_from_slice(&u(0x1a2b_3c4d));
        b.extend_from_slice(&if be {
            1u16.to_be_bytes()
        } else {
            1u16.to_le_bytes()
        });
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b
    };
    write(&mut f, be, 0x0a0d_0d0a, &shb(be));
    for blk in blocks {
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        match blk {
            NgBlock::Interface { link_type, tsresol } => {
                let mut b = Vec::new();
                b.extend_from_slice(&u16b(*link_type));
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&u32b(0));
                if let Some(r) = tsresol {
                    b.extend_from_slice(&u16b(9));
                    b.extend_from_slice(&u16b(1));
                    b.extend_from_slice(&[*r, 0, 0, 0]);
                }
                b.extend_from_slice(&[0, 0, 0, 0]);
                write(&mut f, be, 1, &b);
            }
            NgBlock::Packet {
                interface,
                ticks,
                data,
            } => {
                let mut b = Vec::new();
                b.extend_from_slice(&u32b(*interface));
                b.extend_from_slice(&u32b((ticks >> 32) as u32));
                b.extend_from_slice(&u32b(*ticks as u32));
                b.extend_from_slice(&u32b(data.len() as u32));
                b.extend_from_slice(&u32b(data.len() as u32));
                b.extend_from_slice(data);
                write(&mut f, be, 6, &b);
            }
            NgBlock::Simple { data } => {
                let mut b = u32b(data.len() as u32).to_vec();
                b.extend_from_slice(data);
                write(&mut f, be, 3, &b);
            }
            NgBlock::Other { btype } => write(&mut f, be, *btype, &[1, 2, 3, 4, 5, 6, 7, 8]),
            NgBlock::Section { big_endian } => {
                be = *big_endian;
                write(&mut f, be, 0x0a0d_0d0a, &shb(be));
            }
        }
    }
    f
}
