//! RA-TLS certificates: self-signed Ed25519 X.509 with the quote and the claims in extensions.
//!
//! Two critical extensions under cocoon's arc `1.3.6.1.4.1.59765.1` (see docs/attestation.md):
//! - [`OID_EVIDENCE`] (`.1`): OCTET STRING of `kind (1 byte) || quote` ([`EvidenceKind`]); absent for
//!   unattested clients;
//! - [`OID_CLAIMS`] (`.2`): OCTET STRING of the canonical claims encoding ([`Claims::encode`]).
//!
//! The quote's report_data is SHA-512 of the claims bytes exactly as they sit in the extension.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ed25519_dalek::{SigningKey, Verifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::claims::report_data_for;
use crate::policy::{Clock, SystemClock};
use crate::provider::{EvidenceKind, QuoteProvider};
use crate::{AttestError, Claims, Result, Role};

/// OID arc for cocoon's certificate extensions.
pub const OID_ARC: &[u64] = &[1, 3, 6, 1, 4, 1, 59765, 1];
/// Evidence extension: `kind || quote`.
pub const OID_EVIDENCE: &[u64] = &[1, 3, 6, 1, 4, 1, 59765, 1, 1];
/// Claims extension: the canonical claims encoding.
pub const OID_CLAIMS: &[u64] = &[1, 3, 6, 1, 4, 1, 59765, 1, 2];
/// Default certificate lifetime, from issue to notAfter: one day, the default maximum age of
/// peers' claims ([`crate::Policy::max_cert_age`]), so a certificate is never stale before it expires.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Backdating of notBefore, for peers whose clocks run a little behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

const ED25519_OID: &str = "1.3.101.112";

fn oid_string(oid: &[u64]) -> String {
    oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// DER OCTET STRING around `content`.
fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(0x04);
    let len_bytes = (len as u64).to_be_bytes();
    let significant = len_bytes
        .iter()
        .skip_while(|b| **b == 0)
        .copied()
        .collect::<Vec<_>>();
    if len < 0x80 {
        out.extend_from_slice(&significant[..]);
        if significant.is_empty() {
            out.push(0);
        }
    } else {
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(&significant);
    }
    out.extend_from_slice(content);
    out
}

/// The content of a DER OCTET STRING, refusing non-minimal lengths and trailing bytes.
fn parse_der_octet_string(der: &[u8]) -> Result<&[u8]> {
    let bad = |m: &str| AttestError::MalformedCertificate(format!("extension value: {m}"));
    let [tag, first, rest @ ..] = der else {
        return Err(bad("too short"));
    };
    if *tag != 0x04 {
        return Err(bad("not an OCTET STRING"));
    }
    let (len, body) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("bad length"));
        }
        let (len_bytes, body) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 || len_bytes.first() == Some(&0) {
            return Err(bad("non-minimal length"));
        }
        (len, body)
    };
    if body.len() != len {
        return Err(bad("length mismatch"));
    }
    Ok(body)
}

/// An RA-TLS certificate, parsed (not verified).
#[derive(Debug, Clone)]
pub struct ParsedCert {
    /// SHA-256 of the certificate DER (the verification-cache key).
    pub der_hash: [u8; 32],
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// The certificate's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The decoded claims.
    pub claims: Claims,
    /// The claims bytes as carried (what report_data hashes).
    pub claims_bytes: Vec<u8>,
    /// The evidence, if any.
    pub evidence: Option<(EvidenceKind, Vec<u8>)>,
}

impl ParsedCert {
    /// `SHA-512(claims bytes)`: what the quote's report_data must be.
    pub fn expected_report_data(&self) -> [u8; 64] {
        report_data_for(&self.claims_bytes)
    }
}

/// The certificate's subject key, which must be Ed25519.
fn ed25519_subject_key(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<[u8; 32]> {
    let bad = |m: String| AttestError::MalformedCertificate(m);
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return Err(bad(format!(
            "key algorithm {} is not Ed25519",
            spki.algorithm.algorithm.to_id_string()
        )));
    }
    spki.subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| bad("Ed25519 key is not 32 bytes".into()))
}

/// The raw Ed25519 subject key of any X.509 certificate (RA-TLS or not), without checking anything
/// else: what pins a peer by key, or matches a certificate to the key that signed a receipt.
pub fn ed25519_key_of_cert(der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    ed25519_subject_key(&cert).ok()
}

