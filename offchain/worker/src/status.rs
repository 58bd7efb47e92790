//! Whether the worker may serve: the chain's verdict (stake, image, model) and the engine's health.
//!
//! The chain monitor re-checks on an interval; while the verdict is not [`Eligibility::Eligible`]
//! (or [`Eligibility::Disabled`], no chain configured) the worker does not dial proxies and closes the
//! connections it has. The engine monitor takes the worker out of rotation (capacity 0 in its
//! announcement, new requests refused before the first byte) after consecutive failed health checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::PeerIdentity;
use serde::Serialize;

use crate::WorkerState;
use crate::chain::{RootView, StakeView, WorkerChain};

/// Why the chain says this worker may not serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The chain could not be read for longer than `max_stale_ms` (or not yet once).
    #[error("chain unavailable: {detail}")]
    ChainUnavailable {
        /// The last error.
        detail: String,
    },
    /// The owner has no worker stake under this root.
    #[error(
        "no worker stake for the owner wallet under this root (open one with `cocoon worker stake`)"
    )]
    NoStake,
    /// The stake exists but may not serve (not initialised or below the minimum).
    #[error("worker stake cannot serve: staked {staked} nanoTON, minimum {min_stake}")]
    StakeInactive {
        /// Staked nanoTON.
        staked: u128,
        /// The minimum, nanoTON.
        min_stake: u128,
    },
    /// The stake is bound to another key than this worker's attested key.
    #[error(
        "the stake is bound to key {stake_key}, not this worker's key {worker_key} (bind it with `cocoon worker stake --amount <TON> --key <worker key>`; keep the key across restarts with tls.key_file)"
    )]
    KeyMismatch {
        /// The stake's key, hex.
        stake_key: String,
        /// This worker's key, hex.
        worker_key: String,
    },
    /// This worker's TEE image is not on the root's worker allowlist.
    #[error("TEE image {image} is not allowed for workers in the root contract")]
    ImageNotAllowed {
        /// Image hash, hex.
        image: String,
    },
    /// This worker's TEE image was revoked.
    #[error("TEE image {image} was revoked at {at}")]
    ImageRevoked {
        /// Image hash, hex.
        image: String,
        /// Unix time of the revocation.
        at: u32,
    },
    /// The served model is not allowed in the root contract.
    #[error("model {model_hash} is not allowed in the root contract")]
    ModelNotAllowed {
        /// Model hash, hex.
        model_hash: String,
    },
    /// The root registers the model hash under another name than the one this worker serves.
    #[error(
        "the root registers model {model_hash} as {registered:?}, not as the configured model {configured:?}"
    )]
    ModelNameMismatch {
        /// Model hash, hex.
        model_hash: String,
        /// The root's name for it.
        registered: String,
        /// The configured `model`.
        configured: String,
    },
}

/// The chain's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Eligibility {
    /// No chain configured: serves without checks (development only).
    Disabled,
    /// Not checked yet: does not serve.
    Pending,
    /// Stake active, image and model allowed.
    Eligible,
    /// Refused, with the reason.
    Refused(Refusal),
}

/// What the worker may do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    /// The chain's verdict.
    pub chain: Eligibility,
    /// False after `health_failures` consecutive failed engine health checks.
    pub engine_healthy: bool,
    /// Consecutive failed health checks so far.
    pub engine_failures: u32,
}

impl WorkerStatus {
    /// The status at start.
    pub(crate) fn initial(chain_configured: bool) -> Self {
        WorkerStatus {
            chain: if chain_configured {
                Eligibility::Pending
            } else {
                Eligibility::Disabled
            },
            engine_healthy: true,
            engine_failures: 0,
        }
    }

    /// Whether the worker may be connected to proxies (the chain allows it).
    pub fn may_connect(&self) -> bool {
        matches!(self.chain, Eligibility::Disabled | Eligibility::Eligible)
    }

    /// Whether the worker takes requests (connected and the engine is healthy).
    pub fn in_rotation(&self) -> bool {
        self.may_connect() && self.engine_healthy
    }
}

