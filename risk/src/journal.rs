//! The risk journal: every pre-trade decision, state change, day-PnL snapshot and API-error count as a
//! [`RiskEvent`] in an append-only file, so a restart restores the state, today's PnL and the
//! counters ([`restore`]) instead of starting from a clean — and possibly wrong — `Active`.
//!
//! # Byte layout (`.qrisk`, version 1, all integers little-endian)
//!
//! ```text
//! file    := header record*
//! header  := magic "QALPHRSK" (8) | version u16 = 1 | flags u16 = 0 | event_len u32   (16 bytes)
//! record  := len u32 | crc u32 | payload [len]                                       (8 + len bytes)
//! payload := rkyv 0.8 bytes of one RiskEvent (fixed size: len == event_len == EVENT_LEN)
//! crc     := CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of the payload
//! ```
//!
//! `event_len` in the header pins the archived layout: a build whose [`RiskEvent`] archives to a
//! different size refuses the file instead of misreading it (a layout change must bump the version).
//! Records are not padded, so a payload is generally unaligned in the file; the reader copies it
//! into an [`AlignedVec`] and decodes it with rkyv's validation (`bytecheck`), so a corrupt payload is
//! an error, never undefined behaviour.
//!
//! # Damage
//!
//! A crash can leave a partial last record; a bad disk can flip a byte. [`JournalReader`] checks
//! every record at open and stops at the first one that is cut short ([`TailStatus::Truncated`]) or
//! fails its length, checksum or rkyv check ([`TailStatus::Corrupt`]), reporting the byte offset of
//! that record; everything before it is served. [`JournalWriter::open`] does the same check and
//! truncates the damaged tail away (logged with the offset and the bytes dropped) before appending,
//! so new records never follow garbage. A file cut inside its header (a crash while creating it) is
//! treated as empty; a file that is not a journal at all is an error and is never touched.
//!
//! # Cost
//!
//! [`JournalWriter::append`] serializes into a reused buffer and copies it into a 64 KiB write
//! buffer: no allocation after the first call, and a `write` syscall only when that buffer fills.
//! [`JournalWriter::sync`] writes and `fsync`s — called on state changes and at shutdown, not per
//! decision. Reading and [`restore`] are start-up paths and simply copy.
//!
//! One writer per file (the risk engine on the strategy thread); readers may map the file while it
//! is appended to and see the records that were complete when they opened it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use qalpha_engine::order::ClientOrderId;
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use rkyv::util::AlignedVec;

use crate::money::Money;
use crate::{RejectReason, RiskState, SwitchKind};

/// First eight bytes of every risk journal.
pub const JOURNAL_MAGIC: [u8; 8] = *b"QALPHRSK";
/// The version this build writes and reads.
pub const JOURNAL_VERSION: u16 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 16;
/// Size of a record's framing (length + checksum) before the payload.
pub const RECORD_HEADER_LEN: usize = 8;
/// Size of one archived [`RiskEvent`]: every payload has exactly this length.
pub const EVENT_LEN: usize = std::mem::size_of::<ArchivedRiskEvent>();
/// Size of one whole record.
pub const RECORD_LEN: usize = RECORD_HEADER_LEN + EVENT_LEN;

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
const NS_PER_MIN: u64 = 60 * 1_000_000_000;
const WRITE_BUFFER: usize = 64 << 10;

/// One risk journal record (fixed-size, `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct RiskEvent {
    /// When it happened (ns since the Unix epoch, the engine clock).
    pub ts_ns: u64,
    pub kind: RiskEventKind,
}

/// What a [`RiskEvent`] records.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum RiskEventKind {
    /// A pre-trade decision on a new order (`reject: None` = accepted).
    Decision {
        venue: Venue,
        symbol: Symbol,
        client_id: ClientOrderId,
        side: Side,
        price: Price,
        qty: Qty,
        reduce_only: bool,
        reject: Option<RejectReason>,
    },
    /// The state machine moved (or `conservative` toggled). `detail`: the switch's measured value in
    /// its unit (loss in 10⁻⁸ quote, a count, bps), for the report.
    StateChange {
        from: RiskState,
        to: RiskState,
        conservative: bool,
        switch: SwitchKind,
        detail: i64,
    },
    /// The day's running totals after a fill / funding / mark move worth recording: `utc_day` = days
    /// since the epoch, `day_pnl` = equity − equity at the day's start.
    DayPnl {
        utc_day: u32,
        day_pnl: Money,
        realized_today: Money,
        consecutive_losses: u32,
    },
    /// API errors counted in the last minute (journaled after each error).
    ApiErrors { in_last_min: u32 },
}

