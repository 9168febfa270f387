//! `qalpha import bybit-archive`: Bybit's public order-book archive → `.qcap`.
//!
//! Bybit publishes `YYYY-MM-DD_SYMBOL_ob500.data` (later `ob200`), usually zipped: NDJSON, one raw
//! v5 WebSocket frame per line (`orderbook.500.SYM` snapshot, then deltas), with no local receive
//! time. Each frame's envelope `ts` (Bybit's system time, ms) becomes its `recv_ns`, so replay paces
//! and measures staleness in exchange time. Every frame goes on one WebSocket connection to the
//! public linear stream, as the live recorder would write it.
//!
//! A `.zip` is read without a zip crate: the end-of-central-directory record gives the one member's
//! method, sizes and CRC (the local header may defer them to a data descriptor), then the member is
//! inflated (method 8) or copied (method 0) as a stream and its CRC-32 checked at the end. gzip and
//! plain files are detected by their first bytes, not by name.
//!
//! The same module imports `<local_ts> <json>` line captures of Bybit frames
//! (`qalpha import lines --venue bybit`, see [`import_timestamped_lines`]).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::{DeflateDecoder, MultiGzDecoder};
use flate2::CrcReader;
use qalpha_engine::capture::{CaptureWriter, Connection, RecordKind, Transport, WriterOptions};
use qalpha_engine::event::Venue;

use crate::import_lines::{ImportOptions, ImportReport, TimedLines};

/// The connection every imported Bybit frame is recorded on.
pub const BYBIT_PUBLIC_LINEAR_URL: &str = "wss://stream.bybit.com/v5/public/linear";

/// Archive import settings.
#[derive(Clone, Debug, Default)]
pub struct ArchiveOptions {
    /// Stop after this many frames (to cut a small sample); `None` for all.
    pub max_frames: Option<u64>,
    pub rotate_bytes: Option<u64>,
}

/// What the archive import did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ArchiveReport {
    /// Frames written (one per non-blank line).
    pub frames: u64,
    /// Blank lines, skipped.
    pub blank_lines: u64,
    /// Frames whose envelope has no numeric `ts` (or is not JSON): written with the previous frame's
    /// time; replay counts the unreadable ones as malformed.
    pub without_ts: u64,
    /// Frames whose `ts` is earlier than the previous frame's (kept, in file order).
    pub out_of_order: u64,
    pub first_ts_ms: Option<u64>,
    pub last_ts_ms: Option<u64>,
    /// Distinct topics, in order of first appearance.
    pub topics: Vec<String>,
    pub files_written: Vec<PathBuf>,
}

/// The envelope fields the importer needs; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    topic: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    ts: Option<u64>,
}

/// `(ts ms, topic)` of one frame; `None` when the line is not a JSON object with those fields.
fn envelope(json: &str) -> Option<(Option<u64>, Option<std::borrow::Cow<'_, str>>)> {
    serde_json::from_str::<Envelope<'_>>(json)
        .ok()
        .map(|e| (e.ts, e.topic))
}

fn note_topic(topics: &mut Vec<String>, topic: Option<&str>) {
    if let Some(t) = topic {
        if !topics.iter().any(|x| x == t) {
            topics.push(t.to_string());
        }
    }
}

fn bybit_connection() -> Connection {
    Connection {
        id: 0,
        venue: Some(Venue::BybitLinear),
        transport: Transport::WebSocket,
        url: BYBIT_PUBLIC_LINEAR_URL.to_string(),
    }
}

/// Reads the next non-blank line into `line` (without its line end); false at the end of input.
fn next_frame(
    r: &mut dyn BufRead,
    line: &mut String,
    blank: &mut u64,
    path: &Path,
) -> Result<bool> {
    loop {
        line.clear();
        let n = r
            .read_line(line)
            .with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 {
            return Ok(false);
        }
        let len = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(len);
        if !line.trim().is_empty() {
            return Ok(true);
        }
        *blank += 1;
    }
}

/// Imports Bybit archive files (`.zip`, gzip or plain NDJSON), in the order given, into `out`.
pub fn import_archive(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ArchiveOptions,
) -> Result<ArchiveReport> {
    if inputs.is_empty() {
        bail!("no input files given");
    }
    let mut rep = ArchiveReport::default();
    // Open every input and check its first frame before anything is written, so a wrong file
    // fails with its name and leaves no half-written capture behind.
    let mut inputs_open = Vec::with_capacity(inputs.len());
    for path in inputs {
        let mut r = open_frames(path)?;
        let mut first = String::new();
        if next_frame(&mut *r, &mut first, &mut rep.blank_lines, path)?
            && envelope(&first).and_then(|(ts, _)| ts).is_none()
        {
            let shown: String = first.chars().take(120).collect();
            bail!(
                "{}: the first line is not a Bybit frame with a numeric `ts` (is this a Bybit archive file?): {shown}",
                path.display()
            );
        }
        inputs_open.push((path, r, first));
    }
    let wopts = WriterOptions {
        rotate_bytes: opts.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut w = CaptureWriter::create(out, vec![bybit_connection()], wopts)
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut last_ns = 0u64;
    'files: for (path, mut r, mut line) in inputs_open {
        let mut have = !line.is_empty();
        while have {
            let (ts, topic) = envelope(&line).unwrap_or((None, None));
            note_topic(&mut rep.topics, topic.as_deref());
            let ns = match ts.and_then(|ms| ms.checked_mul(1_000_000)) {
                Some(ns) => {
                    let ms = ns / 1_000_000;
                    rep.first_ts_ms.get_or_insert(ms);
                    rep.last_ts_ms = Some(ms);
                    if ns < last_ns {
                        rep.out_of_order += 1;
                    }
                    ns
                }
                None => {
                    rep.without_ts += 1;
                    last_ns
                }
            };
            last_ns = ns;
            w.write(ns, 0, RecordKind::WsText, line.as_bytes())?;
            rep.frames += 1;
            if opts.max_frames.is_some_and(|m| rep.frames >= m) {
                break 'files;
            }
            have = next_frame(&mut *r, &mut line, &mut rep.blank_lines, path)?;
        }
    }
    rep.files_written = w.finish()?;
    Ok(rep)
}

