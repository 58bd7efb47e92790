//! Stake messages (`stake_*` in the schema) and the notices a stake sends.

use tonlib_core::TonAddress;

use crate::codec::Bits256;
use crate::opcodes;
use crate::statements::{PayoutVoucher, RevokedServingEvidence, SignedPayout};

tlb_struct! {
    /// `stake_params`: the snapshot of root parameters a stake keeps.
    pub struct StakeParams {
        /// Minimum stake to serve, nanoTON.
        min_stake: u128 => coins,
        /// Unbonding delay, seconds.
        unbond_delay: u32 => uint(32),
        /// Worker share, bps (a proxy vault keeps the rest as earnings).
        worker_share_bps: u16 => uint(16),
        /// Root params version the snapshot was taken at.
        params_version: u32 => uint(32),
    }
}

tlb_struct! {
    /// `stake_init` (root only): deploy-or-top-up on behalf of the owner.
    pub struct StakeInit [opcode = opcodes::STAKE_INIT] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Operator key.
        key: Bits256 => bits256,
        /// Parameter snapshot.
        params: StakeParams => inline,
    }
}

tlb_struct! {
    /// `stake_deposit` (anyone): adds the value minus the deposit fee to the stake.
    pub struct StakeDeposit [opcode = opcodes::STAKE_DEPOSIT] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `stake_set_key` (owner): rotates the operator key.
    pub struct StakeSetKey [opcode = opcodes::STAKE_SET_KEY] {
        /// Query id.
        query_id: u64 => uint(64),
        /// New key.
        key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `stake_unbond` (owner): moves `amount` from staked to unbonding; restarts the clock.
    pub struct StakeUnbond [opcode = opcodes::STAKE_UNBOND] {
        /// Query id.
        query_id: u64 => uint(64),
        /// nanoTON.
        amount: u128 => coins,
    }
}

tlb_struct! {
    /// `stake_withdraw` (owner): pays out everything unbonding once the delay passed.
    pub struct StakeWithdraw [opcode = opcodes::STAKE_WITHDRAW] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `stake_settle` (escrows): credits `amount` of the attached value to the payout pool.
    pub struct StakeSettle [opcode = opcodes::STAKE_SETTLE] {
        /// Query id.
        query_id: u64 => uint(64),
        /// nanoTON.
        amount: u128 => coins,
    }
}

tlb_struct! {
    /// `stake_claim_payout` (anyone): pays a proxy-signed cumulative payout to its worker.
    pub struct StakeClaimPayout [opcode = opcodes::STAKE_CLAIM_PAYOUT] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Proxy signature over the voucher cell hash.
        signature: [u8; 64] => bits512,
        /// The voucher.
        voucher: PayoutVoucher => child,
    }
}

impl StakeClaimPayout {
    /// The claim message for a signed payout voucher.
    pub fn new(query_id: u64, signed: SignedPayout) -> Self {
        StakeClaimPayout {
            query_id,
            signature: signed.signature,
            voucher: signed.statement,
        }
    }
}

tlb_struct! {
    /// `stake_withdraw_earnings` (proxy vault owner): takes the proxy's share of charges.
    pub struct StakeWithdrawEarnings [opcode = opcodes::STAKE_WITHDRAW_EARNINGS] {
        /// Query id.
        query_id: u64 => uint(64),
        /// nanoTON.
        amount: u128 => coins,
    }
}

tlb_struct! {
    /// `stake_commit_marker` (owner of a proxy vault): the proxy's ledger marker, strictly increasing.
    pub struct StakeCommitMarker [opcode = opcodes::STAKE_COMMIT_MARKER] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The ledger's marker.
        marker: u64 => uint(64),
    }
}

tlb_struct! {
    /// `slash_terms`: how much a slash takes and where it goes.
    pub struct SlashTerms {
        /// Fraction of the stake, bps.
        slash_bps: u16 => uint(16),
        /// Reporter's share of the slashed amount, bps.
        reporter_bps: u16 => uint(16),
        /// Burn the rest (true) or send it to the root (false).
        burn: bool => boolean,
        /// Fault slashes allowed per period.
        fault_cap: u8 => uint(8),
        /// Fault period, seconds.
        fault_period: u32 => uint(32),
    }
}

/// `stake_slash.kind`: equivocation.
pub const SLASH_EQUIVOCATION: u8 = 1;
/// `stake_slash.kind`: serving after revocation.
pub const SLASH_REVOKED_SERVING: u8 = 2;
/// `stake_slash.kind`: proxy-attested fault.
pub const SLASH_FAULT: u8 = 3;

tlb_struct! {
    /// `stake_slash` (root only): slashing with evidence the root checked.
    pub struct StakeSlash [opcode = opcodes::STAKE_SLASH] {
        /// Query id.
        query_id: u64 => uint(64),
        /// 1 = equivocation, 2 = revoked serving, 3 = fault report.
        kind: u8 => uint(8),
        /// Hash that makes the evidence single-use.
        evidence_hash: Bits256 => bits256,
        /// Who gets the reporter reward.
        reporter: TonAddress => addr,
        /// Slash terms.
        terms: SlashTerms => child,
        /// For kind 2: the serving evidence the stake verifies against its own key.
        evidence: Option<RevokedServingEvidence> => maybe_child,
    }
}

tlb_struct! {
    /// `stake_registered_key` (root only, to a proxy vault): the key governance registered for the
    /// proxy, which payout vouchers are checked against.
    pub struct StakeRegisteredKey [opcode = opcodes::STAKE_REGISTERED_KEY] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The registered key.
        key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `stake_payout_notice`: body of a payout to a worker.
    pub struct StakePayoutNotice [opcode = opcodes::STAKE_PAYOUT_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `stake_withdraw_notice`: body of a withdrawal to the owner.
    pub struct StakeWithdrawNotice [opcode = opcodes::STAKE_WITHDRAW_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `stake_reward_notice`: body of a reporter reward.
    pub struct StakeRewardNotice [opcode = opcodes::STAKE_REWARD_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `root_kept_notice`: body of a slash remainder sent to the root.
    pub struct RootKeptNotice [opcode = opcodes::ROOT_KEPT_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}