/// Parses an RA-TLS certificate and checks its self-signature; does not judge the evidence.
pub fn parse_certificate(der: &[u8]) -> Result<ParsedCert> {
    let bad = |m: String| AttestError::MalformedCertificate(m);
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| bad(format!("not DER X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate".into()));
    }
    let public_key = ed25519_subject_key(&cert)?;
    if cert.signature_algorithm.algorithm.to_id_string() != ED25519_OID {
        return Err(bad("certificate not signed with Ed25519".into()));
    }
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public_key)
        .map_err(|e| bad(format!("Ed25519 key: {e}")))?;
    let sig = ed25519_dalek::Signature::from_slice(cert.signature_value.data.as_ref())
        .map_err(|e| bad(format!("signature: {e}")))?;
    vk.verify(cert.tbs_certificate.as_ref(), &sig)
        .map_err(|_| bad("self-signature does not verify".into()))?;

    let (evidence_oid, claims_oid) = (oid_string(OID_EVIDENCE), oid_string(OID_CLAIMS));
    let mut claims_bytes = None;
    let mut evidence = None;
    for ext in cert.extensions() {
        let id = ext.oid.to_id_string();
        if id == claims_oid {
            if claims_bytes.is_some() {
                return Err(bad("duplicate claims extension".into()));
            }
            claims_bytes = Some(parse_der_octet_string(ext.value)?.to_vec());
        } else if id == evidence_oid {
            if evidence.is_some() {
                return Err(bad("duplicate evidence extension".into()));
            }
            let body = parse_der_octet_string(ext.value)?;
            let (&code, quote) = body
                .split_first()
                .ok_or_else(|| bad("empty evidence".into()))?;
            let kind = EvidenceKind::from_code(code)
                .ok_or_else(|| bad(format!("unknown evidence kind {code}")))?;
            evidence = Some((kind, quote.to_vec()));
        } else if ext.critical {
            return Err(bad(format!("unknown critical extension {id}")));
        }
    }
    let claims_bytes = claims_bytes.ok_or_else(|| bad("no claims extension".into()))?;
    let claims = Claims::decode(&claims_bytes)?;
    let validity = cert.validity();
    Ok(ParsedCert {
        der_hash: Sha256::digest(der).into(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        public_key,
        claims,
        claims_bytes,
        evidence,
    })
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): fixed prefix then the 32 seed bytes.
fn ed25519_pkcs8(key: &SigningKey) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(key.as_bytes());
    out
}

/// A private key and the RA-TLS certificate that attests it.
#[derive(Debug)]
pub struct Credential {
    key: SigningKey,
    claims: Claims,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    not_after: i64,
    evidence: Option<EvidenceKind>,
    certified: Arc<rustls::sign::CertifiedKey>,
}

