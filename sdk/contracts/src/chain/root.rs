//! The root: deploy, governance, opening stakes and escrows, slashing reports, getters.

use cocoon_ton::{StackEntry, TonClient, Transfer, Wallet};
use tonlib_core::TonAddress;

use super::{
    ChainError, Outcome, SendOptions, address_arg, fetch_state, get, message, send, stack_address,
    stack_err,
};
use crate::address::{
    Deployment, escrow_deployment, root_deployment, root_initial_storage, stake_deployment,
};
use crate::codec::{Bits256, CellCodec};
use crate::fees;
use crate::messages::*;
use crate::state::RootStorage;
use crate::statements::{EquivocationEvidence, FaultEvidence, RevokedServingEvidence};

/// A root contract at a known address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootHandle {
    /// The root's address.
    pub address: TonAddress,
}

impl RootHandle {
    /// The handle of a root at `address`.
    pub fn at(address: TonAddress) -> Self {
        RootHandle { address }
    }

    /// The deployment of a new root owned by `owner` with the embedded code.
    pub fn deployment(
        owner: &TonAddress,
        network_id: i32,
        params: NetworkParams,
    ) -> Result<Deployment, ChainError> {
        Ok(root_deployment(&root_initial_storage(
            owner.clone(),
            network_id,
            params,
        )?)?)
    }

    /// Deploys a root owned by `wallet` with `value` nanoTON as its initial balance.
    pub async fn deploy(
        client: &dyn TonClient,
        wallet: &Wallet,
        network_id: i32,
        params: NetworkParams,
        value: u128,
    ) -> Result<(RootHandle, Outcome), ChainError> {
        let d = Self::deployment(wallet.address(), network_id, params)?;
        let transfer = Transfer::new(d.address.clone(), value)
            .with_bounce(false)
            .with_state_init(d.state_init()?.to_arc());
        let outcome = send(client, wallet, transfer, SendOptions::default()).await?;
        Ok((RootHandle { address: d.address }, outcome))
    }

    async fn owner_op(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        body: &impl CellCodec,
    ) -> Result<Outcome, ChainError> {
        let t = message(&self.address, fees::ROOT_OWNER_OP_VALUE, body)?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// Owner: proposes a new owner.
    pub async fn change_owner(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        new_owner: &TonAddress,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootChangeOwner {
                query_id: 0,
                new_owner: new_owner.clone(),
            },
        )
        .await
    }

    /// Pending owner: accepts ownership.
    pub async fn accept_owner(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(client, wallet, &RootAcceptOwner { query_id: 0 })
            .await
    }

