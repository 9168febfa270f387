//! `qalpha check-config`: the shipped configs pass; each kind of mistake fails with the key it is
//! about and why.

use std::path::Path;
use std::process::Command;

fn check(file: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .arg("check-config")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const BASE: &str = r#"
mode = "paper"
[[feed_threads]]
name = "feed-0"
wait = "yield"
[[venues]]
venue = "binance"
symbols = ["BTCUSDT"]
streams = ["depth@0ms", "bookTicker", "trade"]
feed_thread = "feed-0"
[risk]
daily_loss_limit = 200
[fees]
taker_bps = 4
[strategy]
threshold = 0.3
"#;

#[test]
fn shipped_configs_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let (ok, text) = check(&p, &[]);
            assert!(ok, "{}: {text}", p.display());
            assert!(text.contains(": ok"), "{text}");
            n += 1;
        }
    }
    assert!(n >= 3, "the shipped configs were checked");
}

#[test]
fn mistakes_name_their_key_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = write("good.toml", BASE);
    let (ok, text) = check(&good, &["--strategy", "obi-taker"]);
    assert!(ok, "{text}");
    assert!(text.contains("strategy obi-taker"), "{text}");
    assert!(text.contains("taker 4 bps"), "{text}");

    for (name, text, extra, want) in [
        (
            "typo.toml",
            BASE.replace("daily_loss_limit", "daly_loss_limit"),
            vec![],
            "daly_loss_limit",
        ),
        (
            "range.toml",
            BASE.replace("daily_loss_limit = 200", "max_leverage = 500"),
            vec![],
            "max_leverage",
        ),
        (
            "venue.toml",
            BASE.replace("venue = \"binance\"", "venue = \"kraken\""),
            vec![],
            "kraken",
        ),
        (
            "mode.toml",
            BASE.replace("mode = \"paper\"", "mode = \"yolo\""),
            vec![],
            "mode",
        ),
        (
            "fees.toml",
            BASE.replace("taker_bps = 4", "taker_bp = 4"),
            vec![],
            "fees.taker_bp",
        ),
        (
            "param.toml",
            BASE.replace("threshold = 0.3", "treshold = 0.3"),
            vec!["--strategy", "obi-taker"],
            "treshold",
        ),
        (
            "alerts.toml",
            format!("{BASE}\n[alerts]\nmax_per_minute = 6\n[alerts.webhook]\nurl = \"ftp://x\"\n"),
            vec![],
            "[alerts.webhook]: the URL must start with https://",
        ),
        (
            "alerts_key.toml",
            format!("{BASE}\n[alerts]\nmax_per_minut = 6\n"),
            vec![],
            "[alerts] max_per_minut: unknown key",
        ),
        (
            "syntax.toml",
            BASE.replace("[risk]", "[risk"),
            vec![],
            "line",
        ),
    ] {
        let p = write(name, &text);
        let extra: Vec<&str> = extra;
        let (ok, out) = check(&p, &extra);
        assert!(!ok, "{name} passed: {out}");
        assert!(out.contains(want), "{name}: {out}");
        assert!(out.contains("invalid"), "{name}: {out}");
    }
    // --set is checked like the file.
    let (ok, out) = check(&good, &["--set", "risk.max_open_orders=-1"]);
    assert!(!ok && out.contains("max_open_orders"), "{out}");
    let (ok, out) = check(&dir.path().join("missing.toml"), &[]);
    assert!(!ok && out.contains("no such file"), "{out}");
}
