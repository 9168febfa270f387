//! Where a file lives in Binance's public archive and where `qalpha download` puts it.
//!
//! Archive paths (USD-M futures):
//! `data/futures/um/{monthly|daily}/{kind}/{SYMBOL}/[{interval}/]{SYMBOL}-{interval|kind}-{period}.zip`,
//! `period` being `YYYY-MM` (monthly) or `YYYY-MM-DD` (daily), with `{zip}.CHECKSUM` beside it.
//!
//! Checked against docs/DATA.md §1: the path pattern ("File naming"), one CSV of the same base name
//! per zip, a sha256 `.CHECKSUM` per zip, `fundingRate` monthly only, the `3d`/`1w`/`1mo` intervals
//! monthly only, `markPriceKlines/<interval>` laid out like `klines`, and every header row. Not in
//! DATA.md, so taken from the brief and `sha256sum`'s convention: the `.CHECKSUM` text is
//! `<64 hex>  <zip name>` (a bare digest, or `*name`, is accepted too: [`super::fetch::parse_checksum`]).
//!
//! Local layout: `{out}/{kind}/{SYMBOL}/[{interval}/]{SYMBOL}-{interval|kind}-{period}.csv`: one
//! flat folder per symbol, kind (and interval), monthly and daily files side by side, each with a
//! `{stem}.ok` marker and the folder's `.missing` list beside them. Names sort in time order, a
//! month is either one monthly file or its daily files (never both), and `qalpha dataset` reads
//! the symbol from such a name, so `data/binance/klines/BTCUSDT/5m/*.csv` is a ready input.

use std::path::{Path, PathBuf};

/// What the archive holds for a symbol (USD-M futures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
pub enum Kind {
    /// `klines/<interval>`: the 12 kline columns.
    #[value(name = "klines")]
    #[serde(rename = "klines")]
    Klines,
    /// `aggTrades`: aggregated trades.
    #[value(name = "aggTrades")]
    #[serde(rename = "aggTrades")]
    AggTrades,
    /// `bookTicker`: every top-of-book change (USD-M files stop around 2024-03-30).
    #[value(name = "bookTicker")]
    #[serde(rename = "bookTicker")]
    BookTicker,
    /// `fundingRate`: monthly files only.
    #[value(name = "fundingRate")]
    #[serde(rename = "fundingRate")]
    FundingRate,
    /// `markPriceKlines/<interval>`: the kline columns, volumes 0.
    #[value(name = "markPriceKlines")]
    #[serde(rename = "markPriceKlines")]
    MarkPriceKlines,
}

const KLINE_HEADER: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore";

impl Kind {
    /// The archive's folder name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Klines => "klines",
            Kind::AggTrades => "aggTrades",
            Kind::BookTicker => "bookTicker",
            Kind::FundingRate => "fundingRate",
            Kind::MarkPriceKlines => "markPriceKlines",
        }
    }

    /// Whether the files are per interval (`klines/5m/…`).
    pub fn has_interval(self) -> bool {
        matches!(self, Kind::Klines | Kind::MarkPriceKlines)
    }

    /// Whether the archive has daily files too (fundingRate is monthly only).
    pub fn has_daily(self) -> bool {
        self != Kind::FundingRate
    }

    /// The header newer archive files start with (DATA.md §1, "Layouts"); every file written gets it.
    pub fn header(self) -> &'static str {
        match self {
            Kind::Klines | Kind::MarkPriceKlines => KLINE_HEADER,
            Kind::AggTrades => {
                "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
            }
            Kind::BookTicker => {
                "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
            }
            Kind::FundingRate => "calc_time,funding_interval_hours,last_funding_rate",
        }
    }
}

/// A calendar month (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1..=12
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let m = Month {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
        };
        (1..=12).contains(&m.month).then_some(m)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        }
    }

    pub fn days(self) -> u32 {
        match self.month {
            4 | 6 | 9 | 11 => 30,
            2 if self.year % 4 == 0 && (self.year % 100 != 0 || self.year % 400 == 0) => 29,
            2 => 28,
            _ => 31,
        }
    }

    /// The month holding day `days` since 1970-01-01, and that day of it (1-based).
    pub fn of_epoch_day(days: i64) -> (Month, u32) {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (
            Month {
                year: y as i32,
                month: m,
            },
            d,
        )
    }

    /// Days since 1970-01-01 of this month's day `day`.
    pub fn epoch_day(self, day: u32) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The span one archive file covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Month(Month),
    Day(Month, u32),
}

impl Period {
    pub fn label(self) -> String {
        match self {
            Period::Month(m) => m.to_string(),
            Period::Day(m, d) => format!("{m}-{d:02}"),
        }
    }

