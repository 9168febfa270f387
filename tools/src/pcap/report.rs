//! What `qalpha import pcap` did, for the operator (printed as JSON) and for tests: how much of
//! the capture was followed, what became records, and every loss or anomaly counted — a gap or a
//! skipped connection is never silent.

use std::path::PathBuf;

use super::read::CaptureEnd;
use super::tcp::StreamStats;
use super::websocket::WsStats;

/// What the import did (`qalpha import pcap` prints it as JSON).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PcapImportReport {
    pub packets: u64,
    pub tcp_segments: u64,
    pub non_tcp_packets: u64,
    pub ip_fragments: u64,
    pub malformed_packets: u64,
    pub unsupported_link_packets: u64,
    pub unknown_interface_packets: u64,
    pub tcp_flows: u64,
    pub websocket_connections: u64,
    pub rest_connections: u64,
    /// TCP connections that never spoke HTTP/1.1 (TLS, other protocols, or picked up mid-stream).
    pub unidentified_flows: u64,
    pub ws_text: u64,
    pub ws_binary: u64,
    pub rest_responses: u64,
    /// Non-2xx REST responses (counted, not recorded: replay expects snapshot bodies).
    pub http_errors: u64,
    pub connects: u64,
    pub disconnects: u64,
    /// Server → client WebSocket frame counters (pings, closes, violations, …).
    pub server_ws: WsStats,
    /// Client → server (masked) frames: de-framed and counted, not recorded.
    pub client_ws: WsStats,
    /// TCP counters summed over both directions of every flow.
    pub tcp: StreamStats,
    /// Bytes of streams that could not be followed (after a gap, or not HTTP).
    pub skipped_bytes: u64,
    /// Bytes left inside an unfinished frame or message when the capture ended.
    pub incomplete_bytes_at_end: u64,
    pub capture_end: CaptureEnd,
    /// The first problems met, for the operator.
    pub warnings: Vec<String>,
    pub files_written: Vec<PathBuf>,
}

impl WsStats {
    /// Adds another direction's counters.
    pub fn merge(&mut self, b: &WsStats) {
        self.frames += b.frames;
        self.messages += b.messages;
        self.fragmented_messages += b.fragmented_messages;
        self.masked_frames += b.masked_frames;
        self.control_frames += b.control_frames;
        self.compressed_messages += b.compressed_messages;
        self.violations += b.violations;
    }
}

impl StreamStats {
    /// Adds another direction's counters.
    pub fn merge(&mut self, b: &StreamStats) {
        self.segments += b.segments;
        self.bytes += b.bytes;
        self.retransmitted_bytes += b.retransmitted_bytes;
        self.out_of_order_segments += b.out_of_order_segments;
        self.gaps += b.gaps;
        self.gap_bytes += b.gap_bytes;
        self.stray_segments += b.stray_segments;
    }
}
