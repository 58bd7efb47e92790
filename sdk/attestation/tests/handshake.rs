//! In-process mutual RA-TLS handshakes over 127.0.0.1 with simulated attestation.

use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::tls::attest_error_in_io;
use cocoon_attestation::{
    AttestError, Credential, CredentialManager, FixedClock, InMemoryAllowlist, Policy, Role,
    SystemClock, TeeKind, client_config, peer_identity, server_config,
};
use ed25519_dalek::SigningKey;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn sim_manager(role: Role, label: &str) -> CredentialManager {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    CredentialManager::new(
        role,
        key,
        Some(Arc::new(SimulatedProvider::new(label))),
        Arc::new(SystemClock),
        Duration::from_secs(86_400),
    )
    .expect("credential")
}

fn allow(role: Role, label: &str) -> Arc<InMemoryAllowlist> {
    let a = InMemoryAllowlist::new();
    a.allow(role, SimulatedProvider::new(label).image_hash());
    Arc::new(a)
}

struct Outcome {
    client: std::io::Result<Option<cocoon_attestation::PeerIdentity>>,
    server: std::io::Result<Option<cocoon_attestation::PeerIdentity>>,
}

/// One connection: the client writes "ping", the server answers "pong".
async fn handshake(server: rustls::ServerConfig, client: rustls::ClientConfig) -> Outcome {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let id = peer_identity(tls.get_ref().1);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(id)
    });
    let connector = TlsConnector::from(Arc::new(client));
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut tls = connector
            .connect(ServerName::try_from("proxy.cocoon").expect("name"), tcp)
            .await?;
        let id = peer_identity(tls.get_ref().1);
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok::<_, std::io::Error>(id)
    }
    .await;
    let server = server_task.await.expect("server task");
    Outcome { client, server }
}

fn proxy_policy(allowlist: Arc<InMemoryAllowlist>) -> Policy {
    Policy::strict(&[Role::Worker], allowlist).insecure_dev()
}

fn worker_policy(allowlist: Arc<InMemoryAllowlist>) -> Policy {
    Policy::strict(&[Role::Proxy], allowlist).insecure_dev()
}

#[tokio::test]
async fn proxy_and_worker_attest_each_other_in_dev_mode() {
    let (proxy, worker) = (
        sim_manager(Role::Proxy, "proxy-img"),
        sim_manager(Role::Worker, "worker-img"),
    );
    let server = server_config(
        worker.clone(),
        worker_policy(allow(Role::Proxy, "proxy-img")),
    )
    .expect("server");
    let client = client_config(
        proxy.clone(),
        proxy_policy(allow(Role::Worker, "worker-img")),
    )
    .expect("client");
    let out = handshake(server, client).await;
    let seen_by_proxy = out.client.expect("client side").expect("identity");
    let seen_by_worker = out.server.expect("server side").expect("identity");
    assert_eq!(seen_by_proxy.role, Role::Worker);
    assert_eq!(seen_by_proxy.public_key, worker.current().public_key());
    assert_eq!(
        seen_by_proxy.image_hash,
        SimulatedProvider::new("worker-img").image_hash()
    );
    assert_eq!(
        (seen_by_proxy.tee, seen_by_proxy.insecure),
        (TeeKind::Simulated, true)
    );
    assert_eq!(seen_by_worker.role, Role::Proxy);
    assert_eq!(seen_by_worker.public_key, proxy.current().public_key());
}

#[tokio::test]
async fn an_unattested_client_reaches_a_proxy_that_accepts_any_client() {
    let proxy = sim_manager(Role::Proxy, "proxy-img");
    let gateway = Credential::unattested(Role::Client).expect("client cert");
    let server_policy = Policy::strict(&[Role::Client], Arc::new(InMemoryAllowlist::new()))
        .accept_unattested(Role::Client);
    let server = server_config(proxy, server_policy).expect("server");
    // The client still verifies the proxy.
    let client_policy =
        Policy::strict(&[Role::Proxy], allow(Role::Proxy, "proxy-img")).insecure_dev();
    let client = client_config(gateway, client_policy).expect("client");
    let out = handshake(server, client).await;
    let id = out.server.expect("server side").expect("identity");
    // Admitted without evidence: nothing attests it, so it is insecure.
    assert_eq!(
        (id.role, id.tee, id.insecure),
        (Role::Client, TeeKind::None, true)
    );
    assert_eq!(
        out.client.expect("client side").expect("identity").role,
        Role::Proxy
    );
}

/// Runs a handshake expected to fail and returns the error the refusing side reported.
async fn refused(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
    server_refuses: bool,
) -> String {
    let out = handshake(server, client).await;
    let err = if server_refuses {
        out.server.expect_err("server must refuse")
    } else {
        out.client.expect_err("client must refuse")
    };
    let attest =
        attest_error_in_io(&err).unwrap_or_else(|| panic!("not an attestation error: {err}"));
    format!("{attest:?}")
}

