//! The TLS seam of every hop.
//!
//! [`HopTls`] is what the daemons need from attestation: a server and a client `rustls` config for mutual
//! TLS 1.3, the identity of the peer on an established connection, and the signing key the attestation
//! binds (the worker signs receipts with it). `cocoon-attestation` provides the real RA-TLS
//! implementation; [`DevTls`] is a development stand-in: a self-signed Ed25519 certificate with no quote,
//! which accepts any Ed25519 peer (or only pinned keys) and reports every peer as **insecure**.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use thiserror::Error;

/// The role a peer plays on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A client gateway.
    Client,
    /// A proxy.
    Proxy,
    /// A worker.
    Worker,
}

/// Who is on the other end of a connection, as its attestation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The role its certificate claims, when it claims one.
    pub role: Option<Role>,
    /// Its Ed25519 key (bound by the quote under RA-TLS).
    pub public_key: [u8; 32],
    /// Its TEE image hash (zero when not attested).
    pub image_hash: [u8; 32],
    /// TEE kind, e.g. `tdx`, `simulated`, `none`.
    pub tee: String,
    /// True when the attestation is simulated or absent.
    pub insecure: bool,
}

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
}

/// Development TLS: self-signed Ed25519, no quote, every peer insecure.
pub struct DevTls {
    key: SigningKey,
    role: Role,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for DevTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTls")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows it.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 v1 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The raw Ed25519 key inside a certificate, if it has exactly one Ed25519 SPKI.
pub fn ed25519_key_of_cert(der: &[u8]) -> Option<[u8; 32]> {
    let mut found = None;
    for (i, w) in der.windows(ED25519_SPKI_PREFIX.len()).enumerate() {
        if w == ED25519_SPKI_PREFIX {
            if found.is_some() {
                return None;
            }
            let start = i + ED25519_SPKI_PREFIX.len();
            let key: [u8; 32] = der.get(start..start + 32)?.try_into().ok()?;
            found = Some(key);
        }
    }
    found
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl DevTls {
    /// Development TLS for `role` with `key`. Logs a loud warning: nothing here is attested.
    pub fn new(role: Role, key: SigningKey) -> Result<DevTls, TlsError> {
        tracing::warn!(
            ?role,
            "INSECURE development TLS: no attestation, every peer is accepted as insecure"
        );
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(key.as_bytes());
        let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8);
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let name = match role {
            Role::Client => "client.cocoon.invalid",
            Role::Proxy => "proxy.cocoon.invalid",
            Role::Worker => "worker.cocoon.invalid",
        };
        let params = rcgen::CertificateParams::new(vec![name.to_owned()])
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let cert = params
            .self_signed(&kp)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let cert_der = CertificateDer::from(cert.der().to_vec());
        let prov = provider();
        let verifier = Arc::new(AnyEd25519 {
            algs: prov.signature_verification_algorithms,
        });
        let mut server = rustls::ServerConfig::builder_with_provider(prov.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(
                vec![cert_der.clone()],
                PrivateKeyDer::Pkcs8(pkcs8.clone_key()),
            )?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(prov)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![cert_der], PrivateKeyDer::Pkcs8(pkcs8))?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(DevTls {
            key,
            role,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// Development TLS with a fresh random key.
    pub fn generate(role: Role) -> Result<DevTls, TlsError> {
        DevTls::new(role, SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Development TLS from a daemon's `dev_key` setting: a fresh key when empty, else the hex seed.
    pub fn from_dev_key(role: Role, dev_key: &str) -> Result<DevTls, TlsError> {
        if dev_key.is_empty() {
            return DevTls::generate(role);
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(dev_key, &mut seed).map_err(|_| TlsError::DevKey)?;
        DevTls::new(role, SigningKey::from_bytes(&seed))
    }
}

impl HopTls for DevTls {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }
    fn peer_identity(&self, conn: &rustls::CommonState) -> Option<PeerIdentity> {
        let cert = conn.peer_certificates()?.first()?;
        Some(PeerIdentity {
            role: None,
            public_key: ed25519_key_of_cert(cert)?,
            image_hash: [0; 32],
            tee: "none".into(),
            insecure: true,
        })
    }
    fn identity(&self) -> PeerIdentity {
        PeerIdentity {
            role: Some(self.role),
            public_key: self.key.verifying_key().to_bytes(),
            image_hash: [0; 32],
            tee: "none".into(),
            insecure: true,
        }
    }
    fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// Accepts any Ed25519 certificate whose key signed the TLS 1.3 handshake; TLS 1.2 is refused.
#[derive(Debug)]
struct AnyEd25519 {
    algs: WebPkiSupportedAlgorithms,
}

impl AnyEd25519 {
    fn check_cert(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        ed25519_key_of_cert(end_entity)
            .map(|_| ())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }
}

impl ServerCertVerifier for AnyEd25519 {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_cert(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for AnyEd25519 {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_cert(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn dev_key_setting_is_a_seed_or_empty() {
        let seed = "11".repeat(32);
        let a = DevTls::from_dev_key(Role::Worker, &seed).unwrap();
        let b = DevTls::from_dev_key(Role::Worker, &seed).unwrap();
        assert_eq!(a.identity().public_key, b.identity().public_key);
        let fresh = DevTls::from_dev_key(Role::Worker, "").unwrap();
        assert_ne!(fresh.identity().public_key, a.identity().public_key);
        for bad in ["zz", "11", &"11".repeat(33)] {
            assert!(matches!(
                DevTls::from_dev_key(Role::Worker, bad),
                Err(TlsError::DevKey)
            ));
        }
    }

    #[tokio::test]
    async fn mutual_tls13_reports_both_keys() {
        let server = DevTls::generate(Role::Proxy).unwrap();
        let client = DevTls::generate(Role::Client).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server_config());
        let client_pk = client.identity().public_key;
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let peer = DevTls::generate(Role::Proxy)
                .unwrap()
                .peer_identity(tls.get_ref().1)
                .unwrap();
            assert_eq!(
                tls.get_ref().1.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
            let mut b = [0u8; 4];
            tls.read_exact(&mut b).await.unwrap();
            (peer, b)
        });
        let connector = tokio_rustls::TlsConnector::from(client.client_config());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("proxy.cocoon.invalid").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let seen = client.peer_identity(tls.get_ref().1).unwrap();
        assert_eq!(seen.public_key, server.identity().public_key);
        assert!(seen.insecure);
        tls.write_all(b"ping").await.unwrap();
        let (peer, b) = srv.await.unwrap();
        assert_eq!(peer.public_key, client_pk);
        assert_eq!(&b, b"ping");
    }
}
