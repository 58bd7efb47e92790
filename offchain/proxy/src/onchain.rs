//! The proxy's [`ChainView`] and [`Settler`] over `cocoon-onchain` (the contracts on toncenter or the
//! devnet), and [`settle_ledger`], which forces settlement of the whole ledger.

use cocoon_contracts::codec::account_id;
use cocoon_daemon::tls::PeerIdentity;
use cocoon_onchain::{OnchainError, OnchainSettler, OnchainView};
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{self as pv, SignedVoucher};

use crate::chain::{BoxFuture, ChainView, EscrowInfo, SettleError, Settler};
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
        // The contracts keep no proxy state marker; rollback detection relies on the escrows'
        // and vault's monotonic seqnos instead (a rolled-back ledger signs stale seqnos, refused).
        0
    }

    fn payer(&self) -> [u8; 32] {
        OnchainView::payer(self)
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
            OnchainSettler::commit_marker(self, marker);
            Ok(())
        })
    }
}

/// Forces settlement of everything in the proxy's ledger now: every listed client's unsettled
/// charges and every worker's unpaid earnings, then records the results in the ledger.
pub async fn settle_ledger(
    proxy: &Proxy,
    settler: &OnchainSettler,
    clients: &[[u8; 32]],
) -> Result<(), OnchainError> {
    let view = settler.view();
    let store_err = |e: StoreError| OnchainError::Invalid(e.to_string());
    for key in clients {
        let account = proxy.store.client(key).map_err(store_err)?;
        if account.charged <= account.settled {
            continue;
        }
        let wallet = view
            .client_wallet(key)
            .ok_or_else(|| OnchainError::Invalid("client without a wallet".into()))?;
        let escrow = view.escrow_address(&wallet)?;
        settler
            .charge(&pv::ChargeVoucher {
                network_id: view.network_id(),
                escrow: account_id(&escrow),
                seqno: account.seqno,
                cumulative_nano: account.charged,
            })
            .await?;
        proxy
            .store
            .mark_settled(*key, account.charged)
            .await
            .map_err(store_err)?;
    }
    for (key, account) in proxy.store.workers().map_err(store_err)? {
        if account.earned <= account.paid {
            continue;
        }
        settler
            .payout(&pv::PayoutVoucher {
                network_id: view.network_id(),
                payer: view.payer(),
                worker_key: key,
                seqno: account.seqno,
                cumulative_nano: account.earned,
            })
            .await?;
        proxy
            .store
            .mark_paid(key, account.earned)
            .await
            .map_err(store_err)?;
    }
    Ok(())
}
