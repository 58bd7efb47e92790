//! Escrow messages (`escrow_*` in the schema).

use tonlib_core::TonAddress;

use crate::codec::Bits256;
use crate::opcodes;
use crate::statements::{ChargeVoucher, SignedCharge};

tlb_struct! {
    /// `escrow_init` (root only): deploy-or-deposit with the proxy's registered key and vault.
    pub struct EscrowInit [opcode = opcodes::ESCROW_INIT] {
        /// Query id.
        query_id: u64 => uint(64),
        /// The proxy's registered key.
        proxy_key: Bits256 => bits256,
        /// The proxy's stake contract.
        vault: TonAddress => addr,
        /// Unilateral close delay, seconds.
        close_delay: u32 => uint(32),
        /// Credit line, nanoTON.
        stake: u128 => coins,
        /// The key the client named; none keeps the recorded one.
        client_key: Option<crate::state::EscrowClientKey> => maybe_child,
    }
}

tlb_struct! {
    /// `escrow_deposit` (anyone): adds the value minus the deposit fee to the balance.
    pub struct EscrowDeposit [opcode = opcodes::ESCROW_DEPOSIT] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `escrow_set_stake` (client): raises the credit line.
    pub struct EscrowSetStake [opcode = opcodes::ESCROW_SET_STAKE] {
        /// Query id.
        query_id: u64 => uint(64),
        /// New credit line, nanoTON (never lower than the current one).
        stake: u128 => coins,
    }
}

tlb_struct! {
    /// `escrow_submit_charge` (anyone): settles a proxy-signed cumulative charge.
    pub struct EscrowSubmitCharge [opcode = opcodes::ESCROW_SUBMIT_CHARGE] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Proxy signature over the voucher cell hash.
        signature: [u8; 64] => bits512,
        /// The voucher.
        voucher: ChargeVoucher => child,
    }
}

impl EscrowSubmitCharge {
    /// The submit message for a signed charge voucher.
    pub fn new(query_id: u64, signed: SignedCharge) -> Self {
        EscrowSubmitCharge {
            query_id,
            signature: signed.signature,
            voucher: signed.statement,
        }
    }
}

tlb_struct! {
    /// `escrow_withdraw` (client): takes back what is above the stake.
    pub struct EscrowWithdraw [opcode = opcodes::ESCROW_WITHDRAW] {
        /// Query id.
        query_id: u64 => uint(64),
        /// nanoTON.
        amount: u128 => coins,
    }
}

tlb_struct! {
    /// `escrow_request_close` (client): starts the unilateral close.
    pub struct EscrowRequestClose [opcode = opcodes::ESCROW_REQUEST_CLOSE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `escrow_finish_close` (anyone): ends a unilateral close after the delay.
    pub struct EscrowFinishClose [opcode = opcodes::ESCROW_FINISH_CLOSE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}

tlb_struct! {
    /// `escrow_set_client_key` (client, while open): names the key that may spend the credit at the
    /// proxy; zero names none.
    pub struct EscrowSetClientKey [opcode = opcodes::ESCROW_SET_CLIENT_KEY] {
        /// Query id.
        query_id: u64 => uint(64),
        /// Ed25519 public key, or zero.
        key: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `escrow_refund_notice`: body of a refund to the client.
    pub struct EscrowRefundNotice [opcode = opcodes::ESCROW_REFUND_NOTICE] {
        /// Query id.
        query_id: u64 => uint(64),
    }
}
