//! Server-time offset, so signed requests carry a `timestamp` the venue accepts (Binance:
//! `serverTime − timestamp ≤ recvWindow` and `timestamp < serverTime + 1000`, else -1021; Bybit the
//! same with 10002).
//!
//! Each sample is one time request: local send time, the server's time, local receive time. The
//! server stamped somewhere inside the round trip, so the estimate is `server − midpoint`, good to
//! ±RTT/2; the sample with the smallest round trip among the recent ones wins (NTP's rule).

use std::collections::VecDeque;

/// One time request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSample {
    pub sent_ns: u64,
    pub server_ms: u64,
    pub recv_ns: u64,
}

/// Tracks `server − local` from recent samples.
#[derive(Clone, Debug, Default)]
pub struct ClockOffset {
    samples: VecDeque<TimeSample>,
}

const KEEP: usize = 8;

impl ClockOffset {
    pub fn add(&mut self, s: TimeSample) {
        if s.recv_ns < s.sent_ns {
            return; // not a round trip: ignore rather than poison the estimate
        }
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    fn best(&self) -> Option<&TimeSample> {
        self.samples.iter().min_by_key(|s| s.recv_ns - s.sent_ns)
    }

    /// `server − local` in ns (0 before any sample).
    pub fn offset_ns(&self) -> i64 {
        self.best().map_or(0, |s| {
            let mid = s.sent_ns / 2 + s.recv_ns / 2;
            (s.server_ms as i64) * 1_000_000 - mid as i64
        })
    }

    /// Half the best round trip: the uncertainty of the offset.
    pub fn uncertainty_ns(&self) -> u64 {
        self.best()
            .map_or(u64::MAX, |s| (s.recv_ns - s.sent_ns) / 2)
    }

    /// The venue's clock now, in ms, for a signed request's `timestamp`.
    pub fn server_ms(&self, local_ns: u64) -> u64 {
        ((local_ns as i64 + self.offset_ns()).max(0) / 1_000_000) as u64
    }
}

/// `serverTime` from Binance `GET /fapi/v1/time`.
pub fn parse_binance_time(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("serverTime")?
        .as_u64()
}

/// Milliseconds from Bybit `GET /v5/market/time` (`result.timeNano` as a string, or the envelope
/// `time`).
pub fn parse_bybit_time(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["result"]["timeNano"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|ns| ns / 1_000_000)
        .or_else(|| v["time"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_rtt_sample_wins() {
        let mut c = ClockOffset::default();
        assert_eq!(c.offset_ns(), 0);
        // Server 1.27 s behind local (as the 2024 hftbacktest recorder was relative to E, inverted).
        c.add(TimeSample {
            sent_ns: 10_000_000_000,
            server_ms: 8_740,
            recv_ns: 10_020_000_000,
        }); // rtt 20 ms
        c.add(TimeSample {
            sent_ns: 20_000_000_000,
            server_ms: 18_730,
            recv_ns: 20_000_400_000,
        }); // rtt 0.4 ms
        assert_eq!(c.offset_ns(), 18_730_000_000 - 20_000_200_000);
        assert_eq!(c.uncertainty_ns(), 200_000);
        assert_eq!(c.server_ms(30_000_000_000), 28_729);
        c.add(TimeSample {
            sent_ns: 5,
            server_ms: 1,
            recv_ns: 4,
        });
        assert_eq!(c.uncertainty_ns(), 200_000, "a backwards sample is ignored");
    }

    #[test]
    fn parses_time_endpoints() {
        assert_eq!(
            parse_binance_time(br#"{"serverTime":1499827319559}"#),
            Some(1499827319559)
        );
        assert_eq!(
            parse_bybit_time(br#"{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1688639403","timeNano":"1688639403423213947"},"retExtInfo":{},"time":1688639403423}"#),
            Some(1688639403423)
        );
        assert_eq!(parse_binance_time(b"nope"), None);
    }
}
