//! Replay: push a capture through the real pipeline shape.
//!
//! ```text
//!  capture (mmap) ──► feed thread: CaptureHandler (decode, books) ──rtrb──► consumer thread
//! ```
//!
//! The feed thread iterates the mapped records and hands each to a [`CaptureHandler`] (the venue
//! feeds live in `qalpha-feeds`; this crate only knows the shape). Events cross an SPSC ring with
//! [`FullPolicy::Backpressure`]: the capture is the source of truth, so the reader pauses rather
//! than drops. Pacing is `max` (as fast as possible) or a multiple of recorded time.

use std::time::{Duration, Instant};

use crate::capture::{CaptureReader, Connection, Record};
use crate::event::MarketEvent;
use crate::ring::{ring, FullPolicy, Producer};
use crate::runtime::{Placement, Runtime, WaitMode};

/// Turns capture records into market events (implemented per venue set in `qalpha-feeds`).
pub trait CaptureHandler: Send + 'static {
    /// Called once per file before its records, with its connection table.
    fn begin_file(&mut self, connections: &[Connection]);
    /// Called for every record, in order.
    fn on_record(&mut self, rec: &Record<'_>, out: &mut Producer<MarketEvent>);
    /// Called after the last record.
    fn finish(&mut self) {}
}

/// Consumes events on the consumer thread.
pub trait EventConsumer: Send + 'static {
    fn on_event(&mut self, ev: &MarketEvent);
}

/// Replay pacing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as the pipeline goes.
    Max,
    /// Recorded inter-arrival times divided by this factor (`1.0` = real time).
    Factor(f64),
}

impl Speed {
    /// `max`, `1x`, `10x`, `0.5x` (the `x` is optional).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "max" {
            return Some(Speed::Max);
        }
        let f: f64 = s.strip_suffix('x').unwrap_or(s).parse().ok()?;
        (f.is_finite() && f > 0.0).then_some(Speed::Factor(f))
    }
}

/// Replay settings.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub speed: Speed,
    pub ring_capacity: usize,
    pub feed: Placement,
    pub consumer: Placement,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            speed: Speed::Max,
            ring_capacity: 65_536,
            feed: Placement {
                core: None,
                wait: WaitMode::Yield,
            },
            consumer: Placement {
                core: None,
                wait: WaitMode::Yield,
            },
        }
    }
}

/// What the pipeline itself measured.
#[derive(Clone, Debug, Default)]
pub struct PipelineStats {
    pub files: usize,
    pub records: u64,
    pub events: u64,
    /// Times the feed thread found the ring full and waited.
    pub ring_full_waits: u64,
    /// Bytes lost at damaged file tails.
    pub lost_bytes: u64,
    pub elapsed: Duration,
}

/// Errors that stop a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("could not start the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("the {0} thread panicked")]
    Panicked(String),
}

/// Runs `readers` through `handler` on a feed thread and `consumer` on a consumer thread.
/// Returns both (with their counters) and the pipeline's own numbers.
pub fn run<H: CaptureHandler, C: EventConsumer>(
    readers: Vec<CaptureReader>,
    mut handler: H,
    mut consumer: C,
    opts: &ReplayOptions,
) -> Result<(H, C, PipelineStats), ReplayError> {
    let (mut tx, mut rx) =
        ring::<MarketEvent>(opts.ring_capacity, FullPolicy::Backpressure, opts.feed.wait);
    let (h_tx, h_rx) = std::sync::mpsc::channel();
    let (c_tx, c_rx) = std::sync::mpsc::channel();
    let speed = opts.speed;
    let mut rt = Runtime::new();
    let started = Instant::now();

    rt.spawn("qa-replay-consumer", opts.consumer, move |pl| {
        let mut events = 0u64;
        let mut spins = 0u32;
        loop {
            match rx.pop() {
                Ok(ev) => {
                    consumer.on_event(&ev);
                    events += 1;
                    spins = 0;
                }
                Err(_) if rx.is_abandoned() => {
                    // Producer gone: drain whatever is left, then stop.
                    while let Ok(ev) = rx.pop() {
                        consumer.on_event(&ev);
                        events += 1;
                    }
                    break;
                }
                Err(_) => pl.wait.idle(&mut spins),
            }
        }
        let _ = c_tx.send((consumer, events));
    })
    .map_err(|e| ReplayError::Spawn("consumer", e))?;

    rt.spawn("qa-replay-feed", opts.feed, move |_pl| {
        let mut records = 0u64;
        let mut lost = 0u64;
        let files = readers.len();
        let mut pace: Option<(u64, Instant)> = None;
        for r in &readers {
            lost += r.tail().lost_bytes();
            handler.begin_file(r.connections());
            for rec in r.records() {
                if let Speed::Factor(f) = speed {
                    let (t0, w0) = *pace.get_or_insert((rec.recv_ns, Instant::now()));
                    let due =
                        Duration::from_nanos((rec.recv_ns.saturating_sub(t0) as f64 / f) as u64);
                    let now = w0.elapsed();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                handler.on_record(&rec, &mut tx);
                records += 1;
            }
        }
        handler.finish();
        let waits = tx.full_waits();
        drop(tx);
        let _ = h_tx.send((handler, records, waits, lost, files));
    })
    .map_err(|e| ReplayError::Spawn("feed", e))?;

    let panicked = rt.join();
    let elapsed = started.elapsed();
    if let Some(name) = panicked.into_iter().next() {
        return Err(ReplayError::Panicked(name));
    }
    let (handler, records, ring_full_waits, lost_bytes, files) = h_rx
        .recv()
        .map_err(|_| ReplayError::Panicked("qa-replay-feed".into()))?;
    let (consumer, events) = c_rx
        .recv()
        .map_err(|_| ReplayError::Panicked("qa-replay-consumer".into()))?;
    Ok((
        handler,
        consumer,
        PipelineStats {
            files,
            records,
            events,
            ring_full_waits,
            lost_bytes,
            elapsed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_parsing() {
        assert_eq!(Speed::parse("max"), Some(Speed::Max));
        assert_eq!(Speed::parse("1x"), Some(Speed::Factor(1.0)));
        assert_eq!(Speed::parse("2.5"), Some(Speed::Factor(2.5)));
        assert_eq!(Speed::parse("0x"), None);
        assert_eq!(Speed::parse("fast"), None);
    }
}
