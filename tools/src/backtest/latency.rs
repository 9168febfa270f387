//! Latency models of a tick backtest: how long a market event takes to reach the strategy (feed
//! latency) and an order to reach the venue and its answer to come back (order latency).
//!
//! - `constant`: `250us`, `1.5ms`, `0` — every message takes that long;
//! - `empirical`: `samples:FILE` — a text file of measured latencies in nanoseconds, one per line
//!   (e.g. live order round trips halved, or the demo's tick-to-wire samples); each message draws one
//!   uniformly with a seeded generator, so a run is reproducible for a given `--seed`.
//!
//! The generator is SplitMix64 (a few lines, no dependency, identical on every platform).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// A latency model.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    Constant(u64),
    /// Sorted samples, ns.
    Empirical(Vec<u64>),
}

impl Latency {
    /// Parses `250us` / `1.5ms` / `2s` / `0` / `samples:FILE`.
    pub fn parse(s: &str) -> Result<Latency> {
        let t = s.trim();
        if let Some(path) = t.strip_prefix("samples:") {
            return Self::from_file(Path::new(path));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num
            .parse()
            .with_context(|| format!("latency {s:?}: use e.g. 0, 250us, 1.5ms or samples:FILE"))?;
        let scale = match unit {
            "" if v == 0.0 => 1.0,
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            _ => bail!("latency {s:?}: unit must be ns, us, ms or s"),
        };
        let ns = v * scale;
        if !ns.is_finite() || !(0.0..=60e9).contains(&ns) {
            bail!("latency {s:?}: must be between 0 and 60 s");
        }
        Ok(Latency::Constant(ns.round() as u64))
    }

    /// Reads samples (ns, one per line; blank lines and `#` comments skipped).
    pub fn from_file(path: &Path) -> Result<Latency> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read latency samples {}", path.display()))?;
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let ns: u64 = l.parse().with_context(|| {
                format!(
                    "{}:{}: {l:?} is not a latency in whole nanoseconds",
                    path.display(),
                    i + 1
                )
            })?;
            v.push(ns);
        }
        if v.is_empty() {
            bail!("{}: no latency samples", path.display());
        }
        v.sort_unstable();
        Ok(Latency::Empirical(v))
    }

    /// One draw.
    pub fn sample(&self, rng: &mut SplitMix64) -> u64 {
        match self {
            Latency::Constant(ns) => *ns,
            Latency::Empirical(v) => v[(rng.next_u64() % v.len() as u64) as usize],
        }
    }

    /// For reports: `constant 250000 ns` / `empirical, 1000 samples, median 180000 ns`.
    pub fn describe(&self) -> String {
        match self {
            Latency::Constant(ns) => format!("constant {ns} ns"),
            Latency::Empirical(v) => format!(
                "empirical, {} samples, median {} ns",
                v.len(),
                v[v.len() / 2]
            ),
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed, seedable generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_constants() {
        assert_eq!(Latency::parse("0").unwrap(), Latency::Constant(0));
        assert_eq!(Latency::parse("250us").unwrap(), Latency::Constant(250_000));
        assert_eq!(
            Latency::parse("1.5ms").unwrap(),
            Latency::Constant(1_500_000)
        );
        assert_eq!(
            Latency::parse("2s").unwrap(),
            Latency::Constant(2_000_000_000)
        );
        for bad in ["", "5", "-1ms", "1h", "ms", "99s"] {
            assert!(Latency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empirical_draws_are_seeded_and_from_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lat.txt");
        std::fs::write(&p, "# order acks\n300\n100\n\n200\n").unwrap();
        let l = Latency::parse(&format!("samples:{}", p.display())).unwrap();
        assert_eq!(l, Latency::Empirical(vec![100, 200, 300]));
        let draw = |seed| {
            let mut r = SplitMix64::new(seed);
            (0..64).map(|_| l.sample(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let d = draw(7);
        for v in [100, 200, 300] {
            assert!(d.contains(&v), "{v} never drawn in 64");
        }
        std::fs::write(&p, "100\nfast\n").unwrap();
        let e = Latency::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("lat.txt:2"), "{e}");
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 (the published reference sequence).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
