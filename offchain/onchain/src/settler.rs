//! [`OnchainSettler`]: submits the proxy's charges to escrows and payouts to its vault.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::{EscrowSubmitCharge, StakeClaimPayout, StakeCommitMarker};
use cocoon_contracts::state::{EscrowStorage, StakeStorage};
use cocoon_contracts::statements::{ChargeVoucher, PayoutVoucher, SignedCharge, SignedPayout};
use cocoon_protocol::voucher as pv;
use cocoon_ton::{TonAddress, TonClient, TonHash, Wallet};
use ed25519_dalek::SigningKey;

use crate::tx::{Outcome, fetch_state, message, send};
use crate::{OnchainError, OnchainView};

/// Value attached to `escrow_submit_charge` (the contract's minimum; the rest rides to the vault).
pub const CHARGE_VALUE: u128 = 6_000_000;
/// Value attached to `stake_claim_payout` (the contract's minimum; the rest rides to the worker).
pub const CLAIM_VALUE: u128 = 10_000_000;

/// Value attached to `stake_commit_marker` (the contract's minimum; what gas leaves stays in the
/// vault's payout pool).
pub const MARKER_VALUE: u128 = 10_000_000;

/// Retry policy of the settler, and when a state marker is worth a transaction.
#[derive(Debug, Clone, Copy)]
pub struct SettleOptions {
    /// How long to wait for each transaction.
    pub wait: Duration,
    /// Attempts when the chain is unavailable.
    pub attempts: u32,
    /// First backoff; doubles per attempt.
    pub backoff: Duration,
    /// Commit the state marker once it is at least this far above the chain's (charges)...
    pub marker_min_step: u64,
    /// ...or once it moved at all and the last commit (or the start) is this old.
    pub marker_max_age: Duration,
}

impl Default for SettleOptions {
    fn default() -> Self {
        SettleOptions {
            wait: Duration::from_secs(60),
            attempts: 4,
            backoff: Duration::from_millis(500),
            marker_min_step: 10_000,
            marker_max_age: Duration::from_secs(6 * 3600),
        }
    }
}

/// One submission that reached the chain.
#[derive(Debug, Clone)]
pub struct SettlementRecord {
    /// `charge` or `payout`.
    pub kind: &'static str,
    /// The cumulative amount now on chain.
    pub cumulative: u128,
    /// The transactions it caused.
    pub outcome: Outcome,
}

/// Submits settlements from the proxy operator's wallet: statements the proxy signed in the
/// contracts' format ([`OnchainSettler::submit_charge_statement`]), or ledger vouchers it signs with
/// the key it holds ([`OnchainSettler::charge`]). `cocoon-proxy` implements its `Settler` trait
/// over this.
pub struct OnchainSettler {
    view: Arc<OnchainView>,
    wallet: Wallet,
    key: SigningKey,
    options: SettleOptions,
    /// One wallet message at a time (the wallet's seqno orders them).
    send_lock: tokio::sync::Mutex<()>,
    records: Mutex<Vec<SettlementRecord>>,
    /// When the marker was last committed (or the settler made).
    marker_at: Mutex<Instant>,
}

impl std::fmt::Debug for OnchainSettler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnchainSettler")
            .field("wallet", &self.wallet.address_friendly())
            .finish_non_exhaustive()
    }
}

/// The operator's `stake_commit_marker` to its vault.
fn marker_message(vault: &TonAddress, marker: u64) -> Result<cocoon_ton::Transfer, OnchainError> {
    message(
        vault,
        MARKER_VALUE,
        &StakeCommitMarker {
            query_id: 0,
            marker,
        },
    )
}

enum Step {
    Done,
    Send(cocoon_ton::Transfer),
}

impl OnchainSettler {
    /// A settler sending from `wallet` (the proxy operator's) and signing with the proxy `key`.
    pub fn new(
        view: Arc<OnchainView>,
        wallet: Wallet,
        key: SigningKey,
        options: SettleOptions,
    ) -> Self {
        OnchainSettler {
            view,
            wallet,
            key,
            options,
            send_lock: tokio::sync::Mutex::new(()),
            records: Mutex::new(Vec::new()),
            marker_at: Mutex::new(Instant::now()),
        }
    }

    /// Every submission that reached the chain so far.
    pub fn records(&self) -> Vec<SettlementRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn client(&self) -> &dyn TonClient {
        self.view.client().as_ref()
    }

    /// The proxy's public key (what the ledger's vouchers must be signed with).
    pub fn proxy_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The view this settler reads.
    pub fn view(&self) -> &Arc<OnchainView> {
        &self.view
    }

