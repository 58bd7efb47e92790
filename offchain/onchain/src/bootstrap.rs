//! Deploying and configuring a network from wallets: the root, its allowlists, a registered proxy,
//! stakes and escrows. What `cocoon demo` and the integration tests run on the devnet.

use std::time::Duration;

use cocoon_contracts::Bits256;
use cocoon_contracts::address::{root_deployment, root_initial_storage};
use cocoon_contracts::messages::{
    NetworkParams, ProxyInfo, RootOpenEscrow, RootOpenStake, RootSetImage, RootSetModel,
    RootSetProxy,
};
use cocoon_ton::{TonAddress, TonClient, Transfer, Wallet};

use crate::OnchainError;
use crate::tx::{Outcome, message, send};

/// Value attached to governance operations (the root's minimum).
pub const OWNER_OP_VALUE: u128 = 10_000_000;
/// The root's minimum for opening a stake or an escrow (the rest is forwarded to the child).
pub const OPEN_VALUE: u128 = 50_000_000;
/// How long each step waits for its transactions.
pub const WAIT: Duration = Duration::from_secs(60);

/// Development network parameters: 1000 nanoTON per token, completion 4×, cached 0.1×, workers
/// keep 90 %, 1 TON minimum stakes, one-hour delays.
pub fn dev_params() -> NetworkParams {
    NetworkParams {
        price_per_token: 1000,
        prompt_mult: 1000,
        cached_mult: 100,
        completion_mult: 4000,
        reasoning_mult: 4000,
        worker_share_bps: 9000,
        min_worker_stake: 1_000_000_000,
        min_proxy_stake: 1_000_000_000,
        unbond_delay: 3600,
        close_delay: 3600,
        equivocation_slash_bps: 5000,
        revoked_slash_bps: 5000,
        fault_slash_bps: 100,
        reporter_reward_bps: 1000,
        burn_slashed: false,
        grace_period: 600,
        fault_cap: 3,
        fault_period: 86_400,
    }
}

/// Governance and participants acting on one root.
#[derive(Debug, Clone)]
pub struct Root {
    /// The root's address.
    pub address: TonAddress,
}

impl Root {
    /// Deploys a root owned by `owner` with `value` nanoTON as its balance.
    pub async fn deploy(
        client: &dyn TonClient,
        owner: &Wallet,
        network_id: i32,
        params: NetworkParams,
        value: u128,
    ) -> Result<(Root, Outcome), OnchainError> {
        let d = root_deployment(&root_initial_storage(
            owner.address().clone(),
            network_id,
            params,
        )?)?;
        let t = Transfer::new(d.address.clone(), value)
            .with_bounce(false)
            .with_state_init(d.state_init()?.to_arc());
        let outcome = send(client, owner, t, WAIT, 1).await?;
        Ok((Root { address: d.address }, outcome))
    }

    async fn owner_op(
        &self,
        client: &dyn TonClient,
        owner: &Wallet,
        body: &impl cocoon_contracts::CellCodec,
    ) -> Result<Outcome, OnchainError> {
        let t = message(&self.address, OWNER_OP_VALUE, body)?;
        send(client, owner, t, WAIT, 1).await
    }

    /// Allows an image hash for a role (0 worker, 1 proxy).
    pub async fn allow_image(
        &self,
        client: &dyn TonClient,
        owner: &Wallet,
        role: u8,
        image_hash: Bits256,
    ) -> Result<Outcome, OnchainError> {
        let body = RootSetImage {
            query_id: 0,
            role,
            image_hash,
            allowed: true,
        };
        self.owner_op(client, owner, &body).await
    }

    /// Names an allowed model.
    pub async fn allow_model(
        &self,
        client: &dyn TonClient,
        owner: &Wallet,
        model_hash: Bits256,
        name: &str,
    ) -> Result<Outcome, OnchainError> {
        let body = RootSetModel {
            query_id: 0,
            model_hash,
            name: Some(name.to_owned()),
        };
        self.owner_op(client, owner, &body).await
    }

    /// Registers a proxy (its operator wallet, signing key and endpoints).
    pub async fn register_proxy(
        &self,
        client: &dyn TonClient,
        owner: &Wallet,
        proxy: &TonAddress,
        key: Bits256,
        endpoints: &str,
    ) -> Result<Outcome, OnchainError> {
        let body = RootSetProxy {
            query_id: 0,
            proxy: proxy.clone(),
            info: Some(ProxyInfo {
                key,
                endpoints: endpoints.to_owned(),
            }),
        };
        self.owner_op(client, owner, &body).await
    }

    /// Opens (or tops up) `wallet`'s stake in `role` bound to `key`; `value` minus fees is staked.
    pub async fn open_stake(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        role: u8,
        key: Bits256,
        value: u128,
    ) -> Result<Outcome, OnchainError> {
        let body = RootOpenStake {
            query_id: 0,
            role,
            key,
        };
        send(
            client,
            wallet,
            message(&self.address, value, &body)?,
            WAIT,
            2,
        )
        .await
    }

    /// Opens `wallet`'s escrow with `proxy`, depositing `value` minus fees, `stake` as credit line,
    /// naming `client_key` (the client gateway's TLS key) as the key that may spend it at the proxy.
    pub async fn open_escrow(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        proxy: &TonAddress,
        stake: u128,
        client_key: [u8; 32],
        value: u128,
    ) -> Result<Outcome, OnchainError> {
        let body = RootOpenEscrow {
            query_id: 0,
            proxy: proxy.clone(),
            stake,
            client_key,
        };
        send(
            client,
            wallet,
            message(&self.address, value, &body)?,
            WAIT,
            2,
        )
        .await
    }
}

/// A v4r2 wallet (workchain 0) for an Ed25519 key.
pub fn wallet_for_key(
    key: &ed25519_dalek::SigningKey,
    network: cocoon_ton::Network,
) -> Result<Wallet, OnchainError> {
    let public = key.verifying_key().to_bytes().to_vec();
    let mut secret = key.to_bytes().to_vec();
    secret.extend_from_slice(&public);
    let pair = cocoon_ton::KeyPair {
        public_key: public,
        secret_key: secret,
    };
    Wallet::from_key_pair(pair, cocoon_ton::WalletVersion::V4R2, network)
        .map_err(|e| OnchainError::Invalid(e.to_string()))
}
