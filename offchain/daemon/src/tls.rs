//! The TLS seam of every hop.
//!
//! [`HopTls`] is what the daemons need from attestation: a server and a client `rustls` config for mutual
//! TLS 1.3, the identity of the peer on an established connection, and the signing key the attestation
//! binds (the worker signs receipts with it). Its one implementation is [`crate::ra_tls::RaTls`]
//! over `cocoon-attestation`; who a peer is ([`PeerIdentity`], [`Role`]) is that crate's model, and
//! development TLS (`tls.mode = "dev-insecure"`) is one of its policies, not another TLS stack.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use thiserror::Error;

pub use crate::ra_tls::DevTls;
pub use cocoon_attestation::cert::ed25519_key_of_cert;
pub use cocoon_attestation::{PeerIdentity, Role};

/// TLS setup errors.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// The configured development key is not 32 bytes of hex.
    #[error("dev_key must be 64 hex characters (a 32-byte Ed25519 seed)")]
    DevKey,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A connected peer no longer passes attestation (expired, stale, revoked, deregistered).
    #[error("peer no longer passes attestation: {0}")]
    PeerRefused(#[source] cocoon_attestation::AttestError),
}

/// The peer's certificate (DER) on an established connection, for [`HopTls::recheck_peer`].
pub fn peer_certificate(conn: &rustls::CommonState) -> Option<Vec<u8>> {
    conn.peer_certificates()?.first().map(|c| c.to_vec())
}

/// How long a live connection to a peer with `identity` may wait before its next re-verification:
/// `every`, but never past the certificate's expiry (plus a second, so the expiry check fires).
pub fn next_recheck(identity: &PeerIdentity, every: std::time::Duration) -> std::time::Duration {
    use cocoon_attestation::Clock;
    let now = cocoon_attestation::SystemClock.now_unix();
    let to_expiry = identity.not_after.saturating_sub(now).saturating_add(1);
    let to_expiry = std::time::Duration::from_secs(u64::try_from(to_expiry).unwrap_or(0));
    every.min(to_expiry)
}

/// What a hop needs from attestation.
pub trait HopTls: Send + Sync + 'static {
    /// Server side of mutual TLS 1.3, ALPN `h2`.
    fn server_config(&self) -> Arc<rustls::ServerConfig>;
    /// Client side of mutual TLS 1.3, ALPN `h2`.
    fn client_config(&self) -> Arc<rustls::ClientConfig>;
    /// The verified peer of an established connection.
    fn peer_identity(&self, conn: &rustls::CommonState) -> Option<PeerIdentity>;
    /// This daemon's own identity.
    fn identity(&self) -> PeerIdentity;
    /// The key the attestation binds (receipts and vouchers are signed with it).
    fn signing_key(&self) -> &SigningKey;
    /// Re-verifies the certificate (DER, see [`peer_certificate`]) of an established connection
    /// against the policy as it stands now (lifetime, age, expected keys, image allowlist). Every
    /// long-lived connection calls this on each refresh and is closed, with the reason logged,
    /// when it fails: TLS 1.3 never re-authenticates a peer by itself.
    fn recheck_peer(&self, certificate: &[u8]) -> Result<PeerIdentity, TlsError>;
    /// The attestation policy this hop judges its peers by (allowlist, TCB, collateral, clock,
    /// development modes), for checks beyond the handshake: the gateway verifies the certificates
    /// of the workers behind its proxy with it. `None`: this TLS has no policy to share.
    fn peer_policy(&self) -> Option<cocoon_attestation::Policy> {
        None
    }
}
