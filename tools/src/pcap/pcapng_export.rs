//! `qalpha export pcapng`: a capture as a pcapng file that Wireshark and tshark open directly.
//!
//! Each record becomes one Enhanced Packet Block stamped with its `recv_ns` (the interface
//! declares `if_tsresol` = 9, nanoseconds, so no precision is lost). The link type is
//! `LINKTYPE_WIRESHARK_UPPER_PDU` (252): each packet starts with "exported PDU" tags naming the
//! dissector for the bytes that follow, so Wireshark parses the payload as JSON without any
//! synthetic Ethernet/IP/TCP/WebSocket headers around it — what is shown is exactly what was
//! recorded, and `exported_pdu.exported_pdu` (or `-x`) extracts it byte for byte.
//!
//! - ws text and REST bodies: dissector `json` (or `data-text-lines` when the text is not JSON);
//!   ws binary: `data`.
//! - connect / disconnect: a line of text (`connect conn=1 venue=binance transport=rest url=…`,
//!   `disconnect conn=1 reason=…`), dissector `data-text-lines`, protocol column `QCAP`.
//! - every packet carries an `opt_comment`: `conn=<id> kind=<kind> url=<url>`, so a display filter
//!   such as `frame.comment contains "kind=rest_response"` finds records by connection or kind.
//!
//! Wireshark refuses packets over 262144 bytes (`WTAP_MAX_PACKET_SIZE_STANDARD`) — the whole file
//! would fail to open — so a larger record is cut to that size like a snap length would cut it
//! (`orig_len` keeps the true size; the comment says `snapped_from=<len>`), and counted.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::{CaptureReader, Connection, RecordKind};

/// LINKTYPE_WIRESHARK_UPPER_PDU.
pub const LINKTYPE_WIRESHARK_UPPER_PDU: u16 = 252;
/// The largest packet Wireshark reads for this link type.
pub const MAX_PACKET: usize = 262_144;

const BLOCK_SHB: u32 = 0x0a0d_0d0a;
const BLOCK_IDB: u32 = 1;
const BLOCK_EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_TSRESOL: u16 = 9;
const EXP_PDU_TAG_END_OF_OPT: u16 = 0;
const EXP_PDU_TAG_DISSECTOR_NAME: u16 = 12;
const EXP_PDU_TAG_COL_PROT_TEXT: u16 = 33;
/// Option values are at most 65535 bytes.
const MAX_OPTION: usize = 65_532;

/// What the export did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportReport {
    pub files: usize,
    pub packets: u64,
    /// Records larger than Wireshark accepts, cut to [`MAX_PACKET`] bytes.
    pub snapped_packets: u64,
    /// Bytes lost at damaged tails of the input captures.
    pub lost_bytes: u64,
    pub bytes_written: u64,
    pub out: PathBuf,
}

/// Writes a pcapng file with one upper-PDU interface with nanosecond timestamps.
pub struct PcapngWriter<W: Write> {
    out: W,
    bytes: u64,
    block: Vec<u8>,
}

fn put_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(MAX_OPTION)];
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    pad4(b);
}

fn pad4(b: &mut Vec<u8>) {
    b.resize(b.len().div_ceil(4) * 4, 0);
}

/// Appends an exported-PDU tag (big-endian type and length, value zero-padded to 4 bytes).
fn put_tag(b: &mut Vec<u8>, tag: u16, value: &[u8]) {
    let padded = value.len().div_ceil(4) * 4;
    b.extend_from_slice(&tag.to_be_bytes());
    b.extend_from_slice(&(padded as u16).to_be_bytes());
    b.extend_from_slice(value);
    b.resize(b.len() + padded - value.len(), 0);
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface description.
    pub fn new(out: W, description: &str) -> io::Result<Self> {
        let mut w = Self {
            out,
            bytes: 0,
            block: Vec::with_capacity(1 << 16),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes()); // major
        body.extend_from_slice(&0u16.to_le_bytes()); // minor
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
        let app = format!("qalpha {}", env!("CARGO_PKG_VERSION"));
        put_option(&mut body, OPT_SHB_USERAPPL, app.as_bytes());
        put_option(&mut body, OPT_END, &[]);
        w.write_block(BLOCK_SHB, &body)?;
        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_WIRESHARK_UPPER_PDU.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes()); // snaplen: no limit
        put_option(&mut body, OPT_IF_NAME, b"qcap");
        put_option(&mut body, OPT_IF_DESCRIPTION, description.as_bytes());
        put_option(&mut body, OPT_IF_TSRESOL, &[9]);
        put_option(&mut body, OPT_END, &[]);
        w.write_block(BLOCK_IDB, &body)?;
        Ok(w)
    }

    fn write_block(&mut self, btype: u32, body: &[u8]) -> io::Result<()> {
        let len = (12 + body.len()) as u32;
        self.out.write_all(&btype.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(body)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.bytes += u64::from(len);
        Ok(())
    }

    /// Writes one packet: `payload` for `dissector`, stamped `ts_ns`, with `comment`. Returns
    /// whether the packet had to be cut to [`MAX_PACKET`].
    pub fn write_pdu(
        &mut self,
        ts_ns: u64,
        dissector: &str,
        column: Option<&str>,
        payload: &[u8],
        comment: &str,
    ) -> io::Result<bool> {
        let mut b = std::mem::take(&mut self.block);
        b.clear();
        b.extend_from_slice(&0u32.to_le_bytes()); // interface 0
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        let lens_at = b.len();
        b.extend_from_slice(&[0; 8]); // captured and original length, filled below
        let pdu_at = b.len();
        put_tag(&mut b, EXP_PDU_TAG_DISSECTOR_NAME, dissector.as_bytes());
        if let Some(c) = column {
            put_tag(&mut b, EXP_PDU_TAG_COL_PROT_TEXT, c.as_bytes());
        }
        put_tag(&mut b, EXP_PDU_TAG_END_OF_OPT, &[]);
        let orig = b.len() - pdu_at + payload.len();
        let cap = orig.min(MAX_PACKET);
        let snapped = cap < orig;
        b.extend_from_slice(&payload[..cap - (b.len() - pdu_at)]);
        b[lens_at..lens_at + 4].copy_from_slice(&(cap as u32).to_le_bytes());
        b[lens_at + 4..lens_at + 8].copy_from_slice(&(orig as u32).to_le_bytes());
        pad4(&mut b);
        let comment = if snapped {
            format!("{comment} snapped_from={}", payload.len())
        } else {
            comment.to_string()
        };
        put_option(
            &mut b,
            OPT_COMMENT,
            truncate_utf8(&comment, MAX_OPTION).as_bytes(),
        );
        put_option(&mut b, OPT_END, &[]);
        let res = self.write_block(BLOCK_EPB, &b);
        self.block = b;
        res.map(|_| snapped)
    }

    /// Flushes and returns the writer and the bytes written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.flush()?;
        Ok((self.out, self.bytes))
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The dissector for a text payload: JSON when it looks like JSON, otherwise lines of text.
fn text_dissector(p: &[u8]) -> &'static str {
    match p.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => "json",
        _ => "data-text-lines",
    }
}

