//! Order encode + sign, per venue and path (issue 4's "order command → bytes" building block): the
//! work between a strategy's `NewOrder` and the request bytes the gateway writes — parameter
//! formatting from exact decimals, HMAC-SHA256, and the JSON/query layout each venue wants.
//!
//! Run: `cargo bench -p qalpha-bench --bench order_encode`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use qalpha_engine::Venue;
use qalpha_tools::bench_cmd::micro::sample_order;
use qalpha_venues::gateway::{binance, bybit};
use qalpha_venues::sign::Signer;

fn bench(c: &mut Criterion) {
    let s = Signer::new(
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    );
    let mut g = c.benchmark_group("order_encode");
    let bn = sample_order(Venue::BinanceUsdm);
    let bb = sample_order(Venue::BybitLinear);
    let ts = 1_700_000_000_000u64;
    g.bench_function("binance_rest", |b| {
        b.iter(|| black_box(binance::rest_new_order(&s, black_box(&bn), ts)))
    });
    g.bench_function("binance_ws_api", |b| {
        b.iter(|| {
            black_box(binance::ws_request(
                &s,
                "r1",
                "order.place",
                binance::new_order_params(black_box(&bn)),
                ts,
            ))
        })
    });
    g.bench_function("bybit_rest", |b| {
        b.iter(|| black_box(bybit::rest_create(&s, black_box(&bb), ts)))
    });
    g.bench_function("bybit_trade_ws", |b| {
        b.iter(|| {
            black_box(bybit::ws_request(
                "r1",
                "order.create",
                &bybit::create_args(black_box(&bb)),
                ts,
            ))
        })
    });
    g.bench_function("hmac_sha256_only", |b| {
        let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTX&quantity=0.012&price=63943.9&newClientOrderId=qamwwcsbxe-1234&recvWindow=5000&timestamp=1700000000000";
        b.iter(|| black_box(s.binance_rest(black_box(q), "")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
