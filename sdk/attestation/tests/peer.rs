//! Peer-certificate verification: each refusal reason is its own error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::collateral::{CollateralStore, load_collateral_file};
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::provider::{EvidenceKind, QuoteProvider};
use cocoon_attestation::verify::PeerVerifier;
use cocoon_attestation::{
    AttestError, Credential, FixedClock, InMemoryAllowlist, Policy, Role, TeeKind, fixtures_dir,
};
use ed25519_dalek::SigningKey;
use time::macros::datetime;

const T0: i64 = datetime!(2026-03-01 00:00 UTC).unix_timestamp();
const DAY: Duration = Duration::from_secs(86_400);

/// Returns the real cocoon fixture quote whatever report_data it is asked for.
#[derive(Debug)]
struct ReplayedRealQuote(Vec<u8>);

impl QuoteProvider for ReplayedRealQuote {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Dcap
    }
    fn quote(&self, _report_data: &[u8; 64]) -> cocoon_attestation::Result<Vec<u8>> {
        Ok(self.0.clone())
    }
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn sim_cert(role: Role) -> Credential {
    Credential::issue(
        role,
        &key(1),
        Some(&SimulatedProvider::default()),
        T0,
        DAY,
        BTreeMap::new(),
    )
    .expect("issue")
}

fn dev_policy(roles: &[Role], allow: &InMemoryAllowlist, clock: &Arc<FixedClock>) -> Policy {
    Policy::strict(roles, Arc::new(allow.clone()))
        .insecure_dev()
        .with_clock(clock.clone())
}

/// A worker certificate for a new key carrying the real fixture quote (made for another key).
fn replayed_real_quote_cert() -> Credential {
    let quote = std::fs::read(fixtures_dir().join("cocoon-tdx-quote.bin")).expect("fixture");
    Credential::issue(
        Role::Worker,
        &key(3),
        Some(&ReplayedRealQuote(quote)),
        T0,
        DAY,
        BTreeMap::new(),
    )
    .expect("issue")
}

fn allowlist_with_sim(role: Role) -> InMemoryAllowlist {
    let a = InMemoryAllowlist::new();
    a.allow(role, SimulatedProvider::default().image_hash());
    a
}

#[test]
fn simulated_peer_is_accepted_in_dev_mode_and_cached() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let v = PeerVerifier::new(dev_policy(
        &[Role::Worker],
        &allowlist_with_sim(Role::Worker),
        &clock,
    ));
    let cert = sim_cert(Role::Worker);
    let id = v.verify(cert.cert_der()).expect("accepted");
    assert_eq!(id.role, Role::Worker);
    assert_eq!(id.tee, TeeKind::Simulated);
    assert!(id.insecure);
    assert_eq!(id.public_key, key(1).verifying_key().to_bytes());
    assert_eq!(id.image_hash, SimulatedProvider::default().image_hash());
    v.verify(cert.cert_der()).expect("again");
    assert_eq!(v.cached(), 1, "one verification per certificate");
}

#[test]
fn simulated_quote_under_strict_policy_is_refused() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let strict = Policy::strict(&[Role::Worker], Arc::new(allowlist_with_sim(Role::Worker)))
        .with_clock(clock);
    let err = PeerVerifier::new(strict)
        .verify(sim_cert(Role::Worker).cert_der())
        .expect_err("strict");
    assert!(matches!(err, AttestError::SimulatedRefused), "{err}");
}

