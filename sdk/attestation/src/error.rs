//! The typed errors of this crate: one variant per reason a quote, certificate or peer is refused.

use std::path::PathBuf;

/// Everything that can go wrong while producing or verifying attestation evidence.
///
/// Verification failures are distinct variants so that callers (and tests) can tell *why* a peer was
/// refused without parsing messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The configured quote provider cannot run on this machine (no configfs-tsm, not a TD, ...).
    #[error("quote provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// Reading or writing a configfs-tsm file failed.
    #[error("configfs-tsm I/O on {path}: {source}")]
    TsmIo {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another writer used the same configfs-tsm entry between our write and our read.
    #[error(
        "configfs-tsm generation changed during the request: expected {expected}, read {actual}"
    )]
    TsmGenerationMismatch {
        /// The generation our single write should have produced.
        expected: u64,
        /// The generation the kernel reported.
        actual: u64,
    },
    /// The quote bytes do not parse.
    #[error("malformed quote: {0}")]
    MalformedQuote(String),
    /// DCAP verification failed: signature chain, collateral, time window or QE identity.
    #[error("quote verification failed: {0}")]
    QuoteRejected(String),
    /// The quote did not chain to the pinned Intel SGX root key.
    #[error("quote chains to root key id {actual}, not the pinned Intel root key")]
    RootKeyMismatch {
        /// SHA-384 of the root public key the quote chained to, hex.
        actual: String,
    },
    /// The quote's TCB status is not accepted by the TCB policy.
    #[error("TCB status {status} is not accepted by policy (advisories: {advisories:?})")]
    TcbStatusRejected {
        /// The converged TCB status.
        status: String,
        /// Intel security advisories that apply.
        advisories: Vec<String>,
    },
    /// The quote is for a TEE this verifier does not accept in this place (e.g. SGX where TDX is needed).
    #[error("unsupported TEE for this use: {0}")]
    UnsupportedTee(String),
    /// Collateral could not be read, parsed or obtained.
    #[error("collateral: {0}")]
    Collateral(String),
    /// No collateral is known for the quote's platform and none may be fetched.
    #[error("no collateral available for FMSPC {fmspc}")]
    CollateralUnavailable {
        /// The platform's FMSPC, hex.
        fmspc: String,
    },
    /// The certificate is not DER X.509, lacks our extensions, or has a non-Ed25519 key.
    #[error("malformed RA-TLS certificate: {0}")]
    MalformedCertificate(String),
    /// The claims extension does not decode.
    #[error("malformed claims: {0}")]
    MalformedClaims(String),
    /// The certificate is outside its validity period at verification time.
    #[error(
        "certificate not valid at {at}: valid from {not_before} until {not_after} (unix seconds)"
    )]
    CertificateExpired {
        /// Verification time, unix seconds.
        at: i64,
        /// Start of validity, unix seconds.
        not_before: i64,
        /// End of validity, unix seconds.
        not_after: i64,
    },
    /// The certificate's claims were made longer ago than the policy's maximum age: its quote is
    /// stale, whatever the certificate's own dates say.
    #[error(
        "certificate is stale: issued at {issued_at}, {age_secs}s before {at}, more than the maximum age {max_age_secs}s"
    )]
    CertificateStale {
        /// `issued_at` of the claims, unix seconds.
        issued_at: u64,
        /// Verification time, unix seconds.
        at: i64,
        /// How old the claims are, seconds.
        age_secs: i64,
        /// The policy's maximum age, seconds.
        max_age_secs: u64,
    },
    /// The quoted claims do not vouch for the certificate's dates (they carry none, or others, or
    /// an issue time outside them): the quote was made for another certificate.
    #[error(
        "quoted claims vouch for validity {claimed:?}, not the certificate's {not_before}..{not_after} (issued at {issued_at})"
    )]
    ClaimsValidityMismatch {
        /// What the claims carry, `(not_before, not_after)` (none for version-1 claims).
        claimed: Option<(u64, u64)>,
        /// The certificate's notBefore, unix seconds.
        not_before: i64,
        /// The certificate's notAfter, unix seconds.
        not_after: i64,
        /// The claims' issue time.
        issued_at: u64,
    },
    /// The certificate lives longer than policy allows for RA-TLS certificates.
    #[error("certificate lifetime {lifetime_secs}s exceeds the policy maximum {max_secs}s")]
    CertificateLifetimeTooLong {
        /// The certificate's lifetime in seconds.
        lifetime_secs: i64,
        /// The policy maximum in seconds.
        max_secs: u64,
    },
    /// The claims name a different public key than the certificate's.
    #[error("claims public key does not equal the certificate's key")]
    ClaimsKeyMismatch,
    /// The quote's report_data is not SHA-512 of the certificate's claims: the quote was made for
    /// another key or other claims.
    #[error("quote report_data does not equal SHA-512 of the certificate claims")]
    ReportDataMismatch,
    /// A simulated quote was presented to a policy that requires a hardware TEE.
    #[error("simulated (insecure) attestation refused: policy requires a hardware TEE")]
    SimulatedRefused,
    /// The certificate has no attestation evidence and the peer's role requires it.
    #[error("peer presented no attestation evidence; role {0} requires it")]
    MissingEvidence(String),
    /// The peer's key is not among the keys the policy expects (e.g. not a registered proxy).
    #[error("peer key {0} is not one of the expected keys")]
    UnexpectedPeerKey(String),
    /// The peer's role is not one this endpoint accepts.
    #[error("peer role {0} is not allowed here")]
    RoleNotAllowed(String),
    /// The image hash is not in the allowlist for the role.
    #[error("image hash {image_hash} is not allowed for role {role}")]
    ImageNotAllowed {
        /// The role the peer claimed.
        role: String,
        /// The peer's image hash, hex.
        image_hash: String,
    },
    /// The image hash was allowed but has been revoked.
    #[error("image hash {image_hash} for role {role} was revoked at {revoked_at} (unix seconds)")]
    ImageRevoked {
        /// The role the peer claimed.
        role: String,
        /// The peer's image hash, hex.
        image_hash: String,
        /// When governance revoked it.
        revoked_at: u64,
    },
    /// The policy requires an allowed measured configuration and the peer's claims carry another
    /// (or none).
    #[error("configuration hash {config_hash} is not allowed for role {role}")]
    ConfigNotAllowed {
        /// The role the peer claimed.
        role: String,
        /// The peer's `config_hash` claim, hex (`none` when absent).
        config_hash: String,
    },
    /// The allowlist could not answer (never loaded, or too stale).
    #[error("image allowlist unavailable: {0}")]
    AllowlistUnavailable(String),
    /// The handshake signature does not verify against the certificate's Ed25519 key.
    #[error("TLS handshake signature does not verify against the certificate key")]
    BadHandshakeSignature,
    /// The peer signed with something other than Ed25519, or tried TLS 1.2.
    #[error("unsupported handshake signature: {0}")]
    UnsupportedSignature(String),
    /// Building a certificate or TLS configuration failed.
    #[error("building RA-TLS credential or config: {0}")]
    Build(String),
    /// Talking to the operator's PCCS failed.
    #[error("PCCS request {url}: {reason}")]
    Pccs {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
}
