//! systemd's notify protocol as `Type=notify` + `WatchdogSec=` see it: the demo, run with
//! `NOTIFY_SOCKET` and `WATCHDOG_USEC` pointing at a socket of this test, says `READY=1` once it runs,
//! pings `WATCHDOG=1` while its strategy thread beats, and `STOPPING=1` on the way out.

#[cfg(unix)]
#[test]
fn the_demo_speaks_sd_notify() {
    use std::os::unix::net::UnixDatagram;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "demo",
            "--mode",
            "paper",
            "--duration",
            "3s",
            "--speed",
            "1",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000") // pings every 200 ms
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => {
                if child.try_wait().unwrap().is_some() {
                    while let Ok(n) = sock.recv(&mut buf) {
                        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    }
                    break;
                }
            }
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(got[0].starts_with("READY=1"), "{got:?}");
    let pings = got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
    assert!(
        pings >= 5,
        "{pings} watchdog pings over 3 s at 200 ms: {got:?}"
    );
    assert!(got.last().unwrap().starts_with("STOPPING=1"), "{got:?}");
    // Nothing after STOPPING, and no ping before READY.
    assert_eq!(got.iter().filter(|m| m.starts_with("READY=1")).count(), 1);
}
