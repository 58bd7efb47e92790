//! [`HopTls`] over `cocoon-attestation`: RA-TLS certificates carrying a quote (or none), verified
//! against a [`cocoon_attestation::Policy`] (image allowlist per role, DCAP, freshness; simulated
//! quotes only when the policy allows insecure development mode; nothing at all under development
//! TLS, [`RaTls::dev_insecure`]).

use std::sync::Arc;

use cocoon_attestation as att;
use cocoon_attestation::verify::PeerVerifier;
use ed25519_dalek::SigningKey;

use crate::tls::{HopTls, PeerIdentity, Role, TlsError};

/// How long this daemon's own certificates live (they are renewed before expiry): at most the
/// maximum age its peers accept ([`att::policy::DEFAULT_MAX_CERT_AGE`] unless configured).
const CERTIFICATE_LIFETIME: std::time::Duration = att::cert::DEFAULT_LIFETIME;

/// RA-TLS for one daemon.
pub struct RaTls {
    key: SigningKey,
    _creds: att::CredentialManager,
    /// Judges peers for both configs, and remembers what it said about each certificate.
    peers: Arc<PeerVerifier>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    identity: PeerIdentity,
}

impl std::fmt::Debug for RaTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaTls")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn build(e: att::AttestError) -> TlsError {
    TlsError::Certificate(e.to_string())
}

impl RaTls {
    /// RA-TLS for `role` with `key`; `provider` produces quotes (`None`: an unattested
    /// certificate); `policy` says what peers must prove.
    pub fn new(
        role: Role,
        key: SigningKey,
        provider: Option<Arc<dyn att::QuoteProvider>>,
        policy: att::Policy,
    ) -> Result<RaTls, TlsError> {
        RaTls::with_claims(role, key, provider, policy, Default::default())
    }

    /// As [`RaTls::new`], every certificate's claims carrying `extra` (e.g. the measured
    /// configuration hash, `config_hash`).
    pub fn with_claims(
        role: Role,
        key: SigningKey,
        provider: Option<Arc<dyn att::QuoteProvider>>,
        policy: att::Policy,
        extra: std::collections::BTreeMap<String, String>,
    ) -> Result<RaTls, TlsError> {
        // Peers are held to the same maximum age as this daemon holds them to.
        let lifetime = CERTIFICATE_LIFETIME.min(policy.max_cert_age);
        let creds = att::CredentialManager::with_extra(
            role,
            key.clone(),
            provider,
            Arc::new(att::SystemClock),
            lifetime,
            extra,
        )
        .map_err(build)?;
        let identity =
            att::tls::peer_identity_from_certs(std::slice::from_ref(creds.current().cert_der()))
                .ok_or_else(|| {
                    TlsError::Certificate("own RA-TLS certificate does not parse".into())
                })?;
        let peers = Arc::new(PeerVerifier::new(policy));
        let mut server =
            att::tls::server_config_with(creds.clone(), Arc::clone(&peers)).map_err(build)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client =
            att::tls::client_config_with(creds.clone(), Arc::clone(&peers)).map_err(build)?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(RaTls {
            key,
            _creds: creds,
            peers,
            server: Arc::new(server),
            client: Arc::new(client),
            identity,
        })
    }

    /// Development TLS for `role` with `key`: an unattested certificate, and peers judged by
    /// `policy` (normally [`att::Policy::dev_insecure`]: every peer accepted unverified and marked
    /// insecure; pinned keys still apply). Logs a loud warning.
    pub fn dev_insecure(
        role: Role,
        key: SigningKey,
        policy: att::Policy,
    ) -> Result<RaTls, TlsError> {
        tracing::warn!(
            ?role,
            "INSECURE development TLS: no attestation, every peer is accepted as insecure"
        );
        RaTls::new(role, key, None, policy)
    }
}

/// Shorthands for development TLS ([`RaTls::dev_insecure`]), as tests, benches and examples use it.
#[derive(Debug)]
pub struct DevTls;

impl DevTls {
    /// Development TLS for `role` with `key`, accepting every peer.
    pub fn with_key(role: Role, key: SigningKey) -> Result<RaTls, TlsError> {
        RaTls::dev_insecure(role, key, att::Policy::dev_insecure())
    }

    /// Development TLS with a fresh random key, accepting every peer.
    pub fn generate(role: Role) -> Result<RaTls, TlsError> {
        DevTls::with_key(role, SigningKey::generate(&mut rand::rngs::OsRng))
    }
}

impl HopTls for RaTls {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }
    fn peer_identity(&self, conn: &rustls::CommonState) -> Option<PeerIdentity> {
        // What our verifier concluded in the handshake (insecure under development TLS), not
        // what the certificate claims.
        let cert = conn.peer_certificates()?.first()?;
        let identity = self.peers.verified_identity(cert).ok()?;
        Some(PeerIdentity::clone(&identity))
    }
    fn identity(&self) -> PeerIdentity {
        self.identity.clone()
    }
    fn signing_key(&self) -> &SigningKey {
        // The credential manager renews certificates for this same key.
        &self.key
    }
    fn recheck_peer(&self, certificate: &[u8]) -> Result<PeerIdentity, TlsError> {
        self.peers
            .recheck(certificate)
            .map(|identity| PeerIdentity::clone(&identity))
            .map_err(TlsError::PeerRefused)
    }
    fn peer_policy(&self) -> Option<att::Policy> {
        Some(self.peers.policy().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn development_tls_is_mutual_tls13_and_reports_both_keys_and_roles_insecure() {
        let server = DevTls::generate(Role::Proxy).unwrap();
        let client = DevTls::generate(Role::Client).unwrap();
        assert!(server.identity().insecure && client.identity().insecure);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server_config());
        let client_pk = client.identity().public_key;
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let peer = server.peer_identity(tls.get_ref().1).unwrap();
            assert_eq!(
                tls.get_ref().1.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
            let mut b = [0u8; 4];
            tls.read_exact(&mut b).await.unwrap();
            (peer, b, server.identity().public_key)
        });
        let connector = tokio_rustls::TlsConnector::from(client.client_config());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let seen = client.peer_identity(tls.get_ref().1).unwrap();
        assert_eq!(seen.role, Role::Proxy);
        assert!(seen.insecure);
        tls.write_all(b"ping").await.unwrap();
        let (peer, b, server_pk) = srv.await.unwrap();
        assert_eq!(seen.public_key, server_pk);
        assert_eq!(peer.public_key, client_pk);
        assert_eq!(peer.role, Role::Client);
        assert!(peer.insecure);
        assert_eq!(&b, b"ping");
    }

    #[tokio::test]
    async fn development_tls_reports_unverified_evidence_as_insecure() {
        // A simulated peer talking to a development-TLS daemon: accepted, but nothing was checked.
        let dev = DevTls::generate(Role::Proxy).unwrap();
        let provider = att::ProviderConfig::Simulated { image_label: None }
            .build()
            .unwrap();
        let sim = RaTls::new(
            Role::Worker,
            SigningKey::generate(&mut rand::rngs::OsRng),
            Some(provider),
            att::Policy::dev_insecure(),
        )
        .unwrap();
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(dev.server_config());
        let connector = tokio_rustls::TlsConnector::from(sim.client_config());
        let name = rustls::pki_types::ServerName::try_from("peer.cocoon.invalid").unwrap();
        let (accepted, connected) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
        connected.unwrap();
        let peer = dev.peer_identity(accepted.unwrap().get_ref().1).unwrap();
        assert_eq!(peer.role, Role::Worker);
        assert_eq!(peer.tee, att::TeeKind::Simulated);
        assert!(peer.insecure);
    }
}
