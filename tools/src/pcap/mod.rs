//! pcap interop: look at captures in Wireshark, and turn tcpdump captures into `.qcap` files.
//!
//! - [`pcapng_export`]: `.qcap` → pcapng, one packet per record, so `tshark`/Wireshark show every
//!   frame with its receive time and dissect its JSON (link type `WIRESHARK_UPPER_PDU`).
//! - [`import`]: pcap/pcapng of plaintext WebSocket and REST traffic → `.qcap`, through
//!   [`read`] (containers) → [`net`] (link layer, IP, TCP header) → [`tcp`] (reassembly) →
//!   [`http`] (HTTP/1.1 and the upgrade) → [`websocket`] (RFC 6455 de-framing); what it did is a
//!   [`report::PcapImportReport`].
//! - [`synth`]: small captures built by hand (fixtures for tests and bug reports, no tcpdump needed).
//!
//! Both run on the cold path (operator tools, tests); they favour clear failure reports over speed.

pub mod http;
pub mod import;
pub mod net;
pub mod pcapng_export;
pub mod read;
pub mod report;
pub mod synth;
pub mod tcp;
pub mod websocket;

pub use import::{import_pcap, PcapImportOptions};
pub use pcapng_export::{export_pcapng, ExportReport};
pub use report::PcapImportReport;

/// Errors reading a pcap or pcapng file.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng capture ({why}); write one with `tcpdump -w FILE` or Wireshark")]
    NotACapture { path: String, why: String },
}
