//! Payout claims. A proxy signs cumulative payout vouchers (`payout_voucher`: vault, worker wallet,
//! seqno, cumulative paid) and hands them to the worker (`POST /cocoon/v1/payout` on the worker
//! connection, body = the signed voucher's BoC). The worker keeps the best verified voucher per vault
//! and claims it from the owner wallet once `paid − already claimed ≥ claim_threshold_nano`; the vault
//! sends the difference to the owner wallet.
//!
//! Replay safety: the vault accepts only a strictly higher seqno and amount per worker, so a claim can
//! never pay twice; the worker reads the vault's record before each claim and after any failure, so a
//! voucher already claimed (by the worker, or pushed by the proxy itself) is dropped, not resent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_contracts::CellCodec;
use cocoon_contracts::statements::SignedPayout;
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::Shutdown;
use cocoon_protocol::wire::PayoutAnswer;
use serde::Serialize;

use crate::chain::{ClaimReceipt, WorkerChain, WorkerChainError};

/// A voucher was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// Not a signed payout voucher.
    #[error("not a signed payout voucher: {0}")]
    Codec(String),
    /// The voucher pays another wallet.
    #[error("voucher pays {0}, not this worker's owner wallet")]
    WrongWorker(String),
    /// The vault is not an active proxy vault under this root.
    #[error("{0} is not an active proxy vault under this root")]
    NotAVault(String),
    /// The signature does not verify under the vault's key.
    #[error("voucher signature does not verify under the vault's key")]
    BadSignature,
    /// The chain could not be read to check the voucher.
    #[error(transparent)]
    Chain(#[from] WorkerChainError),
}

/// What one claim pass did for one vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimEvent {
    /// Claimed: the vault paid `amount` more.
    Claimed {
        /// The vault, raw address.
        vault: String,
        /// Voucher seqno.
        seqno: u32,
        /// Newly paid, nanoTON.
        amount: u128,
        /// Owner wallet transaction hash, hex.
        tx_hash: String,
        /// Fees of all transactions of the claim, nanoTON.
        fees: u128,
        /// What arrived at the owner wallet, nanoTON.
        received: u128,
    },
    /// The vault already paid this voucher (dropped).
    AlreadyClaimed {
        /// The vault.
        vault: String,
        /// Seqno on chain.
        seqno: u32,
    },
    /// Unclaimed but below the threshold (kept).
    BelowThreshold {
        /// The vault.
        vault: String,
        /// Unclaimed nanoTON.
        unclaimed: u128,
    },
    /// The claim failed (kept; retried next pass).
    Failed {
        /// The vault.
        vault: String,
        /// Why.
        error: String,
    },
}

