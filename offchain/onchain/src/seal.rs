//! Sealed state: what a TD persists on host disk (the proxy's ledger values, its write-ahead log, its
//! bindings file) is encrypted and authenticated under a [`StorageKey`] only the TEE holds.
//!
//! Each record is sealed with XChaCha20-Poly1305 (ChaCha20-Poly1305 with a 192-bit nonce, random per
//! write, so a record rewritten in place never reuses a nonce); its associated data binds the file
//! kind, the store id and the record's index (a table and key, or a position), so a flipped bit, a
//! record moved from another file or another place, or a reordered file fails authentication. A file
//! header carries an HMAC-SHA-256 over (kind, store id, generation). Rollback to an older authentic
//! copy is not detectable here: the on-chain marker catches it.
//!
//! The key comes from one place: `cocoon_daemon::keys::KeyMaterial::storage` (the key service's `S`
//! in a TD, HKDF of the signing key for a local key), handed to the store and the bindings file.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes a sealed record adds to its plaintext (nonce and tag).
pub const SEAL_OVERHEAD: usize = 24 + 16;
/// Bytes of a header MAC.
pub const MAC_BYTES: usize = 32;

/// The key sealed state is encrypted and authenticated with. Never written anywhere.
#[derive(Clone)]
pub struct StorageKey([u8; 32]);

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

fn mac_parts(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = mac_with(key);
    for p in parts {
        mac.update(&(p.len() as u64).to_le_bytes());
        mac.update(p);
    }
    mac
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac_parts(key, parts).finalize().into_bytes().into()
}

impl StorageKey {
    /// A key from raw bytes (the key service hands these out).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StorageKey(bytes)
    }

    /// HKDF-SHA-256 (RFC 5869, one output block) of `secret` for `purpose` (tests and tools; the
    /// daemons take theirs from `cocoon_daemon::keys::KeyMaterial::storage`, the key service's `S` or
    /// HKDF of a local signing key).
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let mut extract = mac_with(b"cocoon sealed state v1");
        extract.update(secret);
        let prk = extract.finalize().into_bytes();
        let mut expand = mac_with(&prk);
        expand.update(purpose.as_bytes());
        expand.update(&[1]);
        StorageKey(expand.finalize().into_bytes().into())
    }

    fn subkey(&self, label: &str) -> [u8; 32] {
        hmac(&self.0, &[label.as_bytes()])
    }
}

/// Which file a sealed record belongs to (part of every record's associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The proxy's redb ledger.
    Ledger,
    /// The ledger's write-ahead log.
    Wal,
    /// The bindings file (TLS key → wallet).
    Bindings,
}

impl FileKind {
    fn label(self) -> &'static [u8] {
        match self {
            FileKind::Ledger => b"ledger",
            FileKind::Wal => b"wal",
            FileKind::Bindings => b"bindings",
        }
    }
}

/// Why sealed state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A record failed authentication: edited, taken from another file or place, or reordered.
    #[error(
        "{file}: record {record} failed authentication (edited, foreign or moved); refusing it"
    )]
    Record {
        /// The file.
        file: String,
        /// Which record (table and key, or position).
        record: String,
    },
    /// The file header's MAC does not match: another key, another store, or an edited header.
    #[error("{file}: header failed authentication (another key, another store, or edited)")]
    Header {
        /// The file.
        file: String,
    },
}

/// Seals and opens the records of one file.
#[derive(Clone)]
pub struct Sealer {
    aead: XChaCha20Poly1305,
    mac_key: [u8; 32],
    kind: FileKind,
    store_id: [u8; 32],
    file: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("kind", &self.kind)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// The sealer of `file` (shown in errors), of this kind, in the store `store_id`.
    pub fn new(
        key: &StorageKey,
        kind: FileKind,
        store_id: [u8; 32],
        file: impl Into<String>,
    ) -> Self {
        let enc = key.subkey("record");
        Sealer {
            aead: XChaCha20Poly1305::new((&enc).into()),
            mac_key: key.subkey("header"),
            kind,
            store_id,
            file: file.into(),
        }
    }

    /// The store id records are bound to.
    pub fn store_id(&self) -> [u8; 32] {
        self.store_id
    }

