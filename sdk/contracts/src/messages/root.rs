//! Root messages (`root_*` in the schema) and the root's parameter structs.

use tonlib_core::TonAddress;
use tonlib_core::cell::ArcCell;

use crate::codec::Bits256;
use crate::opcodes;
use crate::statements::{EquivocationEvidence, FaultEvidence, RevokedServingEvidence};

tlb_struct! {
    /// `network_params`: everything governance tunes. Multipliers: 10000 = 1x; bps: 10000 = 100 %.
    pub struct NetworkParams {
        /// nanoTON per adjusted token.
        price_per_token: u128 => coins,
        /// Prompt token multiplier.
        prompt_mult: u32 => uint(32),
        /// Cached prompt token multiplier.
        cached_mult: u32 => uint(32),
        /// Completion token multiplier.
        completion_mult: u32 => uint(32),
        /// Reasoning token multiplier.
        reasoning_mult: u32 => uint(32),
        /// Worker's share of what clients pay, bps.
        worker_share_bps: u16 => uint(16),
        /// Minimum worker stake, nanoTON.
        min_worker_stake: u128 => coins,
        /// Minimum proxy stake, nanoTON.
        min_proxy_stake: u128 => coins,
        /// Unbonding delay, seconds.
        unbond_delay: u32 => uint(32),
        /// Client unilateral close delay, seconds.
        close_delay: u32 => uint(32),
        /// Slash fraction for equivocation, bps.
        equivocation_slash_bps: u16 => uint(16),
        /// Slash fraction for serving after revocation, bps.
        revoked_slash_bps: u16 => uint(16),
        /// Slash fraction per proxy-attested fault, bps.
        fault_slash_bps: u16 => uint(16),
        /// Reporter's share of a slash, bps.
        reporter_reward_bps: u16 => uint(16),
        /// Burn the rest of a slash (true) or keep it in the root (false).
        burn_slashed: bool => boolean,
        /// Seconds after a revocation during which serving is not slashable.
        grace_period: u32 => uint(32),
        /// Fault slashes allowed per period.
        fault_cap: u8 => uint(8),
        /// Fault period, seconds.
        fault_period: u32 => uint(32),
    }
}

tlb_struct! {
    /// `proxy_info`: a registered proxy's key and endpoints.
    pub struct ProxyInfo {
        /// Ed25519 public key the proxy signs vouchers and reports with.
        key: Bits256 => bits256,
        /// Endpoints (snake string).
        endpoints: String => snake,
    }
}

tlb_struct! {
    /// `child_codes`: the code of the contracts the root deploys.
    pub struct ChildCodes {
        /// Stake code.
        stake_code: ArcCell => cell,
        /// Escrow code.
        escrow_code: ArcCell => cell,
    }
}

tlb_struct! {
    /// `root_change_owner` (owner): starts a two-step ownership transfer.
    pub struct RootChangeOwner [opcode = opcodes::ROOT_CHANGE_OWNER] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Proposed owner.
        new_owner: TonAddress => addr,
    }
}

tlb_struct! {
    /// `root_accept_owner` (pending owner): completes the transfer.
    pub struct RootAcceptOwner [opcode = opcodes::ROOT_ACCEPT_OWNER] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `root_set_image` (owner): allows or revokes a TEE image for a role.
    pub struct RootSetImage [opcode = opcodes::ROOT_SET_IMAGE] {
        /// Query id.
        query_id: u64 => uint(64),
        /// 0 = worker, 1 = proxy.
        role: u8 => uint(8),
        /// Image hash.
        image_hash: Bits256 => bits256,
        /// true = allow, false = revoke (records the time).
        allowed: bool => boolean,
    }
}

tlb_struct! {
    /// `root_set_model` (owner): names a model hash, or removes it (`name: None`).
    pub struct RootSetModel [opcode = opcodes::ROOT_SET_MODEL] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Model hash.
        model_hash: Bits256 => bits256,
        /// Readable name; `None` removes the model.
        name: Option<String> => maybe_snake,
    }
}

