//! [`OnchainView`]: the proxy's read access, answered from a cache refreshed in the background.
//! (`cocoon-proxy` implements its `ChainView` trait over it.)

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use cocoon_contracts::Bits256;
use cocoon_contracts::address::{stake_address, vault_address};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::NetworkParams;
use cocoon_contracts::state::{ESCROW_OPEN, EscrowStorage, ROLE_WORKER, RootStorage, StakeStorage};
use cocoon_protocol::PriceParams;
use cocoon_ton::{TonAddress, TonClient};

use crate::OnchainError;
use crate::tx::fetch_state;

/// What the view reads and how often.
#[derive(Debug, Clone)]
pub struct OnchainConfig {
    /// The root contract.
    pub root: TonAddress,
    /// The proxy operator's wallet (owner of the proxy stake, the escrows' counterparty).
    pub proxy: TonAddress,
    /// How often the cache is refreshed.
    pub refresh: Duration,
    /// Accept peers without attestation (simulated TEE, development TLS) if their stake is good.
    /// INSECURE: development mode only.
    pub allow_unattested: bool,
}

/// A client's open escrow as the chain shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowInfo {
    /// Account id of the escrow contract (vouchers are bound to it).
    pub escrow: [u8; 32],
    /// Credit the escrow guarantees now: the locked stake, net of what it holds, nanoTON.
    pub credit: u128,
    /// The cumulative charge the escrow has accepted, nanoTON.
    pub settled: u128,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    params: PriceParams,
    network_id: i32,
    worker_images: BTreeMap<Bits256, u32>,
    escrows: HashMap<[u8; 32], EscrowInfo>,
    /// Worker key → its stake may serve and is bound to this key.
    workers: HashMap<[u8; 32], bool>,
}

#[derive(Debug, Default)]
struct Directory {
    clients: HashMap<[u8; 32], TonAddress>,
    workers: HashMap<[u8; 32], TonAddress>,
}

/// The chain state a proxy needs, cached and refreshed in the background.
pub struct OnchainView {
    client: Arc<dyn TonClient>,
    config: OnchainConfig,
    vault: TonAddress,
    directory: RwLock<Directory>,
    snapshot: RwLock<Snapshot>,
}

impl std::fmt::Debug for OnchainView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnchainView")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The proxy's price parameters from the root's network parameters.
pub fn price_params(version: u32, p: &NetworkParams) -> Result<PriceParams, OnchainError> {
    Ok(PriceParams {
        version,
        price_per_token: u64::try_from(p.price_per_token)
            .map_err(|_| OnchainError::Invalid("price_per_token exceeds u64".into()))?,
        prompt_multiplier: p.prompt_mult,
        cached_multiplier: p.cached_mult,
        completion_multiplier: p.completion_mult,
        reasoning_multiplier: p.reasoning_mult,
        worker_share_bps: u32::from(p.worker_share_bps),
    })
}

fn escrow_escrow_info(address: &TonAddress, st: &EscrowStorage) -> Option<EscrowInfo> {
    if st.state != ESCROW_OPEN {
        return None;
    }
    Some(EscrowInfo {
        escrow: account_id(address),
        credit: st.stake.min(st.balance),
        settled: st.charged,
    })
}

impl OnchainView {
    /// Reads the chain once (the root must be deployed) and returns the view.
    pub async fn load(
        client: Arc<dyn TonClient>,
        config: OnchainConfig,
    ) -> Result<Arc<OnchainView>, OnchainError> {
        let vault = vault_address(&config.root, &config.proxy)?;
        let view = Arc::new(OnchainView {
            client,
            config,
            vault,
            directory: RwLock::new(Directory::default()),
            snapshot: RwLock::new(Snapshot::default()),
        });
        view.refresh().await?;
        Ok(view)
    }

