//! Settlement: a client's charges go on chain when its unsettled amount reaches a share of its
//! credit, when its escrow is seen closing (always before the close delay ends, or the client would
//! be refunded what it owes), or when they sat unsettled past `settle_idle_ms`; a worker's payout
//! when its unpaid earnings reach a threshold; the store marker periodically.
//!
//! Client accounts are keyed by escrow (one cumulative series per escrow, whichever client key spent
//! it: a rotated key continues it), worker accounts by payee ([`ChainView::payee`]). Besides the
//! settlement a charge triggers, [`settle_loop`] looks at every account every `settle_interval_ms`,
//! starting right after start (a restarted proxy pays workers that are due and settles escrows
//! without waiting for them to earn or spend again).
//!
//! At most one settlement per account runs at a time. After one finishes it releases the account and
//! looks again, so a charge that arrived meanwhile is never left behind.
//!
//! [`ChainView::payee`]: crate::ChainView::payee

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_protocol::Cost;
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};

use crate::Proxy;
use crate::chain::{EscrowPhase, SettleError};
use crate::registry::WorkerEntry;
use crate::store::{ChargeOutcome, StoreError};

/// Records a charge of the client with this key, served by `worker`, in the ledger: on the account of
/// the client's escrow and of the worker's payee.
pub(crate) async fn charge(
    proxy: &Arc<Proxy>,
    client_key: &[u8; 32],
    worker: &WorkerEntry,
    cost: Cost,
) -> Result<ChargeOutcome, StoreError> {
    let escrow = proxy
        .chain
        .client_account(client_key)
        .ok_or(StoreError::UnknownAccount)?;
    let payee = proxy.chain.payee(&worker.identity.public_key);
    proxy.store.charge(escrow, payee, cost).await
}

/// Starts settlement tasks for whatever this charge pushed over a threshold (off the request path).
pub(crate) fn maybe_settle(
    proxy: &Arc<Proxy>,
    client_key: &[u8; 32],
    worker: &WorkerEntry,
    _outcome: &ChargeOutcome,
) {
    if let Some(escrow) = proxy.chain.client_account(client_key)
        && threshold_reached(proxy, client_key, &escrow)
        && begin(proxy, escrow)
    {
        tokio::spawn(settle_client(proxy.clone(), escrow, Some(*client_key)));
    }
    let payee = proxy.chain.payee(&worker.identity.public_key);
    if payout_due(proxy, &payee).is_some() && begin(proxy, payee) {
        tokio::spawn(settle_worker(proxy.clone(), payee));
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
    for (payee, _) in accounts {
        if payout_due(proxy, &payee).is_some() && begin(proxy, payee) {
            tokio::spawn(settle_worker(proxy.clone(), payee));
            started += 1;
        }
    }
    started
}

/// When each escrow's unsettled amount was last seen to change, and the client key it admitted.
#[derive(Debug, Default)]
pub(crate) struct IdleWatch {
    seen: HashMap<[u8; 32], (u128, Instant)>,
    keys: HashMap<[u8; 32], Option<[u8; 32]>>,
}

/// Why the periodic look settles an escrow now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The escrow is closing: settled before the close delay ends.
    Closing,
    /// The escrow's client key changed since the last look: what the old key spent is settled now.
    Rotated,
    /// Unsettled charges unchanged past `settle_idle_ms`.
    Idle,
}

/// Starts the settlement of every escrow with unsettled charges that is closing, whose client key
/// rotated, or idle past the bound. Returns the escrows started, with why.
pub(crate) fn settle_escrows_due(proxy: &Arc<Proxy>, idle: &mut IdleWatch) -> Vec<([u8; 32], Why)> {
    let Ok(accounts) = proxy.store.clients() else {
        return Vec::new();
    };
    let bound = Duration::from_millis(proxy.config.settle_idle_ms);
    let now = Instant::now();
    let mut started = Vec::new();
    let mut seen = HashMap::new();
    for (escrow, account) in accounts {
        let status = proxy.chain.escrow_status(&escrow);
        let key = status.map(|s| s.client_key);
        let rotated = match (idle.keys.get(&escrow), key) {
            (Some(before), Some(now)) => *before != now,
            _ => false,
        };
        if let Some(now) = key {
            idle.keys.insert(escrow, now);
        }
        let chain_settled = status.map_or(0, |s| s.settled);
        let unsettled = account
            .charged
            .saturating_sub(account.settled.max(chain_settled));
        if unsettled == 0 {
            continue;
        }
        let since = match idle.seen.get(&escrow) {
            Some((charged, at)) if *charged == account.charged => *at,
            _ => now,
        };
        seen.insert(escrow, (account.charged, since));
        let why = match status.map(|s| s.phase) {
            Some(EscrowPhase::Closed) => continue,
            Some(EscrowPhase::Closing { .. }) => Why::Closing,
            _ if rotated => Why::Rotated,
            _ if now.duration_since(since) >= bound => Why::Idle,
            _ => continue,
        };
        if begin(proxy, escrow) {
            tracing::info!(escrow = %hex::encode(escrow), ?why, unsettled = %unsettled, "settling an escrow");
            tokio::spawn(settle_client(proxy.clone(), escrow, None));
            started.push((escrow, why));
        }
    }
    idle.seen = seen;
    started
}