    /// Commits the store's state marker to the vault (`stake_commit_marker` from the operator
    /// wallet, which owns it) and waits for it to land, when it is worth a transaction: at least
    /// `marker_min_step` above the chain's, or moved and `marker_max_age` since the last commit.
    /// Returns whether the chain now holds `marker`; a marker the vault already holds sends nothing.
    /// A proxy whose ledger is behind the vault's marker refuses to start.
    pub async fn commit_marker(&self, marker: u64) -> Result<bool, OnchainError> {
        let on_chain = self.view.committed_marker();
        if marker <= on_chain {
            return Ok(true);
        }
        let age = self
            .marker_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if marker - on_chain < self.options.marker_min_step && age < self.options.marker_max_age {
            return Ok(false);
        }
        self.commit_marker_now(marker).await?;
        Ok(true)
    }

    /// Commits `marker` to the vault now, whatever the policy (idempotent; waits for it to land).
    pub async fn commit_marker_now(&self, marker: u64) -> Result<(), OnchainError> {
        let vault = self.view.vault().clone();
        let plan = || async {
            let st: StakeStorage = fetch_state(self.client(), &vault)
                .await?
                .ok_or_else(|| OnchainError::NotDeployed(vault.to_hex()))?;
            if crate::view::stake_marker(&st) >= marker {
                return Ok(Step::Done);
            }
            Ok(Step::Send(marker_message(&vault, marker)?))
        };
        self.settle("marker", u128::from(marker), plan).await?;
        self.view.note_marker(marker);
        *self.marker_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(())
    }

