//! Peer-certificate verification: the checks every RA-TLS handshake runs, once per certificate.
//!
//! Order: certificate parse and self-signature, lifetime, claims-to-key binding, role, the
//! configuration allowlist (when the policy has one for the role), quote
//! report_data binding, the quote itself (DCAP with the pinned Intel root, or simulated under
//! insecure policy), TCB status, then the image hash against the allowlist for the role.
//! A verified certificate is cached by the SHA-256 of its DER; later handshakes with the same
//! certificate only re-check its lifetime, age, expected keys and the allowlist (so revocations
//! still bite), and so does [`PeerVerifier::recheck`], which daemons call on every refresh of a
//! long-lived connection.
//!
//! Freshness: the quoted claims carry the certificate's notBefore/notAfter, which must equal the
//! X.509 validity, and `issued_at`, which must lie inside it and be at most
//! [`Policy::max_cert_age`] old. Evidence of a role the policy admits unattested
//! ([`Policy::unattested_roles`], clients) is ignored, never verified: such a peer is identified by
//! its key alone and cannot make the verifier look up collateral.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cert::{ParsedCert, parse_certificate};
use crate::dcap::{Measurements, TeeKind, parse_quote, verify_quote};
use crate::policy::{ImageStatus, InsecureMode};
use crate::provider::EvidenceKind;
use crate::provider::simulated::SimulatedQuote;
use crate::{AttestError, Claims, Policy, Result, Role};

/// Most certificates remembered before the cache is swept.
const CACHE_CAPACITY: usize = 4096;

/// Who the peer is, as its verified certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerIdentity {
    /// The peer's role.
    pub role: Role,
    /// The peer's Ed25519 key (certificate key = claims key).
    #[serde(serialize_with = "hex_ser")]
    pub public_key: [u8; 32],
    /// `SHA-256(MRTD || RTMR0..3)`; all zeros when the peer has no evidence.
    #[serde(serialize_with = "hex_ser")]
    pub image_hash: [u8; 32],
    /// The TEE behind the evidence.
    pub tee: TeeKind,
    /// True when nothing hardware-backed attests the peer: its evidence is simulated or absent, or
    /// it was accepted under development TLS ([`crate::InsecureMode::Unverified`]) unverified.
    pub insecure: bool,
    /// The certificate's claims.
    pub claims: Claims,
    /// Certificate expiry, unix seconds.
    pub not_after: i64,
}

