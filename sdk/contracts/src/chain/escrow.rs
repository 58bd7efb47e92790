//! An escrow (client to proxy payment channel): deposits, credit line, charges, withdrawals, close.

use cocoon_ton::{TonClient, Wallet};
use tonlib_core::TonAddress;

use super::{ChainError, Outcome, SendOptions, fetch_state, message, send};
use crate::codec::{Bits256, CellCodec};
use crate::fees;
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

    async fn op(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        value: u128,
        body: &impl CellCodec,
    ) -> Result<Outcome, ChainError> {
        send(
            client,
            wallet,
            message(&self.address, value, body)?,
            SendOptions::default(),
        )
        .await
    }

    /// Anyone: adds `value` minus [`fees::ESCROW_DEPOSIT_FEE`] to the balance.
    pub async fn deposit(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        value: u128,
    ) -> Result<Outcome, ChainError> {
        self.op(client, wallet, value, &EscrowDeposit { query_id: 0 })
            .await
    }

    /// Client: raises the credit line.
    pub async fn set_stake(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        stake: u128,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CLIENT_OP_VALUE,
            &EscrowSetStake { query_id: 0, stake },
        )
        .await
    }

    /// Client: names the key that may spend the credit at the proxy (zero: none).
    pub async fn set_client_key(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        key: Bits256,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CLIENT_OP_VALUE,
            &EscrowSetClientKey { query_id: 0, key },
        )
        .await
    }

    /// Anyone (usually the proxy): settles a proxy-signed charge; the new part moves to the vault.
    pub async fn submit_charge(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        voucher: SignedCharge,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CHARGE_VALUE,
            &EscrowSubmitCharge::new(0, voucher),
        )
        .await
    }

    /// Client: withdraws `amount` of the balance above the credit line.
    pub async fn withdraw(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
        amount: u128,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CLIENT_OP_VALUE,
            &EscrowWithdraw {
                query_id: 0,
                amount,
            },
        )
        .await
    }

    /// Client: starts the unilateral close.
    pub async fn request_close(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CLIENT_OP_VALUE,
            &EscrowRequestClose { query_id: 0 },
        )
        .await
    }

    /// Anyone: finishes a unilateral close after the delay (refunds the client).
    pub async fn finish_close(
        &self,
        client: &dyn TonClient,
        wallet: &Wallet,
    ) -> Result<Outcome, ChainError> {
        self.op(
            client,
            wallet,
            fees::ESCROW_CLIENT_OP_VALUE,
            &EscrowFinishClose { query_id: 0 },
        )
        .await
    }

    /// The escrow's storage, decoded.
    pub async fn storage(&self, client: &dyn TonClient) -> Result<EscrowStorage, ChainError> {
        fetch_state(client, &self.address).await
    }
}
