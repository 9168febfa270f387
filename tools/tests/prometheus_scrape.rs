//! The engine's `/metrics` scraped by a real Prometheus server (Debian's `prometheus` package,
//! installed by `tools/test.sh`), with the repository's alert rules loaded; then queried over its
//! HTTP API. Also: `promtool` accepts `configs/prometheus.yml` and the rules, and every series the
//! rules and the Grafana dashboard use is one the engine exports.
//!
//! Without `prometheus`/`promtool` on PATH the tests say so and skip (like the tshark tests).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One HTTP/1.1 GET; the body.
fn get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `qalpha demo --metrics 127.0.0.1:0`; its metrics address.
fn start_demo(extra: &[&str]) -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["demo", "--duration", "120s", "--speed", "5"])
        .args(["--metrics", "127.0.0.1:0"])
        .args(extra)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the demo ended before serving metrics")
            .unwrap();
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.trim_end_matches("/metrics").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Kill(child), addr)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The scalar value of an instant query's first result.
fn query(prom: &str, q: &str) -> Option<f64> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = get(prom, &format!("/api/v1/query?query={enc}")).ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Metric names used in a rules or dashboard file (`qalpha_…`, histogram suffixes stripped).
fn names_used(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(p) = text[i..].find("qalpha_") {
        let start = i + p;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let base = name.strip_suffix("_bucket").unwrap_or(name);
        if !(start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'-')) {
            out.insert(base.to_string());
        }
        i = end;
    }
    out
}

#[test]
fn promtool_accepts_the_config_and_rules() {
    if !have("promtool") {
        eprintln!("skipped: promtool not installed (tools/test.sh installs Debian's prometheus)");
        return;
    }
    let configs = repo().join("configs");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "qalpha-alerts.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&configs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_series_the_rules_and_dashboard_use_is_exported() {
    let (_demo, addr) = start_demo(&[]);
    let text = get(&addr, "/metrics").unwrap();
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert!(exported.len() > 20, "{exported:?}");
    let configs = repo().join("configs");
    for f in ["qalpha-alerts.yml", "grafana/qalpha-dashboard.json"] {
        let used = names_used(&std::fs::read_to_string(configs.join(f)).unwrap());
        assert!(used.len() >= 8, "{f}: {used:?}");
        let missing: Vec<&String> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{f} uses series the engine does not export: {missing:?}"
        );
    }
    // The dashboard is importable JSON with a Prometheus datasource input and queries.
    let d: Value = serde_json::from_str(
        &std::fs::read_to_string(configs.join("grafana/qalpha-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(d["__inputs"][0]["pluginId"], "prometheus");
    assert!(d["panels"].as_array().unwrap().len() >= 10);
}

#[test]
fn prometheus_scrapes_the_running_engine() {
    if !have("prometheus") {
        eprintln!("skipped: prometheus not installed (tools/test.sh installs Debian's prometheus)");
        return;
    }
    let (_demo, addr) = start_demo(&["--strategy", "maker"]);
    let dir = tempfile::tempdir().unwrap();
    // The repository's config with the target and interval of this test.
    let cfg = std::fs::read_to_string(repo().join("configs/prometheus.yml"))
        .unwrap()
        .replace("127.0.0.1:9184", &addr)
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 5s", "evaluation_interval: 1s")
        .replace(
            "qalpha-alerts.yml",
            repo().join("configs/qalpha-alerts.yml").to_str().unwrap(),
        );
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let prom = format!("127.0.0.1:{}", free_port());
    let _server = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!("--web.listen-address={prom}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Up to 60 polls half a second apart: the target is scraped and the demo has traded.
    let mut polls = 0;
    let (frames, sent) = loop {
        polls += 1;
        assert!(
            polls <= 60,
            "Prometheus never scraped the engine's frames and orders"
        );
        std::thread::sleep(Duration::from_millis(500));
        let frames = query(&prom, "qalpha_frames_total{venue=\"binance\"}");
        let sent = query(&prom, "qalpha_orders_total{status=\"sent\"}");
        if let (Some(f), Some(s)) = (frames, sent) {
            if f > 0.0 && s > 0.0 {
                break (f, s);
            }
        }
    };
    assert_eq!(query(&prom, "up{job=\"qalpha\"}"), Some(1.0));
    // Bybit is configured off in the demo: its series exists and stays zero.
    assert_eq!(
        query(&prom, "qalpha_frames_total{venue=\"bybit\"}"),
        Some(0.0)
    );
    // The histogram is usable: orders sent have tick-to-order samples and a finite P99.
    let count = query(&prom, "qalpha_tick_to_order_seconds_count").unwrap();
    assert!(count > 0.0 && count <= sent.max(count), "count {count}");
    let p99 = query(
        &prom,
        "histogram_quantile(0.99, sum by (le) (qalpha_tick_to_order_seconds_bucket))",
    )
    .unwrap();
    assert!(p99.is_finite() && p99 > 0.0, "p99 {p99}");
    // The engine's own view agrees with what Prometheus stored (counters only grow).
    let now: f64 = get(&addr, "/metrics")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("qalpha_frames_total{venue=\"binance\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(now >= frames, "engine {now} < scraped {frames}");
    assert_eq!(query(&prom, "qalpha_risk_state"), Some(0.0));
    assert_eq!(query(&prom, "qalpha_thread_stalls_total"), Some(0.0));
    // The alert rules were loaded and evaluate (healthy, none firing on a normal run).
    let rules: Value = serde_json::from_str(&get(&prom, "/api/v1/rules").unwrap()).unwrap();
    let all: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(all.len() >= 10, "{rules}");
    for r in &all {
        assert_ne!(
            r["health"], "err",
            "rule {} failed: {}",
            r["name"], r["lastError"]
        );
    }
    let halted = all.iter().find(|r| r["name"] == "QalphaHalted").unwrap();
    assert_ne!(halted["state"], "firing");
}
