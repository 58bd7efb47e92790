//! The proxy's [`ChainView`] and [`Settler`] over `cocoon-onchain` (the contracts on toncenter or the
//! devnet), and [`settle_ledger`], which forces settlement of the whole ledger. On a chain the proxy
//! signs its charges and payouts itself in the contracts' format ([`charge_statement`],
//! [`payout_statement`]); the settler only submits them.

use cocoon_contracts::statements::{ChargeVoucher, PayoutVoucher, SignedCharge, SignedPayout};
use cocoon_daemon::tls::PeerIdentity;
use cocoon_onchain::{OnchainError, OnchainSettler, OnchainView};
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{self as pv, SignedVoucher};
use cocoon_ton::TonAddress;
use ed25519_dalek::SigningKey;

use crate::chain::{
    BindError, BoxFuture, ChainView, EscrowInfo, EscrowStatus, SettleError, Settler,
};
use crate::{Proxy, store::StoreError};

impl ChainView for OnchainView {
    fn params(&self) -> PriceParams {
        OnchainView::params(self)
    }

    fn network_id(&self) -> i32 {
        OnchainView::network_id(self)
    }

    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        OnchainView::escrow(self, client_key).map(|e| EscrowInfo {
            escrow: e.escrow,
            credit: e.credit,
            settled: e.settled,
        })
    }

    fn worker_allowed(&self, worker: &PeerIdentity) -> bool {
        OnchainView::worker_allowed(
            self,
            &worker.public_key,
            &worker.image_hash,
            worker.insecure,
        )
    }

    fn committed_marker(&self) -> u64 {
        OnchainView::committed_marker(self)
    }

    fn payer(&self) -> [u8; 32] {
        OnchainView::payer(self)
    }

    fn client_account(&self, client_key: &[u8; 32]) -> Option<[u8; 32]> {
        OnchainView::client_account(self, client_key)
    }

    fn payee(&self, worker_key: &[u8; 32]) -> [u8; 32] {
        OnchainView::payee(self, worker_key)
    }

    fn escrow_status(&self, escrow: &[u8; 32]) -> Option<EscrowStatus> {
        OnchainView::escrow_status(self, escrow).map(|s| EscrowStatus {
            phase: s.phase,
            settled: s.settled,
            client_key: s.client_key,
        })
    }

    fn bind_worker<'a>(
        &'a self,
        worker_key: [u8; 32],
        owner: &'a str,
        peer: std::net::IpAddr,
    ) -> BoxFuture<'a, Result<(), BindError>> {
        Box::pin(async move {
            OnchainView::bind_worker_from(self, worker_key, owner, Some(peer))
                .await
                .map(|_| ())
        })
    }

    fn bind_client<'a>(
        &'a self,
        client_key: [u8; 32],
        wallet: Option<&'a str>,
        peer: std::net::IpAddr,
    ) -> BoxFuture<'a, Result<(), BindError>> {
        Box::pin(OnchainView::bind_client_from(
            self,
            client_key,
            wallet,
            Some(peer),
        ))
    }
}

fn settle_error(e: OnchainError) -> SettleError {
    match e {
        OnchainError::Unavailable(m) => SettleError::Unavailable(m),
        other => SettleError::Rejected(other.to_string()),
    }
}

