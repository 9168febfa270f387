//! Memory-mapped capture reader: validate once at open, then zero-copy iteration.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::format::{
    pad8, Connection, RecordKind, CAPTURE_MAGIC, CAPTURE_VERSION, FILE_HEADER_LEN, MAX_PAYLOAD_LEN,
    RECORD_HEADER_LEN,
};
use super::CaptureError;

/// How the file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TailStatus {
    /// The last record ends exactly at the end of the file.
    Clean,
    /// The file stops inside a record (a crash while writing): the partial record is ignored.
    Truncated { offset: u64, lost_bytes: u64 },
    /// A record header is invalid (bad kind, unknown connection, absurd length): reading stops there.
    Corrupt {
        offset: u64,
        lost_bytes: u64,
        why: String,
    },
}

impl TailStatus {
    pub fn lost_bytes(&self) -> u64 {
        match self {
            TailStatus::Clean => 0,
            TailStatus::Truncated { lost_bytes, .. } | TailStatus::Corrupt { lost_bytes, .. } => {
                *lost_bytes
            }
        }
    }
}

/// One record, borrowed from the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub recv_ns: u64,
    pub conn_id: u16,
    pub kind: RecordKind,
    pub payload: &'a [u8],
}

/// A mapped, validated capture file.
pub struct CaptureReader {
    map: Mmap,
    path: String,
    version: u16,
    created_ns: u64,
    file_index: u16,
    header_len: usize,
    /// End of the last whole, valid record.
    valid_end: usize,
    records: u64,
    connections: Vec<Connection>,
    tail: TailStatus,
}

impl CaptureReader {
    /// Maps and validates `path`. Errors only when the file cannot be read as a capture at all;
    /// a damaged tail is reported through [`CaptureReader::tail`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let p = path.as_ref().display().to_string();
        let file = File::open(path.as_ref()).map_err(|source| CaptureError::Io {
            path: p.clone(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| CaptureError::Io {
                path: p.clone(),
                source,
            })?
            .len();
        if len < FILE_HEADER_LEN as u64 {
            return Err(CaptureError::NotACapture {
                path: p,
                why: format!("{len} bytes is shorter than the {FILE_HEADER_LEN}-byte header"),
            });
        }
        // SAFETY: the map is read-only and private to this reader. A capture being appended to by a
        // recorder only grows past the mapped length; truncating a file while it is replayed is
        // outside the contract (as with any mmap-based reader) and documented in CAPTURE-FORMAT.md.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| CaptureError::Io {
            path: p.clone(),
            source,
        })?;
        Self::validate(map, p)
    }

    fn validate(map: Mmap, path: String) -> Result<Self, CaptureError> {
        let b: &[u8] = &map;
        if b[0..8] != CAPTURE_MAGIC {
            return Err(CaptureError::NotACapture {
                path,
                why: "bad magic (expected \"QALPHCAP\")".into(),
            });
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != CAPTURE_VERSION {
            return Err(CaptureError::UnsupportedVersion { path, version });
        }
        let header_len = u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()) as usize;
        let created_ns = u64::from_le_bytes(b[16..24].try_into().unwrap_or_default());
        let conn_count = u16::from_le_bytes([b[24], b[25]]) as usize;
        let file_index = u16::from_le_bytes([b[26], b[27]]);
        let corrupt = |why: String| CaptureError::CorruptHeader {
            path: path.clone(),
            why,
        };
        if header_len < FILE_HEADER_LEN || header_len > b.len() || !header_len.is_multiple_of(8) {
            return Err(corrupt(format!(
                "header length {header_len} is invalid for a {}-byte file",
                b.len()
            )));
        }
        let mut connections = Vec::with_capacity(conn_count);
        let mut off = FILE_HEADER_LEN;
        for _ in 0..conn_count {
            let (c, used) = Connection::decode(&b[off..header_len]).map_err(&corrupt)?;
            connections.push(c);
            off += used;
        }
        if off != header_len {
            return Err(corrupt(format!(
                "connection table ends at {off}, header says {header_len}"
            )));
        }

        // Validate every record header once, so iteration needs no checks.
        let mut pos = header_len;
        let mut records = 0u64;
        let tail = loop {
            let left = b.len() - pos;
            if left == 0 {
                break TailStatus::Clean;
            }
            if left < RECORD_HEADER_LEN {
                break TailStatus::Truncated {
                    offset: pos as u64,
                    lost_bytes: left as u64,
                };
            }
            let h = &b[pos..pos + RECORD_HEADER_LEN];
            let payload_len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let conn_id = u16::from_le_bytes([h[6], h[7]]);
            let bad = |why: String| TailStatus::Corrupt {
                offset: pos as u64,
                lost_bytes: left as u64,
                why,
            };
            let Some(kind) = RecordKind::from_u8(h[4]) else {
                break bad(format!("unknown record kind {}", h[4]));
            };
            if payload_len > MAX_PAYLOAD_LEN {
                break bad(format!(
                    "payload length {payload_len} exceeds the format's limit"
                ));
            }
            let total = RECORD_HEADER_LEN + pad8(payload_len);
            // The last record may legitimately lack its padding only if the writer died; a whole
            // record needs header + payload + padding.
            if total > left {
                break TailStatus::Truncated {
                    offset: pos as u64,
                    lost_bytes: left as u64,
                };
            }
            let payload = &b[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + payload_len];
            if kind == RecordKind::Connect {
                match Connection::decode(payload) {
                    Ok((c, _)) if c.id == conn_id => {
                        match connections.iter_mut().find(|x| x.id == c.id) {
                            Some(x) => *x = c,
                            None => connections.push(c),
                        }
                    }
                    Ok(_) => break bad("connect record declares a different connection id".into()),
                    Err(e) => break bad(format!("connect record: {e}")),
                }
            } else if !connections.iter().any(|c| c.id == conn_id) {
                break bad(format!("record on undeclared connection {conn_id}"));
            }
            pos += total;
            records += 1;
        };
        if tail != TailStatus::Clean {
            tracing::warn!(path = %path, ?tail, records, "capture file is damaged at its tail; reading up to the last whole record");
        }
        Ok(Self {
            map,
            path,
            version,
            created_ns,
            file_index,
            header_len,
            valid_end: pos,
            records,
            connections,
            tail,
        })
    }

    /// Iterates the whole, valid records in file order, borrowing payloads from the map.
    pub fn records(&self) -> RecordIter<'_> {
        RecordIter {
            buf: &self.map[..self.valid_end],
            pos: self.header_len,
        }
    }

    /// Connections: the header's table plus any declared by `Connect` records.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    pub fn connection(&self, id: u16) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn record_count(&self) -> u64 {
        self.records
    }

    pub fn tail(&self) -> &TailStatus {
        &self.tail
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn created_ns(&self) -> u64 {
        self.created_ns
    }

    /// Position of this file in a rotated series (0 for the first).
    pub fn file_index(&self) -> u16 {
        self.file_index
    }
}

