//! A one-line progress bar on stderr: `replay [########          ]  42%  1260/3000  0.8s`,
//! redrawn in place with a carriage return at most five times a second.
//!
//! It draws only where someone watches — stderr is a terminal — unless forced: a log file or a CI
//! run gets no bar. [`Progress::set`] is cheap enough to call once per bar: it looks at the clock
//! only every thousandth of the total.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws at most this often (about 5 a second).
const MIN_REDRAW: Duration = Duration::from_millis(200);
const BAR_WIDTH: usize = 30;

/// A progress line; `finish` ends it with a newline (dropping it unfinished does too).
pub struct Progress {
    total: u64,
    label: String,
    done: u64,
    /// `None`: not drawn (stderr is not a terminal).
    out: Option<Box<dyn Write + Send>>,
    started: Instant,
    last_draw: Option<Instant>,
    /// `set` consults the clock only from this count on.
    next_check: u64,
    step: u64,
    finished: bool,
}

impl Progress {
    /// Draws on stderr if it is a terminal, else stays silent.
    pub fn new(total: u64, label: &str) -> Self {
        let err = std::io::stderr();
        let out: Option<Box<dyn Write + Send>> = if err.is_terminal() {
            Some(Box::new(err))
        } else {
            None
        };
        Self::with_output(total, label, out)
    }

    /// Draws on stderr even when it is not a terminal.
    pub fn forced(total: u64, label: &str) -> Self {
        Self::with_output(total, label, Some(Box::new(std::io::stderr())))
    }

    /// Draws into `w` (tests, or a caller that owns the terminal).
    pub fn to_writer(total: u64, label: &str, w: impl Write + Send + 'static) -> Self {
        Self::with_output(total, label, Some(Box::new(w)))
    }

    fn with_output(total: u64, label: &str, out: Option<Box<dyn Write + Send>>) -> Self {
        Self {
            total,
            label: label.to_string(),
            done: 0,
            out,
            started: Instant::now(),
            last_draw: None,
            next_check: 0,
            step: (total / 1000).max(1),
            finished: false,
        }
    }

    /// Whether anything is drawn.
    pub fn is_drawn(&self) -> bool {
        self.out.is_some()
    }

    /// `done` of `total` are through; redraws if the last draw is old enough.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        if self.out.is_none() || done < self.next_check {
            return;
        }
        self.next_check = done.saturating_add(self.step);
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < MIN_REDRAW)
        {
            return;
        }
        self.last_draw = Some(now);
        self.draw("");
    }

    /// Draws the final line (at the last `set` count) and ends it with a newline.
    pub fn finish(mut self) {
        self.draw("\n");
        self.finished = true;
    }

    fn draw(&mut self, end: &str) {
        let text = line(&self.label, self.done, self.total, self.started.elapsed());
        if let Some(w) = self.out.as_mut() {
            // A progress line that cannot be written is not worth failing a backtest for.
            let _ = write!(w, "\r{text}{end}");
            let _ = w.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.finished && self.last_draw.is_some() {
            if let Some(w) = self.out.as_mut() {
                let _ = writeln!(w);
            }
        }
    }
}

/// The text of the line: label, bar, percentage, count, elapsed time.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let filled = (frac * BAR_WIDTH as f64).round() as usize;
    format!(
        "{label} [{}{}] {:>3.0}%  {done}/{total}  {:.1}s",
        "#".repeat(filled),
        " ".repeat(BAR_WIDTH - filled),
        frac * 100.0,
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn the_line() {
        let l = line("replay", 15, 30, Duration::from_millis(1500));
        assert_eq!(
            l,
            format!(
                "replay [{}{}]  50%  15/30  1.5s",
                "#".repeat(15),
                " ".repeat(15)
            )
        );
        assert!(line("x", 5, 0, Duration::ZERO).contains("100%"));
        assert!(line("x", 50, 10, Duration::ZERO).contains("100%  50/10"));
    }

    #[test]
    fn redraws_are_rate_limited_and_finish_ends_the_line() {
        let out = Shared::default();
        let mut p = Progress::to_writer(1_000_000, "run", out.clone());
        assert!(p.is_drawn());
        for i in 0..=1_000_000 {
            p.set(i);
        }
        let drawn = out.text().matches('\r').count();
        // A million calls in well under a second: the first draws, the rest mostly wait.
        assert!((1..=20).contains(&drawn), "{drawn} redraws");
        p.finish();
        let text = out.text();
        let last = text.rsplit('\r').next().unwrap_or("");
        assert!(
            last.contains("100%  1000000/1000000") && last.ends_with("s\n"),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn dropped_unfinished_ends_the_line() {
        let out = Shared::default();
        let mut p = Progress::to_writer(10, "x", out.clone());
        p.set(3);
        drop(p);
        assert!(out.text().ends_with('\n'));
    }
}
