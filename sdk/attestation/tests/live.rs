//! Attestation over the life of a connection (issue 16) and freshness of certificates (issue 15):
//! no TLS session resumption past what a full handshake would accept, evidence of roles that need
//! none is never judged, and certificates carry their validity inside the quoted claims.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::tls::attest_error_in_io;
use cocoon_attestation::{
    AttestError, Credential, CredentialManager, FixedClock, InMemoryAllowlist, Policy, Role,
    SystemClock, client_config, server_config,
};
use ed25519_dalek::SigningKey;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn allow(role: Role, label: &str) -> Arc<InMemoryAllowlist> {
    let a = InMemoryAllowlist::new();
    a.allow(role, SimulatedProvider::new(label).image_hash());
    Arc::new(a)
}

fn now() -> i64 {
    use cocoon_attestation::Clock;
    SystemClock.now_unix()
}

/// One connection over 127.0.0.1 with shared configs (so a session cache, if any, carries over):
/// ping/pong, then both sides' results.
async fn connect(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
) -> (std::io::Result<bool>, std::io::Result<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = acceptor.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut tls = connector
            .connect(ServerName::try_from("worker.cocoon").expect("name"), tcp)
            .await?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(resumed)
    }
    .await;
    (client, server.await.expect("server task"))
}

#[tokio::test]
async fn a_session_is_never_resumed_past_the_certificate_it_was_made_with() {
    // The worker (server) judges the proxy (client) by a clock the test moves.
    let start = now();
    let clock = Arc::new(FixedClock::new(start));
    let worker = CredentialManager::new(
        Role::Worker,
        SigningKey::generate(&mut rand::rngs::OsRng),
        Some(Arc::new(SimulatedProvider::new("worker-img"))),
        Arc::new(SystemClock),
        Duration::from_secs(86_400),
    )
    .expect("worker");
    let proxy_cert = Credential::issue(
        Role::Proxy,
        &SigningKey::generate(&mut rand::rngs::OsRng),
        Some(&SimulatedProvider::new("proxy-img")),
        start,
        Duration::from_secs(3600),
        BTreeMap::new(),
    )
    .expect("proxy cert");
    let server = server_config(
        worker,
        Policy::strict(&[Role::Proxy], allow(Role::Proxy, "proxy-img"))
            .insecure_dev()
            .with_clock(clock.clone()),
    )
    .expect("server");
    let client = client_config(
        proxy_cert,
        Policy::strict(&[Role::Worker], allow(Role::Worker, "worker-img")).insecure_dev(),
    )
    .expect("client");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let connector = TlsConnector::from(Arc::new(client));

    let (client_side, server_side) = connect(&acceptor, &connector).await;
    server_side.expect("first connection accepted");
    assert!(
        !client_side.expect("first connection"),
        "the first connection is a full handshake"
    );

    // Two hours later the proxy's one-hour certificate has expired: a new connection must be a
    // full handshake that judges it again, not a resumption of the old session.
    clock.set(start + 7200);
    let (client_side, server_side) = connect(&acceptor, &connector).await;
    let resumed = client_side.as_ref().ok().copied();
    let err = server_side.expect_err("an expired certificate is refused, resumed or not");
    let attest = attest_error_in_io(&err)
        .unwrap_or_else(|| panic!("not an attestation error: {err} (client resumed: {resumed:?})"));
    assert!(
        matches!(attest, AttestError::CertificateExpired { .. }),
        "{attest:?}"
    );
}

/// DER OCTET STRING (lengths below 64 KiB are enough here).
fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    match content.len() {
        n if n < 0x80 => out.push(u8::try_from(n).expect("short")),
        n if n < 0x100 => out.extend_from_slice(&[0x81, u8::try_from(n).expect("one byte")]),
        n => out.extend_from_slice(&[
            0x82,
            u8::try_from(n >> 8).expect("two bytes"),
            u8::try_from(n & 0xff).expect("byte"),
        ]),
    }
    out.extend_from_slice(content);
    out
}