/// The connection table of a capture's header (the reader's table also holds later declarations).
fn header_connections(path: &Path) -> Option<Vec<Connection>> {
    use qalpha_engine::capture::format::FILE_HEADER_LEN;
    use std::io::Read;
    let mut f = File::open(path).ok()?;
    let mut fixed = [0u8; FILE_HEADER_LEN];
    f.read_exact(&mut fixed).ok()?;
    let header_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    let count = usize::from(u16::from_le_bytes([fixed[24], fixed[25]]));
    let mut table = vec![0u8; header_len.checked_sub(FILE_HEADER_LEN)?];
    f.read_exact(&mut table).ok()?;
    let mut conns = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let (c, used) = Connection::decode(table.get(at..)?).ok()?;
        conns.push(c);
        at += used;
    }
    Some(conns)
}

/// Exports `inputs` (in order, e.g. a rotated series) into one pcapng file `out`.
pub fn export_pcapng(inputs: &[PathBuf], out: &Path) -> Result<ExportReport> {
    if inputs.is_empty() {
        bail!("no input captures given");
    }
    let readers = inputs
        .iter()
        .map(|f| CaptureReader::open(f).with_context(|| format!("cannot export {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let desc = format!("qalpha capture records from {}", names.join(", "));
    let io_err = || format!("cannot write {}", out.display());
    let mut w =
        PcapngWriter::new(BufWriter::with_capacity(1 << 20, file), &desc).with_context(io_err)?;
    let mut rep = ExportReport {
        files: readers.len(),
        out: out.to_path_buf(),
        ..Default::default()
    };
    for r in &readers {
        rep.lost_bytes += r.tail().lost_bytes();
        // Connections as declared so far in this file: a connect record may re-declare an id,
        // and records before it belong to the header's entry.
        let mut conns =
            header_connections(Path::new(r.path())).unwrap_or_else(|| r.connections().to_vec());
        for rec in r.records() {
            let text: String;
            if rec.kind == RecordKind::Connect {
                if let Ok((c, _)) = Connection::decode(rec.payload) {
                    match conns.iter_mut().find(|x| x.id == c.id) {
                        Some(x) => *x = c,
                        None => conns.push(c),
                    }
                }
            }
            let conn = conns.iter().find(|c| c.id == rec.conn_id);
            let url = conn.map_or("?", |c| c.url.as_str());
            let comment = format!("conn={} kind={} url={url}", rec.conn_id, rec.kind.name());
            let (dissector, column, payload): (&str, Option<&str>, &[u8]) = match rec.kind {
                RecordKind::WsText | RecordKind::RestResponse => {
                    (text_dissector(rec.payload), None, rec.payload)
                }
                RecordKind::WsBinary => ("data", None, rec.payload),
                RecordKind::Connect => {
                    text = match conn {
                        Some(c) => format!(
                            "connect conn={} venue={} transport={} url={}\n",
                            c.id,
                            c.venue.map_or("unknown", |v| v.name()),
                            match c.transport {
                                qalpha_engine::capture::Transport::WebSocket => "websocket",
                                qalpha_engine::capture::Transport::Rest => "rest",
                            },
                            c.url
                        ),
                        None => format!("connect conn={} (undecodable entry)\n", rec.conn_id),
                    };
                    ("data-text-lines", Some("QCAP"), text.as_bytes())
                }
                RecordKind::Disconnect => {
                    text = format!(
                        "disconnect conn={} reason={}\n",
                        rec.conn_id,
                        String::from_utf8_lossy(rec.payload)
                    );
                    ("data-text-lines", Some("QCAP"), text.as_bytes())
                }
            };
            let snapped = w
                .write_pdu(rec.recv_ns, dissector, column, payload, &comment)
                .with_context(io_err)?;
            rep.packets += 1;
            rep.snapped_packets += u64::from(snapped);
        }
    }
    let (buf, bytes) = w.finish().with_context(io_err)?;
    buf.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(io_err)?;
    rep.bytes_written = bytes;
    if rep.snapped_packets > 0 {
        tracing::warn!(
            packets = rep.snapped_packets,
            "records larger than {MAX_PACKET} bytes were cut so Wireshark can open the file"
        );
    }
    Ok(rep)
}