/// The payout book and claimer.
#[derive(Debug)]
pub(crate) struct Payouts {
    chain: Arc<dyn WorkerChain>,
    threshold: u128,
    interval: Duration,
    file: Option<PathBuf>,
    registry: Arc<Registry>,
    book: Mutex<BTreeMap<String, SignedPayout>>,
    keys: Mutex<BTreeMap<String, [u8; 32]>>,
    /// One claim pass at a time (the owner wallet's seqno orders its messages).
    pass: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Payouts {
    pub(crate) fn new(
        chain: Arc<dyn WorkerChain>,
        threshold: u128,
        interval: Duration,
        file: Option<PathBuf>,
        registry: Arc<Registry>,
    ) -> Self {
        let book = file.as_deref().map(load_book).unwrap_or_default();
        Payouts {
            chain,
            threshold,
            interval,
            file,
            registry,
            book: Mutex::new(book),
            keys: Mutex::new(BTreeMap::new()),
            pass: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Checks a voucher from a BoC and keeps it if it pays more than the one held for its vault, and
    /// says whether this worker will claim it itself.
    pub(crate) async fn offer_boc(&self, boc: &[u8]) -> Result<PayoutAnswer, OfferError> {
        let voucher = SignedPayout::from_boc(boc).map_err(|e| OfferError::Codec(e.to_string()))?;
        // Decided before the voucher is kept: once kept, the claim pass may claim it at once.
        let claims = self.will_claim(&voucher).await;
        let kept = self.offer(voucher).await?;
        Ok(PayoutAnswer { kept, claims })
    }

    /// Whether this worker will claim `voucher` itself: it has an owner wallet and the voucher pays
    /// at least `claim_threshold_nano` more than the vault's record. When the record cannot be read
    /// the answer is yes (the proxy submits the voucher itself if no claim lands in its grace).
    async fn will_claim(&self, voucher: &SignedPayout) -> bool {
        if !self.chain.can_claim() {
            return false;
        }
        match self.chain.payout_claimed(&voucher.statement.vault).await {
            Ok((_, paid)) => voucher.statement.paid.saturating_sub(paid) >= self.threshold.max(1),
            Err(_) => true,
        }
    }

    /// Checks a voucher (owner, vault, signature) and keeps it if it pays more than the one held;
    /// true when kept.
    pub(crate) async fn offer(&self, voucher: SignedPayout) -> Result<bool, OfferError> {
        let v = &voucher.statement;
        if &v.worker != self.chain.owner() {
            return Err(OfferError::WrongWorker(v.worker.to_hex()));
        }
        let vault = v.vault.to_hex();
        let cached = lock(&self.keys).get(&vault).copied();
        let verified = match cached {
            Some(key) if voucher.verify(&key).is_ok() => true,
            // Unknown vault, or its key was rotated: read it again.
            _ => {
                let key = self
                    .chain
                    .vault_key(&v.vault)
                    .await?
                    .ok_or_else(|| OfferError::NotAVault(vault.clone()))?;
                lock(&self.keys).insert(vault.clone(), key);
                voucher.verify(&key).is_ok()
            }
        };
        if !verified {
            return Err(OfferError::BadSignature);
        }
        let kept = {
            let mut book = lock(&self.book);
            let better = book
                .get(&vault)
                .is_none_or(|held| v.paid > held.statement.paid && v.seqno > held.statement.seqno);
            if better {
                book.insert(vault, voucher.clone());
            }
            better
        };
        if kept {
            self.persist();
            self.wake.notify_one();
        }
        Ok(kept)
    }

    /// The vouchers held (one per vault, not yet known to be claimed).
    pub(crate) fn held(&self) -> Vec<SignedPayout> {
        lock(&self.book).values().cloned().collect()
    }

    fn persist(&self) {
        let Some(path) = &self.file else { return };
        let map: BTreeMap<String, String> = lock(&self.book)
            .iter()
            .filter_map(|(k, v)| v.to_boc().ok().map(|b| (k.clone(), hex::encode(b))))
            .collect();
        let result = serde_json::to_vec_pretty(&map)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, path)
            });
        if let Err(e) = result {
            tracing::error!(path = %path.display(), error = %e, "saving payout vouchers failed");
        }
    }

    fn drop_voucher(&self, vault: &str, seqno: u32) {
        let removed = {
            let mut book = lock(&self.book);
            let stale = book.get(vault).is_some_and(|v| v.statement.seqno <= seqno);
            stale && book.remove(vault).is_some()
        };
        if removed {
            self.persist();
        }
    }