/// A certificate signed by `key` with X.509 validity `not_before..not_after`, carrying `claims`
/// and a simulated quote of image `label` binding them: everything consistent but what a test
/// chooses to make inconsistent.
fn crafted_cert(
    key: &SigningKey,
    claims: &cocoon_attestation::Claims,
    not_before: i64,
    not_after: i64,
) -> Vec<u8> {
    use cocoon_attestation::QuoteProvider;
    use cocoon_attestation::cert::{OID_CLAIMS, OID_EVIDENCE};
    use cocoon_attestation::claims::report_data_for;
    use cocoon_attestation::provider::EvidenceKind;
    let claims_bytes = claims.encode().expect("encode");
    let quote = SimulatedProvider::new("worker-img")
        .quote(&report_data_for(&claims_bytes))
        .expect("quote");
    let mut evidence = vec![EvidenceKind::Simulated.code()];
    evidence.extend_from_slice(&quote);
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(key.as_bytes());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_slice().into(),
        &rcgen::PKCS_ED25519,
    )
    .expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    for (oid, content) in [(OID_CLAIMS, claims_bytes), (OID_EVIDENCE, evidence)] {
        let mut ext = rcgen::CustomExtension::from_oid_content(oid, octet_string(&content));
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    }
    params.self_signed(&kp).expect("sign").der().to_vec()
}

const T0: i64 = 1_800_000_000;

fn worker_verifier(clock: Arc<FixedClock>) -> cocoon_attestation::verify::PeerVerifier {
    cocoon_attestation::verify::PeerVerifier::new(
        Policy::strict(&[Role::Worker], allow(Role::Worker, "worker-img"))
            .insecure_dev()
            .with_clock(clock),
    )
}

