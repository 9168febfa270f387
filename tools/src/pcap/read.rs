//! Reading packets out of classic pcap and pcapng files, streaming, one packet at a time.
//!
//! Both containers are read through one [`PacketReader`] so the importer never cares which one
//! tcpdump, Wireshark or a vendor tool wrote:
//!
//! - **classic pcap**: magic `a1b2c3d4` (µs) or `a1b23c4d` (ns), in either byte order (the byte
//!   order of the machine that wrote it); one link type for the whole file.
//! - **pcapng**: sections (SHB, each with its own byte order), interfaces (IDB, each with its own
//!   link type, `if_tsresol` and `if_tsoffset`), Enhanced / Simple / obsolete Packet Blocks. Other
//!   blocks (name resolution, statistics, custom, decryption secrets) are skipped by length.
//!
//! A capture cut short (tcpdump killed, disk full) or damaged in the middle ends the iteration at
//! the last whole packet and says why in [`PacketReader::end`]; only a file that is not a capture
//! at all, or an I/O error, is an `Err`. Nothing here trusts a length field before checking it
//! against [`MAX_BLOCK_LEN`], so a garbled file cannot make the reader allocate gigabytes or panic.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::PcapError;

/// Largest packet or block accepted. tcpdump's default snap length is 256 KiB and loopback frames
/// are at most 64 KiB; anything much larger is a damaged length field, not a packet.
pub const MAX_BLOCK_LEN: usize = 64 << 20;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const BLOCK_IDB: u32 = 1;
const BLOCK_OPB: u32 = 2;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time, Unix-epoch nanoseconds.
    pub ts_ns: u64,
    /// LINKTYPE_* of the interface the packet was captured on.
    pub link_type: u16,
    /// The captured bytes (possibly fewer than `orig_len` when the snap length cut it).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

/// How the capture ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CaptureEnd {
    /// Still reading, or the last packet ended exactly at the end of the file.
    #[default]
    Clean,
    /// The file stops inside a packet or block (the writer was killed): the partial one is ignored.
    Truncated { offset: u64, lost_bytes: u64 },
    /// A length or header is impossible: reading stops there, the rest of the file is not read.
    Corrupt { offset: u64, why: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// Timestamp units of one interface: `10^-n` or `2^-n` seconds per tick, plus an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interface {
    link_type: u16,
    /// `if_tsresol` as written: high bit set means a power of two.
    tsresol: u8,
    offset_s: i64,
}

