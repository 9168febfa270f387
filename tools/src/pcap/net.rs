//! From a captured frame to a TCP segment: link layer, then IPv4 or IPv6, then the TCP header.
//!
//! Link types are the ones tcpdump and Wireshark write for the captures this importer is meant
//! for: Ethernet (tcpdump on `lo` writes Ethernet with zero MACs), Linux cooked v1/v2 (`-i any`),
//! raw IP, and BSD loopback (NULL / LOOP, macOS `lo0`). VLAN tags are stepped over.
//!
//! Nothing is trusted: every length is checked against the captured bytes. The IP total length
//! trims Ethernet padding; when the snap length cut a packet short, the segment says how many
//! payload bytes are missing so reassembly can count them as a gap instead of inventing data.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family in the writer's byte order.
pub const LINKTYPE_NULL: u16 = 0;
pub const LINKTYPE_ETHERNET: u16 = 1;
/// DLT_RAW as some BSDs number it in files.
const LINKTYPE_RAW_BSD_12: u16 = 12;
const LINKTYPE_RAW_BSD_14: u16 = 14;
pub const LINKTYPE_RAW: u16 = 101;
/// LINKTYPE_LOOP: like NULL, but the family is always big-endian (OpenBSD).
pub const LINKTYPE_LOOP: u16 = 108;
pub const LINKTYPE_LINUX_SLL: u16 = 113;
pub const LINKTYPE_IPV4: u16 = 228;
pub const LINKTYPE_IPV6: u16 = 229;
pub const LINKTYPE_LINUX_SLL2: u16 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;

/// TCP header flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment, borrowing its payload from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces but the capture does not hold (snap length).
    pub missing: u32,
}

/// What a frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// IP, but not TCP (UDP, ICMP, …): not ours.
    NotTcp,
    /// Not IP at all (ARP, LLDP, …) on a known link type.
    NotIp,
    /// An IP fragment: loopback and market-data TCP never fragment; counted, not reassembled.
    IpFragment,
    /// A link type this importer does not read.
    UnsupportedLink(u16),
    /// Headers cut short or inconsistent.
    Malformed(&'static str),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a frame of link type `link_type`.
pub fn decode(link_type: u16, frame: &[u8]) -> Decoded<'_> {
    let (ethertype, ip) = match link_type {
        LINKTYPE_ETHERNET => {
            let Some(mut et) = be16(frame, 12) else {
                return Decoded::Malformed("Ethernet header cut short");
            };
            let mut at = 14;
            while et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ {
                let Some(inner) = be16(frame, at + 2) else {
                    return Decoded::Malformed("VLAN tag cut short");
                };
                et = inner;
                at += 4;
            }
            (Some(et), &frame[at.min(frame.len())..])
        }
        LINKTYPE_LINUX_SLL => match be16(frame, 14) {
            Some(et) if frame.len() >= 16 => (Some(et), &frame[16..]),
            _ => return Decoded::Malformed("Linux cooked header cut short"),
        },
        LINKTYPE_LINUX_SLL2 => match be16(frame, 0) {
            Some(et) if frame.len() >= 20 => (Some(et), &frame[20..]),
            _ => return Decoded::Malformed("Linux cooked v2 header cut short"),
        },
        LINKTYPE_RAW | LINKTYPE_RAW_BSD_12 | LINKTYPE_RAW_BSD_14 | LINKTYPE_IPV4
        | LINKTYPE_IPV6 => (None, frame),
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let Some(fam) = frame.get(0..4) else {
                return Decoded::Malformed("loopback header cut short");
            };
            // The family is in the capturing host's byte order (NULL) or big-endian (LOOP);
            // AF_INET is 2 everywhere, AF_INET6 is 10, 24, 28 or 30 depending on the OS.
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let family = if le < 256 { le } else { be };
            let et = match family {
                2 => ETHERTYPE_IPV4,
                10 | 24 | 28 | 30 => ETHERTYPE_IPV6,
                _ => return Decoded::NotIp,
            };
            (Some(et), &frame[4..])
        }
        other => return Decoded::UnsupportedLink(other),
    };
    match ethertype {
        Some(ETHERTYPE_IPV4) | Some(ETHERTYPE_IPV6) | None => decode_ip(ip),
        Some(_) => Decoded::NotIp,
    }
}