/// Imports `<local_ts> <json>` line captures of Bybit v5 public frames (`import lines --venue
/// bybit`): the local timestamp is the receive time; there are no REST records (Bybit's snapshots
/// are in-stream).
pub fn import_timestamped_lines(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    if inputs.is_empty() {
        bail!("no input files given");
    }
    let wopts = WriterOptions {
        rotate_bytes: opts.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut w = CaptureWriter::create(out, vec![bybit_connection()], wopts)
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut rep = ImportReport::default();
    let mut timed = TimedLines::default();
    'files: for path in inputs {
        for line in open_frames(path)?.lines() {
            let line = line.with_context(|| format!("{}: read error", path.display()))?;
            let Some((ts, json)) = timed.frame(&mut rep, &line) else {
                continue;
            };
            let topic = envelope(json).and_then(|(_, t)| t);
            note_topic(&mut rep.streams, topic.as_deref());
            w.write(ts, 0, RecordKind::WsText, json.as_bytes())?;
            rep.ws_frames += 1;
            if opts.max_frames.is_some_and(|m| rep.ws_frames >= m) {
                break 'files;
            }
        }
    }
    let mut symbols: Vec<&str> = rep
        .streams
        .iter()
        .filter_map(|t| t.rsplit('.').next())
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    if let [one] = symbols[..] {
        rep.symbol = Some(one.to_string());
    }
    rep.timestamp_unit = timed.units();
    rep.files_written = w.finish()?;
    Ok(rep)
}

/// Opens a frames file: a one-member zip, gzip or plain text, told apart by the first bytes.
fn open_frames(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    f.seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let r: Box<dyn Read> = match &magic[..n] {
        [b'P', b'K', 3, 4] => Box::new(
            zip_member(f)
                .with_context(|| format!("{}: cannot read the zip archive", path.display()))?,
        ),
        [0x1f, 0x8b, ..] => Box::new(MultiGzDecoder::new(f)),
        _ => Box::new(f),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, r)))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

const EOCD_SIG: u32 = 0x0605_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_exact_at(f: &mut File, at: u64, len: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut b)
        .context("the archive is cut short (truncated download?)")?;
    Ok(b)
}

/// The single member of a zip archive, as a stream that checks its size and CRC-32 at the end.
fn zip_member(mut f: File) -> Result<ZipMember> {
    let len = f.seek(SeekFrom::End(0))?;
    // The end-of-central-directory record sits in the last 22 bytes plus a comment of up to 64 KiB.
    let tail_len = len.min((EOCD_LEN + u16::MAX as usize) as u64) as usize;
    let tail = read_exact_at(&mut f, len - tail_len as u64, tail_len)?;
    let eocd = (0..=tail_len.saturating_sub(EOCD_LEN))
        .rev()
        .find(|&i| le32(&tail, i) == EOCD_SIG)
        .context("no end-of-central-directory record (not a zip archive, or truncated)")?;
    let entries = le16(&tail, eocd + 10);
    let cd_offset = le32(&tail, eocd + 16);
    if entries == u16::MAX || cd_offset == u32::MAX {
        bail!("zip64 archives are not supported: unzip it and pass the .data file");
    }
    if entries != 1 {
        bail!("the archive holds {entries} members; Bybit's archives hold one (unzip it and pass the .data files)");
    }
    let cd = read_exact_at(&mut f, u64::from(cd_offset), 46)?;
    if le32(&cd, 0) != CENTRAL_SIG {
        bail!("corrupt central directory");
    }
    let (flags, method) = (le16(&cd, 8), le16(&cd, 10));
    let (crc, comp_size, size) = (le32(&cd, 16), le32(&cd, 20), le32(&cd, 24));
    let local_offset = le32(&cd, 42);
    if flags & 1 != 0 {
        bail!("the member is encrypted");
    }
    if comp_size == u32::MAX || size == u32::MAX || local_offset == u32::MAX {
        bail!("zip64 archives are not supported: unzip it and pass the .data file");
    }
    let local = read_exact_at(&mut f, u64::from(local_offset), 30)?;
    if le32(&local, 0) != LOCAL_SIG {
        bail!("corrupt local file header");
    }
    let data_at =
        u64::from(local_offset) + 30 + u64::from(le16(&local, 26)) + u64::from(le16(&local, 28));
    f.seek(SeekFrom::Start(data_at))?;
    let body = f.take(u64::from(comp_size));
    let inner: Box<dyn Read> = match method {
        0 => Box::new(body),
        8 => Box::new(DeflateDecoder::new(body)),
        m => bail!(
            "compression method {m} is not supported (only 0 stored and 8 deflate): unzip it and pass the .data file"
        ),
    };
    Ok(ZipMember {
        inner: CrcReader::new(inner),
        crc,
        size,
    })
}

