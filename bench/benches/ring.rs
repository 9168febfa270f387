//! One ring hop: the engine's SPSC ring (`qalpha_engine::ring`, on `rtrb`) against crossbeam's
//! `ArrayQueue` (the MPMC bounded queue a reader would reach for), carrying a real
//! `MarketEvent` of the bundled capture.
//!
//! - `ring/{rtrb,arrayqueue}_same_thread`: push + pop on one thread — the queue's own bookkeeping,
//!   no cache line crosses cores.
//! - `ring/{rtrb,arrayqueue}_ping_pong`: a round trip between two threads (pinned to two cores when
//!   the machine has them): this thread pushes into ring A, the echo thread pops it and pushes it
//!   into ring B, this thread pops it. Half of it is one cross-core hop, what the feed → strategy and
//!   strategy → gateway rings cost on the hot path.
//!
//! Run: `cargo bench -p qalpha-bench --bench ring`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use qalpha_bench::SAMPLE_CAPTURE;
use qalpha_engine::event::MarketEvent;
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::WaitMode;

const CAP: usize = 1 << 12;

/// A real event from the bundled capture.
fn real_event() -> MarketEvent {
    let reader = qalpha_engine::capture::CaptureReader::open(SAMPLE_CAPTURE).expect("sample");
    let mut router = qalpha_feeds::replay::VenueRouter::new();
    router.begin_file(reader.connections());
    let mut evs = Vec::new();
    for rec in reader.records() {
        router.route(&rec, &mut evs);
        if !evs.is_empty() {
            break;
        }
    }
    evs.first().copied().expect("the sample has events")
}

/// Pins the current thread to `i`-th usable core, if there is one.
fn pin(i: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if ids.len() >= 2 {
            core_affinity::set_for_current(ids[i % ids.len()]);
        }
    }
}

fn benches(c: &mut Criterion) {
    let ev = real_event();
    println!("MarketEvent: {} bytes", std::mem::size_of::<MarketEvent>());
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(1));

    let (mut tx, mut rx) = ring::<MarketEvent>(CAP, FullPolicy::DropNewest, WaitMode::Spin);
    g.bench_function("rtrb_same_thread", |b| {
        b.iter(|| {
            tx.push(black_box(ev));
            black_box(rx.pop().ok())
        })
    });
    let q = ArrayQueue::<MarketEvent>::new(CAP);
    g.bench_function("arrayqueue_same_thread", |b| {
        b.iter(|| {
            let _ = q.push(black_box(ev));
            black_box(q.pop())
        })
    });

    // Round trips through an echo thread.
    pin(0);
    {
        let (mut a_tx, mut a_rx) =
            ring::<MarketEvent>(CAP, FullPolicy::Backpressure, WaitMode::Spin);
        let (mut b_tx, mut b_rx) =
            ring::<MarketEvent>(CAP, FullPolicy::Backpressure, WaitMode::Spin);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let echo = std::thread::spawn(move || {
            pin(1);
            while !s.load(Ordering::Relaxed) {
                if let Ok(e) = a_rx.pop() {
                    b_tx.push(e);
                }
            }
        });
        g.bench_function("rtrb_ping_pong", |b| {
            b.iter(|| {
                a_tx.push(black_box(ev));
                loop {
                    if let Ok(e) = b_rx.pop() {
                        break black_box(e);
                    }
                    std::hint::spin_loop();
                }
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = echo.join();
    }
    {
        let a = Arc::new(ArrayQueue::<MarketEvent>::new(CAP));
        let bq = Arc::new(ArrayQueue::<MarketEvent>::new(CAP));
        let stop = Arc::new(AtomicBool::new(false));
        let (a2, b2, s) = (a.clone(), bq.clone(), stop.clone());
        let echo = std::thread::spawn(move || {
            pin(1);
            while !s.load(Ordering::Relaxed) {
                if let Some(e) = a2.pop() {
                    while b2.push(e).is_err() {
                        std::hint::spin_loop();
                    }
                }
            }
        });
        g.bench_function("arrayqueue_ping_pong", |b| {
            b.iter(|| {
                let _ = a.push(black_box(ev));
                loop {
                    if let Some(e) = bq.pop() {
                        break black_box(e);
                    }
                    std::hint::spin_loop();
                }
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = echo.join();
    }
    g.finish();
}

criterion_group!(ring_benches, benches);
criterion_main!(ring_benches);
