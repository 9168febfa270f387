//! Single-sample inference latency of the test models, in tract (the engine's runtime) and, when
//! an onnxruntime library is available, in onnxruntime on the same models and the same inputs.
//!
//! The models are `strategy/tests/models/{guardian,oracle,strategist}.{onnx,json}`, loaded with
//! `Model::load` against the standard feature set exactly as the engine loads a model. Inputs are
//! real: the standard set runs over the real BTCUSDT 1m klines in `../shared/data/klines`, each
//! bar's row is normalized into a `FeatureWindow` per model, and 64 full windows spread over the
//! file are kept (the reference inputs in `{name}.reference.json` stand in when the klines are
//! absent). The Strategist's second input, the target return, is `0.01`.
//!
//! 1. criterion, `inference/tract/{model}` and `inference/ort/{model}`: the mean of one run (copy
//!    the window in, run, read the outputs), cycling through the windows;
//! 2. an `hdrhistogram` pass: `RUNS` single runs per model and runtime, each timed on its own, then
//!    p50 / p90 / p99 / max in µs and the tract / onnxruntime ratio per percentile.
//!
//! Both runtimes use one thread: tract runs on the calling thread; onnxruntime gets
//! `intra_op_num_threads = 1` and `inter_op_num_threads = 1` (sequential execution), so neither
//! gains from the second core. Before anything is timed, every window is run through both and the
//! outputs must agree to `AGREEMENT` (absolute), so the two are compared like for like.
//!
//! onnxruntime is loaded at run time (`ort` with `load-dynamic`, nothing downloaded): from
//! `ORT_DYLIB_PATH`, or the `libonnxruntime.so*` inside the onnxruntime wheel that
//! tools/test.sh installs into `tools/train/.venv` (pinned in tools/train/requirements-ta.txt).
//! Without one the comparison is skipped with a message and the tract part runs alone.
//! Run: `cargo bench -p qalpha-bench --bench inference` (add `-- --warm-up-time 1
//! --measurement-time 3` for a short run).

use std::hint::black_box;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::Criterion;
use hdrhistogram::Histogram;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use qalpha_strategy::bars::read_klines;
use qalpha_strategy::features::standard::standard;
use qalpha_strategy::model::{FeatureWindow, Model};
use serde_json::Value;

const MODELS: [&str; 3] = ["guardian", "oracle", "strategist"];
/// The Strategist's target return (its condition input).
const TARGET_RETURN: f32 = 0.01;
/// Windows each benchmark cycles through.
const WINDOWS: usize = 64;
/// Timed single runs per model and runtime in the latency pass.
const RUNS: usize = 20_000;
/// Largest |tract − onnxruntime| allowed on any output value.
const AGREEMENT: f32 = 1e-4;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategy/tests/models")
}

fn klines_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv")
}

/// One model in both runtimes, with its input windows.
struct Bench {
    name: &'static str,
    tract: Model,
    ort: Option<Session>,
    /// `WINDOWS` inputs, each `window × features` values.
    windows: Vec<Vec<f32>>,
    /// The second input's value, for a model that has one.
    condition: Option<f32>,
    /// Where the windows came from, for the report.
    source: &'static str,
}

impl Bench {
    fn load(name: &'static str, ort_enabled: bool) -> Self {
        let dir = models_dir();
        let onnx = dir.join(format!("{name}.onnx"));
        let set = standard();
        let tract = Model::load(&onnx, dir.join(format!("{name}.json")), set.names())
            .unwrap_or_else(|e| panic!("{e}"));
        let condition = match tract.meta().inputs.len() {
            1 => None,
            2 => Some(TARGET_RETURN),
            n => {
                panic!("{name}: {n} inputs; the benchmark feeds a window and at most one condition")
            }
        };
        let (windows, source) = match real_windows(&tract) {
            Some(w) => (w, "real BTCUSDT 1m klines"),
            None => (reference_windows(name), "the reference inputs"),
        };
        let ort = ort_enabled.then(|| {
            Session::builder()
                .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
                .and_then(|b| b.with_intra_threads(1))
                .and_then(|b| b.with_inter_threads(1))
                .and_then(|b| b.with_parallel_execution(false))
                .and_then(|b| b.commit_from_file(&onnx))
                .unwrap_or_else(|e| panic!("onnxruntime cannot load {}: {e}", onnx.display()))
        });
        Self {
            name,
            tract,
            ort,
            windows,
            condition,
            source,
        }
    }

    /// One tract run; returns the first output value (kept alive by the caller).
    #[inline]
    fn run_tract(&mut self, i: usize) -> f32 {
        let w = &self.windows[i];
        let out = match self.condition {
            Some(c) => self.tract.run_conditioned(w, &[c]),
            None => self.tract.run(w),
        };
        out.unwrap_or_else(|e| panic!("{e}"))[0][0]
    }