impl Credential {
    /// Issues a certificate for `key` in `role` at `now` (unix seconds), valid for `lifetime`, with
    /// a quote from `provider` binding the claims (no evidence if `provider` is `None`).
    pub fn issue(
        role: Role,
        key: &SigningKey,
        provider: Option<&dyn QuoteProvider>,
        now: i64,
        lifetime: Duration,
        extra: BTreeMap<String, String>,
    ) -> Result<Self> {
        let build = |m: String| AttestError::Build(m);
        let public_key = key.verifying_key().to_bytes();
        let issued_at = u64::try_from(now).map_err(|_| build("clock before 1970".into()))?;
        let lifetime_secs =
            i64::try_from(lifetime.as_secs()).map_err(|_| build("lifetime too long".into()))?;
        let not_after = now
            .checked_add(lifetime_secs)
            .ok_or_else(|| build("lifetime too long".into()))?;
        let skew = i64::try_from(CLOCK_SKEW.as_secs()).unwrap_or(0);
        let not_before = now.saturating_sub(skew).max(0);
        // The quote vouches for the certificate's dates too (issue 15: one quote, one validity).
        let claims = Claims {
            role,
            public_key,
            issued_at,
            validity: Some(crate::claims::Validity {
                not_before: u64::try_from(not_before).unwrap_or(0),
                not_after: u64::try_from(not_after).unwrap_or(0),
            }),
            extra,
        };
        let claims_bytes = claims.encode()?;

        let pkcs8 = ed25519_pkcs8(key);
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ED25519,
        )
        .map_err(|e| build(format!("key: {e}")))?;

        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CommonName,
            format!("cocoon {role} {}", hex::encode(&public_key[..8])),
        );
        params.distinguished_name = dn;
        let at = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t).map_err(|e| build(format!("time: {e}")))
        };
        params.not_before = at(not_before)?;
        params.not_after = at(not_after)?;
        let serial: [u8; 16] = rand::random();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));

        let mut claims_ext =
            rcgen::CustomExtension::from_oid_content(OID_CLAIMS, der_octet_string(&claims_bytes));
        claims_ext.set_criticality(true);
        params.custom_extensions.push(claims_ext);
        let evidence = match provider {
            Some(p) => {
                let quote = p.quote(&report_data_for(&claims_bytes))?;
                let mut body = vec![p.kind().code()];
                body.extend_from_slice(&quote);
                let mut ext =
                    rcgen::CustomExtension::from_oid_content(OID_EVIDENCE, der_octet_string(&body));
                ext.set_criticality(true);
                params.custom_extensions.push(ext);
                Some(p.kind())
            }
            None => None,
        };
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| build(format!("certificate: {e}")))?;
        let cert_der = cert.der().clone();
        let cert_pem = cert.pem();

        let provider = rustls::crypto::ring::default_provider();
        let signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
            .map_err(|e| build(format!("rustls key: {e}")))?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert_der.clone()],
            signer,
        ));
        Ok(Credential {
            key: key.clone(),
            claims,
            cert_der,
            cert_pem,
            not_after,
            evidence,
            certified,
        })
    }

    /// A fresh random key with a certificate from `provider`, valid for [`DEFAULT_LIFETIME`].
    pub fn generate(role: Role, provider: &dyn QuoteProvider) -> Result<Self> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::issue(
            role,
            &key,
            Some(provider),
            SystemClock.now_unix(),
            DEFAULT_LIFETIME,
            BTreeMap::new(),
        )
    }

    /// A fresh random key with a certificate that carries no evidence (app developers' gateways).
    pub fn unattested(role: Role) -> Result<Self> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::issue(
            role,
            &key,
            None,
            SystemClock.now_unix(),
            DEFAULT_LIFETIME,
            BTreeMap::new(),
        )
    }

    /// The role in the claims.
    pub fn role(&self) -> Role {
        self.claims.role
    }

    /// The claims the certificate carries.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.claims.public_key
    }

    /// The attested signing key (e.g. for receipts signed with the attested key).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// End of validity, unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The evidence kind, `None` for an unattested credential.
    pub fn evidence(&self) -> Option<EvidenceKind> {
        self.evidence
    }

    /// The certificate chain and signer, as rustls wants them.
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        Arc::clone(&self.certified)
    }
}

#[derive(Debug)]
struct ManagerInner {
    key: SigningKey,
    role: Role,
    provider: Option<Arc<dyn QuoteProvider>>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
    renew_before: Duration,
    extra: BTreeMap<String, String>,
    rotating: bool,
    current: RwLock<Arc<Credential>>,
}

/// Holds the current credential and re-issues it (same key, fresh quote and certificate) when it
/// enters the renewal window before expiry. Clones share state.
#[derive(Debug, Clone)]
pub struct CredentialManager {
    inner: Arc<ManagerInner>,
}

impl CredentialManager {
    /// A rotating manager: issues the first certificate now; renews `lifetime / 4` before expiry.
    pub fn new(
        role: Role,
        key: SigningKey,
        provider: Option<Arc<dyn QuoteProvider>>,
        clock: Arc<dyn Clock>,
        lifetime: Duration,
    ) -> Result<Self> {
        Self::with_extra(role, key, provider, clock, lifetime, BTreeMap::new())
    }

    /// As [`CredentialManager::new`], every certificate's claims carrying `extra` (e.g. the
    /// measured configuration hash, [`crate::claims::CONFIG_HASH_KEY`]).
    pub fn with_extra(
        role: Role,
        key: SigningKey,
        provider: Option<Arc<dyn QuoteProvider>>,
        clock: Arc<dyn Clock>,
        lifetime: Duration,
        extra: BTreeMap<String, String>,
    ) -> Result<Self> {
        let first = Credential::issue(
            role,
            &key,
            provider.as_deref(),
            clock.now_unix(),
            lifetime,
            extra.clone(),
        )?;
        Ok(CredentialManager {
            inner: Arc::new(ManagerInner {
                key,
                role,
                provider,
                clock,
                lifetime,
                renew_before: lifetime / 4,
                extra,
                rotating: true,
                current: RwLock::new(Arc::new(first)),
            }),
        })
    }

