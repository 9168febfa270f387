//! The cold-path helper thread: DNS resolution and REST snapshot requests, so the feed thread's poll
//! loop never blocks. Requests and replies travel over crossbeam channels (checked with `try_recv`,
//! an atomic load when empty).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{unbounded, Receiver, Sender};
use rustls::ClientConfig;

use crate::transport::rest::{self, HttpResponse};
use crate::transport::TransportError;

/// Work for the helper.
#[derive(Debug)]
pub enum ColdRequest {
    Resolve {
        conn: usize,
        host: String,
        port: u16,
    },
    Get {
        tag: usize,
        url: String,
        tls: Option<Arc<ClientConfig>>,
    },
}

/// The helper's answers.
#[derive(Debug)]
pub enum ColdReply {
    Resolved {
        conn: usize,
        addr: Result<SocketAddr, TransportError>,
    },
    Got {
        tag: usize,
        recv_ns: u64,
        result: Result<HttpResponse, TransportError>,
    },
}

/// Handle to the helper thread.
pub struct ColdPath {
    pub tx: Sender<ColdRequest>,
    pub rx: Receiver<ColdReply>,
    handle: Option<JoinHandle<()>>,
}

impl ColdPath {
    pub fn start(timeout: Duration) -> std::io::Result<Self> {
        let (tx, req_rx) = unbounded::<ColdRequest>();
        let (rep_tx, rx) = unbounded::<ColdReply>();
        let handle = std::thread::Builder::new()
            .name("qa-feed-cold".into())
            .spawn(move || {
                for req in req_rx {
                    let reply = match req {
                        ColdRequest::Resolve { conn, host, port } => {
                            let addr = (host.as_str(), port)
                                .to_socket_addrs()
                                .map_err(|e| e.to_string())
                                .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()))
                                .map_err(|why| TransportError::Resolve { host, why });
                            ColdReply::Resolved { conn, addr }
                        }
                        ColdRequest::Get { tag, url, tls } => {
                            let result = rest::get(&url, tls.as_ref(), timeout);
                            ColdReply::Got {
                                tag,
                                recv_ns: qalpha_engine::clock::now_ns(),
                                result,
                            }
                        }
                    };
                    if rep_tx.send(reply).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            tx,
            rx,
            handle: Some(handle),
        })
    }
}

impl Drop for ColdPath {
    fn drop(&mut self) {
        // Closing the request channel ends the helper's loop.
        let (dead_tx, _) = unbounded();
        drop(std::mem::replace(&mut self.tx, dead_tx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
