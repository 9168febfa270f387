//! `--data` files by symbol: which symbol a file holds (its name, as Binance's archive names files,
//! or `--symbol`), and Binance `fundingRate` files read as funding events.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::{Qty, Symbol};

/// The symbol a file's name names ([`crate::dataset_cmd::symbol_from_name`]):
/// `BTCUSDT-1m-2024-01.csv`, `binance-usdm-xrpusdt-5m.csv`, `ETHUSDT-aggTrades-2024-01-02.csv`.
pub fn symbol_in_name(path: &Path) -> Option<Symbol> {
    crate::dataset_cmd::symbol_from_name(path).and_then(|s| Symbol::parse(&s))
}

/// `--symbol BTCUSDT,ETHUSDT` → symbols (deduplicated, in the order given).
pub fn parse_symbols(list: &str) -> Result<Vec<Symbol>> {
    let mut out: Vec<Symbol> = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let sym = Symbol::parse(&s.to_ascii_uppercase())
            .with_context(|| format!("invalid symbol {s:?} in --symbol {list:?}"))?;
        if !out.contains(&sym) {
            out.push(sym);
        }
    }
    if out.is_empty() {
        bail!("--symbol {list:?} names no symbol");
    }
    Ok(out)
}

/// Groups `paths` by the symbol they hold, in symbol order.
///
/// With `--symbol` naming one symbol, every file is that symbol's (a file whose name names another
/// symbol is an error). Otherwise each file's name must name its symbol, and with `--symbol`
/// naming several, one of those; when no file names a symbol and no `--symbol` is given, all are
/// `default` (one symbol, as before there were several).
pub fn group_by_symbol(
    paths: &[PathBuf],
    forced: Option<&[Symbol]>,
    default: Symbol,
) -> Result<BTreeMap<Symbol, Vec<PathBuf>>> {
    let named: Vec<Option<Symbol>> = paths.iter().map(|p| symbol_in_name(p)).collect();
    let mut out: BTreeMap<Symbol, Vec<PathBuf>> = BTreeMap::new();
    for (p, name) in paths.iter().zip(&named) {
        let sym = match (forced, name) {
            (Some([one]), None) => *one,
            (Some([one]), Some(n)) if n == one => *one,
            (Some([one]), Some(n)) => bail!(
                "{} holds {n} (by its name), but --symbol is {one}",
                p.display()
            ),
            (Some(list), Some(n)) if list.contains(n) => *n,
            (Some(list), Some(n)) => bail!(
                "{} holds {n} (by its name), which --symbol {} does not list",
                p.display(),
                list.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            (None, Some(n)) => *n,
            (None, None) if named.iter().all(Option::is_none) => default,
            (_, None) => bail!(
                "cannot tell which symbol {} holds: name it as the archive does \
                 (BTCUSDT-1m-2024-01.csv) or give one --symbol",
                p.display()
            ),
        };
        out.entry(sym).or_default().push(p.clone());
    }
    Ok(out)
}

/// Whether `path` is a Binance `fundingRate` CSV (its header:
/// `calc_time,funding_interval_hours,last_funding_rate`).
pub fn is_funding_file(path: &Path) -> Result<bool> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = String::new();
    std::io::BufReader::new(f)
        .take(4096)
        .read_line(&mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(first
        .trim_start_matches('\u{feff}')
        .starts_with("calc_time,"))
}

/// A `fundingRate` CSV → `(calc_time ms, rate 10⁻⁸)` in time order. Bad rows are errors naming
/// the line.
pub fn read_funding(path: &Path) -> Result<Vec<(u64, Qty)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("calc_time") || line.starts_with('\u{feff}') {
            continue;
        }
        let bad = || {
            format!(
                "{}:{}: expected calc_time,funding_interval_hours,last_funding_rate, got {line:?}",
                path.display(),
                i + 1
            )
        };
        let f: Vec<&str> = line.split(',').collect();
        let [t, _, rate] = f.as_slice() else {
            bail!(bad());
        };
        let t: u64 = t.trim().parse().with_context(bad)?;
        let rate = Qty::parse(rate.trim()).map_err(|e| anyhow::anyhow!("{}: {e:?}", bad()))?;
        out.push((t, rate));
    }
    out.sort_by_key(|e| e.0);
    out.dedup_by_key(|e| e.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn symbols_from_archive_and_other_names() {
        for (name, want) in [
            ("BTCUSDT-1m-2024-01.csv", Some("BTCUSDT")),
            ("dir/ETHUSDT-aggTrades-2024-01-02.zip", Some("ETHUSDT")),
            ("binance-usdm-xrpusdt-5m.csv", Some("XRPUSDT")),
            ("BTCUSD_PERP-1m.csv", Some("BTCUSD")),
            ("klines.csv", None),
            ("usdt.csv", None),
            ("binance-usdm-5m.csv", None),
        ] {
            assert_eq!(symbol_in_name(Path::new(name)), want.map(sym), "{name}");
        }
    }

    #[test]
    fn grouping_rules() {
        let p = |s: &str| PathBuf::from(s);
        let btc = sym("BTCUSDT");
        let g = group_by_symbol(
            &[
                p("ETHUSDT-1m-a.csv"),
                p("BTCUSDT-1m-a.csv"),
                p("ETHUSDT-1m-b.csv"),
            ],
            None,
            btc,
        )
        .unwrap();
        assert_eq!(
            g.keys().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["BTCUSDT", "ETHUSDT"]
        );
        assert_eq!(g[&sym("ETHUSDT")].len(), 2);
        // Unnamed files: the default, or the one --symbol.
        let g = group_by_symbol(&[p("a.csv"), p("b.csv")], None, btc).unwrap();
        assert_eq!(g[&btc].len(), 2);
        let eth = [sym("ETHUSDT")];
        let g = group_by_symbol(&[p("a.csv")], Some(&eth), btc).unwrap();
        assert!(g.contains_key(&eth[0]));
        // Contradictions and ambiguity are errors.
        let e = group_by_symbol(&[p("BTCUSDT-1m.csv")], Some(&eth), btc).unwrap_err();
        assert!(e.to_string().contains("--symbol is ETHUSDT"), "{e}");
        let e = group_by_symbol(&[p("BTCUSDT-1m.csv"), p("x.csv")], None, btc).unwrap_err();
        assert!(
            e.to_string().contains("cannot tell which symbol x.csv"),
            "{e}"
        );
        let two = [btc, sym("ETHUSDT")];
        let e = group_by_symbol(&[p("XRPUSDT-1m.csv")], Some(&two), btc).unwrap_err();
        assert!(e.to_string().contains("does not list"), "{e}");
        assert_eq!(parse_symbols("btcusdt, ETHUSDT,BTCUSDT").unwrap(), two);
        assert!(parse_symbols(",").is_err());
    }

    #[test]
    fn funding_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("BTCUSDT-fundingRate-2024-01.csv");
        std::fs::write(
            &f,
            "calc_time,funding_interval_hours,last_funding_rate\n\
             1704096000001,8,0.00010000\n1704067200000,8,-0.00005703\n",
        )
        .unwrap();
        assert!(is_funding_file(&f).unwrap());
        let ev = read_funding(&f).unwrap();
        assert_eq!(
            ev,
            [(1704067200000, Qty(-5703)), (1704096000001, Qty(10_000))]
        );
        std::fs::write(
            &f,
            "calc_time,funding_interval_hours,last_funding_rate\n17,8\n",
        )
        .unwrap();
        let e = read_funding(&f).unwrap_err();
        assert!(format!("{e:#}").contains(":2:"), "{e:#}");
        let k = dir.path().join("k.csv");
        std::fs::write(&k, "1704067200000,1,2,0.5,1.5,10\n").unwrap();
        assert!(!is_funding_file(&k).unwrap());
    }
}