fn hex_ser<S: serde::Serializer>(v: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// Reads the identity a certificate claims, without verifying anything but its syntax and
/// self-signature. Use it on certificates that a [`PeerVerifier`] (i.e. our TLS verifiers) accepted.
pub fn identity_of(parsed: &ParsedCert) -> Result<PeerIdentity> {
    let (tee, image_hash) = match &parsed.evidence {
        None => (TeeKind::None, [0u8; 32]),
        Some((EvidenceKind::Simulated, q)) => (
            TeeKind::Simulated,
            SimulatedQuote::parse(q)?.measurements.image_hash(),
        ),
        Some((EvidenceKind::Dcap, q)) => match parse_quote(q)? {
            (_, _, Measurements::Td(m), _) => (TeeKind::Tdx, m.image_hash()),
            (_, _, Measurements::Sgx { .. }, _) => (TeeKind::Sgx, [0u8; 32]),
        },
    };
    Ok(identity(parsed, tee, image_hash))
}

/// The identity of `parsed` with evidence `tee` measuring `image_hash`; insecure unless the evidence
/// is hardware's.
fn identity(parsed: &ParsedCert, tee: TeeKind, image_hash: [u8; 32]) -> PeerIdentity {
    PeerIdentity {
        role: parsed.claims.role,
        public_key: parsed.public_key,
        image_hash,
        tee,
        insecure: matches!(tee, TeeKind::Simulated | TeeKind::None),
        claims: parsed.claims.clone(),
        not_after: parsed.not_after,
    }
}

#[derive(Debug)]
struct Verified {
    identity: Arc<PeerIdentity>,
    key: VerifyingKey,
    not_before: i64,
}

/// Verifies peer certificates under a [`Policy`], remembering the ones that passed.
#[derive(Debug)]
pub struct PeerVerifier {
    policy: Policy,
    cache: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

impl PeerVerifier {
    /// A verifier for `policy` with an empty cache.
    pub fn new(policy: Policy) -> Self {
        PeerVerifier {
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many certificates are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// The identities of every certificate verified and still cached.
    pub fn cached_identities(&self) -> Vec<Arc<PeerIdentity>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.values().map(|v| Arc::clone(&v.identity)).collect()
    }

    /// Verifies a peer certificate (DER), from the cache when it was verified before.
    pub fn verify(&self, der: &[u8]) -> Result<Arc<PeerIdentity>> {
        Ok(Arc::clone(&self.verify_entry(der)?.identity))
    }

    /// The identity this verifier gave a certificate it accepted (e.g. during the handshake of an
    /// established connection), without re-checking or logging; verifies it if no longer cached.
    pub fn verified_identity(&self, der: &[u8]) -> Result<Arc<PeerIdentity>> {
        match self.cached_entry(der).1 {
            Some(v) => Ok(Arc::clone(&v.identity)),
            None => self.verify(der),
        }
    }

    /// The cache key of `der` and its entry, if cached.
    fn cached_entry(&self, der: &[u8]) -> ([u8; 32], Option<Arc<Verified>>) {
        let hash: [u8; 32] = Sha256::digest(der).into();
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned();
        (hash, hit)
    }

    /// The verified Ed25519 key of a certificate (verifying it first if needed).
    pub fn verified_key(&self, der: &[u8]) -> Result<VerifyingKey> {
        Ok(self.verify_entry(der)?.key)
    }

    /// Re-verifies the certificate of an established connection against the policy as it stands
    /// now: lifetime, age, expected keys, and the allowlist for its image. A certificate no
    /// longer cached is verified in full (collateral from cache only, as in a handshake). Daemons
    /// call this on every refresh of a long-lived connection and close the connection on `Err`.
    pub fn recheck(&self, der: &[u8]) -> Result<Arc<PeerIdentity>> {
        match self.cached_entry(der).1 {
            Some(v) => {
                self.recheck_cached(&v)?;
                Ok(Arc::clone(&v.identity))
            }
            None => self.verify(der),
        }
    }

    /// The checks whose answer changes with time or with the chain: run on every cache hit.
    fn recheck_cached(&self, v: &Verified) -> Result<()> {
        self.check_lifetime(v.not_before, v.identity.not_after)?;
        self.check_age(v.identity.claims.issued_at)?;
        self.check_peer_key(&v.identity.public_key)?;
        self.policy.check_config(&v.identity.claims)?;
        if v.identity.tee != TeeKind::None && !self.unverified() {
            self.check_allowlist(v.identity.role, &v.identity.image_hash)?;
        }
        Ok(())
    }

    fn verify_entry(&self, der: &[u8]) -> Result<Arc<Verified>> {
        let (hash, hit) = self.cached_entry(der);
        if let Some(v) = hit {
            // Warned once, when the certificate was first verified; the identity stays `insecure`.
            self.recheck_cached(&v)?;
            return Ok(v);
        }
        let parsed = parse_certificate(der)?;
        let identity = self.verify_parsed(&parsed)?;
        let key = VerifyingKey::from_bytes(&parsed.public_key)
            .map_err(|e| AttestError::MalformedCertificate(format!("Ed25519 key: {e}")))?;
        let entry = Arc::new(Verified {
            identity: Arc::new(identity),
            key,
            not_before: parsed.not_before,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            let now = self.policy.clock.now_unix();
            cache.retain(|_, v| v.identity.not_after >= now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(hash, Arc::clone(&entry));
        Ok(entry)
    }

    fn check_lifetime(&self, not_before: i64, not_after: i64) -> Result<()> {
        let at = self.policy.clock.now_unix();
        if at < not_before || at > not_after {
            return Err(AttestError::CertificateExpired {
                at,
                not_before,
                not_after,
            });
        }
        Ok(())
    }

    /// `issued_at` at most `max_cert_age` before now.
    fn check_age(&self, issued_at: u64) -> Result<()> {
        let at = self.policy.clock.now_unix();
        let age = at.saturating_sub(i64::try_from(issued_at).unwrap_or(i64::MAX));
        let max_age_secs = self.policy.max_cert_age.as_secs();
        if u64::try_from(age).is_ok_and(|age| age > max_age_secs) {
            return Err(AttestError::CertificateStale {
                issued_at,
                at,
                age_secs: age,
                max_age_secs,
            });
        }
        Ok(())
    }

    /// The quoted claims vouch for exactly the certificate's dates, and were made inside them.
    fn check_claimed_validity(parsed: &ParsedCert) -> Result<()> {
        let claims = &parsed.claims;
        let claimed = claims.validity.map(|v| (v.not_before, v.not_after));
        let as_cert = (
            u64::try_from(parsed.not_before).ok(),
            u64::try_from(parsed.not_after).ok(),
        );
        let matches = claimed.is_some_and(|(nb, na)| {
            as_cert == (Some(nb), Some(na)) && (nb..=na).contains(&claims.issued_at)
        });
        if !matches {
            return Err(AttestError::ClaimsValidityMismatch {
                claimed,
                not_before: parsed.not_before,
                not_after: parsed.not_after,
                issued_at: claims.issued_at,
            });
        }
        Ok(())
    }

    fn check_peer_key(&self, key: &[u8; 32]) -> Result<()> {
        if let Some(keys) = &self.policy.peer_keys
            && !keys.contains(key)
        {
            return Err(AttestError::UnexpectedPeerKey(hex::encode(key)));
        }
        Ok(())
    }

    fn check_allowlist(&self, role: Role, image_hash: &[u8; 32]) -> Result<()> {
        match self.policy.allowlist.status(role, image_hash)? {
            ImageStatus::Allowed => Ok(()),
            ImageStatus::Revoked { at } => Err(AttestError::ImageRevoked {
                role: role.to_string(),
                image_hash: hex::encode(image_hash),
                revoked_at: at,
            }),
            ImageStatus::Unknown => Err(AttestError::ImageNotAllowed {
                role: role.to_string(),
                image_hash: hex::encode(image_hash),
            }),
        }
    }

    /// Runs every check on a parsed certificate, without the cache.
    pub fn verify_parsed(&self, parsed: &ParsedCert) -> Result<PeerIdentity> {
        let policy = &self.policy;
        self.check_lifetime(parsed.not_before, parsed.not_after)?;
        self.check_age(parsed.claims.issued_at)?;
        let lifetime = parsed.not_after.saturating_sub(parsed.not_before);
        if u64::try_from(lifetime).unwrap_or(u64::MAX) > policy.max_cert_lifetime.as_secs() {
            return Err(AttestError::CertificateLifetimeTooLong {
                lifetime_secs: lifetime,
                max_secs: policy.max_cert_lifetime.as_secs(),
            });
        }
        if parsed.claims.public_key != parsed.public_key {
            return Err(AttestError::ClaimsKeyMismatch);
        }
        Self::check_claimed_validity(parsed)?;
        self.check_peer_key(&parsed.public_key)?;
        let role = parsed.claims.role;
        if !policy.allowed_roles.contains(&role) {
            return Err(AttestError::RoleNotAllowed(role.to_string()));
        }
        policy.check_config(&parsed.claims)?;
        if self.unverified() {
            let identity = PeerIdentity {
                insecure: true,
                ..identity_of(parsed)?
            };
            self.warn_if_insecure(&identity);
            return Ok(identity);
        }
        if policy.unattested_roles.contains(&role) {
            // A role that needs no evidence: whatever evidence it carries is ignored, never
            // verified (so it cannot make us fetch collateral or fill the platform table).
            return Ok(identity(parsed, TeeKind::None, [0u8; 32]));
        }
        let expected = parsed.expected_report_data();
        let (tee, image_hash) = match &parsed.evidence {
            None => return Err(AttestError::MissingEvidence(role.to_string())),
            Some((EvidenceKind::Simulated, quote)) => {
                let q = SimulatedQuote::parse(quote)?;
                if q.report_data != expected {
                    return Err(AttestError::ReportDataMismatch);
                }
                if policy.insecure != InsecureMode::Simulated {
                    return Err(AttestError::SimulatedRefused);
                }
                (TeeKind::Simulated, q.measurements.image_hash())
            }
            Some((EvidenceKind::Dcap, quote)) => {
                let (_, _, _, report_data) = parse_quote(quote)?;
                if report_data != expected {
                    return Err(AttestError::ReportDataMismatch);
                }
                let collateral = policy.collateral.collateral_for(quote)?;
                let at = u64::try_from(policy.clock.now_unix()).unwrap_or(0);
                let report = verify_quote(quote, &collateral, at)?;
                let Some(image_hash) = report.image_hash else {
                    return Err(AttestError::UnsupportedTee(format!(
                        "{} quotes cannot attest a peer",
                        report.tee
                    )));
                };
                policy.tcb.check(report.tcb_status, &report.advisories)?;
                (report.tee, image_hash)
            }
        };
        self.check_allowlist(role, &image_hash)?;
        let identity = identity(parsed, tee, image_hash);
        self.warn_if_insecure(&identity);
        Ok(identity)
    }

    /// Whether this verifier runs development TLS (evidence accepted unverified).
    fn unverified(&self) -> bool {
        self.policy.insecure == InsecureMode::Unverified
    }

    /// Logs every acceptance that proves nothing: simulated evidence, or development TLS. (A
    /// client without evidence, as production admits it, is not worth a warning per handshake.)
    fn warn_if_insecure(&self, identity: &PeerIdentity) {
        if self.unverified() {
            tracing::warn!(
                role = %identity.role,
                public_key = %hex::encode(identity.public_key),
                "INSECURE: accepted a peer under development TLS (tls.mode = \"dev-insecure\"); nothing about it is verified"
            );
        } else if identity.tee == TeeKind::Simulated {
            tracing::warn!(
                role = %identity.role,
                public_key = %hex::encode(identity.public_key),
                "INSECURE: accepted a peer with SIMULATED attestation (development mode); it proves nothing about its code"
            );
        }
    }
}
