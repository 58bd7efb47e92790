//! Paying a worker: the proxy hands the payout voucher it signed to the worker over the worker's own
//! connection (`POST /cocoon/v1/payout`), and the worker claims it from its owner wallet. The proxy
//! submits the voucher itself only when the worker cannot take it (not connected, refused,
//! unreachable), says it claims nothing (no owner wallet), or has not claimed it within
//! `payout_self_submit_after_ms` (the vault's record unchanged). So a worker without an owner
//! mnemonic is still paid, and in the normal case one transaction pays, not two.
//!
//! The voucher signs the ledger's committed `(seqno, earned)` (Ed25519 is deterministic: a restarted
//! proxy signs the same bytes), so nothing is handed out that the ledger does not hold. Both paths at
//! once are still safe: the vault takes only a strictly higher seqno and amount per worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cocoon_contracts::statements::SignedPayout;
use cocoon_protocol::wire::{PAYOUT_CONTENT_TYPE, PAYOUT_PATH, PayoutAnswer, WORKER_AUTHORITY};

use crate::Proxy;
use crate::chain::SettleError;

/// How long one push may take before the worker counts as unreachable.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// First look at the vault after a push; the wait doubles up to [`MAX_RECORD_POLL`].
const FIRST_RECORD_POLL: Duration = Duration::from_millis(100);
/// Longest wait between two reads of the vault's record during the grace.
const MAX_RECORD_POLL: Duration = Duration::from_secs(5);

/// Payout counts since start (the status document shows them).
#[derive(Debug, Default)]
pub(crate) struct PayoutStats {
    /// Vouchers a worker took (answered 200).
    pushed: AtomicU64,
    /// Vouchers that could not be handed over (not connected, refused, unreachable).
    not_pushed: AtomicU64,
    /// Vouchers the worker claimed itself within the grace.
    claimed_by_worker: AtomicU64,
    /// Vouchers the proxy submitted itself.
    self_submitted: AtomicU64,
}

impl PayoutStats {
    pub(crate) fn json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "pushed": get(&self.pushed),
            "not_pushed": get(&self.not_pushed),
            "claimed_by_worker": get(&self.claimed_by_worker),
            "self_submitted": get(&self.self_submitted),
        })
    }
}

/// What handing a voucher to the worker gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    /// Taken, and the worker claims vouchers itself.
    Claims,
    /// Taken, but the worker has no owner wallet: it claims nothing.
    KeptNoClaims,
    /// The worker refused it (an error status).
    Refused,
    /// No live connection of this worker.
    NotConnected,
    /// No connection answered in time.
    Unreachable,
    /// The voucher could not be encoded.
    Unencodable,
}

impl Push {
    fn label(self) -> &'static str {
        match self {
            Push::Claims => "claims",
            Push::KeptNoClaims => "kept_no_claims",
            Push::Refused => "refused",
            Push::NotConnected => "not_connected",
            Push::Unreachable => "unreachable",
            Push::Unencodable => "unencodable",
        }
    }
}

/// Pays `worker` the voucher the proxy signed: hands it over, waits for the worker's claim when it
/// claims itself, and otherwise (or after the grace) submits it to the vault. `Ok` once the vault's
/// record holds the voucher's amount (by either path).
pub(crate) async fn pay(
    proxy: &Proxy,
    worker: &[u8; 32],
    signed: SignedPayout,
) -> Result<(), SettleError> {
    let pushed = push(proxy, worker, &signed).await;
    proxy
        .metrics
        .counter(
            "cocoon_proxy_payout_pushes_total",
            "Payout vouchers handed to workers, by what the worker said.",
            &[("outcome", pushed.label())],
        )
        .inc();
    let took = matches!(pushed, Push::Claims | Push::KeptNoClaims);
    let stat = if took {
        &proxy.payouts.pushed
    } else {
        &proxy.payouts.not_pushed
    };
    stat.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(
        outcome = pushed.label(),
        seqno = signed.statement.seqno,
        "payout voucher pushed to the worker"
    );
    if pushed == Push::Claims {
        match claimed_within_grace(proxy, &signed).await {
            Claimed::Yes => {
                record(proxy, "worker");
                return Ok(());
            }
            Claimed::ShuttingDown => {
                // The worker may still claim it; a restarted proxy signs the same voucher again.
                return Err(SettleError::Unavailable(
                    "shutting down before the worker claimed its payout".into(),
                ));
            }
            Claimed::No => {
                tracing::info!(
                    worker = %hex::encode(worker),
                    seqno = signed.statement.seqno,
                    "the worker did not claim its payout within the grace; the proxy submits it"
                );
            }
        }
    }
    proxy.settler.submit_payout_statement(signed).await?;
    record(proxy, "proxy");
    Ok(())
}

