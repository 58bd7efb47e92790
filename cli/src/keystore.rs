//! The encrypted keystore: one wallet's 24-word mnemonic under a passphrase.
//!
//! File format (JSON, mode 0600): the wallet version and public key in clear (so `wallet address`
//! needs no passphrase), the mnemonic encrypted with ChaCha20-Poly1305 under a key derived from
//! the passphrase with Argon2id. The clear header is the AEAD's associated data, so editing the
//! version or public key makes decryption fail instead of silently deriving another wallet.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use cocoon_ton::{KeyPair, Network, Wallet, WalletVersion};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::exit::{ExitKind, fail};

/// The `format` tag of keystore files this build writes and reads.
pub(crate) const FORMAT: &str = "cocoon-keystore-1";

/// Argon2id memory cost in KiB (19 MiB, t = 2, p = 1: OWASP's minimum recommendation).
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Key derivation parameters as stored in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KdfParams {
    /// always `argon2id`
    pub(crate) name: String,
    /// memory, KiB
    pub(crate) m_cost_kib: u32,
    /// iterations
    pub(crate) t_cost: u32,
    /// lanes
    pub(crate) p_cost: u32,
    /// 16 random bytes, hex
    pub(crate) salt: String,
}

/// A keystore file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Keystore {
    /// [`FORMAT`]
    pub(crate) format: String,
    /// `v4r2` or `v5r1`
    pub(crate) wallet_version: String,
    /// Ed25519 public key, hex
    pub(crate) public_key: String,
    /// key derivation
    pub(crate) kdf: KdfParams,
    /// always `chacha20poly1305`
    pub(crate) cipher: String,
    /// 12 random bytes, hex
    pub(crate) nonce: String,
    /// encrypted mnemonic with its tag, hex
    pub(crate) ciphertext: String,
}

/// The wallet version's name as stored.
pub(crate) fn version_name(v: WalletVersion) -> &'static str {
    match v {
        WalletVersion::V4R2 => "v4r2",
        WalletVersion::V5R1 => "v5r1",
    }
}

fn damaged(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    fail(
        ExitKind::Keystore,
        format!("keystore {} is damaged: {what}", path.display()),
    )
}

impl Keystore {
    /// Encrypts `mnemonic` (already validated) under `passphrase`.
    pub(crate) fn seal(
        mnemonic: &str,
        key_pair: &KeyPair,
        version: WalletVersion,
        passphrase: &str,
    ) -> Result<Self> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let kdf = KdfParams {
            name: "argon2id".to_string(),
            m_cost_kib: M_COST_KIB,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: hex::encode(salt),
        };
        let mut store = Keystore {
            format: FORMAT.to_string(),
            wallet_version: version_name(version).to_string(),
            public_key: hex::encode(&key_pair.public_key),
            kdf,
            cipher: "chacha20poly1305".to_string(),
            nonce: hex::encode(nonce),
            ciphertext: String::new(),
        };
        let key = derive_key(passphrase, &store.kdf, Path::new("(new)"))?;
        let aead = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()));
        let sealed = aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: mnemonic.as_bytes(),
                    aad: store.associated_data().as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        store.ciphertext = hex::encode(sealed);
        Ok(store)
    }

    fn associated_data(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.format, self.wallet_version, self.public_key, self.cipher
        )
    }

    /// Reads a keystore file (no passphrase needed).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(
                    ExitKind::NotFound,
                    format!(
                        "no keystore at {}; create a wallet with `cocoon wallet new` or \
                         `cocoon wallet import`, or pass --keystore PATH",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let store: Keystore = serde_json::from_str(&text).map_err(|e| damaged(path, e))?;
        if store.format != FORMAT {
            return Err(damaged(
                path,
                format!("unknown format {:?} (expected {FORMAT})", store.format),
            ));
        }
        Ok(store)
    }

    /// Writes the file with mode 0600; refuses to replace an existing file unless `overwrite`.
    pub(crate) fn save(&self, path: &Path, overwrite: bool) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        check_new_path(path, overwrite)?;
        let json = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension("tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(json.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The stored wallet version.
    pub(crate) fn version(&self, path: &Path) -> Result<WalletVersion> {
        self.wallet_version
            .parse()
            .map_err(|e| damaged(path, format!("wallet_version: {e}")))
    }

    /// The wallet's address on `network`, from the public key alone.
    pub(crate) fn watch_wallet(&self, path: &Path, network: Network) -> Result<Wallet> {
        let public_key = hex::decode(&self.public_key)
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| damaged(path, "public_key is not 32 bytes of hex"))?;
        // Address derivation reads only the public key; this wallet cannot sign.
        let key_pair = KeyPair {
            public_key,
            secret_key: Vec::new(),
        };
        Wallet::from_key_pair(key_pair, self.version(path)?, network).map_err(anyhow::Error::from)
    }

    /// Decrypts the mnemonic. A wrong passphrase is exit code 7.
    pub(crate) fn open(&self, path: &Path, passphrase: &str) -> Result<Zeroizing<String>> {
        let nonce = hex::decode(&self.nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(|| damaged(path, "nonce is not 12 bytes of hex"))?;
        let sealed = hex::decode(&self.ciphertext).map_err(|e| damaged(path, e))?;
        if self.cipher != "chacha20poly1305" || self.kdf.name != "argon2id" {
            return Err(damaged(path, "unsupported cipher or KDF"));
        }
        let key = derive_key(passphrase, &self.kdf, path)?;
        let aead = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()));
        let plain = aead
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: self.associated_data().as_bytes(),
                },
            )
            .map_err(|_| {
                fail(
                    ExitKind::Keystore,
                    format!(
                        "cannot open keystore {}: wrong passphrase (or the file was modified)",
                        path.display()
                    ),
                )
            })?;
        let mnemonic = Zeroizing::new(
            String::from_utf8(plain).map_err(|_| damaged(path, "mnemonic is not UTF-8"))?,
        );
        Ok(mnemonic)
    }

    /// Decrypts the mnemonic and builds the signing wallet, checking it matches the stored key.
    pub(crate) fn unlock(&self, path: &Path, passphrase: &str, network: Network) -> Result<Wallet> {
        let mnemonic = self.open(path, passphrase)?;
        let wallet = Wallet::from_mnemonic(&mnemonic, self.version(path)?, network)
            .map_err(|e| damaged(path, e))?;
        if hex::encode(wallet.public_key()) != self.public_key {
            return Err(damaged(
                path,
                "the mnemonic does not match the stored public key",
            ));
        }
        Ok(wallet)
    }
}