#[test]
fn one_quote_cannot_vouch_for_a_certificate_with_other_dates() {
    let key = SigningKey::from_bytes(&[21; 32]);
    let pk = key.verifying_key().to_bytes();
    let issued = u64::try_from(T0).expect("positive");
    let verifier = worker_verifier(Arc::new(FixedClock::new(T0 + 60)));
    // Control: claims vouching for exactly the certificate's dates.
    let claims = cocoon_attestation::Claims::new(Role::Worker, pk, issued)
        .with_validity(issued - 300, issued + 3600);
    verifier
        .verify(&crafted_cert(&key, &claims, T0 - 300, T0 + 3600))
        .expect("consistent certificate");
    // The same quoted claims in a certificate that lives an hour longer.
    let err = verifier
        .verify(&crafted_cert(&key, &claims, T0 - 300, T0 + 7200))
        .expect_err("other dates");
    assert!(
        matches!(
            err,
            AttestError::ClaimsValidityMismatch {
                claimed: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    // Claims without validity (version 1): the quote vouches for no dates at all.
    let v1 = cocoon_attestation::Claims::new(Role::Worker, pk, issued);
    let err = verifier
        .verify(&crafted_cert(&key, &v1, T0 - 300, T0 + 3600))
        .expect_err("no quoted validity");
    assert!(
        matches!(
            err,
            AttestError::ClaimsValidityMismatch { claimed: None, .. }
        ),
        "{err:?}"
    );
    // An issue time outside the dates it vouches for.
    let outside = cocoon_attestation::Claims::new(Role::Worker, pk, issued - 1000)
        .with_validity(issued - 300, issued + 3600);
    let err = verifier
        .verify(&crafted_cert(&key, &outside, T0 - 300, T0 + 3600))
        .expect_err("issued before notBefore");
    assert!(
        matches!(err, AttestError::ClaimsValidityMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn a_stale_certificate_is_refused_with_its_own_error() {
    let key = SigningKey::from_bytes(&[22; 32]);
    let pk = key.verifying_key().to_bytes();
    let issued = u64::try_from(T0).expect("positive");
    // A policy that tolerates week-long certificates but not claims older than a day.
    let clock = Arc::new(FixedClock::new(T0 + 60));
    let verifier = cocoon_attestation::verify::PeerVerifier::new(Policy {
        max_cert_lifetime: Duration::from_secs(7 * 86_400),
        ..Policy::strict(&[Role::Worker], allow(Role::Worker, "worker-img"))
            .insecure_dev()
            .with_clock(clock.clone())
    });
    assert_eq!(verifier.policy().max_cert_age, Duration::from_secs(86_400));
    let claims = cocoon_attestation::Claims::new(Role::Worker, pk, issued)
        .with_validity(issued - 300, issued + 3 * 86_400);
    let cert = crafted_cert(&key, &claims, T0 - 300, T0 + 3 * 86_400);
    verifier.verify(&cert).expect("fresh");
    // 25 hours later the certificate is still inside its dates, but its quote is a day old.
    clock.set(T0 + 25 * 3600);
    let err = verifier
        .recheck(&cert)
        .expect_err("stale on a live connection");
    assert!(
        matches!(err, AttestError::CertificateStale { age_secs, max_age_secs: 86_400, .. } if age_secs == 25 * 3600),
        "{err:?}"
    );
    let fresh_verifier = cocoon_attestation::verify::PeerVerifier::new(Policy {
        max_cert_lifetime: Duration::from_secs(7 * 86_400),
        ..Policy::strict(&[Role::Worker], allow(Role::Worker, "worker-img"))
            .insecure_dev()
            .with_clock(clock)
    });
    let err = fresh_verifier
        .verify(&cert)
        .expect_err("stale at a handshake");
    assert!(
        matches!(err, AttestError::CertificateStale { .. }),
        "{err:?}"
    );
    // The default policy refuses such a certificate outright: its validity exceeds the age.
    let strict = worker_verifier(Arc::new(FixedClock::new(T0 + 60)));
    let err = strict.verify(&cert).expect_err("too long");
    assert!(
        matches!(err, AttestError::CertificateLifetimeTooLong { .. }),
        "{err:?}"
    );
}

#[test]
fn own_certificates_pass_the_default_freshness_rules_until_they_expire() {
    let clock = Arc::new(FixedClock::new(T0));
    let cred = Credential::issue(
        Role::Worker,
        &SigningKey::from_bytes(&[23; 32]),
        Some(&SimulatedProvider::new("worker-img")),
        T0,
        cocoon_attestation::cert::DEFAULT_LIFETIME,
        BTreeMap::new(),
    )
    .expect("issue");
    let verifier = worker_verifier(clock.clone());
    verifier.verify(cred.cert_der()).expect("fresh");
    clock.set(cred.not_after());
    verifier
        .recheck(cred.cert_der())
        .expect("still valid at notAfter");
    clock.set(cred.not_after() + 1);
    let err = verifier.recheck(cred.cert_der()).expect_err("expired");
    assert!(
        matches!(err, AttestError::CertificateExpired { .. }),
        "{err:?}"
    );
}

#[test]
fn recheck_follows_revocation_and_the_expected_keys() {
    let clock = Arc::new(FixedClock::new(T0));
    let cred = Credential::issue(
        Role::Proxy,
        &SigningKey::from_bytes(&[24; 32]),
        Some(&SimulatedProvider::new("proxy-img")),
        T0,
        Duration::from_secs(3600),
        BTreeMap::new(),
    )
    .expect("issue");
    let list = allow(Role::Proxy, "proxy-img");
    let keys = cocoon_attestation::PeerKeys::new(vec![cred.public_key()]);
    let verifier = cocoon_attestation::verify::PeerVerifier::new(
        Policy::strict(&[Role::Proxy], list.clone())
            .insecure_dev()
            .with_clock(clock)
            .expect_peer_key_set(keys.clone()),
    );
    verifier
        .verify(cred.cert_der())
        .expect("registered, allowed");
    verifier.recheck(cred.cert_der()).expect("still");
    // The root deregisters the proxy: its live connections fail the next recheck.
    keys.replace(Vec::new());
    let err = verifier.recheck(cred.cert_der()).expect_err("deregistered");
    assert!(matches!(err, AttestError::UnexpectedPeerKey(_)), "{err:?}");
    keys.replace(vec![cred.public_key()]);
    verifier.recheck(cred.cert_der()).expect("registered again");
    // Governance revokes its image.
    list.revoke(
        Role::Proxy,
        SimulatedProvider::new("proxy-img").image_hash(),
        1,
    );
    let err = verifier.recheck(cred.cert_der()).expect_err("revoked");
    assert!(matches!(err, AttestError::ImageRevoked { .. }), "{err:?}");
}

/// A stand-in PCCS that counts every connection and answers 404.
async fn counting_pccs(hits: Arc<std::sync::atomic::AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    format!("http://{addr}")
}

/// Hands out a real DCAP quote (the fixture) with report_data patched to bind the claims: its
/// signatures no longer hold, but only a full DCAP verification, with collateral, can tell.
#[derive(Debug)]
struct PatchedDcapQuote(Vec<u8>);

impl cocoon_attestation::QuoteProvider for PatchedDcapQuote {
    fn kind(&self) -> cocoon_attestation::provider::EvidenceKind {
        cocoon_attestation::provider::EvidenceKind::Dcap
    }
    fn quote(&self, report_data: &[u8; 64]) -> cocoon_attestation::Result<Vec<u8>> {
        // TDX quote v4: 48-byte header, then the TD report with report_data at offset 520.
        let mut q = self.0.clone();
        q[568..632].copy_from_slice(report_data);
        Ok(q)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_client_quote_causes_no_collateral_fetch() {
    use cocoon_attestation::collateral::PccsClient;
    use cocoon_attestation::pccs_source::{PccsCollateral, PccsOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let url = counting_pccs(hits.clone()).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let pccs = PccsCollateral::start(
        PccsClient::new(&url, cache.path().to_path_buf()).expect("client"),
        None,
        Arc::new(SystemClock),
        PccsOptions::default(),
    )
    .expect("pccs");
    // The proxy's policy: attested workers, clients admitted without evidence.
    let policy = Policy::strict(
        &[Role::Client, Role::Worker],
        Arc::new(InMemoryAllowlist::new()),
    )
    .accept_unattested(Role::Client)
    .with_collateral(Arc::new(pccs));
    let verifier = Arc::new(cocoon_attestation::verify::PeerVerifier::new(policy));
    let fixture = std::fs::read(cocoon_attestation::fixtures_dir().join("cocoon-tdx-quote.bin"))
        .expect("fixture quote");
    let crafted = PatchedDcapQuote(fixture);
    let issue = |role| {
        Credential::issue(
            role,
            &SigningKey::generate(&mut rand::rngs::OsRng),
            Some(&crafted),
            now(),
            Duration::from_secs(3600),
            BTreeMap::new(),
        )
        .expect("issue")
    };

    let client = issue(Role::Client);
    let v = Arc::clone(&verifier);
    let der = client.cert_der().to_vec();
    let id = tokio::task::spawn_blocking(move || v.verify(&der))
        .await
        .expect("join")
        .expect("a client is admitted by its key; its evidence is not judged");
    assert_eq!(
        (id.role, id.tee, id.image_hash, id.insecure),
        (
            Role::Client,
            cocoon_attestation::TeeKind::None,
            [0; 32],
            true
        )
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no collateral fetched");

    // Control: the same quote in a worker certificate is judged, refused without waiting, and its
    // platform's collateral is fetched in the background (so the counter does count).
    let worker = issue(Role::Worker);
    let v = Arc::clone(&verifier);
    let der = worker.cert_der().to_vec();
    let started = std::time::Instant::now();
    let err = tokio::task::spawn_blocking(move || v.verify(&der))
        .await
        .expect("join")
        .expect_err("no collateral yet");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the verifier never waits for the PCCS"
    );
    assert!(
        matches!(err, AttestError::CollateralUnavailable { .. }),
        "{err:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        hits.load(Ordering::SeqCst) > 0,
        "the worker's platform was fetched"
    );
}
