//! Tests of the pcap / pcapng reader.
use super::*;
use crate::pcap::synth::{pcap_file, pcapng_file, NgBlock};

fn read_all(bytes: &[u8]) -> (Vec<(u64, u16, Vec<u8>)>, CaptureEnd) {
    let mut r = PacketReader::new(bytes, "test".into()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push((p.ts_ns, p.link_type, p.data.to_vec()));
    }
    (v, r.end().clone())
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    let pkts = vec![
        (1_680_652_700_423_575_123u64, b"first".to_vec()),
        (1_680_652_700_999_999_999, b"second packet".to_vec()),
    ];
    for big in [false, true] {
        for nanos in [false, true] {
            let f = pcap_file(113, nanos, big, &pkts);
            let (got, end) = read_all(&f);
            assert_eq!(end, CaptureEnd::Clean);
            assert_eq!(got.len(), 2);
            for ((ts, lt, d), (want_ts, want)) in got.iter().zip(&pkts) {
                let want_ts = if nanos {
                    *want_ts
                } else {
                    want_ts / 1000 * 1000
                };
                assert_eq!(
                    (*ts, *lt, d),
                    (want_ts, 113, want),
                    "big={big} nanos={nanos}"
                );
            }
        }
    }
}

#[test]
fn pcapng_interfaces_resolutions_sections_and_simple_blocks() {
    let f = pcapng_file(
        true,
        &[
            NgBlock::Interface {
                link_type: 1,
                tsresol: Some(9),
            },
            NgBlock::Interface {
                link_type: 276,
                tsresol: None,
            },
            NgBlock::Interface {
                link_type: 101,
                tsresol: Some(0x80 | 10),
            },
            NgBlock::Packet {
                interface: 0,
                ticks: 1_700_000_000_123_456_789,
                data: b"ns",
            },
            NgBlock::Other { btype: 5 },
            NgBlock::Packet {
                interface: 1,
                ticks: 1_700_000_000_123_456,
                data: b"us",
            },
            NgBlock::Simple { data: b"simple" },
            NgBlock::Packet {
                interface: 2,
                ticks: 3 << 10,
                data: b"pow2",
            },
            NgBlock::Packet {
                interface: 7,
                ticks: 1,
                data: b"nowhere",
            },
            NgBlock::Section { big_endian: false },
            NgBlock::Interface {
                link_type: 0,
                tsresol: Some(3),
            },
            NgBlock::Packet {
                interface: 0,
                ticks: 5,
                data: b"ms",
            },
        ],
    );
    let mut r = PacketReader::new(&f[..], "t".into()).unwrap();
    assert!(r.is_pcapng());
    let mut got = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        got.push((p.ts_ns, p.link_type, p.data.to_vec()));
    }
    assert_eq!(r.end(), &CaptureEnd::Clean);
    assert_eq!(r.unknown_interface, 1);
    assert_eq!(
        got,
        vec![
            (1_700_000_000_123_456_789, 1, b"ns".to_vec()),
            (1_700_000_000_123_456_000, 276, b"us".to_vec()),
            (1_700_000_000_123_456_000, 1, b"simple".to_vec()),
            (3_000_000_000, 101, b"pow2".to_vec()),
            (5_000_000, 0, b"ms".to_vec()),
        ]
    );
}

#[test]
fn truncation_anywhere_reads_a_prefix_and_says_so() {
    let pkts: Vec<(u64, Vec<u8>)> = (0..20)
        .map(|i| (i * 1000, vec![i as u8; 30 + i as usize]))
        .collect();
    let classic = pcap_file(1, true, false, &pkts);
    let blocks: Vec<NgBlock<'_>> = std::iter::once(NgBlock::Interface {
        link_type: 1,
        tsresol: Some(9),
    })
    .chain(pkts.iter().map(|(t, d)| NgBlock::Packet {
        interface: 0,
        ticks: *t,
        data: d,
    }))
    .collect();
    let ng = pcapng_file(false, &blocks);
    for file in [&classic, &ng] {
        let header = if file == &classic { 24 } else { 28 };
        for cut in header..file.len() {
            let (got, end) = read_all(&file[..cut]);
            assert!(got.len() < pkts.len());
            for (g, p) in got.iter().zip(&pkts) {
                assert_eq!((g.0, &g.2), (p.0, &p.1));
            }
            assert!(
                matches!(end, CaptureEnd::Truncated { lost_bytes, .. } if lost_bytes > 0)
                    || end == CaptureEnd::Clean,
                "{end:?}"
            );
        }
    }
}

#[test]
fn garbage_is_an_error_or_a_reported_corruption() {
    for bad in [
        &b""[..],
        b"abc",
        b"{\"not\":\"pcap\"}",
        &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0],
    ] {
        assert!(PacketReader::new(bad, "bad".into()).is_err(), "{bad:?}");
    }
    let e = PacketReader::new(&b"GET / HTTP/1.1\r\n"[..], "x.pcap".into())
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("x.pcap") && e.to_string().contains("not a pcap"),
        "{e}"
    );
    // An absurd length in a packet header stops reading there, reported.
    let mut f = pcap_file(1, false, false, &[(1, vec![1; 10]), (2, vec![2; 10])]);
    let second = 24 + 16 + 10;
    f[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (got, end) = read_all(&f);
    assert_eq!(got.len(), 1);
    assert!(matches!(end, CaptureEnd::Corrupt { .. }), "{end:?}");
    // Random bytes after a valid header never panic.
    let mut seed = 0x1234_5678u32;
    for _ in 0..200 {
        let mut f = pcapng_file(
            false,
            &[NgBlock::Interface {
                link_type: 1,
                tsresol: None,
            }],
        );
        for _ in 0..200 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f.push((seed >> 24) as u8);
        }
        let _ = read_all(&f);
    }
}