/// How the journal ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailStatus {
    /// The last record ends exactly at the end of the file.
    Clean,
    /// The file stops inside the record starting at byte `at` (a crash while writing).
    Truncated { at: u64 },
    /// The record starting at byte `at` has a wrong length, a checksum mismatch or a payload rkyv
    /// rejects; nothing from `at` on is read.
    Corrupt { at: u64 },
}

/// Errors opening, reading or writing a risk journal. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a risk journal ({why}); move it aside or point the risk journal path elsewhere")]
    NotAJournal { path: String, why: String },
    #[error("{path}: risk journal version {version} with {event_len}-byte events is not supported (this build reads version {JOURNAL_VERSION} with {EVENT_LEN}-byte events); restore it with the build that wrote it or move it aside")]
    Unsupported {
        path: String,
        version: u16,
        event_len: u32,
    },
    #[error("{path}: cannot encode a risk event: {why}")]
    Encode { path: String, why: String },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The 16-byte file header this build writes.
fn header_bytes() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&JOURNAL_MAGIC);
    h[8..10].copy_from_slice(&JOURNAL_VERSION.to_le_bytes());
    // h[10..12]: flags, none defined.
    h[12..16].copy_from_slice(&(EVENT_LEN as u32).to_le_bytes());
    h
}

/// CRC-32 (IEEE, reflected polynomial 0xEDB88320), table-driven; matches zlib's `crc32`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in bytes {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Decodes one payload (copied to an aligned buffer first: rkyv needs alignment) with validation.
fn decode(payload: &[u8], scratch: &mut AlignedVec) -> Result<RiskEvent, rkyv::rancor::Error> {
    scratch.clear();
    scratch.extend_from_slice(payload);
    rkyv::from_bytes::<RiskEvent, rkyv::rancor::Error>(scratch)
}

/// Result of checking the records of a journal's bytes.
struct Scan {
    /// End of the last good record (`HEADER_LEN` for a journal with none).
    valid_end: usize,
    events: u64,
    tail: TailStatus,
}

/// Checks every record after the header; stops at the first bad one.
fn scan(b: &[u8], path: &Path) -> Scan {
    let mut pos = HEADER_LEN;
    let mut events = 0u64;
    let mut scratch = AlignedVec::new();
    let tail = loop {
        let left = b.len() - pos;
        if left == 0 {
            break TailStatus::Clean;
        }
        let at = pos as u64;
        if left < RECORD_HEADER_LEN {
            break TailStatus::Truncated { at };
        }
        let len = u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]);
        let why = if len != EVENT_LEN {
            format!("record length {len}, expected {EVENT_LEN}")
        } else if left < RECORD_LEN {
            break TailStatus::Truncated { at };
        } else {
            let payload = &b[pos + RECORD_HEADER_LEN..pos + RECORD_LEN];
            let got = crc32(payload);
            if got != crc {
                format!("checksum {got:#010x}, record says {crc:#010x}")
            } else if let Err(e) = decode(payload, &mut scratch) {
                format!("payload rejected by rkyv: {e}")
            } else {
                pos += RECORD_LEN;
                events += 1;
                continue;
            }
        };
        tracing::warn!(path = %path.display(), offset = at, %why, "corrupt risk journal record");
        break TailStatus::Corrupt { at };
    };
    if tail != TailStatus::Clean {
        tracing::warn!(
            path = %path.display(),
            ?tail,
            events,
            lost_bytes = b.len() - pos,
            "risk journal is damaged at its tail; reading up to the last whole record"
        );
    }
    Scan {
        valid_end: pos,
        events,
        tail,
    }
}

