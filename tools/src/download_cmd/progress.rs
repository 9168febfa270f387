//! The download's progress line on stderr: `download  12/40 files  35.2 MB  3.1 MB/s  4.2s`,
//! redrawn in place at most five times a second, and only when stderr is a terminal (a log file
//! or a CI run gets the summary alone).

use std::io::{IsTerminal, Stderr, Write};
use std::time::{Duration, Instant};

const MIN_REDRAW: Duration = Duration::from_millis(200);

pub struct Line {
    out: Option<Stderr>,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Line {
    pub fn new() -> Line {
        let err = std::io::stderr();
        Line {
            out: err.is_terminal().then_some(err),
            started: Instant::now(),
            last_draw: None,
        }
    }

    /// Redraws if the last draw is old enough.
    pub fn draw(&mut self, done: u64, total: u64, bytes: u64) {
        let now = Instant::now();
        if self.out.is_none()
            || self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < MIN_REDRAW)
        {
            return;
        }
        self.last_draw = Some(now);
        self.write(done, total, bytes, "");
    }

    /// The final state, ended with a newline (only if a line was drawn).
    pub fn finish(&mut self, done: u64, total: u64, bytes: u64) {
        if self.last_draw.is_some() {
            self.write(done, total, bytes, "\n");
        }
    }

    fn write(&mut self, done: u64, total: u64, bytes: u64, end: &str) {
        let text = text(done, total, bytes, self.started.elapsed());
        if let Some(w) = self.out.as_mut() {
            // A progress line that cannot be written is not worth failing a download for.
            let _ = write!(w, "\r{text}\x1b[K{end}");
            let _ = w.flush();
        }
    }
}

/// `download  12/40 files  35.2 MB  3.1 MB/s  4.2s`
pub fn text(done: u64, total: u64, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!(
        "download  {done}/{total} files  {}  {}/s  {secs:.1}s",
        human_bytes(bytes),
        human_bytes(rate as u64)
    )
}

/// `812 B`, `35.2 kB`, `1.3 MB`, `2.0 GB` (decimal units).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if b < 1000 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(35_200_000), "35.2 MB");
        assert_eq!(
            text(12, 40, 2_000_000, Duration::from_secs(2)),
            "download  12/40 files  2.0 MB  1.0 MB/s  2.0s"
        );
    }
}