/// Fails (exit code 2) if `path` exists and may not be replaced.
pub(crate) fn check_new_path(path: &Path, overwrite: bool) -> Result<()> {
    if path.exists() && !overwrite {
        return Err(fail(
            ExitKind::Usage,
            format!(
                "{} already exists; pass --force to replace it (its wallet is lost unless you \
                 kept the mnemonic) or choose another --keystore",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn derive_key(passphrase: &str, kdf: &KdfParams, path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let salt = hex::decode(&kdf.salt).map_err(|e| damaged(path, format!("salt: {e}")))?;
    let params = Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| damaged(path, format!("kdf parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), &salt, key.as_mut_slice())
        .map_err(|e| damaged(path, format!("kdf: {e}")))?;
    Ok(key)
}

/// The passphrase: `$COCOON_PASSPHRASE`, else a hidden prompt on the terminal (asked twice when
/// `confirm`). Without a terminal and without the variable, an error says to set it.
pub(crate) fn passphrase(confirm: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("COCOON_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            ExitKind::Usage,
            "no passphrase: set COCOON_PASSPHRASE or run in a terminal to be prompted",
        ));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("Keystore passphrase: ").context("reading the passphrase")?,
    );
    if confirm {
        if first.is_empty() {
            return Err(fail(ExitKind::Usage, "the passphrase must not be empty"));
        }
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat passphrase: ").context("reading the passphrase")?,
        );
        if *first != *again {
            return Err(fail(ExitKind::Usage, "the passphrases differ"));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_passphrase_is_refused() {
        let mnemonic = crate::mnemonic::generate().expect("mnemonic");
        let wallet =
            Wallet::from_mnemonic(&mnemonic, WalletVersion::V5R1, Network::Testnet).expect("w");
        let store =
            Keystore::seal(&mnemonic, wallet.key_pair(), WalletVersion::V5R1, "pw").expect("seal");
        assert!(
            !store
                .ciphertext
                .contains(&hex::encode(mnemonic.as_bytes())[..16])
        );
        let path = Path::new("k.json");
        assert_eq!(*store.open(path, "pw").expect("open"), *mnemonic);
        let err = store.open(path, "wrong").expect_err("wrong passphrase");
        assert_eq!(crate::exit::kind_of(&err), ExitKind::Keystore);
        let watched = store.watch_wallet(path, Network::Testnet).expect("watch");
        assert_eq!(watched.address(), wallet.address());
        let mut tampered = store.clone();
        tampered.wallet_version = "v4r2".to_string();
        assert!(
            tampered.open(path, "pw").is_err(),
            "header is authenticated"
        );
    }

    #[test]
    fn save_writes_mode_0600_and_refuses_to_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub/keystore.json");
        let mnemonic = crate::mnemonic::generate().expect("mnemonic");
        let wallet =
            Wallet::from_mnemonic(&mnemonic, WalletVersion::V4R2, Network::Testnet).expect("w");
        let store =
            Keystore::seal(&mnemonic, wallet.key_pair(), WalletVersion::V4R2, "pw").expect("seal");
        store.save(&path, false).expect("save");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.save(&path, false).is_err());
        store.save(&path, true).expect("overwrite");
        assert_eq!(Keystore::load(&path).expect("load"), store);
    }
}