    /// The current credential, renewed first if it is inside the renewal window. If renewal fails
    /// the old credential is returned (and the failure logged) while it is still valid.
    pub fn current(&self) -> Arc<Credential> {
        let cur = Arc::clone(&self.inner.current.read().unwrap_or_else(|p| p.into_inner()));
        if !self.inner.rotating {
            return cur;
        }
        let now = self.inner.clock.now_unix();
        let renew_at = cur
            .not_after
            .saturating_sub(i64::try_from(self.inner.renew_before.as_secs()).unwrap_or(0));
        if now < renew_at {
            return cur;
        }
        match self.rotate() {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::error!(error = %e, not_after = cur.not_after, "renewing the RA-TLS certificate failed");
                cur
            }
        }
    }

    /// Issues a new certificate now.
    pub fn rotate(&self) -> Result<Arc<Credential>> {
        let i = &self.inner;
        let fresh = Arc::new(Credential::issue(
            i.role,
            &i.key,
            i.provider.as_deref(),
            i.clock.now_unix(),
            i.lifetime,
            i.extra.clone(),
        )?);
        *i.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
        tracing::info!(role = %i.role, not_after = fresh.not_after, "issued a new RA-TLS certificate");
        Ok(fresh)
    }
}

impl From<Credential> for CredentialManager {
    /// A manager that never rotates (tests, short-lived tools).
    fn from(cred: Credential) -> Self {
        CredentialManager {
            inner: Arc::new(ManagerInner {
                key: cred.key.clone(),
                role: cred.claims.role,
                provider: None,
                clock: Arc::new(SystemClock),
                lifetime: DEFAULT_LIFETIME,
                renew_before: Duration::ZERO,
                extra: cred.claims.extra.clone(),
                rotating: false,
                current: RwLock::new(Arc::new(cred)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedClock;
    use crate::provider::simulated::SimulatedProvider;

    #[test]
    fn octet_string_round_trips_at_length_boundaries() {
        for len in [0usize, 1, 127, 128, 255, 256, 5000, 70000] {
            let content = vec![0xab; len];
            let der = der_octet_string(&content);
            assert_eq!(
                parse_der_octet_string(&der).expect("parse"),
                &content[..],
                "len {len}"
            );
        }
        assert!(
            parse_der_octet_string(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(),
            "non-minimal"
        );
    }

    #[test]
    fn certificate_carries_claims_and_bound_quote() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let cred = Credential::issue(
            Role::Worker,
            &key,
            Some(&SimulatedProvider::default()),
            1_800_000_000,
            DEFAULT_LIFETIME,
            BTreeMap::new(),
        )
        .expect("issue");
        let parsed = parse_certificate(cred.cert_der()).expect("parse");
        assert_eq!(parsed.public_key, key.verifying_key().to_bytes());
        assert_eq!(parsed.claims, *cred.claims());
        assert_eq!(parsed.not_after - parsed.not_before, 24 * 3600 + 300);
        let validity = parsed.claims.validity.expect("validity in the claims");
        assert_eq!(
            (validity.not_before, validity.not_after),
            (
                u64::try_from(parsed.not_before).expect("positive"),
                u64::try_from(parsed.not_after).expect("positive")
            )
        );
        let (kind, quote) = parsed.evidence.clone().expect("evidence");
        assert_eq!(kind, EvidenceKind::Simulated);
        let q = crate::provider::simulated::SimulatedQuote::parse(&quote).expect("quote");
        assert_eq!(q.report_data, parsed.expected_report_data());
    }

    #[test]
    fn a_flipped_byte_breaks_the_self_signature() {
        let cred = Credential::unattested(Role::Client).expect("issue");
        let mut der = cred.cert_der().to_vec();
        let pos = der.len() / 2;
        der[pos] ^= 1;
        assert!(parse_certificate(&der).is_err());
    }

    #[test]
    fn manager_rotates_inside_the_renewal_window_and_keeps_the_key() {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let m = CredentialManager::new(
            Role::Proxy,
            SigningKey::from_bytes(&[4; 32]),
            Some(Arc::new(SimulatedProvider::default())),
            clock.clone(),
            Duration::from_secs(4000),
        )
        .expect("manager");
        let first = m.current();
        clock.set(1_800_000_000 + 2999);
        assert!(Arc::ptr_eq(&first, &m.current()));
        clock.set(1_800_000_000 + 3001);
        let second = m.current();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.public_key(), first.public_key());
        assert!(second.not_after() > first.not_after());
    }
}
