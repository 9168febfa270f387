//! HTTP for the archive: a `.CHECKSUM` into memory, a zip streamed into a `.part` file.
//!
//! A zip is hashed (sha256) while it is written, so verifying it costs no second read. A `.part`
//! left by an interrupted run is continued with a `Range` request when the server honours it
//! (`206` from the expected offset), and started over otherwise.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Why a request did not give a file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection at all: wrong `--base-url`, no network, DNS failure.
    #[error("cannot reach {url}: {why} (check --base-url and the network)")]
    Unreachable { url: String, why: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {why}")]
    Transfer { url: String, why: String },
    #[error("{url}: the .CHECKSUM file is not `<sha256 hex>  <file name>`: {text:?}")]
    BadChecksumFile { url: String, text: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Unreachable { .. })
    }
}

/// A zip fully written to its `.part` file.
#[derive(Debug)]
pub struct Downloaded {
    /// The file's size.
    pub size: u64,
    /// Bytes transferred by this request (less than `size` when a `.part` was continued).
    pub transferred: u64,
    pub sha256: [u8; 32],
}

/// One agent (connection pool) shared by the workers.
pub struct Http {
    agent: ureq::Agent,
    /// Set once any server answered: an unreachable host after that is not a wrong base URL.
    pub reached: AtomicBool,
    /// Body bytes received so far, for the progress line.
    pub bytes: Arc<AtomicU64>,
}

impl Http {
    /// `timeout`: for the connection, the response head and each read of a body.
    pub fn new(timeout: Duration) -> Http {
        let tls = ureq::tls::TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .user_agent(concat!("qalpha-download/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            agent,
            reached: AtomicBool::new(false),
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    fn get(
        &self,
        url: &str,
        range_from: u64,
    ) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
        let mut req = self.agent.get(url);
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        let resp = req.call().map_err(|e| classify(url, e))?;
        self.reached.store(true, Ordering::Relaxed);
        Ok(resp)
    }

    /// The sha256 a `.CHECKSUM` file names (`<hex>  <file name>`); `None` on 404.
    pub fn checksum(&self, url: &str, zip_name: &str) -> Result<Option<[u8; 32]>, FetchError> {
        let mut resp = self.get(url, 0)?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => {
                return Err(FetchError::Status {
                    url: url.into(),
                    status,
                })
            }
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .map_err(|e| FetchError::Transfer {
                url: url.into(),
                why: e.to_string(),
            })?;
        parse_checksum(&text, zip_name)
            .map(Some)
            .ok_or_else(|| FetchError::BadChecksumFile {
                url: url.into(),
                text: text.chars().take(200).collect(),
            })
    }

    /// Downloads `url` into `part` (continuing a `.part` already there); `None` on 404.
    pub fn zip(&self, url: &str, part: &Path) -> Result<Option<Downloaded>, FetchError> {
        let io = |source| FetchError::Io {
            path: part.to_path_buf(),
            source,
        };
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut resp = self.get(url, have)?;
        let status = resp.status().as_u16();
        let continued = have > 0 && status == 206 && starts_at(&resp, have);
        match status {
            200 => {}
            206 if continued => {}
            404 => return Ok(None),
            // The part is already whole (or the server's copy changed): start over.
            206 | 416 if have > 0 => {
                std::fs::remove_file(part).map_err(io)?;
                return self.zip(url, part);
            }
            status => {
                return Err(FetchError::Status {
                    url: url.into(),
                    status,
                })
            }
        }
        let mut hash = Sha256::new();
        let file = if continued {
            // The bytes already there are hashed first, so the sum covers the whole file.
            let mut f = File::open(part).map_err(io)?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
            }
            OpenOptions::new().append(true).open(part).map_err(io)?
        } else {
            File::create(part).map_err(io)?
        };
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut body = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut transferred = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // What arrived stays in the `.part` for the next try to continue.
                Err(e) => {
                    out.flush().map_err(io)?;
                    return Err(FetchError::Transfer {
                        url: url.into(),
                        why: format!("download broke off after {transferred} bytes: {e}"),
                    });
                }
            };
            hash.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io)?;
            transferred += n as u64;
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        out.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        Ok(Some(Downloaded {
            size: if continued { have } else { 0 } + transferred,
            transferred,
            sha256: hash.finalize().into(),
        }))
    }
}

/// Whether a `206` answer starts at byte `from` (`Content-Range: bytes FROM-…`).
fn starts_at(resp: &ureq::http::Response<ureq::Body>, from: u64) -> bool {
    resp.headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(from)
}

fn classify(url: &str, e: ureq::Error) -> FetchError {
    use std::io::ErrorKind as K;
    let unreachable = match &e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionRefused
                | K::AddrNotAvailable
                | K::NetworkUnreachable
                | K::HostUnreachable
                | K::NetworkDown
        ),
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect),
        _ => false,
    };
    if unreachable {
        FetchError::Unreachable {
            url: url.into(),
            why: e.to_string(),
        }
    } else {
        FetchError::Transfer {
            url: url.into(),
            why: e.to_string(),
        }
    }
}

/// `<64 hex digits>  <file name>` → the digest, when the name is `zip_name` (or absent).
pub fn parse_checksum(text: &str, zip_name: &str) -> Option<[u8; 32]> {
    let mut parts = text.split_whitespace();
    let hex = parts.next()?;
    if let Some(name) = parts.next() {
        // `sha256sum -b` writes `*name`.
        if name.trim_start_matches('*') != zip_name {
            return None;
        }
    }
    decode_hex(hex)
}

pub fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

pub fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files() {
        let h = "a".repeat(62) + "0f";
        let want = decode_hex(&h).unwrap();
        assert_eq!(want[31], 0x0f);
        assert_eq!(hex(&want), h);
        let name = "BTCUSDT-5m-2024-01.zip";
        assert_eq!(parse_checksum(&format!("{h}  {name}\n"), name), Some(want));
        assert_eq!(parse_checksum(&format!("{h} *{name}"), name), Some(want));
        assert_eq!(parse_checksum(&h, name), Some(want));
        assert_eq!(parse_checksum(&format!("{h}  other.zip"), name), None);
        assert_eq!(parse_checksum("<html>404</html>", name), None);
        assert_eq!(parse_checksum("", name), None);
    }
}