    /// Days since 1970-01-01 of the period's last day.
    pub fn last_epoch_day(self) -> i64 {
        match self {
            Period::Month(m) => m.epoch_day(m.days()),
            Period::Day(m, d) => m.epoch_day(d),
        }
    }
}

/// One file of the archive: a symbol's data of one kind over one period.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArchiveFile {
    pub symbol: String,
    pub kind: Kind,
    /// `Some` exactly for the kinds with [`Kind::has_interval`].
    pub interval: Option<String>,
    pub period: Period,
}

impl ArchiveFile {
    /// `BTCUSDT-5m-2024-01`, `BTCUSDT-aggTrades-2024-01-05`: the zip's and the CSV's base name.
    pub fn stem(&self) -> String {
        let middle = self.interval.as_deref().unwrap_or(self.kind.name());
        format!("{}-{middle}-{}", self.symbol, self.period.label())
    }

    /// The zip's path below the base URL.
    pub fn archive_path(&self) -> String {
        let cadence = match self.period {
            Period::Month(_) => "monthly",
            Period::Day(..) => "daily",
        };
        let mut p = format!(
            "data/futures/um/{cadence}/{}/{}/",
            self.kind.name(),
            self.symbol
        );
        if let Some(iv) = &self.interval {
            p.push_str(iv);
            p.push('/');
        }
        p.push_str(&self.stem());
        p.push_str(".zip");
        p
    }

    /// The folder this file's CSV goes to (shared by every period of the symbol and kind).
    pub fn out_dir(&self, out: &Path) -> PathBuf {
        let mut d = out.join(self.kind.name()).join(&self.symbol);
        if let Some(iv) = &self.interval {
            d.push(iv);
        }
        d
    }

    pub fn csv_path(&self, out: &Path) -> PathBuf {
        self.out_dir(out).join(format!("{}.csv", self.stem()))
    }

    /// The marker that says the CSV is complete: the zip's sha256 and name, as in `.CHECKSUM`.
    pub fn ok_path(&self, out: &Path) -> PathBuf {
        self.out_dir(out).join(format!("{}.ok", self.stem()))
    }

    /// This file's day `day` (same symbol, kind and interval).
    pub fn day(&self, month: Month, day: u32) -> ArchiveFile {
        ArchiveFile {
            period: Period::Day(month, day),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: Kind, interval: Option<&str>, period: Period) -> ArchiveFile {
        ArchiveFile {
            symbol: "BTCUSDT".into(),
            kind,
            interval: interval.map(str::to_string),
            period,
        }
    }

    #[test]
    fn archive_paths_of_every_kind() {
        let jan = Month::parse("2024-01").unwrap();
        let cases = [
            (
                file(Kind::Klines, Some("5m"), Period::Month(jan)),
                "data/futures/um/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01.zip",
            ),
            (
                file(Kind::Klines, Some("1m"), Period::Day(jan, 5)),
                "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
            ),
            (
                file(Kind::MarkPriceKlines, Some("1h"), Period::Month(jan)),
                "data/futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
            ),
            (
                file(Kind::AggTrades, None, Period::Day(jan, 31)),
                "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-31.zip",
            ),
            (
                file(Kind::BookTicker, None, Period::Month(jan)),
                "data/futures/um/monthly/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-01.zip",
            ),
            (
                file(Kind::FundingRate, None, Period::Month(jan)),
                "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(f.archive_path(), want);
        }
        let f = file(Kind::Klines, Some("5m"), Period::Day(jan, 2));
        assert_eq!(
            f.csv_path(Path::new("d")),
            Path::new("d/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-02.csv")
        );
    }

    #[test]
    fn months_and_calendar_days() {
        assert_eq!(Month::parse("2019-1"), None);
        assert_eq!(Month::parse("2019-13"), None);
        let feb = Month::parse("2024-02").unwrap();
        assert_eq!(
            (feb.days(), Month::parse("2023-02").unwrap().days()),
            (29, 28)
        );
        assert_eq!(
            Month::parse("2024-12").unwrap().next().to_string(),
            "2025-01"
        );
        // 2021-11-15 00:00 UTC = 1636934400 s.
        let d = 1_636_934_400 / 86_400;
        assert_eq!(
            Month::of_epoch_day(d),
            (Month::parse("2021-11").unwrap(), 15)
        );
        for day in [-1000, 0, 59, 60, 18_000, 20_000, 30_000] {
            let (m, dd) = Month::of_epoch_day(day);
            assert_eq!(m.epoch_day(dd), day);
        }
        assert_eq!(Period::Day(feb, 3).label(), "2024-02-03");
    }
}
