//! Contract addresses derived off-chain exactly as the root derives them: the account id is the
//! representation hash of `StateInit { code, data }` (no split depth, no special, no library).

use std::sync::Arc;

use tonlib_core::cell::{ArcCell, Cell, CellBuilder};
use tonlib_core::{TonAddress, TonHash};

use crate::code::Contract;
use crate::codec::{CellCodec, cell_hash};
use crate::error::CodecError;
use crate::messages::{ChildCodes, NetworkParams};
use crate::state::{EscrowStorage, RootRegistry, RootStorage, StakeStorage};

/// The workchain every cocoon contract lives in.
pub const BASECHAIN: i32 = 0;

/// `StateInit` with code and data only: bits `00110`, references code then data.
pub fn state_init_cell(code: &ArcCell, data: &ArcCell) -> Result<Cell, CodecError> {
    let mut b = CellBuilder::new();
    b.store_u8(5, 0b00110)?;
    b.store_reference(code)?;
    b.store_reference(data)?;
    Ok(b.build()?)
}

/// The basechain address of a contract with this code and initial data.
pub fn address_of(code: &ArcCell, data: &ArcCell) -> Result<TonAddress, CodecError> {
    let hash = cell_hash(&state_init_cell(code, data)?);
    Ok(TonAddress::new(BASECHAIN, TonHash::from(hash)))
}

/// Everything needed to deploy a contract: its state init and resulting address.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Code cell.
    pub code: ArcCell,
    /// Initial data cell.
    pub data: ArcCell,
    /// The address these determine.
    pub address: TonAddress,
}

impl Deployment {
    /// Builds the deployment for `code` and `data`.
    pub fn new(code: ArcCell, data: ArcCell) -> Result<Self, CodecError> {
        let address = address_of(&code, &data)?;
        Ok(Deployment {
            code,
            data,
            address,
        })
    }

    /// The `StateInit` cell to attach to the first message.
    pub fn state_init(&self) -> Result<Cell, CodecError> {
        state_init_cell(&self.code, &self.data)
    }
}

/// Global id of TON mainnet (also what @ton/sandbox reports).
pub const NETWORK_ID_MAINNET: i32 = -239;
/// Global id of TON testnet.
pub const NETWORK_ID_TESTNET: i32 = -3;

/// The initial storage of a root: no pending owner, params version 1, nothing kept, the embedded
/// child code and an empty registry.
pub fn root_initial_storage(
    owner: TonAddress,
    network_id: i32,
    params: NetworkParams,
) -> Result<RootStorage, CodecError> {
    Ok(RootStorage {
        owner,
        pending_owner: None,
        params_version: 1,
        kept: 0,
        network_id,
        params,
        codes: embedded_child_codes()?,
        registry: RootRegistry {
            worker_images: Default::default(),
            proxy_images: Default::default(),
            models: Default::default(),
            proxies: Default::default(),
        },
        kms_images: Default::default(),
    })
}

/// The child code embedded in this SDK.
pub fn embedded_child_codes() -> Result<ChildCodes, CodecError> {
    Ok(ChildCodes {
        stake_code: Contract::Stake.code()?,
        escrow_code: Contract::Escrow.code()?,
    })
}

/// The deployment of a root with the embedded root code and this storage.
pub fn root_deployment(storage: &RootStorage) -> Result<Deployment, CodecError> {
    Deployment::new(Contract::Root.code()?, storage.to_arc()?)
}

/// The stake of `owner` in `role` under `root`, with the given stake code (the root's current code).
pub fn stake_deployment(
    stake_code: &ArcCell,
    root: &TonAddress,
    owner: &TonAddress,
    role: u8,
) -> Result<Deployment, CodecError> {
    let data = StakeStorage::initial(root.clone(), owner.clone(), role).to_arc()?;
    Deployment::new(Arc::clone(stake_code), data)
}

/// The escrow of `client` with `proxy` under `root`, with the given escrow code.
pub fn escrow_deployment(
    escrow_code: &ArcCell,
    root: &TonAddress,
    client: &TonAddress,
    proxy: &TonAddress,
) -> Result<Deployment, CodecError> {
    let data = EscrowStorage::initial(root.clone(), client.clone(), proxy.clone()).to_arc()?;
    Deployment::new(Arc::clone(escrow_code), data)
}

/// The stake address of `owner` in `role` under `root`, using the embedded stake code.
pub fn stake_address(
    root: &TonAddress,
    owner: &TonAddress,
    role: u8,
) -> Result<TonAddress, CodecError> {
    Ok(stake_deployment(&Contract::Stake.code()?, root, owner, role)?.address)
}

/// The escrow address of `client` with `proxy` under `root`, using the embedded escrow code.
pub fn escrow_address(
    root: &TonAddress,
    client: &TonAddress,
    proxy: &TonAddress,
) -> Result<TonAddress, CodecError> {
    Ok(escrow_deployment(&Contract::Escrow.code()?, root, client, proxy)?.address)
}

/// The vault a proxy's payout vouchers are drawn on: its proxy-role stake.
pub fn vault_address(root: &TonAddress, proxy: &TonAddress) -> Result<TonAddress, CodecError> {
    stake_address(root, proxy, crate::state::ROLE_PROXY)
}
