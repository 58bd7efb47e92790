//! The cocoon key service (`kms` role).
//!
//! A key-service TD holds the network's master key `M` (made in the first instance, copied to
//! further instances over mutual RA-TLS in which both present allowed `kms` images) and releases
//! keys derived from it ([`derive`]): `P, S = HKDF(M, network ‖ root ‖ role ‖ operator wallet ‖
//! purpose ‖ epoch)`, only over mutual RA-TLS, only to a peer whose quote verifies, whose image the
//! root allows for its role, and whose boot key (the RA-TLS key) the operator's wallet bound
//! ([`cocoon_daemon::keys::BootKeyBinding`], checked against the wallet's on-chain public key).
//!
//! - [`config`]: `KmsConfig` (`listen`, `admin_listen`, `replicate_from`, `epoch`, `[tls]`, `[chain]`);
//! - [`service`]: what is released to whom (the checks, independent of HTTP), [`WalletKeys`];
//! - [`daemon`]: `build` → `run_until`, as every cocoon daemon.
//!
//! See docs/security.md "Keys".

pub mod config;
pub mod daemon;
pub mod service;

pub use config::KmsConfig;
pub use service::{
    ChainWalletKeys, KmsService, MemoryWalletKeys, Refusal, Scope, WalletKeys, derive,
};

use zeroize::Zeroize;

/// The master key. Never written anywhere; wiped from memory when dropped.
#[derive(Clone)]
pub struct Master([u8; 32]);

impl Master {
    /// A fresh master key (the first instance of a network's key service).
    pub fn generate() -> Master {
        use rand::RngCore;
        let mut m = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut m);
        Master(m)
    }

    /// A master key received from a replica.
    pub fn from_bytes(bytes: [u8; 32]) -> Master {
        Master(bytes)
    }

    /// The key's bytes (derivation and replication only).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Master(..)")
    }
}
