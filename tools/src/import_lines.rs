//! `qalpha import lines`: `<local_ts> <json>` line captures → `.qcap`.
//!
//! The format of `../shared/data/binance-usdm/captures` (hftbacktest's collector): one frame per
//! line, a local receive timestamp, a space, the raw JSON. Files may be gzip (detected by magic
//! bytes, not by name). Timestamp units are detected per line from the number of digits (ns, µs,
//! ms or s, with an optional fractional part and trailing `:` as cryptofeed writes them). The REST
//! depth snapshot line (`{"lastUpdateId":…}`) becomes a REST-response record on its own connection.
//! Several files are concatenated in the order given, as one continuous connection.
//! With `--venue bybit` the lines are Bybit v5 public frames ([`crate::import_bybit`]): no REST
//! records, one connection to the public linear stream.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use qalpha_engine::capture::{CaptureWriter, Connection, RecordKind, Transport, WriterOptions};
use qalpha_engine::event::Venue;

/// Import settings.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub venue: Venue,
    /// Stop after this many frames (to cut a small sample); `None` for all.
    pub max_frames: Option<u64>,
    pub rotate_bytes: Option<u64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            venue: Venue::BinanceUsdm,
            max_frames: None,
            rotate_bytes: None,
        }
    }
}

/// What the import did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub lines: u64,
    pub ws_frames: u64,
    pub rest_responses: u64,
    /// Lines that are not `<ts> <json>` (headers, blanks), skipped.
    pub skipped: u64,
    /// Lines whose timestamp is earlier than the previous line's (kept, in file order).
    pub out_of_order: u64,
    pub timestamp_unit: String,
    pub streams: Vec<String>,
    pub symbol: Option<String>,
    pub files_written: Vec<PathBuf>,
}

