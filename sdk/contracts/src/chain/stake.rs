//! A stake (and, for a proxy, its payout vault): deposit, key rotation, unbond, withdraw, payout
//! claims, earnings, decoded state.

use cocoon_ton::TonClient;
use tonlib_core::TonAddress;

use super::{ChainError, fetch_state, message_ops};
use crate::codec::Bits256;
use crate::fees;
use crate::messages::*;
use crate::state::StakeStorage;
use crate::statements::SignedPayout;

/// A stake contract at a known address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeHandle {
    /// The stake's address.
    pub address: TonAddress,
}

impl StakeHandle {
    /// The handle of the stake at `address` (see [`crate::address::stake_address`]).
    pub fn at(address: TonAddress) -> Self {
        StakeHandle { address }
    }

    message_ops! {
        /// Anyone: adds `value` minus [`fees::STAKE_DEPOSIT_FEE`] to the stake.
        fn deposit(value: u128) => value, StakeDeposit { query_id: 0 };
        /// Owner: rotates the operator key.
        fn set_key(key: Bits256) => fees::STAKE_OWNER_OP_VALUE, StakeSetKey { query_id: 0, key };
        /// Owner of a proxy vault: commits the proxy ledger's marker (strictly increasing).
        fn commit_marker(marker: u64) =>
            fees::STAKE_OWNER_OP_VALUE, StakeCommitMarker { query_id: 0, marker };
        /// Owner: starts unbonding `amount`.
        fn unbond(amount: u128) => fees::STAKE_OWNER_OP_VALUE, StakeUnbond { query_id: 0, amount };
        /// Owner: withdraws everything unbonded once the delay passed.
        fn withdraw() => fees::STAKE_OWNER_OP_VALUE, StakeWithdraw { query_id: 0 };
        /// Anyone (usually the worker): claims a proxy-signed payout from this vault.
        fn claim_payout(voucher: SignedPayout) =>
            fees::STAKE_CLAIM_VALUE, StakeClaimPayout::new(0, voucher);
        /// Proxy vault owner: takes `amount` of the proxy's share.
        fn withdraw_earnings(amount: u128) =>
            fees::STAKE_OWNER_OP_VALUE, StakeWithdrawEarnings { query_id: 0, amount };
    }

    /// The stake's storage, decoded.
    pub async fn storage(&self, client: &dyn TonClient) -> Result<StakeStorage, ChainError> {
        fetch_state(client, &self.address).await
    }

    /// The vault's payout pool as the contract computes it: balance minus staked, unbonding, burnt
    /// and the storage reserve (zero if negative).
    pub async fn payout_pool(&self, client: &dyn TonClient) -> Result<u128, ChainError> {
        let st = self.storage(client).await?;
        let balance = client.get_address_balance(&self.address).await?;
        let locked = st
            .staked
            .checked_add(st.unbonding)
            .and_then(|x| x.checked_add(st.burnt))
            .and_then(|x| x.checked_add(fees::STAKE_RESERVE))
            .unwrap_or(u128::MAX);
        Ok(balance.saturating_sub(locked))
    }
}

impl StakeHandle {
    /// `get_can_serve`: the contract's own view of whether this stake may serve.
    pub async fn get_can_serve(&self, client: &dyn TonClient) -> Result<bool, ChainError> {
        let method = "get_can_serve";
        let stack = super::get(client, &self.address, method, &[]).await?;
        let v = stack
            .first()
            .and_then(|e| e.as_i128())
            .ok_or_else(|| super::stack_err(&self.address, method, "no integer"))?;
        Ok(v != 0)
    }

    /// `get_payout`: (seqno, paid) of the last payout claimed by `worker`; (0, 0) if none.
    pub async fn get_payout(
        &self,
        client: &dyn TonClient,
        worker: &TonAddress,
    ) -> Result<(u32, u128), ChainError> {
        let method = "get_payout";
        let id = num_bigint::BigInt::from_bytes_be(
            num_bigint::Sign::Plus,
            &crate::codec::account_id(worker),
        );
        let stack = super::get(
            client,
            &self.address,
            method,
            &[cocoon_ton::StackEntry::Num(id)],
        )
        .await?;
        let bad = || super::stack_err(&self.address, method, "expected (seqno, paid)");
        let seqno = stack
            .first()
            .and_then(|e| e.as_u64())
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(bad)?;
        let paid = stack.get(1).and_then(|e| e.as_u128()).ok_or_else(bad)?;
        Ok((seqno, paid))
    }
}
