//! [`HopTls`] over `cocoon-attestation`: RA-TLS certificates carrying a quote, verified against a
//! [`cocoon_attestation::Policy`] (image allowlist per role, DCAP, freshness; simulated quotes only
//! when the policy explicitly allows insecure development mode).

use std::sync::Arc;

use cocoon_attestation as att;
use ed25519_dalek::SigningKey;

use crate::tls::{HopTls, PeerIdentity, Role, TlsError};

/// RA-TLS for one daemon.
pub struct RaTls {
    key: SigningKey,
    _creds: att::CredentialManager,
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

fn to_att(role: Role) -> att::Role {
    match role {
        Role::Client => att::Role::Client,
        Role::Proxy => att::Role::Proxy,
        Role::Worker => att::Role::Worker,
    }
}

fn from_att(role: att::Role) -> Role {
    match role {
        att::Role::Client => Role::Client,
        att::Role::Proxy => Role::Proxy,
        att::Role::Worker => Role::Worker,
    }
}

fn convert(p: att::PeerIdentity) -> PeerIdentity {
    PeerIdentity {
        role: Some(from_att(p.role)),
        public_key: p.public_key,
        image_hash: p.image_hash,
        tee: p.tee.as_str().to_owned(),
        insecure: p.insecure || matches!(p.tee, att::TeeKind::Simulated | att::TeeKind::None),
    }
}

fn build(e: att::AttestError) -> TlsError {
    TlsError::Certificate(e.to_string())
}

impl RaTls {
    /// RA-TLS for `role` with `key`; `provider` produces quotes (`None`: an unattested client
    /// certificate); `policy` says what peers must prove.
    pub fn new(
        role: Role,
        key: SigningKey,
        provider: Option<Arc<dyn att::QuoteProvider>>,
        policy: att::Policy,
    ) -> Result<RaTls, TlsError> {
        let creds = att::CredentialManager::new(
            to_att(role),
            key.clone(),
            provider,
            Arc::new(att::SystemClock),
            std::time::Duration::from_secs(24 * 3600),
        )
        .map_err(build)?;
        let own =
            att::tls::peer_identity_from_certs(std::slice::from_ref(creds.current().cert_der()))
                .ok_or_else(|| {
                    TlsError::Certificate("own RA-TLS certificate does not parse".into())
                })?;
        let mut server = att::server_config(creds.clone(), policy.clone()).map_err(build)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = att::client_config(creds.clone(), policy).map_err(build)?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(RaTls {
            key,
            _creds: creds,
            server: Arc::new(server),
            client: Arc::new(client),
            identity: convert(own),
        })
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
        att::peer_identity(conn).map(convert)
    }
    fn identity(&self) -> PeerIdentity {
        self.identity.clone()
    }
    fn signing_key(&self) -> &SigningKey {
        // The credential manager renews certificates for this same key.
        &self.key
    }
}