tlb_struct! {
    /// `root_set_proxy` (owner): registers a proxy, or removes it (`info: None`).
    pub struct RootSetProxy [opcode = opcodes::ROOT_SET_PROXY] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Proxy owner address (its stake's owner).
        proxy: TonAddress => addr,
        /// Key and endpoints; `None` removes the proxy.
        info: Option<ProxyInfo> => maybe_child,
    }
}

tlb_struct! {
    /// `root_set_params` (owner): replaces the network parameters and bumps the version.
    pub struct RootSetParams [opcode = opcodes::ROOT_SET_PARAMS] {
        /// Query id.
        query_id: u64 => uint(64),
        /// New parameters.
        params: NetworkParams => child,
    }
}

tlb_struct! {
    /// `root_set_codes` (owner): replaces the child code and bumps the version.
    pub struct RootSetCodes [opcode = opcodes::ROOT_SET_CODES] {
        /// Query id.
        query_id: u64 => uint(64),
        /// New child code.
        codes: ChildCodes => child,
    }
}

tlb_struct! {
    /// `root_withdraw_kept` (owner): sends kept slash proceeds to the owner.
    pub struct RootWithdrawKept [opcode = opcodes::ROOT_WITHDRAW_KEPT] {
        /// Query id.
        query_id: u64 => uint(64),
        /// nanoTON to withdraw.
        amount: u128 => coins,
    }
}

tlb_struct! {
    /// `root_open_stake` (anyone): deploys or tops up the sender's stake for a role; the attached
    /// value minus the root's fee is forwarded to the stake.
    pub struct RootOpenStake [opcode = opcodes::ROOT_OPEN_STAKE] {
        /// Query id.
        query_id: u64 => uint(64),
        /// 0 = worker, 1 = proxy.
        role: u8 => uint(8),
        /// The operator's Ed25519 public key.
        key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `root_open_escrow` (anyone): deploys or tops up the sender's escrow with a proxy.
    pub struct RootOpenEscrow [opcode = opcodes::ROOT_OPEN_ESCROW] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The proxy (owner address, must be registered).
        proxy: TonAddress => addr,
        /// Credit line the client keeps locked, nanoTON.
        stake: u128 => coins,
        /// The key that may spend the credit at the proxy (the client gateway's TLS key); zero keeps
        /// the key an existing escrow recorded.
        client_key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `root_sync_vault_key` (anyone): the root sends the proxy's registered key to its vault.
    pub struct RootSyncVaultKey [opcode = opcodes::ROOT_SYNC_VAULT_KEY] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The proxy (owner address, must be registered).
        proxy: TonAddress => addr,
    }
}

tlb_struct! {
    /// `root_report_equivocation` (anyone): two conflicting proxy-signed statements.
    pub struct RootReportEquivocation [opcode = opcodes::ROOT_REPORT_EQUIVOCATION] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The proxy (owner address).
        proxy: TonAddress => addr,
        /// The evidence.
        evidence: EquivocationEvidence => child,
    }
}

tlb_struct! {
    /// `root_report_revoked` (anyone): a worker served on a revoked image after the grace period.
    pub struct RootReportRevoked [opcode = opcodes::ROOT_REPORT_REVOKED] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The worker (stake owner address).
        worker: TonAddress => addr,
        /// The evidence.
        evidence: RevokedServingEvidence => child,
    }
}

tlb_struct! {
    /// `root_report_fault` (anyone): a registered proxy's signed fault report.
    pub struct RootReportFault [opcode = opcodes::ROOT_REPORT_FAULT] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The evidence.
        evidence: FaultEvidence => child,
    }
}

tlb_struct! {
    /// `root_owner_notice`: body of the root's payout to its owner.
    pub struct RootOwnerNotice [opcode = opcodes::ROOT_OWNER_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `root_report_refused`: the value of a report whose slash the stake refused (or whose stake
    /// does not exist) going back to the reporter.
    pub struct RootReportRefused [opcode = opcodes::ROOT_REPORT_REFUSED] {
        /// Query id of the report.
        query_id: u64 => uint(64),
        /// The stake's exit code (0 when the stake did not exist).
        exit_code: i32 => int(32),
    }
}
