//! Lazy settlement: a client's charges go on chain when its unsettled amount reaches a share of its
//! credit; a worker's payout when its unpaid earnings reach a threshold; the store marker periodically.

use std::sync::Arc;
use std::time::Duration;

use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};

use crate::Proxy;
use crate::store::ChargeOutcome;

/// Starts settlement tasks for whatever this charge pushed over a threshold (off the request path).
pub(crate) fn maybe_settle(
    proxy: &Arc<Proxy>,
    client: [u8; 32],
    worker: [u8; 32],
    outcome: &ChargeOutcome,
) {
    if let Some(escrow) = proxy.chain.escrow(&client) {
        let unsettled = outcome.client.charged.saturating_sub(escrow.settled);
        let threshold = escrow
            .credit
            .saturating_mul(u128::from(proxy.config.charge_threshold_bps))
            / 10_000;
        if unsettled > 0 && unsettled >= threshold && begin(proxy, client) {
            let voucher = ChargeVoucher {
                network_id: proxy.chain.network_id(),
                escrow: escrow.escrow,
                seqno: outcome.client.seqno,
                cumulative_nano: outcome.client.charged,
            };
            let p = proxy.clone();
            tokio::spawn(async move {
                let cumulative = voucher.cumulative_nano;
                let signed = SignedVoucher::sign(voucher, p.tls.signing_key());
                match p.settler.submit_charge(signed).await {
                    Ok(()) => {
                        if let Err(e) = p.store.mark_settled(client, cumulative).await {
                            tracing::error!(error = %e, "recording settlement failed");
                        }
                        p.metrics
                            .counter(
                                "cocoon_proxy_settlements_total",
                                "On-chain submissions.",
                                &[("kind", "charge")],
                            )
                            .inc();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "charge settlement failed; retried at the next charge")
                    }
                }
                end(&p, client);
            });
        }
    }
    let unpaid = outcome.worker.earned.saturating_sub(outcome.worker.paid);
    if unpaid >= u128::from(proxy.config.payout_threshold_nano)
        && unpaid > 0
        && begin(proxy, worker)
    {
        let voucher = PayoutVoucher {
            network_id: proxy.chain.network_id(),
            payer: proxy.chain.payer(),
            worker_key: worker,
            seqno: outcome.worker.seqno,
            cumulative_nano: outcome.worker.earned,
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            let cumulative = voucher.cumulative_nano;
            let signed = SignedVoucher::sign(voucher, p.tls.signing_key());
            match p.settler.submit_payout(signed).await {
                Ok(()) => {
                    if let Err(e) = p.store.mark_paid(worker, cumulative).await {
                        tracing::error!(error = %e, "recording payout failed");
                    }
                    p.metrics
                        .counter(
                            "cocoon_proxy_settlements_total",
                            "On-chain submissions.",
                            &[("kind", "payout")],
                        )
                        .inc();
                }
                Err(e) => tracing::warn!(error = %e, "payout failed; retried at the next charge"),
            }
            end(&p, worker);
        });
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