    /// Owner: allows (`true`) or revokes (`false`) an image for a role.
    pub async fn set_image(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        role: u8,
        image_hash: Bits256,
        allowed: bool,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootSetImage {
                query_id: 0,
                role,
                image_hash,
                allowed,
            },
        )
        .await
    }

    /// Owner: names a model, or removes it with `None`.
    pub async fn set_model(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        model_hash: Bits256,
        name: Option<String>,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootSetModel {
                query_id: 0,
                model_hash,
                name,
            },
        )
        .await
    }

    /// Owner: registers a proxy, or removes it with `None`.
    pub async fn set_proxy(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        proxy: &TonAddress,
        info: Option<ProxyInfo>,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootSetProxy {
                query_id: 0,
                proxy: proxy.clone(),
                info,
            },
        )
        .await
    }

    /// Owner: replaces the network parameters.
    pub async fn set_params(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        params: NetworkParams,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootSetParams {
                query_id: 0,
                params,
            },
        )
        .await
    }

    /// Owner: replaces the child code.
    pub async fn set_codes(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        codes: ChildCodes,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(client, wallet, &RootSetCodes { query_id: 0, codes })
            .await
    }

    /// Owner: withdraws kept slash proceeds.
    pub async fn withdraw_kept(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        amount: u128,
    ) -> Result<Outcome, ChainError> {
        self.owner_op(
            client,
            wallet,
            &RootWithdrawKept {
                query_id: 0,
                amount,
            },
        )
        .await
    }

    /// Anyone: opens (or tops up) the wallet's stake for `role`; `value` must be at least
    /// [`fees::ROOT_OPEN_VALUE`], the rest minus the stake's deposit fee becomes stake.
    pub async fn open_stake(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        role: u8,
        key: Bits256,
        value: u128,
    ) -> Result<Outcome, ChainError> {
        let t = message(
            &self.address,
            value,
            &RootOpenStake {
                query_id: 0,
                role,
                key,
            },
        )?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// Anyone: opens (or tops up) the wallet's escrow with `proxy`, keeping `stake` as credit line
    /// and naming `client_key` (the client gateway's TLS key; zero keeps the recorded one) as the key
    /// that may spend it at the proxy.
    pub async fn open_escrow(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        proxy: &TonAddress,
        stake: u128,
        client_key: Bits256,
        value: u128,
    ) -> Result<Outcome, ChainError> {
        let t = message(
            &self.address,
            value,
            &RootOpenEscrow {
                query_id: 0,
                proxy: proxy.clone(),
                stake,
                client_key,
            },
        )?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// Anyone: reports a proxy's equivocation.
    pub async fn report_equivocation(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        proxy: &TonAddress,
        evidence: EquivocationEvidence,
    ) -> Result<Outcome, ChainError> {
        let body = RootReportEquivocation {
            query_id: 0,
            proxy: proxy.clone(),
            evidence,
        };
        let t = message(&self.address, fees::ROOT_REPORT_VALUE, &body)?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// Anyone: reports a worker serving on a revoked image.
    pub async fn report_revoked(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        worker: &TonAddress,
        evidence: RevokedServingEvidence,
    ) -> Result<Outcome, ChainError> {
        let body = RootReportRevoked {
            query_id: 0,
            worker: worker.clone(),
            evidence,
        };
        let t = message(&self.address, fees::ROOT_REPORT_VALUE, &body)?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// Anyone: forwards a registered proxy's fault report.
    pub async fn report_fault(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        evidence: FaultEvidence,
    ) -> Result<Outcome, ChainError> {
        let t = message(
            &self.address,
            fees::ROOT_REPORT_VALUE,
            &RootReportFault {
                query_id: 0,
                evidence,
            },
        )?;
        send(client, wallet, t, SendOptions::default()).await
    }

    /// The root's whole storage, decoded.
    pub async fn storage(&self, client: &dyn TonClient) -> Result<RootStorage, ChainError> {
        fetch_state(client, &self.address).await
    }

    /// The stake deployment for `owner` and `role`, using the code the root currently holds.
    pub async fn stake_deployment(
        &self,
        client: &dyn TonClient,
        owner: &TonAddress,
        role: u8,
    ) -> Result<Deployment, ChainError> {
        let st = self.storage(client).await?;
        Ok(stake_deployment(
            &st.codes.stake_code,
            &self.address,
            owner,
            role,
        )?)
    }

    /// The escrow deployment for `client_addr` and `proxy`, using the root's current code.
    pub async fn escrow_deployment(
        &self,
        client: &dyn TonClient,
        client_addr: &TonAddress,
        proxy: &TonAddress,
    ) -> Result<Deployment, ChainError> {
        let st = self.storage(client).await?;
        Ok(escrow_deployment(
            &st.codes.escrow_code,
            &self.address,
            client_addr,
            proxy,
        )?)
    }

    /// `get_stake_address`: what the root itself computes.
    pub async fn get_stake_address(
        &self,
        client: &dyn TonClient,
        owner: &TonAddress,
        role: u8,
    ) -> Result<TonAddress, ChainError> {
        let method = "get_stake_address";
        let stack = get(
            client,
            &self.address,
            method,
            &[address_arg(owner)?, StackEntry::num(role)],
        )
        .await?;
        stack
            .first()
            .and_then(stack_address)
            .ok_or_else(|| stack_err(&self.address, method, "no address"))
    }

    /// `get_escrow_address`: what the root itself computes.
    pub async fn get_escrow_address(
        &self,
        client: &dyn TonClient,
        client_addr: &TonAddress,
        proxy: &TonAddress,
    ) -> Result<TonAddress, ChainError> {
        let method = "get_escrow_address";
        let stack = get(
            client,
            &self.address,
            method,
            &[address_arg(client_addr)?, address_arg(proxy)?],
        )
        .await?;
        stack
            .first()
            .and_then(stack_address)
            .ok_or_else(|| stack_err(&self.address, method, "no address"))
    }
}

impl RootHandle {
    /// `get_params`: the params version and the network parameters, as the root reports them.
    pub async fn get_params(
        &self,
        client: &dyn TonClient,
    ) -> Result<(u32, NetworkParams), ChainError> {
        let method = "get_params";
        let stack = get(client, &self.address, method, &[]).await?;
        let bad = || stack_err(&self.address, method, "expected (version, params cell)");
        let version = stack
            .first()
            .and_then(|e| e.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(bad)?;
        let cell = stack.get(1).and_then(|e| e.as_cell()).ok_or_else(bad)?;
        Ok((version, NetworkParams::from_cell(cell)?))
    }
}