/// The chain's rules for this worker, as a pure function of what was read.
pub fn evaluate(
    root: &RootView,
    stake: Option<&StakeView>,
    identity: &PeerIdentity,
    model_hash: &[u8; 32],
    model: &str,
    allow_unattested: bool,
) -> Result<(), Refusal> {
    let stake = stake.ok_or(Refusal::NoStake)?;
    if !stake.can_serve {
        return Err(Refusal::StakeInactive {
            staked: stake.staked,
            min_stake: stake.min_stake,
        });
    }
    if stake.key != identity.public_key {
        return Err(Refusal::KeyMismatch {
            stake_key: hex::encode(stake.key),
            worker_key: hex::encode(identity.public_key),
        });
    }
    let unattested = identity.insecure && identity.image_hash == [0; 32];
    if unattested && allow_unattested {
        tracing::warn!("INSECURE development mode: serving without an attested image");
    } else {
        let image = hex::encode(identity.image_hash);
        match root.worker_images.get(&identity.image_hash) {
            Some(0) => {}
            Some(&at) => return Err(Refusal::ImageRevoked { image, at }),
            None => return Err(Refusal::ImageNotAllowed { image }),
        }
    }
    match root.models.get(model_hash) {
        None => {
            return Err(Refusal::ModelNotAllowed {
                model_hash: hex::encode(model_hash),
            });
        }
        Some(registered) if registered != model => {
            return Err(Refusal::ModelNameMismatch {
                model_hash: hex::encode(model_hash),
                registered: registered.clone(),
                configured: model.to_owned(),
            });
        }
        Some(_) => {}
    }
    Ok(())
}

/// Settings of the chain monitor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainMonitor {
    pub(crate) interval: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) allow_unattested: bool,
}

/// A request for a fresh check, answered with the verdict after it.
pub(crate) type CheckRequest = tokio::sync::oneshot::Sender<Eligibility>;

impl ChainMonitor {
    /// Checks now, then every interval, and whenever asked (each request is answered after a check
    /// that started after it arrived), until shutdown.
    pub(crate) async fn run(
        self,
        state: Arc<WorkerState>,
        chain: Arc<dyn WorkerChain>,
        identity: PeerIdentity,
        mut requests: tokio::sync::mpsc::UnboundedReceiver<CheckRequest>,
        shutdown: Shutdown,
    ) {
        let mut last_good: Option<Instant> = None;
        let mut pending: Vec<CheckRequest> = Vec::new();
        loop {
            while let Ok(r) = requests.try_recv() {
                pending.push(r);
            }
            let verdict = match read(chain.as_ref()).await {
                Ok((root, stake)) => {
                    last_good = Some(Instant::now());
                    state.set_params(root.params);
                    if let Some(hook) = &state.on_root {
                        (hook.0)(&root);
                    }
                    match evaluate(
                        &root,
                        stake.as_ref(),
                        &identity,
                        &state.model_hash,
                        &state.config.model,
                        self.allow_unattested,
                    ) {
                        Ok(()) => Some(Eligibility::Eligible),
                        Err(r) => Some(Eligibility::Refused(r)),
                    }
                }
                Err(e) => {
                    let fresh = last_good.is_some_and(|t| t.elapsed() < self.max_stale);
                    if fresh {
                        tracing::warn!(error = %e, "chain check failed; keeping the last verdict");
                        None
                    } else {
                        Some(Eligibility::Refused(Refusal::ChainUnavailable {
                            detail: e.to_string(),
                        }))
                    }
                }
            };
            if let Some(v) = verdict {
                state.set_chain(v);
            }
            let now = state.status().chain;
            for r in pending.drain(..) {
                let _ = r.send(now.clone());
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                Some(r) = requests.recv() => pending.push(r),
                _ = shutdown.triggered() => return,
            }
        }
    }
}

async fn read(
    chain: &dyn WorkerChain,
) -> Result<(RootView, Option<StakeView>), crate::chain::WorkerChainError> {
    let root = chain.root().await?;
    let stake = chain.stake().await?;
    Ok((root, stake))
}