    /// Runs `plan` (reads state: already applied → Done, else the message to send), sends, and
    /// re-plans after any failure so that a voucher applied by an earlier attempt counts as success.
    async fn settle<F, Fut>(
        &self,
        kind: &'static str,
        cumulative: u128,
        plan: F,
    ) -> Result<(), OnchainError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Step, OnchainError>>,
    {
        let _guard = self.send_lock.lock().await;
        let mut backoff = self.options.backoff;
        let mut last = None;
        for _ in 0..self.options.attempts.max(1) {
            let transfer = match plan().await {
                Ok(Step::Done) => return Ok(()),
                Ok(Step::Send(t)) => t,
                Err(e @ OnchainError::Unavailable(_)) => {
                    last = Some(e);
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match send(self.client(), &self.wallet, transfer, self.options.wait, 2).await {
                Ok(outcome) => {
                    self.records
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(SettlementRecord {
                            kind,
                            cumulative,
                            outcome,
                        });
                    // Confirm through the state (and stop if it did not move).
                    return match plan().await? {
                        Step::Done => Ok(()),
                        Step::Send(_) => Err(OnchainError::Invalid(format!(
                            "{kind} sent but the contract state did not move"
                        ))),
                    };
                }
                Err(e @ OnchainError::Contract { .. }) => {
                    // Refused: fine if an earlier attempt already applied it.
                    return match plan().await? {
                        Step::Done => Ok(()),
                        Step::Send(_) => Err(e),
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind, "settlement attempt failed; retrying");
                    last = Some(e);
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
        Err(last.unwrap_or_else(|| OnchainError::Unavailable("no attempt made".into())))
    }

    /// The address of an escrow of this proxy by its account id (where its charges go).
    pub fn escrow_of(&self, escrow: &[u8; 32]) -> Option<TonAddress> {
        self.view.escrow_by_id(escrow)
    }

    /// The vault and the payout wallet of a payee (where its payouts come from and go to).
    pub fn payout_of(&self, payee: &[u8; 32]) -> Option<(TonAddress, TonAddress)> {
        Some((self.view.vault().clone(), self.view.payee_wallet(payee)?))
    }

    /// Submits a charge the proxy signed in the contracts' format (idempotent: an escrow that already
    /// holds this cumulative charge is left alone). The signature is checked against the escrow's
    /// proxy key before anything is sent.
    pub async fn submit_charge_statement(&self, signed: &SignedCharge) -> Result<(), OnchainError> {
        let escrow = signed.statement.escrow.clone();
        let (seqno, charged) = (signed.statement.seqno, signed.statement.charged);
        let plan = || async {
            let st: EscrowStorage = fetch_state(self.client(), &escrow)
                .await?
                .ok_or_else(|| OnchainError::NotDeployed(escrow.to_hex()))?;
            // Applied only when the escrow holds this very statement; a record higher in either
            // field is another series (never counted as this one settled).
            if (st.seqno, st.charged) == (seqno, charged) {
                return Ok(Step::Done);
            }
            if seqno <= st.seqno || charged < st.charged {
                return Err(OnchainError::SeriesMismatch(format!(
                    "the escrow {} holds (seqno {}, charged {}), not below this charge's (seqno {seqno}, charged {charged}): another series; not counted as settled",
                    escrow.to_hex(),
                    st.seqno,
                    st.charged
                )));
            }
            signed.verify_for(&st.proxy_key, &escrow).map_err(|e| {
                OnchainError::Invalid(format!("charge voucher refused before sending: {e}"))
            })?;
            Ok(Step::Send(message(
                &escrow,
                CHARGE_VALUE,
                &EscrowSubmitCharge::new(0, signed.clone()),
            )?))
        };
        self.settle("charge", charged, plan).await
    }

    /// Submits a payout the proxy signed in the contracts' format (idempotent: a vault that already
    /// paid this cumulative amount to the worker is left alone).
    pub async fn submit_payout_statement(&self, signed: &SignedPayout) -> Result<(), OnchainError> {
        let vault = signed.statement.vault.clone();
        if &vault != self.view.vault() {
            return Err(OnchainError::Invalid(
                "payout drawn on another vault".into(),
            ));
        }
        let (seqno, paid) = (signed.statement.seqno, signed.statement.paid);
        let worker_id = account_id(&signed.statement.worker);
        let plan = || async {
            let st: StakeStorage = fetch_state(self.client(), &vault)
                .await?
                .ok_or_else(|| OnchainError::NotDeployed(vault.to_hex()))?;
            let (prev_seqno, prev_paid) = st
                .payouts
                .get(&worker_id)
                .map_or((0, 0), |r| (r.seqno, r.paid));
            // Applied only when the vault holds this very voucher: a record that is higher in one
            // field or both belongs to another series, and is never taken as this one paid.
            if (prev_seqno, prev_paid) == (seqno, paid) {
                return Ok(Step::Done);
            }
            if seqno <= prev_seqno || paid <= prev_paid {
                return Err(OnchainError::SeriesMismatch(format!(
                    "the vault's payout record for {} is (seqno {prev_seqno}, paid {prev_paid}), \
                     not below this voucher's (seqno {seqno}, paid {paid}): another series; not counted as paid",
                    signed.statement.worker.to_hex()
                )));
            }
            signed.verify_for(&st.key, &vault).map_err(|e| {
                OnchainError::Invalid(format!("payout voucher refused before sending: {e}"))
            })?;
            Ok(Step::Send(message(
                &vault,
                CLAIM_VALUE,
                &StakeClaimPayout::new(0, signed.clone()),
            )?))
        };
        self.settle("payout", paid, plan).await
    }

    /// The vault's record of the last payout to `worker` (a wallet): `(seqno, paid)`, `(0, 0)` when
    /// none. The proxy reads it to see whether a worker claimed a voucher it was handed.
    pub async fn payout_record(&self, worker: &TonAddress) -> Result<(u32, u128), OnchainError> {
        let vault = self.view.vault();
        let st: StakeStorage = fetch_state(self.client(), vault)
            .await?
            .ok_or_else(|| OnchainError::NotDeployed(vault.to_hex()))?;
        Ok(st
            .payouts
            .get(&account_id(worker))
            .map_or((0, 0), |r| (r.seqno, r.paid)))
    }

    /// Submits the cumulative charge of one escrow from a ledger voucher, signing it in the
    /// contracts' format with the key this settler holds (idempotent).
    pub async fn charge(&self, v: &pv::ChargeVoucher) -> Result<(), OnchainError> {
        if v.network_id != self.view.network_id() {
            return Err(OnchainError::Invalid(format!(
                "voucher for network {}, chain is {}",
                v.network_id,
                self.view.network_id()
            )));
        }
        let seqno = u32::try_from(v.seqno)
            .map_err(|_| OnchainError::Invalid("charge seqno exceeds u32".into()))?;
        let signed = ChargeVoucher {
            escrow: TonAddress::new(0, TonHash::from(v.escrow)),
            seqno,
            charged: v.cumulative_nano,
            is_final: false,
        }
        .sign(&self.key)?;
        self.submit_charge_statement(&signed).await
    }

    /// Pays the cumulative payout of one worker from a ledger voucher, signing it in the contracts'
    /// format with the key this settler holds (idempotent).
    pub async fn payout(&self, v: &pv::PayoutVoucher) -> Result<(), OnchainError> {
        let worker = self.view.payee_wallet(&v.worker_key).ok_or_else(|| {
            OnchainError::Invalid(format!(
                "worker {} has no payout wallet",
                hex::encode(v.worker_key)
            ))
        })?;
        if v.payer != self.view.payer() {
            return Err(OnchainError::Invalid(
                "payout drawn on another vault".into(),
            ));
        }
        let seqno = u32::try_from(v.seqno)
            .map_err(|_| OnchainError::Invalid("payout seqno exceeds u32".into()))?;
        let signed = PayoutVoucher {
            vault: self.view.vault().clone(),
            worker,
            seqno,
            paid: v.cumulative_nano,
        }
        .sign(&self.key)?;
        self.submit_payout_statement(&signed).await
    }
}
