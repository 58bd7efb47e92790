//! TEE attestation for cocoon: quote providers, DCAP verification, RA-TLS certificates and mutual TLS 1.3.
//!
//! The pieces, in the order a handshake uses them:
//! - [`provider`]: where quotes come from (`tdx` through Linux configfs-tsm, `simulated` for development);
//! - [`claims`]: what a certificate asserts (role, Ed25519 key, issue time, extras) and the quote's
//!   `report_data = SHA-512(claims)`;
//! - [`cert`]: self-signed, short-lived RA-TLS certificates ([`Credential`], [`CredentialManager`]);
//! - [`dcap`]: Intel DCAP quote verification (dcap-qvl, offline, explicit time, pinned Intel root);
//! - [`collateral`]: collateral from a file or an operator's PCCS, cached on disk;
//! - [`policy`]: what a peer must prove ([`Policy`], [`ImageAllowlist`], [`TcbPolicy`], clocks);
//! - [`verify`]: the peer-certificate verification pipeline and its per-certificate cache;
//! - [`tls`]: rustls 0.23 configurations for mutual, TLS 1.3 only, attested connections.
//!
//! See `docs/attestation.md` for the wire formats.

pub mod cert;
pub mod claims;
pub mod collateral;
pub mod dcap;
mod error;
pub mod pccs_source;
pub mod policy;
pub mod provider;
pub mod tls;
pub mod verify;

pub use cert::{Credential, CredentialManager};
pub use claims::{Claims, Role, Validity};
pub use dcap::{QuoteReport, TeeKind};
pub use error::AttestError;
pub use policy::{
    Clock, FixedClock, ImageAllowlist, InMemoryAllowlist, InsecureMode, PeerKeys, Policy,
    SystemClock, TcbPolicy,
};
pub use provider::{ProviderConfig, QuoteProvider};
pub use tls::{client_config, peer_identity, server_config};
pub use verify::PeerIdentity;

/// Result type of this crate.
pub type Result<T, E = AttestError> = std::result::Result<T, E>;

/// Where the attestation fixtures live: `$COCOON_FIXTURES_DIR` if set, else
/// `../shared/fixtures/attestation` next to the repository root.
pub fn fixtures_dir() -> std::path::PathBuf {
    match std::env::var_os("COCOON_FIXTURES_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/attestation"),
    }
}
