//! The master key and what it protects: secrets at rest are sealed with XChaCha20-Poly1305 under a 256-bit
//! master key; credentials (organization, user and instance secrets) are kept only as SHA-256 hashes.
//!
//! A master key is written as 64 hex digits (what [`MasterKey::load_or_create`] writes), as the base64 of 32
//! bytes, or — in a file only — as exactly 32 raw bytes.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use oc_model::ports::StoreError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::KeyError;

/// The environment variable holding a master key (hex or base64).
pub const MASTER_KEY_ENV: &str = "OCPOLL_MASTER_KEY";

/// A 256-bit key encrypting the secrets at rest. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    /// A key of these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        MasterKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Reads a key from text: 64 hex digits or the base64 (standard or URL-safe, padded or not) of 32 bytes,
    /// surrounding whitespace ignored. `what` names the source in the error.
    pub fn parse(text: &str, what: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
        };
        match bytes.map(<[u8; 32]>::try_from) {
            Some(Ok(key)) => Ok(MasterKey(key)),
            _ => Err(KeyError::Format { what: what.to_string() }),
        }
    }

    /// Reads a key file (`--master-key-file`): exactly 32 raw bytes, or text as [`MasterKey::parse`] reads it.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = fs::read(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        warn_if_shared(path);
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(MasterKey(raw));
        }
        let what = format!("the master key file {}", path.display());
        let text = String::from_utf8(bytes).map_err(|_| KeyError::Format { what: what.clone() })?;
        MasterKey::parse(&text, &what)
    }

    /// The key in [`MASTER_KEY_ENV`], when that variable is set and not empty.
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => MasterKey::parse(&v, MASTER_KEY_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads the key file at `path`, or creates it (mode 0600, 64 hex digits) with a new random key when it
    /// does not exist. The flag is true when the file was created, so the caller can say so.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return MasterKey::from_file(path).map(|k| (k, false));
        }
        let key = MasterKey::generate();
        let create = |source| KeyError::Create { path: path.to_path_buf(), source };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(format!("{}\n", key.to_hex()).as_bytes()).map_err(create)?;
                file.sync_all().map_err(create)?;
                Ok((key, true))
            }
            // another process created it between our check and our create: use theirs
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::from_file(path).map(|k| (k, false)),
            Err(e) => Err(create(e)),
        }
    }

    /// The key as 64 lowercase hex digits (the key file format). Handle with care.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a master key came from (see [`MasterKey::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `--master-key-file` given.
    File(PathBuf),
    /// The `OCPOLL_MASTER_KEY` environment variable.
    Env,
    /// The key file beside the SQLite database, which existed.
    BesideDatabase(PathBuf),
    /// The key file beside the SQLite database, created just now (mode 0600): tell the operator.
    Created(PathBuf),
}

impl MasterKey {
    /// The master key of a deployment: the key file when given, else the value of `OCPOLL_MASTER_KEY` (pass
    /// `std::env::var(MASTER_KEY_ENV).ok()`), else — for a SQLite database only — the key file beside the
    /// database, created when missing. PostgreSQL requires a key: several nodes must share it.
    pub fn resolve(
        database_url: &str,
        key_file: Option<&Path>,
        env_value: Option<&str>,
    ) -> Result<(MasterKey, KeySource), KeyError> {
        if let Some(path) = key_file {
            return MasterKey::from_file(path).map(|k| (k, KeySource::File(path.to_path_buf())));
        }
        if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
            return MasterKey::parse(value, MASTER_KEY_ENV).map(|k| (k, KeySource::Env));
        }
        let Some(path) = sqlite_key_path(database_url) else {
            return Err(KeyError::Missing);
        };
        let (key, created) = MasterKey::load_or_create(&path)?;
        if created {
            tracing::info!(path = %path.display(), "created a new master key file for the secrets at rest; back it up");
            Ok((key, KeySource::Created(path)))
        } else {
            Ok((key, KeySource::BesideDatabase(path)))
        }
    }
}

/// Where `serve` keeps the key of a SQLite database given without one: beside the database file
/// (`ocpoll.db` → `ocpoll.db.key`). `None` for other URLs and for in-memory databases.
pub fn sqlite_key_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let mut name = PathBuf::from(path).into_os_string();
    name.push(".key");
    Some(PathBuf::from(name))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the master key file is readable by group or others; make it 0600");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Format version of a sealed value: `[VERSION] ++ nonce (24 bytes) ++ ciphertext+tag`.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens secrets under the master key. The associated data binds each value to its place (which
/// instance, which field), so a value copied to another row does not open.
#[derive(Clone)]
pub(crate) struct Cipher(XChaCha20Poly1305);

impl Cipher {
    pub(crate) fn new(key: &MasterKey) -> Self {
        Cipher(XChaCha20Poly1305::new(&key.0.into()))
    }

