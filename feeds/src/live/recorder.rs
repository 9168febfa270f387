//! The recorder: raw frames from the feed thread to a capture file, off the hot path.
//!
//! The feed thread copies each frame (16-byte header + payload, the capture record layout) into a
//! byte `rtrb` ring — one `memcpy`, no allocation, no syscall. The recorder thread (unpinned) pops
//! records and appends them with [`CaptureWriter`]. If the ring is full the record is dropped and
//! counted (the recording then says so in its stats): the feed thread never waits for the disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use qalpha_engine::capture::format::{encode_record_header, RECORD_HEADER_LEN};
use qalpha_engine::capture::{CaptureError, CaptureWriter, Connection, RecordKind, WriterOptions};

/// Feed-thread side of the recorder ring.
pub struct RecorderTx {
    ring: rtrb::Producer<u8>,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    pub records: u64,
}

impl RecorderTx {
    /// Queues one record; never blocks.
    #[inline]
    pub fn push(&mut self, recv_ns: u64, conn_id: u16, kind: RecordKind, payload: &[u8]) {
        let header = encode_record_header(recv_ns, conn_id, kind, payload.len());
        let n = RECORD_HEADER_LEN + payload.len();
        match self.ring.write_chunk(n) {
            Ok(mut chunk) => {
                let (a, b) = chunk.as_mut_slices();
                // The chunk may wrap around the ring's end: copy `header ++ payload` into `a ++ b`
                // with two or three memcpys (never a byte loop: this runs per frame on the feed thread).
                copy_split(&header, payload, a, b);
                chunk.commit_all();
                self.records += 1;
            }
            Err(_) => self.dropped += 1,
        }
    }

    /// Declares a connection (a `Connect` record carrying its table entry).
    pub fn connect(&mut self, recv_ns: u64, conn: &Connection) {
        let mut payload = Vec::with_capacity(conn.encoded_len());
        conn.encode_into(&mut payload);
        self.push(recv_ns, conn.id, RecordKind::Connect, &payload);
    }
}

/// Joins to the recorder's result.
pub type RecorderHandle = JoinHandle<Result<RecorderStats, CaptureError>>;

/// Copies `h ++ p` into `a ++ b` (`a.len() + b.len() == h.len() + p.len()`).
#[inline]
fn copy_split(h: &[u8], p: &[u8], a: &mut [u8], b: &mut [u8]) {
    fn put(src: &[u8], at: usize, a: &mut [u8], b: &mut [u8]) {
        if at >= a.len() {
            let o = at - a.len();
            b[o..o + src.len()].copy_from_slice(src);
            return;
        }
        // Fill the rest of `a`, spill the remainder to the start of `b`.
        let in_a = src.len().min(a.len() - at);
        a[at..at + in_a].copy_from_slice(&src[..in_a]);
        b[..src.len() - in_a].copy_from_slice(&src[in_a..]);
    }
    put(h, 0, a, b);
    put(p, h.len(), a, b);
}

/// What the recorder wrote.
#[derive(Clone, Debug, Default)]
pub struct RecorderStats {
    pub records: u64,
    pub files: Vec<PathBuf>,
}

/// Starts the recorder thread writing to `out`, fed by `producers` rings (one per feed thread: each
/// ring has a single producer; the recorder polls them all). Returns the producers and the handle
/// that yields the result once every producer is dropped and the rings are drained.
pub fn recorder_ring(
    out: PathBuf,
    initial: Vec<Connection>,
    opts: WriterOptions,
    ring_bytes: usize,
    producers: usize,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<RecorderTx>, RecorderHandle), CaptureError> {
    let (txs, mut rxs): (Vec<_>, Vec<_>) = (0..producers.max(1))
        .map(|_| rtrb::RingBuffer::<u8>::new(ring_bytes))
        .unzip();
    let mut writer = CaptureWriter::create(&out, initial, opts)?;
    let handle = std::thread::Builder::new()
        .name("qa-recorder".into())
        .spawn(move || -> Result<RecorderStats, CaptureError> {
            let mut payload = Vec::with_capacity(64 * 1024);
            let mut header = [0u8; RECORD_HEADER_LEN];
            let mut idle = 0u32;
            let mut turn = 0usize;
            loop {
                turn = (turn + 1) % rxs.len();
                let rx = &mut rxs[turn];
                if rx.slots() >= RECORD_HEADER_LEN {
                    if let Ok(chunk) = rx.read_chunk(RECORD_HEADER_LEN) {
                        let (a, b) = chunk.as_slices();
                        header[..a.len()].copy_from_slice(a);
                        header[a.len()..].copy_from_slice(b);
                        chunk.commit_all();
                    }
                    let len =
                        u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
                    let kind = RecordKind::from_u8(header[4]);
                    let conn = u16::from_le_bytes([header[6], header[7]]);
                    let recv_ns = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
                    payload.resize(len, 0);
                    // The producer commits header and payload together, so the payload is there.
                    if rx.pop_entire_slice(&mut payload).is_err() {
                        return Err(CaptureError::InvalidRecord(
                            "recorder ring out of step".into(),
                        ));
                    }
                    match kind {
                        Some(RecordKind::Connect) => match Connection::decode(&payload) {
                            Ok((c, _)) => writer.connect(recv_ns, c)?,
                            Err(e) => tracing::warn!("recorder: bad connect record: {e}"),
                        },
                        Some(k) => writer.write(recv_ns, conn, k, &payload)?,
                        None => {
                            return Err(CaptureError::InvalidRecord(
                                "recorder ring out of step".into(),
                            ))
                        }
                    }
                    idle = 0;
                    continue;
                }
                if rxs.iter().all(|r| r.is_abandoned() && r.slots() == 0) {
                    break;
                }
                idle += 1;
                if idle > 64 * rxs.len() as u32 || stop.load(Ordering::Relaxed) {
                    let _ = writer.flush();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let records = writer.records();
            let files = writer.finish()?;
            Ok(RecorderStats { records, files })
        })
        .map_err(|e| CaptureError::Io {
            path: "recorder thread".into(),
            source: e,
        })?;
    let txs = txs
        .into_iter()
        .map(|ring| RecorderTx {
            ring,
            dropped: 0,
            records: 0,
        })
        .collect();
    Ok((txs, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_split_handles_every_wrap_point() {
        let h = [1u8, 2, 3];
        let p = [4u8, 5, 6, 7];
        for cut in 0..=7 {
            let mut buf = [0u8; 7];
            let (a, b) = buf.split_at_mut(cut);
            copy_split(&h, &p, a, b);
            assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7], "cut at {cut}");
        }
    }
}
