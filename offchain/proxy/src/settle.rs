//! Lazy settlement: a client's charges go on chain when its unsettled amount reaches a share of its
//! credit; a worker's payout when its unpaid earnings reach a threshold; the store marker periodically.
//!
//! At most one settlement per account runs at a time. After one finishes it releases the account and
//! looks again, so a charge that arrived meanwhile is never left behind.

use std::sync::Arc;
use std::time::Duration;

use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};

use crate::Proxy;
use crate::chain::SettleError;
use crate::store::ChargeOutcome;

/// Starts settlement tasks for whatever this charge pushed over a threshold (off the request path).
pub(crate) fn maybe_settle(
    proxy: &Arc<Proxy>,
    client: [u8; 32],
    worker: [u8; 32],
    _outcome: &ChargeOutcome,
) {
    if charge_due(proxy, &client).is_some() && begin(proxy, client) {
        tokio::spawn(settle_client(proxy.clone(), client));
    }
    if payout_due(proxy, &worker).is_some() && begin(proxy, worker) {
        tokio::spawn(settle_worker(proxy.clone(), worker));
    }
}

/// Starts the payout of every worker whose unpaid earnings reached the threshold (a charge does
/// this for its own worker; this also reaches workers that stopped serving). Returns how many
/// started.
pub(crate) fn pay_workers_due(proxy: &Arc<Proxy>) -> usize {
    let Ok(accounts) = proxy.store.workers() else {
        return 0;
    };
    let mut started = 0;
    for (worker, _) in accounts {
        if payout_due(proxy, &worker).is_some() && begin(proxy, worker) {
            tokio::spawn(settle_worker(proxy.clone(), worker));
            started += 1;
        }
    }
    started
}

fn charge_due(proxy: &Proxy, client: &[u8; 32]) -> Option<ChargeVoucher> {
    let escrow = proxy.chain.escrow(client)?;
    let account = proxy.store.client(client).ok()?;
    let unsettled = account
        .charged
        .saturating_sub(escrow.settled.max(account.settled));
    let threshold = escrow
        .credit
        .saturating_mul(u128::from(proxy.config.charge_threshold_bps))
        / 10_000;
    (unsettled > 0 && unsettled >= threshold).then(|| ChargeVoucher {
        network_id: proxy.chain.network_id(),
        escrow: escrow.escrow,
        seqno: account.seqno,
        cumulative_nano: account.charged,
    })
}

fn payout_due(proxy: &Proxy, worker: &[u8; 32]) -> Option<PayoutVoucher> {
    let account = proxy.store.worker(worker).ok()?;
    let unpaid = account.earned.saturating_sub(account.paid);
    (unpaid > 0 && unpaid >= u128::from(proxy.config.payout_threshold_nano)).then(|| {
        PayoutVoucher {
            network_id: proxy.chain.network_id(),
            payer: proxy.chain.payer(),
            worker_key: *worker,
            seqno: account.seqno,
            cumulative_nano: account.earned,
        }
    })
}

async fn settle_client(proxy: Arc<Proxy>, client: [u8; 32]) {
    loop {
        if let Some(voucher) = charge_due(&proxy, &client) {
            let cumulative = voucher.cumulative_nano;
            let key = proxy.tls.signing_key();
            // A chain that takes the contracts' format gets the proxy's own statement; otherwise
            // the ledger's voucher.
            let submitted = match proxy.settler.charge_target(&client) {
                Some(escrow) => {
                    match crate::onchain::charge_statement(escrow, voucher.seqno, cumulative, key) {
                        Ok(signed) => proxy.settler.submit_charge_statement(signed).await,
                        Err(e) => Err(SettleError::Rejected(e.to_string())),
                    }
                }
                None => {
                    let signed = SignedVoucher::sign(voucher, key);
                    proxy.settler.submit_charge(signed).await
                }
            };
            match submitted {
                Ok(()) => {
                    if let Err(e) = proxy.store.mark_settled(client, cumulative).await {
                        tracing::error!(error = %e, "recording settlement failed");
                    }
                    proxy
                        .metrics
                        .counter(
                            "cocoon_proxy_settlements_total",
                            "On-chain submissions.",
                            &[("kind", "charge")],
                        )
                        .inc();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "charge settlement failed; retried at the next charge");
                    end(&proxy, client);
                    return;
                }
            }
        }
        end(&proxy, client);
        if charge_due(&proxy, &client).is_none() || !begin(&proxy, client) {
            return;
        }
    }
}

async fn settle_worker(proxy: Arc<Proxy>, worker: [u8; 32]) {
    loop {
        if let Some(voucher) = payout_due(&proxy, &worker) {
            let cumulative = voucher.cumulative_nano;
            let key = proxy.tls.signing_key();
            let submitted = match proxy.settler.payout_target(&worker) {
                Some((vault, wallet)) => {
                    match crate::onchain::payout_statement(
                        vault,
                        wallet,
                        voucher.seqno,
                        cumulative,
                        key,
                    ) {
                        Ok(signed) => crate::payout::pay(&proxy, &worker, signed).await,
                        Err(e) => Err(SettleError::Rejected(e.to_string())),
                    }
                }
                None => {
                    let signed = SignedVoucher::sign(voucher, key);
                    let submitted = proxy.settler.submit_payout(signed).await;
                    if submitted.is_ok() {
                        crate::payout::self_submitted(&proxy);
                    }
                    submitted
                }
            };
            match submitted {
                Ok(()) => {
                    if let Err(e) = proxy.store.mark_paid(worker, cumulative).await {
                        tracing::error!(error = %e, "recording payout failed");
                    }
                    proxy
                        .metrics
                        .counter(
                            "cocoon_proxy_settlements_total",
                            "On-chain submissions.",
                            &[("kind", "payout")],
                        )
                        .inc();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "payout failed; retried at the next charge");
                    end(&proxy, worker);
                    return;
                }
            }
        }
        end(&proxy, worker);
        if payout_due(&proxy, &worker).is_none() || !begin(&proxy, worker) {
            return;
        }
    }
}

fn begin(proxy: &Proxy, key: [u8; 32]) -> bool {
    proxy
        .settling
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key)
}

fn end(proxy: &Proxy, key: [u8; 32]) {
    proxy
        .settling
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key);
}

/// Commits the store marker on chain whenever it moved, every `marker_interval_ms`.
pub(crate) async fn marker_loop(proxy: Arc<Proxy>) {
    let every = Duration::from_millis(proxy.config.marker_interval_ms);
    let mut committed = proxy.chain.committed_marker();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = proxy.shutdown.triggered() => return,
        }
        let Ok(marker) = proxy.store.marker() else {
            continue;
        };
        if marker > committed {
            match proxy.settler.commit_marker(marker).await {
                Ok(()) => committed = marker,
                Err(e) => tracing::warn!(error = %e, "marker commit failed"),
            }
        }
    }
}
