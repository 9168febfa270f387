//! What one `qalpha download` run did: the counts printed at the end and written by `--json`.

use std::path::PathBuf;

use super::layout::Kind;

/// What one run did (printed, and written by `--json`).
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub base_url: String,
    pub out: PathBuf,
    pub kind: Option<Kind>,
    pub interval: Option<String>,
    pub symbols: Vec<String>,
    pub from: String,
    pub to: String,
    /// Downloaded, verified and unzipped by this run.
    pub downloaded: u64,
    /// Already there from an earlier run (`.ok` marker and CSV present): not requested.
    pub skipped: u64,
    /// Not in the archive (404), this run or remembered from an earlier one.
    pub missing: u64,
    /// Of `missing`: remembered from an earlier run, not asked again.
    pub missing_remembered: u64,
    /// Zips whose sha256 differed from their `.CHECKSUM` twice in a row: deleted.
    pub checksum_mismatch: u64,
    /// Zips that matched their checksum but could not be unzipped: deleted.
    pub corrupt: u64,
    /// Network, HTTP or disk errors.
    pub failed: u64,
    /// Files not tried because the archive could not be reached at all.
    pub not_attempted: u64,
    /// Months whose monthly zip was missing, fetched as daily zips.
    pub monthly_fallbacks: u64,
    /// Zip bytes transferred for the files downloaded.
    pub bytes: u64,
    /// CSV data rows written.
    pub rows: u64,
    /// Files that had no header row and were given the documented one.
    pub headers_added: u64,
    /// Files whose columns differ from the documented layout (copied unchanged).
    pub unknown_layout: Vec<String>,
    /// Missing files (archive names without `.zip`).
    pub missing_files: Vec<String>,
    /// Checksum mismatches, corrupt zips and failures, one line each.
    pub errors: Vec<String>,
}

impl Summary {
    pub fn error_count(&self) -> u64 {
        self.checksum_mismatch + self.corrupt + self.failed + self.not_attempted
    }
}

/// The summary for a person: one line of counts, then the missing files and each error.
pub fn print(s: &Summary) {
    println!(
        "download: {} downloaded ({}, {} rows), {} skipped (already there), {} missing (404), \
         {} checksum mismatch, {} corrupt, {} failed{} → {}",
        s.downloaded,
        super::progress::human_bytes(s.bytes),
        s.rows,
        s.skipped,
        s.missing,
        s.checksum_mismatch,
        s.corrupt,
        s.failed,
        if s.not_attempted > 0 {
            format!(", {} not attempted", s.not_attempted)
        } else {
            String::new()
        },
        s.out.display()
    );
    if !s.missing_files.is_empty() {
        const SHOWN: usize = 12;
        let mut list = s.missing_files[..s.missing_files.len().min(SHOWN)].join(", ");
        if s.missing_files.len() > SHOWN {
            list.push_str(&format!(", … {} more", s.missing_files.len() - SHOWN));
        }
        println!("  missing: {list}");
    }
    if !s.unknown_layout.is_empty() {
        println!(
            "  columns differ from docs/DATA.md (copied without a header change): {}",
            s.unknown_layout.join(", ")
        );
    }
    for e in &s.errors {
        println!("  {e}");
    }
}
