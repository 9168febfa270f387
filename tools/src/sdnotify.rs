//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`): `READY=1` once the engine runs,
//! `WATCHDOG=1` while its threads show progress, `STOPPING=1` on the way out, `STATUS=…` for
//! `systemctl status`. A datagram to the Unix socket in `$NOTIFY_SOCKET` (an abstract socket when it
//! starts with `@`); without the variable every call does nothing. Never on the hot path: the main
//! thread calls it.

use std::time::Duration;

/// Sends `state` (e.g. `READY=1`) to systemd; `Ok(false)` when not run under systemd.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    send(&path.to_string_lossy(), state)?;
    Ok(true)
}

#[cfg(unix)]
fn send(path: &str, state: &str) -> std::io::Result<()> {
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        return Err(std::io::Error::other(format!(
            "abstract socket {name} needs Linux"
        )));
    }
    sock.send_to(state.as_bytes(), path)?;
    Ok(())
}

#[cfg(not(unix))]
fn send(_path: &str, _state: &str) -> std::io::Result<()> {
    Ok(())
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process per `$WATCHDOG_PID`):
/// pings are due at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The main thread's watchdog: pings systemd at half its `WatchdogSec` — but only while the engine's
/// heartbeat (a counter its busiest thread advances) keeps moving. A thread that stops beating for
/// `stall` stops the pings, so systemd kills and restarts the unit instead of letting it run blind.
pub struct Watchdog {
    interval: Option<Duration>,
    next: std::time::Instant,
    beat: u64,
    moved: std::time::Instant,
    stall: Duration,
}

impl Watchdog {
    /// From the environment systemd gives (`WATCHDOG_USEC`); `stall`: how long the heartbeat may stand
    /// still.
    pub fn new(stall: Duration) -> Self {
        let now = std::time::Instant::now();
        Self {
            interval: watchdog_interval(),
            next: now,
            beat: 0,
            moved: now,
            stall,
        }
    }

    /// Call from the main loop with the current heartbeat; `false` once it has stalled.
    pub fn tick(&mut self, beat: u64) -> bool {
        let now = std::time::Instant::now();
        if beat != self.beat {
            self.beat = beat;
            self.moved = now;
        }
        let alive = now.duration_since(self.moved) < self.stall;
        if let Some(iv) = self.interval {
            if alive && now >= self.next {
                let _ = notify("WATCHDOG=1");
                self.next = now + iv;
            }
        }
        alive
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