    /// One onnxruntime run (copy-free input views, outputs read like tract's); returns the first
    /// output value.
    #[inline]
    fn run_ort(&mut self, i: usize) -> f32 {
        ort_outputs(self, i, |outs| outs[0][0])
    }

    /// Every window through both runtimes: outputs agree to `AGREEMENT`.
    fn check_agreement(&mut self) -> f32 {
        let mut worst = 0.0f32;
        for i in 0..self.windows.len() {
            let ort: Vec<Vec<f32>> =
                ort_outputs(self, i, |outs| outs.iter().map(|o| o.to_vec()).collect());
            let w = &self.windows[i];
            let tract = match self.condition {
                Some(c) => self.tract.run_conditioned(w, &[c]),
                None => self.tract.run(w),
            }
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tract.len(), ort.len(), "{}: output count", self.name);
            for (k, (t, o)) in tract.iter().zip(&ort).enumerate() {
                assert_eq!(t.len(), o.len(), "{} output {k}: length", self.name);
                for (a, b) in t.iter().zip(o) {
                    let d = (a - b).abs();
                    assert!(
                        d <= AGREEMENT,
                        "{} window {i} output {k}: tract {a}, onnxruntime {b}",
                        self.name
                    );
                    worst = worst.max(d);
                }
            }
        }
        worst
    }
}

/// Runs onnxruntime on window `i` and hands `read` the outputs in the metadata's order, each as a
/// flat slice. The input tensors are views of the window (no copy).
fn ort_outputs<R>(b: &mut Bench, i: usize, read: impl FnOnce(&[&[f32]]) -> R) -> R {
    let meta = b.tract.meta();
    let shape = meta.expected_input_shape();
    let session = b.ort.as_mut().expect("onnxruntime session");
    let window = TensorRef::from_array_view((shape, b.windows[i].as_slice()))
        .unwrap_or_else(|e| panic!("{}: input tensor: {e}", b.name));
    let condition = b.condition.map(|c| [c]);
    let outputs = match &condition {
        Some(c) => {
            let c = TensorRef::from_array_view(([1usize, 1], &c[..]))
                .unwrap_or_else(|e| panic!("{}: condition tensor: {e}", b.name));
            session.run(ort::inputs![window, c])
        }
        None => session.run(ort::inputs![window]),
    }
    .unwrap_or_else(|e| panic!("{}: onnxruntime run: {e}", b.name));
    // At most a few outputs: a fixed array keeps the read allocation-free, like tract's.
    let mut flat: [&[f32]; 4] = [&[]; 4];
    let n = meta.outputs.len();
    assert!(n <= flat.len(), "{}: {n} outputs", b.name);
    for (slot, spec) in flat.iter_mut().zip(&meta.outputs) {
        let (_, data) = outputs[spec.name.as_str()]
            .try_extract_tensor::<f32>()
            .unwrap_or_else(|e| panic!("{} output `{}`: {e}", b.name, spec.name));
        *slot = data;
    }
    read(&flat[..n])
}