    /// The file shown in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn aad(&self, index: &[u8]) -> Vec<u8> {
        let kind = self.kind.label();
        let mut aad = Vec::with_capacity(2 + kind.len() + 32 + index.len());
        aad.push(kind.len() as u8);
        aad.extend_from_slice(kind);
        aad.extend_from_slice(&self.store_id);
        aad.extend_from_slice(index);
        aad
    }

    /// `nonce || ciphertext || tag` of `plaintext` at `index`.
    pub fn seal(&self, index: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = self.aad(index);
        // Encryption fails only for plaintexts beyond 256 GiB.
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// The plaintext of a record sealed at `index`; `describe` names the record in the error.
    pub fn open(
        &self,
        index: &[u8],
        sealed: &[u8],
        describe: impl FnOnce() -> String,
    ) -> Result<Vec<u8>, SealError> {
        let refused = || SealError::Record {
            file: self.file.clone(),
            record: describe(),
        };
        if sealed.len() < SEAL_OVERHEAD {
            return Err(refused());
        }
        let (nonce, ct) = sealed.split_at(24);
        let aad = self.aad(index);
        self.aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| refused())
    }

    /// A keyed tag of one record's content (`parts`), for a digest over a whole file's records (the
    /// XOR of their tags, kept sealed): a file spliced from records of different copies does not
    /// match its digest, and without the key nobody can compute a tag.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; MAC_BYTES] {
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
        all.push(b"entry");
        all.push(&self.store_id);
        all.extend_from_slice(parts);
        hmac(&self.mac_key, &all)
    }

    /// The header MAC of this file at `generation`.
    pub fn header_mac(&self, generation: u64) -> [u8; MAC_BYTES] {
        hmac(
            &self.mac_key,
            &[self.kind.label(), &self.store_id, &generation.to_le_bytes()],
        )
    }

    /// Checks a header MAC (constant time).
    pub fn check_header(&self, generation: u64, mac: &[u8]) -> Result<(), SealError> {
        mac_parts(
            &self.mac_key,
            &[self.kind.label(), &self.store_id, &generation.to_le_bytes()],
        )
        .verify_slice(mac)
        .map_err(|_| SealError::Header {
            file: self.file.clone(),
        })
    }
}

/// A fresh random store id.
pub fn new_store_id() -> [u8; 32] {
    let a = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let b = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut id = [0u8; 32];
    id[..24].copy_from_slice(&a);
    id[24..].copy_from_slice(&b[..8]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_open_only_where_they_were_sealed() {
        let key = StorageKey::derive(b"secret", "storage");
        let s = Sealer::new(&key, FileKind::Ledger, [1; 32], "l");
        let sealed = s.seal(b"clients/a", b"hello");
        assert_eq!(
            s.open(b"clients/a", &sealed, || "a".into()).unwrap(),
            b"hello"
        );
        // Another index, store, kind or key: refused.
        assert!(s.open(b"clients/b", &sealed, || "b".into()).is_err());
        let other = Sealer::new(&key, FileKind::Ledger, [2; 32], "l");
        assert!(other.open(b"clients/a", &sealed, || "a".into()).is_err());
        let wal = Sealer::new(&key, FileKind::Wal, [1; 32], "l");
        assert!(wal.open(b"clients/a", &sealed, || "a".into()).is_err());
        let k2 = StorageKey::derive(b"secret2", "storage");
        let s2 = Sealer::new(&k2, FileKind::Ledger, [1; 32], "l");
        assert!(s2.open(b"clients/a", &sealed, || "a".into()).is_err());
        // A flipped bit anywhere: refused with the record named.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                s.open(b"clients/a", &bad, || "clients a".into()),
                Err(SealError::Record {
                    file: "l".into(),
                    record: "clients a".into()
                })
            );
        }
        let mac = s.header_mac(3);
        s.check_header(3, &mac).unwrap();
        assert!(s.check_header(4, &mac).is_err());
        assert!(other.check_header(3, &mac).is_err());
        assert_ne!(
            StorageKey::derive(b"secret", "storage").0,
            StorageKey::derive(b"secret", "other").0
        );
    }
}