#[tokio::test]
async fn each_wrong_policy_fails_the_handshake_on_the_side_that_holds_it() {
    let (proxy, worker) = (
        sim_manager(Role::Proxy, "proxy-img"),
        sim_manager(Role::Worker, "worker-img"),
    );
    let good_server = || {
        server_config(
            worker.clone(),
            worker_policy(allow(Role::Proxy, "proxy-img")),
        )
        .expect("server")
    };
    let good_client = || {
        client_config(
            proxy.clone(),
            proxy_policy(allow(Role::Worker, "worker-img")),
        )
        .expect("client")
    };

    // Server side: strict (no simulated), wrong role, image not allowed.
    let strict = Policy::strict(&[Role::Proxy], allow(Role::Proxy, "proxy-img"));
    let e = refused(
        server_config(worker.clone(), strict).expect("server"),
        good_client(),
        true,
    )
    .await;
    assert!(e.starts_with("SimulatedRefused"), "{e}");
    let wrong_role = worker_policy(allow(Role::Proxy, "proxy-img"));
    let wrong_role = Policy {
        allowed_roles: vec![Role::Client],
        ..wrong_role
    };
    let e = refused(
        server_config(worker.clone(), wrong_role).expect("server"),
        good_client(),
        true,
    )
    .await;
    assert!(e.starts_with("RoleNotAllowed"), "{e}");
    let e = refused(
        server_config(
            worker.clone(),
            worker_policy(allow(Role::Proxy, "other-img")),
        )
        .expect("server"),
        good_client(),
        true,
    )
    .await;
    assert!(e.starts_with("ImageNotAllowed"), "{e}");

    // Client side: strict, wrong role, image not allowed, certificate expired by the client's clock.
    let strict = Policy::strict(&[Role::Worker], allow(Role::Worker, "worker-img"));
    let e = refused(
        good_server(),
        client_config(proxy.clone(), strict).expect("client"),
        false,
    )
    .await;
    assert!(e.starts_with("SimulatedRefused"), "{e}");
    let e = refused(
        good_server(),
        client_config(
            proxy.clone(),
            proxy_policy(allow(Role::Worker, "x")).clone(),
        )
        .expect("client"),
        false,
    )
    .await;
    assert!(e.starts_with("ImageNotAllowed"), "{e}");
    let expects_proxy =
        Policy::strict(&[Role::Proxy], allow(Role::Worker, "worker-img")).insecure_dev();
    let e = refused(
        good_server(),
        client_config(proxy.clone(), expects_proxy).expect("client"),
        false,
    )
    .await;
    assert!(e.starts_with("RoleNotAllowed"), "{e}");
    let later = Arc::new(FixedClock::new(worker.current().not_after() + 1));
    let e = refused(
        good_server(),
        client_config(
            proxy.clone(),
            proxy_policy(allow(Role::Worker, "worker-img")).with_clock(later),
        )
        .expect("client"),
        false,
    )
    .await;
    assert!(e.starts_with("CertificateExpired"), "{e}");

    // A worker refuses a client that has no evidence.
    let gateway = Credential::unattested(Role::Client).expect("client cert");
    let e = refused(
        good_server(),
        client_config(gateway, proxy_policy(allow(Role::Worker, "worker-img"))).expect("client"),
        true,
    )
    .await;
    assert!(
        e.starts_with("RoleNotAllowed") || e.starts_with("MissingEvidence"),
        "{e}"
    );
}

#[tokio::test]
async fn tls12_only_clients_are_refused() {
    let worker = sim_manager(Role::Worker, "worker-img");
    let server =
        server_config(worker, worker_policy(allow(Role::Proxy, "proxy-img"))).expect("server");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls12 = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("tls12")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let out = handshake(server, tls12).await;
    assert!(out.client.is_err() && out.server.is_err());
}

#[test]
fn attest_errors_are_reachable_through_io_errors() {
    let e = std::io::Error::other(rustls::Error::InvalidCertificate(
        rustls::CertificateError::Other(rustls::OtherError(Arc::new(
            AttestError::ReportDataMismatch,
        ))),
    ));
    assert!(matches!(
        attest_error_in_io(&e),
        Some(AttestError::ReportDataMismatch)
    ));
}

/// Presents one credential's certificate but signs with another credential's key.
#[derive(Debug)]
struct StolenCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for StolenCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[tokio::test]
async fn a_replayed_certificate_without_its_key_fails_the_signature_check() {
    let (proxy, worker) = (
        sim_manager(Role::Proxy, "proxy-img"),
        sim_manager(Role::Worker, "worker-img"),
    );
    let impostor = sim_manager(Role::Worker, "worker-img");
    let stolen = rustls::sign::CertifiedKey::new(
        vec![worker.current().cert_der().clone()],
        Arc::clone(&impostor.current().certified_key().key),
    );
    let peers = Arc::new(cocoon_attestation::verify::PeerVerifier::new(
        worker_policy(allow(Role::Proxy, "proxy-img")),
    ));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("tls13")
    .with_client_cert_verifier(Arc::new(cocoon_attestation::tls::AttestedVerifier::new(
        peers,
    )))
    .with_cert_resolver(Arc::new(StolenCert(Arc::new(stolen))));
    let client =
        client_config(proxy, proxy_policy(allow(Role::Worker, "worker-img"))).expect("client");
    let e = refused(server, client, false).await;
    assert!(e.starts_with("BadHandshakeSignature"), "{e}");
}