/// `WINDOWS` full windows of the model's normalized rows over the real klines, spread over the
/// file; `None` when the kline file is absent.
fn real_windows(model: &Model) -> Option<Vec<Vec<f32>>> {
    let path = klines_path();
    if !path.exists() {
        return None;
    }
    let bars = read_klines(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut set = standard();
    let mut row = Vec::with_capacity(set.len());
    let meta = model.meta();
    let mut window = FeatureWindow::new(meta.window, meta.features.len());
    let mut finite_run = 0;
    let mut all = Vec::new();
    for b in &bars {
        set.update(b, &mut row);
        let finite = window.push_with(|r| model.normalize_row(&row, r));
        finite_run = if finite { finite_run + 1 } else { 0 };
        if finite_run >= meta.window {
            all.push(window.as_slice().expect("full").to_vec());
        }
    }
    assert!(
        all.len() >= WINDOWS,
        "{}: {} finite windows",
        path.display(),
        all.len()
    );
    Some(
        (0..WINDOWS)
            .map(|i| all[i * all.len() / WINDOWS].clone())
            .collect(),
    )
}

/// The reference cases' inputs (already normalized), repeated up to `WINDOWS`.
fn reference_windows(name: &str) -> Vec<Vec<f32>> {
    let path = models_dir().join(format!("{name}.reference.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Vec<f32>> = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            c["input"]
                .as_array()
                .expect("input")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect();
    (0..WINDOWS)
        .map(|i| cases[i % cases.len()].clone())
        .collect()
}

/// The onnxruntime library: `ORT_DYLIB_PATH`, else the one in the tools/train venv's wheel.
fn find_onnxruntime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if !p.exists() {
            println!("ORT_DYLIB_PATH={} does not exist", p.display());
            return None;
        }
        return Some(p);
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/train/.venv/lib");
    let pythons = std::fs::read_dir(lib).ok()?;
    for python in pythons.flatten() {
        if !python.file_name().to_string_lossy().starts_with("python3") {
            continue;
        }
        let capi = python.path().join("site-packages/onnxruntime/capi");
        let Ok(files) = std::fs::read_dir(capi) else {
            continue;
        };
        for f in files.flatten() {
            if f.file_name()
                .to_string_lossy()
                .starts_with("libonnxruntime.so")
            {
                return Some(f.path());
            }
        }
    }
    None
}

/// Loads onnxruntime from `path`. ort panics on a library it cannot load; that is a skip here,
/// so the panic is caught and its message returned (the default hook's report is held back).
fn init_onnxruntime(path: &Path) -> Result<(), String> {
    let shown = path.display().to_string();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let loaded = catch_unwind(|| ort::init_from(&shown).commit());
    std::panic::set_hook(hook);
    loaded
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic while loading".into())
        })?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn criterion_pass(c: &mut Criterion, benches: &mut [Bench]) {
    let mut g = c.benchmark_group("inference");
    for b in benches.iter_mut() {
        let mut i = 0;
        g.bench_function(format!("tract/{}", b.name), |t| {
            t.iter(|| {
                let v = b.run_tract(i);
                i = (i + 1) % WINDOWS;
                black_box(v)
            })
        });
        if b.ort.is_some() {
            let mut i = 0;
            g.bench_function(format!("ort/{}", b.name), |t| {
                t.iter(|| {
                    let v = b.run_ort(i);
                    i = (i + 1) % WINDOWS;
                    black_box(v)
                })
            });
        }
    }
    g.finish();
}

/// p50, p90, p99, max of `runs` single timed runs, ns.
fn latency(runs: usize, mut run: impl FnMut(usize) -> f32) -> [u64; 4] {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for i in 0..runs.min(1_000) {
        black_box(run(i % WINDOWS)); // warm-up, untimed
    }
    for i in 0..runs {
        let t = Instant::now();
        black_box(run(i % WINDOWS));
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    [0.5, 0.9, 0.99]
        .map(|q| h.value_at_quantile(q))
        .into_iter()
        .chain([h.max()])
        .collect::<Vec<_>>()
        .try_into()
        .expect("four values")
}

fn latency_pass(benches: &mut [Bench], runs: usize) {
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "inference latency: {runs} single runs per model and runtime, 1 thread each, µs (window \
         copy-in, run, outputs read)"
    );
    println!(
        "{:<12} {:<6} {:>9} {:>9} {:>9} {:>9}",
        "model", "rt", "p50", "p90", "p99", "max"
    );
    for b in benches.iter_mut() {
        let name = b.name;
        let tract = latency(runs, |i| b.run_tract(i));
        let row = |rt: &str, v: [u64; 4]| {
            println!(
                "{:<12} {:<6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                name,
                rt,
                us(v[0]),
                us(v[1]),
                us(v[2]),
                us(v[3])
            )
        };
        row("tract", tract);
        if b.ort.is_some() {
            let ort = latency(runs, |i| b.run_ort(i));
            row("ort", ort);
            let r = |k: usize| tract[k] as f64 / ort[k].max(1) as f64;
            println!(
                "{:<12} {:<6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                "t/o",
                r(0),
                r(1),
                r(2),
                r(3)
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // Criterion's test mode (`cargo test --benches`, no `--bench`; or `--test`) runs each
    // benchmark once: the latency pass is kept as short.
    let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");

    let ort_enabled = match find_onnxruntime() {
        None => {
            println!(
                "onnxruntime not found, skipping comparison (set ORT_DYLIB_PATH, or run \
                 tools/test.sh once to install the onnxruntime wheel into tools/train/.venv)"
            );
            false
        }
        Some(path) => match init_onnxruntime(&path) {
            Ok(()) => {
                println!(
                    "onnxruntime: {} (intra-op threads 1, inter-op threads 1)",
                    path.display()
                );
                true
            }
            Err(e) => {
                println!(
                    "onnxruntime at {} did not load ({e}), skipping comparison",
                    path.display()
                );
                false
            }
        },
    };
    let mut benches: Vec<Bench> = MODELS.iter().map(|n| Bench::load(n, ort_enabled)).collect();
    for b in benches.iter_mut() {
        let m = b.tract.meta();
        print!(
            "{}: window {}×{}, {} input(s), {} windows from {}",
            b.name,
            m.window,
            m.features.len(),
            m.inputs.len(),
            b.windows.len(),
            b.source
        );
        if b.ort.is_some() {
            let worst = b.check_agreement();
            print!("; tract vs onnxruntime max |Δ| = {worst:.2e}");
        }
        println!();
    }

    let mut c = Criterion::default().configure_from_args();
    criterion_pass(&mut c, &mut benches);
    c.final_summary();
    latency_pass(&mut benches, if quick { 100 } else { RUNS });
}