/// Decodes an IPv4 or IPv6 packet (version from the first nibble).
pub fn decode_ip(ip: &[u8]) -> Decoded<'_> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(ip),
        Some(6) => decode_ipv6(ip),
        Some(_) => Decoded::NotIp,
        None => Decoded::Malformed("empty IP packet"),
    }
}

fn decode_ipv4(ip: &[u8]) -> Decoded<'_> {
    if ip.len() < 20 {
        return Decoded::Malformed("IPv4 header cut short");
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ihl < 20 || ip.len() < ihl {
        return Decoded::Malformed("IPv4 header length invalid");
    }
    if frag & 0x3fff != 0 {
        return Decoded::IpFragment;
    }
    if ip[9] != IPPROTO_TCP {
        return Decoded::NotTcp;
    }
    // Total length 0 appears when the NIC segments (TSO) after the capture point: trust the capture.
    let total = if total == 0 { ip.len() } else { total };
    if total < ihl {
        return Decoded::Malformed("IPv4 total length shorter than its header");
    }
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    decode_tcp(src, dst, &ip[ihl..], total - ihl)
}

fn decode_ipv6(ip: &[u8]) -> Decoded<'_> {
    if ip.len() < 40 {
        return Decoded::Malformed("IPv6 header cut short");
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let mut next = ip[6];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let mut at = 40;
    let mut left = payload_len;
    // Step over the extension headers that may precede TCP.
    loop {
        match next {
            IPPROTO_TCP => break,
            0 | 43 | 60 => {
                let (Some(&nh), Some(&len)) = (ip.get(at), ip.get(at + 1)) else {
                    return Decoded::Malformed("IPv6 extension header cut short");
                };
                let hdr = (usize::from(len) + 1) * 8;
                if hdr > left {
                    return Decoded::Malformed("IPv6 extension header overruns the packet");
                }
                next = nh;
                at += hdr;
                left -= hdr;
            }
            44 => return Decoded::IpFragment,
            _ => return Decoded::NotTcp,
        }
    }
    if at > ip.len() {
        return Decoded::Malformed("IPv6 extension headers cut short");
    }
    decode_tcp(
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        &ip[at..],
        left,
    )
}

