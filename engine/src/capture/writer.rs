//! Append-only, buffered capture writer with size-based rotation.
//!
//! Runs on the recorder thread (never on the hot path). Records are written whole through a
//! `BufWriter`; when the current file would pass `rotate_bytes`, it is flushed and closed and the
//! next file (`NAME.1.qcap`, `NAME.2.qcap`, …) starts with a header that repeats the connection table,
//! so every file replays on its own.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::format::{
    encode_file_header, encode_record_header, pad8, Connection, RecordKind, MAX_PAYLOAD_LEN,
};
use super::CaptureError;

/// Writer settings.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Start a new file before one would pass this many bytes (`None`: never rotate).
    pub rotate_bytes: Option<u64>,
    /// Write buffer size.
    pub buffer_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            rotate_bytes: None,
            buffer_bytes: 1 << 20,
        }
    }
}

/// Writes `.qcap` files.
pub struct CaptureWriter {
    base: PathBuf,
    opts: WriterOptions,
    conns: Vec<Connection>,
    out: BufWriter<File>,
    file_bytes: u64,
    file_records: u64,
    file_index: u16,
    files: Vec<PathBuf>,
    records: u64,
}

const PAD: [u8; 8] = [0; 8];

impl CaptureWriter {
    /// Creates `path` (truncating it) with the given connection table.
    pub fn create(
        path: impl AsRef<Path>,
        conns: Vec<Connection>,
        opts: WriterOptions,
    ) -> Result<Self, CaptureError> {
        let base = path.as_ref().to_path_buf();
        let (out, len) = open_file(&base, 0, &conns, opts.buffer_bytes)?;
        Ok(Self {
            files: vec![base.clone()],
            base,
            opts,
            conns,
            out,
            file_bytes: len,
            file_records: 0,
            file_index: 0,
            records: 0,
        })
    }

    /// Declares a connection opened mid-file (or re-opened) and records a `Connect` record for it.
    pub fn connect(&mut self, recv_ns: u64, conn: Connection) -> Result<(), CaptureError> {
        let mut payload = Vec::with_capacity(conn.encoded_len());
        conn.encode_into(&mut payload);
        match self.conns.iter_mut().find(|c| c.id == conn.id) {
            Some(c) => *c = conn.clone(),
            None => self.conns.push(conn.clone()),
        }
        self.write(recv_ns, conn.id, RecordKind::Connect, &payload)
    }

    /// Appends one record.
    pub fn write(
        &mut self,
        recv_ns: u64,
        conn_id: u16,
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<(), CaptureError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(CaptureError::InvalidRecord(format!(
                "payload of {} bytes exceeds the {} byte limit",
                payload.len(),
                MAX_PAYLOAD_LEN
            )));
        }
        if kind != RecordKind::Connect && !self.conns.iter().any(|c| c.id == conn_id) {
            return Err(CaptureError::InvalidRecord(format!(
                "connection id {conn_id} was never declared"
            )));
        }
        let rec_len = (super::format::RECORD_HEADER_LEN + pad8(payload.len())) as u64;
        if let Some(limit) = self.opts.rotate_bytes {
            if self.file_records > 0 && self.file_bytes + rec_len > limit {
                self.rotate()?;
            }
        }
        let header = encode_record_header(recv_ns, conn_id, kind, payload.len());
        let pad = pad8(payload.len()) - payload.len();
        let res = self
            .out
            .write_all(&header)
            .and_then(|_| self.out.write_all(payload))
            .and_then(|_| self.out.write_all(&PAD[..pad]));
        res.map_err(|e| self.io_err(e))?;
        self.file_bytes += rec_len;
        self.file_records += 1;
        self.records += 1;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|e| self.io_err(e))?;
        self.file_index = self
            .file_index
            .checked_add(1)
            .ok_or_else(|| CaptureError::InvalidRecord("more than 65535 rotated files".into()))?;
        let path = rotated_path(&self.base, self.file_index);
        let (out, len) = open_file(&path, self.file_index, &self.conns, self.opts.buffer_bytes)?;
        self.out = out;
        self.file_bytes = len;
        self.file_records = 0;
        self.files.push(path);
        Ok(())
    }

    fn io_err(&self, source: std::io::Error) -> CaptureError {
        CaptureError::Io {
            path: self
                .files
                .last()
                .unwrap_or(&self.base)
                .display()
                .to_string(),
            source,
        }
    }

    /// Flushes buffered records to the OS.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|e| self.io_err(e))
    }

    /// Records written so far, over all files.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes, syncs and closes; returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, CaptureError> {
        self.flush()?;
        self.out.get_ref().sync_all().map_err(|e| self.io_err(e))?;
        Ok(self.files)
    }
}

/// `dir/name.qcap` → `dir/name.N.qcap` (or `name.N` when there is no extension).
pub fn rotated_path(base: &Path, index: u16) -> PathBuf {
    if index == 0 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{index}"),
    };
    base.with_file_name(name)
}

fn open_file(
    path: &Path,
    index: u16,
    conns: &[Connection],
    buf: usize,
) -> Result<(BufWriter<File>, u64), CaptureError> {
    let io = |source| CaptureError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut out = BufWriter::with_capacity(buf, file);
    let header = encode_file_header(crate::clock::now_ns(), index, conns);
    out.write_all(&header).map_err(io)?;
    Ok((out, header.len() as u64))
}
