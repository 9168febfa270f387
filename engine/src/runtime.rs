//! Named worker threads pinned to cores, and how an idle thread waits.
//!
//! Gotcha this module exists to avoid (STACK-NOTES §5): a thread inherits its parent's CPU mask.
//! If the parent pinned itself first, every "unpinned" child would share its one core and two
//! busy-spinners would livelock. So the runtime never pins the calling thread: each worker is spawned
//! from the (unpinned) caller and pins *itself* as its first action.
//!
//! When the machine offers fewer cores than the plan pins (a laptop, a 2-vCPU CI box), the runtime
//! says so once at start and falls back to unpinned threads with `yield` waiting, so the same config
//! runs everywhere without burning the only cores.

use std::fmt;
use std::thread::JoinHandle;
use std::time::Duration;

/// How a thread waits when it has nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Busy-poll: lowest latency, one full core per thread.
    Spin,
    /// `sched_yield` between polls: shares a core politely, ~1 µs wake-up.
    Yield,
    /// Sleep briefly (`park_timeout`) after a few idle spins: for laptops and CI.
    Park,
}

impl WaitMode {
    /// Called once per empty poll; `spins` counts consecutive idle polls and is reset by the caller
    /// when work arrives.
    #[inline]
    pub fn idle(self, spins: &mut u32) {
        *spins = spins.saturating_add(1);
        match self {
            WaitMode::Spin => std::hint::spin_loop(),
            WaitMode::Yield => std::thread::yield_now(),
            WaitMode::Park => {
                if *spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::park_timeout(Duration::from_micros(50));
                }
            }
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spin" => Some(Self::Spin),
            "yield" => Some(Self::Yield),
            "park" => Some(Self::Park),
            _ => None,
        }
    }
}

impl fmt::Display for WaitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitMode::Spin => "spin",
            WaitMode::Yield => "yield",
            WaitMode::Park => "park",
        })
    }
}

/// One thread of the plan.
#[derive(Clone, Debug)]
pub struct ThreadSpec {
    pub name: String,
    /// Core to pin to (an id from `core_affinity::get_core_ids`), or `None` to leave unpinned.
    pub core: Option<usize>,
    pub wait: WaitMode,
}

/// What a worker was actually given (after any fallback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub core: Option<usize>,
    pub wait: WaitMode,
}

/// Decides the placement of every thread of a plan against the cores this process may use.
///
/// Pinned threads need distinct available cores. If any requested core is not available, or there are
/// fewer available cores than pinned threads, every thread falls back to unpinned + `Yield`
/// (a `Park` request is kept: it is already polite), and the reason is returned for logging.
pub fn plan_placements(
    specs: &[ThreadSpec],
    available: &[usize],
) -> (Vec<Placement>, Option<String>) {
    let pinned: Vec<usize> = specs.iter().filter_map(|s| s.core).collect();
    let mut distinct = pinned.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let missing: Vec<usize> = distinct
        .iter()
        .copied()
        .filter(|c| !available.contains(c))
        .collect();
    let reason = if distinct.len() != pinned.len() {
        Some(format!(
            "two threads are pinned to the same core ({pinned:?})"
        ))
    } else if pinned.len() > available.len() {
        Some(format!(
            "{} pinned threads but only {} usable cores {available:?}",
            pinned.len(),
            available.len()
        ))
    } else if !missing.is_empty() {
        Some(format!(
            "cores {missing:?} are not usable by this process (usable: {available:?})"
        ))
    } else {
        None
    };
    let placements = specs
        .iter()
        .map(|s| match &reason {
            None => Placement {
                core: s.core,
                wait: s.wait,
            },
            Some(_) => Placement {
                core: None,
                wait: if s.wait == WaitMode::Park {
                    WaitMode::Park
                } else {
                    WaitMode::Yield
                },
            },
        })
        .collect();
    (placements, reason)
}

/// Cores this process may run on (its affinity mask), by id.
pub fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Spawns the named threads of a plan, each pinning itself before running its body.
///
/// The caller's own affinity is never changed. Returns the join handles in plan order.
pub struct Runtime {
    handles: Vec<(String, JoinHandle<()>)>,
}

