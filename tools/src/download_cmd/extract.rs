//! A verified archive zip → its one CSV, with the header row made uniform.
//!
//! Binance added header rows to its files around 2022–2023, at different dates for daily and
//! monthly files and per data type (docs/DATA.md §1), so a downloaded series mixes both. Every CSV
//! written here starts with the kind's documented header: a file without one gets it, a file with
//! a header of the same column count gets the documented spelling. A file whose columns do not
//! match the documented layout is copied as it is (its own header, or none) and reported, rather
//! than given a header that would misname its columns. [`qalpha_strategy::bars::read_klines`]
//! skips a header row, so `qalpha dataset` and `qalpha backtest` read either form.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::layout::Kind;

/// What extraction did with the header row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Header {
    /// The file had the documented header (possibly spelled differently).
    Kept,
    /// The file had none; the documented one was added.
    Added,
    /// The columns differ from the documented layout: copied unchanged.
    UnknownLayout,
}

#[derive(Debug)]
pub struct Extracted {
    /// Data rows (header excluded).
    pub rows: u64,
    pub header: Header,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The zip cannot be read back: bad structure, bad deflate stream or CRC.
    #[error("corrupt zip: {0}")]
    Corrupt(String),
    /// Writing the CSV failed (disk full, permissions): not the archive's fault.
    #[error("{}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Extracts the single CSV of `zip` into `out` (created or truncated) with the header of `kind`.
pub fn extract(zip: &Path, out: &Path, kind: Kind) -> Result<Extracted, ExtractError> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| ExtractError::Corrupt(format!("{what}: {e}"));
    let f = File::open(zip).map_err(|e| corrupt("cannot open the download", &e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(f))
        .map_err(|e| corrupt("not a readable zip archive", &e))?;
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let m = archive
            .by_index(i)
            .map_err(|e| corrupt("unreadable member", &e))?;
        if !m.is_dir() {
            members.push((i, m.name().to_string()));
        }
    }
    let [(index, name)] = members.as_slice() else {
        return Err(ExtractError::Corrupt(format!(
            "{} files in the archive ({}); Binance's archive zips hold one CSV",
            members.len(),
            members
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let member = archive
        .by_index(*index)
        .map_err(|e| corrupt("unreadable member", &e))?;
    let write = |source| ExtractError::Write {
        path: out.to_path_buf(),
        source,
    };
    let file = File::create(out).map_err(write)?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    let mut r = BufReader::with_capacity(1 << 16, member);
    let unzip = |e: std::io::Error| corrupt(&format!("cannot unzip {name}"), &e);

    let mut first = Vec::new();
    r.read_until(b'\n', &mut first).map_err(unzip)?;
    let line = String::from_utf8_lossy(&first);
    let line = line.trim_end_matches(['\r', '\n']);
    let columns = kind.header().split(',').count();
    let fields = if line.is_empty() {
        0
    } else {
        line.split(',').count()
    };
    let is_header = fields > 0 && !is_number(line.split(',').next().unwrap_or(""));
    let header = match (is_header, fields == columns || fields == 0) {
        (true, true) => Header::Kept,
        (false, true) => Header::Added,
        (_, false) => Header::UnknownLayout,
    };
    if header != Header::UnknownLayout {
        writeln!(w, "{}", kind.header()).map_err(write)?;
    }
    let mut rows = 0u64;
    // The last data byte written, to end the file with a newline.
    let mut last = None;
    if is_header && header == Header::UnknownLayout {
        w.write_all(&first).map_err(write)?;
    } else if !is_header && !first.is_empty() {
        rows += 1;
        last = first.last().copied();
        w.write_all(&first).map_err(write)?;
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unzip(e)),
        };
        let chunk = &buf[..n];
        // Rows begin after each newline; a row started by a chunk's bytes is counted there.
        if last.is_none_or(|b| b == b'\n') {
            rows += 1;
        }
        rows += chunk[..n - 1].iter().filter(|&&b| b == b'\n').count() as u64;
        last = Some(chunk[n - 1]);
        w.write_all(chunk).map_err(write)?;
    }
    if last.is_some_and(|b| b != b'\n') {
        // Every row ends with a newline, so files can be concatenated safely.
        w.write_all(b"\n").map_err(write)?;
    }
    w.into_inner()
        .map_err(|e| write(e.into_error()))?
        .sync_all()
        .map_err(write)?;
    Ok(Extracted { rows, header })
}

fn is_number(field: &str) -> bool {
    field.trim().parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in files {
            w.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated),
            )
            .unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn run(kind: Kind, zip_bytes: &[u8]) -> (Result<Extracted, ExtractError>, String) {
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("a.zip");
        std::fs::write(&z, zip_bytes).unwrap();
        let out = dir.path().join("a.csv");
        let r = extract(&z, &out, kind);
        (r, std::fs::read_to_string(&out).unwrap_or_default())
    }

    const ROW: &str = "1784073600000,65014.60,65031.80,64996.80,65011.50,327.207,1784073659999,21273110.50730,5998,222.863,14489221.32700,0";

    #[test]
    fn header_added_kept_or_left_alone() {
        let h = Kind::Klines.header();
        // No header, no final newline.
        let (r, text) = run(
            Kind::Klines,
            &zip_of(&[("a.csv", format!("{ROW}\n{ROW}").as_bytes())]),
        );
        let r = r.unwrap();
        assert_eq!((r.rows, r.header), (2, Header::Added));
        assert_eq!(text, format!("{h}\n{ROW}\n{ROW}\n"));
        // A header of the same width, CRLF rows.
        let body = format!("OPEN_TIME,o,h,l,c,v,ct,qv,n,tb,tq,i\r\n{ROW}\r\n");
        let (r, text) = run(Kind::Klines, &zip_of(&[("a.csv", body.as_bytes())]));
        assert_eq!(r.unwrap().header, Header::Kept);
        assert_eq!(text, format!("{h}\n{ROW}\r\n"));
        // Six columns: not the archive layout, copied unchanged.
        let body = "1636934400000,1.1893,1.1954,1.1891,1.1941,9289043.5\n";
        let (r, text) = run(Kind::Klines, &zip_of(&[("a.csv", body.as_bytes())]));
        assert_eq!(r.unwrap().header, Header::UnknownLayout);
        assert_eq!(text, body);
        // One row without a newline.
        let (r, text) = run(
            Kind::FundingRate,
            &zip_of(&[("f.csv", b"1780272000001,8,0.00005703")]),
        );
        assert_eq!(r.unwrap().rows, 1);
        assert_eq!(
            text,
            format!(
                "{}\n1780272000001,8,0.00005703\n",
                Kind::FundingRate.header()
            )
        );
        // Empty member: the header alone.
        let (r, text) = run(Kind::AggTrades, &zip_of(&[("e.csv", b"")]));
        assert_eq!(r.unwrap().rows, 0);
        assert_eq!(text, format!("{}\n", Kind::AggTrades.header()));
    }

    #[test]
    fn corrupt_archives_are_errors() {
        let (r, _) = run(Kind::Klines, b"PK\x03\x04 this is not a zip");
        assert!(matches!(r, Err(ExtractError::Corrupt(_))), "{r:?}");
        let two = zip_of(&[("a.csv", ROW.as_bytes()), ("b.csv", ROW.as_bytes())]);
        let (r, _) = run(Kind::Klines, &two);
        assert!(format!("{}", r.unwrap_err()).contains("2 files"));
        // A flipped byte inside the deflate stream: a bad stream or a CRC mismatch.
        let body = format!("{ROW}\n").repeat(200);
        let mut z = zip_of(&[("a.csv", body.as_bytes())]);
        let at = 30 + "a.csv".len() + 40;
        z[at] ^= 0x55;
        let (r, _) = run(Kind::Klines, &z);
        assert!(matches!(r, Err(ExtractError::Corrupt(_))), "{r:?}");
    }
}