#[test]
fn image_not_allowed_and_revoked_are_distinct_and_revocation_beats_the_cache() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let cert = sim_cert(Role::Worker);
    let empty = InMemoryAllowlist::new();
    let err = PeerVerifier::new(dev_policy(&[Role::Worker], &empty, &clock))
        .verify(cert.cert_der())
        .expect_err("unknown");
    assert!(matches!(err, AttestError::ImageNotAllowed { .. }), "{err}");
    // Allowed for proxies only: still not allowed for a worker.
    let proxy_only = allowlist_with_sim(Role::Proxy);
    let err = PeerVerifier::new(dev_policy(&[Role::Worker], &proxy_only, &clock))
        .verify(cert.cert_der())
        .expect_err("role");
    assert!(matches!(err, AttestError::ImageNotAllowed { .. }), "{err}");

    let allow = allowlist_with_sim(Role::Worker);
    let v = PeerVerifier::new(dev_policy(&[Role::Worker], &allow, &clock));
    v.verify(cert.cert_der()).expect("allowed");
    allow.revoke(
        Role::Worker,
        SimulatedProvider::default().image_hash(),
        1234,
    );
    let err = v
        .verify(cert.cert_der())
        .expect_err("revoked after caching");
    assert!(
        matches!(
            err,
            AttestError::ImageRevoked {
                revoked_at: 1234,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let cert = sim_cert(Role::Worker);
    let allow = allowlist_with_sim(Role::Worker);
    let clock = Arc::new(FixedClock::new(T0 + 86_400 + 1));
    let v = PeerVerifier::new(dev_policy(&[Role::Worker], &allow, &clock));
    let err = v.verify(cert.cert_der()).expect_err("expired");
    assert!(
        matches!(err, AttestError::CertificateExpired { .. }),
        "{err}"
    );
    clock.set(T0 - 3600);
    let err = v.verify(cert.cert_der()).expect_err("not yet valid");
    assert!(
        matches!(err, AttestError::CertificateExpired { .. }),
        "{err}"
    );
    // Verified while valid, then expired: the cache does not keep it alive.
    clock.set(T0 + 10);
    v.verify(cert.cert_der()).expect("valid now");
    clock.set(T0 + 86_400 + 1);
    assert!(matches!(
        v.verify(cert.cert_der()),
        Err(AttestError::CertificateExpired { .. })
    ));
}

#[test]
fn overlong_certificates_are_refused() {
    let cert = Credential::issue(
        Role::Worker,
        &key(1),
        Some(&SimulatedProvider::default()),
        T0,
        DAY * 30,
        BTreeMap::new(),
    )
    .expect("issue");
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let err = PeerVerifier::new(dev_policy(
        &[Role::Worker],
        &allowlist_with_sim(Role::Worker),
        &clock,
    ))
    .verify(cert.cert_der())
    .expect_err("30 days");
    assert!(
        matches!(err, AttestError::CertificateLifetimeTooLong { .. }),
        "{err}"
    );
}

#[test]
fn roles_and_missing_evidence() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let allow = allowlist_with_sim(Role::Proxy);
    let err = PeerVerifier::new(dev_policy(&[Role::Worker], &allow, &clock))
        .verify(sim_cert(Role::Proxy).cert_der())
        .expect_err("proxy where a worker is expected");
    assert!(matches!(err, AttestError::RoleNotAllowed(_)), "{err}");

    let client =
        Credential::issue(Role::Client, &key(2), None, T0, DAY, BTreeMap::new()).expect("client");
    let strict = Policy::strict(&[Role::Client], Arc::new(InMemoryAllowlist::new()))
        .with_clock(clock.clone());
    let err = PeerVerifier::new(strict.clone())
        .verify(client.cert_der())
        .expect_err("no evidence");
    assert!(matches!(err, AttestError::MissingEvidence(_)), "{err}");
    let id = PeerVerifier::new(strict.accept_unattested(Role::Client))
        .verify(client.cert_der())
        .expect("any client");
    // Accepted, but nothing attests it: insecure.
    assert_eq!(
        (id.role, id.tee, id.insecure),
        (Role::Client, TeeKind::None, true)
    );
}

#[test]
fn development_tls_accepts_any_cocoon_certificate_unverified_and_insecure() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let dev = Policy::dev_insecure().with_clock(clock.clone());
    let unattested =
        Credential::issue(Role::Worker, &key(2), None, T0, DAY, BTreeMap::new()).expect("issue");
    let verifier = PeerVerifier::new(dev.clone());
    let id = verifier.verify(unattested.cert_der()).expect("dev accepts");
    assert_eq!(
        (id.role, id.tee, id.insecure),
        (Role::Worker, TeeKind::None, true)
    );
    // A simulated quote whose image is on no allowlist, and a real quote bound to another key:
    // neither is judged, both are insecure.
    let sim = verifier
        .verify(sim_cert(Role::Proxy).cert_der())
        .expect("dev accepts");
    assert_eq!((sim.tee, sim.insecure), (TeeKind::Simulated, true));
    assert!(
        verifier.verify(sim_cert(Role::Proxy).cert_der()).is_ok(),
        "cached, no allowlist"
    );
    let replayed = replayed_real_quote_cert();
    let tdx = verifier.verify(replayed.cert_der()).expect("dev accepts");
    assert_eq!((tdx.tee, tdx.insecure), (TeeKind::Tdx, true));
    assert_eq!(
        verifier.verified_identity(replayed.cert_der()).unwrap(),
        tdx
    );
    // The certificate itself is still checked: lifetime and pinned keys.
    clock.set(T0 + 2 * 86_400);
    assert!(matches!(
        PeerVerifier::new(dev.clone()).verify(unattested.cert_der()),
        Err(AttestError::CertificateExpired { .. })
    ));
    clock.set(T0 + 60);
    assert!(matches!(
        PeerVerifier::new(dev.expect_peer_keys(vec![[9; 32]])).verify(unattested.cert_der()),
        Err(AttestError::UnexpectedPeerKey(_))
    ));
}