/// `tcp` is what was captured after the IP header; `ip_payload_len` is what IP says it held.
fn decode_tcp(src: IpAddr, dst: IpAddr, tcp: &[u8], ip_payload_len: usize) -> Decoded<'_> {
    if tcp.len() < 20 || ip_payload_len < 20 {
        return Decoded::Malformed("TCP header cut short");
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || doff > ip_payload_len {
        return Decoded::Malformed("TCP data offset invalid");
    }
    if tcp.len() < doff {
        return Decoded::Malformed("TCP options cut short");
    }
    // Captured bytes beyond the IP length are link-layer padding; fewer are a snap-length cut.
    let captured_end = tcp.len().min(ip_payload_len);
    let payload = &tcp[doff..captured_end];
    let missing = (ip_payload_len - captured_end) as u32;
    let (Some(sport), Some(dport), Some(seq), Some(ack)) =
        (be16(tcp, 0), be16(tcp, 2), be32(tcp, 4), be32(tcp, 8))
    else {
        return Decoded::Malformed("TCP header cut short");
    };
    Decoded::Tcp(TcpSegment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        ack,
        flags: TcpFlags(tcp[13]),
        payload,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::synth::{ethernet, ipv4_tcp, ipv6_tcp};

    fn seg(d: Decoded<'_>) -> TcpSegment<'_> {
        match d {
            Decoded::Tcp(s) => s,
            other => panic!("not TCP: {other:?}"),
        }
    }

    #[test]
    fn every_link_type_reaches_the_same_segment() {
        let ip = ipv4_tcp(
            [127, 0, 0, 1],
            5000,
            [127, 0, 0, 1],
            80,
            7,
            9,
            0x18,
            b"hello",
        );
        let eth = ethernet(&ip, ETHERTYPE_IPV4);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        sll.extend_from_slice(&ip);
        let mut sll2 = ETHERTYPE_IPV4.to_be_bytes().to_vec();
        sll2.resize(20, 0);
        sll2.extend_from_slice(&ip);
        let mut null_le = 2u32.to_le_bytes().to_vec();
        null_le.extend_from_slice(&ip);
        let mut null_be = 2u32.to_be_bytes().to_vec();
        null_be.extend_from_slice(&ip);
        let mut vlan = eth[..12].to_vec();
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        vlan.extend_from_slice(&ip);
        for (lt, f) in [
            (LINKTYPE_ETHERNET, &eth),
            (LINKTYPE_ETHERNET, &vlan),
            (LINKTYPE_LINUX_SLL, &sll),
            (LINKTYPE_LINUX_SLL2, &sll2),
            (LINKTYPE_RAW, &ip),
            (LINKTYPE_IPV4, &ip),
            (LINKTYPE_NULL, &null_le),
            (LINKTYPE_NULL, &null_be),
            (LINKTYPE_LOOP, &null_be),
        ] {
            let s = seg(decode(lt, f));
            assert_eq!(
                s.src,
                "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
                "{lt}"
            );
            assert_eq!(s.dst.port(), 80);
            assert_eq!(
                (s.seq, s.ack, s.payload, s.missing),
                (7, 9, &b"hello"[..], 0)
            );
            assert!(s.flags.ack() && !s.flags.syn());
        }
    }

    #[test]
    fn padding_trimmed_snaplen_cut_counted_ipv6_read() {
        let ip = ipv4_tcp([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, 0, 0, 0x10, b"ab");
        let mut eth = ethernet(&ip, ETHERTYPE_IPV4);
        eth.resize(60, 0); // Ethernet minimum frame padding
        assert_eq!(seg(decode(LINKTYPE_ETHERNET, &eth)).payload, b"ab");
        let ip = ipv4_tcp([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, 0, 0, 0x10, &[7u8; 100]);
        let s = seg(decode(LINKTYPE_RAW, &ip[..ip.len() - 30]));
        assert_eq!((s.payload.len(), s.missing), (70, 30));
        let ip6 = ipv6_tcp(1, 443, 2, 60000, b"x");
        let s = seg(decode(LINKTYPE_RAW, &ip6));
        assert_eq!(s.src, "[::1]:443".parse::<SocketAddr>().unwrap());
        assert_eq!(s.payload, b"x");
    }

    #[test]
    fn garbage_is_classified_never_a_panic() {
        let ip = ipv4_tcp([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0, 0, 0x10, b"payload");
        let eth = ethernet(&ip, ETHERTYPE_IPV4);
        for lt in [0, 1, 101, 108, 113, 228, 229, 276] {
            for cut in 0..eth.len() {
                let _ = decode(lt, &eth[..cut]);
                let mut bad = eth.clone();
                bad[cut] ^= 0xff;
                let _ = decode(lt, &bad);
            }
        }
        assert_eq!(decode(147, &eth), Decoded::UnsupportedLink(147));
        assert_eq!(
            decode(LINKTYPE_ETHERNET, &ethernet(&ip, 0x0806)),
            Decoded::NotIp
        );
        let mut frag = ip.clone();
        frag[6] = 0x20; // more fragments
        assert_eq!(decode(LINKTYPE_RAW, &frag), Decoded::IpFragment);
        let mut udp = ip.clone();
        udp[9] = 17;
        assert_eq!(decode(LINKTYPE_RAW, &udp), Decoded::NotTcp);
    }
}