/// Counts a payout the proxy submitted in the ledger's own voucher format (no worker to hand it to).
pub(crate) fn self_submitted(proxy: &Proxy) {
    record(proxy, "proxy");
}

fn record(proxy: &Proxy, submitted_by: &'static str) {
    let stat = if submitted_by == "worker" {
        &proxy.payouts.claimed_by_worker
    } else {
        &proxy.payouts.self_submitted
    };
    stat.fetch_add(1, Ordering::Relaxed);
    proxy
        .metrics
        .counter(
            "cocoon_proxy_payouts_total",
            "Payout vouchers the vault applied, by who submitted them (worker or proxy).",
            &[("submitted_by", submitted_by)],
        )
        .inc();
}

/// Hands the voucher to the payee's workers over their live connections, the first that answers.
async fn push(proxy: &Proxy, payee: &[u8; 32], signed: &SignedPayout) -> Push {
    let worker = payee;
    let conns: Vec<_> = proxy
        .workers
        .all()
        .into_iter()
        .filter(|w| {
            proxy.chain.payee(&w.identity.public_key) == *payee && !w.closed.load(Ordering::Acquire)
        })
        .collect();
    if conns.is_empty() {
        return Push::NotConnected;
    }
    for entry in conns {
        let Ok(req) = payout_request(signed) else {
            return Push::Unencodable;
        };
        let mut sender = entry.sender();
        let answer = tokio::time::timeout(PUSH_TIMEOUT, async {
            sender.ready().await.ok()?;
            let resp = sender.send_request(req).await.ok()?;
            let ok = resp.status().is_success();
            let body = cocoon_daemon::http::read_limited(resp.into_body(), 4096)
                .await
                .ok()??;
            Some((ok, body))
        })
        .await;
        match answer {
            Ok(Some((true, body))) => {
                let claims = serde_json::from_slice::<PayoutAnswer>(&body).is_ok_and(|a| a.claims);
                return if claims {
                    Push::Claims
                } else {
                    Push::KeptNoClaims
                };
            }
            Ok(Some((false, body))) => {
                tracing::warn!(
                    worker = %hex::encode(worker),
                    answer = %String::from_utf8_lossy(&body),
                    "the worker refused its payout voucher; the proxy submits it"
                );
                return Push::Refused;
            }
            // This connection is gone or stuck: try the worker's next one.
            Ok(None) | Err(_) => {}
        }
    }
    Push::Unreachable
}

/// The request handing `voucher` to a worker on its connection ([`PAYOUT_PATH`]).
fn payout_request(
    voucher: &SignedPayout,
) -> Result<hyper::Request<cocoon_daemon::http::Body>, Box<dyn std::error::Error + Send + Sync>> {
    use cocoon_contracts::CellCodec;
    let boc = voucher.to_boc()?;
    Ok(
        hyper::Request::post(format!("http://{WORKER_AUTHORITY}{PAYOUT_PATH}"))
            .header(hyper::header::CONTENT_TYPE, PAYOUT_CONTENT_TYPE)
            .body(cocoon_daemon::http::full(boc))?,
    )
}

enum Claimed {
    Yes,
    No,
    ShuttingDown,
}

/// Reads the vault's record until it holds the voucher's amount or the grace is over.
async fn claimed_within_grace(proxy: &Proxy, signed: &SignedPayout) -> Claimed {
    let v = &signed.statement;
    let grace = Duration::from_millis(proxy.config.payout_self_submit_after_ms);
    let deadline = Instant::now() + grace;
    let mut wait = FIRST_RECORD_POLL;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(wait.min(left)) => {}
            _ = proxy.shutdown.triggered() => return Claimed::ShuttingDown,
        }
        match proxy.settler.payout_record(&v.vault, &v.worker).await {
            // Only this very voucher counts: a record that is merely higher may be another series
            // (a payee's earlier key), and counting it paid would strand what this one owes.
            Ok((seqno, paid)) if seqno == v.seqno && paid == v.paid => return Claimed::Yes,
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading the vault's payout record failed"),
        }
        if Instant::now() >= deadline {
            return Claimed::No;
        }
        wait = wait.saturating_mul(2).min(MAX_RECORD_POLL);
    }
}