#[test]
fn a_real_quote_attached_to_a_new_key_is_refused() {
    let collateral = load_collateral_file(&fixtures_dir().join("cocoon-tdx-quote.collateral.json"))
        .expect("collateral");
    let cert = replayed_real_quote_cert();
    let allow = InMemoryAllowlist::new();
    let policy = Policy::strict(&[Role::Worker], Arc::new(allow))
        .with_clock(Arc::new(FixedClock::new(T0 + 60)))
        .with_collateral(Arc::new(CollateralStore::fixed(collateral)));
    let err = PeerVerifier::new(policy)
        .verify(cert.cert_der())
        .expect_err("report_data is not ours");
    assert!(matches!(err, AttestError::ReportDataMismatch), "{err}");
}

#[test]
fn garbage_certificates_are_malformed() {
    let clock = Arc::new(FixedClock::new(T0));
    let v = PeerVerifier::new(dev_policy(
        &[Role::Worker],
        &InMemoryAllowlist::new(),
        &clock,
    ));
    for bad in [&b""[..], b"\x30\x03\x02\x01\x00", &[0u8; 300]] {
        assert!(matches!(
            v.verify(bad),
            Err(AttestError::MalformedCertificate(_))
        ));
    }
}

/// DER OCTET STRING (lengths below 64 KiB are enough here).
fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    match content.len() {
        n if n < 0x80 => out.push(u8::try_from(n).expect("short")),
        n if n < 0x100 => out.extend_from_slice(&[0x81, u8::try_from(n).expect("one byte")]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

#[test]
fn claims_naming_another_key_are_refused() {
    use cocoon_attestation::Claims;
    use cocoon_attestation::cert::{OID_CLAIMS, OID_EVIDENCE};
    use cocoon_attestation::claims::report_data_for;

    // The certificate is signed by (and carries) key 5, the claims name key 6, and the simulated
    // quote binds those claims: everything is consistent except key and claims.
    let claims = Claims::new(
        Role::Worker,
        key(6).verifying_key().to_bytes(),
        u64::try_from(T0).expect("positive"),
    );
    let claims_bytes = claims.encode().expect("encode");
    let quote = SimulatedProvider::default()
        .quote(&report_data_for(&claims_bytes))
        .expect("quote");
    let mut evidence = vec![EvidenceKind::Simulated.code()];
    evidence.extend_from_slice(&quote);

    let pkcs8 = {
        let mut v = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        v.extend_from_slice(key(5).as_bytes());
        v
    };
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_slice().into(),
        &rcgen::PKCS_ED25519,
    )
    .expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(T0).expect("time");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(T0 + 86_400).expect("time");
    for (oid, content) in [(OID_CLAIMS, claims_bytes), (OID_EVIDENCE, evidence)] {
        let mut ext = rcgen::CustomExtension::from_oid_content(oid, octet_string(&content));
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    }
    let cert = params.self_signed(&kp).expect("cert");

    let clock = Arc::new(FixedClock::new(T0 + 60));
    let err = PeerVerifier::new(dev_policy(
        &[Role::Worker],
        &allowlist_with_sim(Role::Worker),
        &clock,
    ))
    .verify(cert.der())
    .expect_err("claims for another key");
    assert!(matches!(err, AttestError::ClaimsKeyMismatch), "{err}");
}

#[test]
fn only_expected_keys_are_accepted_when_keys_are_pinned() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let cert = sim_cert(Role::Worker);
    let base = dev_policy(&[Role::Worker], &allowlist_with_sim(Role::Worker), &clock);
    let err = PeerVerifier::new(base.clone().expect_peer_keys(vec![[9; 32]]))
        .verify(cert.cert_der())
        .expect_err("other key");
    assert!(matches!(err, AttestError::UnexpectedPeerKey(_)), "{err}");
    PeerVerifier::new(base.expect_peer_keys(vec![[9; 32], key(1).verifying_key().to_bytes()]))
        .verify(cert.cert_der())
        .expect("pinned key");
}