/// Iterator over validated records. No bounds surprises: [`CaptureReader::open`] checked them all.
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        let h = self.buf.get(self.pos..self.pos + RECORD_HEADER_LEN)?;
        let payload_len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        // Validated at open; fall back to ending the iteration rather than trusting blindly.
        let kind = RecordKind::from_u8(h[4])?;
        let conn_id = u16::from_le_bytes([h[6], h[7]]);
        let recv_ns = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let start = self.pos + RECORD_HEADER_LEN;
        let payload = self.buf.get(start..start + payload_len)?;
        self.pos = start + pad8(payload_len);
        Some(Record {
            recv_ns,
            conn_id,
            kind,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CaptureWriter, Transport, WriterOptions};
    use super::*;
    use crate::event::Venue;

    fn conns() -> Vec<Connection> {
        vec![
            Connection {
                id: 0,
                venue: Some(Venue::BinanceUsdm),
                transport: Transport::WebSocket,
                url: "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker".into(),
            },
            Connection {
                id: 1,
                venue: Some(Venue::BinanceUsdm),
                transport: Transport::Rest,
                url: "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000".into(),
            },
        ]
    }

    fn sample_records() -> Vec<(u64, u16, RecordKind, Vec<u8>)> {
        (0..500u64)
            .map(|i| {
                let kind = match i % 7 {
                    0 => RecordKind::RestResponse,
                    3 => RecordKind::WsBinary,
                    _ => RecordKind::WsText,
                };
                let conn = if kind == RecordKind::RestResponse {
                    1
                } else {
                    0
                };
                // Varied lengths exercise every padding remainder, including empty payloads.
                let payload: Vec<u8> = (0..(i * 13 % 97)).map(|j| (i + j) as u8).collect();
                (1_700_000_000_000_000_000 + i * 1000, conn, kind, payload)
            })
            .collect()
    }

    #[test]
    fn round_trip_is_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.qcap");
        let mut w = CaptureWriter::create(&path, conns(), WriterOptions::default()).unwrap();
        let recs = sample_records();
        for (t, c, k, p) in &recs {
            w.write(*t, *c, *k, p).unwrap();
        }
        w.connect(
            42,
            Connection {
                id: 2,
                venue: None,
                transport: Transport::WebSocket,
                url: "wss://x".into(),
            },
        )
        .unwrap();
        w.write(43, 2, RecordKind::Disconnect, b"bye").unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files, vec![path.clone()]);

        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.tail(), &TailStatus::Clean);
        assert_eq!(r.record_count(), recs.len() as u64 + 2);
        assert_eq!(&r.connections()[..2], &conns()[..]);
        assert_eq!(r.connection(2).unwrap().url, "wss://x");
        let got: Vec<_> = r.records().collect();
        for (g, (t, c, k, p)) in got.iter().zip(&recs) {
            assert_eq!(
                (g.recv_ns, g.conn_id, g.kind, g.payload),
                (*t, *c, *k, &p[..])
            );
        }
        assert_eq!(got.last().unwrap().payload, b"bye");
        // Payloads are borrowed from the map, 8-byte aligned.
        assert!(got
            .iter()
            .all(|g| (g.payload.as_ptr() as usize).is_multiple_of(8)));
    }

    #[test]
    fn rotation_splits_into_self_contained_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rot.qcap");
        let opts = WriterOptions {
            rotate_bytes: Some(4096),
            buffer_bytes: 512,
        };
        let mut w = CaptureWriter::create(&path, conns(), opts).unwrap();
        let recs = sample_records();
        for (t, c, k, p) in &recs {
            w.write(*t, *c, *k, p).unwrap();
        }
        let files = w.finish().unwrap();
        assert!(files.len() > 3, "{files:?}");
        assert_eq!(files[1], dir.path().join("rot.1.qcap"));
        let mut all = Vec::new();
        for (i, f) in files.iter().enumerate() {
            assert!(std::fs::metadata(f).unwrap().len() <= 4096);
            let r = CaptureReader::open(f).unwrap();
            assert_eq!(r.file_index() as usize, i);
            assert_eq!(r.connections(), &conns()[..]);
            assert_eq!(r.tail(), &TailStatus::Clean);
            all.extend(
                r.records()
                    .map(|x| (x.recv_ns, x.conn_id, x.kind, x.payload.to_vec())),
            );
        }
        assert_eq!(all, recs);
    }

    #[test]
    fn truncated_tail_reads_whole_records_and_reports_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.qcap");
        let mut w = CaptureWriter::create(&path, conns(), WriterOptions::default()).unwrap();
        let recs = sample_records();
        for (t, c, k, p) in &recs {
            w.write(*t, *c, *k, p).unwrap();
        }
        w.finish().unwrap();
        let full = std::fs::read(&path).unwrap();
        // Cut at every offset inside the last few records: never a panic, always a prefix.
        for cut in (full.len() - 400)..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let r = CaptureReader::open(&path).unwrap();
            let n = r.records().count() as u64;
            assert_eq!(n, r.record_count());
            assert!(n < recs.len() as u64);
            match r.tail() {
                TailStatus::Truncated { lost_bytes, .. } => assert!(*lost_bytes > 0),
                TailStatus::Clean => {} // cut exactly on a record boundary
                other => panic!("unexpected {other:?}"),
            }
            for (g, (t, _, _, p)) in r.records().zip(&recs) {
                assert_eq!((g.recv_ns, g.payload), (*t, &p[..]));
            }
        }
    }

    #[test]
    fn garbage_is_a_clear_error_or_a_reported_corrupt_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.qcap");
        std::fs::write(&path, b"{\"not\":\"a capture\"} padding padding padding").unwrap();
        let e = CaptureReader::open(&path).err().unwrap().to_string();
        assert!(e.contains("not a qcap capture file"), "{e}");
        std::fs::write(&path, b"short").unwrap();
        assert!(CaptureReader::open(&path).is_err());
        let mut w = CaptureWriter::create(&path, conns(), WriterOptions::default()).unwrap();
        w.write(1, 0, RecordKind::WsText, b"{}").unwrap();
        w.write(2, 0, RecordKind::WsText, b"{}").unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let second = bytes.len() - 24;
        bytes[second + 4] = 99; // bad kind in the second record
        std::fs::write(&path, &bytes).unwrap();
        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.record_count(), 1);
        assert!(matches!(r.tail(), TailStatus::Corrupt { .. }));
        let mut bytes2 = bytes.clone();
        bytes2[8] = 9; // version
        std::fs::write(&path, &bytes2).unwrap();
        assert!(matches!(
            CaptureReader::open(&path),
            Err(CaptureError::UnsupportedVersion { .. })
        ));
        assert!(CaptureReader::open(dir.path().join("missing.qcap"))
            .err()
            .unwrap()
            .to_string()
            .contains("missing.qcap"));
    }
}
