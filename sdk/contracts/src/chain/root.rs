//! The root: deploy, governance, opening stakes and escrows, slashing reports, getters.

use cocoon_ton::{StackEntry, TonClient, TraceOptions, Transfer, Wallet};
use tonlib_core::TonAddress;

use super::{
    ChainError, Outcome, address_arg, fetch_state, get, message_ops, send, stack_address, stack_err,
};
use crate::address::{
    Deployment, escrow_deployment, root_deployment, root_initial_storage, stake_deployment,
};
use crate::codec::{Bits256, CellCodec};
use crate::fees::{ROOT_OWNER_OP_VALUE, ROOT_REPORT_VALUE};
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
        let outcome = send(client, wallet, transfer, TraceOptions::default()).await?;
        Ok((RootHandle { address: d.address }, outcome))
    }

    message_ops! {
        /// Owner: proposes a new owner.
        fn change_owner(new_owner: &TonAddress) => ROOT_OWNER_OP_VALUE,
            RootChangeOwner { query_id: 0, new_owner: new_owner.clone() };
        /// Pending owner: accepts ownership.
        fn accept_owner() => ROOT_OWNER_OP_VALUE, RootAcceptOwner { query_id: 0 };
        /// Owner: allows (`true`) or revokes (`false`) an image for a role.
        fn set_image(role: u8, image_hash: Bits256, allowed: bool) => ROOT_OWNER_OP_VALUE,
            RootSetImage { query_id: 0, role, image_hash, allowed };
        /// Owner: names a model, or removes it with `None`.
        fn set_model(model_hash: Bits256, name: Option<String>) => ROOT_OWNER_OP_VALUE,
            RootSetModel { query_id: 0, model_hash, name };
        /// Owner: registers a proxy, or removes it with `None`.
        fn set_proxy(proxy: &TonAddress, info: Option<ProxyInfo>) => ROOT_OWNER_OP_VALUE,
            RootSetProxy { query_id: 0, proxy: proxy.clone(), info };
        /// Anyone: makes the root send `proxy`'s registered key to its vault (a vault opened before
        /// its proxy was registered, or after governance changed the key, pays out only then).
        fn sync_vault_key(proxy: &TonAddress) => ROOT_OWNER_OP_VALUE,
            RootSyncVaultKey { query_id: 0, proxy: proxy.clone() };
        /// Owner: replaces the network parameters.
        fn set_params(params: NetworkParams) => ROOT_OWNER_OP_VALUE,
            RootSetParams { query_id: 0, params };
        /// Owner: replaces the child code.
        fn set_codes(codes: ChildCodes) => ROOT_OWNER_OP_VALUE, RootSetCodes { query_id: 0, codes };
        /// Owner: withdraws kept slash proceeds.
        fn withdraw_kept(amount: u128) => ROOT_OWNER_OP_VALUE,
            RootWithdrawKept { query_id: 0, amount };
        /// Anyone: opens (or tops up) the wallet's stake for `role`; `value` must be at least
        /// [`crate::fees::ROOT_OPEN_VALUE`], the rest minus the stake's deposit fee becomes stake.
        fn open_stake(role: u8, key: Bits256, value: u128) => value,
            RootOpenStake { query_id: 0, role, key };
        /// Anyone: opens (or tops up) the wallet's escrow with `proxy`, keeping `stake` as credit
        /// line and naming `client_key` (the client gateway's TLS key; zero keeps the recorded one)
        /// as the key that may spend it at the proxy.
        fn open_escrow(proxy: &TonAddress, stake: u128, client_key: Bits256, value: u128) => value,
            RootOpenEscrow { query_id: 0, proxy: proxy.clone(), stake, client_key };
        /// Anyone: reports a proxy's equivocation.
        fn report_equivocation(proxy: &TonAddress, evidence: EquivocationEvidence) =>
            ROOT_REPORT_VALUE,
            RootReportEquivocation { query_id: 0, proxy: proxy.clone(), evidence };
        /// Anyone: reports a worker serving on a revoked image.
        fn report_revoked(worker: &TonAddress, evidence: RevokedServingEvidence) =>
            ROOT_REPORT_VALUE,
            RootReportRevoked { query_id: 0, worker: worker.clone(), evidence };
        /// Anyone: forwards a registered proxy's fault report.
        fn report_fault(evidence: FaultEvidence) => ROOT_REPORT_VALUE,
            RootReportFault { query_id: 0, evidence };
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
