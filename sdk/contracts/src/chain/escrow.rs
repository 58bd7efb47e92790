//! An escrow (client to proxy payment channel): deposits, credit line, charges, withdrawals, close.

use cocoon_ton::TonClient;
use tonlib_core::TonAddress;

use super::{ChainError, fetch_state, message_ops};
use crate::codec::Bits256;
use crate::fees::{ESCROW_CHARGE_VALUE, ESCROW_CLIENT_OP_VALUE};
use crate::messages::*;
use crate::state::EscrowStorage;
use crate::statements::SignedCharge;

/// An escrow contract at a known address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowHandle {
    /// The escrow's address.
    pub address: TonAddress,
}

impl EscrowHandle {
    /// The handle of the escrow at `address` (see [`crate::address::escrow_address`]).
    pub fn at(address: TonAddress) -> Self {
        EscrowHandle { address }
    }

    message_ops! {
        /// Anyone: adds `value` minus [`crate::fees::ESCROW_DEPOSIT_FEE`] to the balance.
        fn deposit(value: u128) => value, EscrowDeposit { query_id: 0 };
        /// Client: raises the credit line.
        fn set_stake(stake: u128) => ESCROW_CLIENT_OP_VALUE, EscrowSetStake { query_id: 0, stake };
        /// Client: names the key that may spend the credit at the proxy (zero: none).
        fn set_client_key(key: Bits256) =>
            ESCROW_CLIENT_OP_VALUE, EscrowSetClientKey { query_id: 0, key };
        /// Anyone (usually the proxy): settles a proxy-signed charge; the new part moves to the
        /// vault.
        fn submit_charge(voucher: SignedCharge) =>
            ESCROW_CHARGE_VALUE, EscrowSubmitCharge::new(0, voucher);
        /// Client: withdraws `amount` of the balance above the credit line.
        fn withdraw(amount: u128) =>
            ESCROW_CLIENT_OP_VALUE, EscrowWithdraw { query_id: 0, amount };
        /// Client: starts the unilateral close.
        fn request_close() => ESCROW_CLIENT_OP_VALUE, EscrowRequestClose { query_id: 0 };
        /// Anyone: finishes a unilateral close after the delay (refunds the client).
        fn finish_close() => ESCROW_CLIENT_OP_VALUE, EscrowFinishClose { query_id: 0 };
    }

    /// The escrow's storage, decoded.
    pub async fn storage(&self, client: &dyn TonClient) -> Result<EscrowStorage, ChainError> {
        fetch_state(client, &self.address).await
    }
}
