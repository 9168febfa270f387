//! `qalpha keys add|list|remove`: the encrypted key store (`qalpha_venues::keystore`) from the
//! command line, and [`load_keys`], how every command that signs requests gets its keys: from the store
//! when one is named (`--keystore FILE` or `QALPHA_KEYSTORE`), else from the environment
//! (`QALPHA_<VENUE>_API_KEY` / `_API_SECRET`).
//!
//! The passphrase comes from `--passphrase-file FILE` (or `QALPHA_KEYSTORE_PASSPHRASE_FILE`), else
//! from a prompt on the terminal (without echo); with neither there is an error, never a default.
//! `add` reads the key and the secret from the terminal (without echo), or — when standard input is
//! not a terminal — as two lines of standard input, or with `--from-env` from the environment
//! variables above. Nothing secret is ever printed.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::Venue;
use qalpha_venues::endpoints::{keys_from_env, ApiKeys};
use qalpha_venues::keystore::{KdfParams, KeyStore, Passphrase, DEFAULT_KDF};
use zeroize::Zeroizing;

/// Where the store is and how to open it (shared by `qalpha keys` and the signing commands).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The encrypted key store (default: `QALPHA_KEYSTORE`; for `qalpha keys`, else
    /// ~/.config/qalpha/keys.qks).
    #[arg(long, global = true)]
    pub keystore: Option<PathBuf>,
    /// The store's passphrase, first line of this file (default: `QALPHA_KEYSTORE_PASSPHRASE_FILE`,
    /// else a prompt).
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// The entry's label (several keys per venue: main, sub-1, …).
    #[arg(long, default_value = "main", global = true)]
    pub key_label: String,
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl StoreArgs {
    /// The store named on the command line or in `QALPHA_KEYSTORE`, if any.
    pub fn named(&self) -> Option<PathBuf> {
        self.keystore
            .clone()
            .or_else(|| env_path("QALPHA_KEYSTORE"))
    }

    fn path_or_default(&self) -> Result<PathBuf> {
        if let Some(p) = self.named() {
            return Ok(p);
        }
        let home = std::env::var_os("HOME").context("no --keystore and no HOME to put one in")?;
        Ok(PathBuf::from(home).join(".config/qalpha/keys.qks"))
    }

    fn passphrase(&self, store: &Path, confirm: bool) -> Result<Passphrase> {
        if let Some(f) = self
            .passphrase_file
            .clone()
            .or_else(|| env_path("QALPHA_KEYSTORE_PASSPHRASE_FILE"))
        {
            return Ok(Passphrase::from_file(&f)?);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "the key store {} needs its passphrase: give --passphrase-file FILE (or \
                 QALPHA_KEYSTORE_PASSPHRASE_FILE); there is no terminal to ask on",
                store.display()
            );
        }
        let p = Zeroizing::new(rpassword::prompt_password(format!(
            "passphrase for {}: ",
            store.display()
        ))?);
        if p.is_empty() {
            bail!("an empty passphrase is not accepted");
        }
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("again: ")?);
            if *again != *p {
                bail!("the two passphrases differ");
            }
        }
        Ok(Passphrase::new(p.to_string()))
    }
}

