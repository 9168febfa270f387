//! SPSC rings between pinned threads, on `rtrb`, with the full-ring policy stated per ring.
//!
//! One ring per producer→consumer pair (DESIGN §1): no locks, no allocation after construction.
//! What happens when the consumer falls behind is a property of the ring, chosen at construction:
//!
//! - [`FullPolicy::DropNewest`] — market data on the live path. The new event is dropped and counted,
//!   and [`PushOutcome::Dropped`] tells the producer, who must mark the affected book stale (a dropped
//!   book update means the consumer's view is no longer exact). The feed thread never blocks, so the
//!   socket keeps being drained and the exchange never sees us lag.
//! - [`FullPolicy::Backpressure`] — orders (must never be dropped) and replay (the capture is the
//!   source of truth, so pausing the reader loses nothing). The producer waits with its
//!   [`WaitMode`](crate::runtime::WaitMode) until a slot frees, and counts each wait.
//!
//! Both report through counters the monitor reads, never through logging on the hot path.

use crate::runtime::WaitMode;

pub use rtrb::Consumer;

/// What a full ring does with a new value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullPolicy {
    /// Drop the new value and count it (market data, live).
    DropNewest,
    /// Wait for the consumer (orders; replay).
    Backpressure,
}

/// Result of [`Producer::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The ring was full and the policy dropped the value.
    Dropped,
    /// The consumer is gone; the value was discarded (shutdown).
    Closed,
}

/// Producer half of a ring, with its policy and counters.
pub struct Producer<T> {
    inner: rtrb::Producer<T>,
    policy: FullPolicy,
    wait: WaitMode,
    dropped: u64,
    full_waits: u64,
}

/// Creates a ring of `capacity` slots with the given full-ring policy. `wait` is how a
/// back-pressured producer waits for space.
pub fn ring<T>(capacity: usize, policy: FullPolicy, wait: WaitMode) -> (Producer<T>, Consumer<T>) {
    let (inner, consumer) = rtrb::RingBuffer::new(capacity);
    (
        Producer {
            inner,
            policy,
            wait,
            dropped: 0,
            full_waits: 0,
        },
        consumer,
    )
}

impl<T> Producer<T> {
    /// Pushes one value according to the ring's [`FullPolicy`].
    #[inline]
    pub fn push(&mut self, value: T) -> PushOutcome {
        let mut value = value;
        let mut spins = 0u32;
        loop {
            match self.inner.push(value) {
                Ok(()) => return PushOutcome::Pushed,
                Err(rtrb::PushError::Full(v)) => {
                    if self.inner.is_abandoned() {
                        return PushOutcome::Closed;
                    }
                    match self.policy {
                        FullPolicy::DropNewest => {
                            self.dropped += 1;
                            return PushOutcome::Dropped;
                        }
                        FullPolicy::Backpressure => {
                            if spins == 0 {
                                self.full_waits += 1;
                            }
                            self.wait.idle(&mut spins);
                            value = v;
                        }
                    }
                }
            }
        }
    }

    /// Values dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Times a back-pressured push found the ring full and had to wait.
    pub fn full_waits(&self) -> u64 {
        self.full_waits
    }

    pub fn policy(&self) -> FullPolicy {
        self.policy
    }

    /// True once the consumer half has been dropped.
    pub fn is_closed(&self) -> bool {
        self.inner.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_newest_counts_and_keeps_old_values() {
        let (mut p, mut c) = ring::<u32>(2, FullPolicy::DropNewest, WaitMode::Yield);
        assert_eq!(p.push(1), PushOutcome::Pushed);
        assert_eq!(p.push(2), PushOutcome::Pushed);
        assert_eq!(p.push(3), PushOutcome::Dropped);
        assert_eq!(p.dropped(), 1);
        assert_eq!(c.pop().unwrap(), 1);
        assert_eq!(c.pop().unwrap(), 2);
        assert!(c.pop().is_err());
    }

    #[test]
    fn backpressure_loses_nothing_across_threads() {
        let (mut p, mut c) = ring::<u64>(4, FullPolicy::Backpressure, WaitMode::Yield);
        let n = 100_000u64;
        let t = std::thread::spawn(move || {
            for i in 0..n {
                assert_eq!(p.push(i), PushOutcome::Pushed);
            }
            p.full_waits()
        });
        let mut expect = 0;
        while expect < n {
            if let Ok(v) = c.pop() {
                assert_eq!(v, expect);
                expect += 1;
            } else {
                std::thread::yield_now();
            }
        }
        let waits = t.join().unwrap();
        // A 4-slot ring with 100k values must have filled at least once.
        assert!(waits > 0);
    }

    #[test]
    fn closed_consumer_is_reported() {
        let (mut p, c) = ring::<u8>(1, FullPolicy::Backpressure, WaitMode::Yield);
        assert_eq!(p.push(1), PushOutcome::Pushed);
        drop(c);
        assert_eq!(p.push(2), PushOutcome::Closed);
        assert!(p.is_closed());
    }
}
