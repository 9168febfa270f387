//! The encrypted key store as an operator uses it: `qalpha keys add|list|remove`, a wrong passphrase,
//! and an order signed with a stored key against the mock exchange on 127.0.0.1 — with everything the
//! engine wrote (stdout, stderr at trace level, the store file) scanned for the planted secret and the
//! passphrase.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use qalpha_engine::event::Venue;
use qalpha_venues::mock::{TEST_API_KEY, TEST_API_SECRET};

mod order_common;
use order_common::*;

const PASSPHRASE: &str = "pass-phrase-planted-9f3c";

/// `qalpha keys ARGS` with the store and passphrase file, a cheap Argon2 cost, `stdin` piped in.
fn keys(store: &Path, pass: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .arg("keys")
        .arg("--keystore")
        .arg(store)
        .arg("--passphrase-file")
        .arg(pass)
        .args(args)
        .env("QALPHA_KEYSTORE_KDF", "256,1,1")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything a run wrote must be free of the secret and the passphrase.
fn assert_clean(what: &str, written: &str) {
    for planted in [TEST_API_SECRET, PASSPHRASE] {
        assert!(
            !written.contains(planted),
            "{what} leaked {planted:?}:\n{written}"
        );
    }
}

#[test]
fn store_round_trip_wrong_passphrase_and_no_secret_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("keys.qks");
    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let mut written = String::new();

    // Add the mock's test account (key and secret as two lines on stdin).
    let o = keys(
        &store,
        &pass,
        &["add", "--venue", "binance"],
        &format!("{TEST_API_KEY}\n{TEST_API_SECRET}\n"),
    );
    written += &text(&o);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("added binance/main"), "{}", text(&o));
    // A second label, and a duplicate refused.
    let o = keys(
        &store,
        &pass,
        &["add", "--venue", "bybit", "--key-label", "sub-1"],
        "bybit-key-0001\nbybit-secret-0001\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = keys(
        &store,
        &pass,
        &["add", "--venue", "binance"],
        &format!("{TEST_API_KEY}\n{TEST_API_SECRET}\n"),
    );
    written += &text(&o);
    assert!(
        !o.status.success() && text(&o).contains("exists already"),
        "{}",
        text(&o)
    );

    // List needs no passphrase and shows no secret.
    let o = keys(&store, &wrong, &["list"], "");
    written += &text(&o);
    assert!(o.status.success(), "{}", text(&o));
    let listed = text(&o);
    assert!(listed.contains("binance") && listed.contains("bybit") && listed.contains("sub-1"));

    // A wrong passphrase is refused as such.
    let o = keys(
        &store,
        &wrong,
        &["remove", "--venue", "bybit", "--key-label", "sub-1"],
        "",
    );
    written += &text(&o);
    assert!(!o.status.success());
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    let o = keys(
        &store,
        &pass,
        &["remove", "--venue", "bybit", "--key-label", "sub-1"],
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&keys(&store, &pass, &["list"], "")).contains("sub-1"));

    // An order signed with the stored key, against the mock: accepted.
    let m = mock(Venue::BinanceUsdm, synthetic(), "", dir.path());
    let (bid, _) = touch(&m, Venue::BinanceUsdm);
    let away = ticks(bid, -100).to_string();
    let order = |pass_file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_qalpha"))
            .args([
                "order",
                "--symbol",
                "BTCUSDT",
                "--side",
                "buy",
                "--type",
                "limit",
                "--price",
                &away,
                "--qty",
                "0.001",
                "--tick",
                "0.1",
                "--step",
                "0.001",
                "--venue",
                "binance",
                "--rest-url",
            ])
            .arg(format!("https://{}", m.addr))
            .arg("--ca-file")
            .arg(m.ca_file.as_ref().unwrap())
            .arg("--keystore")
            .arg(&store)
            .arg("--passphrase-file")
            .arg(pass_file)
            .env_remove("QALPHA_BINANCE_API_KEY")
            .env_remove("QALPHA_BINANCE_API_SECRET")
            .env("RUST_LOG", "trace")
            .output()
            .unwrap()
    };
    let o = order(&pass);
    written += &text(&o);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"status\""));
    let o = order(&wrong);
    written += &text(&o);
    assert!(!o.status.success() && text(&o).contains("wrong passphrase"));

    // Nothing the engine wrote holds the secret or the passphrase — nor does the store itself.
    written += &std::fs::read_to_string(&store).unwrap();
    assert_clean("the engine's output and the store", &written);
}
