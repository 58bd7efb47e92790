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