    /// The chain client.
    pub fn client(&self) -> &Arc<dyn TonClient> {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &OnchainConfig {
        &self.config
    }

    /// The proxy's vault (its proxy-role stake), which pays workers.
    pub fn vault(&self) -> &TonAddress {
        &self.vault
    }

    /// Binds a client's TLS key to its wallet (its escrow is derived from it).
    pub fn watch_client(&self, key: [u8; 32], wallet: TonAddress) {
        write(&self.directory).clients.insert(key, wallet);
    }

    /// Binds a worker's TLS key to the wallet that owns its stake and receives its payouts.
    pub fn watch_worker(&self, key: [u8; 32], owner: TonAddress) {
        write(&self.directory).workers.insert(key, owner);
    }

    /// The wallet a client key was bound to.
    pub fn client_wallet(&self, key: &[u8; 32]) -> Option<TonAddress> {
        read(&self.directory).clients.get(key).cloned()
    }

    /// The wallet a worker key was bound to.
    pub fn worker_owner(&self, key: &[u8; 32]) -> Option<TonAddress> {
        read(&self.directory).workers.get(key).cloned()
    }

    /// The escrow of a client wallet with this proxy.
    pub fn escrow_address(&self, client_wallet: &TonAddress) -> Result<TonAddress, OnchainError> {
        Ok(cocoon_contracts::address::escrow_address(
            &self.config.root,
            client_wallet,
            &self.config.proxy,
        )?)
    }

    /// Reads everything the cache holds from the chain and swaps it in.
    pub async fn refresh(&self) -> Result<(), OnchainError> {
        let client = self.client.as_ref();
        let root: RootStorage = fetch_state(client, &self.config.root)
            .await?
            .ok_or_else(|| OnchainError::NotDeployed(self.config.root.to_hex()))?;
        let mut next = Snapshot {
            params: price_params(root.params_version, &root.params)?,
            network_id: root.network_id,
            worker_images: root.registry.worker_images.clone(),
            ..Snapshot::default()
        };
        let (clients, workers) = {
            let d = read(&self.directory);
            (d.clients.clone(), d.workers.clone())
        };
        for (key, wallet) in clients {
            let address = self.escrow_address(&wallet)?;
            if let Some(st) = fetch_state::<EscrowStorage>(client, &address).await?
                && let Some(info) = escrow_escrow_info(&address, &st)
            {
                next.escrows.insert(key, info);
            }
        }
        for (key, owner) in workers {
            let address = stake_address(&self.config.root, &owner, ROLE_WORKER)?;
            let ok = fetch_state::<StakeStorage>(client, &address)
                .await?
                .is_some_and(|st| st.key == key && st.can_serve());
            next.workers.insert(key, ok);
        }
        *write(&self.snapshot) = next;
        Ok(())
    }

    /// Refreshes every `config.refresh` until the view is dropped; failures keep the last snapshot.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<OnchainView> = Arc::downgrade(self);
        let every = self.config.refresh;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(view) = weak.upgrade() else { return };
                if let Err(e) = view.refresh().await {
                    tracing::warn!(error = %e, "chain refresh failed; keeping the last snapshot");
                }
            }
        })
    }

    /// Whether an image hash is allowed (and not revoked) for workers.
    pub fn worker_image_allowed(&self, image: &[u8; 32]) -> bool {
        read(&self.snapshot).worker_images.get(image) == Some(&0)
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl OnchainView {
    /// Current network price parameters.
    pub fn params(&self) -> PriceParams {
        read(&self.snapshot).params
    }

    /// The network id vouchers are bound to.
    pub fn network_id(&self) -> i32 {
        read(&self.snapshot).network_id
    }

    /// The open escrow of the client with this TLS key (after [`OnchainView::watch_client`]).
    pub fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        read(&self.snapshot).escrows.get(client_key).copied()
    }

    /// Whether a worker may serve: its stake is bound to `public_key` and may serve, and its image is
    /// allowed (an unattested peer, zero image, only when `allow_unattested`, loudly).
    pub fn worker_allowed(
        &self,
        public_key: &[u8; 32],
        image_hash: &[u8; 32],
        insecure: bool,
    ) -> bool {
        let snap = read(&self.snapshot);
        let staked = snap.workers.get(public_key) == Some(&true);
        let image_ok = if insecure && *image_hash == [0; 32] {
            if self.config.allow_unattested {
                tracing::warn!("INSECURE development mode: accepting an unattested worker");
            }
            self.config.allow_unattested
        } else {
            snap.worker_images.get(image_hash) == Some(&0)
        };
        staked && image_ok
    }

    /// Account id of the contract that pays workers (the proxy's vault).
    pub fn payer(&self) -> [u8; 32] {
        account_id(&self.vault)
    }
}
