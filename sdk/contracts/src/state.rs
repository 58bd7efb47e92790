//! Storage layouts of the three contracts, decoded from the account data cell (what
//! `getAddressInformation` returns), so auditors and the CLI read typed state.

use std::collections::BTreeMap;

use tonlib_core::TonAddress;

use crate::codec::Bits256;
use crate::messages::{ChildCodes, NetworkParams, ProxyInfo};

/// `stake_storage.state` / `escrow_storage.state`: deployed but not initialised by the root.
pub const STATE_UNINIT: u8 = 0;
/// `stake_storage.state`: active.
pub const STAKE_ACTIVE: u8 = 1;
/// `escrow_storage.state`: open.
pub const ESCROW_OPEN: u8 = 1;
/// `escrow_storage.state`: unilateral close requested.
pub const ESCROW_CLOSING: u8 = 2;
/// `escrow_storage.state`: closed.
pub const ESCROW_CLOSED: u8 = 3;
/// `Role` of a worker.
pub const ROLE_WORKER: u8 = 0;
/// `Role` of a proxy.
pub const ROLE_PROXY: u8 = 1;
/// `Role` of a key service (image allowlist only: no stake).
pub const ROLE_KMS: u8 = 2;

tlb_struct! {
    /// `root_registry`: allow-lists and the proxy registry. Dict keys are 256-bit hashes or, for
    /// proxies, the account id of the proxy owner address (workchain 0).
    pub struct RootRegistry {
        /// Worker image hash -> revoked_at (0 = allowed).
        worker_images: BTreeMap<Bits256, u32> => dict_u32,
        /// Proxy image hash -> revoked_at (0 = allowed).
        proxy_images: BTreeMap<Bits256, u32> => dict_u32,
        /// Model hash -> readable name.
        models: BTreeMap<Bits256, String> => dict_snake,
        /// Proxy account id -> key and endpoints.
        proxies: BTreeMap<Bits256, ProxyInfo> => dict_of,
    }
}

tlb_struct! {
    /// `root_storage`.
    pub struct RootStorage {
        /// Owner (governance).
        owner: TonAddress => addr,
        /// Proposed owner of a pending transfer.
        pending_owner: Option<TonAddress> => maybe_addr,
        /// Bumped by every params or code change.
        params_version: u32 => uint(32),
        /// Slash proceeds kept by the root, nanoTON.
        kept: u128 => coins,
        /// The chain's global id (-239 mainnet, -3 testnet), fixed at deployment.
        network_id: i32 => int(32),
        /// Network parameters.
        params: NetworkParams => child,
        /// Child code.
        codes: ChildCodes => child,
        /// Registry.
        registry: RootRegistry => child,
        /// Key-service image hash -> revoked_at (0 = allowed), outside the registry cell.
        kms_images: BTreeMap<Bits256, u32> => dict_u32,
    }
}

tlb_struct! {
    /// `stake_identity`: what a stake's address commits to.
    pub struct StakeIdentity {
        /// Root.
        root: TonAddress => addr,
        /// Owner (operator).
        owner: TonAddress => addr,
        /// 0 = worker, 1 = proxy.
        role: u8 => uint(8),
    }
}

tlb_struct! {
    /// `stake_cold`: the parameter snapshot and slashing bookkeeping.
    pub struct StakeCold {
        /// Minimum stake to serve, nanoTON.
        min_stake: u128 => coins,
        /// Unbonding delay, seconds.
        unbond_delay: u32 => uint(32),
        /// Worker share, bps.
        worker_share_bps: u16 => uint(16),
        /// Root params version of the snapshot.
        params_version: u32 => uint(32),
        /// Slashed in total, nanoTON.
        slashed: u128 => coins,
        /// Start of the current fault period.
        fault_period_start: u32 => uint(32),
        /// Fault slashes in the current period.
        faults_in_period: u8 => uint(8),
        /// A proxy vault's committed ledger marker (`stake_commit_marker`); 0 until the first commit.
        marker: u64 => uint(64),
        /// A proxy vault's income (pool + paid out + owner withdrawn) when the worker share last
        /// changed, nanoTON.
        income_at_share: u128 => coins,
        /// The proxy's entitlement from the income up to that change, nanoTON.
        proxy_share_at_share: u128 => coins,
        /// A worker stake's keys retired within the unbonding delay -> when retired (they still sign
        /// slashable statements; at most 4 live).
        retired_keys: BTreeMap<Bits256, u32> => dict_u32,
        /// Offence id -> time slashed.
        used_evidence: BTreeMap<Bits256, u32> => dict_u32,
    }
}