/// Checks the header; `Ok(false)` when the file is a strict prefix of a header (cut while created).
fn check_header(b: &[u8], path: &Path) -> Result<bool, JournalError> {
    let ours = header_bytes();
    if b.len() < HEADER_LEN {
        return if ours.starts_with(b) {
            Ok(false)
        } else {
            Err(JournalError::NotAJournal {
                path: path.display().to_string(),
                why: format!(
                    "{} bytes that are not the start of a journal header",
                    b.len()
                ),
            })
        };
    }
    if b[0..8] != JOURNAL_MAGIC {
        return Err(JournalError::NotAJournal {
            path: path.display().to_string(),
            why: "bad magic (expected \"QALPHRSK\")".into(),
        });
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    let flags = u16::from_le_bytes([b[10], b[11]]);
    let event_len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if version != JOURNAL_VERSION || event_len as usize != EVENT_LEN || flags != 0 {
        return Err(JournalError::Unsupported {
            path: path.display().to_string(),
            version,
            event_len,
        });
    }
    Ok(true)
}

/// A mapped risk journal, every record checked at open.
pub struct JournalReader {
    /// `None` for a file cut inside its header (nothing to map).
    map: Option<Mmap>,
    path: PathBuf,
    valid_end: usize,
    events: u64,
    tail: TailStatus,
}

impl JournalReader {
    /// Maps `path` and checks its header and every record. Errors when the file cannot be read or is
    /// not a journal of this version; a damaged tail is reported through [`JournalReader::tail`].
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        if len < HEADER_LEN as u64 {
            let b = std::fs::read(path).map_err(io_err(path))?;
            check_header(&b, path)?;
            tracing::warn!(path = %path.display(), bytes = b.len(), "risk journal was cut inside its header; treating it as empty");
            return Ok(Self {
                map: None,
                path: path.to_path_buf(),
                valid_end: 0,
                events: 0,
                tail: TailStatus::Truncated { at: 0 },
            });
        }
        // SAFETY: the map is read-only and private to this reader. The single writer only appends
        // past the mapped length, except when it truncates a damaged tail at open — a journal is
        // not read and re-opened for writing at the same time (one risk engine per file).
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        check_header(&map, path)?;
        let s = scan(&map, path);
        Ok(Self {
            map: Some(map),
            path: path.to_path_buf(),
            valid_end: s.valid_end,
            events: s.events,
            tail: s.tail,
        })
    }

    /// Every complete, checksum-valid event in order; stops at the first bad record (see
    /// [`JournalReader::tail`]).
    pub fn events(&self) -> impl Iterator<Item = RiskEvent> + '_ {
        let bytes = match &self.map {
            Some(m) => &m[HEADER_LEN..self.valid_end],
            None => &[][..],
        };
        let mut scratch = AlignedVec::new();
        // Every record was checked at open; `map_while` ends the iteration rather than trusting
        // the bytes blindly should a decode fail anyway.
        bytes
            .chunks_exact(RECORD_LEN)
            .map_while(move |r| decode(&r[RECORD_HEADER_LEN..], &mut scratch).ok())
    }

    /// How the journal ends.
    pub fn tail(&self) -> TailStatus {
        self.tail
    }

    /// Number of good events.
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// Byte offset just past the last good record (0 when the header itself is cut short).
    pub fn valid_len(&self) -> u64 {
        self.valid_end as u64
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Appends [`RiskEvent`]s to a journal file.
pub struct JournalWriter {
    out: BufWriter<File>,
    path: PathBuf,
    scratch: AlignedVec,
    events: u64,
    dropped_at_open: TailStatus,
    dropped_bytes: u64,
}

impl JournalWriter {
    /// Opens (creating, with a header) or appends to `path`. An existing file is checked first and a
    /// corrupt or truncated tail is truncated away — logged with the byte offset and counted in
    /// [`JournalWriter::dropped_bytes`], never silently. A file that is not a journal of this
    /// version is an error and is left untouched.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let existing = match std::fs::metadata(path) {
            Ok(m) if m.len() > 0 => Some((JournalReader::open(path)?, m.len())),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(path)(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        let (events, keep, file_len, tail) = match &existing {
            Some((r, len)) => (r.event_count(), r.valid_len(), *len, r.tail()),
            None => (0, 0, 0, TailStatus::Clean),
        };
        drop(existing);
        let dropped_bytes = file_len - keep;
        if dropped_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                offset = keep,
                dropped_bytes,
                ?tail,
                "truncating the damaged tail of the risk journal before appending"
            );
            file.set_len(keep).map_err(io_err(path))?;
        }
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        if keep == 0 {
            out.write_all(&header_bytes()).map_err(io_err(path))?;
            out.flush().map_err(io_err(path))?;
            out.get_ref().sync_all().map_err(io_err(path))?;
            sync_parent(path)?;
        } else if dropped_bytes > 0 {
            out.get_ref().sync_all().map_err(io_err(path))?;
        }
        Ok(Self {
            out,
            path: path.to_path_buf(),
            scratch: AlignedVec::with_capacity(EVENT_LEN),
            events,
            dropped_at_open: tail,
            dropped_bytes,
        })
    }

    /// Appends one event (buffered: durable after [`JournalWriter::sync`]).
    pub fn append(&mut self, e: &RiskEvent) -> Result<(), JournalError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let buf = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(e, buf).map_err(|x| {
            JournalError::Encode {
                path: self.path.display().to_string(),
                why: x.to_string(),
            }
        })?;
        if buf.len() != EVENT_LEN {
            return Err(JournalError::Encode {
                path: self.path.display().to_string(),
                why: format!("archived to {} bytes, expected {EVENT_LEN}", buf.len()),
            });
        }
        let mut rec = [0u8; RECORD_HEADER_LEN];
        rec[0..4].copy_from_slice(&(EVENT_LEN as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&crc32(&buf).to_le_bytes());
        let res = self
            .out
            .write_all(&rec)
            .and_then(|_| self.out.write_all(&buf));
        self.scratch = buf;
        res.map_err(io_err(&self.path))?;
        self.events += 1;
        Ok(())
    }

    /// Writes buffered events and `fsync`s (called on every state change and at shutdown).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.out.flush().map_err(io_err(&self.path))?;
        self.out.get_ref().sync_data().map_err(io_err(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events in the file: those found at open plus those appended since.
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// What [`JournalWriter::open`] found at the end of the existing file (`Clean` for a new one).
    pub fn dropped_at_open(&self) -> TailStatus {
        self.dropped_at_open
    }

    /// Bytes of damaged tail truncated away at open.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }
}

/// Makes a new file's directory entry durable (Unix; elsewhere a no-op).
fn sync_parent(path: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Days since the Unix epoch of a UTC timestamp in ns.
pub fn utc_day(ts_ns: u64) -> u32 {
    (ts_ns / NS_PER_DAY) as u32
}

/// What a restart restores (the state at the end of the journal).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    pub state: RiskState,
    pub conservative: bool,
    /// The switch that halted trading, while halted.
    pub halt_reason: Option<SwitchKind>,
    /// When trading was halted, while halted.
    pub halted_at_ns: Option<u64>,
    /// UTC day of the last `DayPnl` record (`None` when there is none); `day_pnl` and
    /// `realized_today` come from it only when it is `now_ns`'s day.
    pub utc_day: Option<u32>,
    pub day_pnl: Money,
    pub realized_today: Money,
    pub consecutive_losses: u32,
    pub api_errors_in_last_min: u32,
    /// Good events read.
    pub events: u64,
}

/// Folds the journal at `path` into the state to resume with at `now_ns`. A missing file gives
/// [`Restored::default`] (a first start); a damaged tail is logged and the good prefix used.
///
/// - **State**: the last `StateChange` gives `state` and `conservative`. Entering `Halted` records
///   the switch and time; only an `Operator` change leaves `Halted` and clears them. A change out
///   of `Halted` by any other switch cannot come from the state machine; it is logged and the
///   restored state stays `Halted` (the safe reading of a journal that says otherwise).
/// - **Day**: the last `DayPnl` gives `day_pnl` and `realized_today` if it is of `now_ns`'s UTC day
///   (or later — a clock stepped back keeps the recorded loss rather than forgetting it). If it is of
///   an earlier day they are zero: the new day started flat. `consecutive_losses` carries over
///   either way: a losing streak is a run of trades, not of calendar days.
/// - **API errors**: the last `ApiErrors` count if that record is less than a minute before
///   `now_ns`, otherwise 0. It is an upper bound — some of the errors it counted may have aged out.
pub fn restore(path: &Path, now_ns: u64) -> Result<Restored, JournalError> {
    let reader = match JournalReader::open(path) {
        Ok(r) => r,
        Err(JournalError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Restored::default())
        }
        Err(e) => return Err(e),
    };
    let mut r = Restored::default();
    let mut last_day: Option<(u32, Money, Money)> = None;
    let mut last_api: Option<(u64, u32)> = None;
    for e in reader.events() {
        r.events += 1;
        match e.kind {
            RiskEventKind::StateChange {
                to,
                conservative,
                switch,
                ..
            } => {
                r.conservative = conservative;
                if r.state == RiskState::Halted && to != RiskState::Halted {
                    if switch != SwitchKind::Operator {
                        tracing::warn!(
                            path = %path.display(),
                            ts_ns = e.ts_ns,
                            switch = switch.name(),
                            to = to.name(),
                            "risk journal leaves Halted without an operator; staying halted"
                        );
                        continue;
                    }
                    r.halt_reason = None;
                    r.halted_at_ns = None;
                } else if to == RiskState::Halted && r.state != RiskState::Halted {
                    r.halt_reason = Some(switch);
                    r.halted_at_ns = Some(e.ts_ns);
                }
                r.state = to;
            }
            RiskEventKind::DayPnl {
                utc_day,
                day_pnl,
                realized_today,
                consecutive_losses,
            } => {
                last_day = Some((utc_day, day_pnl, realized_today));
                r.consecutive_losses = consecutive_losses;
            }
            RiskEventKind::ApiErrors { in_last_min } => last_api = Some((e.ts_ns, in_last_min)),
            RiskEventKind::Decision { .. } => {}
        }
    }
    let today = utc_day(now_ns);
    if let Some((day, pnl, realized)) = last_day {
        r.utc_day = Some(day);
        if day >= today {
            if day > today {
                tracing::warn!(path = %path.display(), day, today, "risk journal's last day PnL is dated after now; keeping it");
            }
            r.day_pnl = pnl;
            r.realized_today = realized;
        }
    }
    if let Some((ts, n)) = last_api {
        if ts <= now_ns && now_ns - ts < NS_PER_MIN {
            r.api_errors_in_last_min = n;
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_pnl(ts_ns: u64, pnl: i128) -> RiskEvent {
        RiskEvent {
            ts_ns,
            kind: RiskEventKind::DayPnl {
                utc_day: utc_day(ts_ns),
                day_pnl: Money(pnl),
                realized_today: Money(pnl / 2),
                consecutive_losses: 3,
            },
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn every_event_archives_to_the_fixed_size() {
        let e = day_pnl(1, -5);
        let b = rkyv::to_bytes::<rkyv::rancor::Error>(&e).unwrap();
        assert_eq!(b.len(), EVENT_LEN);
        let a = RiskEvent {
            ts_ns: 2,
            kind: RiskEventKind::ApiErrors { in_last_min: 7 },
        };
        assert_eq!(
            rkyv::to_bytes::<rkyv::rancor::Error>(&a).unwrap().len(),
            EVENT_LEN
        );
    }

    #[test]
    fn checksum_valid_but_invalid_payload_is_corrupt_not_ub() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.qrisk");
        let mut w = JournalWriter::open(&path).unwrap();
        w.append(&day_pnl(10, 1)).unwrap();
        w.append(&day_pnl(20, 2)).unwrap();
        w.sync().unwrap();
        drop(w);
        let mut b = std::fs::read(&path).unwrap();
        // Fill the second payload with 0xFF (invalid enum tags) and give it a matching checksum.
        let at = HEADER_LEN + RECORD_LEN;
        b[at + RECORD_HEADER_LEN..at + RECORD_LEN].fill(0xFF);
        let crc = crc32(&b[at + RECORD_HEADER_LEN..at + RECORD_LEN]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let r = JournalReader::open(&path).unwrap();
        assert_eq!(r.tail(), TailStatus::Corrupt { at: at as u64 });
        assert_eq!(r.events().collect::<Vec<_>>(), vec![day_pnl(10, 1)]);
    }

    #[test]
    fn utc_day_boundaries() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(NS_PER_DAY - 1), 0);
        assert_eq!(utc_day(NS_PER_DAY), 1);
        // 2024-01-01T00:00:00Z is day 19723.
        assert_eq!(utc_day(1_704_067_200 * 1_000_000_000), 19_723);
    }
}
