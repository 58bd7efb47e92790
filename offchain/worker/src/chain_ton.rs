//! [`TonChain`]: [`WorkerChain`] over a toncenter v2 client (toncenter, ton-http-api or the devnet),
//! reading the contracts' storage with `cocoon-contracts` and sending claims from the owner wallet.

use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::address::stake_address;
use cocoon_contracts::chain::{ChainError, RootHandle, StakeHandle, TraceOptions, message, send};
use cocoon_contracts::fees::STAKE_CLAIM_VALUE;
use cocoon_contracts::messages::StakeClaimPayout;
use cocoon_contracts::state::{ROLE_PROXY, ROLE_WORKER, STAKE_ACTIVE, StakeStorage};
use cocoon_contracts::statements::SignedPayout;
use cocoon_protocol::PriceParams;
use cocoon_ton::{TonAddress, TonClient, Wallet};

use crate::chain::{ClaimReceipt, RootView, StakeView, WorkerChain, WorkerChainError};

/// The chain through a [`TonClient`].
pub struct TonChain {
    client: Arc<dyn TonClient>,
    root: TonAddress,
    owner: TonAddress,
    wallet: Option<Wallet>,
    wait: Duration,
}

impl std::fmt::Debug for TonChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonChain")
            .field("root", &self.root.to_hex())
            .field("owner", &self.owner.to_hex())
            .field("can_claim", &self.wallet.is_some())
            .finish_non_exhaustive()
    }
}

fn chain_err(e: ChainError) -> WorkerChainError {
    match e {
        ChainError::Contract { .. } | ChainError::Aborted(_) => {
            WorkerChainError::Refused(e.to_string())
        }
        other => WorkerChainError::Unavailable(other.to_string()),
    }
}

/// The price parameters receipts are priced with, from the root's network parameters.
pub fn price_params(
    version: u32,
    p: &cocoon_contracts::messages::NetworkParams,
) -> Result<PriceParams, WorkerChainError> {
    Ok(PriceParams {
        version,
        price_per_token: u64::try_from(p.price_per_token).map_err(|_| {
            WorkerChainError::Unavailable("root price_per_token exceeds u64".into())
        })?,
        prompt_multiplier: p.prompt_mult,
        cached_multiplier: p.cached_mult,
        completion_multiplier: p.completion_mult,
        reasoning_multiplier: p.reasoning_mult,
        worker_share_bps: u32::from(p.worker_share_bps),
    })
}

impl TonChain {
    /// Reads `root` for `owner`'s worker; `wallet` (the owner's, if given) sends claims.
    pub fn new(
        client: Arc<dyn TonClient>,
        root: TonAddress,
        owner: TonAddress,
        wallet: Option<Wallet>,
    ) -> Self {
        TonChain {
            client,
            root,
            owner,
            wallet,
            wait: cocoon_contracts::chain::DEFAULT_WAIT,
        }
    }

    /// How long a claim waits for each of its transactions.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The worker stake's address (root, owner, worker role).
    pub fn stake_address(&self) -> Result<TonAddress, WorkerChainError> {
        stake_address(&self.root, &self.owner, ROLE_WORKER)
            .map_err(|e| WorkerChainError::Unavailable(e.to_string()))
    }

    async fn stake_storage(
        &self,
        address: &TonAddress,
    ) -> Result<Option<StakeStorage>, WorkerChainError> {
        match StakeHandle::at(address.clone())
            .storage(self.client.as_ref())
            .await
        {
            Ok(st) => Ok(Some(st)),
            Err(ChainError::NotDeployed(_)) => Ok(None),
            Err(e) => Err(chain_err(e)),
        }
    }
}

#[async_trait::async_trait]
impl WorkerChain for TonChain {
    fn owner(&self) -> &TonAddress {
        &self.owner
    }

    fn can_claim(&self) -> bool {
        self.wallet.is_some()
    }

    async fn root(&self) -> Result<RootView, WorkerChainError> {
        let st = RootHandle::at(self.root.clone())
            .storage(self.client.as_ref())
            .await
            .map_err(chain_err)?;
        Ok(RootView {
            params_version: st.params_version,
            params: price_params(st.params_version, &st.params)?,
            worker_images: st.registry.worker_images,
            proxy_images: st.registry.proxy_images,
            kms_images: st.kms_images,
            models: st.registry.models,
        })
    }

    async fn stake(&self) -> Result<Option<StakeView>, WorkerChainError> {
        let address = self.stake_address()?;
        Ok(self.stake_storage(&address).await?.map(|st| StakeView {
            can_serve: st.can_serve(),
            key: st.key,
            staked: st.staked,
            min_stake: st.cold.as_ref().map_or(0, |c| c.min_stake),
        }))
    }

    async fn vault_key(&self, vault: &TonAddress) -> Result<Option<[u8; 32]>, WorkerChainError> {
        Ok(self.stake_storage(vault).await?.and_then(|st| {
            (st.state == STAKE_ACTIVE
                && st.identity.root == self.root
                && st.identity.role == ROLE_PROXY)
                .then_some(st.key)
        }))
    }

    async fn payout_claimed(&self, vault: &TonAddress) -> Result<(u32, u128), WorkerChainError> {
        let id = cocoon_contracts::codec::account_id(&self.owner);
        Ok(self
            .stake_storage(vault)
            .await?
            .and_then(|st| st.payouts.get(&id).map(|r| (r.seqno, r.paid)))
            .unwrap_or((0, 0)))
    }

    async fn claim(&self, voucher: &SignedPayout) -> Result<ClaimReceipt, WorkerChainError> {
        let wallet = self.wallet.as_ref().ok_or(WorkerChainError::NoWallet)?;
        let vault = voucher.statement.vault.clone();
        let transfer = message(
            &vault,
            STAKE_CLAIM_VALUE,
            &StakeClaimPayout::new(0, voucher.clone()),
        )
        .map_err(chain_err)?;
        let options = TraceOptions {
            wait: self.wait,
            hops: 2,
        };
        let outcome = send(self.client.as_ref(), wallet, transfer, options)
            .await
            .map_err(chain_err)?;
        let fees = outcome.fees();
        let received = outcome.value_sent_to(&self.owner);
        Ok(ClaimReceipt {
            tx_hash: hex::encode(outcome.wallet_tx.id.hash.as_slice()),
            lt: outcome.wallet_tx.id.lt,
            fees,
            received,
        })
    }
}
