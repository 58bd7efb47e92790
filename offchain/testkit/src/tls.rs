//! [`TlsKit`]: the TLS each role of a test network uses — development TLS (plain Ed25519
//! certificates) or RA-TLS with simulated quotes under the insecure development policy.

use std::sync::Arc;

use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_daemon::ra_tls::RaTls;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use ed25519_dalek::SigningKey;

use crate::NetworkError;

/// Makes the TLS of one more worker (each worker gets its own key).
pub type WorkerTlsFactory = Arc<dyn Fn() -> Result<Arc<dyn HopTls>, NetworkError> + Send + Sync>;

/// The TLS of each role.
#[derive(Clone)]
pub struct TlsKit {
    /// The proxy's (both listeners).
    pub proxy: Arc<dyn HopTls>,
    /// The gateway's (its key is the client key escrows are opened for).
    pub gateway: Arc<dyn HopTls>,
    /// One per worker.
    pub worker: WorkerTlsFactory,
    /// The image allowlist every role's policy reads (simulated kits): tests revoke images in it.
    pub allowlist: Option<Arc<att::InMemoryAllowlist>>,
}

impl std::fmt::Debug for TlsKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKit").finish_non_exhaustive()
    }
}

fn dev(role: Role) -> Result<Arc<dyn HopTls>, NetworkError> {
    Ok(Arc::new(DevTls::generate(role).map_err(NetworkError::tls)?))
}

fn fresh_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

impl TlsKit {
    /// Development TLS on every hop (no attestation).
    pub fn dev() -> Result<TlsKit, NetworkError> {
        Ok(TlsKit {
            proxy: dev(Role::Proxy)?,
            gateway: dev(Role::Client)?,
            worker: Arc::new(|| dev(Role::Worker)),
            allowlist: None,
        })
    }

    /// RA-TLS with simulated quotes: the proxy's image is `proxy_label`'s, every worker's is
    /// `worker_label`'s, both allowed; the gateway is an unattested client. Simulated evidence is
    /// accepted only because the policy is the insecure development one.
    pub fn simulated(proxy_label: &str, worker_label: &str) -> Result<TlsKit, NetworkError> {
        let proxy_image = SimulatedProvider::new(proxy_label);
        let allow = Arc::new(att::InMemoryAllowlist::new());
        allow.allow(att::Role::Proxy, proxy_image.image_hash());
        allow.allow(
            att::Role::Worker,
            SimulatedProvider::new(worker_label).image_hash(),
        );
        let list: Arc<dyn att::ImageAllowlist> = allow.clone();
        let proxy_policy =
            att::Policy::strict(&[att::Role::Client, att::Role::Worker], list.clone())
                .insecure_dev()
                .accept_unattested(att::Role::Client);
        let to_proxy = att::Policy::strict(&[att::Role::Proxy], list).insecure_dev();
        let proxy = RaTls::new(
            Role::Proxy,
            fresh_key(),
            Some(Arc::new(proxy_image)),
            proxy_policy,
        )
        .map_err(NetworkError::tls)?;
        let gateway = RaTls::new(Role::Client, fresh_key(), None, to_proxy.clone())
            .map_err(NetworkError::tls)?;
        let worker_label = worker_label.to_owned();
        let worker: WorkerTlsFactory = Arc::new(move || {
            let provider = Arc::new(SimulatedProvider::new(&worker_label));
            let tls = RaTls::new(Role::Worker, fresh_key(), Some(provider), to_proxy.clone())
                .map_err(NetworkError::tls)?;
            Ok(Arc::new(tls) as Arc<dyn HopTls>)
        });
        Ok(TlsKit {
            proxy: Arc::new(proxy),
            gateway: Arc::new(gateway),
            worker,
            allowlist: Some(allow),
        })
    }
}