impl Interface {
    fn ts_ns(&self, ticks: u64) -> u64 {
        let exp = u32::from(self.tsresol & 0x7f);
        let ns: u128 = if self.tsresol & 0x80 != 0 {
            (u128::from(ticks) * 1_000_000_000) >> exp.min(127)
        } else if exp <= 9 {
            u128::from(ticks) * 10u128.pow(9 - exp)
        } else {
            u128::from(ticks) / 10u128.pow((exp - 9).min(38))
        };
        let ns = ns as i128 + i128::from(self.offset_s) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap {
        endian: Endian,
        nanos: bool,
        link_type: u16,
    },
    Pcapng {
        endian: Endian,
    },
}

/// Where a packet found by a block reader lies in the reader's buffer.
struct Found {
    ts_ns: u64,
    link_type: u16,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// Streams packets out of a pcap or pcapng file.
pub struct PacketReader<R> {
    inner: R,
    name: String,
    format: Format,
    interfaces: Vec<Interface>,
    buf: Vec<u8>,
    offset: u64,
    end: CaptureEnd,
    done: bool,
    /// Timestamp of the last packet (Simple Packet Blocks carry none and inherit it).
    last_ts: u64,
    /// Packets on an interface the file never described (counted, skipped).
    pub unknown_interface: u64,
}

impl PacketReader<BufReader<File>> {
    /// Opens `path` and reads its file header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let p = path.as_ref();
        let f = File::open(p).map_err(|source| PcapError::Io {
            path: p.display().to_string(),
            source,
        })?;
        Self::new(
            BufReader::with_capacity(1 << 20, f),
            p.display().to_string(),
        )
    }
}

impl<R: Read> PacketReader<R> {
    /// Reads the file header from `inner`; `name` is used in messages.
    pub fn new(inner: R, name: String) -> Result<Self, PcapError> {
        let mut r = Self {
            inner,
            name,
            format: Format::Pcapng {
                endian: Endian::Little,
            },
            interfaces: Vec::new(),
            buf: Vec::new(),
            offset: 0,
            end: CaptureEnd::Clean,
            done: false,
            last_ts: 0,
            unknown_interface: 0,
        };
        let mut head = [0u8; 4];
        let n = r.read_up_to_into(&mut head)?;
        if n < 4 {
            return Err(r.not_a_capture(format!("{n} bytes is too short for a capture header")));
        }
        let le = u32::from_le_bytes(head);
        let be = u32::from_be_bytes(head);
        if le == PCAPNG_SHB {
            let mut len_bytes = [0u8; 4];
            if r.read_up_to_into(&mut len_bytes)? < 4 {
                return Err(r.not_a_capture("pcapng section header cut short".into()));
            }
            r.read_shb(0, len_bytes)?;
            if r.done {
                return Err(
                    r.not_a_capture(format!("pcapng section header unreadable: {:?}", r.end))
                );
            }
            return Ok(r);
        }
        let (endian, nanos) = match (le, be) {
            (PCAP_MAGIC_US, _) => (Endian::Little, false),
            (PCAP_MAGIC_NS, _) => (Endian::Little, true),
            (_, PCAP_MAGIC_US) => (Endian::Big, false),
            (_, PCAP_MAGIC_NS) => (Endian::Big, true),
            _ => {
                return Err(r.not_a_capture(format!(
                    "unknown magic {le:08x} (expected pcap a1b2c3d4/a1b23c4d or pcapng 0a0d0d0a)"
                )))
            }
        };
        let mut rest = [0u8; 20];
        if r.read_up_to_into(&mut rest)? < 20 {
            return Err(r.not_a_capture("pcap file header cut short".into()));
        }
        // The link-type field's upper bits may carry FCS information; the type is the low 16.
        let link_type = (endian.u32(&rest[16..20]) & 0xffff) as u16;
        r.format = Format::Pcap {
            endian,
            nanos,
            link_type,
        };
        Ok(r)
    }

    fn not_a_capture(&self, why: String) -> PcapError {
        PcapError::NotACapture {
            path: self.name.clone(),
            why,
        }
    }

    /// How the file ended (meaningful once [`PacketReader::next_packet`] returned `None`).
    pub fn end(&self) -> &CaptureEnd {
        &self.end
    }

    /// Whether the file is pcapng (else classic pcap).
    pub fn is_pcapng(&self) -> bool {
        matches!(self.format, Format::Pcapng { .. })
    }