tlb_struct! {
    /// `payout_record`: the last claimed payout voucher of one worker.
    pub struct PayoutRecord {
        /// Seqno of the last claimed voucher.
        seqno: u32 => uint(32),
        /// Cumulative nanoTON paid.
        paid: u128 => coins,
    }
}

tlb_struct! {
    /// `stake_storage`.
    pub struct StakeStorage {
        /// 0 = not initialised, 1 = active.
        state: u8 => uint(2),
        /// Operator key.
        key: Bits256 => bits256,
        /// Staked nanoTON.
        staked: u128 => coins,
        /// Unbonding nanoTON.
        unbonding: u128 => coins,
        /// When the unbonding amount can be withdrawn.
        unbond_at: u32 => uint(32),
        /// Burnt by slashes, nanoTON (excluded from the payout pool).
        burnt: u128 => coins,
        /// Payouts claimed by workers, nanoTON.
        paid_out: u128 => coins,
        /// Earnings the owner took, nanoTON.
        owner_withdrawn: u128 => coins,
        /// Identity.
        identity: StakeIdentity => child,
        /// Snapshot and slashing data (absent until initialised).
        cold: Option<StakeCold> => maybe_child,
        /// Worker account id -> last payout.
        payouts: BTreeMap<Bits256, PayoutRecord> => dict_of,
    }
}

impl StakeStorage {
    /// The data a stake is deployed with; its address depends on root, owner and role only.
    pub fn initial(root: TonAddress, owner: TonAddress, role: u8) -> Self {
        StakeStorage {
            state: STATE_UNINIT,
            key: [0; 32],
            staked: 0,
            unbonding: 0,
            unbond_at: 0,
            burnt: 0,
            paid_out: 0,
            owner_withdrawn: 0,
            identity: StakeIdentity { root, owner, role },
            cold: None,
            payouts: BTreeMap::new(),
        }
    }

    /// The proxy operator's committed ledger marker (0 when none was committed).
    pub fn marker(&self) -> u64 {
        self.cold.as_ref().map_or(0, |c| c.marker)
    }

    /// Whether this stake may serve: active and at least the snapshotted minimum.
    pub fn can_serve(&self) -> bool {
        self.state == STAKE_ACTIVE
            && self
                .cold
                .as_ref()
                .is_some_and(|c| self.staked >= c.min_stake)
    }
}

tlb_struct! {
    /// `escrow_identity`: what an escrow's address commits to.
    pub struct EscrowIdentity {
        /// Root.
        root: TonAddress => addr,
        /// Client.
        client: TonAddress => addr,
        /// Proxy (owner address).
        proxy: TonAddress => addr,
    }
}

tlb_struct! {
    /// `escrow_client_key`: the key (the client gateway's TLS key) that may spend an escrow's credit
    /// at the proxy.
    pub struct EscrowClientKey {
        /// Ed25519 public key.
        key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `escrow_storage`.
    pub struct EscrowStorage {
        /// 0 = not initialised, 1 = open, 2 = closing, 3 = closed.
        state: u8 => uint(2),
        /// Seqno of the last settled charge.
        seqno: u32 => uint(32),
        /// Cumulative nanoTON charged.
        charged: u128 => coins,
        /// nanoTON held for the client.
        balance: u128 => coins,
        /// Credit line, nanoTON.
        stake: u128 => coins,
        /// When a unilateral close may finish.
        closing_at: u32 => uint(32),
        /// Unilateral close delay, seconds.
        close_delay: u32 => uint(32),
        /// The proxy key charges must be signed with.
        proxy_key: Bits256 => bits256,
        /// The proxy's vault (stake contract); none until initialised.
        vault: Option<TonAddress> => maybe_addr,
        /// Identity.
        identity: EscrowIdentity => child,
        /// The key that may spend the credit at the proxy; none until the client names one.
        client_key: Option<EscrowClientKey> => maybe_child,
    }
}

impl EscrowStorage {
    /// The data an escrow is deployed with; its address depends on root, client and proxy only.
    pub fn initial(root: TonAddress, client: TonAddress, proxy: TonAddress) -> Self {
        EscrowStorage {
            state: STATE_UNINIT,
            seqno: 0,
            charged: 0,
            balance: 0,
            stake: 0,
            closing_at: 0,
            close_delay: 0,
            proxy_key: [0; 32],
            vault: None,
            identity: EscrowIdentity {
                root,
                client,
                proxy,
            },
            client_key: None,
        }
    }

    /// The key the client named to spend this escrow's credit at the proxy, if any.
    pub fn client_key(&self) -> Option<Bits256> {
        self.client_key.as_ref().map(|k| k.key)
    }

    /// What the client could withdraw now (balance above the stake).
    pub fn free_balance(&self) -> u128 {
        self.balance.saturating_sub(self.stake)
    }
}
