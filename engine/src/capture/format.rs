//! Byte layout of `.qcap` v1 (see `docs/CAPTURE-FORMAT.md` for the table).
//!
//! ```text
//! file    := file_header connection_entry* padding(8) record*
//! record  := record_header payload padding(8)
//! ```

use crate::event::Venue;

/// First eight bytes of every capture file.
pub const CAPTURE_MAGIC: [u8; 8] = *b"QALPHCAP";
/// The version this build writes and reads.
pub const CAPTURE_VERSION: u16 = 1;
/// Fixed part of the file header.
pub const FILE_HEADER_LEN: usize = 32;
/// Fixed part of one connection entry (the URL follows, padded to 8).
pub const CONN_ENTRY_FIXED_LEN: usize = 8;
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// Largest payload a record may carry (a REST snapshot of 1000 levels is ~60 KB).
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// Longest URL in a connection entry.
pub const MAX_URL_LEN: usize = u16::MAX as usize;

/// Rounds up to the next multiple of 8.
#[inline]
pub const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A WebSocket text frame's payload.
    WsText = 1,
    /// A WebSocket binary frame's payload.
    WsBinary = 2,
    /// The body of a REST response (e.g. a depth snapshot) on a REST connection.
    RestResponse = 3,
    /// A connection was (re)established. Payload: a connection entry (declares or re-declares the
    /// connection id, so connections opened mid-file are self-describing).
    Connect = 4,
    /// A connection closed. Payload: UTF-8 reason text (may be empty).
    Disconnect = 5,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::WsText,
            2 => Self::WsBinary,
            3 => Self::RestResponse,
            4 => Self::Connect,
            5 => Self::Disconnect,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::WsText => "ws_text",
            Self::WsBinary => "ws_binary",
            Self::RestResponse => "rest_response",
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
        }
    }
}

/// How a connection talks to the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Transport {
    WebSocket = 1,
    Rest = 2,
}

impl Transport {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::WebSocket),
            2 => Some(Self::Rest),
            _ => None,
        }
    }
}

/// One entry of the connection table: which venue, over what, to which URL (stream or route).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: u16,
    /// `None` for a venue this build does not know (kept so the file still reads).
    pub venue: Option<Venue>,
    pub transport: Transport,
    pub url: String,
}

impl Connection {
    /// Encoded length, padded.
    pub fn encoded_len(&self) -> usize {
        CONN_ENTRY_FIXED_LEN + pad8(self.url.len())
    }

    /// Appends the entry (with padding) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.push(self.venue.map(|v| v as u8).unwrap_or(0));
        out.push(self.transport as u8);
        out.extend_from_slice(&(self.url.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(self.url.as_bytes());
        out.resize(out.len() + pad8(self.url.len()) - self.url.len(), 0);
    }

    /// Decodes one entry from the front of `b`; returns it and the bytes consumed.
    pub fn decode(b: &[u8]) -> Result<(Self, usize), String> {
        if b.len() < CONN_ENTRY_FIXED_LEN {
            return Err("connection entry cut short".into());
        }
        let id = u16::from_le_bytes([b[0], b[1]]);
        let venue = Venue::from_u8(b[2]);
        let transport = Transport::from_u8(b[3])
            .ok_or_else(|| format!("connection {id}: unknown transport {}", b[3]))?;
        let url_len = u16::from_le_bytes([b[4], b[5]]) as usize;
        let end = CONN_ENTRY_FIXED_LEN + url_len;
        if b.len() < end {
            return Err(format!("connection {id}: URL cut short"));
        }
        let url = std::str::from_utf8(&b[CONN_ENTRY_FIXED_LEN..end])
            .map_err(|_| format!("connection {id}: URL is not UTF-8"))?
            .to_string();
        let used = (CONN_ENTRY_FIXED_LEN + pad8(url_len)).min(b.len());
        Ok((
            Self {
                id,
                venue,
                transport,
                url,
            },
            used,
        ))
    }
}

/// Encodes a file header with its connection table.
pub fn encode_file_header(created_ns: u64, file_index: u16, conns: &[Connection]) -> Vec<u8> {
    let header_len = FILE_HEADER_LEN + conns.iter().map(Connection::encoded_len).sum::<usize>();
    let mut out = Vec::with_capacity(header_len);
    out.extend_from_slice(&CAPTURE_MAGIC);
    out.extend_from_slice(&CAPTURE_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&(header_len as u32).to_le_bytes());
    out.extend_from_slice(&created_ns.to_le_bytes());
    out.extend_from_slice(&(conns.len() as u16).to_le_bytes());
    out.extend_from_slice(&file_index.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved
    for c in conns {
        c.encode_into(&mut out);
    }
    debug_assert_eq!(out.len(), header_len);
    out
}

/// Encodes a record header.
#[inline]
pub fn encode_record_header(
    recv_ns: u64,
    conn_id: u16,
    kind: RecordKind,
    payload_len: usize,
) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[4] = kind as u8;
    h[5] = 0; // flags, reserved
    h[6..8].copy_from_slice(&conn_id.to_le_bytes());
    h[8..16].copy_from_slice(&recv_ns.to_le_bytes());
    h
}