/// A simulated worker certificate whose claims carry `config` as `config_hash` and whose RTMR3 was
/// extended with it (as a measured TD's would be).
fn measured_cert(config: [u8; 32]) -> (Credential, [u8; 32]) {
    let provider = SimulatedProvider::with_config("measured", &config);
    let extra = BTreeMap::from([(
        cocoon_attestation::claims::CONFIG_HASH_KEY.to_owned(),
        hex::encode(config),
    )]);
    let cert =
        Credential::issue(Role::Worker, &key(4), Some(&provider), T0, DAY, extra).expect("issue");
    (cert, provider.image_hash())
}

#[test]
fn the_configuration_allowlist_refuses_other_and_missing_config_hashes() {
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let (good, good_image) = measured_cert([0x51; 32]);
    let (other, other_image) = measured_cert([0x52; 32]);
    assert_ne!(good_image, other_image, "RTMR3 covers the configuration");
    let allow = InMemoryAllowlist::new();
    allow.allow(Role::Worker, good_image);
    allow.allow(Role::Worker, other_image);
    allow.allow(Role::Worker, SimulatedProvider::default().image_hash());

    // Without a configuration allowlist both are accepted and show their config hash.
    let open = PeerVerifier::new(dev_policy(&[Role::Worker], &allow, &clock));
    let id = open.verify(good.cert_der()).expect("no config allowlist");
    assert_eq!(id.claims.config_hash().expect("claim"), Some([0x51; 32]));
    open.verify(other.cert_der()).expect("no config allowlist");

    let pinned = PeerVerifier::new(
        dev_policy(&[Role::Worker], &allow, &clock).require_configs(Role::Worker, [[0x51; 32]]),
    );
    pinned
        .verify(good.cert_der())
        .expect("allowed configuration");
    pinned
        .verify(good.cert_der())
        .expect("cached, still allowed");
    let err = pinned.verify(other.cert_der()).expect_err("other config");
    match err {
        AttestError::ConfigNotAllowed { role, config_hash } => {
            assert_eq!(role, "worker");
            assert_eq!(config_hash, hex::encode([0x52; 32]));
        }
        other => panic!("expected ConfigNotAllowed, got {other}"),
    }
    let err = pinned
        .verify(sim_cert(Role::Worker).cert_der())
        .expect_err("no config claim");
    assert!(
        matches!(&err, AttestError::ConfigNotAllowed { config_hash, .. } if config_hash == "none"),
        "{err}"
    );
    // The allowlist is per role: a proxy policy pinning worker configs leaves proxies alone.
    let proxies = PeerVerifier::new(
        dev_policy(&[Role::Proxy], &allowlist_with_sim(Role::Proxy), &clock)
            .require_configs(Role::Worker, [[0x51; 32]]),
    );
    proxies
        .verify(sim_cert(Role::Proxy).cert_der())
        .expect("proxies are not restricted");
}