/// Every `settle_interval_ms`, starting right after start: pays the workers that are due and settles
/// the escrows that are closing or idle (see [`settle_escrows_due`]).
pub(crate) async fn settle_loop(proxy: Arc<Proxy>) {
    let every = Duration::from_millis(proxy.config.settle_interval_ms);
    let mut idle = IdleWatch::default();
    loop {
        pay_workers_due(&proxy);
        settle_escrows_due(&proxy, &mut idle);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = proxy.shutdown.triggered() => return,
        }
    }
}

fn threshold_reached(proxy: &Proxy, client_key: &[u8; 32], escrow: &[u8; 32]) -> bool {
    let Some(info) = proxy.chain.escrow(client_key) else {
        return false;
    };
    let Ok(account) = proxy.store.client(escrow) else {
        return false;
    };
    let unsettled = account
        .charged
        .saturating_sub(info.settled.max(account.settled));
    let threshold = info
        .credit
        .saturating_mul(u128::from(proxy.config.charge_threshold_bps))
        / 10_000;
    unsettled > 0 && unsettled >= threshold
}

/// The voucher settling everything an escrow owes now, if it owes anything.
fn charge_voucher(proxy: &Proxy, escrow: &[u8; 32]) -> Option<ChargeVoucher> {
    let account = proxy.store.client(escrow).ok()?;
    let chain_settled = proxy.chain.escrow_status(escrow).map_or(0, |s| s.settled);
    let unsettled = account
        .charged
        .saturating_sub(account.settled.max(chain_settled));
    (unsettled > 0).then(|| ChargeVoucher {
        network_id: proxy.chain.network_id(),
        escrow: *escrow,
        seqno: account.seqno,
        cumulative_nano: account.charged,
    })
}

fn payout_due(proxy: &Proxy, payee: &[u8; 32]) -> Option<PayoutVoucher> {
    let account = proxy.store.worker(payee).ok()?;
    let unpaid = account.earned.saturating_sub(account.paid);
    (unpaid > 0 && unpaid >= u128::from(proxy.config.payout_threshold_nano)).then(|| {
        PayoutVoucher {
            network_id: proxy.chain.network_id(),
            payer: proxy.chain.payer(),
            worker_key: *payee,
            seqno: account.seqno,
            cumulative_nano: account.earned,
        }
    })
}

/// Settles one escrow. Started by a charge (`client_key`: the threshold decides whether to go on
/// after a round) or by the periodic look (`None`: everything it owes).
async fn settle_client(proxy: Arc<Proxy>, escrow: [u8; 32], client_key: Option<[u8; 32]>) {
    loop {
        if let Some(voucher) = charge_voucher(&proxy, &escrow) {
            let cumulative = voucher.cumulative_nano;
            let key = proxy.tls.signing_key();
            // A chain that takes the contracts' format gets the proxy's own statement; otherwise
            // the ledger's voucher.
            let submitted = match proxy.settler.charge_target(&escrow) {
                Some(address) => {
                    match crate::onchain::charge_statement(address, voucher.seqno, cumulative, key)
                    {
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
                    if let Err(e) = proxy.store.mark_settled(escrow, cumulative).await {
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
                    tracing::warn!(error = %e, "charge settlement failed; retried at the next charge or look");
                    end(&proxy, escrow);
                    return;
                }
            }
        }
        end(&proxy, escrow);
        let again = match &client_key {
            Some(key) => threshold_reached(&proxy, key, &escrow),
            None => false,
        };
        if !again || !begin(&proxy, escrow) {
            return;
        }
    }
}

async fn settle_worker(proxy: Arc<Proxy>, payee: [u8; 32]) {
    loop {
        if let Some(voucher) = payout_due(&proxy, &payee) {
            let cumulative = voucher.cumulative_nano;
            let key = proxy.tls.signing_key();
            let submitted = match proxy.settler.payout_target(&payee) {
                Some((vault, wallet)) => {
                    match crate::onchain::payout_statement(
                        vault,
                        wallet,
                        voucher.seqno,
                        cumulative,
                        key,
                    ) {
                        Ok(signed) => crate::payout::pay(&proxy, &payee, signed).await,
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
                    if let Err(e) = proxy.store.mark_paid(payee, cumulative).await {
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
                    tracing::warn!(error = %e, "payout failed; retried at the next charge or look");
                    end(&proxy, payee);
                    return;
                }
            }
        }
        end(&proxy, payee);
        if payout_due(&proxy, &payee).is_none() || !begin(&proxy, payee) {
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
