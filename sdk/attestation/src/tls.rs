//! rustls 0.23 configurations for attested, mutual, TLS 1.3-only connections.
//!
//! Stock webpki verification refuses our critical extensions and self-signed certificates, so both
//! sides use our verifiers: the certificate is judged by [`PeerVerifier`] (attestation), and the
//! handshake signature is checked against the certificate's raw Ed25519 key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::cert::parse_certificate;
use crate::verify::{PeerVerifier, identity_of};
use crate::{AttestError, CredentialManager, PeerIdentity, Policy, Result};

fn tls_error(e: AttestError) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(e),
    )))
}

/// The [`AttestError`] inside a rustls error produced by our verifiers, if that is what it is.
pub fn attest_error(e: &rustls::Error) -> Option<&AttestError> {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref()
        }
        _ => None,
    }
}

/// The [`AttestError`] behind an I/O error from tokio-rustls, if our verifier refused the peer.
pub fn attest_error_in_io(e: &std::io::Error) -> Option<&AttestError> {
    e.get_ref()?
        .downcast_ref::<rustls::Error>()
        .and_then(attest_error)
}

fn check_ed25519(
    message: &[u8],
    key: &ed25519_dalek::VerifyingKey,
    dss: &DigitallySignedStruct,
) -> Result<(), rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(tls_error(AttestError::UnsupportedSignature(format!(
            "{:?}",
            dss.scheme
        ))));
    }
    let sig = ed25519_dalek::Signature::from_slice(dss.signature())
        .map_err(|_| tls_error(AttestError::BadHandshakeSignature))?;
    key.verify_strict(message, &sig)
        .map_err(|_| tls_error(AttestError::BadHandshakeSignature))
}

/// Our certificate verifier for both directions.
#[derive(Debug)]
pub struct AttestedVerifier {
    peers: Arc<PeerVerifier>,
}

impl AttestedVerifier {
    /// A verifier sharing `peers` (and its cache).
    pub fn new(peers: Arc<PeerVerifier>) -> Self {
        AttestedVerifier { peers }
    }

    fn cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(tls_error(AttestError::MalformedCertificate(
                "RA-TLS certificates are self-signed; got a chain".into(),
            )));
        }
        self.peers.verify(end_entity).map(|_| ()).map_err(tls_error)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = self.peers.verified_key(cert).map_err(tls_error)?;
        check_ed25519(message, &key, dss)?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

fn tls12_refused() -> rustls::Error {
    tls_error(AttestError::UnsupportedSignature(
        "TLS 1.2 is not accepted".into(),
    ))
}

/// The handshake-signature half of both verifier traits (rustls declares it twice, identically):
/// TLS 1.2 refused, TLS 1.3 Ed25519 against the verified certificate's key.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(tls12_refused())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

impl ServerCertVerifier for AttestedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name means nothing here: who the server is comes from its attestation.
        self.cert(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ClientCertVerifier for AttestedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.cert(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!();

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// Presents the manager's current certificate (renewed before expiry) on both sides.
#[derive(Debug)]
pub struct CredentialResolver(CredentialManager);

impl rustls::server::ResolvesServerCert for CredentialResolver {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.current().certified_key())
    }
}

impl rustls::client::ResolvesClientCert for CredentialResolver {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.current().certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3 server config presenting `cred` and requiring clients that satisfy `policy`.
pub fn server_config(
    cred: impl Into<CredentialManager>,
    policy: Policy,
) -> Result<rustls::ServerConfig> {
    server_config_with(cred, Arc::new(PeerVerifier::new(policy)))
}

/// As [`server_config`], sharing a [`PeerVerifier`] (and its cache) between configs.
pub fn server_config_with(
    cred: impl Into<CredentialManager>,
    peers: Arc<PeerVerifier>,
) -> Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AttestError::Build(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(Arc::new(AttestedVerifier::new(peers)))
        .with_cert_resolver(Arc::new(CredentialResolver(cred.into())));
    // No resumption: a resumed session skips the certificate verifier, so it would outlive the
    // peer's certificate, its image's revocation and its stake (issue 16). Every connection is a
    // full handshake judged by the policy as it stands.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A TLS 1.3 client config presenting `cred` and requiring a server that satisfies `policy`.
/// The server name passed to `connect` is not checked: the server's identity is its attestation.
pub fn client_config(
    cred: impl Into<CredentialManager>,
    policy: Policy,
) -> Result<rustls::ClientConfig> {
    client_config_with(cred, Arc::new(PeerVerifier::new(policy)))
}

/// As [`client_config`], sharing a [`PeerVerifier`] (and its cache) between configs.
pub fn client_config_with(
    cred: impl Into<CredentialManager>,
    peers: Arc<PeerVerifier>,
) -> Result<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AttestError::Build(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AttestedVerifier::new(peers)))
        .with_client_cert_resolver(Arc::new(CredentialResolver(cred.into())));
    // No resumption (see `server_config_with`): tickets are neither stored nor offered.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The peer's identity on an established connection whose config came from this module (so the
/// certificate was verified during the handshake). `None` before the handshake or without a
/// parseable RA-TLS certificate.
pub fn peer_identity(conn: &rustls::CommonState) -> Option<PeerIdentity> {
    peer_identity_from_certs(conn.peer_certificates()?)
}

/// As [`peer_identity`], from the peer's certificate list.
pub fn peer_identity_from_certs(certs: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
    let parsed = parse_certificate(certs.first()?).ok()?;
    identity_of(&parsed).ok()
}