fn open_lines(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    drop(f);
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// Splits a line into (timestamp ns, unit name, json). `None` if the line is not a frame line.
pub fn parse_line(line: &str) -> Option<(u64, &'static str, &str)> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (ts, json) = line.split_once(' ')?;
    let ts = ts.strip_suffix(':').unwrap_or(ts);
    let json = json.trim_start();
    if !json.starts_with('{') && !json.starts_with('[') {
        return None;
    }
    let (int, frac) = match ts.split_once('.') {
        Some((i, f)) => (i, f),
        None => (ts, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // Unit from the integer digits: epoch seconds have 10 digits until 2286.
    let (unit, scale_digits) = match int.len() {
        0..=11 => ("s", 9),
        12..=14 => ("ms", 6),
        15..=17 => ("us", 3),
        _ => ("ns", 0),
    };
    let whole: u64 = int.parse().ok()?;
    let mut ns = whole.checked_mul(10u64.pow(scale_digits))?;
    if !frac.is_empty() {
        let digits = &frac[..frac.len().min(scale_digits as usize)];
        if !digits.is_empty() {
            let f: u64 = digits.parse().ok()?;
            ns += f * 10u64.pow(scale_digits - digits.len() as u32);
        }
    }
    Some((ns, unit, json))
}

/// Turns `<ts> <json>` lines into timed frames while keeping the report's line counters: lines read,
/// non-frame lines skipped, timestamps going backwards, and the timestamp units seen.
#[derive(Default)]
pub(crate) struct TimedLines {
    last_ts: u64,
    units: Vec<&'static str>,
}

impl TimedLines {
    /// The frame on `line`, or `None` (counted as skipped unless blank).
    pub(crate) fn frame<'a>(
        &mut self,
        rep: &mut ImportReport,
        line: &'a str,
    ) -> Option<(u64, &'a str)> {
        rep.lines += 1;
        let Some((ts, unit, json)) = parse_line(line) else {
            if !line.trim().is_empty() {
                rep.skipped += 1;
            }
            return None;
        };
        if !self.units.contains(&unit) {
            self.units.push(unit);
        }
        if ts < self.last_ts {
            rep.out_of_order += 1;
        }
        self.last_ts = ts;
        Some((ts, json))
    }

    /// `ns`, `us,ns`, …: the units seen, in order of first appearance.
    pub(crate) fn units(&self) -> String {
        self.units.join(",")
    }
}

/// A REST depth snapshot body rather than a stream frame.
fn is_rest_snapshot(json: &str) -> bool {
    !json.contains("\"stream\"") && json.contains("\"lastUpdateId\"")
}

fn stream_name(json: &str) -> Option<&str> {
    let i = json.find("\"stream\"")?;
    let rest = json[i + 8..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    rest.split('"').next()
}

/// Imports `inputs` (in order) into `out`.
pub fn import(inputs: &[PathBuf], out: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    if inputs.is_empty() {
        bail!("no input files given");
    }
    if opts.venue == Venue::BybitLinear {
        // Bybit frames carry their book snapshots in-stream: no REST records, one fixed URL.
        return crate::import_bybit::import_timestamped_lines(inputs, out, opts);
    }
    // Pass 1: the streams (for the connection URL) and the symbol (for the REST snapshot's URL).
    let mut streams: Vec<String> = Vec::new();
    let mut saw_rest = false;
    for path in inputs {
        for line in open_lines(path)?.lines() {
            let line =
                line.with_context(|| format!("{}: read error (truncated gzip?)", path.display()))?;
            let Some((_, _, json)) = parse_line(&line) else {
                continue;
            };
            if let Some(s) = stream_name(json) {
                if !streams.iter().any(|x| x == s) {
                    streams.push(s.to_string());
                }
            } else if is_rest_snapshot(json) {
                saw_rest = true;
            }
        }
    }
    let mut symbols: Vec<String> = streams
        .iter()
        .filter_map(|s| s.split('@').next())
        .map(|s| s.to_ascii_uppercase())
        .collect();
    symbols.sort();
    symbols.dedup();
    let symbol = match (saw_rest, symbols.len()) {
        (true, 1) => Some(symbols[0].clone()),
        (true, 0) => bail!("the inputs hold a REST depth snapshot but no stream frame to tell its symbol"),
        (true, _) => bail!(
            "the inputs hold a REST depth snapshot and several symbols ({}): cannot tell which symbol it belongs to; import each symbol's files separately",
            symbols.join(", ")
        ),
        (false, 1) => Some(symbols[0].clone()),
        (false, _) => None,
    };
    let ws_url = format!(
        "wss://fstream.binance.com/stream?streams={}",
        streams.join("/")
    );
    let mut conns = vec![Connection {
        id: 0,
        venue: Some(opts.venue),
        transport: Transport::WebSocket,
        url: ws_url,
    }];
    if let (true, Some(sym)) = (saw_rest, &symbol) {
        conns.push(Connection {
            id: 1,
            venue: Some(opts.venue),
            transport: Transport::Rest,
            url: format!("https://fapi.binance.com/fapi/v1/depth?symbol={sym}&limit=1000"),
        });
    }

    // Pass 2: write the records.
    let wopts = WriterOptions {
        rotate_bytes: opts.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut w = CaptureWriter::create(out, conns, wopts)
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut rep = ImportReport {
        streams,
        symbol,
        ..Default::default()
    };
    let mut timed = TimedLines::default();
    'files: for path in inputs {
        for line in open_lines(path)?.lines() {
            let line = line.with_context(|| format!("{}: read error", path.display()))?;
            let Some((ts, json)) = timed.frame(&mut rep, &line) else {
                continue;
            };
            if is_rest_snapshot(json) {
                w.write(ts, 1, RecordKind::RestResponse, json.as_bytes())?;
                rep.rest_responses += 1;
            } else {
                w.write(ts, 0, RecordKind::WsText, json.as_bytes())?;
                rep.ws_frames += 1;
            }
            if opts
                .max_frames
                .is_some_and(|m| rep.ws_frames + rep.rest_responses >= m)
            {
                break 'files;
            }
        }
    }
    rep.timestamp_unit = timed.units();
    rep.files_written = w.finish()?;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_units() {
        let j = r#"{"stream":"btcusdt@trade","data":{}}"#;
        let (ns, u, _) = parse_line(&format!("1721347020984480942 {j}")).unwrap();
        assert_eq!((ns, u), (1_721_347_020_984_480_942, "ns"));
        let (ns, u, _) = parse_line(&format!("1680652700423575 {j}")).unwrap();
        assert_eq!((ns, u), (1_680_652_700_423_575_000, "us"));
        let (ns, u, _) = parse_line(&format!("1626992741.06217: {j}")).unwrap();
        assert_eq!((ns, u), (1_626_992_741_062_170_000, "s"));
        let (ns, _, _) = parse_line(&format!("1626992741081 {j}")).unwrap();
        assert_eq!(ns, 1_626_992_741_081_000_000);
        assert!(
            parse_line("wss://fstream.binance.com/stream?streams=x <-> 1626992740.179554")
                .is_none()
        );
        assert!(parse_line("").is_none());
        assert!(parse_line("12ab {}").is_none());
    }

    #[test]
    fn stream_and_snapshot_detection() {
        assert_eq!(
            stream_name(r#"{"stream":"btcusdt@depth@0ms","data":{}}"#),
            Some("btcusdt@depth@0ms")
        );
        assert!(is_rest_snapshot(
            r#"{"lastUpdateId": 2710246765483, "E": 1}"#
        ));
        assert!(!is_rest_snapshot(
            r#"{"stream":"x@depthSnapshot","data":{"lastUpdateId":1}}"#
        ));
    }
}