/// A zip member's decompressed bytes; at the end, a size or CRC mismatch is an `InvalidData` error.
struct ZipMember {
    inner: CrcReader<Box<dyn Read>>,
    crc: u32,
    size: u32,
}

impl Read for ZipMember {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let c = self.inner.crc();
            // Sizes are stored modulo 2^32 in a non-zip64 archive.
            if c.sum() != self.crc || c.amount() != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "zip member is corrupt: {} bytes with CRC {:08x}, the directory says {} bytes with CRC {:08x}",
                        c.amount(),
                        c.sum(),
                        self.size,
                        self.crc
                    ),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-member zip with a stored (method 0) or deflated (method 8) body.
    pub(crate) fn zip_bytes(name: &str, body: &[u8], method: u16) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(body);
        let data = match method {
            8 => {
                use std::io::Write;
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            }
            _ => body.to_vec(),
        };
        let mut z = Vec::new();
        let common = |z: &mut Vec<u8>| {
            z.extend_from_slice(&20u16.to_le_bytes()); // version needed
            z.extend_from_slice(&0u16.to_le_bytes()); // flags
            z.extend_from_slice(&method.to_le_bytes());
            z.extend_from_slice(&[0; 4]); // time, date
            z.extend_from_slice(&crc.sum().to_le_bytes());
            z.extend_from_slice(&(data.len() as u32).to_le_bytes());
            z.extend_from_slice(&(body.len() as u32).to_le_bytes());
            z.extend_from_slice(&(name.len() as u16).to_le_bytes());
            z.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        z.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        common(&mut z);
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(&data);
        let cd_at = z.len() as u32;
        z.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        z.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut z);
        z.extend_from_slice(&[0; 6]); // comment len, disk, internal attrs
        z.extend_from_slice(&[0; 4]); // external attrs
        z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        z.extend_from_slice(name.as_bytes());
        let cd_len = z.len() as u32 - cd_at;
        z.extend_from_slice(&EOCD_SIG.to_le_bytes());
        z.extend_from_slice(&[0; 4]);
        z.extend_from_slice(&1u16.to_le_bytes());
        z.extend_from_slice(&1u16.to_le_bytes());
        z.extend_from_slice(&cd_len.to_le_bytes());
        z.extend_from_slice(&cd_at.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z
    }

    fn read_all(path: &Path) -> Result<String> {
        let mut s = String::new();
        open_frames(path)?.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn stored_and_deflated_members_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let body = b"{\"ts\":1}\n{\"ts\":2}\n".repeat(50);
        for method in [0, 8] {
            let p = tmp.path().join(format!("m{method}.zip"));
            std::fs::write(&p, zip_bytes("a.data", &body, method)).unwrap();
            assert_eq!(read_all(&p).unwrap().as_bytes(), &body[..]);
        }
    }

    #[test]
    fn bad_archives_fail_with_a_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let body = b"{\"ts\":1}\n".repeat(20);
        let p = tmp.path().join("bz.zip");
        let mut z = zip_bytes("a.data", &body, 0);
        z[8] = 12; // local header method: bzip2 (the central directory is what counts)
        let cd = z.len() - 22 - 46 - 6;
        z[cd + 10] = 12;
        std::fs::write(&p, &z).unwrap();
        let e = format!("{:#}", read_all(&p).unwrap_err());
        assert!(e.contains("compression method 12"), "{e}");

        let mut z = zip_bytes("a.data", &body, 0);
        z[40] ^= 0xff; // a byte of the stored body
        std::fs::write(&p, &z).unwrap();
        let e = format!("{:#}", read_all(&p).unwrap_err());
        assert!(e.contains("corrupt"), "{e}");

        let z = zip_bytes("a.data", &body, 8);
        std::fs::write(&p, &z[..z.len() - 30]).unwrap();
        assert!(read_all(&p).is_err());
    }

    #[test]
    fn envelope_reads_ts_and_topic_only() {
        let (ts, topic) =
            envelope(r#"{"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1733011200693,"data":{"b":[]}}"#)
                .unwrap();
        assert_eq!(
            (ts, topic.as_deref()),
            (Some(1733011200693), Some("orderbook.500.XRPUSDT"))
        );
        assert_eq!(envelope(r#"{"op":"ping"}"#).unwrap().0, None);
        assert!(envelope("{\"ts\":1").is_none());
    }
}