/// A venue's keys: from the store when one is named, else from the environment.
pub fn load_keys(s: &StoreArgs, venue: Venue) -> Result<ApiKeys> {
    match s.named() {
        Some(path) => {
            let store = KeyStore::open(&path)?;
            let pass = s.passphrase(&path, false)?;
            Ok(store.unlock(&pass)?.get(venue, &s.key_label)?)
        }
        None => Ok(keys_from_env(venue)?),
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum KeysCmd {
    /// Store a venue's API key and secret (creates the store on first use).
    Add {
        #[arg(long)]
        venue: String,
        /// Take them from QALPHA_<VENUE>_API_KEY / _API_SECRET.
        #[arg(long)]
        from_env: bool,
    },
    /// The stored keys: venue, label, the API key's first characters, when added. No secret.
    List,
    /// Delete a venue's key (needs the passphrase).
    Remove {
        #[arg(long)]
        venue: String,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct KeysArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub cmd: KeysCmd,
}

fn venue_of(name: &str) -> Result<Venue> {
    Venue::from_name(name).with_context(|| format!("unknown venue {name:?}: use binance or bybit"))
}

/// Two lines (key, secret) from standard input, or prompts on the terminal.
fn read_keys(venue: Venue) -> Result<ApiKeys> {
    if std::io::stdin().is_terminal() {
        let key = Zeroizing::new(rpassword::prompt_password(format!(
            "{} API key: ",
            venue.name()
        ))?);
        let secret = Zeroizing::new(rpassword::prompt_password(format!(
            "{} API secret: ",
            venue.name()
        ))?);
        return Ok(ApiKeys {
            key: key.trim().to_string(),
            secret: secret.trim().to_string(),
        });
    }
    let mut lines = std::io::stdin().lock().lines();
    let mut next = |what: &str| -> Result<Zeroizing<String>> {
        Ok(Zeroizing::new(
            lines
                .next()
                .with_context(|| format!("standard input ended before the {what}"))??
                .trim()
                .to_string(),
        ))
    };
    let key = next("API key")?;
    let secret = next("API secret")?;
    Ok(ApiKeys {
        key: key.to_string(),
        secret: secret.to_string(),
    })
}

/// `qalpha keys`, with the store's Argon2 cost (tests pass a cheap one).
pub fn run_with(a: KeysArgs, kdf: KdfParams) -> Result<()> {
    let path = a.store.path_or_default()?;
    match a.cmd {
        KeysCmd::List => {
            if !path.exists() {
                println!(
                    "{}: no key store yet (qalpha keys add creates it)",
                    path.display()
                );
                return Ok(());
            }
            let s = KeyStore::open(&path)?;
            println!("{}:", path.display());
            for e in s.list() {
                println!(
                    "  {:<8} {:<12} key {:<8} added {}",
                    e.venue,
                    e.label,
                    e.key_hint,
                    crate::backtest::report_dir::utc(e.created_ms)
                );
            }
        }
        KeysCmd::Add { venue, from_env } => {
            let venue = venue_of(&venue)?;
            let keys = if from_env {
                keys_from_env(venue)?
            } else {
                read_keys(venue)?
            };
            let mut u = if path.exists() {
                let s = KeyStore::open(&path)?;
                let pass = a.store.passphrase(&path, false)?;
                s.unlock(&pass)?
            } else {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let pass = a.store.passphrase(&path, true)?;
                KeyStore::create(&path, &pass, kdf)?
            };
            u.add(venue, &a.store.key_label, &keys)?;
            println!(
                "{}: added {}/{} (key {}…)",
                path.display(),
                venue.name(),
                a.store.key_label,
                keys.key.chars().take(4).collect::<String>()
            );
        }
        KeysCmd::Remove { venue } => {
            let venue = venue_of(&venue)?;
            let s = KeyStore::open(&path)?;
            let pass = a.store.passphrase(&path, false)?;
            let mut u = s.unlock(&pass)?;
            u.remove(venue, &a.store.key_label)?;
            println!(
                "{}: removed {}/{}",
                path.display(),
                venue.name(),
                a.store.key_label
            );
        }
    }
    Ok(())
}

/// `qalpha keys`: Argon2id at its default cost, or `QALPHA_KEYSTORE_KDF=m_kib,t,p` (tests).
pub fn run(a: KeysArgs) -> Result<()> {
    let kdf = match std::env::var("QALPHA_KEYSTORE_KDF") {
        Ok(v) => {
            let n: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            match n.as_slice() {
                [m, t, p] => KdfParams {
                    m_kib: *m,
                    t: *t,
                    p: *p,
                },
                _ => bail!("QALPHA_KEYSTORE_KDF={v:?}: use m_kib,t,p"),
            }
        }
        Err(_) => DEFAULT_KDF,
    };
    run_with(a, kdf)
}