impl Settler for OnchainSettler {
    fn submit_charge(
        &self,
        voucher: SignedVoucher<pv::ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            voucher
                .verify(&self.proxy_key())
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            self.charge(&voucher.voucher).await.map_err(settle_error)
        })
    }

    fn submit_payout(
        &self,
        voucher: SignedVoucher<pv::PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            voucher
                .verify(&self.proxy_key())
                .map_err(|e| SettleError::Rejected(e.to_string()))?;
            self.payout(&voucher.voucher).await.map_err(settle_error)
        })
    }

    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            OnchainSettler::commit_marker(self, marker)
                .await
                .map(|_| ())
                .map_err(settle_error)
        })
    }

    fn charge_target(&self, escrow: &[u8; 32]) -> Option<TonAddress> {
        self.escrow_of(escrow)
    }

    fn payout_target(&self, payee: &[u8; 32]) -> Option<(TonAddress, TonAddress)> {
        self.payout_of(payee)
    }

    fn payout_record<'a>(
        &'a self,
        vault: &'a TonAddress,
        worker: &'a TonAddress,
    ) -> BoxFuture<'a, Result<(u32, u128), SettleError>> {
        Box::pin(async move {
            if vault != self.view().vault() {
                return Err(SettleError::Rejected("another vault".into()));
            }
            OnchainSettler::payout_record(self, worker)
                .await
                .map_err(settle_error)
        })
    }

    fn submit_charge_statement(
        &self,
        signed: SignedCharge,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            OnchainSettler::submit_charge_statement(self, &signed)
                .await
                .map_err(settle_error)
        })
    }

    fn submit_payout_statement(
        &self,
        signed: SignedPayout,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            OnchainSettler::submit_payout_statement(self, &signed)
                .await
                .map_err(settle_error)
        })
    }
}

/// The proxy's charge statement in the contracts' format: the escrow, the ledger's seqno and
/// cumulative charge, signed with the proxy key (the key the escrow checks).
pub fn charge_statement(
    escrow: TonAddress,
    seqno: u64,
    charged: u128,
    key: &SigningKey,
) -> Result<SignedCharge, OnchainError> {
    let seqno = u32::try_from(seqno)
        .map_err(|_| OnchainError::Invalid("charge seqno exceeds u32".into()))?;
    Ok(ChargeVoucher {
        escrow,
        seqno,
        charged,
        is_final: false,
    }
    .sign(key)?)
}

/// The proxy's payout statement in the contracts' format: drawn on its vault to the worker's wallet,
/// the ledger's seqno and cumulative earnings, signed with the proxy key (the vault's key).
pub fn payout_statement(
    vault: TonAddress,
    worker: TonAddress,
    seqno: u64,
    paid: u128,
    key: &SigningKey,
) -> Result<SignedPayout, OnchainError> {
    let seqno = u32::try_from(seqno)
        .map_err(|_| OnchainError::Invalid("payout seqno exceeds u32".into()))?;
    Ok(PayoutVoucher {
        vault,
        worker,
        seqno,
        paid,
    }
    .sign(key)?)
}

/// Forces settlement of everything in the proxy's ledger now: every escrow's unsettled charges and
/// every payee's unpaid earnings, signed by the proxy in the contracts' format, then records the
/// results in the ledger.
pub async fn settle_ledger(proxy: &Proxy, settler: &OnchainSettler) -> Result<(), OnchainError> {
    let key = proxy.tls.signing_key();
    let store_err = |e: StoreError| OnchainError::Invalid(e.to_string());
    for (escrow, account) in proxy.store.clients().map_err(store_err)? {
        if account.charged <= account.settled {
            continue;
        }
        let address = settler.escrow_of(&escrow).ok_or_else(|| {
            OnchainError::Invalid(format!(
                "escrow {} has no known address",
                hex::encode(escrow)
            ))
        })?;
        let signed = charge_statement(address, account.seqno, account.charged, key)?;
        settler.submit_charge_statement(&signed).await?;
        proxy
            .store
            .mark_settled(escrow, account.charged)
            .await
            .map_err(store_err)?;
    }
    for (payee, account) in proxy.store.workers().map_err(store_err)? {
        if account.earned <= account.paid {
            continue;
        }
        let (vault, wallet) = settler.payout_of(&payee).ok_or_else(|| {
            OnchainError::Invalid(format!("payee {} has no payout wallet", hex::encode(payee)))
        })?;
        let signed = payout_statement(vault, wallet, account.seqno, account.earned, key)?;
        settler.submit_payout_statement(&signed).await?;
        proxy
            .store
            .mark_paid(payee, account.earned)
            .await
            .map_err(store_err)?;
    }
    Ok(())
}
