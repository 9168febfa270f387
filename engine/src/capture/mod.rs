//! The `.qcap` capture format, version 1: every raw frame the engine received, with its receive time.
//!
//! pcap-style: a header with a connection table, then back-to-back records, all little-endian and
//! 8-byte aligned so the reader can hand out payload slices straight from a memory map. The byte-level
//! layout is documented in `docs/CAPTURE-FORMAT.md` and mirrored by the constants in [`format`].
//!
//! - [`CaptureWriter`]: append-only, buffered, size-based rotation; each rotated file is
//!   self-contained (its header repeats the current connection table).
//! - [`CaptureReader`]: maps a file, validates every record header once at open, then iterates with
//!   no copies and no checks. A file cut mid-record (a crash) is read up to its last whole record and
//!   the lost tail is reported, never a panic.

pub mod format;
mod reader;
mod writer;

pub use format::{Connection, RecordKind, Transport, CAPTURE_MAGIC, CAPTURE_VERSION};
pub use reader::{CaptureReader, Record, RecordIter, TailStatus};
pub use writer::{CaptureWriter, WriterOptions};

/// Errors reading or writing capture files.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a qcap capture file ({why})")]
    NotACapture { path: String, why: String },
    #[error("{path}: capture format version {version} is not supported (this build reads version {CAPTURE_VERSION})")]
    UnsupportedVersion { path: String, version: u16 },
    #[error("{path}: corrupt capture header: {why}")]
    CorruptHeader { path: String, why: String },
    #[error("invalid record: {0}")]
    InvalidRecord(String),
}
