//! The order API's socket for the latency benchmark: a thread of its own reads the TCP stream and
//! stamps every chunk as it comes off the wire, so an order's arrival time no longer waits for the
//! mock to finish answering the previous one (its own queueing used to count against the engine's
//! `wire_out` stage, bench/README.md). The connection's thread decrypts and answers as before,
//! reading the stamped chunks through [`Read`] and writing straight to the socket.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{bounded, Receiver, RecvTimeoutError};
use qalpha_engine::clock::now_ns;

/// How long a read waits for a chunk before it answers `WouldBlock` (the connection's loop then
/// checks whether the mock is stopping, as with the socket's own read timeout).
const READ_WAIT: Duration = Duration::from_millis(5);

type Chunk = Result<(Vec<u8>, u64), ErrorKind>;

/// A TCP stream whose reads come from a stamping reader thread.
pub struct StampedTcp {
    w: TcpStream,
    rx: Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    /// The stamp of the chunk the last read drew from.
    last_ns: u64,
    eof: bool,
    /// Set when this end is dropped: the reader thread stops at its next wake-up.
    gone: Arc<AtomicBool>,
}

impl StampedTcp {
    /// Starts the reader thread on a clone of `tcp` (it ends at EOF, on an error, or when this
    /// end is dropped).
    pub fn spawn(tcp: TcpStream) -> std::io::Result<Self> {
        let mut r = tcp.try_clone()?;
        // The reader blocks; the writer never waits on reads.
        r.set_read_timeout(Some(Duration::from_millis(50)))?;
        let (tx, rx) = bounded::<Chunk>(1024);
        let gone = Arc::new(AtomicBool::new(false));
        let gone_r = gone.clone();
        std::thread::Builder::new()
            .name("mock-stamp".into())
            .spawn(move || {
                let gone = gone_r;
                let mut chunk = vec![0u8; 16 << 10];
                loop {
                    let msg = match r.read(&mut chunk) {
                        Ok(0) => Err(ErrorKind::UnexpectedEof),
                        Ok(n) => Ok((chunk[..n].to_vec(), now_ns())),
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            if gone.load(Ordering::Relaxed) {
                                return;
                            }
                            continue;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => Err(e.kind()),
                    };
                    let last = msg.is_err();
                    if tx.send(msg).is_err() || last {
                        return;
                    }
                }
            })?;
        Ok(Self {
            w: tcp,
            rx,
            buf: Vec::new(),
            pos: 0,
            last_ns: 0,
            eof: false,
            gone,
        })
    }

    /// When the bytes last read came off the wire (`clock::now_ns`).
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.w
    }
}

impl Drop for StampedTcp {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
    }
}

impl Read for StampedTcp {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.eof {
                return Ok(0);
            }
            match self.rx.recv_timeout(READ_WAIT) {
                Ok(Ok((bytes, ns))) => {
                    self.buf = bytes;
                    self.pos = 0;
                    self.last_ns = ns;
                }
                Ok(Err(ErrorKind::UnexpectedEof)) | Err(RecvTimeoutError::Disconnected) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(Err(kind)) => return Err(kind.into()),
                Err(RecvTimeoutError::Timeout) => return Err(ErrorKind::WouldBlock.into()),
            }
        }
        // One chunk at a time: a read never mixes two chunks' stamps.
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for StampedTcp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_arrive_in_order_with_rising_stamps_and_eof_ends() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (srv, _) = l.accept().unwrap();
        let mut s = StampedTcp::spawn(srv).unwrap();
        let mut buf = [0u8; 64];
        // Nothing yet: WouldBlock, like a socket with a read timeout.
        assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        client.write_all(b"first").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        client.write_all(b"second").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut got = Vec::new();
        let mut stamps = Vec::new();
        while got.len() < 11 {
            match s.read(&mut buf) {
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    stamps.push(s.last_ns());
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            }
        }
        assert_eq!(got, b"firstsecond");
        assert!(
            stamps.len() == 2 && stamps[1] >= stamps[0] + 10_000_000,
            "{stamps:?}"
        );
        s.write_all(b"answer").unwrap();
        let mut back = [0u8; 6];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"answer");
        drop(client);
        let end = loop {
            match s.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                r => break r.unwrap(),
            }
        };
        assert_eq!(end, 0);
    }
}
