//! The encrypted key store: venue API keys at rest in one file, encrypted with a key derived from a
//! passphrase (Argon2id), each entry sealed with XChaCha20-Poly1305 (its venue and label are the
//! associated data, so an entry cannot be moved to another venue undetected). Secrets are decrypted
//! only in memory, into buffers that are zeroed when dropped, and never printed: `Debug` of every type
//! here redacts them, errors never carry them.
//!
//! File (JSON, `0600` on Unix):
//!
//! ```text
//! {"format": "qalpha-keystore", "version": 1,
//!  "kdf": {"alg": "argon2id", "m_kib": 65536, "t": 3, "p": 1, "salt": "<base64>"},
//!  "check": {"nonce": "<base64>", "ciphertext": "<base64>"},
//!  "entries": [{"venue": "binance", "label": "main", "key_hint": "vmPU…", "created_ms": 1764…,
//!               "nonce": "<base64>", "ciphertext": "<base64>"}]}
//! ```
//!
//! `check` seals a fixed text: a wrong passphrase is told apart from a damaged entry.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use qalpha_engine::Venue;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::endpoints::ApiKeys;

/// Argon2id cost (OWASP's first recommendation: 64 MiB, 3 passes, 1 lane).
pub const DEFAULT_KDF: KdfParams = KdfParams {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};

const FORMAT: &str = "qalpha-keystore";
const CHECK_TEXT: &[u8] = b"qalpha-keystore-check-v1";

/// Argon2id parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// Why the store could not be used. Never carries a secret or the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store {path}: {why}")]
    Io { path: String, why: String },
    #[error("key store {path}: not a qalpha key store ({why})")]
    Format { path: String, why: String },
    #[error("key store {path}: wrong passphrase")]
    WrongPassphrase { path: String },
    #[error("key store {path}: the entry {venue}/{label} is damaged or was altered (authentication failed)")]
    Damaged {
        path: String,
        venue: String,
        label: String,
    },
    #[error("key store {path}: no key for {venue}/{label} (stored: {stored})")]
    Missing {
        path: String,
        venue: String,
        label: String,
        stored: String,
    },
    #[error("key store {path}: {venue}/{label} exists already (remove it first)")]
    Exists {
        path: String,
        venue: String,
        label: String,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Kdf {
    alg: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

/// One stored key, as `list` shows it (no secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryInfo {
    pub venue: String,
    pub label: String,
    /// The API key's first four characters, to tell keys apart.
    pub key_hint: String,
    pub created_ms: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    info: EntryInfo,
    #[serde(flatten)]
    sealed: Sealed,
}

#[derive(Clone, Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    kdf: Kdf,
    check: Sealed,
    entries: Vec<Entry>,
}

/// The plaintext of an entry (zeroed on drop).
#[derive(Serialize, Deserialize)]
struct Secret {
    key: String,
    secret: String,
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.key.zeroize();
        self.secret.zeroize();
    }
}

/// A passphrase held in memory (zeroed on drop, never printed).
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The first line of `path` (trailing newline removed).
    pub fn from_file(path: &Path) -> Result<Self, KeyStoreError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            KeyStoreError::Invalid(format!("passphrase file {}: {e}", path.display()))
        })?);
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(KeyStoreError::Invalid(format!(
                "passphrase file {} is empty",
                path.display()
            )));
        }
        Ok(Self::new(line.to_string()))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A key store file, opened (its entries' names readable, nothing decrypted).
pub struct KeyStore {
    path: PathBuf,
    file: File,
}

/// A key store unlocked with its passphrase: the derived key in memory (zeroed on drop).
pub struct Unlocked {
    store: KeyStore,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unlocked")
            .field("path", &self.store.path)
            .field("entries", &self.store.list())
            .field("key", &"<redacted>")
            .finish()
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyStoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyStoreError::Invalid(format!("no randomness: {e}")))?;
    Ok(b)
}

fn derive(
    pass: &Passphrase,
    salt: &[u8],
    k: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let params = argon2::Params::new(k.m_kib, k.t, k.p, Some(32))
        .map_err(|e| KeyStoreError::Invalid(format!("argon2 parameters: {e}")))?;
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    a2.hash_password_into(pass.0.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeyStoreError::Invalid(format!("argon2: {e}")))?;
    Ok(key)
}