    /// One pass over the held vouchers: claims every vault whose unclaimed amount reached the
    /// threshold.
    pub(crate) async fn claim_due(&self) -> Vec<ClaimEvent> {
        let _pass = self.pass.lock().await;
        let mut events = Vec::new();
        for voucher in self.held() {
            let event = self.claim_one(&voucher).await;
            match &event {
                ClaimEvent::Claimed {
                    vault,
                    seqno,
                    amount,
                    tx_hash,
                    fees,
                    received,
                } => {
                    tracing::info!(%vault, seqno, amount, %tx_hash, fees, received, "payout claimed");
                    self.registry
                        .counter("cocoon_worker_claims_total", "Payout claims sent.", &[])
                        .inc();
                    self.registry
                        .counter(
                            "cocoon_worker_claimed_nanoton_total",
                            "Payouts claimed, nanoTON.",
                            &[],
                        )
                        .add(u64::try_from(*amount).unwrap_or(u64::MAX));
                }
                ClaimEvent::AlreadyClaimed { vault, seqno } => {
                    tracing::info!(%vault, seqno, "payout voucher already claimed on chain; dropped");
                }
                ClaimEvent::BelowThreshold { .. } => {}
                ClaimEvent::Failed { vault, error } => {
                    tracing::warn!(%vault, %error, "payout claim failed; retried next pass");
                    self.registry
                        .counter(
                            "cocoon_worker_claim_failures_total",
                            "Failed payout claims.",
                            &[],
                        )
                        .inc();
                }
            }
            events.push(event);
        }
        events
    }

    async fn claim_one(&self, voucher: &SignedPayout) -> ClaimEvent {
        let v = &voucher.statement;
        let vault = v.vault.to_hex();
        let failed = |e: WorkerChainError| ClaimEvent::Failed {
            vault: vault.clone(),
            error: e.to_string(),
        };
        let (seqno, paid) = match self.chain.payout_claimed(&v.vault).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        if v.seqno <= seqno || v.paid <= paid {
            self.drop_voucher(&vault, seqno.max(v.seqno));
            return ClaimEvent::AlreadyClaimed { vault, seqno };
        }
        let unclaimed = v.paid - paid;
        if unclaimed < self.threshold {
            return ClaimEvent::BelowThreshold { vault, unclaimed };
        }
        if !self.chain.can_claim() {
            return failed(WorkerChainError::NoWallet);
        }
        match self.chain.claim(voucher).await {
            Ok(ClaimReceipt {
                tx_hash,
                fees,
                received,
                ..
            }) => {
                // Confirm through the vault's record (toncenter reports no exit codes). If it
                // cannot be read now the voucher stays held: the next pass drops it once seen paid.
                match self.chain.payout_claimed(&v.vault).await {
                    Ok((_, now_paid)) if now_paid >= v.paid => self.drop_voucher(&vault, v.seqno),
                    Ok((_, now_paid)) => {
                        return failed(WorkerChainError::Refused(format!(
                            "claim sent (tx {tx_hash}) but the vault records {now_paid}, not {}",
                            v.paid
                        )));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %tx_hash, "claim sent but not confirmed yet");
                    }
                }
                ClaimEvent::Claimed {
                    vault,
                    seqno: v.seqno,
                    amount: unclaimed,
                    tx_hash,
                    fees,
                    received,
                }
            }
            Err(e) => {
                // Refused or lost: applied meanwhile (e.g. the proxy pushed it) counts as done.
                match self.chain.payout_claimed(&v.vault).await {
                    Ok((now_seqno, now_paid)) if now_paid >= v.paid => {
                        self.drop_voucher(&vault, now_seqno);
                        ClaimEvent::AlreadyClaimed {
                            vault,
                            seqno: now_seqno,
                        }
                    }
                    _ => failed(e),
                }
            }
        }
    }

    /// Claims every interval and whenever a better voucher arrives, until shutdown.
    pub(crate) async fn run(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.triggered() => return,
            }
            self.claim_due().await;
        }
    }
}

fn load_book(path: &std::path::Path) -> BTreeMap<String, SignedPayout> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let map: BTreeMap<String, String> = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "payout voucher file unreadable; starting empty");
            return BTreeMap::new();
        }
    };
    map.into_iter()
        .filter_map(|(vault, boc)| {
            let voucher = hex::decode(boc)
                .ok()
                .and_then(|b| SignedPayout::from_boc(&b).ok());
            if voucher.is_none() {
                tracing::error!(%vault, "skipping an unreadable saved payout voucher");
            }
            voucher.map(|v| (vault, v))
        })
        .collect()
}