impl Runtime {
    /// Resolves placements for `specs` against this machine, logging any fallback once.
    pub fn place(specs: &[ThreadSpec]) -> Vec<Placement> {
        let (placements, reason) = plan_placements(specs, &available_cores());
        if let Some(reason) = reason {
            tracing::warn!(
                "thread pinning disabled: {reason}; running unpinned with yield waiting \
                 (latency figures from this run are not representative)"
            );
        }
        placements
    }

    pub fn new() -> Self {
        Self {
            handles: Vec::new(),
        }
    }

    /// Spawns one worker with its resolved placement. The body receives the placement so it can
    /// wait with the (possibly downgraded) [`WaitMode`].
    pub fn spawn<F>(&mut self, name: &str, placement: Placement, body: F) -> std::io::Result<()>
    where
        F: FnOnce(Placement) + Send + 'static,
    {
        let thread_name = name.to_string();
        let handle = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let mut placement = placement;
                if let Some(core) = placement.core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!(thread = %thread_name, core, "could not pin thread; running unpinned with yield");
                        placement = Placement {
                            core: None,
                            wait: WaitMode::Yield,
                        };
                    }
                }
                body(placement)
            })?;
        self.handles.push((name.to_string(), handle));
        Ok(())
    }

    /// Waits for every worker; returns the names of those that panicked.
    pub fn join(self) -> Vec<String> {
        self.handles
            .into_iter()
            .filter_map(|(name, h)| h.join().is_err().then_some(name))
            .collect()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(core: Option<usize>, wait: WaitMode) -> ThreadSpec {
        ThreadSpec {
            name: "t".into(),
            core,
            wait,
        }
    }

    #[test]
    fn enough_cores_keeps_the_plan() {
        let specs = [
            spec(Some(2), WaitMode::Spin),
            spec(Some(3), WaitMode::Spin),
            spec(None, WaitMode::Park),
        ];
        let (p, reason) = plan_placements(&specs, &[0, 1, 2, 3]);
        assert!(reason.is_none());
        assert_eq!(
            p[0],
            Placement {
                core: Some(2),
                wait: WaitMode::Spin
            }
        );
        assert_eq!(
            p[2],
            Placement {
                core: None,
                wait: WaitMode::Park
            }
        );
    }

    #[test]
    fn too_few_cores_falls_back_to_yield() {
        let specs = [
            spec(Some(0), WaitMode::Spin),
            spec(Some(1), WaitMode::Spin),
            spec(Some(2), WaitMode::Spin),
        ];
        let (p, reason) = plan_placements(&specs, &[0, 1]);
        assert!(reason.unwrap().contains("3 pinned threads"));
        assert!(p
            .iter()
            .all(|p| p.core.is_none() && p.wait == WaitMode::Yield));
    }

    #[test]
    fn missing_or_shared_core_falls_back() {
        let (_, r) = plan_placements(&[spec(Some(7), WaitMode::Spin)], &[0, 1]);
        assert!(r.unwrap().contains("not usable"));
        let (_, r) = plan_placements(
            &[spec(Some(0), WaitMode::Spin), spec(Some(0), WaitMode::Spin)],
            &[0, 1],
        );
        assert!(r.unwrap().contains("same core"));
    }

    #[test]
    fn workers_pin_themselves_and_parent_stays_unpinned() {
        let cores = available_cores();
        if cores.is_empty() {
            eprintln!("skip: core_affinity reports no cores on this platform");
            return;
        }
        let target = *cores.last().unwrap();
        let mut rt = Runtime::new();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(
            "pin-test",
            Placement {
                core: Some(target),
                wait: WaitMode::Yield,
            },
            move |pl| {
                tx.send((pl, available_cores())).unwrap();
            },
        )
        .unwrap();
        assert!(rt.join().is_empty());
        let (pl, seen) = rx.recv().unwrap();
        assert_eq!(pl.core, Some(target));
        assert_eq!(seen, vec![target]);
        // The caller's mask is untouched.
        assert_eq!(available_cores(), cores);
    }
}