    /// Reads into `out` until it is full or the file ends; returns the bytes read.
    fn read_up_to_into(&mut self, out: &mut [u8]) -> Result<usize, PcapError> {
        let mut n = 0;
        while n < out.len() {
            match self.inner.read(&mut out[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(PcapError::Io {
                        path: self.name.clone(),
                        source,
                    })
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    /// Fills `self.buf` with exactly `len` bytes; `false` (and the end marked truncated) if the
    /// file ends first. `started` is how many bytes of this unit were already consumed.
    fn fill(&mut self, len: usize, started: u64) -> Result<bool, PcapError> {
        self.buf.clear();
        self.buf.resize(len, 0);
        let mut b = std::mem::take(&mut self.buf);
        let n = self.read_up_to_into(&mut b);
        self.buf = b;
        let n = n?;
        if n < len {
            self.truncated(started + n as u64);
            return Ok(false);
        }
        Ok(true)
    }

    fn truncated(&mut self, lost: u64) {
        if lost > 0 {
            self.end = CaptureEnd::Truncated {
                offset: self.offset - lost,
                lost_bytes: lost,
            };
        }
        self.done = true;
    }

    fn corrupt(&mut self, at: u64, why: String) {
        tracing::warn!(file = %self.name, offset = at, %why, "pcap: damaged capture, reading stops here");
        self.end = CaptureEnd::Corrupt { offset: at, why };
        self.done = true;
    }

    /// The next packet, or `None` at the end of the file (see [`PacketReader::end`]).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, PcapError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let found = match self.format {
                Format::Pcap {
                    endian,
                    nanos,
                    link_type,
                } => self.next_pcap(endian, nanos, link_type)?,
                Format::Pcapng { endian } => self.next_pcapng_block(endian)?,
            };
            if let Some(f) = found {
                self.last_ts = f.ts_ns;
                return Ok(Some(Packet {
                    ts_ns: f.ts_ns,
                    link_type: f.link_type,
                    data: &self.buf[f.start..f.start + f.len],
                    orig_len: f.orig_len,
                }));
            }
        }
    }

    /// One classic pcap record: `(ts, link, data start, data len, orig len)` in `self.buf`.
    fn next_pcap(
        &mut self,
        e: Endian,
        nanos: bool,
        link_type: u16,
    ) -> Result<Option<Found>, PcapError> {
        let at = self.offset;
        if !self.fill(16, 0)? {
            return Ok(None);
        }
        let sec = u64::from(e.u32(&self.buf[0..4]));
        let frac = u64::from(e.u32(&self.buf[4..8]));
        let incl = e.u32(&self.buf[8..12]) as usize;
        let orig = e.u32(&self.buf[12..16]);
        if incl > MAX_BLOCK_LEN {
            self.corrupt(at, format!("packet length {incl} is impossible"));
            return Ok(None);
        }
        if !self.fill(incl, 16)? {
            return Ok(None);
        }
        let ts = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        Ok(Some(Found {
            ts_ns: ts,
            link_type,
            start: 0,
            len: incl,
            orig_len: orig.max(incl as u32),
        }))
    }

    /// Reads one pcapng block; returns a packet if it was one.
    fn next_pcapng_block(&mut self, e: Endian) -> Result<Option<Found>, PcapError> {
        let at = self.offset;
        let mut head = [0u8; 8];
        let n = self.read_up_to_into(&mut head)?;
        if n < 8 {
            self.truncated(n as u64);
            return Ok(None);
        }
        if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == PCAPNG_SHB {
            self.read_shb(at, [head[4], head[5], head[6], head[7]])?;
            return Ok(None);
        }
        let btype = e.u32(&head[0..4]);
        let len = e.u32(&head[4..8]) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK_LEN {
            self.corrupt(
                at,
                format!("block of type {btype:#x} has invalid length {len}"),
            );
            return Ok(None);
        }
        if !self.fill(len - 8, 8)? {
            return Ok(None);
        }
        let body_len = len - 12;
        if e.u32(&self.buf[body_len..]) as usize != len {
            self.corrupt(
                at,
                format!("block of type {btype:#x}: trailer does not match its length"),
            );
            return Ok(None);
        }
        let body = &self.buf[..body_len];
        match btype {
            BLOCK_IDB => {
                if body.len() < 8 {
                    self.corrupt(at, "interface description block too short".into());
                    return Ok(None);
                }
                let mut itf = Interface {
                    link_type: e.u16(&body[0..2]),
                    tsresol: 6,
                    offset_s: 0,
                };
                for (code, val) in options(e, &body[8..]) {
                    match (code, val.len()) {
                        (OPT_IF_TSRESOL, 1..) => itf.tsresol = val[0],
                        (OPT_IF_TSOFFSET, 8..) => itf.offset_s = e.u64(val) as i64,
                        _ => {}
                    }
                }
                self.interfaces.push(itf);
                Ok(None)
            }
            BLOCK_EPB | BLOCK_OPB => {
                if body.len() < 20 {
                    self.corrupt(at, "packet block too short".into());
                    return Ok(None);
                }
                // EPB: 32-bit interface id; obsolete PB: 16-bit id + 16-bit drop count. The rest
                // of the two layouts is the same.
                let iface = if btype == BLOCK_EPB {
                    e.u32(&body[0..4]) as usize
                } else {
                    usize::from(e.u16(&body[0..2]))
                };
                let ticks = (u64::from(e.u32(&body[4..8])) << 32) | u64::from(e.u32(&body[8..12]));
                let caplen = e.u32(&body[12..16]) as usize;
                let orig = e.u32(&body[16..20]);
                if caplen > body.len() - 20 {
                    self.corrupt(at, format!("packet of {caplen} bytes overruns its block"));
                    return Ok(None);
                }
                let Some(itf) = self.interfaces.get(iface).copied() else {
                    self.unknown_interface += 1;
                    return Ok(None);
                };
                Ok(Some(Found {
                    ts_ns: itf.ts_ns(ticks),
                    link_type: itf.link_type,
                    start: 20,
                    len: caplen,
                    orig_len: orig.max(caplen as u32),
                }))
            }
            BLOCK_SPB => {
                if body.len() < 4 {
                    self.corrupt(at, "simple packet block too short".into());
                    return Ok(None);
                }
                let orig = e.u32(&body[0..4]);
                let caplen = (orig as usize).min(body.len() - 4);
                let Some(itf) = self.interfaces.first().copied() else {
                    self.unknown_interface += 1;
                    return Ok(None);
                };
                // A simple packet block has no timestamp: it inherits the previous packet's.
                Ok(Some(Found {
                    ts_ns: self.last_ts,
                    link_type: itf.link_type,
                    start: 4,
                    len: caplen,
                    orig_len: orig,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Reads a section header block after its type and length fields (8 bytes, at `at`). A new
    /// section brings its own byte order and numbers its interfaces from zero again.
    fn read_shb(&mut self, at: u64, len_bytes: [u8; 4]) -> Result<(), PcapError> {
        let mut bom = [0u8; 4];
        let n = self.read_up_to_into(&mut bom)?;
        if n < 4 {
            self.truncated(8 + n as u64);
            return Ok(());
        }
        let endian = match (u32::from_le_bytes(bom), u32::from_be_bytes(bom)) {
            (PCAPNG_BOM, _) => Endian::Little,
            (_, PCAPNG_BOM) => Endian::Big,
            _ => {
                self.corrupt(at, "pcapng section header has no byte-order magic".into());
                return Ok(());
            }
        };
        let len = endian.u32(&len_bytes) as usize;
        if !(28..=MAX_BLOCK_LEN).contains(&len) || !len.is_multiple_of(4) {
            self.corrupt(at, format!("section header block length {len} is invalid"));
            return Ok(());
        }
        if !self.fill(len - 12, 12)? {
            return Ok(());
        }
        if endian.u32(&self.buf[len - 16..]) as usize != len {
            self.corrupt(
                at,
                "section header block trailer does not match its length".into(),
            );
            return Ok(());
        }
        self.format = Format::Pcapng { endian };
        self.interfaces.clear();
        Ok(())
    }
}

/// Iterates pcapng options `(code, value)` up to `opt_endofopt` or the end of `b`.
fn options(e: Endian, mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let code = e.u16(&b[0..2]);
        let len = usize::from(e.u16(&b[2..4]));
        if code == OPT_END || 4 + len > b.len() {
            return None;
        }
        let val = &b[4..4 + len];
        b = &b[(4 + len.div_ceil(4) * 4).min(b.len())..];
        Some((code, val))
    })
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