fn seal(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Result<Sealed, KeyStoreError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = random::<24>()?;
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| KeyStoreError::Invalid("encryption failed".into()))?;
    Ok(Sealed {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}

/// Opens a sealed box; `None` when authentication fails (wrong key, or altered bytes).
fn open(key: &[u8; 32], aad: &[u8], s: &Sealed) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = B64.decode(&s.nonce).ok().filter(|n| n.len() == 24)?;
    let ct = B64.decode(&s.ciphertext).ok()?;
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn aad(venue: &str, label: &str) -> Vec<u8> {
    format!("{FORMAT}/1/{venue}/{label}").into_bytes()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl KeyStore {
    /// Creates an empty store at `path` (which must not exist) with `pass`.
    pub fn create(
        path: &Path,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<Unlocked, KeyStoreError> {
        if path.exists() {
            return Err(KeyStoreError::Invalid(format!(
                "key store {} exists already",
                path.display()
            )));
        }
        let salt = random::<16>()?;
        let key = derive(pass, &salt, kdf)?;
        let check = seal(&key, FORMAT.as_bytes(), CHECK_TEXT)?;
        let store = KeyStore {
            path: path.to_path_buf(),
            file: File {
                format: FORMAT.into(),
                version: 1,
                kdf: Kdf {
                    alg: "argon2id".into(),
                    params: kdf,
                    salt: B64.encode(salt),
                },
                check,
                entries: Vec::new(),
            },
        };
        let u = Unlocked { store, key };
        u.store.save()?;
        Ok(u)
    }

    /// Opens the store at `path` (nothing decrypted).
    pub fn open(path: &Path) -> Result<KeyStore, KeyStoreError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| KeyStoreError::Io {
            path: p.clone(),
            why: e.to_string(),
        })?;
        let file: File = serde_json::from_str(&text).map_err(|e| KeyStoreError::Format {
            path: p.clone(),
            why: e.to_string(),
        })?;
        if file.format != FORMAT || file.version != 1 || file.kdf.alg != "argon2id" {
            return Err(KeyStoreError::Format {
                path: p,
                why: format!(
                    "format {:?} version {} kdf {:?}",
                    file.format, file.version, file.kdf.alg
                ),
            });
        }
        Ok(KeyStore {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored keys' names (no secrets; no passphrase needed).
    pub fn list(&self) -> Vec<EntryInfo> {
        self.file.entries.iter().map(|e| e.info.clone()).collect()
    }

    /// Derives the key from `pass` and checks it against the store.
    pub fn unlock(self, pass: &Passphrase) -> Result<Unlocked, KeyStoreError> {
        let salt = B64
            .decode(&self.file.kdf.salt)
            .map_err(|e| KeyStoreError::Format {
                path: self.path.display().to_string(),
                why: format!("salt: {e}"),
            })?;
        let key = derive(pass, &salt, self.file.kdf.params)?;
        match open(&key, FORMAT.as_bytes(), &self.file.check) {
            Some(t) if t.as_slice() == CHECK_TEXT => Ok(Unlocked { store: self, key }),
            _ => Err(KeyStoreError::WrongPassphrase {
                path: self.path.display().to_string(),
            }),
        }
    }

    fn save(&self) -> Result<(), KeyStoreError> {
        let p = self.path.display().to_string();
        let io = |e: std::io::Error| KeyStoreError::Io {
            path: p.clone(),
            why: e.to_string(),
        };
        let text = serde_json::to_string_pretty(&self.file)
            .map_err(|e| KeyStoreError::Invalid(e.to_string()))?;
        // Write a sibling and rename: a crash leaves the old store or the new one, never half.
        let tmp = self.path.with_extension("tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.write_all(b"\n").map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

impl Unlocked {
    pub fn list(&self) -> Vec<EntryInfo> {
        self.store.list()
    }

    fn find(&self, venue: &str, label: &str) -> Option<usize> {
        self.store
            .file
            .entries
            .iter()
            .position(|e| e.info.venue == venue && e.info.label == label)
    }

    fn stored(&self) -> String {
        let names: Vec<String> = self
            .list()
            .iter()
            .map(|e| format!("{}/{}", e.venue, e.label))
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Adds `keys` for `venue` under `label` and saves the store.
    pub fn add(&mut self, venue: Venue, label: &str, keys: &ApiKeys) -> Result<(), KeyStoreError> {
        let v = venue.name();
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(KeyStoreError::Invalid(format!(
                "label {label:?}: use letters, digits, '-', '_' or '.'"
            )));
        }
        if keys.key.trim().is_empty() || keys.secret.trim().is_empty() {
            return Err(KeyStoreError::Invalid(
                "the API key and secret must not be empty".into(),
            ));
        }
        if self.find(v, label).is_some() {
            return Err(KeyStoreError::Exists {
                path: self.store.path.display().to_string(),
                venue: v.into(),
                label: label.into(),
            });
        }
        let plain = Zeroizing::new(
            serde_json::to_vec(&Secret {
                key: keys.key.clone(),
                secret: keys.secret.clone(),
            })
            .map_err(|e| KeyStoreError::Invalid(e.to_string()))?,
        );
        let sealed = seal(&self.key, &aad(v, label), &plain)?;
        self.store.file.entries.push(Entry {
            info: EntryInfo {
                venue: v.into(),
                label: label.into(),
                key_hint: keys.key.chars().take(4).collect::<String>() + "…",
                created_ms: now_ms(),
            },
            sealed,
        });
        self.store.save()
    }

    /// The keys of `venue`/`label`, decrypted into memory.
    pub fn get(&self, venue: Venue, label: &str) -> Result<ApiKeys, KeyStoreError> {
        let v = venue.name();
        let path = self.store.path.display().to_string();
        let Some(i) = self.find(v, label) else {
            return Err(KeyStoreError::Missing {
                path,
                venue: v.into(),
                label: label.into(),
                stored: self.stored(),
            });
        };
        let damaged = || KeyStoreError::Damaged {
            path: path.clone(),
            venue: v.into(),
            label: label.into(),
        };
        let plain = open(
            &self.key,
            &aad(v, label),
            &self.store.file.entries[i].sealed,
        )
        .ok_or_else(damaged)?;
        let s: Secret = serde_json::from_slice(&plain).map_err(|_| damaged())?;
        Ok(ApiKeys {
            key: s.key.clone(),
            secret: s.secret.clone(),
        })
    }

    /// Removes `venue`/`label` and saves the store.
    pub fn remove(&mut self, venue: Venue, label: &str) -> Result<(), KeyStoreError> {
        let v = venue.name();
        let Some(i) = self.find(v, label) else {
            return Err(KeyStoreError::Missing {
                path: self.store.path.display().to_string(),
                venue: v.into(),
                label: label.into(),
                stored: self.stored(),
            });
        };
        self.store.file.entries.remove(i);
        self.store.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap Argon2 for tests (the format records the cost, so any cost opens).
    const FAST: KdfParams = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn keys() -> ApiKeys {
        ApiKeys {
            key: "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A".into(),
            secret: SECRET.into(),
        }
    }

    #[test]
    fn round_trip_wrong_passphrase_tampering_and_no_secret_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.qks");
        let pass = Passphrase::new("correct horse battery staple".into());
        let mut u = KeyStore::create(&path, &pass, FAST).unwrap();
        u.add(Venue::BinanceUsdm, "main", &keys()).unwrap();
        assert!(matches!(
            u.add(Venue::BinanceUsdm, "main", &keys()),
            Err(KeyStoreError::Exists { .. })
        ));
        drop(u);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(SECRET) && !text.contains("vmPUZE6mv9"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Names are readable without the passphrase.
        let s = KeyStore::open(&path).unwrap();
        assert_eq!(s.list()[0].venue, "binance");
        assert_eq!(s.list()[0].key_hint, "vmPU…");
        // The right passphrase gets the keys back.
        let u = s.unlock(&pass).unwrap();
        assert_eq!(u.get(Venue::BinanceUsdm, "main").unwrap(), keys());
        let e = u.get(Venue::BybitLinear, "main").unwrap_err();
        assert!(e.to_string().contains("stored: binance/main"), "{e}");
        assert!(!format!("{u:?}").contains(SECRET));
        // A wrong one is told as such.
        let e = KeyStore::open(&path)
            .unwrap()
            .unlock(&Passphrase::new("Correct horse battery staple".into()))
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::WrongPassphrase { .. }), "{e}");
        // An entry moved to another venue fails authentication (its venue is associated data).
        let moved = text.replace("\"venue\": \"binance\"", "\"venue\": \"bybit\"");
        std::fs::write(&path, moved).unwrap();
        let u = KeyStore::open(&path).unwrap().unlock(&pass).unwrap();
        let e = u.get(Venue::BybitLinear, "main").unwrap_err();
        assert!(matches!(e, KeyStoreError::Damaged { .. }), "{e}");
        assert!(!e.to_string().contains(SECRET));
        // Garbage is a format error, not a panic.
        std::fs::write(&path, "{\"format\":1}").unwrap();
        assert!(matches!(
            KeyStore::open(&path),
            Err(KeyStoreError::Format { .. })
        ));
    }

    #[test]
    fn remove_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.qks");
        let pass = Passphrase::new("pw".into());
        let mut u = KeyStore::create(&path, &pass, FAST).unwrap();
        assert!(u.add(Venue::BybitLinear, "bad label", &keys()).is_err());
        u.add(Venue::BybitLinear, "sub-1", &keys()).unwrap();
        u.add(Venue::BinanceUsdm, "main", &keys()).unwrap();
        u.remove(Venue::BybitLinear, "sub-1").unwrap();
        assert!(u.remove(Venue::BybitLinear, "sub-1").is_err());
        let u = KeyStore::open(&path).unwrap().unlock(&pass).unwrap();
        assert_eq!(u.list().len(), 1);
        assert!(format!("{pass:?}").contains("redacted"));
    }
}