    pub(crate) fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(&nonce, Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| StoreError::Crypto(format!("cannot encrypt {aad}")))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, aad: &str, blob: &[u8]) -> Result<Vec<u8>, StoreError> {
        let refuse = || {
            StoreError::Crypto(format!(
                "cannot decrypt {aad}: the master key does not match this database, or the value is corrupt"
            ))
        };
        if blob.len() < 1 + NONCE_LEN || blob[0] != VERSION {
            return Err(refuse());
        }
        let nonce = XNonce::from_slice(&blob[1..1 + NONCE_LEN]);
        self.0.decrypt(nonce, Payload { msg: &blob[1 + NONCE_LEN..], aad: aad.as_bytes() }).map_err(|_| refuse())
    }
}

/// The stored form of a high-entropy credential: its SHA-256.
pub(crate) fn credential_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Constant-time equality of two hashes.
pub(crate) fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<[u8; 32]>) {
        let got = MasterKey::parse(text, "test").ok().map(|k| k.0);
        assert_eq!(got, expected, "{text:?}");
    }

    #[test]
    fn key_text_forms() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        check(&hex, Some(bytes));
        check(&format!("  {}\n", hex.to_uppercase()), Some(bytes));
        check(&b64, Some(bytes));
        check(b64.trim_end_matches('='), Some(bytes));
        check(&hex[..62], None);
        check(&format!("{hex}00"), None);
        check("", None);
        check("not a key", None);
        check(&base64::engine::general_purpose::STANDARD.encode([1u8; 31]), None);
        check(&"zz".repeat(32), None);
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (created, new) = MasterKey::load_or_create(&path).unwrap();
        assert!(new);
        let (again, new) = MasterKey::load_or_create(&path).unwrap();
        assert!(!new);
        assert_eq!(created, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let raw = dir.path().join("raw");
        fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(MasterKey::from_file(&raw).unwrap(), MasterKey([7u8; 32]));
        let bad = dir.path().join("bad");
        fs::write(&bad, "short\n").unwrap();
        let err = MasterKey::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("is not a 256-bit key"), "{err}");
        assert!(matches!(MasterKey::from_file(&dir.path().join("missing")), Err(KeyError::Read { .. })));
        assert_eq!(format!("{created:?}"), "MasterKey(********)");
    }

    #[test]
    fn key_resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("o.db").display());
        let beside = dir.path().join("o.db.key");
        let file = dir.path().join("given.key");
        fs::write(&file, format!("{}\n", "ab".repeat(32))).unwrap();
        let env = "cd".repeat(32);

        let (k, source) = MasterKey::resolve(&db, Some(&file), Some(&env)).unwrap();
        assert_eq!((k.0, source), ([0xab; 32], KeySource::File(file.clone())));
        let (k, source) = MasterKey::resolve("postgres://h/db", None, Some(&env)).unwrap();
        assert_eq!((k.0, source), ([0xcd; 32], KeySource::Env));
        assert!(matches!(MasterKey::resolve("postgres://h/db", None, None), Err(KeyError::Missing)));
        assert!(matches!(MasterKey::resolve("postgres://h/db", None, Some("  ")), Err(KeyError::Missing)));
        assert!(matches!(MasterKey::resolve(&db, None, Some("nope")), Err(KeyError::Format { .. })));
        let (created, source) = MasterKey::resolve(&db, None, None).unwrap();
        assert_eq!(source, KeySource::Created(beside.clone()));
        let (again, source) = MasterKey::resolve(&db, None, None).unwrap();
        assert_eq!((again, source), (created, KeySource::BesideDatabase(beside)));
    }

    #[test]
    fn key_path_beside_sqlite_database() {
        assert_eq!(sqlite_key_path("sqlite://ocpoll.db"), Some(PathBuf::from("ocpoll.db.key")));
        assert_eq!(sqlite_key_path("sqlite:///var/lib/x.db?mode=rwc"), Some(PathBuf::from("/var/lib/x.db.key")));
        assert_eq!(sqlite_key_path("sqlite::memory:"), None);
        assert_eq!(sqlite_key_path("postgres://h/db"), None);
    }

    #[test]
    fn sealing_binds_key_and_place() {
        let a = Cipher::new(&MasterKey([1; 32]));
        let b = Cipher::new(&MasterKey([2; 32]));
        let sealed = a.seal("tokens:1", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(a.open("tokens:1", &sealed).unwrap(), b"secret");
        assert!(a.open("tokens:2", &sealed).is_err());
        let err = b.open("tokens:1", &sealed).unwrap_err().to_string();
        assert!(err.contains("master key does not match"), "{err}");
        assert!(a.open("tokens:1", &sealed[..10]).is_err());
        assert_ne!(a.seal("x", b"same").unwrap(), a.seal("x", b"same").unwrap(), "fresh nonce every time");
    }

    #[test]
    fn hashes_compare() {
        assert!(same_hash(&credential_hash("a"), &credential_hash("a")));
        assert!(!same_hash(&credential_hash("a"), &credential_hash("b")));
    }
}
