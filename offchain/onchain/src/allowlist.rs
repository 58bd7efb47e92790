//! The root contract as the source of truth for attestation: its image allowlists (per role) and its
//! registered proxies.

use std::sync::Arc;

use cocoon_attestation::policy::{AllowlistSnapshot, AllowlistSource, BoxFuture, ImageStatus};
use cocoon_attestation::{AttestError, Role};
use cocoon_contracts::state::RootStorage;
use cocoon_ton::{TonAddress, TonClient, TonHash};

use crate::OnchainError;
use crate::tx::fetch_state;

/// Reads the root's storage (it must be deployed).
pub async fn root_state(
    client: &dyn TonClient,
    root: &TonAddress,
) -> Result<RootStorage, OnchainError> {
    fetch_state(client, root)
        .await?
        .ok_or_else(|| OnchainError::NotDeployed(root.to_hex()))
}

/// The allowlist snapshot a root's storage defines: worker, proxy and key-service images, allowed when their
/// `revoked_at` is 0, revoked at that time otherwise. Clients have no images (they are unattested).
pub fn snapshot_of(root: &RootStorage) -> AllowlistSnapshot {
    let status = |revoked_at: u32| {
        if revoked_at == 0 {
            ImageStatus::Allowed
        } else {
            ImageStatus::Revoked {
                at: u64::from(revoked_at),
            }
        }
    };
    let mut snap = AllowlistSnapshot::new();
    for (hash, at) in &root.registry.worker_images {
        snap.insert((Role::Worker, *hash), status(*at));
    }
    for (hash, at) in &root.registry.proxy_images {
        snap.insert((Role::Proxy, *hash), status(*at));
    }
    for (hash, at) in &root.kms_images {
        snap.insert((Role::Kms, *hash), status(*at));
    }
    snap
}

/// The root's image allowlist as a `cocoon_attestation::CachingAllowlist` source.
#[derive(Clone)]
pub struct RootAllowlist {
    client: Arc<dyn TonClient>,
    root: TonAddress,
}

impl std::fmt::Debug for RootAllowlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootAllowlist")
            .field("root", &self.root.to_hex())
            .finish_non_exhaustive()
    }
}

impl RootAllowlist {
    /// A source reading `root` through `client`.
    pub fn new(client: Arc<dyn TonClient>, root: TonAddress) -> RootAllowlist {
        RootAllowlist { client, root }
    }
}

impl AllowlistSource for RootAllowlist {
    fn fetch(&self) -> BoxFuture<'_, cocoon_attestation::Result<AllowlistSnapshot>> {
        Box::pin(async move {
            root_state(self.client.as_ref(), &self.root)
                .await
                .map(|st| snapshot_of(&st))
                .map_err(|e| AttestError::AllowlistUnavailable(e.to_string()))
        })
    }
}

/// A proxy registered in the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredProxy {
    /// The operator's wallet (the escrows' counterparty).
    pub operator: TonAddress,
    /// The key the proxy signs vouchers with and presents in its RA-TLS certificate.
    pub key: [u8; 32],
    /// Its endpoints as registered (comma-separated `host:port` of the client listener).
    pub endpoints: String,
}

/// The proxies registered in the root, in account-id order.
pub async fn registered_proxies(
    client: &dyn TonClient,
    root: &TonAddress,
) -> Result<Vec<RegisteredProxy>, OnchainError> {
    let st = root_state(client, root).await?;
    let workchain = root.workchain;
    Ok(st
        .registry
        .proxies
        .iter()
        .map(|(id, info)| RegisteredProxy {
            operator: TonAddress::new(workchain, TonHash::from(*id)),
            key: info.key,
            endpoints: info.endpoints.clone(),
        })
        .collect())
}
